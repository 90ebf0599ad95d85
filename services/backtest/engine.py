"""``draizer backtest``'s engine: recorded markets through the live code, on the recording's clock.

The feed handlers, the detector, risk and the executor are the production classes, linked in one process as
the single placement links them (direct calls, no sockets on the path). What differs from a paper run:

- the clock: a ``VirtualClock`` the services read (``ProcessContext.clock``) and the event loop runs on
  (``VirtualTimeLoop``): each recorded frame is handed to its feed handler at its receive stamp, and every timer
  in between (an order reaching the venue, an answer coming back, an unwind deadline) fires at its own instant;
  no real time passes, and two runs of the same inputs are the same run;
- the venues: each exchange is the paper fill model (``services/executor/paper``) walking the *recorded* book
  as it stood when the order arrives (``latency.py``), with the liquidity it took kept taken until the
  recording restates that level, the venue's fees and filters, IOC/MARKET semantics, partial fills and the
  rate budget; the symbols' rules come from the recording (``rules`` in its header) or the config;
- the feeds: frames come from the files, batched exactly as the live socket reads delivered them.

The recorded book itself is never modified: paper takes are a debt beside it (``PaperBook``).
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec

from services.backtest.latency import LatencyModel
from services.executor.paper.client import PaperVenueClient
from services.executor.reconcile import parse_client_order_id
from services.executor.service import Executor
from services.feed.recorded import handler_for, merged, take_record
from services.feed.recorded_rules import rules_from_header
from services.feed.recording import Record, Recording
from shared.config import Config, Venue
from shared.errors import ConfigError
from shared.messages import ROLE_LEG, Execution, Fill, MarketBatch, Opportunity, OrderUpdate, RiskDecision
from shared.registry import Registry
from shared.runtime.host import ProcessContext, scratch_run_dir
from shared.runtime.outlet import Outlet
from shared.runtime.virtual_loop import VirtualClock, VirtualTimeLoop
from shared.venues.common import SymbolRules

log = logging.getLogger(__name__)

FIRST_IDS = (1 << 32) | 1  # opportunity ids of a backtest: fixed, so client order ids (and the digest) repeat
SETTLE_GRACE_S = 2.0  # after the last record: executions in flight finish (answers, unwinds) on the virtual clock
POLL_S = 0.05


@dataclass
class BacktestResult:
    digest: str
    opportunities: list[Opportunity] = field(default_factory=list)
    decisions: list[RiskDecision] = field(default_factory=list)
    orders: list[OrderUpdate] = field(default_factory=list)
    fills: list[Fill] = field(default_factory=list)
    executions: list[Execution] = field(default_factory=list)
    records: int = 0
    seconds_recorded: float = 0.0
    seconds_wall: float = 0.0
    seconds_loop: float = 0.0  # wall time of the record loop alone (start-up and the final settling excluded)
    latency: dict[str, object] = field(default_factory=dict)
    counters: dict[str, dict[str, int]] = field(default_factory=dict)
    in_flight_at_end: int = 0
    paper_accounts: dict[str, Any] = field(default_factory=dict)
    marks: dict[str, float] = field(default_factory=dict)


def backtest_config(cfg: Config, run_dir: str) -> Config:
    """The run's config as a backtest runs it: paper fills by the model, no fsync worker (a thread would race
    the virtual clock; a crash of a backtest loses nothing worth keeping), a private run directory."""
    structs = msgspec.structs
    return structs.replace(
        cfg,
        mode="paper",
        paper=structs.replace(cfg.paper, fills="model"),
        execution=structs.replace(cfg.execution, journal_fsync="never", journal_dir=""),
        runtime=structs.replace(cfg.runtime, run_dir=run_dir),
    )


def recorded_rules(header: dict[str, Any], where: str, venue: Venue, registry: Registry) -> dict[int, SymbolRules]:
    """The symbols' rules as the venue published them when the recording was made; the config's tick and step
    (no minimums) for a symbol the recording has none for (a version 1 recording, a failed fetch)."""
    try:
        stated = rules_from_header(header, where)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    v = registry.venue_id[venue.name]
    out: dict[int, SymbolRules] = {}
    for s in range(registry.n_symbols):
        if not registry.listed[v, s]:
            continue
        name = registry.symbols[s].name
        rule = stated.get(name)
        if rule is None:
            tick, step = Decimal(str(registry.tick[v][s])), Decimal(str(registry.step[v][s]))
            rule = SymbolRules(name, tick, step, Decimal(0), Decimal(0), _decimals(tick), _decimals(step))
        out[s] = rule
    return out


def _decimals(x: Decimal) -> int:
    exponent = x.normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


class BacktestVenueClient(PaperVenueClient):
    """A paper venue whose rules come from the recording and whose latency from the model: no network at all."""

    def __init__(self, venue: Venue, registry: Registry, timeout_s: float, market: Any, clock: Any,
                 rules: dict[int, SymbolRules], latency: LatencyModel) -> None:
        super().__init__(venue, registry, timeout_s, market, clock)
        self._recorded_rules = rules
        self.latency = latency

    async def start(self) -> None:
        self.rules = dict(self._recorded_rules)
        self._build_templates()
        await self.account()
        self.reachable = True
        self.started = True

    def one_way_s(self) -> float:
        return self.latency.one_way_s(self.name)

    def outbound_s(self, client_order_id: str) -> float:
        ident = parse_client_order_id(client_order_id)
        planned = ident is not None and ident.role == ROLE_LEG  # corrections leave later, from the executor itself
        engine = self.latency.engine_delay_s(ident.opportunity_id) if planned and ident is not None else 0.0
        return engine + self.one_way_s()


class BacktestExecutor(Executor):
    def __init__(self, ctx: ProcessContext, rules: dict[str, dict[int, SymbolRules]], latency: LatencyModel) -> None:
        super().__init__(ctx)
        self._rules = rules
        self.latency = latency

    def paper_client(self, venue: Venue, timeout_s: float) -> PaperVenueClient:
        assert self.paper is not None
        return BacktestVenueClient(venue, self.registry, timeout_s, self.paper, self.clock,
                                   self._rules.get(venue.name, {}), self.latency)


class _Recorded:
    """The feeds' stand-in in the process (``link_in_process`` peers call it "Feed"): frames from the files."""


def start_times(recordings: list[Recording]) -> tuple[int, int]:
    """(monotonic ns, wall ns) of the first record: the virtual clock starts there."""
    firsts = [r.tick_ns for rec in recordings for r in _first(rec)]
    if not firsts:
        raise ConfigError("the recordings hold no records")
    first = min(firsts)
    h = recordings[0].header
    if "started_unix_ns" in h and "started_monotonic_ns" in h:
        wall = int(h["started_unix_ns"]) + (first - int(h["started_monotonic_ns"]))
    else:  # version 1: the header's start in ms, about when the first record came
        wall = int(h.get("started_unix_ms", 0)) * 1_000_000
    return first, wall


def _first(rec: Recording) -> Iterator[Record]:
    for r in rec:
        yield r
        return


def _open(path: Path) -> Recording:
    try:
        return Recording(path)
    except (OSError, ValueError) as exc:  # not a recording, a format this draizer does not read, unreadable
        raise ConfigError(str(exc)) from None


def run_backtest(cfg: Config, paths: list[Path], latency: LatencyModel, warmup_s: float = 0.0,
                 trade_s: float | None = None) -> BacktestResult:
    """``warmup_s``: the first seconds of the recording only build the books (the detector's and the paper venues'):
    nothing found then is traded, as a run that started later would not have; ``trade_s``: trading stops that long
    after the warm-up (None: at the end). A comparison with a live run lines its window up with these."""
    recordings = [_open(p) for p in paths]
    first, wall = start_times(recordings)
    clock = VirtualClock(first, wall)
    started = time.monotonic()
    with scratch_run_dir("dz-backtest-") as run_dir:
        loop = VirtualTimeLoop(clock)
        try:
            result = loop.run_until_complete(_run(backtest_config(cfg, run_dir), recordings, latency, clock, loop,
                                                  Path(run_dir), first + int(warmup_s * 1e9),
                                                  None if trade_s is None else first + int((warmup_s + trade_s) * 1e9)))
        finally:
            loop.close()
    result.seconds_wall = round(time.monotonic() - started, 3)
    return result


async def _run(cfg: Config, recordings: list[Recording], latency: LatencyModel, clock: VirtualClock,
               loop: VirtualTimeLoop, run_dir: Path, trade_from_ns: int, trade_until_ns: int | None
               ) -> BacktestResult:
    from services.detector.service import Detector
    from services.risk.service import RiskEngine

    ctx = ProcessContext(cfg, run_dir, clock.clock())
    reg = ctx.registry
    handlers = [handler_for(cfg, rec.header, reg, "backtest") for rec in recordings]
    rules = {}
    for rec in recordings:
        name = rec.header["venue"]
        rules[name] = recorded_rules(rec.header, str(rec.path), cfg.venues[reg.venue_id[name]], reg)
    detector = Detector(ctx)
    detector.restart_ids(FIRST_IDS)
    risk = RiskEngine(ctx)
    executor = BacktestExecutor(ctx, rules, latency)
    peers: dict[str, object] = {"Feed": _Recorded(), "Detector": detector, "RiskEngine": risk, "Executor": executor}
    services = [detector, risk, executor]
    for svc in services:
        svc.link_in_process(peers)
    result = BacktestResult("")
    capture(result, services)
    started: list[Any] = []
    try:
        for svc in reversed(services):  # downstream first, as ``serve`` starts them
            await svc.start()
            started.append(svc)
        paper = executor.paper
        assert paper is not None
        last = first = clock.now_ns
        to_risk = detector.opportunities
        nowhere: Outlet[Opportunity] = Outlet.unconnected("opportunities (outside the trading window)")
        until = trade_until_ns if trade_until_ns is not None else 1 << 62
        loop_started = time.perf_counter()
        for i, rec in merged(recordings):
            detector.opportunities = to_risk if trade_from_ns <= rec.tick_ns < until else nowhere
            if rec.tick_ns > clock.now_ns:
                if loop.has_work_before(rec.tick_ns):
                    await loop.sleep_until(rec.tick_ns)  # orders in flight arrive, answers return, in order
                else:
                    clock.now_ns = rec.tick_ns
            last = rec.tick_ns
            result.records += 1
            items = take_record(handlers[i], rec)
            if items:
                batch = MarketBatch(rec.tick_ns, items)
                detector.on_batch(batch)
                paper.on_batch(batch)  # after the detector, as the live feed does: this batch's orders are out
        result.seconds_loop = time.perf_counter() - loop_started
        result.seconds_recorded = round((last - first) / 1e9, 3)
        await _settle(executor, loop, clock)
        result.in_flight_at_end = executor.runs_in_flight
        result.paper_accounts = paper.report()
        result.marks = paper.marks()
    finally:
        for svc in services:  # upstream first, as ``serve`` stops them
            if svc in started:
                await svc.stop()
        for svc in services:
            svc.close()
        ctx.zmq.term()
    result.counters = {"detector": detector.counters(), "risk": risk.counters(), "executor": executor.counters(),
                       **{f"feed.{reg.venue_names[h.venue_id]}": h.counters() for h in handlers}}
    result.latency = latency.describe()
    result.digest = digest(result)
    return result


async def _settle(executor: Executor, loop: VirtualTimeLoop, clock: VirtualClock) -> None:
    """Let the executions the recording started finish on the virtual clock: their answers, the legging, unwinds
    (bounded by the unwind deadline), and the books; then a grace for what they publish."""
    s = executor.settings
    bound = clock.now_ns + int((s.unwind_deadline_ms + s.order_timeout_ms) * 1e6 + SETTLE_GRACE_S * 1e9)
    while executor.runs_in_flight and clock.now_ns < bound:
        await loop.sleep_until(clock.now_ns + int(POLL_S * 1e9))
    await loop.sleep_until(clock.now_ns + int(POLL_S * 1e9))


def capture(result: BacktestResult, services: list[Any]) -> None:
    """Everything the services publish that a report or the digest needs, as they publish it."""
    def on_event(event: object) -> None:
        t = type(event)
        if t is Opportunity:
            result.opportunities.append(event)  # type: ignore[arg-type]
        elif t is RiskDecision:
            result.decisions.append(event)  # type: ignore[arg-type]
        elif t is OrderUpdate:
            result.orders.append(event)  # type: ignore[arg-type]
        elif t is Fill:
            result.fills.append(event)  # type: ignore[arg-type]
        elif t is Execution:
            result.executions.append(event)  # type: ignore[arg-type]

    for svc in services:
        svc.local_listeners.append(on_event)


def digest(result: BacktestResult) -> str:
    """SHA-256 over every order and execution, in the order they happened (all stamps are the virtual clock's)."""
    h = hashlib.sha256()
    enc = msgspec.msgpack.Encoder()
    for group in (result.orders, result.fills, result.executions):
        for event in group:
            h.update(enc.encode(event))
    return h.hexdigest()
