"""The shared-memory file's binary layout: a versioned header with a names block, then one fixed-size body.

    offset  field
    0       magic b"DRAIZER\\0"
    8       layout version, header size, body size, writer pid, ring size,
            venues, symbols, services, table capacities (u32 each, little-endian)
    72      sequence counter (u64)        } native order, 8-byte aligned, each read and written as one
    80      last write monotonic ns (u64) } machine word (see seqlock.py)
    88      the writer: when it started (wall clock ms, i64) and its run's session (SESSION_BYTES, NUL-padded)
    160     names block: venues, symbols, services, NAME_BYTES each, NUL-padded (written once)
    header  body: scalars, labelled tables, stage latencies, services (state, counters, gauges), opportunity
            ring, bids, asks, funding rates, next funding times, book states, carries, funding totals, the PnL
            split, unwind causes

The writer's identity lets a reader tell this run's numbers from a file an earlier run left behind: `draizer run`
shows nothing until the file's session is its own, `draizer status` marks a dead writer's numbers as the last
run's.

The body size follows from the counts in the header, so a reader needs nothing but the file. Labelled tables
(rejections by reason, orders by status…) carry their labels inside the body: they appear at run time.
Any change to this layout bumps LAYOUT_VERSION.
"""

from __future__ import annotations

import functools
import itertools
import struct
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from shared.errors import DraizerError
from shared.shm.snapshot import (
    MAX_LEGS,
    SERVICE_STATES,
    CarryRecord,
    FundingTotal,
    LegRecord,
    OpportunityRecord,
    PnlSplit,
    ServiceHealth,
    Snapshot,
    StageLatency,
    UnwindCause,
)

MAGIC = b"DRAIZER\0"
LAYOUT_VERSION = 5
NAME_BYTES = 48  # "feed." + a 32-character venue name fits
LABEL_BYTES = 40
MAX_REASONS = 24  # risk has 20 refusal reasons (services/risk/rules.py REASONS)
MAX_STATUSES = 16
MAX_OUTCOMES = 8
MAX_STAGES = 16
MAX_SERVICE_COUNTERS = 48  # risk reports 34: a decision counter per reason, then its own
MAX_SERVICE_GAUGES = 16  # risk reports 12 (its halt state among them: shared/halt.py)
MAX_CAUSES = 8  # unwind causes (services/bridge/unwinds.py has 5)
SESSION_BYTES = 64  # a run's session name (shared/runtime/session.py: ~25 characters)
MAX_CARRIES = 64  # carry positions shown: every open one first, then the latest closed ones
MAX_FUNDING_TOTALS = 16  # (venue, asset) pairs funding was booked in
QTY_BYTES = 40  # exact decimal text of a quantity or an amount
ASSET_BYTES = 16

_FIXED = struct.Struct("<8s15I")
SEQ_OFFSET = 72
WRITE_NS_OFFSET = 80
WRITER_OFFSET = 88
_WRITER = struct.Struct(f"<q{SESSION_BYTES}s")
NAMES_OFFSET = WRITER_OFFSET + _WRITER.size
_ALIGN = 64

_SCALARS = struct.Struct("<6q2d")  # taken_ns, opportunities, approved, rejected, fills, n_recent, pnl, fees
_COUNT = struct.Struct(f"<{LABEL_BYTES}sq")
_STAGE = struct.Struct(f"<{LABEL_BYTES}sq3d")
_SERVICE = struct.Struct("<3q")  # state code, pid, heartbeat_ns; then its counter table, then its gauge table
_GAUGE = struct.Struct(f"<{LABEL_BYTES}sd")
_SPLIT = struct.Struct("<3d")  # PnlSplit: filled, unwind, other
_CAUSE = struct.Struct(f"<{LABEL_BYTES}sqdq")  # cause, count, quote age sum (ms), ages known
_RECORD = struct.Struct("<q4i3d2iq")  # OpportunityRecord: id, strategy, action, symbol, n_legs, …
_LEG = struct.Struct("<3i2dq")  # LegRecord, MAX_LEGS of them after each record
_RECORD_SIZE = _RECORD.size + MAX_LEGS * _LEG.size
_CARRY_COUNTS = struct.Struct("<4q")  # carries in the table, open, closed (all of this run), funding totals
# CarryRecord: carry_id, symbol, spot venue, perp venue, state, spot qty, perp qty, entry/exit basis, funding,
# fees, pnl, notional, opened_ms, closed_ms, updated_ns
_CARRY = struct.Struct(f"<q4i{QTY_BYTES}s{QTY_BYTES}s6d3q")
_FUNDING_TOTAL = struct.Struct(f"<i{ASSET_BYTES}s{QTY_BYTES}s2dq")  # venue, asset, amount, received, paid, payments
_CAPACITIES = (
    MAX_REASONS,
    MAX_STATUSES,
    MAX_OUTCOMES,
    MAX_STAGES,
    MAX_SERVICE_COUNTERS,
    LABEL_BYTES,
    NAME_BYTES,
)
_STATE_CODE = {name: code for code, name in enumerate(SERVICE_STATES)}


class ShmError(DraizerError):
    """Shared memory is missing, of another layout, or could not be read consistently."""


class ShmMissingError(ShmError):
    pass


class ShmLayoutError(ShmError):
    pass


class WriterInfo(NamedTuple):
    """Who writes a shared-memory file: its process, when it started, and the run it belongs to."""

    pid: int
    started_ms: int  # wall clock
    session: str  # shared/runtime/session.py; "" when the writer was given none


def session_tag(session: str) -> str:
    """``session`` as the header holds it: at most SESSION_BYTES of UTF-8 (compare sessions through this)."""
    return session.encode()[:SESSION_BYTES].decode(errors="ignore").replace("\0", "")


def _round_up(n: int, to: int = _ALIGN) -> int:
    return (n + to - 1) // to * to


@functools.lru_cache(maxsize=4096)  # labels are a small fixed vocabulary, packed on every publish
def _label(text: str, what: str) -> bytes:
    raw = text.encode()
    if not raw or len(raw) > LABEL_BYTES or b"\0" in raw:
        raise ValueError(f"{what} label {text!r} must be 1..{LABEL_BYTES} bytes without NUL")
    return raw


def _text(raw: bytes) -> str:
    return raw.rstrip(b"\0").decode()


def _fixed(text: str, size: int, what: str) -> bytes:
    """Text for a fixed-size field: refused, never cut, when it does not fit (an exact quantity cut is wrong)."""
    raw = text.encode()
    if len(raw) > size or b"\0" in raw:
        raise ValueError(f"{what} {text!r} must be at most {size} bytes without NUL")
    return raw


class Layout:
    """Sizes and offsets for one set of venues, symbols and services; packs and unpacks the body."""

    def __init__(
        self, venues: Sequence[str], symbols: Sequence[str], services: Sequence[str], ring_size: int = 64
    ) -> None:
        if ring_size <= 0:
            raise ValueError(f"ring_size must be > 0, got {ring_size}")
        self.venues = tuple(venues)
        self.symbols = tuple(symbols)
        self.services = tuple(services)
        self.ring_size = ring_size
        for name in (*self.venues, *self.symbols, *self.services):
            raw = name.encode()
            if not raw or len(raw) > NAME_BYTES or b"\0" in raw:
                raise ValueError(f"name {name!r} must be 1..{NAME_BYTES} bytes without NUL")
        n_names = len(self.venues) + len(self.symbols) + len(self.services)
        self.header_size = _round_up(NAMES_OFFSET + n_names * NAME_BYTES)
        n_prices = len(self.venues) * len(self.symbols)
        self._prices = struct.Struct(f"<{n_prices}d")
        self._service_size = _SERVICE.size + MAX_SERVICE_COUNTERS * _COUNT.size + MAX_SERVICE_GAUGES * _GAUGE.size
        offset = 0
        self._off_scalars, offset = offset, offset + _SCALARS.size
        self._off_reasons, offset = offset, offset + MAX_REASONS * _COUNT.size
        self._off_statuses, offset = offset, offset + MAX_STATUSES * _COUNT.size
        self._off_outcomes, offset = offset, offset + MAX_OUTCOMES * _COUNT.size
        self._off_stages, offset = offset, offset + MAX_STAGES * _STAGE.size
        self._off_services, offset = offset, offset + len(self.services) * self._service_size
        self._off_ring, offset = offset, offset + ring_size * _RECORD_SIZE
        self._off_bids, offset = offset, offset + self._prices.size
        self._off_asks, offset = offset, offset + self._prices.size
        self._off_funding, offset = offset, offset + self._prices.size
        self._off_funding_next, offset = offset, offset + self._prices.size
        self._off_book_states, offset = offset, offset + self._prices.size
        self._off_carry_counts, offset = offset, offset + _CARRY_COUNTS.size
        self._off_carries, offset = offset, offset + MAX_CARRIES * _CARRY.size
        self._off_funding_totals, offset = offset, offset + MAX_FUNDING_TOTALS * _FUNDING_TOTAL.size
        self._off_split, offset = offset, offset + _SPLIT.size
        self._off_causes, offset = offset, offset + MAX_CAUSES * _CAUSE.size
        self.body_size = offset
        self.total_size = _round_up(self.header_size + self.body_size)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Layout):
            return NotImplemented
        return (self.venues, self.symbols, self.services, self.ring_size) == (
            other.venues,
            other.symbols,
            other.services,
            other.ring_size,
        )

    def __hash__(self) -> int:
        return hash((self.venues, self.symbols, self.services, self.ring_size))

    # ----- header
    def pack_header(self, writer: WriterInfo) -> bytes:
        """The whole header with sequence 0 (nothing published yet)."""
        buf = bytearray(self.header_size)
        _FIXED.pack_into(buf, 0, MAGIC, *self._fixed_fields(writer.pid))
        _WRITER.pack_into(buf, WRITER_OFFSET, writer.started_ms, session_tag(writer.session).encode())
        for i, name in enumerate((*self.venues, *self.symbols, *self.services)):
            struct.pack_into(f"{NAME_BYTES}s", buf, NAMES_OFFSET + i * NAME_BYTES, name.encode())
        return bytes(buf)

    def _fixed_fields(self, writer_pid: int) -> tuple[int, ...]:
        return (
            LAYOUT_VERSION,
            self.header_size,
            self.body_size,
            writer_pid,
            self.ring_size,
            len(self.venues),
            len(self.symbols),
            len(self.services),
            *_CAPACITIES,
        )

    @classmethod
    def from_header(cls, data: bytes, source: str = "shared memory") -> tuple[Layout, WriterInfo]:
        """The layout a header describes, and its writer; ShmLayoutError if it is not ours."""
        if len(data) < NAMES_OFFSET:
            raise ShmLayoutError(f"{source}: too small for a draizer header ({len(data)} bytes)")
        magic, version, header_size, body_size, pid, ring, n_v, n_s, n_svc, *caps = _FIXED.unpack_from(data)
        if magic != MAGIC:
            raise ShmLayoutError(f"{source}: not a draizer shared-memory file (magic {magic!r})")
        if version != LAYOUT_VERSION:
            raise ShmLayoutError(f"{source}: layout version {version}, this draizer reads version {LAYOUT_VERSION}")
        mismatch = ShmLayoutError(f"{source}: sizes in the header do not match layout version {version}")
        if tuple(caps) != _CAPACITIES:
            raise mismatch
        if len(data) < header_size:
            raise ShmLayoutError(f"{source}: header truncated ({len(data)} < {header_size} bytes)")
        try:
            names = [
                _text(data[NAMES_OFFSET + i * NAME_BYTES : NAMES_OFFSET + (i + 1) * NAME_BYTES])
                for i in range(n_v + n_s + n_svc)
            ]
            layout = cls(names[:n_v], names[n_v : n_v + n_s], names[n_v + n_s :], ring)
        except ValueError as exc:  # UnicodeDecodeError included
            raise ShmLayoutError(f"{source}: corrupt names block: {exc}") from None
        if (header_size, body_size) != (layout.header_size, layout.body_size):
            raise mismatch
        started_ms, session = _WRITER.unpack_from(data, WRITER_OFFSET)
        try:
            return layout, WriterInfo(pid, started_ms, _text(session))
        except UnicodeDecodeError:
            raise ShmLayoutError(f"{source}: corrupt writer session {session!r}") from None

    # ----- body
    def pack_body(self, snap: Snapshot) -> bytes:
        if snap.venues != self.venues or snap.symbols != self.symbols:
            raise ValueError("snapshot venues/symbols differ from the layout's")
        if tuple(snap.services) != self.services:
            raise ValueError(f"snapshot services {list(snap.services)} differ from {list(self.services)}")
        if len(snap.recent) > self.ring_size:
            raise ValueError(f"{len(snap.recent)} recent opportunities exceed the ring size {self.ring_size}")
        buf = bytearray(self.body_size)
        _SCALARS.pack_into(
            buf,
            self._off_scalars,
            snap.taken_ns,
            snap.opportunities,
            snap.approved,
            snap.rejected,
            snap.fills,
            len(snap.recent),
            snap.pnl_usd,
            snap.fees_usd,
        )
        _pack_counts(buf, self._off_reasons, MAX_REASONS, snap.rejections, "rejection")
        _pack_counts(buf, self._off_statuses, MAX_STATUSES, snap.orders, "order status")
        _pack_counts(buf, self._off_outcomes, MAX_OUTCOMES, snap.executions, "outcome")
        if len(snap.latency) > MAX_STAGES:
            raise ValueError(f"{len(snap.latency)} latency stages exceed {MAX_STAGES}")
        for i, (stage, lat) in enumerate(snap.latency.items()):
            _STAGE.pack_into(
                buf,
                self._off_stages + i * _STAGE.size,
                _label(stage, "stage"),
                lat.count,
                lat.avg_ns,
                lat.p50_ns,
                lat.p99_ns,
            )
        for i, health in enumerate(snap.services.values()):
            off = self._off_services + i * self._service_size
            _SERVICE.pack_into(buf, off, _STATE_CODE.get(health.state, 0), health.pid, health.heartbeat_ns)
            _pack_counts(buf, off + _SERVICE.size, MAX_SERVICE_COUNTERS, health.counters, "counter")
            _pack_gauges(buf, off + _SERVICE.size + MAX_SERVICE_COUNTERS * _COUNT.size, health.gauges)
        for i, r in enumerate(snap.recent):
            off = self._off_ring + i * _RECORD_SIZE
            legs = r.legs[:MAX_LEGS]
            _RECORD.pack_into(
                buf, off, r.id, r.strategy, r.action, r.symbol, len(legs), r.notional_usd, r.spread_bps,
                r.expected_profit_usd, r.decision, r.reason, r.detected_ns,
            )
            for k, leg in enumerate(legs):
                _LEG.pack_into(
                    buf, off + _RECORD.size + k * _LEG.size, leg.venue, leg.symbol, leg.side, leg.price, leg.qty,
                    leg.age_ns,
                )
        self._prices.pack_into(buf, self._off_bids, *_flat(snap.bids, self._prices.size // 8))
        self._prices.pack_into(buf, self._off_asks, *_flat(snap.asks, self._prices.size // 8))
        self._prices.pack_into(buf, self._off_funding, *_flat(snap.funding_rates, self._prices.size // 8))
        self._prices.pack_into(buf, self._off_funding_next, *_flat(snap.funding_next_ms, self._prices.size // 8))
        self._prices.pack_into(buf, self._off_book_states, *_flat(snap.book_states, self._prices.size // 8))
        self._pack_carries(buf, snap)
        split = snap.pnl_split
        _SPLIT.pack_into(buf, self._off_split, split.filled_usd, split.unwind_usd, split.other_usd)
        if len(snap.unwind_causes) > MAX_CAUSES:
            raise ValueError(f"{len(snap.unwind_causes)} unwind causes exceed the {MAX_CAUSES} slots")
        for i, (cause, c) in enumerate(snap.unwind_causes.items()):
            _CAUSE.pack_into(buf, self._off_causes + i * _CAUSE.size, _label(cause, "unwind cause"), c.count,
                             c.quote_age_ms_sum, c.quote_ages)
        return bytes(buf)

    def _pack_carries(self, buf: bytearray, snap: Snapshot) -> None:
        if len(snap.carries) > MAX_CARRIES:
            raise ValueError(f"{len(snap.carries)} carries exceed the {MAX_CARRIES} slots")
        if len(snap.funding_totals) > MAX_FUNDING_TOTALS:
            raise ValueError(f"{len(snap.funding_totals)} funding totals exceed the {MAX_FUNDING_TOTALS} slots")
        _CARRY_COUNTS.pack_into(
            buf, self._off_carry_counts, len(snap.carries), snap.carries_open, snap.carries_closed,
            len(snap.funding_totals),
        )
        for i, c in enumerate(snap.carries):
            _CARRY.pack_into(
                buf, self._off_carries + i * _CARRY.size, c.carry_id, c.symbol, c.spot_venue, c.perp_venue, c.state,
                _fixed(c.spot_qty, QTY_BYTES, "spot qty"), _fixed(c.perp_qty, QTY_BYTES, "perp qty"),
                c.entry_basis_bps, c.exit_basis_bps, c.funding_usd, c.fees_usd, c.pnl_usd, c.notional_usd,
                c.opened_ms, c.closed_ms, c.updated_ns,
            )
        for i, t in enumerate(snap.funding_totals):
            _FUNDING_TOTAL.pack_into(
                buf, self._off_funding_totals + i * _FUNDING_TOTAL.size, t.venue, _fixed(t.asset, ASSET_BYTES, "asset"),
                _fixed(t.amount, QTY_BYTES, "funding amount"), t.received_usd, t.paid_usd, t.payments,
            )

    def _unpack_carries(self, data: bytes) -> dict[str, Any]:
        n_carries, n_open, n_closed, n_totals = _CARRY_COUNTS.unpack_from(data, self._off_carry_counts)
        carries = []
        for i in range(min(n_carries, MAX_CARRIES)):
            cid, sym, spot, perp, state, spot_qty, perp_qty, *floats, opened, closed, updated = _CARRY.unpack_from(
                data, self._off_carries + i * _CARRY.size
            )
            carries.append(CarryRecord(cid, sym, spot, perp, state, _text(spot_qty), _text(perp_qty), *floats,
                                       opened, closed, updated))
        totals = []
        for i in range(min(n_totals, MAX_FUNDING_TOTALS)):
            venue, asset, amount, received, paid, payments = _FUNDING_TOTAL.unpack_from(
                data, self._off_funding_totals + i * _FUNDING_TOTAL.size
            )
            totals.append(FundingTotal(venue, _text(asset), _text(amount), received, paid, payments))
        return {"carries": tuple(carries), "carries_open": n_open, "carries_closed": n_closed,
                "funding_totals": tuple(totals)}

    def unpack_body(self, data: bytes) -> Snapshot:
        taken, opps, approved, rejected, fills, n_recent, pnl, fees = _SCALARS.unpack_from(data, self._off_scalars)
        latency: dict[str, StageLatency] = {}
        for i in range(MAX_STAGES):
            stage, count, avg, p50, p99 = _STAGE.unpack_from(data, self._off_stages + i * _STAGE.size)
            if stage[0] == 0:
                break
            latency[_text(stage)] = StageLatency(count, avg, p50, p99)
        services: dict[str, ServiceHealth] = {}
        for i, name in enumerate(self.services):
            off = self._off_services + i * self._service_size
            code, pid, heartbeat = _SERVICE.unpack_from(data, off)
            state = SERVICE_STATES[code] if 0 <= code < len(SERVICE_STATES) else SERVICE_STATES[0]
            counters = _unpack_counts(data, off + _SERVICE.size, MAX_SERVICE_COUNTERS)
            gauges = _unpack_gauges(data, off + _SERVICE.size + MAX_SERVICE_COUNTERS * _COUNT.size)
            services[name] = ServiceHealth(state, pid, heartbeat, counters, gauges)
        n_recent = min(n_recent, self.ring_size)
        recent = tuple(_unpack_record(data, self._off_ring + i * _RECORD_SIZE) for i in range(n_recent))
        n_s = len(self.symbols)
        bids = self._prices.unpack_from(data, self._off_bids)
        asks = self._prices.unpack_from(data, self._off_asks)
        funding = self._prices.unpack_from(data, self._off_funding)
        funding_next = self._prices.unpack_from(data, self._off_funding_next)
        book_states = self._prices.unpack_from(data, self._off_book_states)

        def rows(flat: tuple[float, ...]) -> tuple[tuple[float, ...], ...]:
            return tuple(flat[v * n_s : (v + 1) * n_s] for v in range(len(self.venues)))

        return Snapshot(
            taken_ns=taken,
            venues=self.venues,
            symbols=self.symbols,
            opportunities=opps,
            approved=approved,
            rejected=rejected,
            rejections=_unpack_counts(data, self._off_reasons, MAX_REASONS),
            orders=_unpack_counts(data, self._off_statuses, MAX_STATUSES),
            fills=fills,
            executions=_unpack_counts(data, self._off_outcomes, MAX_OUTCOMES),
            pnl_usd=pnl,
            fees_usd=fees,
            latency=latency,
            services=services,
            recent=recent,
            bids=rows(bids),
            asks=rows(asks),
            funding_rates=rows(funding),
            funding_next_ms=rows(funding_next),
            book_states=rows(book_states),
            **self._unpack_carries(data),
            pnl_split=PnlSplit(*_SPLIT.unpack_from(data, self._off_split)),
            unwind_causes=_unpack_causes(data, self._off_causes),
        )


def _unpack_record(data: bytes, off: int) -> OpportunityRecord:
    oid, strategy, action, symbol, n_legs, notional, spread, profit, decision, reason, detected = _RECORD.unpack_from(
        data, off
    )
    legs = tuple(
        LegRecord(*_LEG.unpack_from(data, off + _RECORD.size + k * _LEG.size)) for k in range(min(n_legs, MAX_LEGS))
    )
    return OpportunityRecord(oid, strategy, action, symbol, legs, notional, spread, profit, decision, reason, detected)


def _pack_counts(buf: bytearray, offset: int, capacity: int, counts: dict[str, int], what: str) -> None:
    if len(counts) > capacity:
        raise ValueError(f"{len(counts)} {what} labels exceed the {capacity} slots (use fit_labels)")
    for i, (label, value) in enumerate(counts.items()):
        _COUNT.pack_into(buf, offset + i * _COUNT.size, _label(label, what), value)


def _pack_gauges(buf: bytearray, offset: int, gauges: Mapping[str, float]) -> None:
    if len(gauges) > MAX_SERVICE_GAUGES:
        raise ValueError(f"{len(gauges)} gauges exceed the {MAX_SERVICE_GAUGES} slots (use fit_gauges)")
    for i, (name, value) in enumerate(gauges.items()):
        _GAUGE.pack_into(buf, offset + i * _GAUGE.size, _label(name, "gauge"), value)


def _unpack_gauges(data: bytes, offset: int) -> dict[str, float]:
    out: dict[str, float] = {}
    for i in range(MAX_SERVICE_GAUGES):
        label, value = _GAUGE.unpack_from(data, offset + i * _GAUGE.size)
        if label[0] == 0:
            break
        out[_text(label)] = value
    return out


def _unpack_causes(data: bytes, offset: int) -> dict[str, UnwindCause]:
    out: dict[str, UnwindCause] = {}
    for i in range(MAX_CAUSES):
        label, count, age_sum, ages = _CAUSE.unpack_from(data, offset + i * _CAUSE.size)
        if label[0] == 0:
            break
        out[_text(label)] = UnwindCause(count, age_sum, ages)
    return out


def fit_gauges(gauges: Mapping[str, float]) -> dict[str, float]:
    """A service's gauges as shared memory holds them: names that fit a label, the first MAX_SERVICE_GAUGES (a
    gauge cannot be summed into "other" as a count can: the rest are left out; Prometheus has them all)."""
    out: dict[str, float] = {}
    for name, value in gauges.items():
        if len(out) == MAX_SERVICE_GAUGES:
            break
        raw = name.encode()
        if raw and len(raw) <= LABEL_BYTES and b"\0" not in raw:
            out[name] = value
    return out


def _unpack_counts(data: bytes, offset: int, capacity: int) -> dict[str, int]:
    out: dict[str, int] = {}
    for i in range(capacity):
        label, value = _COUNT.unpack_from(data, offset + i * _COUNT.size)
        if label[0] == 0:  # slots fill from the front: the first empty one ends the table
            break
        out[_text(label)] = value
    return out


def _flat(rows: tuple[tuple[float, ...], ...], expected: int) -> list[float]:
    flat = list(itertools.chain.from_iterable(rows))
    if not flat:
        return [0.0] * expected  # a grid the writer does not fill (no feed reports it yet)
    if len(flat) != expected:
        raise ValueError(f"price grid has {len(flat)} cells, the layout {expected}")
    return flat
