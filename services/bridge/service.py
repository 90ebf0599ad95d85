"""Bridge actor: every service's events in; shared memory, Prometheus and the external sinks out (journal or
PostgreSQL, Redis). Never on the hot path.

Nothing is lost across a restart of the bridge or of a source: events arrive in each source's sequence, live or
caught up from the source's event log (``catchup.py``); a checkpoint every half second (``checkpoint.py``) keeps
the counts and how far the durable sink has stored each source, and acknowledges that point to the sources so
their logs can let go of it.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from pathlib import Path
from wsgiref.simple_server import WSGIServer

import zmq

from services.bridge import checkpoint
from services.bridge.catchup import Sequencer
from services.bridge.journal import JournalSink, stored_through
from services.bridge.metrics import start_metrics_server
from services.bridge.records import Recorder
from services.bridge.sinks import Sink, build_sinks
from services.bridge.state import BridgeState
from shared.codec import Codec, event_codec
from shared.messages import Event
from shared.runtime.event_log import log_dir, write_acked
from shared.runtime.host import ProcessContext
from shared.runtime.service import MAX_DRAIN, SEQ_SEP, Service
from shared.runtime.session import current_session
from shared.shm import ShmWriter, shm_path

log = logging.getLogger(__name__)

SHM_INTERVAL_S = 0.1
CHECKPOINT_INTERVAL_S = 0.5
_META = struct.Struct("<QI")  # seq, log epoch; the source's name follows


class Bridge(Service):
    durable_events = False  # nobody catches up from the bridge: its own events are only its heartbeats

    def __init__(self, ctx: ProcessContext) -> None:
        super().__init__("bridge", ctx)
        self.sources = ctx.endpoints.all_services()
        self.agg = BridgeState(ctx.registry, self.sources)
        self._codec: Codec[Event] = event_codec()
        self._sub: zmq.Socket[bytes] | None = None
        self._writer: ShmWriter | None = None
        self._metrics_server: WSGIServer | None = None
        self.recorder = Recorder(ctx.registry, ctx.cfg.sinks.metrics_interval_s)
        self.sinks: list[Sink] = []
        self.n_events = 0
        self.metrics_port = 0
        self.checkpoint_path = checkpoint.checkpoint_path(ctx.run_dir)
        self.checkpoint = checkpoint.Checkpoint()
        self.sequencer = Sequencer(ctx.run_dir, self.checkpoint, self._on_numbered)
        self._acked: dict[str, int] = {}
        self._src_names: dict[bytes, str] = {}
        self.n_checkpoint_errors = 0

    async def on_start(self) -> None:
        self.sinks = build_sinks(self.cfg, self.ctx.run_dir)
        self._restore()
        for sink in self.sinks:
            await sink.start()
            log.info("sink %s started", sink.name)
        sub = self.socket(zmq.SUB)
        sub.setsockopt(zmq.SUBSCRIBE, b"ev.")
        for service in self.sources:
            sub.connect(self.ctx.endpoints.events(service))
        self._sub = sub
        # What the sources said while no bridge listened, from their logs; live events then continue the sequence.
        self.sequencer.start(self.sources)
        self.watch(sub, self._on_events)
        self.spawn(self._checkpoint_loop())
        sinks = self.cfg.sinks
        if sinks.shm:
            # The run's session in the header: `draizer run` shows nothing from a file another run left behind.
            self._writer = ShmWriter(Path(shm_path(self.cfg.instance)), self.agg.layout, current_session())
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
        self._save_checkpoint()
        self._release()

    def _release(self) -> None:
        """Let go of the shared memory (the file stays: `draizer status` shows the last snapshot) and the metrics
        port, so a bridge started again in this process can take them. Last in on_stop: the tasks that use them
        are cancelled right after it, with no await in between."""
        if self._writer is not None:
            self._writer.publish(self.agg.snapshot())  # with what arrived while the sinks stopped
            self._writer.close()
            self._writer = None
        if self._metrics_server is not None:
            self._metrics_server.shutdown()
            self._metrics_server.server_close()
            self._metrics_server = None

    # ----- sequence and checkpoint
    def _restore(self) -> None:
        cp = checkpoint.for_session(checkpoint.load(self.checkpoint_path), current_session())
        journal = self._journal()
        if journal is not None:  # records the journal took after the checkpoint was written: not again
            for src, seq in stored_through(journal.writer.directory, cp.journal_position).items():
                cp.stored[src] = max(cp.stored.get(src, 0), seq)
            journal.position = cp.journal_position
        self.checkpoint = cp
        self.agg.restore(cp.totals)
        self.sequencer = Sequencer(self.ctx.run_dir, cp, self._on_numbered)
        self.sequencer.on_new_log = self._forget_source
        self._acked = dict(cp.stored)
        if cp.applied:
            log.info("bridge checkpoint: %d opportunities, %d approved so far; catching up %d sources from their "
                     "event logs", sum(cp.totals.opportunities.values()), cp.totals.approved, len(cp.applied))

    def _journal(self) -> JournalSink | None:
        return next((s for s in self.sinks if isinstance(s, JournalSink)), None)

    def _forget_source(self, src: str) -> None:
        """A source with a new log: its numbers start again, nothing of it is counted or stored yet."""
        self.checkpoint.applied.pop(src, None)
        self.checkpoint.stored.pop(src, None)
        self._acked.pop(src, None)

    def _stored(self) -> dict[str, int]:
        """Per source, the last event whose record every durable sink has kept."""
        stored = dict(self.checkpoint.stored)
        durable = [s for s in self.sinks if hasattr(s, "through")]
        for src in set(stored) | {k for s in durable for k in s.through}:  # type: ignore[attr-defined]
            marks = [s.through.get(src, stored.get(src, 0)) for s in durable]  # type: ignore[attr-defined]
            if marks:
                stored[src] = max(stored.get(src, 0), min(marks))
        return stored

    def _save_checkpoint(self) -> None:
        cp = self.checkpoint
        cp.applied = dict(self.sequencer.last)
        cp.stored = self._stored()
        cp.epochs = dict(self.sequencer.epochs)
        journal = self._journal()
        cp.journal_position = journal.position if journal is not None else None
        cp.totals = self.agg.totals()
        try:
            checkpoint.save(self.checkpoint_path, cp)
        except OSError as exc:
            self.n_checkpoint_errors += 1
            if self.n_checkpoint_errors == 1:
                log.error("bridge checkpoint %s: cannot write (%s); the sources keep their logs meanwhile",
                          self.checkpoint_path, exc)
            return
        for src, seq in cp.stored.items():  # only what the checkpoint holds may be let go of
            if self._acked.get(src) != seq and src in self.sequencer.epochs:
                try:
                    write_acked(log_dir(self.ctx.run_dir, src), seq)
                    self._acked[src] = seq
                except OSError:
                    self.n_checkpoint_errors += 1

    async def _checkpoint_loop(self) -> None:
        while True:
            await asyncio.sleep(CHECKPOINT_INTERVAL_S)
            self._save_checkpoint()

    # ----- events in
    def _on_events(self) -> None:
        sub = self._sub
        if sub is None or sub.closed:
            return
        on_live = self.sequencer.on_live
        for _ in range(MAX_DRAIN):
            try:
                frames = sub.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            head, payload = frames[0], frames[-1]
            _topic, sep, meta = head.partition(SEQ_SEP)
            if not sep or len(meta) < _META.size:  # an unnumbered event (a tool's, an older service's)
                self._on_payload(payload, "", 0)
                continue
            seq, epoch = _META.unpack_from(meta)
            raw = meta[_META.size :]
            src = self._src_names.get(raw)
            if src is None:
                src = self._src_names[raw] = raw.decode(errors="replace")
            on_live(src, epoch, seq, payload)

    def _on_numbered(self, src: str, seq: int, payload: bytes) -> None:
        self._on_payload(payload, src, seq)

    def _on_payload(self, payload: bytes, src: str, seq: int) -> None:
        try:
            event = self._codec.decode(payload)
        except Exception as exc:
            self.n_malformed += 1
            if self.n_malformed == 1:
                log.warning("bridge: malformed event from %s (%s); counting further ones", src or "?", exc)
            return
        self._on_event(event, src, seq)

    def _on_event(self, event: Event, src: str = "", seq: int = 0) -> None:
        self.n_events += 1
        cp = self.checkpoint
        if not src or seq > cp.applied.get(src, 0):  # not yet in the restored counts
            self.agg.on_event(event)
        if src and seq <= cp.stored.get(src, 0):  # its record is already stored
            return
        record = self.recorder.record(event)
        if record is not None:
            if src:
                record = record._replace(src=src, seq=seq)
            for sink in self.sinks:
                sink.submit(record)

    async def _shm_loop(self) -> None:
        writer = self._writer
        assert writer is not None
        while True:
            writer.publish(self.agg.snapshot())
            await asyncio.sleep(SHM_INTERVAL_S)

    def counters(self) -> dict[str, int]:
        sq = self.sequencer
        out = {"events": self.n_events, "malformed": self.n_malformed, "events_live": sq.n_live,
               "events_replayed": sq.n_replayed, "events_duplicate": sq.n_duplicates, "events_lost": sq.n_lost,
               "checkpoint_errors": self.n_checkpoint_errors, "carry_refused": self.agg.n_refused}
        for sink in self.sinks:
            out.update({f"{sink.name}_{k}": v for k, v in sink.counters().items()})
        return out
