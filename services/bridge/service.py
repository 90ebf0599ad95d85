"""Bridge actor: every service's events in; shared memory, Prometheus and the external sinks out (journal or
PostgreSQL, Redis). Never on the hot path."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import zmq

from services.bridge.metrics import start_metrics_server
from services.bridge.records import Recorder
from services.bridge.sinks import Sink, build_sinks
from services.bridge.state import BridgeState
from shared.codec import Codec, event_codec
from shared.messages import Event
from shared.runtime.host import ProcessContext
from shared.runtime.service import Service
from shared.shm import ShmWriter, shm_path

log = logging.getLogger(__name__)

SHM_INTERVAL_S = 0.1


class Bridge(Service):
    def __init__(self, ctx: ProcessContext) -> None:
        super().__init__("bridge", ctx)
        self.sources = ctx.endpoints.all_services()
        self.agg = BridgeState(ctx.registry, self.sources)
        self._codec: Codec[Event] = event_codec()
        self._sub: zmq.Socket[bytes] | None = None
        self._writer: ShmWriter | None = None
        self._metrics_server: object | None = None
        self.recorder = Recorder(ctx.registry, ctx.cfg.sinks.metrics_interval_s)
        self.sinks: list[Sink] = []
        self.n_events = 0
        self.metrics_port = 0

    async def on_start(self) -> None:
        self.sinks = build_sinks(self.cfg, self.ctx.run_dir)
        for sink in self.sinks:
            await sink.start()
            log.info("sink %s started", sink.name)
        sub = self.socket(zmq.SUB)
        sub.setsockopt(zmq.SUBSCRIBE, b"ev.")
        for service in self.sources:
            sub.connect(self.ctx.endpoints.events(service))
        self._sub = sub
        self.watch(sub, self._on_events)
        sinks = self.cfg.sinks
        if sinks.shm:
            self._writer = ShmWriter(Path(shm_path(self.cfg.instance)), self.agg.layout)
            self.spawn(self._shm_loop())
        if sinks.prometheus_port:
            self._metrics_server, self.metrics_port = start_metrics_server(
                self.agg, sinks.prometheus_host, sinks.prometheus_port, own_counters=self.counters
            )
            log.info("Prometheus metrics on http://%s:%d/metrics", sinks.prometheus_host, self.metrics_port)

    async def on_stop(self) -> None:
        # Take what the other services said last (they stop before the bridge), then write it out.
        self._on_events()
        if self._writer is not None:
            self._writer.publish(self.agg.snapshot())
        for sink in self.sinks:
            await sink.stop()

    def _on_events(self) -> None:
        sub = self._sub
        if sub is None or sub.closed:
            return
        self.drain(sub, self._codec, self._on_event, "event")

    def _on_event(self, event: Event) -> None:
        self.n_events += 1
        self.agg.on_event(event)
        record = self.recorder.record(event)
        if record is not None:
            for sink in self.sinks:
                sink.submit(record)

    async def _shm_loop(self) -> None:
        writer = self._writer
        assert writer is not None
        while True:
            writer.publish(self.agg.snapshot())
            await asyncio.sleep(SHM_INTERVAL_S)

    def counters(self) -> dict[str, int]:
        out = {"events": self.n_events, "malformed": self.n_malformed}
        for sink in self.sinks:
            out.update({f"{sink.name}_{k}": v for k, v in sink.counters().items()})
        return out
