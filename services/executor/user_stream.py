"""Binance user data over the WS API: execution reports for our orders as they happen.

Connect to ``ws_api_url`` (``.../ws-api/v3``), subscribe with a signed request (the client signs it: the
credentials never leave ``VenueClient``), deliver every ``executionReport`` to ``on_report``. A lost link
or a terminated subscription is reconnected with backoff; after every resubscription ``on_gap`` runs, so
the executor queries the orders that were open meanwhile (events sent while we were away are gone).
Liveness: picows pings an idle link and drops it when no pong comes back. MEXC's user data comes over a
listen key's private stream instead (``listen_key_stream.py``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import picows

from services.executor.backoff import Backoff
from services.executor.venue_client import VenueClient
from shared.errors import ProtocolError
from shared.venues.binance.user_stream import (
    ExecutionReport,
    StreamTerminated,
    SubscribeAnswer,
    parse_message,
)

log = logging.getLogger(__name__)

PING_TIMEOUT_S = 10.0


class _Listener(picows.WSListener):  # type: ignore[misc]
    def __init__(self, stream: UserStream) -> None:
        self.stream = stream
        self.transport: picows.WSTransport | None = None

    def on_ws_connected(self, transport: picows.WSTransport) -> None:
        self.transport = transport
        self.stream._subscribe(transport)

    def on_ws_frame(self, transport: picows.WSTransport, frame: picows.WSFrame) -> None:
        if frame.msg_type == picows.WSMsgType.TEXT:
            self.stream._on_text(transport, frame.get_payload_as_bytes())
        elif frame.msg_type == picows.WSMsgType.CLOSE:
            transport.send_close(frame.get_close_code())
            transport.disconnect()


class UserStream:
    def __init__(
        self,
        client: VenueClient,
        url: str,
        on_report: Callable[[ExecutionReport], None],
        on_gap: Callable[[], None] | None = None,
        *,
        ping_timeout_s: float = PING_TIMEOUT_S,
    ) -> None:
        self.client = client
        self.url = url
        self.on_report = on_report
        self.on_gap = on_gap
        self.ping_timeout_s = ping_timeout_s
        self.connected = False  # subscribed: reports flow
        self.subscription_id: int | None = None
        self.reports = 0
        self.reconnects = 0
        self.malformed = 0
        self.refused = 0  # subscribe requests the venue refused (bad signature, clock)
        self.gaps = 0
        self._subscribed_before = False
        self._closing = False
        self._request_number = 0
        self._transport: picows.WSTransport | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Begin connecting (in a task); ``connected`` turns True once the subscription is confirmed."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name=f"user_stream.{self.client.name}")

    async def close(self) -> None:
        self._closing = True
        if self._transport is not None and not self._transport.is_disconnected:
            self._transport.send_close(picows.WSCloseCode.OK)
            self._transport.disconnect()
        if self._task is not None:
            self._task.cancel()
            await asyncio.wait([self._task])
            self._task = None
        self.connected = False

    async def _run(self) -> None:
        backoff = Backoff()
        while not self._closing:
            try:
                transport, _ = await picows.ws_connect(
                    lambda: _Listener(self),
                    self.url,
                    enable_auto_ping=True,
                    auto_ping_idle_timeout=self.ping_timeout_s,
                    auto_ping_reply_timeout=self.ping_timeout_s,
                    auto_ping_strategy=picows.WSAutoPingStrategy.PING_WHEN_IDLE,
                    logger_name=f"executor.{self.client.name}.user_stream",
                )
            except (OSError, picows.WSError, TimeoutError) as exc:
                log.warning("%s user stream: cannot connect (%s); retry in ~%.2fs", self.client.name, exc,
                            backoff.next_s)
            else:
                self._transport = transport
                await transport.wait_disconnected()
                was_connected, self.connected = self.connected, False
                if self._closing:
                    return
                self.reconnects += 1
                if was_connected:
                    backoff.reset()
                log.warning("%s user stream: disconnected; reconnecting", self.client.name)
            await backoff.wait()

    # ----- called by the listener
    def _subscribe(self, transport: picows.WSTransport) -> None:
        self._request_number += 1
        text = self.client.user_stream_request(f"dz-sub-{self._request_number}")
        transport.send(picows.WSMsgType.TEXT, text.encode())

    def _on_text(self, transport: picows.WSTransport, payload: bytes) -> None:
        try:
            msg = parse_message(payload)
        except ProtocolError as exc:
            self.malformed += 1
            log.warning("%s user stream: %s", self.client.name, exc)
            return
        if isinstance(msg, ExecutionReport):
            self.reports += 1
            try:
                self.on_report(msg)
            except Exception:  # a consumer bug must not kill the stream
                log.exception("%s user stream: report handler failed", self.client.name)
        elif isinstance(msg, SubscribeAnswer):
            self._on_answer(transport, msg)
        elif isinstance(msg, StreamTerminated):
            log.warning("%s user stream: subscription %d terminated; resubscribing", self.client.name,
                        msg.subscription_id)
            transport.disconnect()

    def _on_answer(self, transport: picows.WSTransport, answer: SubscribeAnswer) -> None:
        if answer.subscription_id is None:
            self.refused += 1
            log.error("%s user stream: subscribe refused (HTTP %d, %d %s)", self.client.name,
                      answer.http_status, answer.error_code, answer.error_msg)
            transport.disconnect()  # retried with backoff
            return
        self.subscription_id = answer.subscription_id
        self.connected = True
        if self._subscribed_before:
            self.gaps += 1
            if self.on_gap is not None:
                try:
                    self.on_gap()
                except Exception:
                    log.exception("%s user stream: gap handler failed", self.client.name)
        self._subscribed_before = True
