"""A small keep-alive HTTP/1.1 client for order entry, with llhttp parsing (httptools).

Why not aiohttp's client: building one aiohttp request costs far more than the whole rest of the hot path,
and it hides the moment the request bytes reach the socket. Here ``request()`` writes the request to an
idle, already-open connection synchronously, in the caller's stack, and returns a future for the
response; the caller stamps ``sent_ns`` right after. A caller that stops waiting (cancels the future,
e.g. ``asyncio.wait_for`` timing out) costs that connection: it is closed and replaced. Response parsing
(chunked bodies, keep-alive) is llhttp's, the parser Node.js uses, through httptools.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import NamedTuple
from urllib.parse import urlsplit

import httptools

log = logging.getLogger(__name__)


class HttpResponse(NamedTuple):
    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes


class _Connection(asyncio.Protocol):
    def __init__(self, pool: HttpPool) -> None:
        self._pool = pool
        self.transport: asyncio.Transport | None = None
        self._parser = httptools.HttpResponseParser(self)
        self._headers: dict[str, str] = {}
        self._body = bytearray()
        self.pending: asyncio.Future[HttpResponse] | None = None
        self.closed = False

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(ConnectionError(f"bad HTTP response: {exc}"))
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail(ConnectionError(f"connection lost: {exc}" if exc else "connection closed by peer"))
        self._pool._lost(self)

    # httptools callbacks
    def on_message_begin(self) -> None:
        self._headers = {}
        self._body = bytearray()

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_body(self, body: bytes) -> None:
        self._body += body

    def on_message_complete(self) -> None:
        fut, self.pending = self.pending, None
        response = HttpResponse(self._parser.get_status_code(), self._headers, bytes(self._body))
        if fut is not None and not fut.done():
            fut.set_result(response)
        if not self._parser.should_keep_alive():
            self.close()
            return
        self._pool._idle(self)

    # own
    def send(self, data: bytes, fut: asyncio.Future[HttpResponse]) -> None:
        assert self.transport is not None and self.pending is None
        self.pending = fut
        self.transport.write(data)  # first: the callback below is bookkeeping for a caller that gives up
        fut.add_done_callback(self._abandoned)

    def _abandoned(self, fut: asyncio.Future[HttpResponse]) -> None:
        # The caller gave up waiting (a timeout cancels the future): a late answer would hold this
        # connection for as long as the venue takes, or forever. Drop it; the pool opens a fresh one.
        if fut.cancelled() and self.pending is fut:
            self.pending = None
            self.close()

    def _fail(self, exc: Exception) -> None:
        fut, self.pending = self.pending, None
        if fut is not None and not fut.done():
            fut.set_exception(exc)

    def close(self) -> None:
        if not self.closed and self.transport is not None:
            self.closed = True
            self.transport.close()


class HttpPool:
    """A fixed number of keep-alive connections to one origin; requests beyond them wait in order."""

    def __init__(self, base_url: str, size: int = 4, connect_timeout_s: float = 5.0) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https"):
            raise ValueError(f"unsupported URL scheme in {base_url!r}")
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.ssl = parts.scheme == "https"
        self.size = size
        self.connect_timeout_s = connect_timeout_s
        self._host_header = parts.netloc
        self._idle_conns: deque[_Connection] = deque()
        self._all: set[_Connection] = set()
        self._waiting: deque[tuple[bytes, asyncio.Future[HttpResponse]]] = deque()
        self._opening = 0
        self._closed = False
        self.requests = 0
        self.connects = 0

    async def open(self) -> None:
        """Open every connection now, so no order pays for a TCP handshake."""
        await asyncio.gather(*(self._connect() for _ in range(self.size - len(self._all))))

    async def _connect(self) -> None:
        loop = asyncio.get_running_loop()
        self._opening += 1
        try:
            _, proto = await asyncio.wait_for(
                loop.create_connection(lambda: _Connection(self), self.host, self.port, ssl=self.ssl or None),
                self.connect_timeout_s,
            )
        finally:
            self._opening -= 1
        self.connects += 1
        self._all.add(proto)
        self._idle(proto)

    def encode(self, method: str, path: str, headers: list[tuple[str, str]], body: bytes) -> bytes:
        head = [f"{method} {path} HTTP/1.1\r\nHost: {self._host_header}\r\nContent-Length: {len(body)}\r\n"]
        head.extend(f"{k}: {v}\r\n" for k, v in headers)
        head.append("\r\n")
        return "".join(head).encode("latin-1") + body

    def request(
        self, method: str, path: str, headers: list[tuple[str, str]], body: bytes = b""
    ) -> asyncio.Future[HttpResponse]:
        """Write now if a connection is idle (the common case); otherwise queue. Never blocks."""
        return self.send(self.encode(method, path, headers, body))

    def send(self, data: bytes) -> asyncio.Future[HttpResponse]:
        """A request already encoded (an order template's bytes): written now to an idle connection, else queued."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[HttpResponse] = loop.create_future()
        if self._closed:
            fut.set_exception(ConnectionError("pool closed"))
            return fut
        self.requests += 1
        while self._idle_conns:
            conn = self._idle_conns.popleft()
            if not conn.closed:
                conn.send(data, fut)
                return fut
        self._waiting.append((data, fut))
        if len(self._all) + self._opening < self.size:
            task = loop.create_task(self._connect_quietly())
            task.add_done_callback(lambda _t: None)
        return fut

    async def _connect_quietly(self) -> None:
        try:
            await self._connect()
        except (OSError, TimeoutError) as exc:
            log.warning("cannot connect to %s:%d: %s", self.host, self.port, exc)
            # Nothing will serve the queue if no connection exists at all: fail what waits.
            if not self._all and not self._opening:
                while self._waiting:
                    _, fut = self._waiting.popleft()
                    if not fut.done():
                        fut.set_exception(ConnectionError(f"cannot connect: {exc}"))

    def _idle(self, conn: _Connection) -> None:
        while self._waiting:
            data, fut = self._waiting.popleft()
            if fut.done():  # the caller gave up (timeout); do not send it late
                continue
            conn.send(data, fut)
            return
        self._idle_conns.append(conn)

    def _lost(self, conn: _Connection) -> None:
        self._all.discard(conn)
        if self._waiting and not self._closed:
            asyncio.get_running_loop().create_task(self._connect_quietly())

    async def close(self) -> None:
        self._closed = True
        for conn in list(self._all):
            conn.close()
        self._all.clear()
        self._idle_conns.clear()
