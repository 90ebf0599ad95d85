"""Each planned leg of an execution as it ended: what it meant to trade at what price, what it traded at what price.

A leg's orders are the execution's ``ROLE_LEG`` LegFills with its index (the executor sends one per leg; a leg with
several is summed). Unwind and hedge orders are corrections, not the plan, so they never count here: a leg's fill
ratio and slippage measure how the planned trade met the market.

Slippage is against the price the detector saw (the opportunity's leg price), in bps of it, signed so that
positive is worse: a buy that paid more, a sell that got less. Quantities and amounts are exact decimal text in
LegFill; they are summed exactly and only the ratios become floats.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from shared.messages import ROLE_LEG, SIDE_BUY, Execution, LegFill, Opportunity

BPS = Decimal(10_000)


@dataclass(frozen=True, slots=True)
class LegResult:
    opportunity_id: int
    strategy: int
    leg: int
    venue: int
    symbol: int
    side: int
    detected_price: float | None  # None: the opportunity is not among the inputs
    intended_qty: Decimal  # as sent; the opportunity's qty for a planned leg with no order
    filled_qty: Decimal
    avg_price: Decimal | None  # None: nothing filled
    done_ns: int

    @property
    def fill_ratio(self) -> float | None:
        return float(self.filled_qty / self.intended_qty) if self.intended_qty > 0 else None

    @property
    def slippage_bps(self) -> float | None:
        """Positive = worse than detected; None without a fill or a detected price."""
        if self.avg_price is None or not self.detected_price:
            return None
        detected = Decimal(repr(self.detected_price))  # the float as printed: 101.5, not its binary expansion
        diff = self.avg_price - detected if self.side == SIDE_BUY else detected - self.avg_price
        return float(diff / detected * BPS)


def leg_results(executions: Iterable[Execution], opportunities: Mapping[int, Opportunity]) -> list[LegResult]:
    """Every planned leg of every execution that sent an order, in execution then leg order.

    An execution that sent nothing (aborted before any order) has no legs here: nothing met the market. A planned
    leg it never sent while sending others is a leg that filled nothing."""
    out: list[LegResult] = []
    for e in executions:
        orders = [f for f in e.legs if f.role == ROLE_LEG]
        if not orders:
            continue
        opp = opportunities.get(e.opportunity_id)
        by_leg: dict[int, list[LegFill]] = {}
        for f in orders:
            by_leg.setdefault(f.leg, []).append(f)
        planned = range(len(opp.legs)) if opp is not None else ()
        for i in sorted(set(by_leg) | set(planned)):
            out.append(_leg(e, i, by_leg.get(i, []), opp))
    return out


def _leg(e: Execution, i: int, fills: Sequence[LegFill], opp: Opportunity | None) -> LegResult:
    plan = opp.legs[i] if opp is not None and 0 <= i < len(opp.legs) else None
    if fills:
        venue, symbol, side = fills[0].venue, fills[0].symbol, fills[0].side
        intended = sum((_dec(e, f, "qty") for f in fills), Decimal(0))
    elif plan is not None:
        venue, symbol, side = plan.venue, plan.symbol, plan.side
        intended = Decimal(repr(plan.qty))
    else:  # pragma: no cover - a leg index comes from a fill or from the plan
        raise AssertionError(i)
    filled = sum((_dec(e, f, "filled_qty") for f in fills), Decimal(0))
    quote = sum((_dec(e, f, "quote_qty") for f in fills), Decimal(0))
    return LegResult(
        opportunity_id=e.opportunity_id,
        strategy=e.strategy,
        leg=i,
        venue=venue,
        symbol=symbol,
        side=side,
        detected_price=plan.price if plan is not None else None,
        intended_qty=intended,
        filled_qty=filled,
        avg_price=quote / filled if filled > 0 else None,
        done_ns=e.done_ns,
    )


def _dec(e: Execution, f: LegFill, field: str) -> Decimal:
    text = getattr(f, field)
    where = f"execution {e.opportunity_id}: order {f.client_order_id}: {field} {text!r}"
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"{where} is not a decimal") from None
    if not value.is_finite() or value < 0:
        raise ValueError(f"{where} is not a number >= 0")
    return value
