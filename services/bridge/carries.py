"""The bridge's book of spot-perpetual carries and of the funding booked this run (``CarryPosition`` and
``FundingPayment`` events from the executor).

Carries: the latest state per ``carry_id``, closed ones kept for the run. An update replaces the state held
only when it is newer: a closed state beats an open one, then the later ``ts_ns`` wins. PostgreSQL's
``carry_positions`` upsert applies the same rule, so a replayed or late update never reopens a closed carry.

Funding: exact sums (Decimal) per venue and asset, plus their USD value split by direction (received, paid: a
Prometheus counter must never go down); each payment counted once per (venue, payment_id), which the checkpoint
keeps, so an event the executor publishes twice is not counted twice either.

What the book cannot hold exactly (a quantity that is not a decimal, text too long for shared memory, an
unknown venue or symbol) is refused with the reason; the caller counts and logs it. Pure state, no lock: the
caller (``BridgeState``) holds its own.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal, InvalidOperation

from msgspec import Struct

from shared.messages import CarryPosition, FundingPayment
from shared.shm.layout import ASSET_BYTES, MAX_CARRIES, MAX_FUNDING_TOTALS, QTY_BYTES
from shared.shm.snapshot import CARRY_STATES, CarryRecord, FundingTotal

INT64 = (-(2**63), 2**63 - 1)
CLOSED = "closed"

# (venue, symbol) -> a price in USD per base unit, 0.0 when none is known
PriceOf = Callable[[int, int], float]


class CarryState(Struct):
    """What the bridge's checkpoint keeps of the book (the events before it are not replayed)."""

    carries: list[CarryPosition] = []
    funding: list[FundingTotal] = []
    seen: list[tuple[int, str]] = []  # (venue, payment_id) of every payment counted


class _Sum:
    __slots__ = ("amount", "paid_usd", "payments", "received_usd")

    def __init__(self, amount: Decimal = Decimal(0), received: float = 0.0, paid: float = 0.0, n: int = 0) -> None:
        self.amount = amount
        self.received_usd = received
        self.paid_usd = paid
        self.payments = n


def _exact(text: str, what: str) -> str | None:
    """Why ``text`` is not an exact decimal that fits shared memory (None: it is)."""
    if len(text.encode()) > QTY_BYTES:
        return f"{what} {text!r} longer than {QTY_BYTES} bytes"
    try:
        d = Decimal(text)
    except InvalidOperation:
        return f"{what} {text!r} is not a decimal"
    return None if d.is_finite() else f"{what} {text!r} is not finite"


def _rank(c: CarryPosition) -> tuple[bool, int]:
    return c.state == CLOSED, c.ts_ns


def _plain(d: Decimal) -> str:
    """Exact text without an exponent (Decimal's str gives 1E+1 or 0E-8 for some sums)."""
    return format(d, "f")


class CarryBook:
    def __init__(self, n_venues: int, n_symbols: int) -> None:
        self.n_venues = n_venues
        self.n_symbols = n_symbols
        self.carries: dict[int, CarryPosition] = {}  # carry_id -> latest, in the order first heard of
        self._funding: dict[tuple[int, str], _Sum] = {}  # (venue, asset)
        self._seen: set[tuple[int, str]] = set()
        self.n_stale = 0  # carry updates not newer than the state held (replays, reordering)
        self.n_duplicate_payments = 0

    # ----- events in
    def on_carry(self, c: CarryPosition) -> str | None:
        """Take one update; the reason it is refused, or None."""
        why = self._check_carry(c)
        if why is not None:
            return why
        held = self.carries.get(c.carry_id)
        if held is not None and _rank(c) <= _rank(held):  # strictly newer only, as the PostgreSQL upsert
            self.n_stale += 1
            return None
        self.carries[c.carry_id] = c
        return None

    def _check_carry(self, c: CarryPosition) -> str | None:
        if c.state not in CARRY_STATES:
            return f"carry {c.carry_id}: state {c.state!r} is not one of {CARRY_STATES}"
        if not all(INT64[0] <= n <= INT64[1] for n in (c.carry_id, c.opened_ms, c.closed_ms, c.ts_ns)):
            return f"carry {c.carry_id}: id or time out of range"
        if not (0 <= c.symbol < self.n_symbols and 0 <= c.perp_venue < self.n_venues):
            return f"carry {c.carry_id}: unknown symbol {c.symbol} or perp venue {c.perp_venue}"
        if not (c.spot_venue == -1 or 0 <= c.spot_venue < self.n_venues):
            return f"carry {c.carry_id}: unknown spot venue {c.spot_venue}"
        return _exact(c.spot_qty, "spot qty") or _exact(c.perp_qty, "perp qty")

    def on_funding(self, f: FundingPayment) -> str | None:
        """Count one payment (once per venue and payment id); the reason it is refused, or None."""
        if not (0 <= f.venue < self.n_venues and 0 <= f.symbol < self.n_symbols):
            return f"funding {f.payment_id!r}: unknown venue {f.venue} or symbol {f.symbol}"
        if not f.payment_id:
            return "funding payment without a payment id"
        raw_asset = f.asset.encode()
        if not raw_asset or len(raw_asset) > ASSET_BYTES or b"\0" in raw_asset:
            return f"funding {f.payment_id!r}: asset {f.asset!r} must be 1..{ASSET_BYTES} bytes without NUL"
        why = _exact(f.amount, "funding amount")
        if why is not None:
            return why
        key = (f.venue, f.payment_id)
        if key in self._seen:
            self.n_duplicate_payments += 1
            return None
        amount = Decimal(f.amount)
        total = self._funding.get((f.venue, f.asset))
        if total is None:
            total = self._funding[(f.venue, f.asset)] = _Sum()
        total.amount += amount
        # The direction follows the exact amount; the USD value is only its size.
        if amount >= 0:
            total.received_usd += abs(f.amount_usd)
        else:
            total.paid_usd += abs(f.amount_usd)
        total.payments += 1
        self._seen.add(key)
        return None

    # ----- checkpoint
    def state(self) -> CarryState:
        return CarryState(list(self.carries.values()), list(self.funding_totals()), sorted(self._seen))

    def restore(self, st: CarryState) -> None:
        self.carries = {c.carry_id: c for c in st.carries}
        self._funding = {
            (t.venue, t.asset): _Sum(Decimal(t.amount), t.received_usd, t.paid_usd, t.payments) for t in st.funding
        }
        self._seen = {(v, pid) for v, pid in st.seen}

    # ----- views out
    def counts(self) -> tuple[int, int]:
        """(open, closed) carries of this run."""
        closed = sum(1 for c in self.carries.values() if c.state == CLOSED)
        return len(self.carries) - closed, closed

    def funding_totals(self) -> tuple[FundingTotal, ...]:
        return tuple(
            FundingTotal(venue, asset, _plain(t.amount), t.received_usd, t.paid_usd, t.payments)
            for (venue, asset), t in self._funding.items()
        )

    def notional_usd(self, c: CarryPosition, price: PriceOf) -> float:
        """An open carry's size (its perpetual leg, else its spot leg) at the latest price; 0 once closed."""
        if c.state == CLOSED:
            return 0.0
        qty = abs(Decimal(c.perp_qty)) or abs(Decimal(c.spot_qty))
        px = price(c.perp_venue, c.symbol) or (price(c.spot_venue, c.symbol) if c.spot_venue >= 0 else 0.0)
        return float(qty) * px

    def records(self, price: PriceOf) -> tuple[CarryRecord, ...]:
        """What shared memory holds: every open carry (up to MAX_CARRIES), then the latest closed ones."""
        open_ = [c for c in self.carries.values() if c.state != CLOSED]
        closed = sorted((c for c in self.carries.values() if c.state == CLOSED), key=lambda c: c.closed_ms)
        room = max(0, MAX_CARRIES - len(open_))
        shown = open_[:MAX_CARRIES] + (closed[-room:] if room else [])
        return tuple(
            CarryRecord(
                c.carry_id, c.symbol, c.spot_venue, c.perp_venue, CARRY_STATES.index(c.state), c.spot_qty, c.perp_qty,
                c.entry_basis_bps, c.exit_basis_bps, c.funding_usd, c.fees_usd, c.pnl_usd, self.notional_usd(c, price),
                c.opened_ms, c.closed_ms, c.ts_ns,
            )
            for c in shown
        )

    def snapshot_totals(self) -> tuple[FundingTotal, ...]:
        """Funding totals as shared memory holds them: the first MAX_FUNDING_TOTALS (venue, asset) pairs."""
        return self.funding_totals()[:MAX_FUNDING_TOTALS]
