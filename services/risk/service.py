"""Risk actor: every opportunity passes here; approved ones go on as OrderIntents."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import zmq

from services.risk.rules import APPROVED, EXECUTOR_UNAVAILABLE, RiskBook
from shared.codec import Codec, event_codec, intent_codec, opportunity_codec
from shared.messages import (
    TOPIC_EXECUTION,
    Command,
    Event,
    Execution,
    Opportunity,
    OrderIntent,
    Reply,
    RiskDecision,
)
from shared.runtime.host import ProcessContext
from shared.runtime.outlet import Outlet, SocketOutlet
from shared.runtime.service import Service

log = logging.getLogger(__name__)


class RiskEngine(Service):
    def __init__(self, ctx: ProcessContext) -> None:
        super().__init__("risk", ctx)
        self.book = RiskBook(ctx.cfg.risk)
        self.intents: Outlet[OrderIntent] = Outlet.unconnected("intents")
        self._opps: Codec[Opportunity] = opportunity_codec()
        self._execution_codec: Codec[Event] = event_codec()
        self._pull: zmq.Socket[bytes] | None = None
        self._exec_sub: zmq.Socket[bytes] | None = None
        self.n_foreign_executions = 0
        self._decide_samples: list[int] = []

    async def on_start(self) -> None:
        if not self.intents.connected:
            push = self.socket(zmq.PUSH)
            push.connect(self.ctx.endpoints.intents)
            self.intents = SocketOutlet("intents", push, intent_codec())
            sub = self.socket(zmq.SUB)
            sub.setsockopt(zmq.SUBSCRIBE, TOPIC_EXECUTION)
            sub.connect(self.ctx.endpoints.events("executor"))
            self._exec_sub = sub
            self.watch(sub, self._on_executor_events)
        pull = self.socket(zmq.PULL)
        pull.bind(self.ctx.endpoints.opportunities)
        self._pull = pull
        self.watch(pull, self._on_opportunities)

    def link_in_process(self, peers: dict[str, object]) -> None:
        executor = peers.get("Executor")
        if executor is None:
            return
        handler: Callable[[OrderIntent], bool] = executor.on_intent  # type: ignore[attr-defined]
        self.intents = Outlet.direct("intents", handler)
        executor.local_listeners.append(self._on_local_event)  # type: ignore[attr-defined]

    def _on_opportunities(self) -> None:
        assert self._pull is not None
        self.drain(self._pull, self._opps, self.on_opportunity, "opportunity")

    def on_opportunity(self, opp: Opportunity) -> bool:
        now = time.monotonic_ns()
        reason = self.book.decide(opp, now)
        decided = time.monotonic_ns()
        if reason == APPROVED and not self.intents.send(OrderIntent(opportunity=opp, decided_ns=decided)):
            self.book.handoff_failed(opp)
            reason = EXECUTOR_UNAVAILABLE
        self._decide_samples.append(decided - opp.detected_ns)
        self.publish(RiskDecision(opportunity=opp, approved=reason == APPROVED, reason=reason, decided_ns=decided))
        return reason == APPROVED

    def _on_executor_events(self) -> None:
        assert self._exec_sub is not None
        self.drain(self._exec_sub, self._execution_codec, self._on_local_event, "executor event")

    def _on_local_event(self, event: Event) -> None:
        if isinstance(event, Execution) and not self.book.on_execution(event):
            self.n_foreign_executions += 1

    def on_command(self, cmd: Command) -> Reply | None:
        if cmd.cmd == "kill":
            self.book.halted = True
            log.warning("kill switch engaged")
            return Reply(ok=True, data={"halted": True})
        if cmd.cmd == "resume":
            self.book.halted = False
            return Reply(ok=True, data={"halted": False})
        return None

    def counters(self) -> dict[str, int]:
        c = {f"decision.{k}": v for k, v in self.book.decisions.items()}
        c["in_flight"] = len(self.book.in_flight)
        c["malformed"] = self.n_malformed
        c["foreign_executions"] = self.n_foreign_executions
        return c

    def gauges(self) -> dict[str, float]:
        return {"daily_pnl_usd": self.book.daily_pnl_usd, "halted": float(self.book.halted)}

    def take_latencies(self) -> dict[str, list[int]]:
        samples, self._decide_samples = self._decide_samples, []
        return {"detect_to_decide": samples[-512:]}
