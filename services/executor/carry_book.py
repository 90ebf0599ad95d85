"""Funding carries as positions: what each holds, what it cost, what it collected, from open to close.

A carry opens with a funding-rate OPEN execution (spot buy + perpetual short, or the short alone) and closes with
its CLOSE (spot sell + perpetual buy, reduce-only). What it *holds* comes from the executions' exact balance
deltas, not from the plan: an OPEN that unwound to half its size holds half, a Binance spot buy holds its quantity
less the commission charged in the base asset. So a CLOSE is sized here (``close_legs``) to exactly what is held
(the spot side floored to the venue's step), and a reduce-only perpetual buy can never flip the position.

Funding payments (booked by the executor from the venue's income history, once per payment id) accrue to the open
carry of their venue and symbol.

Everything here is rebuilt after a restart by replaying the executions the journal booked (``replay``), in their
booking order: nothing of it is persisted separately, so it cannot disagree with the books.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal

from shared.messages import (
    ROLE_LEG,
    SIDE_BUY,
    STRATEGY_FUNDING,
    CarryPosition,
    Execution,
    Leg,
    Opportunity,
)
from shared.registry import Registry

OUTCOME_FUNDING = "funding"  # a funding payment booked as its own execution (no orders)
FUNDING_NOTE = "funding "  # + "<venue>:<payment id>": the key that books a payment once
CLOSED_KEPT = 256
ZERO = Decimal(0)
OPEN = "open"
CLOSED = "closed"


@dataclass(slots=True)
class Carry:
    carry_id: int  # the opening opportunity's id
    symbol: int
    spot_venue: int  # -1: unhedged
    perp_venue: int
    spot_qty: Decimal = ZERO  # base held on the spot venue (exact, after commissions)
    perp_qty: Decimal = ZERO  # the perpetual position (negative: short)
    entry_basis_bps: float = 0.0
    exit_basis_bps: float = 0.0
    funding_usd: float = 0.0
    fees_usd: float = 0.0
    pnl_usd: float = 0.0
    opened_ms: int = 0
    closed_ms: int = 0
    state: str = OPEN

    def event(self, ts_ns: int) -> CarryPosition:
        return CarryPosition(self.carry_id, self.symbol, self.spot_venue, self.perp_venue, self.state,
                             _text(self.spot_qty), _text(self.perp_qty), self.entry_basis_bps, self.exit_basis_bps,
                             self.funding_usd, self.fees_usd, self.pnl_usd, self.opened_ms, self.closed_ms, ts_ns)

    def record(self, registry: Registry) -> dict[str, object]:
        """For the ``carries`` control answer (the detector's restart, ``draizer status``)."""
        return {"carry_id": self.carry_id, "symbol": registry.symbol(self.symbol),
                "spot_venue": registry.venue(self.spot_venue) if self.spot_venue >= 0 else "",
                "perp_venue": registry.venue(self.perp_venue), "state": self.state,
                "spot_qty": _text(self.spot_qty), "perp_qty": _text(self.perp_qty),
                "entry_basis_bps": self.entry_basis_bps, "exit_basis_bps": self.exit_basis_bps,
                "funding_usd": self.funding_usd, "fees_usd": self.fees_usd, "pnl_usd": self.pnl_usd,
                "opened_ms": self.opened_ms, "closed_ms": self.closed_ms}


def _text(d: Decimal) -> str:
    return format(d.normalize(), "f") if d else "0"


def funding_key(venue: int, payment_id: str) -> str:
    return f"{venue}:{payment_id}"


def is_open(exe: Execution, perp_venues: frozenset[int]) -> bool | None:
    """True for a carry's OPEN execution, False for its CLOSE (the planned perpetual leg sells to open and buys
    to close), None when no planned perpetual leg was sent (an abort)."""
    for f in exe.legs:
        if f.role == ROLE_LEG and f.venue in perp_venues:
            return f.side != SIDE_BUY
    return None


class CarryBook:
    def __init__(self, registry: Registry, perp_venues: Iterable[int]) -> None:
        self.registry = registry
        self.perp_venues = frozenset(perp_venues)
        self.open: dict[int, Carry] = {}  # by symbol: at most one carry per symbol (the detector's rule too)
        self.closed: deque[Carry] = deque(maxlen=CLOSED_KEPT)
        self.funding_keys: set[str] = set()  # payments already booked (venue:payment id)
        self.first_open_ms = 0  # wall clock of the session's first carry: funding before it is not ours

    # ----- executions
    def on_execution(self, exe: Execution, wall_ms: int) -> Carry | None:
        """Apply a booked execution; the carry it changed (None: not a carry's, or it moved nothing)."""
        if exe.strategy != STRATEGY_FUNDING:
            return None
        if exe.outcome == OUTCOME_FUNDING:
            return self._funding(exe)
        opening = is_open(exe, self.perp_venues)
        if opening is None:
            return None
        base = self.registry.symbols[exe.symbol].base
        moved = {(d.venue, d.asset): Decimal(d.delta) for d in exe.deltas if d.asset == base}
        if not any(moved.values()):
            return None  # missed, rejected, or unwound to nothing: no position
        carry = self.open.get(exe.symbol)
        if carry is None:
            spot, perp = self._venues(exe)
            carry = Carry(exe.opportunity_id, exe.symbol, spot, perp, opened_ms=wall_ms)
            self.open[exe.symbol] = carry
            if not self.first_open_ms:
                self.first_open_ms = wall_ms
        carry.spot_qty += moved.get((carry.spot_venue, base), ZERO)
        carry.perp_qty += moved.get((carry.perp_venue, base), ZERO)
        carry.fees_usd += exe.fees_usd
        carry.pnl_usd += exe.pnl_usd
        basis = _basis_bps(exe, carry)
        if opening:
            carry.entry_basis_bps = basis if basis is not None else carry.entry_basis_bps
        else:
            carry.exit_basis_bps = basis if basis is not None else carry.exit_basis_bps
        if carry.perp_qty == 0 and self._dust(carry):
            carry.state = CLOSED
            carry.closed_ms = wall_ms
            del self.open[exe.symbol]
            self.closed.append(carry)
        return carry

    def _venues(self, exe: Execution) -> tuple[int, int]:
        spot, perp = -1, -1
        for f in exe.legs:
            if f.role != ROLE_LEG:
                continue
            if f.venue in self.perp_venues:
                perp = f.venue
            else:
                spot = f.venue
        return spot, perp

    def _dust(self, carry: Carry) -> bool:
        """The spot side holds less than one step: nothing a venue would take (residual inventory)."""
        if carry.spot_venue < 0:
            return True
        step = Decimal(str(self.registry.step[carry.spot_venue][carry.symbol]))
        return abs(carry.spot_qty) < step

    # ----- funding
    def _funding(self, exe: Execution) -> Carry | None:
        key = exe.note[len(FUNDING_NOTE):] if exe.note.startswith(FUNDING_NOTE) else ""
        if key:
            self.funding_keys.add(key)
        carry = self.open.get(exe.symbol)
        if carry is None or carry.perp_venue != exe.sell_venue:
            return None
        carry.funding_usd += exe.pnl_usd
        carry.pnl_usd += exe.pnl_usd
        return carry

    def carry_of(self, venue: int, symbol: int) -> int:
        carry = self.open.get(symbol)
        return carry.carry_id if carry is not None and carry.perp_venue == venue else 0

    # ----- closing
    def close_legs(self, opp: Opportunity) -> tuple[Leg, ...] | str:
        """The CLOSE's legs sized to what the carry holds, or why it cannot be closed."""
        carry = self.open.get(opp.symbol)
        if carry is None:
            return f"no open carry on {self.registry.symbol(opp.symbol)} to close"
        legs: list[Leg] = []
        for leg in opp.legs:
            if leg.venue == carry.perp_venue:
                held = -carry.perp_qty  # a short closes with a buy
            elif leg.venue == carry.spot_venue:
                step = Decimal(str(self.registry.step[leg.venue][leg.symbol]))
                held = (carry.spot_qty / step).to_integral_value(rounding=ROUND_FLOOR) * step
            else:
                return f"close leg on {self.registry.venue(leg.venue)}: the carry is not on it"
            if held <= 0:
                continue  # nothing held on that side: no order
            legs.append(Leg(leg.venue, leg.symbol, leg.side, leg.price, float(held), leg.quote_usd, leg.quote_ns))
        if not legs:
            return f"the carry on {self.registry.symbol(opp.symbol)} holds nothing to close"
        return tuple(legs)

    def snapshot(self) -> dict[str, list[dict[str, object]]]:
        return {"open": [c.record(self.registry) for c in self.open.values()],
                "closed": [c.record(self.registry) for c in self.closed]}


def _basis_bps(exe: Execution, carry: Carry) -> float | None:
    """(perp average - spot average) / spot average of the planned legs' fills, in bps; None when one side did
    not trade (unhedged: no basis)."""
    spot_q = spot_n = perp_q = perp_n = ZERO
    for f in exe.legs:
        if f.role != ROLE_LEG:
            continue
        if f.venue == carry.perp_venue:
            perp_q += Decimal(f.filled_qty)
            perp_n += Decimal(f.quote_qty)
        elif f.venue == carry.spot_venue:
            spot_q += Decimal(f.filled_qty)
            spot_n += Decimal(f.quote_qty)
    if not spot_q or not perp_q:
        return None
    spot_px, perp_px = spot_n / spot_q, perp_n / perp_q
    return float((perp_px - spot_px) / spot_px * 10_000)
