"""Legging: when the legs of one execution filled unevenly, the orders that even them out.

Every leg of a plan is a share of one trade: a cross pair buys and sells the same quantity, a triangle spends
what the previous leg bought. So the legs' *fill fractions* (filled / planned) say how balanced the position
is. With every fraction equal the trade is consistent at that size, whatever the size is. Otherwise:

- **unwind** brings every leg down to the smallest fraction: the excess of each over-filled leg is reversed
  on the same venue and symbol (a bought excess is sold back, a sold excess bought back);
- **hedge** brings every leg up to the largest fraction: the shortfall of each under-filled leg is sent again,
  same side, with a wider limit.

Corrections are IOC limits priced ``slippage_bps`` through the leg's own limit, so they cross at once without
being market orders that could fill anywhere. What cannot be corrected — less than one step, or below the
venue's minimum notional (the venue would refuse it) — is residual inventory: it stays in the books at its
value and is reported as ``residual_usd``, not as an orphan.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import NamedTuple

from shared.messages import SIDE_BUY, SIDE_SELL

UNWIND = "unwind"
HEDGE = "hedge"


class LegPosition(NamedTuple):
    """One planned leg and what all orders for it (the leg itself and its corrections) have done."""

    venue: int
    symbol: int
    side: int
    planned: Decimal  # base quantity the plan wanted
    net_filled: Decimal  # base quantity done in the leg's direction (corrections that reversed it subtract)
    price: Decimal  # the leg's limit price
    step: Decimal
    tick: Decimal
    min_notional: Decimal


class Correction(NamedTuple):
    leg: int
    venue: int
    symbol: int
    side: int
    qty: Decimal
    price: Decimal


def fraction(p: LegPosition) -> Decimal:
    return p.net_filled / p.planned if p.planned > 0 else Decimal(0)


def corrections(legs: list[LegPosition], mode: str, slippage_bps: float) -> list[Correction]:
    """The orders that bring every leg to the same fill fraction; [] when the legs are balanced (to a step)."""
    if not legs:
        return []
    fractions = [fraction(p) for p in legs]
    target = min(fractions) if mode == UNWIND else max(fractions)
    target = max(Decimal(0), min(Decimal(1), target))
    out: list[Correction] = []
    slip = Decimal(repr(slippage_bps)) / Decimal(10_000)
    for i, p in enumerate(legs):
        gap = p.net_filled - target * p.planned  # > 0: over-filled; < 0: under-filled
        qty = (abs(gap) / p.step).to_integral_value(rounding=ROUND_FLOOR) * p.step
        if qty <= 0:
            continue
        if mode == UNWIND and gap > 0:
            side = SIDE_SELL if p.side == SIDE_BUY else SIDE_BUY  # reverse the excess
        elif mode == HEDGE and gap < 0:
            side = p.side  # complete the shortfall
        else:
            continue
        price = through(p.price, side, slip, p.tick)
        if price <= 0 or qty * price < p.min_notional:
            continue  # the venue would refuse it: residual inventory, not an order
        out.append(Correction(i, p.venue, p.symbol, side, qty.quantize(p.step), price))
    return out


def through(price: Decimal, side: int, slip: Decimal, tick: Decimal) -> Decimal:
    """A limit ``slip`` beyond ``price`` in the direction that crosses (up for a buy, down for a sell), on the tick
    and rounded further that way, so rounding never makes it less aggressive."""
    if side == SIDE_BUY:
        raw, rounding = price * (1 + slip), ROUND_CEILING
    else:
        raw, rounding = price * (1 - slip), ROUND_FLOOR
    return ((raw / tick).to_integral_value(rounding=rounding) * tick).quantize(tick)


def balanced(legs: list[LegPosition], mode: str, slippage_bps: float) -> bool:
    return not corrections(legs, mode, slippage_bps)
