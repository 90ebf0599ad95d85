"""Feed actor: one venue's WebSockets in, market data out on PUB.

The venue's channels (book tickers, depth, funding) are split into shards of at most the venue's
subscriptions per connection (``shard.py``); every frame goes through one ``FeedHandler``
(``handler.py``), which keeps the books and drops what overlapping connections deliver twice. What one
socket read produced is published as one ``MarketBatch`` (``WSFrame.last_in_buffer`` marks the end of a
read): under load many updates share one ZeroMQ message; when idle each goes out alone at once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import zmq

from services.feed.handler import FeedHandler
from services.feed.recording import BINARY, CONNECTED, LAST_IN_BUFFER, TEXT, Recorder
from services.feed.shard import Shard
from services.feed.snapshots import SnapshotFetcher
from shared.codec import Codec, market_data_codec
from shared.config import venue_symbols
from shared.messages import MarketBatch, MarketData, quotes_topic
from shared.runtime.endpoints import feed_service_name
from shared.runtime.host import ProcessContext
from shared.runtime.service import Service
from shared.venues import market_format
from shared.venues.common import MarketFormat

if TYPE_CHECKING:
    from services.feed.connection import FeedConnection

log = logging.getLogger(__name__)

EARLY_FLUSH_NS = 50_000  # single placement: per-frame delivery for the first 50 µs of a socket read


class Feed(Service):
    def __init__(self, ctx: ProcessContext, venue_name: str, *, recorder: Recorder | None = None,
                 wait_for_subscriber: bool = True) -> None:
        super().__init__(feed_service_name(venue_name), ctx)
        reg = ctx.registry
        self.venue_id = reg.venue_id[venue_name]
        self.venue = ctx.cfg.venues[self.venue_id]
        self.ws_url = self.venue.ws_url
        self.fmt: MarketFormat = market_format(self.venue.kind)
        symbols = venue_symbols(self.venue, ctx.cfg.symbols)
        self.wire_symbols = {self.fmt.wire_symbol(s.base, s.quote): reg.symbol_id[s.name] for s in symbols}
        self.recorder = recorder
        self.wait_for_subscriber = wait_for_subscriber
        settings = self.venue.feed
        self.snapshots = SnapshotFetcher(
            self.name,
            settings.snapshot_url or self.venue.rest_url,
            lambda symbol: self.fmt.snapshot_path(symbol, settings.snapshot_limit),
            self.on_snapshot,
        )
        self.handler = FeedHandler(
            self.venue_id, self.name, self.fmt, self.wire_symbols, settings, self.snapshots.request
        )
        channels = self.fmt.channels(list(self.wire_symbols), settings)
        per = min(settings.max_streams_per_connection or self.fmt.max_channels_per_connection,
                  self.fmt.max_channels_per_connection)
        self.shards = [Shard(self, i // per, channels[i : i + per]) for i in range(0, len(channels), per)]
        self._codec: Codec[MarketData] = market_data_codec()
        self._topic = quotes_topic(self.venue_id)
        self._pub: zmq.Socket[bytes] | None = None
        # Single placement: the detector's handler, called in the stack frame that parsed the frame.
        self._deliver: Callable[[MarketBatch], object] | None = None
        self._deliver_final: Callable[[MarketBatch], object] | None = None
        self.n_deliver_errors = 0
        self._paper_books: Callable[[MarketBatch], None] | None = None  # single placement, paper on real data
        # Frames of one socket read are delivered one by one while the read is younger than this, then batched
        # (connection.py). Only in-process (single placement), where a delivery is a call, not a message.
        self.early_flush_ns = 0
        self._subscribed = asyncio.Event()
        self._connections = 0
        self.n_batches = 0
        self.n_items = 0
        self.n_publish_dropped = 0
        self.n_subscriptions = 0
        self.n_control_sent = 0
        self._publish_samples: list[int] = []

    def link_in_process(self, peers: dict[str, object]) -> None:
        """Single placement: the detector runs in this process, so a batch is a direct call, not a message."""
        detector = peers.get("Detector")
        if detector is not None:
            self._deliver = detector.on_batch  # type: ignore[attr-defined]
            self._deliver_final = detector.on_final_batch  # type: ignore[attr-defined]
            self.wait_for_subscriber = False
            self.early_flush_ns = EARLY_FLUSH_NS
        paper = getattr(peers.get("Executor"), "paper", None)  # paper fills walk the books the engine sees
        if paper is not None:
            self._paper_books = paper.on_batch

    async def on_start(self) -> None:
        if self._deliver is not None:
            await self.snapshots.start()
            self.spawn(self._run_shards())
            return
        # XPUB, so the feed sees its subscribers: it takes venue data only once the detector listens, which
        # makes "nothing lost between feed and detector" an exact, checkable count.
        pub = self.socket(zmq.XPUB)
        pub.bind(self.ctx.endpoints.market_data(self.venue.name))
        self._pub = pub
        self.watch(pub, self._on_subscriptions)
        await self.snapshots.start()
        self.spawn(self._run_shards())

    async def _run_shards(self) -> None:
        if self.wait_for_subscriber:
            await self._subscribed.wait()
        for shard in self.shards:
            self.spawn(shard.run())

    def _on_subscriptions(self) -> None:
        pub = self._pub
        assert pub is not None
        while True:
            try:
                notice = pub.recv(zmq.NOBLOCK)
            except zmq.Again:
                return
            if notice[:1] == b"\x01":
                self.n_subscriptions += 1
                self._subscribed.set()

    async def on_stop(self) -> None:
        for shard in self.shards:
            shard.close()
        await self.snapshots.stop()
        if self._deliver is not None:  # in-process: the last items are counted, not traded on while stopping
            self._deliver = self._deliver_final
        self.flush()
        if self.recorder is not None:
            self.recorder.close()

    # ----- called by connections
    def next_connection_number(self) -> int:
        self._connections += 1
        return self._connections

    def on_connected(self, conn: FeedConnection) -> None:
        if self.recorder is not None:
            self.recorder.write(CONNECTED, self.ws_url.encode(), time.monotonic_ns(), conn.number)
        log.info("%s: connection %d up (shard %d)", self.name, conn.number, conn.shard.index)

    def on_frame(self, conn: FeedConnection, payload: bytes, binary: bool, tick_ns: int, last: bool) -> int:
        if self.recorder is not None:  # the event time is read only here: the live path never pays for it
            self.recorder.write(BINARY if binary else TEXT, payload, tick_ns, conn.number,
                                LAST_IN_BUFFER if last else 0, self.fmt.event_time_ms(payload, binary))
        return self.handler.on_frame(payload, binary, tick_ns)

    def on_snapshot(self, symbol: str, body: bytes, tick_ns: int) -> None:
        if self.recorder is not None:
            self.recorder.snapshot(symbol, body, tick_ns)
        self.handler.on_snapshot(symbol, body, tick_ns)
        self.flush()

    def flush(self) -> None:
        items = self.handler.take()
        if not items:
            return
        now = time.monotonic_ns()
        if self._deliver is not None:
            self._deliver_batch(MarketBatch(now, items))
            return
        if self._pub is None:
            return
        try:
            self._pub.send_multipart((self._topic, self._codec.encode(MarketBatch(now, items))), zmq.NOBLOCK)
        except zmq.Again:
            self.n_publish_dropped += len(items)
            return
        self.n_items += len(items)
        self.n_batches += 1
        if len(self._publish_samples) < 4096:
            self._publish_samples.append(now - items[0].tick_ns)

    def _deliver_batch(self, batch: MarketBatch) -> None:
        """The whole hot path (detect, decide, send) runs inside this call. A failure there is the engine's, not
        the venue's: it is counted and logged, and the connection that delivered the frame keeps running."""
        assert self._deliver is not None
        try:
            self._deliver(batch)
        except Exception:
            self.n_deliver_errors += 1
            if self.n_deliver_errors == 1 or self.n_deliver_errors % 1000 == 0:
                log.exception("%s: the in-process detector failed on a batch (%d so far)", self.name,
                              self.n_deliver_errors)
        if self._paper_books is not None:  # after the detector: the order this batch triggered is already out
            self._paper_books(batch)
        items = batch.items
        self.n_items += len(items)
        self.n_batches += 1
        if len(self._publish_samples) < 4096:
            self._publish_samples.append(batch.pub_ns - items[0].tick_ns)

    # ----- stats
    def stale_channels(self) -> list[str]:
        return sorted(ch.name for shard in self.shards for ch in shard.stale)

    def counters(self) -> dict[str, int]:
        out = self.handler.counters()
        shards = self.shards
        out.update(
            items=self.n_items,
            batches=self.n_batches,
            publish_dropped=self.n_publish_dropped,
            deliver_errors=self.n_deliver_errors,
            connects=sum(s.connects for s in shards),
            rolls=sum(s.rolls for s in shards),
            stalls=sum(s.stalls for s in shards),
            resubscribes=sum(s.resubscribes for s in shards),
            control_sent=self.n_control_sent,
            snapshot_requests=self.snapshots.requests,
            snapshot_failures=self.snapshots.failures,
            snapshot_rate_limited=self.snapshots.rate_limited,
        )
        return out

    def gauges(self) -> dict[str, float]:
        stale_symbols = {ch.symbol for shard in self.shards for ch in shard.stale}
        return {
            "symbols": float(len(self.wire_symbols)),
            "books_live": float(self.handler.books_live()),
            "stale_symbols": float(len(stale_symbols)),
            "connections": float(sum(1 for s in self.shards if s.active is not None and s.active.alive)),
        }

    def prices(self) -> list[tuple[int, int, float, float]]:
        return [(self.venue_id, s, b, a) for s, (b, a) in self.handler.latest.items()]

    def funding(self) -> list[tuple[int, int, float, int]]:
        return [(self.venue_id, s, r, t) for s, (r, t) in self.handler.funding_latest.items()]

    def book_states(self) -> list[tuple[int, int, int]]:
        """(venue, symbol, state): 1 live, 2 stale, 0 not synced yet."""
        stale = {ch.symbol for shard in self.shards for ch in shard.stale}
        h = self.handler
        out = []
        for wire, sid in self.wire_symbols.items():
            sync = h.syncs.get(wire)
            live = sync.live if sync is not None else (
                wire in h.partial_ids or wire in h.last_seq or wire in h.last_funding_ms
            )
            out.append((self.venue_id, sid, 2 if wire in stale else 1 if live else 0))
        return out

    def take_latencies(self) -> dict[str, list[int]]:
        samples, self._publish_samples = self._publish_samples, []
        return {"frame_to_publish": samples[-512:]}
