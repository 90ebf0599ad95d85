"""A shard: the channels one connection carries, kept connected for as long as the feed runs.

A venue caps subscriptions per connection (Binance: streams in one URL, MEXC: 30), so a feed splits its
channels into shards. Each shard:

- connects with exponential backoff and jitter, subscribes, and reconnects when the link drops or stalls
  (no data for ``stale_after_s`` while pongs may still come back);
- rolls over before the venue's connection lifetime ends, or at once on a ``serverShutdown`` notice: a
  successor connects and subscribes, both run side by side until the successor carries data, then the old
  one closes. Duplicates from the overlap are dropped by update id, so nothing is lost or doubled;
- watches each channel: one silent for ``stale_after_s`` is marked stale and resubscribed, with the retry
  interval doubling while it stays silent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from typing import TYPE_CHECKING

import picows

from services.feed.connection import FeedConnection
from shared.venues.common import Channel

if TYPE_CHECKING:
    from services.feed.service import Feed

log = logging.getLogger(__name__)

BACKOFF_START_S = 0.1
BACKOFF_MAX_S = 10.0
CHECK_INTERVAL_S = 0.25  # how often the supervisor looks at ages and silences
ROLL_OVERLAP_S = 1.0  # a successor must have carried data this long before the old connection closes
ROLL_MAX_WAIT_S = 15.0
RESUBSCRIBE_MAX_S = 300.0

DISCONNECTED = "disconnected"
ROLL = "roll"
STALL = "stall"


class Shard:
    def __init__(self, feed: Feed, index: int, channels: list[Channel]) -> None:
        self.feed = feed
        self.index = index
        self.channels = channels
        self.settings = feed.venue.feed
        self.fmt = feed.fmt
        self.url = self.fmt.url(feed.ws_url, channels) if self.fmt.subscribes_in_url else feed.ws_url
        self.active: FeedConnection | None = None
        self.stale: set[Channel] = set()
        self._next_resubscribe: dict[Channel, tuple[int, float]] = {}  # channel -> (when ns, backoff s)
        self._wakeup = asyncio.Event()
        self._closing = False
        self._last_keepalive_ns = 0
        self.connects = 0
        self.rolls = 0
        self.stalls = 0
        self.resubscribes = 0
        ping = self.settings.ping_interval_s or self.fmt.keepalive_interval_s or 0.0
        self._keepalive_ns = int(ping * 1e9)
        self._stale_ns = int(self.settings.stale_after_s * 1e9)
        self._max_age_ns = int(self.settings.connection_max_age_s * 1e9)

    def wake(self) -> None:
        self._wakeup.set()

    async def run(self) -> None:
        conn = await self._open()
        while True:
            self.active = conn
            outcome = await self._supervise(conn)
            if self._closing:
                return
            if outcome == ROLL:
                successor = await self._open()
                await self._overlap(successor)
                conn.close()
                self.rolls += 1
                log.info("%s shard %d: rolled over to connection %d", self.feed.name, self.index, successor.number)
                conn = successor
                continue
            if outcome == STALL:
                self.stalls += 1
                log.warning("%s shard %d: no data for %.1fs; reconnecting", self.feed.name, self.index,
                            self.settings.stale_after_s)
                conn.close()
            else:
                log.warning("%s shard %d: disconnected; reconnecting", self.feed.name, self.index)
            conn = await self._open()

    def close(self) -> None:
        self._closing = True
        if self.active is not None:
            self.active.close()

    # ----- connecting
    async def _open(self) -> FeedConnection:
        backoff = BACKOFF_START_S
        pong_timeout = self.settings.pong_timeout_s
        while True:
            number = self.feed.next_connection_number()
            try:
                _, listener = await picows.ws_connect(
                    lambda n=number: FeedConnection(self, n),
                    self.url,
                    enable_auto_ping=True,
                    auto_ping_idle_timeout=pong_timeout,
                    auto_ping_reply_timeout=pong_timeout,
                    auto_ping_strategy=picows.WSAutoPingStrategy.PING_WHEN_IDLE,
                    logger_name=f"feed.{self.feed.venue.name}.ws",
                )
            except (OSError, picows.WSError, TimeoutError) as exc:
                log.warning("%s shard %d: cannot connect (%s); retry in ~%.2fs",
                            self.feed.name, self.index, exc, backoff)
                await asyncio.sleep(backoff * (0.5 + random.random()))  # backoff with jitter
                backoff = min(backoff * 2, BACKOFF_MAX_S)
                continue
            conn: FeedConnection = listener
            self.connects += 1
            self.feed.on_connected(conn)
            if not self.fmt.subscribes_in_url:
                for frame in self.fmt.subscribe_frames(self.channels):
                    conn.send_control(frame)
            self._last_keepalive_ns = time.monotonic_ns()
            return conn

    async def _overlap(self, successor: FeedConnection) -> None:
        """Wait until the successor carries data (or cannot): only then may the old connection close."""
        deadline = time.monotonic_ns() + int(ROLL_MAX_WAIT_S * 1e9)
        overlap_ns = int(ROLL_OVERLAP_S * 1e9)
        while time.monotonic_ns() < deadline and successor.alive:
            first = successor.first_data_ns
            if first and successor.pending_control == 0 and time.monotonic_ns() - first >= overlap_ns:
                return
            await self._sleep()

    # ----- supervision
    async def _supervise(self, conn: FeedConnection) -> str:
        while True:
            if not conn.alive:
                return DISCONNECTED
            now = time.monotonic_ns()
            if conn.shutdown_notice or now - conn.opened_ns > self._max_age_ns:
                return ROLL
            if now - conn.last_data_ns > self._stale_ns:
                return STALL
            if self._keepalive_ns and now - self._last_keepalive_ns >= self._keepalive_ns:
                frame = self.fmt.keepalive_frame()
                if frame:
                    conn.send_control(frame)
                self._last_keepalive_ns = now
            self._check_channels(conn, now)
            await self._sleep()

    async def _sleep(self) -> None:
        self._wakeup.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wakeup.wait(), CHECK_INTERVAL_S)

    def _check_channels(self, conn: FeedConnection, now: int) -> None:
        last_rx = self.feed.handler.last_rx
        since = conn.first_data_ns or conn.opened_ns
        for ch in self.channels:
            last = max(last_rx[ch.kind].get(ch.symbol, 0), since)
            if now - last <= self._stale_ns:
                if ch in self.stale:
                    self.stale.discard(ch)
                    self._next_resubscribe.pop(ch, None)
                    log.info("%s: %s is live again", self.feed.name, ch.name)
                continue
            if ch not in self.stale:
                self.stale.add(ch)
                log.warning("%s: %s silent for %.1fs: stale, resubscribing", self.feed.name, ch.name,
                            (now - last) / 1e9)
            when, backoff = self._next_resubscribe.get(ch, (0, self.settings.stale_after_s))
            if now >= when:
                for frame in self.fmt.unsubscribe_frames([ch]) + self.fmt.subscribe_frames([ch]):
                    conn.send_control(frame)
                self.resubscribes += 1
                self._next_resubscribe[ch] = (now + int(backoff * 1e9), min(backoff * 2, RESUBSCRIBE_MAX_S))
