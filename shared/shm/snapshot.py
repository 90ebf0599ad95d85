"""What the bridge publishes: one ``Snapshot`` of the engine, and its JSON form for ``draizer status --json``.

Everything here is plain data, so the binary layout (``layout.py``) can round-trip it exactly and the JSON
form is the same whether it comes from the bridge's live state or from shared memory.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from msgspec import Struct

from shared.halt import halt_conditions
from shared.messages import ACTION_NAMES, STRATEGY_NAMES
from shared.runtime.endpoints import feed_service_name

# Codes stored in shared memory; the position is the code.
SERVICE_STATES = ("UNKNOWN", "READY", "STARTING", "RUNNING", "STOPPING", "STOPPED", "FAULTED")
DECISION_PENDING = 0
DECISION_APPROVED = 1
DECISION_REJECTED = 2
DECISION_NAMES = ("pending", "approved", "rejected")

# Labelled tables have a fixed number of slots in shared memory; labels beyond that are summed here.
OTHER = "other"


MAX_LEGS = 3  # legs kept per opportunity in shared memory (triangular cycles have three)


class LegRecord(Struct, frozen=True):
    venue: int
    symbol: int
    side: int  # 0 buy, 1 sell
    price: float
    qty: float
    age_ns: int  # how old the leg's quote was when the opportunity was detected


class OpportunityRecord(Struct, frozen=True):
    id: int
    strategy: int  # index into shared.messages.STRATEGY_NAMES
    action: int  # index into shared.messages.ACTION_NAMES
    symbol: int
    legs: tuple[LegRecord, ...]  # at most MAX_LEGS
    notional_usd: float
    spread_bps: float
    expected_profit_usd: float
    decision: int  # DECISION_*
    reason: int  # index into Snapshot.rejections when rejected, else -1
    detected_ns: int


class StageLatency(Struct, frozen=True):
    count: int  # samples since start; the percentiles cover the latest window of them
    avg_ns: float
    p50_ns: float
    p99_ns: float


class ServiceHealth(Struct, frozen=True):
    state: str  # one of SERVICE_STATES
    pid: int
    heartbeat_ns: int  # time.monotonic_ns() of its last Stats; 0: never heard from
    counters: dict[str, int]
    gauges: dict[str, float] = {}  # its own gauges (risk's halt state among them: ``halt_json``)


CARRY_STATES = ("open", "closed")  # CarryRecord.state codes: the position is the code


class CarryRecord(Struct, frozen=True):
    """One spot-perpetual carry as the bridge last heard of it (``shared.messages.CarryPosition``), valued."""

    carry_id: int
    symbol: int
    spot_venue: int  # -1: unhedged (the perpetual alone)
    perp_venue: int
    state: int  # index into CARRY_STATES
    spot_qty: str  # exact decimal text, as the executor sent it
    perp_qty: str  # negative: short
    entry_basis_bps: float
    exit_basis_bps: float  # 0 while open
    funding_usd: float  # collected so far (paid: negative)
    fees_usd: float
    pnl_usd: float
    notional_usd: float  # |perp qty| at the latest price the bridge has (0 once closed, or with no price yet)
    opened_ms: int  # wall clock
    closed_ms: int  # 0 while open
    updated_ns: int  # wall clock of the update it reflects


class FundingTotal(Struct, frozen=True):
    """Funding booked on one venue in one asset this run: the exact sum, and its USD value by direction."""

    venue: int
    asset: str
    amount: str  # exact decimal text: received - paid
    received_usd: float
    paid_usd: float  # >= 0
    payments: int


class PnlSplit(Struct, frozen=True):
    """Where the run's PnL came from: each execution's PnL before its fees, by how it ended. With the fees,
    ``pnl_usd = filled_usd + unwind_usd + other_usd - fees_usd``."""

    filled_usd: float = 0.0  # executions whose legs filled as planned (filled, partial)
    unwind_usd: float = 0.0  # executions that ended unwound, hedged or orphaned: what getting flat cost
    other_usd: float = 0.0  # the rest (funding payments; missed and rejected ones move nothing)


class UnwindCause(Struct, frozen=True):
    """Unwinds put down to one cause (``services/bridge/unwinds.py``), and how old the quote of the leg that fell
    short was when the opportunity was detected."""

    count: int
    quote_age_ms_sum: float = 0.0
    quote_ages: int = 0  # unwinds the age is known for (the bridge saw their opportunity)


class Snapshot(Struct, frozen=True, kw_only=True):
    taken_ns: int
    venues: tuple[str, ...]
    symbols: tuple[str, ...]
    opportunities: int
    approved: int
    rejected: int
    rejections: dict[str, int]  # by reason
    orders: dict[str, int]  # by venue status
    fills: int
    executions: dict[str, int]  # by outcome
    pnl_usd: float
    fees_usd: float
    latency: dict[str, StageLatency]  # by stage, pipeline order
    services: dict[str, ServiceHealth]
    recent: tuple[OpportunityRecord, ...]  # oldest first
    bids: tuple[tuple[float, ...], ...]  # [venue][symbol]; 0.0: no price yet
    asks: tuple[tuple[float, ...], ...]
    funding_rates: tuple[tuple[float, ...], ...] = ()  # [venue][symbol], perpetual venues
    funding_next_ms: tuple[tuple[float, ...], ...] = ()  # 0.0: no funding reported
    book_states: tuple[tuple[float, ...], ...] = ()  # BOOK_* per [venue][symbol]
    # Carries of this run: the open ones, then the latest closed ones, as many as shared memory holds
    # (MAX_CARRIES); the counts are of all of them.
    carries: tuple[CarryRecord, ...] = ()
    carries_open: int = 0
    carries_closed: int = 0
    funding_totals: tuple[FundingTotal, ...] = ()  # per (venue, asset), in the order first booked
    pnl_split: PnlSplit = PnlSplit()
    unwind_causes: dict[str, UnwindCause] = {}  # cause -> unwinds put down to it


def fit_labels(counts: Mapping[str, int], capacity: int, max_bytes: int) -> dict[str, int]:
    """``counts`` reshaped to a table of ``capacity`` slots: labels that do not fit are summed as OTHER."""

    def fits(label: str) -> bool:
        return bool(label) and len(label.encode()) <= max_bytes

    if len(counts) <= capacity and all(fits(label) for label in counts):
        return dict(counts)
    out: dict[str, int] = {}
    other = 0
    for label, value in counts.items():
        if label != OTHER and fits(label) and len(out) < capacity - 1:
            out[label] = value
        else:
            other += value
    out[OTHER] = other
    return out


def quotes_by_venue(snap: Snapshot) -> dict[str, int]:
    """Quotes each feed parsed, from its own heartbeat counters; funding-only feeds (perps) are left out."""
    out: dict[str, int] = {}
    for venue in snap.venues:
        health = snap.services.get(feed_service_name(venue))
        if health is None or not health.heartbeat_ns:
            continue
        quotes = health.counters.get("quotes", 0)
        if quotes or not health.counters.get("funding", 0):
            out[venue] = quotes
    return out


def decision_text(snap: Snapshot, rec: OpportunityRecord) -> str:
    if rec.decision == DECISION_REJECTED and 0 <= rec.reason < len(snap.rejections):
        return list(snap.rejections)[rec.reason]
    return DECISION_NAMES[rec.decision] if 0 <= rec.decision < len(DECISION_NAMES) else "?"


BOOK_SYNCING = 0
BOOK_LIVE = 1
BOOK_STALE = 2


def books_by_venue(snap: Snapshot) -> dict[str, dict[str, Any]]:
    """Per venue that has a feed: how many symbols are live, stale or still syncing, and which are stale."""
    out: dict[str, dict[str, Any]] = {}
    for v, venue in enumerate(snap.venues):
        if v >= len(snap.book_states):
            break
        states = snap.book_states[v]
        stale = [snap.symbols[s] for s, st in enumerate(states) if st == BOOK_STALE]
        live = sum(1 for st in states if st == BOOK_LIVE)
        if live or stale:
            out[venue] = {"live": live, "stale": len(stale), "stale_symbols": stale}
    return out


def funding_by_symbol(snap: Snapshot) -> dict[str, dict[str, dict[str, float]]]:
    out: dict[str, dict[str, dict[str, float]]] = {}
    for v, venue in enumerate(snap.venues):
        if v >= len(snap.funding_next_ms):
            break
        for s, next_ms in enumerate(snap.funding_next_ms[v]):
            if next_ms:
                out.setdefault(snap.symbols[s], {})[venue] = {
                    "rate": snap.funding_rates[v][s], "next_funding_ms": int(next_ms)
                }
    return out


def _name(names: tuple[str, ...], i: int) -> str:
    return names[i] if 0 <= i < len(names) else f"#{i}"


def carry_json(snap: Snapshot) -> dict[str, Any]:
    """The carry section: every carry shared memory holds (open first), counts, and funding booked per venue."""
    by_venue: dict[str, dict[str, Any]] = {}
    for t in snap.funding_totals:
        v = by_venue.setdefault(_name(snap.venues, t.venue), {"usd": 0.0, "payments": 0, "amounts": {}})
        v["usd"] += t.received_usd - t.paid_usd
        v["payments"] += t.payments
        v["amounts"][t.asset] = t.amount
    return {
        "open": snap.carries_open,
        "closed": snap.carries_closed,
        "funding_usd": sum(t.received_usd - t.paid_usd for t in snap.funding_totals),
        "funding_by_venue": by_venue,
        "positions": [
            {
                "carry_id": c.carry_id,
                "symbol": _name(snap.symbols, c.symbol),
                "spot_venue": _name(snap.venues, c.spot_venue) if c.spot_venue >= 0 else None,
                "perp_venue": _name(snap.venues, c.perp_venue),
                "state": _name(CARRY_STATES, c.state),
                "spot_qty": c.spot_qty,
                "perp_qty": c.perp_qty,
                "entry_basis_bps": c.entry_basis_bps,
                "exit_basis_bps": c.exit_basis_bps,
                "funding_usd": c.funding_usd,
                "fees_usd": c.fees_usd,
                "pnl_usd": c.pnl_usd,
                "notional_usd": c.notional_usd,
                "opened_ms": c.opened_ms,
                "closed_ms": c.closed_ms,
                "updated_ms": c.updated_ns // 1_000_000,
            }
            for c in snap.carries
        ],
    }


def by_strategy(snap: Snapshot) -> dict[str, int]:
    """Opportunities per strategy, from the detector's own counters (absent before it reports)."""
    detector = snap.services.get("detector")
    counters = detector.counters if detector is not None else {}
    return {name: counters[f"opportunities.{name}"] for name in STRATEGY_NAMES if f"opportunities.{name}" in counters}


def unwinds_json(snap: Snapshot) -> dict[str, dict[str, Any]]:
    """Per cause: how many unwinds, and the mean age (ms) of the short leg's quote at detection (None: unknown)."""
    return {
        cause: {"count": c.count,
                "quote_age_ms": round(c.quote_age_ms_sum / c.quote_ages, 3) if c.quote_ages else None}
        for cause, c in snap.unwind_causes.items()
    }


def snapshot_json(snap: Snapshot, now_ns: int) -> dict[str, Any]:
    """The snapshot as plain JSON-ready data, names instead of ids, ages relative to ``now_ns``."""

    def age(ns: int) -> float | None:
        return round((now_ns - ns) / 1e9, 3) if ns else None

    prices: dict[str, dict[str, dict[str, float]]] = {}
    for s, symbol in enumerate(snap.symbols):
        quoted = {
            venue: {"bid": snap.bids[v][s], "ask": snap.asks[v][s]}
            for v, venue in enumerate(snap.venues)
            if snap.bids[v][s] or snap.asks[v][s]
        }
        if quoted:
            prices[symbol] = quoted
    return {
        "snapshot_age_s": age(snap.taken_ns),
        "quotes": quotes_by_venue(snap),
        "opportunities": snap.opportunities,
        "opportunities_by_strategy": by_strategy(snap),
        "approved": snap.approved,
        "rejected": snap.rejected,
        "rejections_by_reason": dict(snap.rejections),
        "orders": dict(snap.orders),
        "fills": snap.fills,
        "executions": dict(snap.executions),
        "pnl_usd": snap.pnl_usd,
        "fees_usd": snap.fees_usd,
        # pnl_usd = filled_usd + unwind_usd + other_usd - fees_usd
        "pnl_split": {"filled_usd": snap.pnl_split.filled_usd, "unwind_usd": snap.pnl_split.unwind_usd,
                      "other_usd": snap.pnl_split.other_usd, "fees_usd": snap.fees_usd},
        "unwind_causes": unwinds_json(snap),
        # Why approvals stop, from risk's gauges (shared/halt.py); None until risk reports it.
        "halt": halt_conditions(snap.services["risk"].gauges if "risk" in snap.services else None),
        "latency": {
            stage: {
                "p50_us": round(lat.p50_ns / 1e3, 3),
                "p99_us": round(lat.p99_ns / 1e3, 3),
                "avg_us": round(lat.avg_ns / 1e3, 3),
                "count": lat.count,
            }
            for stage, lat in snap.latency.items()
        },
        "services": {
            name: {
                "state": h.state,
                "pid": h.pid,
                "heartbeat_age_s": age(h.heartbeat_ns),
                "counters": dict(h.counters),
                "gauges": dict(h.gauges),
            }
            for name, h in snap.services.items()
        },
        "recent": [
            {
                "id": r.id,
                "strategy": _name(STRATEGY_NAMES, r.strategy),
                "action": _name(ACTION_NAMES, r.action),
                "symbol": _name(snap.symbols, r.symbol),
                "legs": [
                    {
                        "venue": _name(snap.venues, leg.venue),
                        "symbol": _name(snap.symbols, leg.symbol),
                        "side": "buy" if leg.side == 0 else "sell",
                        "price": leg.price,
                        "qty": leg.qty,
                        "quote_age_us": round(leg.age_ns / 1e3, 1),
                    }
                    for leg in r.legs
                ],
                "notional_usd": r.notional_usd,
                "spread_bps": r.spread_bps,
                "expected_profit_usd": r.expected_profit_usd,
                "decision": decision_text(snap, r),
                "age_s": age(r.detected_ns),
            }
            for r in snap.recent
        ],
        "prices": prices,
        "books": books_by_venue(snap),
        "funding": funding_by_symbol(snap),
        "carry": carry_json(snap),
    }
