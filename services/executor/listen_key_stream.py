"""User data over a listen key's private WebSocket (MEXC spot): order and fill reports as they happen.

Life: POST a listen key (through ``VenueClient``: the credentials never leave it), connect to
``<user_ws_url>?listenKey=<key>``, subscribe to the format's channels; the stream is healthy once the venue
confirmed all of them. A timer PUTs the key every ``keepalive_s`` (MEXC: 30 minutes of a 60-minute validity).
A refused PUT (the key expired or was deleted) means a new key: the link is closed and the next connection
uses a fresh one. After every lost or failed connection the key is checked with a PUT first (the venue
refuses an invalid key at the upgrade with no documented code: a refused PUT says so), then the link is
retried with backoff. An application PING goes out every ``ping_s``; a link silent (no frame, no PONG) for
two intervals is half-open and is closed, as is one whose subscription is not confirmed in ``ACK_TIMEOUT_S``.
After every resubscription ``on_gap`` runs: events sent while away are gone, so the executor queries what was
open. ``close`` DELETEs the key.

``since_ns``: the wall-clock time since when the stream has been healthy without a break (0: it is not). An
order created after it has every event on the stream, so the executor takes its fills from here and leaves the
trade list alone (``covers``). The listen key is a secret like the API keys: no log line carries it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

import picows

from services.executor.backoff import Backoff
from services.executor.venue_client import VenueClient
from shared.errors import ProtocolError, VenueError
from shared.venues.common import OrderReport
from shared.venues.user_data import CLOSE, CREATE, KEEPALIVE, ListenKeyFormat, Pong, Subscribed, SubscribeRefused

log = logging.getLogger(__name__)

ACK_TIMEOUT_S = 5.0  # the subscription's confirmation
CLOSE_TIMEOUT_S = 2.0  # the DELETE at close: best effort
ORDER_IDS_KEPT = 10_000  # order id -> client id, for fills that name only the order


class _Listener(picows.WSListener):  # type: ignore[misc]
    def __init__(self, stream: ListenKeyStream) -> None:
        self.stream = stream

    def on_ws_connected(self, transport: picows.WSTransport) -> None:
        self.stream._on_connected(transport)

    def on_ws_frame(self, transport: picows.WSTransport, frame: picows.WSFrame) -> None:
        kind = frame.msg_type
        if kind in (picows.WSMsgType.TEXT, picows.WSMsgType.BINARY):
            self.stream._on_frame(transport, frame.get_payload_as_bytes(), kind == picows.WSMsgType.BINARY)
        elif kind == picows.WSMsgType.PING:
            transport.send_pong(frame.get_payload_as_bytes())
        elif kind == picows.WSMsgType.CLOSE:
            transport.send_close(frame.get_close_code())
            transport.disconnect()


class ListenKeyStream:
    def __init__(
        self,
        client: VenueClient,
        url: str,
        on_report: Callable[[OrderReport], None],
        on_gap: Callable[[], None] | None = None,
        *,
        keepalive_s: float | None = None,
        ping_s: float | None = None,
    ) -> None:
        fmt = client.listen_key_format
        if fmt is None:
            raise ValueError(f"{client.name}: {client.kind} has no listen-key user stream")
        self.fmt: ListenKeyFormat = fmt
        self.client = client
        self.url = url
        self.on_report = on_report
        self.on_gap = on_gap
        self.keepalive_s = keepalive_s if keepalive_s is not None else fmt.keepalive_interval_s
        self.ping_s = ping_s if ping_s is not None else fmt.ping_interval_s
        self.since_ns = 0  # wall clock: healthy without a break since then (0: not healthy)
        self.reports = self.malformed = self.reconnects = self.refused = self.gaps = 0
        self.keys_created = self.keepalives = self.renewals = self.connect_failures = 0
        self.__key = ""  # the listen key: a secret (name-mangled, never logged)
        self._acked: set[str] = set()
        self._subscribed_before = False
        self._closing = False
        self._transport: picows.WSTransport | None = None
        self._connected_at = 0.0
        self._last_frame = 0.0
        self._last_ping = 0.0
        self._next_keepalive = 0.0
        self._cid_of: dict[str, str] = {}
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def connected(self) -> bool:
        return self.since_ns != 0

    def covers(self, created_ns: int) -> bool:
        """Every event of an order created at ``created_ns`` (wall clock) came, or will come, on this stream."""
        return self.since_ns != 0 and self.since_ns <= created_ns

    def counters(self) -> dict[str, int]:
        return {"reports": self.reports, "malformed": self.malformed, "reconnects": self.reconnects,
                "refused": self.refused, "gaps": self.gaps, "keys_created": self.keys_created,
                "keepalives": self.keepalives, "renewals": self.renewals, "connect_failures": self.connect_failures}

    # ----- life
    async def start(self) -> None:
        """Begin (in tasks); ``connected`` turns True once the venue confirms the subscription."""
        if not self._tasks:
            loop = asyncio.get_running_loop()
            name = f"user_stream.{self.client.name}"
            self._tasks = [loop.create_task(self._run(), name=name), loop.create_task(self._timer(), name=name)]

    async def close(self) -> None:
        self._closing = True
        self._drop_link()
        for t in self._tasks:
            t.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks)
        self._tasks = []
        self.since_ns = 0
        if self.__key:
            try:
                await asyncio.wait_for(self.client.listen_key(CLOSE, self.__key), CLOSE_TIMEOUT_S)
            except (OSError, TimeoutError, ConnectionError, VenueError, ProtocolError) as exc:
                log.warning("%s user stream: closing the listen key failed (%s)", self.client.name, self._scrub(exc))
            self.__key = ""

    async def _run(self) -> None:
        backoff = Backoff()
        while not self._closing:
            if self.__key or await self._new_key():
                transport = await self._connect()
                if transport is not None:
                    await transport.wait_disconnected()
                    was_healthy, self.since_ns = self.connected, 0
                    self._transport = None
                    if self._closing:
                        return
                    self.reconnects += 1
                    if was_healthy:
                        backoff.reset()
                    log.warning("%s user stream: disconnected; reconnecting", self.client.name)
                await self._check_key()
            await backoff.wait()

    async def _new_key(self) -> bool:
        try:
            self.__key = await self.client.listen_key(CREATE)
        except (OSError, TimeoutError, ConnectionError, VenueError, ProtocolError) as exc:
            log.warning("%s user stream: no listen key (%s); retrying", self.client.name, self._scrub(exc))
            return False
        self.keys_created += 1
        self._next_keepalive = time.monotonic() + self.keepalive_s
        return True

    async def _connect(self) -> picows.WSTransport | None:
        try:
            transport, _ = await picows.ws_connect(
                lambda: _Listener(self), self.fmt.url(self.url, self.__key), enable_auto_ping=False,
                logger_name=f"executor.{self.client.name}.user_stream",
            )
        except (OSError, picows.WSError, TimeoutError) as exc:
            self.connect_failures += 1
            log.warning("%s user stream: cannot connect (%s)", self.client.name, self._scrub(exc))
            return None
        self._transport = transport
        return transport

    async def _check_key(self) -> None:
        """After a lost or failed link: is the key still good? A refusal means a new key next time."""
        if self.__key and not self._closing:
            await self._keepalive()

    async def _keepalive(self) -> None:
        key = self.__key
        try:
            await self.client.listen_key(KEEPALIVE, key)
        except VenueError as exc:
            if exc.http_status in (429, 418) or exc.http_status >= 500 or self.__key != key:
                log.warning("%s user stream: keeping the listen key alive failed (%s)", self.client.name,
                            self._scrub(exc))
                return
            self.renewals += 1
            log.warning("%s user stream: the listen key was refused (%s); renewing it", self.client.name,
                        self._scrub(exc))
            self.__key = ""
            self._drop_link()
            return
        except (OSError, TimeoutError, ConnectionError, ProtocolError) as exc:
            log.warning("%s user stream: keeping the listen key alive failed (%s)", self.client.name, self._scrub(exc))
            return
        self.keepalives += 1
        self._next_keepalive = time.monotonic() + self.keepalive_s

    async def _timer(self) -> None:
        """Keep-alives of the key; PINGs, and the deadlines of silence and of the subscription's confirmation."""
        tick = max(0.01, min(self.ping_s, self.keepalive_s, ACK_TIMEOUT_S) / 4)
        while True:
            await asyncio.sleep(tick)  # a pacing timer, not synchronization
            now = time.monotonic()
            if self.__key and now >= self._next_keepalive:
                self._next_keepalive = now + self.keepalive_s  # one PUT at a time, even a slow one
                await self._keepalive()
            t = self._transport
            if t is None or t.is_disconnected:
                continue
            if not self.connected and now - self._connected_at > ACK_TIMEOUT_S:
                log.warning("%s user stream: subscription not confirmed in %.0fs; reconnecting", self.client.name,
                            ACK_TIMEOUT_S)
                self._drop_link()
            elif now - self._last_frame > 2 * self.ping_s:
                log.warning("%s user stream: silent for %.1fs (half-open); reconnecting", self.client.name,
                            now - self._last_frame)
                self._drop_link()
            elif now - self._last_ping >= self.ping_s:
                t.send(picows.WSMsgType.TEXT, self.fmt.ping_frame().encode())
                self._last_ping = now

    def _drop_link(self) -> None:
        t = self._transport
        if t is not None and not t.is_disconnected:
            t.send_close(picows.WSCloseCode.OK)
            t.disconnect()

    def _scrub(self, exc: BaseException) -> str:
        """An error's text without the listen key (a URL in it would carry the key)."""
        text = str(exc) or type(exc).__name__
        return text.replace(self.__key, "<listenKey>") if self.__key else text

    # ----- called by the listener
    def _on_connected(self, transport: picows.WSTransport) -> None:
        now = time.monotonic()
        self._connected_at = self._last_frame = self._last_ping = now
        self._acked = set()
        for frame in self.fmt.subscribe_frames():
            transport.send(picows.WSMsgType.TEXT, frame.encode())

    def _on_frame(self, transport: picows.WSTransport, payload: bytes, binary: bool) -> None:
        self._last_frame = time.monotonic()
        try:
            msg = self.fmt.parse(payload, binary)
        except ProtocolError as exc:
            self.malformed += 1
            if self.malformed == 1:  # once: a venue that changed its format would flood the log
                log.warning("%s user stream: %s (%d bytes; later ones are counted, not logged)", self.client.name,
                            exc, len(payload))
            return
        if isinstance(msg, OrderReport):
            self._deliver(msg)
        elif isinstance(msg, Subscribed):
            self._acked |= msg.channels
            if self._acked >= self.fmt.channels and not self.connected:
                self._healthy()
        elif isinstance(msg, SubscribeRefused):
            self.refused += 1
            log.error("%s user stream: subscription refused (%s)", self.client.name, msg.msg[:200])
            transport.disconnect()  # retried with backoff
        elif isinstance(msg, Pong):
            pass  # _last_frame is what counts

    def _healthy(self) -> None:
        self.since_ns = time.time_ns()
        if self._subscribed_before:
            self.gaps += 1
            if self.on_gap is not None:
                try:
                    self.on_gap()
                except Exception:  # a consumer bug must not kill the stream
                    log.exception("%s user stream: gap handler failed", self.client.name)
        self._subscribed_before = True

    def _deliver(self, r: OrderReport) -> None:
        if r.client_order_id and r.order_id:
            if r.order_id not in self._cid_of and len(self._cid_of) >= ORDER_IDS_KEPT:
                del self._cid_of[next(iter(self._cid_of))]  # the oldest
            self._cid_of[r.order_id] = r.client_order_id
        elif not r.client_order_id:
            r = r._replace(client_order_id=self._cid_of.get(r.order_id, ""))
        self.reports += 1
        try:
            self.on_report(r)
        except Exception:  # a consumer bug must not kill the stream
            log.exception("%s user stream: report handler failed", self.client.name)
