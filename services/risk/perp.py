"""Perpetual rules: what opening perpetual exposure (the funding carry's short) may add to a margin account.

Only a leg on a perpetual venue (its config kind is a perpetual) of an opportunity that is not a CLOSE comes
here; a CLOSE only reduces (its perpetual leg is reduce-only) and is never refused by these rules. A
perpetual leg needs no base balance, it needs margin. In check order, each with its reason:

- ``perp_margin_unknown``: the venue has sent no ``PerpMargin`` (or a malformed one), or none states the
  leg symbol's leverage: nothing is known to judge the rest by.
- ``perp_leverage``: the symbol's leverage on the venue (set by the executor at start) above ``max_leverage``.
- ``carry_notional``: every perpetual position's |size| x mark over all perpetual venues, plus what approvals
  in flight open, plus this opening, above ``max_carry_notional_usd``.
- ``perp_margin``: the opening's initial margin (opening notional / leverage) plus its taker fee, plus what
  approvals in flight reserved, above ``available x balance_headroom``; or the margin ratio after the order,
  (maint_margin + opening notionals in flight and this one x MAINT_MARGIN_RATE) / margin_balance, above
  ``max_margin_ratio`` (a margin balance of zero or less: refused).
- ``perp_liquidation``: after the order, a position on the venue closer to its liquidation price than
  ``min_liquidation_distance`` of its mark. Positions the order does not touch: the venue's stated
  liquidation price. The new or grown one: estimated with the isolated single-bracket formula (Binance's,
  no maintenance amount, the same the simulator states), q = |size|, E = entry (the grown position's blended
  entry), B = its margin (the stated margin plus the added notional / leverage):
      short: (E + B/q) / (1 + MMR)        long: (E - B/q) / (1 - MMR)   (not positive: no liquidation)
  Isolated is the conservative case: cross margin backs the position with the whole wallet, which only moves
  the liquidation price further away.

Only the opening part of a leg counts: a leg against an existing position first reduces it, and what that
frees is not counted toward the rest (the venues' own rule, and the simulator's). Amounts are in the margin
asset (USDT), valued at 1 USD: the perpetuals traded are USDT-margined.

An approval reserves its margin (``MARGIN_KEY``) and its opening notional (``NOTIONAL_KEY``) per venue, as
pseudo-assets in the reservation's amounts, released with the rest on the Execution: two carries in flight
cannot both take the last margin, nor both fit under the carry notional limit.
"""

from __future__ import annotations

import math
from typing import NamedTuple

from shared.config import Risk
from shared.messages import SIDE_BUY, Leg, PerpMargin

PERP_MARGIN_UNKNOWN = "perp_margin_unknown"
PERP_LEVERAGE = "perp_leverage"
CARRY_NOTIONAL = "carry_notional"
PERP_MARGIN = "perp_margin"
PERP_LIQUIDATION = "perp_liquidation"

# Maintenance margin rate: Binance's first bracket for BTCUSDT and MEXC's, and the simulator's (no brackets).
# Larger positions have higher rates on the venues; risk's ratio and liquidation estimates use the first.
MAINT_MARGIN_RATE = 0.004
# Reservation pseudo-assets (lower case: no real asset is): initial margin + fee, and opening notional.
MARGIN_KEY = "margin"
NOTIONAL_KEY = "perp_notional"

_Needs = dict[tuple[int, str], float]


class Position(NamedTuple):
    size: float  # signed base units (short < 0)
    entry: float
    mark: float
    liquidation: float  # 0: none stated
    margin: float


class PerpView:
    """A venue's ``PerpMargin`` in floats, parsed once per VenueState (not per opportunity)."""

    __slots__ = ("available", "leverage", "maint_margin", "margin_balance", "open_notional", "positions")

    def __init__(self, available: float, margin_balance: float, maint_margin: float, leverage: dict[int, int],
                 positions: dict[int, Position]) -> None:
        self.available = available
        self.margin_balance = margin_balance
        self.maint_margin = maint_margin
        self.leverage = leverage
        self.positions = positions
        self.open_notional = sum(abs(p.size) * p.mark for p in positions.values())

    @classmethod
    def parse(cls, pm: PerpMargin) -> PerpView | None:
        """None when a figure is not a finite number: the venue's margin is then unknown, never guessed."""
        numbers = [pm.wallet, pm.margin_balance, pm.available, pm.maint_margin]
        positions: dict[int, Position] = {}
        for p in pm.positions:
            try:
                size = float(p.size)
            except ValueError:
                return None
            numbers += (size, p.entry_price, p.mark_price, p.liquidation_price, p.margin_usd)
            positions[p.symbol] = Position(size, p.entry_price, p.mark_price, p.liquidation_price, p.margin_usd)
        if not all(math.isfinite(x) for x in numbers):
            return None
        return cls(pm.available, pm.margin_balance, pm.maint_margin, dict(pm.leverage), positions)


def liquidation_price(entry: float, margin: float, qty: float, short: bool) -> float:
    """The isolated single-bracket estimate (module docstring); 0 when there is none (a long fully margined)."""
    per_unit = margin / qty
    price = (entry + per_unit) / (1 + MAINT_MARGIN_RATE) if short else (entry - per_unit) / (1 - MAINT_MARGIN_RATE)
    return price if price > 0 else 0.0


def too_close(liquidation: float, mark: float, short: bool, min_distance: float) -> bool:
    """The liquidation price within ``min_distance`` (a share of the mark) of the mark."""
    if liquidation <= 0 or mark <= 0:
        return False  # none stated / none at all (a long margined in full); a mark of 0 is no price to judge
    distance = (liquidation - mark) / mark if short else (mark - liquidation) / mark
    return distance < min_distance


class PerpRules:
    def __init__(self, limits: Risk, taker_fee: tuple[float, ...]) -> None:
        self.max_leverage = limits.max_leverage
        self.max_margin_ratio = limits.max_margin_ratio
        self.min_distance = limits.min_liquidation_distance
        self.max_carry = limits.max_carry_notional_usd
        self.headroom = limits.balance_headroom
        self.taker_fee = taker_fee

    def check(self, legs: tuple[Leg, ...], is_perp: tuple[bool, ...], views: dict[int, PerpView],
              reserved: dict[tuple[int, str], float], needs: _Needs) -> str | None:
        """The first perpetual rule that refuses ``legs`` (an OPEN's), or None after adding what to reserve
        to ``needs``: (venue, MARGIN_KEY) and (venue, NOTIONAL_KEY)."""
        opening: list[tuple[Leg, PerpView, int, float]] = []  # leg, its venue's view, leverage, opening qty
        for leg in legs:
            if not is_perp[leg.venue]:
                continue
            view = views.get(leg.venue)
            lev = view.leverage.get(leg.symbol, 0) if view is not None else 0
            if view is None or lev < 1:
                return PERP_MARGIN_UNKNOWN
            if lev > self.max_leverage:
                return PERP_LEVERAGE
            pos = view.positions.get(leg.symbol)
            size = pos.size if pos is not None else 0.0
            buy = leg.side == SIDE_BUY
            same_side = size == 0 or (size > 0) == buy
            qty = leg.qty if same_side else max(0.0, leg.qty - abs(size))
            opening.append((leg, view, lev, qty))

        new_notional = sum(leg.price * qty for leg, _, _, qty in opening)
        carry = new_notional
        for v, view in views.items():
            carry += view.open_notional + reserved.get((v, NOTIONAL_KEY), 0.0)
        if carry > self.max_carry:
            return CARRY_NOTIONAL

        margin: _Needs = {}
        notional: _Needs = {}
        for leg, _, lev, qty in opening:
            v = leg.venue
            initial = leg.price * qty / lev + leg.price * leg.qty * self.taker_fee[v]
            margin[(v, MARGIN_KEY)] = margin.get((v, MARGIN_KEY), 0.0) + initial
            notional[(v, NOTIONAL_KEY)] = notional.get((v, NOTIONAL_KEY), 0.0) + leg.price * qty
        for key, need in margin.items():
            view = views[key[0]]
            if need + reserved.get(key, 0.0) > view.available * self.headroom:
                return PERP_MARGIN
            if view.margin_balance <= 0:
                return PERP_MARGIN
            added = notional[(key[0], NOTIONAL_KEY)] + reserved.get((key[0], NOTIONAL_KEY), 0.0)
            if (view.maint_margin + added * MAINT_MARGIN_RATE) / view.margin_balance > self.max_margin_ratio:
                return PERP_MARGIN

        min_distance = self.min_distance
        for leg, view, lev, qty in opening:
            if qty <= 0:
                continue
            short = leg.side != SIDE_BUY
            for symbol, p in view.positions.items():  # what the order leaves as the venue states it
                if symbol != leg.symbol and too_close(p.liquidation, p.mark, p.size < 0, min_distance):
                    return PERP_LIQUIDATION
            pos = view.positions.get(leg.symbol)
            if pos is not None and pos.size != 0 and (pos.size < 0) == short:  # grown: blended entry, margins add
                q = abs(pos.size) + qty
                entry = (abs(pos.size) * pos.entry + qty * leg.price) / q
                margin_b = pos.margin + leg.price * qty / lev
            else:  # new (or what a flip opens on the other side)
                q, entry, margin_b = qty, leg.price, leg.price * qty / lev
            mark = pos.mark if pos is not None and pos.mark > 0 else leg.price
            if too_close(liquidation_price(entry, margin_b, q, short), mark, short, min_distance):
                return PERP_LIQUIDATION

        needs.update(margin)
        needs.update(notional)
        return None
