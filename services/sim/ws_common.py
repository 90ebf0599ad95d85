"""What every simulated market-data server shares: picows server life, connections, venue rules, faults.

A connection whose socket buffer is full (picows calls ``pause_writing``) loses frames until it drains,
counted in ``dropped``: a real venue does not wait for a slow reader either, and the emission loop must
never block on one client. A connection whose socket is already closing gets nothing more.

picows' automatic pings and pongs are off: the sim answers PING frames itself, so a fault can make a link
half-open (no pongs), and a housekeeping task sends the venue's server pings (``keepalive``). Connections
older than the venue's ``max_connection_age_s`` are closed with 1001, as the venues' 24 h cut.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence

import picows

from services.sim import faults
from services.sim.faults import Fault
from services.sim.units import SymbolSpec

log = logging.getLogger(__name__)

ListenerOrResponse = picows.WSListener | picows.WSUpgradeResponseWithListener | None
HOUSEKEEPING_S = 0.1  # resolution of server pings and liveness rules
RATE_WINDOW_S = 1.0
TICKER = "ticker"  # the best bid/ask topic; depth and funding topics are named by each server


def _never() -> bool:
    return False


class Connection(picows.WSListener):  # type: ignore[misc]
    """One client. Subclasses handle the venue's control frames in ``on_text``."""

    def __init__(self, server: StreamServer) -> None:
        self.server = server
        self.transport: picows.WSTransport | None = None
        self.open = False
        self.paused = False  # socket buffer full
        self.stalled = False  # fault: no market data
        self.silent = False  # fault: half-open, nothing at all
        self.slow = False  # fault: every frame dropped
        self.blocked = False  # no market data now (any of the above)
        self.lossy = False  # what is not sent counts as dropped
        self.combined = False  # Binance only: events wrapped in {"stream","data"}
        self.closing: Callable[[], bool] = _never
        self.opened_at = time.monotonic()
        self.last_client_ping = self.opened_at  # MEXC contract: the client must ping
        self.ping_sent_at = self.opened_at  # Binance: the server pings
        self.pong_due_since: float | None = None  # the first server ping still unanswered
        self.ignored = 0  # frames that went unanswered because the link is half-open
        limit = server.incoming_limit
        self._incoming: deque[float] | None = deque(maxlen=limit + 1) if limit else None
        self._timers: list[asyncio.TimerHandle] = []

    # ----- picows callbacks
    def on_ws_connected(self, transport: picows.WSTransport) -> None:
        self.transport = transport
        self.open = True
        # The socket knows it is gone (a failed write) before picows calls on_ws_disconnected.
        self.closing = transport.underlying_transport.is_closing
        self.server.connections.add(self)
        self.later(self.server.max_connection_age_s, self.close_going_away)
        self.on_open()

    def on_ws_frame(self, transport: picows.WSTransport, frame: picows.WSFrame) -> None:
        kind = frame.msg_type
        if self.silent:  # half-open: whatever arrives is never answered
            self.ignored += 1
            if kind == picows.WSMsgType.CLOSE:
                transport.disconnect()
            return
        if kind == picows.WSMsgType.CLOSE:
            transport.send_close(frame.get_close_code())
            transport.disconnect()
            return
        if self._over_rate():
            return
        if kind == picows.WSMsgType.TEXT:
            self.on_text(frame.get_payload_as_bytes())
        elif kind == picows.WSMsgType.BINARY:
            self.on_binary(frame.get_payload_as_bytes())
        elif kind == picows.WSMsgType.PING:
            if self.slow:
                self.server.dropped += 1
            else:
                transport.send_pong(frame.get_payload_as_bytes())
        elif kind == picows.WSMsgType.PONG:
            self.pong_due_since = None

    def on_ws_disconnected(self, transport: picows.WSTransport) -> None:
        self.open = False
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()
        self.server.connections.discard(self)
        self.server.forget(self)
        self.on_close()

    def pause_writing(self) -> None:
        self.paused = True
        self._refresh()

    def resume_writing(self) -> None:
        self.paused = False
        self._refresh()

    # ----- for subclasses
    def on_open(self) -> None:
        pass

    def on_text(self, payload: bytes) -> None:
        pass

    def on_binary(self, payload: bytes) -> None:
        pass

    def on_close(self) -> None:
        pass

    def reply(self, text: str | bytes) -> None:
        """A control answer: it still flows while the market data is stalled."""
        if self.transport is None or self.silent:
            return
        if self.slow:
            self.server.dropped += 1
            return
        data = text.encode() if isinstance(text, str) else text
        self.transport.send(picows.WSMsgType.TEXT, data)

    # ----- venue rules
    def _over_rate(self) -> bool:
        """Binance: more than ``incoming_limit`` messages within one second and the link is cut."""
        window = self._incoming
        if window is None:
            return False
        now = time.monotonic()
        window.append(now)
        if len(window) == window.maxlen and now - window[0] < RATE_WINDOW_S:
            self.server.rate_disconnects += 1
            self.close(picows.WSCloseCode.POLICY_VIOLATION)
            return True
        return False

    def close(self, code: picows.WSCloseCode) -> None:
        if self.open and self.transport is not None:
            self.transport.send_close(code)
            self.transport.disconnect()

    def close_going_away(self) -> None:
        self.close(picows.WSCloseCode.GOING_AWAY)

    def abort(self) -> None:
        """TCP gone at once: no close frame."""
        if self.open and self.transport is not None:
            self.transport.disconnect(graceful=False)

    def later(self, seconds: float, callback: Callable[[], None]) -> None:
        """Run ``callback`` after ``seconds`` unless the connection is gone by then."""

        def fire() -> None:
            if self.open:
                callback()

        self._timers.append(asyncio.get_running_loop().call_later(seconds, fire))

    # ----- faults
    def apply(self, fault: Fault) -> None:
        kind, seconds = fault.kind, fault.duration
        if kind == faults.DROP:
            self.abort()
        elif kind == faults.STALL:
            self._set("stalled", True, seconds)
        elif kind == faults.SLOW_CONSUMER:
            self._set("slow", True, seconds)
        elif kind == faults.PING_SILENCE:
            self._set("silent", True, None)
            if seconds is not None:
                self.later(seconds, self.abort)
        elif kind == faults.MALFORMED:
            if not self.silent and self.transport is not None:
                msg_type, payload = self.server.malformed_frame()
                self.transport.send(msg_type, payload)
        elif kind == faults.SHUTDOWN:
            notice = self.server.shutdown_notice()
            if notice is not None and not self.silent and self.transport is not None:
                self.transport.send(picows.WSMsgType.TEXT, notice)
            self.later(seconds or 0.0, self.close_going_away)

    def _set(self, flag: str, value: bool, seconds: float | None) -> None:
        setattr(self, flag, value)
        self._refresh()
        if seconds is not None:
            self.later(seconds, lambda: self._set(flag, not value, None))

    def _refresh(self) -> None:
        self.blocked = self.paused or self.stalled or self.silent or self.slow
        self.lossy = self.paused or self.slow


class StreamServer:
    """Subscribers per topic and symbol, and the picows server; subclasses format the venue's frames."""

    incoming_limit: int | None = None  # Binance: messages a client may send per second
    ping_interval_s: float | None = None  # the server pings this often (None: the client must ping)
    pong_timeout_s = 60.0

    def __init__(self, venue: str, specs: Sequence[SymbolSpec], max_connection_age_s: float = 86_400.0) -> None:
        self.venue = venue
        self.specs = list(specs)
        self.max_connection_age_s = max_connection_age_s
        self.topics: dict[str, list[dict[Connection, str]]] = {}  # topic -> per symbol: conn -> stream name
        self.subscribers = self.topic(TICKER)
        self.connections: set[Connection] = set()
        self.frames = [0] * len(specs)  # data frames sent, per symbol
        self.depth_frames = 0
        self.dropped = 0
        self.rate_disconnects = 0
        self.faults = faults.counts()
        self.port = 0
        self._server: asyncio.Server | None = None
        self._housekeeping: asyncio.Task[None] | None = None

    def listener(self, request: picows.WSUpgradeRequest) -> ListenerOrResponse:
        raise NotImplementedError

    def malformed_frame(self) -> tuple[picows.WSMsgType, bytes]:
        return picows.WSMsgType.TEXT, b'{"stream":"'  # truncated JSON

    def shutdown_notice(self) -> bytes | None:
        return None

    def keepalive(self, conn: Connection, now: float) -> None:
        """Server pings (when the venue sends them) and the pong deadline; subclasses add client rules."""
        if self.ping_interval_s is None or conn.silent or conn.slow or conn.transport is None:
            return  # half-open or "buffer full": no pings go out, and no pong deadline starts
        if conn.pong_due_since is not None and now - conn.pong_due_since > self.pong_timeout_s:
            conn.close_going_away()
        elif now - conn.ping_sent_at >= self.ping_interval_s:
            conn.transport.send_ping(b"%d" % int(time.time() * 1000))
            conn.ping_sent_at = now
            if conn.pong_due_since is None:
                conn.pong_due_since = now

    async def start(self, host: str, port: int) -> int:
        factory: Callable[[picows.WSUpgradeRequest], ListenerOrResponse] = self.listener
        self._server = await picows.ws_create_server(
            factory, host, port, enable_auto_ping=False, enable_auto_pong=False, logger_name=f"sim.{self.venue}"
        )
        self.port = int(self._server.sockets[0].getsockname()[1])
        self._housekeeping = asyncio.get_running_loop().create_task(self._keep(), name=f"sim.{self.venue}.keep")
        return self.port

    async def stop(self) -> None:
        if self._housekeeping is not None:
            self._housekeeping.cancel()
            await asyncio.wait([self._housekeeping])
            self._housekeeping = None
        if self._server is None:
            return
        self._server.close()
        for conn in list(self.connections):
            if conn.transport is not None:
                conn.transport.send_close(picows.WSCloseCode.GOING_AWAY)
                conn.transport.disconnect()
        await self._server.wait_closed()
        self._server = None

    async def _keep(self) -> None:
        while True:
            await asyncio.sleep(HOUSEKEEPING_S)  # a pacing timer, not synchronization
            now = time.monotonic()
            for conn in list(self.connections):
                self.keepalive(conn, now)

    # ----- subscriptions
    def topic(self, name: str) -> list[dict[Connection, str]]:
        subs = self.topics.get(name)
        if subs is None:
            subs = self.topics[name] = [{} for _ in self.specs]
        return subs

    def subscribe(self, conn: Connection, symbol: int, channel: str, topic: str = TICKER) -> None:
        self.topic(topic)[symbol][conn] = channel

    def unsubscribe(self, conn: Connection, symbol: int, topic: str = TICKER) -> None:
        self.topic(topic)[symbol].pop(conn, None)

    def forget(self, conn: Connection) -> None:
        for per_symbol in self.topics.values():
            for subs in per_symbol:
                subs.pop(conn, None)

    def send(self, subs: dict[Connection, str], msg_type: picows.WSMsgType, payload: bytes) -> int:
        """One payload to every subscriber that takes data now; how many were sent."""
        sent = 0
        for conn in subs:
            if conn.blocked or conn.closing():
                if conn.lossy:
                    self.dropped += 1
                continue
            conn.transport.send(msg_type, payload)
            sent += 1
        return sent

    # ----- faults
    def inject(self, fault: Fault) -> None:
        """Apply ``fault`` to the connections open now (``gap`` is the venue's business, not theirs)."""
        self.faults[fault.kind] += 1
        if fault.kind != faults.GAP:
            for conn in list(self.connections):
                conn.apply(fault)

    def stats(self) -> dict[str, object]:
        return {
            "connections": len(self.connections),
            "faults": dict(self.faults),
            "rate_disconnects": self.rate_disconnects,
            "depth_frames": self.depth_frames,
            "dropped": self.dropped,
        }
