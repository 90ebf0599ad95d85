"""What both simulated market-data servers share: picows server life, connections, slow consumers.

A connection whose socket buffer is full (picows calls ``pause_writing``) loses frames until it drains,
counted in ``dropped``: a real venue does not wait for a slow reader either, and the emission loop must
never block on one client. A connection whose socket is already closing gets nothing more.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

import picows

from services.sim.units import SymbolSpec

log = logging.getLogger(__name__)

ListenerOrResponse = picows.WSListener | picows.WSUpgradeResponseWithListener | None


def _never() -> bool:
    return False


class Connection(picows.WSListener):  # type: ignore[misc]
    """One client. Subclasses handle the venue's control frames in ``on_text``."""

    def __init__(self, server: StreamServer) -> None:
        self.server = server
        self.transport: picows.WSTransport | None = None
        self.paused = False
        self.combined = False  # Binance only: events wrapped in {"stream","data"}
        self.closing: Callable[[], bool] = _never

    # picows callbacks
    def on_ws_connected(self, transport: picows.WSTransport) -> None:
        self.transport = transport
        # The socket knows it is gone (a failed write) before picows calls on_ws_disconnected.
        self.closing = transport.underlying_transport.is_closing
        self.server.connections.add(self)
        self.on_open()

    def on_ws_frame(self, transport: picows.WSTransport, frame: picows.WSFrame) -> None:
        kind = frame.msg_type
        if kind == picows.WSMsgType.TEXT:
            self.on_text(frame.get_payload_as_bytes())
        elif kind == picows.WSMsgType.BINARY:
            self.on_binary(frame.get_payload_as_bytes())
        elif kind == picows.WSMsgType.CLOSE:
            transport.send_close(frame.get_close_code())
            transport.disconnect()

    def on_ws_disconnected(self, transport: picows.WSTransport) -> None:
        self.server.connections.discard(self)
        self.on_close()

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False

    # for subclasses
    def on_open(self) -> None:
        pass

    def on_text(self, payload: bytes) -> None:
        pass

    def on_binary(self, payload: bytes) -> None:
        pass

    def on_close(self) -> None:
        pass

    def reply(self, text: str | bytes) -> None:
        if self.transport is not None:
            data = text.encode() if isinstance(text, str) else text
            self.transport.send(picows.WSMsgType.TEXT, data)


class StreamServer:
    """Subscribers per symbol and the picows server; subclasses format and route the venue's frames."""

    auto_ping = False  # Binance pings its clients; MEXC expects the client to ping

    def __init__(self, venue: str, specs: Sequence[SymbolSpec]) -> None:
        self.venue = venue
        self.specs = list(specs)
        self.subscribers: list[dict[Connection, str]] = [{} for _ in specs]  # per symbol: conn -> channel
        self.connections: set[Connection] = set()
        self.frames = [0] * len(specs)  # data frames sent, per symbol
        self.dropped = 0
        self.port = 0
        self._server: asyncio.Server | None = None

    def listener(self, request: picows.WSUpgradeRequest) -> ListenerOrResponse:
        raise NotImplementedError

    async def start(self, host: str, port: int) -> int:
        factory: Callable[[picows.WSUpgradeRequest], ListenerOrResponse] = self.listener
        self._server = await picows.ws_create_server(
            factory,
            host,
            port,
            enable_auto_ping=self.auto_ping,
            auto_ping_idle_timeout=20.0,
            auto_ping_reply_timeout=20.0,  # picows refuses a reply timeout longer than the interval
            auto_ping_strategy=picows.WSAutoPingStrategy.PING_PERIODICALLY,
            logger_name=f"sim.{self.venue}",
        )
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self.port

    async def stop(self) -> None:
        if self._server is None:
            return
        self._server.close()
        for conn in list(self.connections):
            if conn.transport is not None:
                conn.transport.send_close(picows.WSCloseCode.GOING_AWAY)
                conn.transport.disconnect()
        await self._server.wait_closed()
        self._server = None

    def subscribe(self, conn: Connection, symbol: int, channel: str) -> None:
        self.subscribers[symbol][conn] = channel

    def unsubscribe(self, conn: Connection, symbol: int) -> None:
        self.subscribers[symbol].pop(conn, None)

    def forget(self, conn: Connection) -> None:
        for subs in self.subscribers:
            subs.pop(conn, None)
