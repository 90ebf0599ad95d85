"""Risk actor: every opportunity passes here; approved ones go on as OrderIntents.

In: opportunities (PULL, or direct calls from a fused detector), the executor's Execution, VenueState and
Alert events (SUB, or its ``local_listeners`` when fused). Out: a ``RiskDecision`` per opportunity, approved
``OrderIntent``s, ``Alert``s. Control: ``kill`` (halt, persist, alert, then forward ``kill`` to the executor,
which cancels every open order; args: ``reason``, and ``persist: false`` for a wind-down halt that ends with
the process), ``resume`` (clear the kill switch and every breaker; forwarded too, so the executor takes
intents again), ``risk`` (status).

Persistence (``services.risk.state``): executions, halts, trips and resumes are written at once, before
anything else happens — they are money and safety state. Approvals only reserve (slots, balances, orders)
and happen on the hot path, so they mark the state dirty and a 100 ms timer writes it from a worker thread:
the decision costs a flag, not an fsync. A crash loses at most 100 ms of reservations, which only delays
trading (a lost reservation's Execution is still booked, as a foreign one).

Executions the events socket lost (a restart of risk or of the executor) are booked from the executor's numbered
list, once a second and before the ``risk`` command answers ``{"catch_up": true}`` (the settlement asks so):
``services/risk/catchup.py``. Session PnL is the run's (``state.session``), so it survives a restart of risk.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import zmq

from services.risk.catchup import CatchUp, ListingError
from services.risk.rules import APPROVED, EXECUTOR_UNAVAILABLE, REASONS, RiskBook
from services.risk.state import MS_PER_DAY, StateStore, decode_state, encode_state
from shared import halt
from shared.codec import Codec, event_codec, intent_codec, opportunity_codec
from shared.config import Config
from shared.messages import (
    TOPIC_ALERT,
    TOPIC_EXECUTION,
    TOPIC_VENUE,
    Alert,
    Command,
    Event,
    Execution,
    Opportunity,
    OrderIntent,
    Reply,
    RiskDecision,
    VenueState,
)
from shared.runtime.control_client import ControlError, request
from shared.runtime.host import ProcessContext
from shared.runtime.lifecycle import State
from shared.runtime.outlet import Outlet, SocketOutlet
from shared.runtime.service import Service
from shared.runtime.session import current_session

log = logging.getLogger(__name__)

STATE_WRITE_INTERVAL_S = 0.1  # lazy writes (approvals) and the clock's duties run this often
# The CLI waits 5 s and the HTTP API 3 s for risk's answer: the executor's must come back well before that.
FORWARD_TIMEOUT_S = 2.0  # inside the HTTP API's 3 s wait; the executor answers at once and cancels after
FORWARDED = frozenset({"kill", "resume"})
MAX_EARLY_EVENTS = 100_000  # kept before the state is loaded (a long reconciliation's VenueStates, its executions)
CATCH_UP_INTERVAL_S = 1.0  # how often risk asks the executor for executions it may have missed
CATCH_UP_TIMEOUT_S = 2.0  # the settlement waits 10 s for risk's answer, which may include one catch-up
CATCH_UP_ROUNDS = 50  # answers per catch-up (each up to session_books.LIST_LIMIT executions)


def halt_gauges(book: RiskBook, wall_ms: int) -> dict[str, float]:
    """Why approvals stop, for the status line and the API (``shared/halt.py``): flags, and the wall-clock
    millisecond each cooldown ends (0: closed). Every field is in every heartbeat, so a cleared one reads 0."""
    st, br = book.state, book.state.breakers
    daily_loss = st.daily_pnl_usd <= -book.limits.max_daily_loss_usd
    return {
        halt.KILL: float(st.kill),
        halt.KILL_SESSION: float(book.session_kill and not st.kill),
        halt.ORPHAN: float(br.orphan),
        halt.LOSS_UNTIL: float(br.loss_until_ms if br.loss_until_ms > wall_ms else 0),
        halt.FAILURE_UNTIL: float(br.failure_until_ms if br.failure_until_ms > wall_ms else 0),
        halt.CARRY_FAILURE_UNTIL: float(br.carry_failure_until_ms if br.carry_failure_until_ms > wall_ms else 0),
        halt.DAILY_LOSS_UNTIL: float((st.day + 1) * MS_PER_DAY if daily_loss else 0),
    }


def state_path(cfg: Config, run_dir: Path) -> Path:
    """``risk.state_file``; a relative path is taken under the run directory."""
    raw = cfg.risk.state_file
    if not raw:
        return run_dir / "state" / "risk.json"
    p = Path(raw)
    return p if p.is_absolute() else run_dir / p


class RiskEngine(Service):
    def __init__(self, ctx: ProcessContext) -> None:
        super().__init__("risk", ctx)
        self.book = RiskBook(ctx.cfg.risk, ctx.registry, clock=ctx.clock)
        self.store = StateStore(state_path(ctx.cfg, ctx.run_dir))
        self.intents: Outlet[OrderIntent] = Outlet.unconnected("intents")
        self._opps: Codec[Opportunity] = opportunity_codec()
        self._executor_codec: Codec[Event] = event_codec()
        self._pull: zmq.Socket[bytes] | None = None
        self._exec_sub: zmq.Socket[bytes] | None = None
        self._decide_samples: list[int] = []
        self._generation = 0
        self.n_alerts = 0
        self.n_executor_alerts = 0
        self.n_venue_states = 0
        self.n_state_write_errors = 0
        self._writer: asyncio.Task[None] | None = None  # the execution state write in flight (_persist_soon)
        self._executions_pending = False
        self.session = current_session()  # the run: session PnL continues across restarts within it
        self.catch_up = CatchUp(self.book)
        self._catch_up_lock = asyncio.Lock()  # the periodic catch-up and a settlement's never interleave
        self._catch_up_error = ""
        self._executor: Any = None  # the executor in this process (fused, single): asked by a call, not a socket
        # In one process with the executor, its events reach risk from the executor's start on (its reconciliation
        # publishes), before risk has read its state: kept until then, never booked into (nor written over) it.
        self._loaded = False
        self._early: list[Event] = []

    # ----- lifecycle
    async def on_start(self) -> None:
        self._load_state()  # before any socket: a corrupt file must stop the start, not trade on zeros
        self._loaded = True
        early, self._early = self._early, []
        for event in early:
            self._on_local_event(event)
        if not self.intents.connected:
            push = self.socket(zmq.PUSH)
            push.connect(self.ctx.endpoints.intents)
            self.intents = SocketOutlet("intents", push, intent_codec())
            sub = self.socket(zmq.SUB)
            for topic in (TOPIC_EXECUTION, TOPIC_VENUE, TOPIC_ALERT):
                sub.setsockopt(zmq.SUBSCRIBE, topic)
            sub.connect(self.ctx.endpoints.events("executor"))
            self._exec_sub = sub
            self.watch(sub, self._on_executor_events)
        pull = self.socket(zmq.PULL)
        pull.bind(self.ctx.endpoints.opportunities)
        self._pull = pull
        self.watch(pull, self._on_opportunities)
        self.spawn(self._housekeeping())
        self.spawn(self._catch_up_loop())

    async def on_stop(self) -> None:
        if self._writer is not None and not self._writer.done():
            await asyncio.wait([self._writer])  # the write in flight, then the last state (generations order them)
        self._persist_now()

    def _load_state(self) -> None:
        data = self.store.read()
        if data is None:
            log.info("no risk state at %s: starting from zero", self.store.path)
            self.book.begin_session(self.session)
            return
        reg = self.registry
        state, warnings = decode_state(data, reg.venue_names, reg.symbol_names, str(self.store.path))
        for warning in warnings:
            log.warning("%s: %s", self.store.path, warning)
        self.book = RiskBook(self.cfg.risk, reg, state, self.clock)
        self.catch_up = CatchUp(self.book)
        self.book.roll_day(self.clock.time_ns())
        if self.book.begin_session(self.session):
            log.info("run %s continues: session pnl %.4f USD, executions booked up to #%d", self.session,
                     state.session_pnl_usd, state.executor_seq)
        if self.book.halted(self.clock.time_ns()):
            log.warning("starting HALTED (state of the last run): kill switch %s, breakers %s; `draizer resume` "
                        "clears it", "ON" if state.kill else "off", self.book.breakers.status(self.clock.time_ms()))
        b = state.breakers
        log.info(
            "risk state loaded from %s: daily pnl %.2f USD, %d in flight, kill switch %s, breakers loss %s "
            "failure %s orphan %s", self.store.path, state.daily_pnl_usd, len(state.in_flight),
            "ON" if state.kill else "off", b.loss_until_ms or "closed", b.failure_until_ms or "closed", b.orphan,
        )

    def link_in_process(self, peers: dict[str, object]) -> None:
        executor = peers.get("Executor")
        if executor is None:
            return
        handler: Callable[[OrderIntent], bool] = executor.on_intent  # type: ignore[attr-defined]
        self._executor = executor
        self.intents = Outlet.direct("intents", handler)
        executor.local_listeners.append(self._on_local_event)  # type: ignore[attr-defined]

    # ----- the hot path
    def _on_opportunities(self) -> None:
        assert self._pull is not None
        self.drain(self._pull, self._opps, self.on_opportunity, "opportunity")

    def on_opportunity(self, opp: Opportunity) -> bool:
        now = self.clock.monotonic_ns()
        reason = self.book.decide(opp, now, self.clock.time_ns())
        decided = self.clock.monotonic_ns()
        if reason == APPROVED and not self.intents.send(OrderIntent(opportunity=opp, decided_ns=decided)):
            self.book.handoff_failed(opp)
            reason = EXECUTOR_UNAVAILABLE
        self._decide_samples.append(decided - opp.detected_ns)
        self.publish(RiskDecision(opportunity=opp, approved=reason == APPROVED, reason=reason, decided_ns=decided))
        return reason == APPROVED

    # ----- the executor's events
    def _on_executor_events(self) -> None:
        assert self._exec_sub is not None
        self.drain(self._exec_sub, self._executor_codec, self._on_local_event, "executor event")

    def _on_local_event(self, event: Event) -> None:
        if not self._loaded:
            if len(self._early) < MAX_EARLY_EVENTS:
                self._early.append(event)
            return
        if isinstance(event, VenueState):
            self.book.on_venue_state(event, self.clock.monotonic_ns())
            self.n_venue_states += 1
        elif isinstance(event, Execution):
            alerts = self.catch_up.published(event, self.clock.time_ns())
            if alerts is None:  # booked already from the executor's list
                return
            self._persist_soon()  # booked money: written at once, off the event loop
            for alert in alerts:
                self._alert(alert)
        elif isinstance(event, Alert):
            self.n_executor_alerts += 1
            log.warning("alert from %s (%s): %s", event.source, event.kind, event.message)
            ours = self.book.on_alert(event)
            if ours is not None:
                self._persist_now()
                self._alert(ours)

    def _alert(self, alert: Alert) -> None:
        self.n_alerts += 1
        log.warning("ALERT %s: %s", alert.kind, alert.message)
        self.publish(alert)

    # ----- persistence and the clock
    def _snapshot(self) -> tuple[int, bytes]:
        self._generation += 1
        self.book.dirty = False
        reg = self.registry
        saved_ms = self.clock.time_ns() // 1_000_000
        return self._generation, encode_state(self.book.state, reg.venue_names, reg.symbol_names, saved_ms)

    def _write(self, generation: int, data: bytes) -> bool:
        if not self._loaded:  # a state that is not the file's would replace it: money state lost
            log.error("risk state not written: it was not loaded yet")
            return False
        try:
            self.store.write(data, generation)
        except OSError as exc:
            self.n_state_write_errors += 1
            self.book.dirty = True  # try again on the next tick
            log.error("cannot write risk state %s: %s", self.store.path, exc)
            return False
        return True

    def _persist_now(self) -> None:
        self._write(*self._snapshot())

    def _persist_soon(self) -> None:
        """An execution's state goes to disk at once but not on the event loop: the write (fsync, rename, the
        directory's fsync: ~1 ms here) runs on a worker thread, one at a time; executions booked meanwhile ride
        the next write (group commit). Decisions never wait for it. A crash can lose what was booked after the
        last completed write (a write takes ~1 ms here): risk's daily PnL and breaker windows would then miss those
        executions after the restart (the executor's order journal and the venues still have them; rebuilding
        risk's books from the journal is issue 12's work). Stopping writes synchronously."""
        self.book.dirty = True
        if self.state is not State.RUNNING:  # stopping: no task would outlive the loop, write it now
            self._persist_now()
            return
        self._executions_pending = True
        if self._writer is None or self._writer.done():
            self._writer = self.spawn(self._write_executions())

    async def _write_executions(self) -> None:
        while self._executions_pending:  # approvals alone do not loop here: the 100 ms housekeeping writes them
            self._executions_pending = False
            if not await asyncio.to_thread(self._write, *self._snapshot()):
                return  # a failing disk: the 100 ms housekeeping retries, so the error is not a busy loop

    async def _housekeeping(self) -> None:
        while True:
            await asyncio.sleep(STATE_WRITE_INTERVAL_S)
            self.tick(self.clock.time_ns())
            if self.book.dirty and (self._writer is None or self._writer.done()):
                await asyncio.to_thread(self._write, *self._snapshot())

    def tick(self, wall_ns: int) -> None:
        """The clock's duties: expire approvals with no Execution, end cooldowns, roll the UTC day."""
        book = self.book
        for oid in book.expire(wall_ns):
            log.warning("opportunity %d: approved 120 s ago and no Execution came back; its slot, symbols and "
                        "balances are released", oid)
        ended = book.breakers.poll(wall_ns // 1_000_000)
        for name in ended:
            log.warning("%s breaker cooldown over: trading resumes", name)
        rolled = book.roll_day(wall_ns)
        self.catch_up.prune(wall_ns)
        if rolled:
            log.info("new UTC day %d: daily PnL starts from zero", book.state.day)
        if ended or rolled:
            self._persist_now()

    # ----- executions the events socket lost
    async def _catch_up_loop(self) -> None:
        while True:
            await self.catch_up_now()
            await asyncio.sleep(CATCH_UP_INTERVAL_S)

    async def catch_up_now(self) -> str:
        """Book what the executor numbered after ``executor_seq`` and risk never heard of; "" or why not."""
        async with self._catch_up_lock:
            for _ in range(CATCH_UP_ROUNDS):
                st = self.book.state
                before = (st.executor_seq, self.catch_up.n_caught_up)
                try:
                    reply = await self._ask_executor("booked", {"after": st.executor_seq,
                                                                "session": st.executor_session})
                    if not reply.ok:
                        raise ListingError(reply.error)
                    alerts, more = self.catch_up.listed(reply.data, self.clock.time_ns())
                except (ControlError, ListingError) as exc:
                    return self._catch_up_failed(str(exc))
                if (st.executor_seq, self.catch_up.n_caught_up) != before:
                    self._persist_soon()  # booked money (or the mark that says it is booked): written at once
                for alert in alerts:
                    self._alert(alert)
                if not more:
                    break
        if self._catch_up_error:
            log.info("caught up with the executor's executions again (up to #%d)", self.book.state.executor_seq)
            self._catch_up_error = ""
        return ""

    def _catch_up_failed(self, why: str) -> str:
        if not self._catch_up_error:  # once per outage: the executor may simply be restarting
            log.warning("cannot catch up with the executor's executions (%s); retrying every %.0f s", why,
                        CATCH_UP_INTERVAL_S)
        self._catch_up_error = why
        return why

    async def _ask_executor(self, cmd: str, args: dict[str, Any]) -> Reply:
        if self._executor is not None:
            reply = self._executor.on_command(Command(cmd, args))
            if not isinstance(reply, Reply):
                raise ControlError(f"the executor in this process did not answer {cmd!r}")
            return reply
        endpoint = self.ctx.endpoints.control("executor")
        return await asyncio.to_thread(request, endpoint, cmd, args, CATCH_UP_TIMEOUT_S)

    async def _status_caught_up(self) -> Reply:
        error = await self.catch_up_now()
        data = self.book.status(self.clock.time_ns())
        data["catch_up"] = {"ok": not error, "error": error}
        return Reply(ok=True, data=data)

    # ----- control
    def operator(self, cmd: Command) -> dict[str, Any]:
        """Apply ``kill`` / ``resume`` to risk itself: halted or cleared, persisted, alerted."""
        if cmd.cmd == "kill":
            persist = cmd.args.get("persist", True) is not False
            alert = self.book.kill(str(cmd.args.get("reason", "operator command")), persist)
            self._persist_now()
            self._alert(alert)
            return {"halted": True, "persisted": persist}
        cleared = self.book.resume()
        self._persist_now()
        log.warning("resumed by the operator: cleared %s", ", ".join(cleared) or "nothing (was not halted)")
        return {"halted": False, "cleared": cleared}

    async def _operator_command(self, cmd: Command) -> Reply:
        """Risk acts at once; the reply waits for the executor's own answer (cancelled orders, etc.)."""
        data = self.operator(cmd)
        data["executor"] = await self._forward(cmd.cmd)
        return Reply(ok=True, data=data)

    async def _forward(self, cmd: str) -> dict[str, Any] | str:
        """The executor's answer to ``cmd``, or why there is none (risk's own action stands either way)."""
        endpoint = self.ctx.endpoints.control("executor")
        try:
            reply = await asyncio.to_thread(request, endpoint, cmd, None, FORWARD_TIMEOUT_S)
        except ControlError as exc:
            log.error("%s not forwarded: %s", cmd, exc)
            return f"executor not answering: {exc}"
        if not reply.ok:
            log.error("executor refused %s: %s", cmd, reply.error)
            return f"executor refused {cmd}: {reply.error}"
        return dict(reply.data)

    def on_command(self, cmd: Command) -> Reply | Awaitable[Reply] | None:
        if cmd.cmd in FORWARDED:
            return self._operator_command(cmd)
        if cmd.cmd == "risk":
            if cmd.args.get("catch_up"):
                return self._status_caught_up()
            return Reply(ok=True, data=self.book.status(self.clock.time_ns()))
        return None

    # ----- heartbeat
    def counters(self) -> dict[str, int]:
        book = self.book
        c = {f"decision.{k}": book.decisions.get(k, 0) for k in REASONS}
        c["in_flight"] = len(book.state.in_flight)
        c["in_flight_expired"] = book.n_in_flight_expired
        c["malformed"] = self.n_malformed
        c["foreign_executions"] = book.n_foreign_executions
        c["alerts"] = self.n_alerts
        c["executor_alerts"] = self.n_executor_alerts
        c["venue_states"] = self.n_venue_states
        c["malformed_balances"] = book.venues.malformed_balances
        c["caught_up"] = self.catch_up.n_caught_up
        c["duplicate_executions"] = self.catch_up.n_duplicates
        c["unlisted_executions"] = self.catch_up.n_unlisted
        c["state_writes"] = self.store.writes
        c["state_write_errors"] = self.n_state_write_errors
        return c

    def gauges(self) -> dict[str, float]:
        book = self.book
        wall_ms = self.clock.time_ns() // 1_000_000
        return {
            "daily_pnl_usd": book.state.daily_pnl_usd,
            "halted": float(book.state.kill or book.session_kill),
            "breaker_loss": float(book.breakers.loss_open(wall_ms)),
            "breaker_failure": float(book.breakers.failure_open(wall_ms)),
            "in_flight": float(len(book.state.in_flight)),
            **halt_gauges(book, wall_ms),
        }

    def take_latencies(self) -> dict[str, list[int]]:
        samples, self._decide_samples = self._decide_samples, []
        return {"detect_to_decide": samples[-512:]}
