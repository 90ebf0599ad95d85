"""What the web monitor shows that the bridge's shared memory does not hold, heard from the services' events.

Shared memory keeps counts, totals, latency percentiles and the latest opportunities, but not the executions one
by one, PnL by strategy, risk's breakers with their cooldowns, or each venue's rate budget. Those travel as
events the services already publish for the bridge (``Execution``, ``VenueState`` and ``Alert`` from the executor;
``Stats`` and ``Alert`` from risk), so the API subscribes to the same PUB sockets, as a second subscriber:

- ZeroMQ filters subscriptions on the publisher's side, so the executor and risk send this subscriber only those
  four topics (one more queue write per such event, none on the quote or order paths);
- nothing is asked of a service per page or per frame; risk's control socket is asked once when risk is first
  heard (and again after it restarts) for the breakers' end times, which no event repeats.

The tape keeps the latest executions, a thinned cumulative PnL series per strategy, risk's latest gauges and
alerts and each venue's latest ``VenueState``. It covers what was published while the API ran: a restarted API
starts its series empty (the run's total PnL still comes from shared memory).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import zmq

from services.bridge.records import Recorder
from shared.codec import event_codec
from shared.messages import (
    TOPIC_ALERT,
    TOPIC_EXECUTION,
    TOPIC_STATS,
    TOPIC_VENUE,
    Alert,
    Event,
    Execution,
    Stats,
    VenueState,
)
from shared.registry import Registry
from shared.runtime.control_client import ControlError, request

log = logging.getLogger(__name__)

TOPICS = (TOPIC_EXECUTION, TOPIC_VENUE, TOPIC_ALERT, TOPIC_STATS)
MAX_EXECUTIONS = 100  # the latest executions kept (the page shows fewer)
MAX_POINTS = 240  # points per PnL series: past this every other point is dropped (the last always stays)
MAX_ALERTS = 20
POLL_MS = 200  # how often the subscriber thread looks at its stop flag
SEED_TIMEOUT_S = 2.0
STALE_END_MS = 2000  # a gauge still open this long after the known end: a later trip not heard of

BREAKER_OF_ALERT = {"loss_breaker": "loss", "failure_breaker": "failure"}
CARRY_ALERT_TEXT = "funding carries"  # risk's failure-breaker alert for the carry names what it halts


def thin(points: list[tuple[int, float]], limit: int) -> None:
    """Keep at most ``limit`` points: drop every other one, the first and the latest kept."""
    if len(points) > limit:
        last = points[-1]
        del points[1::2]
        if points[-1] != last:
            points.append(last)


class Tape:
    """Folds events into the monitor's view. ``on_event`` and ``view`` may be called from different threads."""

    def __init__(
        self,
        registry: Registry,
        *,
        max_daily_loss_usd: float = 0.0,
        ask_risk: Callable[[], dict[str, Any]] | None = None,
        wall_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
    ) -> None:
        self.recorder = Recorder(registry)
        self.venue_names = registry.venue_names
        self.max_daily_loss_usd = max_daily_loss_usd
        self.ask_risk = ask_risk  # risk's `risk` command: the breakers' end times (blocking)
        self.wall_ms = wall_ms
        self.lock = threading.Lock()
        self.started_ms = wall_ms()
        self.executions: deque[dict[str, Any]] = deque(maxlen=MAX_EXECUTIONS)
        self.n_executions = 0
        self.pnl: dict[str, list[tuple[int, float]]] = {}  # strategy -> [(wall ms, cumulative USD)]
        self._cum: dict[str, float] = {}
        self.gauges: dict[str, float] | None = None  # risk's latest; None: not heard from
        self.risk_pid = 0
        self.risk_heard_ms = 0
        self.until_ms: dict[str, int] = {}  # breaker -> end of its cooldown (wall ms), from alerts or the seed
        self.kill = False  # from risk's gauges, set at once by a kill_switch alert
        self.orphan_note = ""
        self.alerts: deque[dict[str, Any]] = deque(maxlen=MAX_ALERTS)
        self.venues: dict[str, dict[str, Any]] = {}

    # ----- events in
    def on_event(self, event: Event) -> None:
        match event:
            case Execution():
                self._on_execution(event)
            case VenueState():
                self._on_venue(event)
            case Alert():
                self._on_alert(event)
            case Stats() if event.service == "risk":
                self._on_risk_stats(event)

    def _on_execution(self, e: Execution) -> None:
        rec = self.recorder.execution(e)
        done_ms = rec["done_at_ns"] // 1_000_000 if rec["done_at_ns"] else self.wall_ms()
        rec["done_ms"] = done_ms
        strategy = rec["strategy"]
        with self.lock:
            self.executions.append(rec)
            self.n_executions += 1
            cum = self._cum[strategy] = self._cum.get(strategy, 0.0) + e.pnl_usd
            series = self.pnl.setdefault(strategy, [(self.started_ms, 0.0)])
            series.append((done_ms, cum))
            thin(series, MAX_POINTS)

    def _on_venue(self, vs: VenueState) -> None:
        name = self.venue_names[vs.venue] if 0 <= vs.venue < len(self.venue_names) else f"#{vs.venue}"
        with self.lock:
            self.venues[name] = {
                "reachable": vs.reachable,
                "weight_1m": vs.weight_1m,
                "weight_limit_1m": vs.weight_limit_1m,
                "orders_10s": vs.orders_10s,
                "orders_limit_10s": vs.orders_limit_10s,
                "orders_1d": vs.orders_1d,
                "orders_limit_1d": vs.orders_limit_1d,
                "blocked_until_ms": vs.blocked_until_ms,
                "open_orders": vs.open_orders,
                "at_ms": vs.ts_ns // 1_000_000,
            }

    def _on_alert(self, a: Alert) -> None:
        rec = self.recorder.alert(a)
        with self.lock:
            self.alerts.append({**rec, "at_ms": a.ts_ns // 1_000_000})
            if a.source != "risk":
                return
            breaker = BREAKER_OF_ALERT.get(a.kind)
            if breaker == "failure" and CARRY_ALERT_TEXT in a.message:
                breaker = "carry_failure"
            if breaker is not None:
                self.until_ms[breaker] = a.until_ms
            elif a.kind == "kill_switch":
                self.kill = True
            elif a.kind == "orphan":
                self.orphan_note = a.message

    def _on_risk_stats(self, st: Stats) -> None:
        """Risk's gauges are the truth about what is open now. Its events arrive in order, so these gauges were
        taken after any alert heard before them: a closed gauge ends a cooldown early (an operator's resume)."""
        now = self.wall_ms()
        with self.lock:
            reseed = st.pid != self.risk_pid
            self.risk_pid = st.pid
            self.gauges = dict(st.gauges)
            self.kill = bool(st.gauges.get("halted", 0.0))
            self.risk_heard_ms = now
            for name in ("loss", "failure"):
                gauge = st.gauges.get(f"breaker_{name}")
                until = self.until_ms.get(name, 0)
                # Closed: nothing to count down. Open past its known end by more than a heartbeat: a later trip
                # whose alert was not heard; its end is unknown until risk is asked or the next alert.
                if gauge == 0.0 or (gauge and until and now - until > STALE_END_MS):
                    self.until_ms[name] = 0
            if not st.gauges.get("breaker_failure"):
                self.orphan_note = ""  # the orphan latch holds the failure gauge open until a resume
        if reseed and self.ask_risk is not None:
            self.seed()

    def seed(self) -> None:
        """The breakers' end times and the orphan latch from risk itself: no event repeats them, and a breaker
        restored from risk's state file (or tripped before this API started) sent its alert long ago."""
        assert self.ask_risk is not None
        try:
            status = self.ask_risk()
        except (ControlError, OSError) as exc:
            log.info("risk's breakers not read (%s); the next alerts will tell", exc)
            return
        breakers = status.get("breakers", {})
        with self.lock:
            for name in ("loss", "failure", "carry_failure"):
                until = breakers.get(name, {}).get("until_ms")
                if isinstance(until, int):
                    self.until_ms[name] = max(until, self.until_ms.get(name, 0))
            orphan = breakers.get("orphan", {})
            self.orphan_note = str(orphan.get("note") or "") if orphan.get("open") else ""

    # ----- view out
    def view(self, executions: int) -> dict[str, Any]:
        """The monitor's part from events: newest executions first; ``left_s`` counts down to a breaker's end."""
        now = self.wall_ms()
        with self.lock:
            gauges = self.gauges
            return {
                "since_ms": self.started_ms,
                "executions_seen": self.n_executions,
                "executions": list(reversed(self.executions))[:executions],
                "pnl_by_strategy": {s: [list(p) for p in series] for s, series in self.pnl.items()},
                "risk": self._risk_view(gauges, now),
                "venues": {name: dict(v) for name, v in self.venues.items()},
                "alerts": list(reversed(self.alerts)),
            }

    def _risk_view(self, gauges: dict[str, float] | None, now: int) -> dict[str, Any]:
        g = gauges or {}
        breakers: dict[str, dict[str, Any]] = {}
        for name in ("loss", "failure", "carry_failure"):
            until = self.until_ms.get(name, 0)
            counting = until > now
            # A known end ahead counts down; an open gauge without one (the orphan latch, or a cooldown this
            # process did not hear start) is open with no end shown. The carry's breaker has no gauge.
            unknown_end = bool(g.get(f"breaker_{name}")) and until == 0 and not (name == "failure" and self.orphan_note)
            breakers[name] = {"open": counting or unknown_end, "until_ms": until if counting else 0,
                              "left_s": round((until - now) / 1000, 1) if counting else None}
        breakers["orphan"] = {"open": bool(self.orphan_note), "until_ms": 0, "left_s": None, "note": self.orphan_note}
        reasons = ["kill switch"] if self.kill else []
        for name, b in breakers.items():
            if not b["open"]:
                continue
            what = name.replace("_", " ") + " breaker"
            if b["left_s"] is not None:
                what += f", {b['left_s']:.0f} s left"
            elif name == "orphan":
                what += ", until an operator resumes"
            reasons.append(what)
        return {
            "heard": gauges is not None,
            "age_s": round((now - self.risk_heard_ms) / 1000, 1) if gauges is not None else None,
            "kill_switch": self.kill,
            "halted": bool(reasons),
            "halt_reasons": reasons,
            "breakers": breakers,
            "daily_pnl_usd": g.get("daily_pnl_usd") if gauges is not None else None,
            "max_daily_loss_usd": self.max_daily_loss_usd,
            "in_flight": int(g.get("in_flight", 0)) if gauges is not None else None,
        }

    def on_resumed(self) -> None:
        """An operator's resume through this API cleared every breaker. Risk's next gauges say so for the others;
        the carry's breaker has no gauge."""
        with self.lock:
            self.until_ms.pop("carry_failure", None)


class TapeReader:
    """The subscriber thread: one SUB socket on the executor's and risk's event endpoints, feeding a ``Tape``."""

    def __init__(self, tape: Tape, endpoints: list[str]) -> None:
        self.tape = tape
        self.endpoints = endpoints
        self.codec = event_codec()
        self.n_events = 0
        self.n_malformed = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="monitor-tape", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
        sub = ctx.socket(zmq.SUB)
        sub.linger = 0
        try:
            for topic in TOPICS:
                sub.setsockopt(zmq.SUBSCRIBE, topic)
            for endpoint in self.endpoints:
                sub.connect(endpoint)  # ZeroMQ keeps trying until the service binds, and after it restarts
            while not self._stop.is_set():
                if sub.poll(POLL_MS, zmq.POLLIN):
                    self._drain(sub)
        finally:
            sub.close()
            ctx.term()

    def _drain(self, sub: zmq.Socket[bytes]) -> None:
        for _ in range(1000):
            try:
                frames = sub.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            try:
                event = self.codec.decode(frames[-1])
            except Exception as exc:
                self.n_malformed += 1
                if self.n_malformed == 1:
                    log.warning("monitor: an undecodable event (%s); counting further ones", exc)
                continue
            self.n_events += 1
            try:
                self.tape.on_event(event)
            except Exception:  # one bad event must not end the monitor's feed
                log.exception("monitor: event %s not folded", type(event).__name__)


def risk_asker(endpoint: str) -> Callable[[], dict[str, Any]]:
    def ask() -> dict[str, Any]:
        reply = request(endpoint, "risk", None, SEED_TIMEOUT_S)
        if not reply.ok:
            raise ControlError(f"risk refused 'risk': {reply.error}")
        return dict(reply.data)

    return ask
