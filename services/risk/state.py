"""Risk state that must survive a restart, and the file that holds it.

What is kept: the UTC day and its realized PnL, positions (per venue and asset, exact decimal text), the
breakers (open until when, plus the recent loss/failure history their windows need), the kill switch, the
executions in flight with what they reserved, the run's ("session") PnL, and how far risk has booked the
executor's numbered executions (``services/risk/catchup.py``): PnL and that mark are written together, so a
restart neither misses an execution nor books one twice. Money state is never reset silently: a file that does not
decode stops the start with an error naming it; only a missing file starts fresh.

Writes are atomic: a temporary file in the same directory is written and fsynced, renamed over the old one,
and the directory is fsynced so the rename itself is durable. A crash at any point leaves either the old
file or the new one, never a torn one.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path

import msgspec
from msgspec import Struct

from shared.durable import fsync_dir
from shared.errors import DraizerError

FILE_VERSION = 1
NS_PER_DAY = 86_400 * 1_000_000_000
MS_PER_DAY = 86_400_000


class StateError(DraizerError):
    """The risk state file exists but cannot be read or does not decode."""


def utc_day(wall_ns: int) -> int:
    return wall_ns // NS_PER_DAY


@dataclass(frozen=True)
class Reservation:
    """What an approved opportunity holds until its Execution arrives (or 120 s pass)."""

    wall_ms: int  # when it was approved (wall clock: it survives a restart)
    slots: tuple[tuple[int, int], ...]  # (venue, symbol) of each leg: busy while in flight
    amounts: tuple[tuple[int, str, float], ...]  # (venue, asset, amount) the legs may spend
    orders: tuple[tuple[int, int], ...]  # (venue, orders) the legs send


@dataclass
class BreakerState:
    loss_until_ms: int = 0  # wall clock; 0: closed
    failure_until_ms: int = 0
    orphan: bool = False  # latched by an orphaned execution until an operator resumes
    orphan_note: str = ""
    losses: list[tuple[int, float]] = field(default_factory=list)  # (wall ms, pnl usd) inside the loss window
    failures: list[tuple[int, str]] = field(default_factory=list)  # (wall ms, outcome) inside the failure window
    # The funding carry's own failure breaker: its orders go to other venues (perpetuals) than the spot strategies',
    # so unwound cross-exchange pairs say nothing about them, and the reverse.
    carry_failure_until_ms: int = 0
    carry_failures: list[tuple[int, str]] = field(default_factory=list)


@dataclass
class RiskState:
    day: int  # UTC day number (days since the epoch) daily_pnl_usd belongs to
    daily_pnl_usd: float = 0.0
    positions: dict[str, dict[str, Decimal]] = field(default_factory=dict)  # venue name -> asset -> amount
    breakers: BreakerState = field(default_factory=BreakerState)
    kill: bool = False
    in_flight: dict[int, Reservation] = field(default_factory=dict)  # opportunity id -> reservation
    session: str = ""  # the run session_pnl_usd belongs to (shared.runtime.session.current_session)
    session_pnl_usd: float = 0.0  # booked in this run, across restarts of risk (the settlement compares it)
    executor_session: str = ""  # whose numbering executor_seq follows
    executor_seq: int = 0  # every execution the executor numbered up to here is booked
    # Executions booked as published whose number executor_seq has not reached yet: opportunity id -> wall ms
    ahead: dict[int, int] = field(default_factory=dict)

    def roll_day(self, wall_ns: int) -> bool:
        """At UTC midnight the daily PnL starts again from zero (positions carry over)."""
        today = utc_day(wall_ns)
        if today == self.day:
            return False
        self.day = today
        self.daily_pnl_usd = 0.0
        return True


# ----- the file's schema: named fields (it is persisted across versions), unknown fields refused


class _Reservation(Struct, forbid_unknown_fields=True):
    opportunity_id: int
    wall_ms: int
    slots: list[tuple[int, int]]
    amounts: list[tuple[int, str, float]]
    orders: list[tuple[int, int]]


class _Breakers(Struct, forbid_unknown_fields=True):
    loss_until_ms: int
    failure_until_ms: int
    orphan: bool
    orphan_note: str
    losses: list[tuple[int, float]]
    failures: list[tuple[int, str]]
    carry_failure_until_ms: int = 0  # absent in a file written before the carry traded
    carry_failures: list[tuple[int, str]] = []


class _File(Struct, forbid_unknown_fields=True):
    version: int
    saved_ms: int
    # Reservations name venues and symbols by registry id (positions in the config lists); the layout they
    # were written under is kept so a reordered config cannot make them point at the wrong market.
    venues: list[str]
    symbols: list[str]
    day: int
    daily_pnl_usd: float
    positions: dict[str, dict[str, str]]
    kill: bool
    breakers: _Breakers
    in_flight: list[_Reservation]
    # Added later: absent from older files, which read as a new run.
    session: str = ""
    session_pnl_usd: float = 0.0
    executor_session: str = ""
    executor_seq: int = 0
    ahead: list[tuple[int, int]] = []


_ENCODER = msgspec.json.Encoder()
_DECODER = msgspec.json.Decoder(_File)


def encode_state(state: RiskState, venues: tuple[str, ...], symbols: tuple[str, ...], saved_ms: int) -> bytes:
    b = state.breakers
    doc = _File(
        version=FILE_VERSION,
        saved_ms=saved_ms,
        venues=list(venues),
        symbols=list(symbols),
        day=state.day,
        daily_pnl_usd=state.daily_pnl_usd,
        positions={v: {a: format(q, "f") for a, q in assets.items()} for v, assets in state.positions.items()},
        kill=state.kill,
        breakers=_Breakers(
            b.loss_until_ms, b.failure_until_ms, b.orphan, b.orphan_note, list(b.losses), list(b.failures),
            b.carry_failure_until_ms, list(b.carry_failures),
        ),
        in_flight=[
            _Reservation(oid, r.wall_ms, list(r.slots), list(r.amounts), list(r.orders))
            for oid, r in state.in_flight.items()
        ],
        session=state.session,
        session_pnl_usd=state.session_pnl_usd,
        executor_session=state.executor_session,
        executor_seq=state.executor_seq,
        ahead=sorted(state.ahead.items()),
    )
    return _ENCODER.encode(doc)


def decode_state(
    data: bytes, venues: tuple[str, ...], symbols: tuple[str, ...], source: str
) -> tuple[RiskState, list[str]]:
    """The state in ``data`` and warnings (reservations dropped); StateError naming ``source`` if it is bad."""
    try:
        doc = _DECODER.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise StateError(
            f"risk state file {source} is corrupt ({exc}); it holds daily PnL, positions and breakers, so it is "
            "never reset silently: repair it, or move it away to start from zero on purpose"
        ) from None
    if doc.version != FILE_VERSION:
        raise StateError(f"risk state file {source}: version {doc.version}, this build reads {FILE_VERSION}")
    positions: dict[str, dict[str, Decimal]] = {}
    for venue, assets in doc.positions.items():
        for asset, text in assets.items():
            try:
                amount = Decimal(text)
            except InvalidOperation:
                amount = Decimal("NaN")
            if not amount.is_finite():
                raise StateError(f"risk state file {source}: position {venue}/{asset} is not a number: {text!r}")
            positions.setdefault(venue, {})[asset] = amount
    warnings: list[str] = []
    in_flight: dict[int, Reservation] = {}
    if doc.in_flight and (tuple(doc.venues) != venues or tuple(doc.symbols) != symbols):
        warnings.append(
            f"{len(doc.in_flight)} in-flight reservations dropped: the configured venues/symbols changed since "
            "they were written"
        )
    else:
        for r in doc.in_flight:
            in_flight[r.opportunity_id] = Reservation(r.wall_ms, tuple(r.slots), tuple(r.amounts), tuple(r.orders))
    b = doc.breakers
    breakers = BreakerState(
        b.loss_until_ms, b.failure_until_ms, b.orphan, b.orphan_note, list(b.losses), list(b.failures),
        b.carry_failure_until_ms, list(b.carry_failures),
    )
    state = RiskState(doc.day, doc.daily_pnl_usd, positions, breakers, doc.kill, in_flight, doc.session,
                      doc.session_pnl_usd, doc.executor_session, doc.executor_seq, dict(doc.ahead))
    return state, warnings


class StateStore:
    """One JSON file, replaced atomically. Thread-safe: lazy writes run in a worker thread while urgent
    ones run on the loop; a generation number keeps an older snapshot from overwriting a newer one."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        self._lock = threading.Lock()
        self._written = -1
        self.writes = 0

    def read(self) -> bytes | None:
        """The file's bytes; None when there is none yet (a first start)."""
        try:
            return self.path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StateError(f"risk state file {self.path}: cannot read: {exc.strerror}") from None

    def write(self, data: bytes, generation: int) -> bool:
        """Replace the file with ``data`` unless a newer generation is already on disk."""
        with self._lock:
            if generation <= self._written:
                return False
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self._tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(self._tmp, self.path)
            fsync_dir(self.path.parent)  # the rename is durable only once the directory entry is on disk
            self._written = generation
            self.writes += 1
            return True
