"""An execution's outcome and realized PnL from a cross-exchange pair's two legs' results."""

from __future__ import annotations

from typing import NamedTuple

from shared.messages import SIDE_BUY, Execution, OrderIntent
from shared.venues.common import OrderResult

QTY_EPSILON = 1e-12


class LegResult(NamedTuple):
    side: int
    result: OrderResult


def classify(bought: float, sold: float, wanted: float, any_unknown: bool) -> str:
    if any_unknown:
        return "failed"
    if bought <= QTY_EPSILON and sold <= QTY_EPSILON:
        return "missed"
    if abs(bought - sold) > QTY_EPSILON * max(1.0, wanted):
        return "imbalanced"
    if bought >= wanted - QTY_EPSILON * max(1.0, wanted):
        return "filled"
    return "partial"


def settle_execution(intent: OrderIntent, legs: list[LegResult], sent_ns: int, done_ns: int) -> Execution:
    """PnL is realized on the matched quantity only; an unmatched remainder stays an open position
    (booked by the unwind logic, not here), so a half-filled pair never shows as profit."""
    opp = intent.opportunity
    buy_leg = next(leg for leg in opp.legs if leg.side == SIDE_BUY)
    sell_leg = next(leg for leg in opp.legs if leg.side != SIDE_BUY)
    buy = next(leg.result for leg in legs if leg.side == SIDE_BUY)
    sell = next(leg.result for leg in legs if leg.side != SIDE_BUY)
    bought, sold = buy.filled_qty, sell.filled_qty
    matched = min(bought, sold)
    # Venue amounts are in the symbol's quote currency (BTC for ETHBTC): valued in USD at detection time.
    usd = buy_leg.quote_usd
    fees = (buy.fee_usd + sell.fee_usd) * usd
    pnl = matched * (sell.avg_price - buy.avg_price) * usd - fees if matched > 0 else -fees
    return Execution(
        opportunity_id=opp.id,
        symbol=opp.symbol,
        buy_venue=buy_leg.venue,
        sell_venue=sell_leg.venue,
        bought_qty=bought,
        sold_qty=sold,
        buy_avg_price=buy.avg_price,
        sell_avg_price=sell.avg_price,
        fees_usd=fees,
        pnl_usd=pnl,
        notional_usd=matched * buy.avg_price * usd,
        outcome=classify(bought, sold, buy_leg.qty, "UNKNOWN" in (buy.status, sell.status)),
        tick_ns=opp.tick_ns,
        detected_ns=opp.detected_ns,
        decided_ns=intent.decided_ns,
        sent_ns=sent_ns,
        done_ns=done_ns,
    )
