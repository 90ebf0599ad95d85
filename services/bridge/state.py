"""The bridge's picture of the engine, aggregated from every service's events.

Pure state: no sockets. The bridge's event loop calls ``on_event``; the shared-memory writer takes
``snapshot()``; the Prometheus exporter (another thread) takes ``metrics()``. One lock makes those views
consistent; it is uncontended except during a scrape.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from msgspec import Struct, field

from services.bridge import unwinds
from services.bridge.carries import CarryBook, CarryState
from services.bridge.latency import Stage, StageMetrics
from shared.messages import (
    STRATEGY_NAMES,
    CarryPosition,
    Event,
    Execution,
    Fill,
    FundingPayment,
    Opportunity,
    OrderUpdate,
    RiskDecision,
    Stats,
    VenueState,
)
from shared.registry import Registry
from shared.shm.layout import (
    LABEL_BYTES,
    MAX_OUTCOMES,
    MAX_REASONS,
    MAX_SERVICE_COUNTERS,
    MAX_STAGES,
    MAX_STATUSES,
    Layout,
    fit_gauges,
)
from shared.shm.snapshot import (
    DECISION_APPROVED,
    DECISION_PENDING,
    DECISION_REJECTED,
    MAX_LEGS,
    OTHER,
    SERVICE_STATES,
    LegRecord,
    OpportunityRecord,
    PnlSplit,
    ServiceHealth,
    Snapshot,
    UnwindCause,
    fit_labels,
    snapshot_json,
)

# Stages the bridge measures itself from message stamps. Services report the same spans in their heartbeats
# (under the same names); those samples are skipped, or every span would be counted twice.
TICK_TO_DETECT = "tick_to_detect"
DETECT_TO_DECIDE = "detect_to_decide"
DECIDE_TO_ORDER = "decide_to_order"
TICK_TO_ORDER = "tick_to_order"
STAMPED_STAGES = frozenset({TICK_TO_DETECT, DETECT_TO_DECIDE, DECIDE_TO_ORDER, TICK_TO_ORDER})
# Display order; stages only services report (e.g. the feed's frame_to_publish) follow as they appear.
STAGE_ORDER = ("frame_to_publish", TICK_TO_DETECT, DETECT_TO_DECIDE, DECIDE_TO_ORDER, TICK_TO_ORDER)

log = logging.getLogger(__name__)

WINDOW = 4096  # latest samples per stage behind P50/P99
AGES_KEPT = 4096  # approved opportunities whose legs' quote ages wait for their Execution (~minutes of trading)
STALE_AFTER_S = 5.0  # a service silent this long is not up, whatever its last state said


class ServiceMetrics(Struct, frozen=True):
    up: bool
    counters: dict[str, int]
    gauges: dict[str, float]
    heartbeat_age_s: float = -1.0  # seconds since its last heartbeat; -1: never heard from


# Feed counters that count bad or redundant input (each logged once by the feed, then only counted).
FEED_BAD_INPUT = (
    "malformed",
    "unknown_symbol",
    "duplicates",
    "out_of_order",
    "crossed",
    "bad_snapshots",
    "stale_snapshots",
    "buffer_overflow",
)


class FeedHealth(Struct, frozen=True):
    """One venue's feed, from its heartbeat: what it received, what went wrong, how live it is."""

    up: bool
    heartbeat_age_s: float
    messages: int  # WebSocket frames received
    gaps: int  # book sequence gaps (each forces a re-snapshot)
    resyncs: int
    connects: int  # connections opened: the first per shard, every reconnect, every roll-over successor
    stalls: int  # connections dropped for carrying no data for stale_after_s
    rolls: int
    resubscribes: int
    bad_input: dict[str, int]  # FEED_BAD_INPUT kind -> count
    stale_symbols: float  # symbols with a channel silent past stale_after_s right now
    books_live: float
    connections: float  # shards with a live connection


class Metrics(Struct, frozen=True):
    """A consistent copy of everything the Prometheus exporter shows, names instead of ids."""

    quotes: dict[str, int]  # venue -> quotes its feed parsed
    opportunities: dict[str, int]  # strategy
    decisions: dict[tuple[str, str], int]  # (approved|rejected, reason)
    orders: dict[tuple[str, str], int]  # (venue, status)
    fills: dict[str, int]  # venue
    executions: dict[str, int]  # outcome
    pnl_usd: float
    fees_usd: float
    stages: dict[str, StageMetrics]
    services: dict[str, ServiceMetrics]
    feeds: dict[str, FeedHealth] = {}  # venue
    spreads_bps: dict[str, float] = {}  # symbol -> best gross cross-venue spread (bid on one, ask on another)
    halted: float | None = None  # risk's kill switch: 1 halted, 0 trading, None: risk not heard from
    breakers: dict[str, float] = {}  # risk's circuit breakers: name -> 1 open (tripped) / 0 closed
    funding_usd: dict[tuple[str, str], float] = {}  # (venue, received|paid) -> USD, both >= 0
    funding_payments: dict[str, int] = {}  # venue
    carries_open: int = 0
    carries_closed: int = 0
    carry_notional_usd: float = 0.0  # open carries at the latest price


class Totals(Struct):
    """The bridge's cumulative counts, as its checkpoint keeps them across its restarts (ids as in the config)."""

    opportunities: dict[int, int] = {}  # strategy id
    approved: int = 0
    rejections: dict[str, int] = {}
    orders: list[tuple[int, str, int]] = []  # (venue id, status, count)
    fills: dict[int, int] = {}  # venue id
    executions: dict[str, int] = {}
    pnl_usd: float = 0.0
    fees_usd: float = 0.0
    carry: CarryState = field(default_factory=CarryState)  # carries and funding of the run
    pnl_split: tuple[float, float, float] = (0.0, 0.0, 0.0)  # PnlSplit: filled, unwind, other (before fees)
    unwind_causes: dict[str, tuple[int, float, int]] = {}  # cause -> UnwindCause fields


class _Recent:
    __slots__ = ("decision", "opp", "reason")

    def __init__(self, opp: Opportunity) -> None:
        self.opp = opp
        self.decision = DECISION_PENDING
        self.reason = ""


def _span(start_ns: int, end_ns: int) -> int | None:
    """end - start, or None when a stamp is missing (0): such a span would be meaningless."""
    return end_ns - start_ns if start_ns > 0 and end_ns > 0 else None


class BridgeState:
    def __init__(
        self,
        registry: Registry,
        services: Sequence[str],
        ring_size: int = 64,
        *,
        window: int = WINDOW,
        stale_after_s: float = STALE_AFTER_S,
        clock: Callable[[], int] = time.monotonic_ns,
    ) -> None:
        self.registry = registry
        self.services = tuple(services)
        self.layout = Layout(registry.venue_names, registry.symbol_names, self.services, ring_size)
        self.ring_size = ring_size
        self.window = window
        self.stale_after_ns = int(stale_after_s * 1e9)
        self.clock = clock
        self.lock = threading.Lock()
        self.opportunities: dict[int, int] = {}  # strategy id
        self.approved = 0
        self.rejections: dict[str, int] = {}
        self.orders: dict[tuple[int, str], int] = {}  # (venue id, status)
        self.fills: dict[int, int] = {}  # venue id
        self.executions: dict[str, int] = {}
        self.pnl_usd = 0.0
        self.fees_usd = 0.0
        self.split = dict.fromkeys(unwinds.BUCKETS, 0.0)  # PnL before fees by bucket (services/bridge/unwinds.py)
        self.unwind_causes: dict[str, UnwindCause] = {}
        self._quote_ages: dict[int, tuple[int, ...]] = {}  # approved opportunity id -> its legs' quote ages (ns)
        self.stats: dict[str, Stats] = {}  # latest heartbeat per service
        self.stages: dict[str, Stage] = {}
        self._recent: dict[int, _Recent] = {}  # opportunity id -> record, oldest first
        # Decisions heard before their opportunity: risk's and the detector's events come over different sockets,
        # and risk decides within microseconds, so its event often wins. Kept (bounded) until the opportunity comes.
        self._early: dict[int, tuple[int, str]] = {}  # opportunity id -> (DECISION_*, reason)
        self.bids = np.zeros((registry.n_venues, registry.n_symbols), dtype=np.float64)
        self.asks = np.zeros_like(self.bids)
        self.funding_rates = np.zeros_like(self.bids)
        self.funding_next_ms = np.zeros_like(self.bids)
        self.book_states = np.zeros_like(self.bids)
        self.carry = CarryBook(registry.n_venues, registry.n_symbols)
        self.marks: dict[tuple[int, int], float] = {}  # (perp venue, symbol) -> mark price the executor last saw
        self.n_refused = 0  # carry and funding events the book could not hold (logged once)
        self._handlers: dict[type, Callable[[Any], None]] = {
            Opportunity: self._on_opportunity,
            RiskDecision: self._on_decision,
            OrderUpdate: self._on_order,
            Fill: self._on_fill,
            Execution: self._on_execution,
            Stats: self._on_stats,
            CarryPosition: self._on_carry,
            FundingPayment: self._on_funding,
            VenueState: self._on_venue,
        }

    # ----- checkpoint
    def totals(self) -> Totals:
        with self.lock:
            return Totals(dict(self.opportunities), self.approved, dict(self.rejections),
                          [(v, status, n) for (v, status), n in self.orders.items()], dict(self.fills),
                          dict(self.executions), self.pnl_usd, self.fees_usd, self.carry.state(),
                          (self.split[unwinds.FILLED], self.split[unwinds.UNWIND], self.split[unwinds.OTHER]),
                          {k: (c.count, c.quote_age_ms_sum, c.quote_ages) for k, c in self.unwind_causes.items()})

    def restore(self, t: Totals) -> None:
        """Start from an earlier lifetime's counts (the events after them are replayed on top)."""
        with self.lock:
            self.opportunities = dict(t.opportunities)
            self.approved = t.approved
            self.rejections = dict(t.rejections)
            self.orders = {(v, status): n for v, status, n in t.orders}
            self.fills = dict(t.fills)
            self.executions = dict(t.executions)
            self.pnl_usd, self.fees_usd = t.pnl_usd, t.fees_usd
            self.carry.restore(t.carry)
            self.split = dict(zip(unwinds.BUCKETS, t.pnl_split, strict=True))
            self.unwind_causes = {k: UnwindCause(*c) for k, c in t.unwind_causes.items()}

    # ----- events in
    def on_event(self, event: Event) -> None:
        handler = self._handlers.get(type(event))
        if handler is not None:
            with self.lock:
                handler(event)

    def _stage(self, name: str) -> Stage:
        stage = self.stages.get(name)
        if stage is None:
            stage = self.stages[name] = Stage(self.window)
        return stage

    def _sample(self, name: str, span: int | None) -> None:
        if span is not None:
            self._stage(name).add(span)

    def _on_opportunity(self, opp: Opportunity) -> None:
        self.opportunities[opp.strategy] = self.opportunities.get(opp.strategy, 0) + 1
        self._sample(TICK_TO_DETECT, _span(opp.tick_ns, opp.detected_ns))
        recent = self._recent
        recent.pop(opp.id, None)  # a repeated id moves to the newest position
        rec = recent[opp.id] = _Recent(opp)
        early = self._early.pop(opp.id, None)
        if early is not None:
            rec.decision, rec.reason = early
        if len(recent) > self.ring_size:
            del recent[next(iter(recent))]

    def _on_decision(self, dec: RiskDecision) -> None:
        if dec.approved:
            self.approved += 1
        else:
            reason = dec.reason or OTHER
            self.rejections[reason] = self.rejections.get(reason, 0) + 1
        self._sample(DETECT_TO_DECIDE, _span(dec.opportunity.detected_ns, dec.decided_ns))
        if dec.approved:  # its Execution is classified with how old each leg's quote was
            opp = dec.opportunity
            ages = self._quote_ages
            ages[opp.id] = tuple(opp.detected_ns - leg.quote_ns if leg.quote_ns else -1 for leg in opp.legs)
            if len(ages) > AGES_KEPT:  # an Execution that never came (a lost one is caught up without ages)
                del ages[next(iter(ages))]
        decision = DECISION_APPROVED if dec.approved else DECISION_REJECTED
        reason = "" if dec.approved else dec.reason or OTHER
        rec = self._recent.get(dec.opportunity.id)
        if rec is not None:
            rec.decision, rec.reason = decision, reason
        else:
            early = self._early
            early[dec.opportunity.id] = (decision, reason)
            if len(early) > 4 * self.ring_size:  # decisions of opportunities evicted before they came: forgotten
                del early[next(iter(early))]

    def _on_order(self, upd: OrderUpdate) -> None:
        key = (upd.venue, upd.status or "UNKNOWN")
        self.orders[key] = self.orders.get(key, 0) + 1

    def _on_fill(self, fill: Fill) -> None:
        self.fills[fill.venue] = self.fills.get(fill.venue, 0) + 1

    def _on_execution(self, ex: Execution) -> None:
        outcome = ex.outcome or OTHER
        self.executions[outcome] = self.executions.get(outcome, 0) + 1
        self.pnl_usd += ex.pnl_usd
        self.fees_usd += ex.fees_usd
        part = unwinds.bucket(ex.outcome)
        self.split[part] += ex.pnl_usd + ex.fees_usd
        ages = self._quote_ages.pop(ex.opportunity_id, None)
        if part == unwinds.UNWIND:
            cause, age_ns = unwinds.classify(ex, ages)
            was = self.unwind_causes.get(cause, UnwindCause(0))
            known = age_ns is not None and age_ns >= 0
            self.unwind_causes[cause] = UnwindCause(
                was.count + 1, was.quote_age_ms_sum + (age_ns / 1e6 if known else 0.0), was.quote_ages + known
            )
        self._sample(DECIDE_TO_ORDER, _span(ex.decided_ns, ex.sent_ns))
        self._sample(TICK_TO_ORDER, _span(ex.tick_ns, ex.sent_ns))

    def _on_stats(self, st: Stats) -> None:
        self.stats[st.service] = st
        n_v, n_s = self.bids.shape
        for venue, symbol, bid, ask in st.prices:
            if 0 <= venue < n_v and 0 <= symbol < n_s:
                self.bids[venue, symbol] = bid
                self.asks[venue, symbol] = ask
        for venue, symbol, rate, next_ms in st.funding:
            if 0 <= venue < n_v and 0 <= symbol < n_s:
                self.funding_rates[venue, symbol] = rate
                self.funding_next_ms[venue, symbol] = next_ms
        for venue, symbol, book_state in st.book_states:
            if 0 <= venue < n_v and 0 <= symbol < n_s:
                self.book_states[venue, symbol] = book_state
        for stage, samples in st.latencies_ns.items():
            if stage not in STAMPED_STAGES and samples:
                self._stage(stage).extend(samples)

    def _on_carry(self, c: CarryPosition) -> None:
        self._refused(self.carry.on_carry(c))

    def _on_funding(self, f: FundingPayment) -> None:
        self._refused(self.carry.on_funding(f))

    def _refused(self, why: str | None) -> None:
        if why is None:
            return
        self.n_refused += 1
        if self.n_refused == 1:
            log.warning("bridge: carry/funding event refused (%s); counting further ones", why)

    def _on_venue(self, vs: VenueState) -> None:
        if vs.perp is not None:
            for pos in vs.perp.positions:
                if pos.mark_price > 0:
                    self.marks[(vs.venue, pos.symbol)] = pos.mark_price

    def price(self, venue: int, symbol: int) -> float:
        """USD per base unit of ``symbol`` on ``venue``: the perpetual's mark the executor reported, else the
        mid of the venue's quote; 0.0 when neither is known. Callers hold the lock."""
        mark = self.marks.get((venue, symbol))
        if mark:
            return mark
        n_v, n_s = self.bids.shape
        if not (0 <= venue < n_v and 0 <= symbol < n_s):
            return 0.0
        bid, ask = float(self.bids[venue, symbol]), float(self.asks[venue, symbol])
        return (bid + ask) / 2 if bid > 0 and ask > 0 else 0.0

    # ----- views out
    def _stage_names(self) -> list[str]:
        known = [s for s in STAGE_ORDER if s in self.stages]
        return known + [s for s in self.stages if s not in STAGE_ORDER]

    def _venue_name(self, venue: int) -> str:
        names = self.registry.venue_names
        return names[venue] if 0 <= venue < len(names) else f"#{venue}"

    def _orders_by_status(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for (_venue, status), n in self.orders.items():
            out[status] = out.get(status, 0) + n
        return out

    def _health(self, name: str) -> ServiceHealth:
        st = self.stats.get(name)
        if st is None:
            return ServiceHealth(SERVICE_STATES[0], 0, 0, {})
        state = st.state if st.state in SERVICE_STATES else SERVICE_STATES[0]
        return ServiceHealth(state, st.pid, st.ts_ns, fit_labels(st.counters, MAX_SERVICE_COUNTERS, LABEL_BYTES),
                             fit_gauges(st.gauges))

    def snapshot(self) -> Snapshot:
        with self.lock:
            rejections = fit_labels(self.rejections, MAX_REASONS, LABEL_BYTES)
            reason_index = {reason: i for i, reason in enumerate(rejections)}
            recent = tuple(
                OpportunityRecord(
                    id=r.opp.id,
                    strategy=r.opp.strategy,
                    action=r.opp.action,
                    symbol=r.opp.symbol,
                    legs=tuple(
                        LegRecord(leg.venue, leg.symbol, leg.side, leg.price, leg.qty, r.opp.detected_ns - leg.quote_ns)
                        for leg in r.opp.legs[:MAX_LEGS]
                    ),
                    notional_usd=r.opp.notional_usd,
                    spread_bps=r.opp.spread_bps,
                    expected_profit_usd=r.opp.expected_profit_usd,
                    decision=r.decision,
                    reason=reason_index.get(r.reason, reason_index.get(OTHER, -1)) if r.reason else -1,
                    detected_ns=r.opp.detected_ns,
                )
                for r in self._recent.values()
            )
            stage_names = self._stage_names()
            latency = {name: self.stages[name].summary() for name in stage_names[:MAX_STAGES]}
            n_open, n_closed = self.carry.counts()
            return Snapshot(
                taken_ns=self.clock(),
                venues=self.layout.venues,
                symbols=self.layout.symbols,
                opportunities=sum(self.opportunities.values()),
                approved=self.approved,
                rejected=sum(self.rejections.values()),
                rejections=rejections,
                orders=fit_labels(self._orders_by_status(), MAX_STATUSES, LABEL_BYTES),
                fills=sum(self.fills.values()),
                executions=fit_labels(self.executions, MAX_OUTCOMES, LABEL_BYTES),
                pnl_usd=self.pnl_usd,
                fees_usd=self.fees_usd,
                latency=latency,
                services={name: self._health(name) for name in self.services},
                recent=recent,
                bids=tuple(map(tuple, self.bids.tolist())),
                asks=tuple(map(tuple, self.asks.tolist())),
                funding_rates=tuple(map(tuple, self.funding_rates.tolist())),
                funding_next_ms=tuple(map(tuple, self.funding_next_ms.tolist())),
                book_states=tuple(map(tuple, self.book_states.tolist())),
                carries=self.carry.records(self.price),
                carries_open=n_open,
                carries_closed=n_closed,
                funding_totals=self.carry.snapshot_totals(),
                pnl_split=PnlSplit(*(self.split[b] for b in unwinds.BUCKETS)),
                unwind_causes=dict(self.unwind_causes),
            )

    def as_json(self) -> dict[str, Any]:
        """What ``draizer status --json`` prints, from the live state instead of shared memory."""
        return snapshot_json(self.snapshot(), self.clock())

    def latency_samples(self, stage: str) -> np.ndarray:
        """The rolling window behind a stage's percentiles, oldest first (empty if the stage is unknown)."""
        with self.lock:
            found = self.stages.get(stage)
            return found.samples() if found else np.zeros(0, dtype=np.int64)

    def metrics(self) -> Metrics:
        with self.lock:
            now = self.clock()
            quotes: dict[str, int] = {}
            feeds: dict[str, FeedHealth] = {}
            services: dict[str, ServiceMetrics] = {}
            for name in dict.fromkeys((*self.services, *self.stats)):
                st = self.stats.get(name)
                if st is None:
                    services[name] = ServiceMetrics(False, {}, {})
                    continue
                up = st.state == "RUNNING" and now - st.ts_ns <= self.stale_after_ns
                age_s = max(0.0, (now - st.ts_ns) / 1e9)
                services[name] = ServiceMetrics(up, dict(st.counters), dict(st.gauges), age_s)
                kind, _, venue = name.partition(".")  # feeds are "feed.<venue>"
                if kind == "feed" and venue:
                    feeds[venue] = _feed_health(st, up, age_s)
                    if "quotes" in st.counters:
                        quotes[venue] = st.counters["quotes"]
            decisions = {("rejected", reason): n for reason, n in self.rejections.items()}
            if self.approved:
                decisions[("approved", "approved")] = self.approved
            risk = self.stats.get("risk")
            return Metrics(
                quotes=quotes,
                opportunities={
                    STRATEGY_NAMES[s] if 0 <= s < len(STRATEGY_NAMES) else str(s): n
                    for s, n in self.opportunities.items()
                },
                decisions=decisions,
                orders={(self._venue_name(v), status): n for (v, status), n in self.orders.items()},
                fills={self._venue_name(v): n for v, n in self.fills.items()},
                executions=dict(self.executions),
                pnl_usd=self.pnl_usd,
                fees_usd=self.fees_usd,
                stages={name: self.stages[name].metrics() for name in self._stage_names()},
                services=services,
                feeds=feeds,
                spreads_bps=self._spreads_bps(),
                halted=risk.gauges.get("halted") if risk is not None else None,
                breakers=_breakers(risk.gauges) if risk is not None else {},
                **self._carry_metrics(),
            )

    def _carry_metrics(self) -> dict[str, Any]:
        funding: dict[tuple[str, str], float] = {}
        payments: dict[str, int] = {}
        for t in self.carry.funding_totals():
            venue = self._venue_name(t.venue)
            for direction, usd in (("received", t.received_usd), ("paid", t.paid_usd)):
                funding[(venue, direction)] = funding.get((venue, direction), 0.0) + usd
            payments[venue] = payments.get(venue, 0) + t.payments
        n_open, n_closed = self.carry.counts()
        notional = sum(self.carry.notional_usd(c, self.price) for c in self.carry.carries.values())
        return {"funding_usd": funding, "funding_payments": payments, "carries_open": n_open,
                "carries_closed": n_closed, "carry_notional_usd": notional}

    def _spreads_bps(self) -> dict[str, float]:
        """Per symbol quoted on two venues or more: the best (bid on one venue - ask on another) over their mid,
        in bps, before fees. Negative is the normal state; positive means the venues cross."""
        bids, asks = self.bids, self.asks
        n_venues = bids.shape[0]
        best = np.full(bids.shape[1], -np.inf)
        for sell in range(n_venues):
            for buy in range(n_venues):
                if sell == buy:
                    continue
                bid, ask = bids[sell], asks[buy]
                quoted = (bid > 0) & (ask > 0)
                spread = np.where(quoted, (bid - ask) / np.where(quoted, (bid + ask) / 2, 1.0) * 1e4, -np.inf)
                np.maximum(best, spread, out=best)
        names = self.registry.symbol_names
        return {names[s]: float(best[s]) for s in np.flatnonzero(np.isfinite(best))}


def _feed_health(st: Stats, up: bool, age_s: float) -> FeedHealth:
    c, g = st.counters, st.gauges
    return FeedHealth(
        up=up,
        heartbeat_age_s=age_s,
        messages=c.get("frames", 0),
        gaps=c.get("gaps", 0),
        resyncs=c.get("resyncs", 0),
        connects=c.get("connects", 0),
        stalls=c.get("stalls", 0),
        rolls=c.get("rolls", 0),
        resubscribes=c.get("resubscribes", 0),
        bad_input={kind: c[kind] for kind in FEED_BAD_INPUT if kind in c},
        stale_symbols=g.get("stale_symbols", 0.0),
        books_live=g.get("books_live", 0.0),
        connections=g.get("connections", 0.0),
    )


def _breakers(gauges: dict[str, float]) -> dict[str, float]:
    """Risk gauges named ``breaker.<name>`` (or ``breaker_<name>``): 1 while that circuit breaker is open."""
    out: dict[str, float] = {}
    for name, value in gauges.items():
        for prefix in ("breaker.", "breaker_"):
            if name.startswith(prefix) and len(name) > len(prefix):
                out[name[len(prefix) :]] = value
    return out
