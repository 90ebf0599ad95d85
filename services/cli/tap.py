"""A plain subscriber on services' events endpoints: what tests and `draizer bench` observe the pipeline with."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable

import zmq

from shared.codec import event_codec
from shared.messages import STRATEGY_NAMES, Event, Execution, Fill, Opportunity, OrderUpdate, RiskDecision, Stats


class EventTap:
    """Connect before the services bind (ZeroMQ reconnects), so nothing is missed from the start."""

    def __init__(self, endpoints: Iterable[str], on_event: Callable[[Event], None] | None = None) -> None:
        self.ctx = zmq.Context()
        self.sub = self.ctx.socket(zmq.SUB)
        self.sub.linger = 0
        self.sub.rcvhwm = 0  # never drop: callers compare exact counts
        self.sub.setsockopt(zmq.SUBSCRIBE, b"ev.")
        for ep in endpoints:
            self.sub.connect(ep)
        self.codec = event_codec()
        self.counts: Counter[str] = Counter()
        self.stats: dict[str, Stats] = {}
        self.on_event = on_event

    def drain(self, timeout_ms: int = 0) -> Counter[str]:
        if timeout_ms and not self.sub.poll(timeout_ms):
            return self.counts
        while True:
            try:
                _topic, payload = self.sub.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return self.counts
            ev = self.codec.decode(payload)
            self._count(ev)
            if self.on_event is not None:
                self.on_event(ev)

    def _count(self, ev: Event) -> None:
        match ev:
            case Opportunity(strategy=strategy):
                self.counts["opportunities"] += 1
                self.counts[f"strategy:{STRATEGY_NAMES[strategy]}"] += 1
            case RiskDecision(approved=True):
                self.counts["approved"] += 1
            case RiskDecision(reason=reason):
                self.counts["rejected"] += 1
                self.counts[f"reason:{reason}"] += 1
            case OrderUpdate(status=status):
                self.counts["orders"] += 1
                self.counts[f"order:{status}"] += 1
            case Fill():
                self.counts["fills"] += 1
            case Execution(outcome=outcome):
                self.counts["executions"] += 1
                self.counts[f"outcome:{outcome}"] += 1
            case Stats(service=name):
                self.stats[name] = ev

    def close(self) -> None:
        """Idempotent: a test closes it when done and again, as a finalizer, when it failed half-way."""
        if not self.sub.closed:
            self.sub.close()
            self.ctx.term()
