"""The simulated exchange: Binance and MEXC spot wire formats over real sockets, seeded prices."""
