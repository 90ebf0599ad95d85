"""One WebSocket connection of a feed: frames in, control messages out at the venue's allowed rate.

Liveness: picows pings when the link has been idle for ``pong_timeout_s`` and drops it when no pong
follows within as long, so a half-open connection is found in about twice that. Control messages
(subscriptions, application pings) leave through a token bucket at ``control_messages_per_s``: Binance
disconnects a client that sends more than 5 messages a second.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import TYPE_CHECKING

import picows

from services.feed.handler import FRAME_DATA, FRAME_SHUTDOWN

if TYPE_CHECKING:
    from services.feed.shard import Shard


class FeedConnection(picows.WSListener):  # type: ignore[misc]
    def __init__(self, shard: Shard, number: int) -> None:
        self.shard = shard
        self.feed = shard.feed
        self.number = number
        self.transport: picows.WSTransport | None = None
        self.opened_ns = time.monotonic_ns()
        self.last_data_ns = 0
        self.first_data_ns = 0
        self.shutdown_notice = False
        self._read_start_ns = 0  # receive stamp of the current socket read's first frame
        self._outbox: deque[str] = deque()
        self._sender: asyncio.Task[None] | None = None
        self._interval_ns = int(1e9 / shard.settings.control_messages_per_s)
        self._next_send_ns = 0

    # ----- picows callbacks
    def on_ws_connected(self, transport: picows.WSTransport) -> None:
        self.transport = transport
        self.opened_ns = self.last_data_ns = time.monotonic_ns()

    def on_ws_frame(self, transport: picows.WSTransport, frame: picows.WSFrame) -> None:
        tick = time.monotonic_ns()
        if not self._read_start_ns:
            self._read_start_ns = tick
        kind = frame.msg_type
        if kind == picows.WSMsgType.TEXT or kind == picows.WSMsgType.BINARY:
            outcome = self.feed.on_frame(
                self, frame.get_payload_as_bytes(), kind == picows.WSMsgType.BINARY, tick, frame.last_in_buffer
            )
            if outcome == FRAME_DATA:
                self.last_data_ns = tick
                if not self.first_data_ns:
                    self.first_data_ns = tick
            elif outcome == FRAME_SHUTDOWN:
                self.shutdown_notice = True
                self.shard.wake()
        elif kind == picows.WSMsgType.CLOSE:
            transport.send_close(frame.get_close_code())
            transport.disconnect()
        if frame.last_in_buffer:
            self._read_start_ns = 0
            self.feed.flush()
        elif tick - self._read_start_ns < self.feed.early_flush_ns:
            # Early in a read, each frame goes on at once: the quote need not wait for the frames behind it. A
            # long read (load) stops this after early_flush_ns and batches the rest, so throughput holds.
            self.feed.flush()

    def on_ws_disconnected(self, transport: picows.WSTransport) -> None:
        self.feed.flush()
        if self._sender is not None:
            self._sender.cancel()
        self.shard.wake()

    # ----- control messages
    def send_control(self, text: str) -> None:
        """Queue a control message; it leaves as soon as the venue's message rate allows."""
        self._outbox.append(text)
        if self._sender is None or self._sender.done():
            self._sender = asyncio.get_running_loop().create_task(self._drain())

    async def _drain(self) -> None:
        while self._outbox:
            wait_ns = self._next_send_ns - time.monotonic_ns()
            if wait_ns > 0:
                await asyncio.sleep(wait_ns / 1e9)  # pacing to the venue's message limit
            transport = self.transport
            if transport is None or transport.is_disconnected:
                self._outbox.clear()
                return
            transport.send(picows.WSMsgType.TEXT, self._outbox.popleft().encode())
            self.feed.n_control_sent += 1
            self._next_send_ns = time.monotonic_ns() + self._interval_ns

    @property
    def pending_control(self) -> int:
        return len(self._outbox)

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_disconnected:
            self.transport.send_close(picows.WSCloseCode.OK)
            self.transport.disconnect()

    @property
    def alive(self) -> bool:
        return self.transport is not None and not self.transport.is_disconnected
