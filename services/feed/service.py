"""Feed actor: one venue's WebSocket in, Quotes out on PUB.

Frames parsed from one socket read are published as one batch (``WSFrame.last_in_buffer`` marks the end
of a read): under load many quotes share one ZeroMQ message, when idle each quote goes out alone at once.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time

import picows
import zmq

from shared.codec import Codec, market_data_codec
from shared.errors import ProtocolError
from shared.messages import MarketData, Quote, quotes_topic
from shared.runtime.endpoints import feed_service_name
from shared.runtime.host import ProcessContext
from shared.runtime.service import Service
from shared.venues import market_format
from shared.venues.common import MarketFormat

log = logging.getLogger(__name__)

BACKOFF_START_S = 0.1
BACKOFF_MAX_S = 10.0


class _Listener(picows.WSListener):  # type: ignore[misc]
    def __init__(self, feed: Feed) -> None:
        self.feed = feed

    def on_ws_connected(self, transport: picows.WSTransport) -> None:
        self.feed.on_connected(transport)

    def on_ws_frame(self, transport: picows.WSTransport, frame: picows.WSFrame) -> None:
        tick = time.monotonic_ns()
        kind = frame.msg_type
        if kind == picows.WSMsgType.TEXT or kind == picows.WSMsgType.BINARY:
            self.feed.on_payload(frame.get_payload_as_bytes(), kind == picows.WSMsgType.BINARY, tick)
        elif kind == picows.WSMsgType.CLOSE:
            transport.send_close(frame.get_close_code())
            transport.disconnect()
        if frame.last_in_buffer:
            self.feed.flush()

    def on_ws_disconnected(self, transport: picows.WSTransport) -> None:
        self.feed.flush()


class Feed(Service):
    def __init__(self, ctx: ProcessContext, venue_name: str) -> None:
        super().__init__(feed_service_name(venue_name), ctx)
        reg = ctx.registry
        self.venue_id = reg.venue_id[venue_name]
        self.venue = ctx.cfg.venues[self.venue_id]
        self.fmt: MarketFormat = market_format(self.venue.kind)
        self.symbol_ids = {name: i for i, name in enumerate(reg.symbol_names)}
        self._codec: Codec[MarketData] = market_data_codec()
        self._topic = quotes_topic(self.venue_id)
        self._pending: list[tuple[int, float, float, float, float, int, int]] = []
        self._pub: zmq.Socket[bytes] | None = None
        self._transport: picows.WSTransport | None = None
        self.latest: dict[int, tuple[float, float]] = {}
        self.n_frames = 0
        self.n_quotes = 0
        self.n_batches = 0
        self.n_control = 0
        self.n_malformed = 0
        self.n_unknown_symbol = 0
        self.n_connects = 0
        self.n_publish_dropped = 0
        self.n_subscriptions = 0
        self._subscribed = asyncio.Event()
        self._logged: set[str] = set()
        self._publish_samples: list[int] = []

    async def on_start(self) -> None:
        # XPUB, so the feed sees its subscribers: it only takes venue data once the detector listens,
        # which makes "nothing lost between feed and detector" an exact, checkable count.
        pub = self.socket(zmq.XPUB)
        pub.bind(self.ctx.endpoints.market_data(self.venue.name))
        self._pub = pub
        self.watch(pub, self._on_subscriptions)
        self.spawn(self._connection_loop())

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
        if self._transport is not None:
            self._transport.send_close()
            self._transport.disconnect()

    async def _connection_loop(self) -> None:
        """Connect, stay connected, reconnect with exponential backoff and jitter."""
        url = self.fmt.url(self.venue.ws_url, self.registry.symbol_names)
        await self._subscribed.wait()
        backoff = BACKOFF_START_S
        while True:
            try:
                transport, _ = await picows.ws_connect(lambda: _Listener(self), url)
            except (OSError, picows.WSError, TimeoutError) as exc:
                log.warning("%s: cannot connect to %s: %s; retry in %.2fs", self.name, url, exc, backoff)
                await asyncio.sleep(backoff * (0.5 + random.random()))
                backoff = min(backoff * 2, BACKOFF_MAX_S)
                continue
            backoff = BACKOFF_START_S
            keepalive = self.spawn(self._keepalive(transport)) if self.fmt.keepalive_interval_s else None
            await transport.wait_disconnected()
            self._transport = None
            if keepalive is not None:
                keepalive.cancel()
            log.warning("%s: disconnected; reconnecting", self.name)

    async def _keepalive(self, transport: picows.WSTransport) -> None:
        interval = self.fmt.keepalive_interval_s
        frame = self.fmt.keepalive_frame()
        assert interval and frame
        while True:
            await asyncio.sleep(interval)
            transport.send(picows.WSMsgType.TEXT, frame.encode())

    def on_connected(self, transport: picows.WSTransport) -> None:
        self._transport = transport
        self.n_connects += 1
        for text in self.fmt.subscribe_frames(self.registry.symbol_names):
            transport.send(picows.WSMsgType.TEXT, text.encode())
        log.info("%s: connected (%d)", self.name, self.n_connects)

    def on_payload(self, payload: bytes, binary: bool, tick_ns: int) -> None:
        self.n_frames += 1
        try:
            top = self.fmt.parse(payload, binary)
        except ProtocolError as exc:
            self.n_malformed += 1
            self._log_once("malformed", "malformed frame (%s): %r", exc, payload[:120])
            return
        if top is None:
            self.n_control += 1
            return
        symbol = self.symbol_ids.get(top.symbol)
        if symbol is None:
            self.n_unknown_symbol += 1
            self._log_once(f"unknown:{top.symbol}", "update for unconfigured symbol %s", top.symbol)
            return
        self._pending.append((symbol, top.bid, top.bid_qty, top.ask, top.ask_qty, top.seq, tick_ns))

    def flush(self) -> None:
        pending = self._pending
        if not pending or self._pub is None:
            return
        self._pending = []
        now = time.monotonic_ns()
        v = self.venue_id
        quotes = [Quote(v, s, b, bq, a, aq, seq, tick, now) for s, b, bq, a, aq, seq, tick in pending]
        try:
            self._pub.send_multipart((self._topic, self._codec.encode(quotes)), zmq.NOBLOCK)
        except zmq.Again:
            self.n_publish_dropped += len(quotes)
            return
        self.n_quotes += len(quotes)
        self.n_batches += 1
        for q in quotes:
            self.latest[q.symbol] = (q.bid, q.ask)
        if len(self._publish_samples) < 4096:
            self._publish_samples.append(now - quotes[0].tick_ns)

    def _log_once(self, key: str, fmt: str, *args: object) -> None:
        if key not in self._logged:
            self._logged.add(key)
            log.warning("%s: " + fmt + " (further ones only counted)", self.name, *args)

    def counters(self) -> dict[str, int]:
        return {
            "frames": self.n_frames,
            "quotes": self.n_quotes,
            "batches": self.n_batches,
            "control_frames": self.n_control,
            "malformed": self.n_malformed,
            "unknown_symbol": self.n_unknown_symbol,
            "connects": self.n_connects,
            "publish_dropped": self.n_publish_dropped,
        }

    def prices(self) -> list[tuple[int, int, float, float]]:
        return [(self.venue_id, s, b, a) for s, (b, a) in self.latest.items()]

    def take_latencies(self) -> dict[str, list[int]]:
        samples, self._publish_samples = self._publish_samples, []
        return {"frame_to_publish": samples[-512:]}
