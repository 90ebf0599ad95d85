"""Carry and funding events as the executor publishes them (shared/messages.py), for the bridge-side tests.

Ids are the default config's: venues binance 0, mexc 1, binance_perp 2, mexc_perp 3; symbol 0 is BTCUSDT.
"""

from __future__ import annotations

from shared.messages import CarryPosition, FundingPayment

SPOT, PERP, SPOT2, PERP2 = 0, 2, 1, 3
BTC, ETH = 0, 1
OPENED_MS = 1_800_000_000_000
T_NS = OPENED_MS * 1_000_000  # wall clock of the first update
HOUR_NS = 3_600 * 10**9


def carry(
    carry_id: int,
    state: str = "open",
    *,
    symbol: int = BTC,
    spot_venue: int = SPOT,
    perp_venue: int = PERP,
    spot_qty: str = "0.010",
    perp_qty: str = "-0.010",
    entry_bps: float = 5.5,
    exit_bps: float = 0.0,
    funding: float = 0.0,
    fees: float = 0.1,
    pnl: float = -0.1,
    closed_ms: int = 0,
    ts_ns: int = T_NS,
) -> CarryPosition:
    return CarryPosition(carry_id, symbol, spot_venue, perp_venue, state, spot_qty, perp_qty, entry_bps, exit_bps,
                         funding, fees, pnl, OPENED_MS, closed_ms, ts_ns)


def payment(
    payment_id: str, amount: str = "0.0125", usd: float = 0.0125, *, venue: int = PERP, symbol: int = BTC,
    asset: str = "USDT", carry_id: int = 501, ts_ns: int = T_NS + 8 * HOUR_NS,
) -> FundingPayment:
    return FundingPayment(venue, symbol, payment_id, amount, asset, usd, ts_ns // 1_000_000, carry_id, ts_ns)


def lifecycle(carry_id: int = 501) -> list[CarryPosition | FundingPayment]:
    """One carry's life in the order the executor publishes it: opened, two funding payments, closed."""
    return [
        carry(carry_id),
        payment(f"{carry_id}-1", "0.0125", 0.0125, carry_id=carry_id),
        carry(carry_id, funding=0.0125, pnl=-0.0875, ts_ns=T_NS + 8 * HOUR_NS + 1),
        payment(f"{carry_id}-2", "-0.0030", -0.003, carry_id=carry_id, ts_ns=T_NS + 16 * HOUR_NS),
        carry(carry_id, funding=0.0095, pnl=-0.0905, ts_ns=T_NS + 16 * HOUR_NS + 1),
        carry(carry_id, "closed", spot_qty="0.000", perp_qty="0.000", exit_bps=1.25, funding=0.0095, fees=0.2,
              pnl=0.1375, closed_ms=OPENED_MS + 20 * 3_600_000, ts_ns=T_NS + 20 * HOUR_NS),
    ]
