"""Venue wire formats, one folder per venue; pick one by the config's ``kind``."""

from __future__ import annotations

from shared.venues.common import MarketFormat, OrderFormat


def market_format(kind: str) -> MarketFormat:
    """A fresh parser per caller: each holds its own reusable decoder state."""
    if kind == "binance":
        from shared.venues.binance.market import BinanceMarketFormat

        return BinanceMarketFormat()
    if kind == "mexc":
        from shared.venues.mexc.market import MexcMarketFormat

        return MexcMarketFormat()
    raise ValueError(f"unknown venue kind {kind!r}; expected binance or mexc")


def order_format(kind: str) -> OrderFormat:
    if kind == "binance":
        from shared.venues.binance.orders import BinanceOrderFormat

        return BinanceOrderFormat()
    if kind == "mexc":
        from shared.venues.mexc.orders import MexcOrderFormat

        return MexcOrderFormat()
    raise ValueError(f"unknown venue kind {kind!r}; expected binance or mexc")
