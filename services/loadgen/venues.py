"""The venues' WebSocket servers as the feeds meet them: upgrade paths, subscription protocols, control answers.

One server per configured venue port (picows does the HTTP/1.1 upgrade with ``Sec-WebSocket-Accept``,
unmasks client frames and answers WebSocket pings with pongs). What each venue kind accepts, as
PROTOCOLS.md and the simulator (``services/sim/ws_*.py``) have it:

- ``binance``: ``/stream?streams=a/b/c`` (combined); ``SUBSCRIBE`` / ``UNSUBSCRIBE`` / ``LIST_SUBSCRIPTIONS``
  frames answered ``{"result":..,"id":N}``, bad JSON code 3, a bad request code 2. Data: ``<s>@bookTicker``;
  other stream names are accepted and stay silent, as on the venue.
- ``binance_usdm``: the same on ``/market/stream`` (the routed path) and ``/stream``; ``<s>@markPrice@1s``
  every funding push, ``<s>@markPrice`` every third.
- ``mexc``: ``/ws``; ``{"method":"SUBSCRIPTION","params":[..]}`` answered ``{"id":0,"code":0,"msg":"<params>"}``,
  ``UNSUBSCRIPTION`` likewise, ``{"method":"PING"}`` answered ``PONG``. Data: the aggregated bookTicker
  channel (``@100ms@`` or ``@10ms@``; the frames carry the ``@100ms@`` name); depth channels are acked, silent.
- ``mexc_contract``: ``/edge``; ``{"method":"ping"}`` → ``{"channel":"pong","data":<ms>}``,
  ``sub.funding.rate`` / ``unsub.funding.rate`` → ``{"channel":"rs.<method>","data":"success","ts":<ms>}``.

Not enforced, on purpose (this measures the engine, not the venue): message-rate cuts, subscription caps,
connection lifetimes, server pings. A connection whose socket buffer is full (``pause_writing``) gets no
data until it drains; what it misses is counted in ``dropped``, as a real venue does not wait either.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from urllib.parse import parse_qs

import msgspec
import picows
from msgspec import Struct

from services.loadgen.frames import binance_mark_frame, mexc_funding_frame
from services.sim.perp import FundingPoint
from services.sim.units import SymbolSpec
from shared.venues.binance.constants import (
    BOOK_TICKER_SUFFIX,
    COMBINED_PATH,
    FUTURES_ROUTED_PATH,
    MARK_PRICE_SUFFIX,
    WS_ERR_INVALID_JSON,
    WS_ERR_INVALID_REQUEST,
)
from shared.venues.mexc.constants import (
    BOOK_TICKER_CHANNEL,
    CONTRACT_SUB_FUNDING,
    CONTRACT_WS_PATH,
    PONG_MSG,
    WS_PATH,
)

log = logging.getLogger(__name__)

ListenerOrResponse = picows.WSListener | picows.WSUpgradeResponseWithListener | None
PLAIN_MARK_SUFFIX = MARK_PRICE_SUFFIX.removesuffix("@1s")
CONTRACT_UNSUB_FUNDING = "unsub.funding.rate"
MEXC_INTERVALS = ("100ms", "10ms")


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def contract_symbol(spec: SymbolSpec) -> str:
    return f"{spec.base}_{spec.quote}"


class Conn(picows.WSListener):  # type: ignore[misc]
    """One client connection: what it subscribed to, and a direct line to its socket for pre-framed bytes."""

    def __init__(self, server: VenueServer, initial: Sequence[str] = ()) -> None:
        self.server = server
        self.transport: picows.WSTransport | None = None
        self.write: Callable[[bytes], None] = _discard
        self.closing: Callable[[], bool] = _closed
        self.paused = False
        self.names: list[str] = []  # every name subscribed, in order (LIST_SUBSCRIPTIONS)
        self.subs: dict[int, str] = {}  # symbol index -> the stream or channel name that carries it
        self.full = False  # subscribed to every symbol the venue quotes: frames go out as one slice
        self.wanted: list[bool] = [False] * len(server.specs)
        self._initial = list(initial)

    # ----- picows callbacks
    def on_ws_connected(self, transport: picows.WSTransport) -> None:
        self.transport = transport
        underlying = transport.underlying_transport
        self.write = underlying.write  # frames are pre-framed: bytes go straight to the socket
        self.closing = underlying.is_closing
        self.server.conns.add(self)
        if self._initial:
            self.subscribe(self._initial)

    def on_ws_frame(self, transport: picows.WSTransport, frame: picows.WSFrame) -> None:
        kind = frame.msg_type
        if kind == picows.WSMsgType.TEXT:
            self.server.on_text(self, frame.get_payload_as_bytes())
        elif kind == picows.WSMsgType.CLOSE:
            transport.send_close(frame.get_close_code())
            transport.disconnect()
        elif kind == picows.WSMsgType.BINARY:
            self.server.on_binary(self)

    def on_ws_disconnected(self, transport: picows.WSTransport) -> None:
        self.server.conns.discard(self)
        self.write = _discard
        self.closing = _closed

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False

    # ----- subscriptions
    def subscribe(self, names: Iterable[str]) -> None:
        for name in names:
            if name not in self.names:
                self.names.append(name)
            symbol = self.server.channels.get(name)
            if symbol is not None:
                self.subs[symbol] = name
        self._refresh()

    def unsubscribe(self, names: Iterable[str]) -> None:
        for name in names:
            if name in self.names:
                self.names.remove(name)
            symbol = self.server.channels.get(name)
            if symbol is not None and self.subs.get(symbol) == name:
                del self.subs[symbol]
        self._refresh()

    def _refresh(self) -> None:
        self.wanted = [s in self.subs for s in range(len(self.server.specs))]
        self.full = bool(self.server.listed) and all(self.wanted[s] for s in self.server.listed)

    # ----- out
    def reply(self, body: bytes) -> None:
        if self.transport is not None and not self.transport.is_disconnected:
            self.transport.send(picows.WSMsgType.TEXT, body)

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_disconnected:
            self.transport.send_close(picows.WSCloseCode.GOING_AWAY)
            self.transport.disconnect()


def _discard(data: bytes) -> None:
    pass


def _closed() -> bool:
    return True


class VenueServer:
    """A venue's WebSocket port; subclasses speak its protocol. ``channels`` maps every name that carries
    data to its symbol index."""

    paths: tuple[str, ...] = ()

    def __init__(self, name: str, kind: str, specs: Sequence[SymbolSpec], listed: Sequence[int]) -> None:
        self.name = name
        self.kind = kind
        self.specs = list(specs)
        self.listed = list(listed)
        self.channels: dict[str, int] = {}
        self.conns: set[Conn] = set()
        self.frames_sent = 0
        self.dropped = 0
        self.port = 0
        self._server: asyncio.Server | None = None

    def listener(self, request: picows.WSUpgradeRequest) -> ListenerOrResponse:
        path = request.path.decode("latin-1").partition("?")[0]
        return Conn(self) if path in self.paths else None  # None: picows answers 404

    def on_text(self, conn: Conn, payload: bytes) -> None:
        raise NotImplementedError

    def on_binary(self, conn: Conn) -> None:
        pass  # no venue here expects binary frames from a client; ignored

    def push(self, points: Mapping[int, FundingPoint], event_ms: int, tick: int) -> None:
        """A perpetual's funding push: ``points`` per symbol, the ``tick``-th push (spot servers have none)."""
        raise NotImplementedError(f"{self.name} pushes no funding")

    async def start(self, host: str, port: int) -> int:
        self._server = await picows.ws_create_server(
            self.listener, host, port, enable_auto_ping=False, enable_auto_pong=True,
            logger_name=f"loadgen.{self.name}",
        )
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self.port

    async def stop(self) -> None:
        if self._server is None:
            return
        self._server.close()
        for conn in list(self.conns):
            conn.close()
        await self._server.wait_closed()
        self._server = None

    def stats(self) -> dict[str, int]:
        return {"frames": self.frames_sent, "dropped": self.dropped, "connections": len(self.conns)}


# ----- Binance (spot and USD-M)
class _BinanceRequest(Struct):
    method: str
    params: list[object] = []
    id: int | str | None = None


_binance_request = msgspec.json.Decoder(_BinanceRequest)
_encode = msgspec.json.encode


def _binance_error(code: int, msg: str, request_id: int | str | None = None) -> bytes:
    body: dict[str, object] = {"code": code, "msg": msg}
    if request_id is not None:
        body["id"] = request_id
    return _encode(body)


class BinanceServer(VenueServer):
    """Combined streams: the streams in the URL, then SUBSCRIBE/UNSUBSCRIBE/LIST_SUBSCRIPTIONS frames."""

    paths = (COMBINED_PATH,)

    def __init__(self, name: str, kind: str, specs: Sequence[SymbolSpec], listed: Sequence[int]) -> None:
        super().__init__(name, kind, specs, listed)
        self.channels = {specs[s].name.lower() + BOOK_TICKER_SUFFIX: s for s in listed}

    def listener(self, request: picows.WSUpgradeRequest) -> ListenerOrResponse:
        path, _, query = request.path.decode("latin-1").partition("?")
        if path not in self.paths:
            return None
        streams = [s for s in parse_qs(query).get("streams", [""])[0].split("/") if s]
        return Conn(self, streams)

    def on_text(self, conn: Conn, payload: bytes) -> None:
        try:
            req = _binance_request.decode(payload)
        except msgspec.ValidationError as exc:
            conn.reply(_binance_error(WS_ERR_INVALID_REQUEST, f"Invalid request: {exc}"))
            return
        except msgspec.DecodeError as exc:
            conn.reply(_binance_error(WS_ERR_INVALID_JSON, f"Invalid JSON: {exc}"))
            return
        names = [p for p in req.params if isinstance(p, str)]
        result: object = None
        if req.method == "SUBSCRIBE":
            conn.subscribe(names)
        elif req.method == "UNSUBSCRIBE":
            conn.unsubscribe(names)
        elif req.method == "LIST_SUBSCRIPTIONS":
            result = list(conn.names)
        else:
            conn.reply(_binance_error(WS_ERR_INVALID_REQUEST, f"Invalid request: unknown method {req.method}", req.id))
            return
        conn.reply(_encode({"result": result, "id": req.id}))


class BinancePerpServer(BinanceServer):
    """USD-M markPrice: ``<s>@markPrice@1s`` on every push, ``<s>@markPrice`` on every third."""

    paths = (FUTURES_ROUTED_PATH, COMBINED_PATH)
    SLOW_EVERY = 3

    def __init__(self, name: str, kind: str, specs: Sequence[SymbolSpec], listed: Sequence[int]) -> None:
        super().__init__(name, kind, specs, listed)
        self.channels = {}
        for s in listed:
            low = specs[s].name.lower()
            self.channels[low + MARK_PRICE_SUFFIX] = s
            self.channels[low + PLAIN_MARK_SUFFIX] = s

    def push(self, points: Mapping[int, FundingPoint], event_ms: int, tick: int) -> None:
        """Each subscriber's markPrice frames for ``points`` (per symbol), as one write per connection."""
        slow = tick % self.SLOW_EVERY == 0
        specs = self.specs
        for conn in list(self.conns):
            if conn.paused or conn.closing():
                self.dropped += len(conn.subs)
                continue
            parts = [
                binance_mark_frame(stream, specs[s].name, pt.rate, pt.mark, pt.index, pt.next_funding_ms, event_ms)
                for s, stream in conn.subs.items()
                if (pt := points.get(s)) is not None and (slow or stream.endswith(MARK_PRICE_SUFFIX))
            ]
            if parts:
                conn.write(b"".join(parts))
                self.frames_sent += len(parts)


# ----- MEXC spot
class _MexcRequest(Struct):
    method: str
    params: list[str] = []
    id: int = 0


_mexc_request = msgspec.json.Decoder(_MexcRequest)


def _mexc_reply(msg: str, request_id: int = 0, code: int = 0) -> bytes:
    return _encode({"id": request_id, "code": code, "msg": msg})


class MexcServer(VenueServer):
    paths = (WS_PATH,)

    def __init__(self, name: str, kind: str, specs: Sequence[SymbolSpec], listed: Sequence[int]) -> None:
        super().__init__(name, kind, specs, listed)
        prefix = BOOK_TICKER_CHANNEL.removesuffix("100ms@")
        self.channels = {f"{prefix}{interval}@{specs[s].name}": s for s in listed for interval in MEXC_INTERVALS}

    def on_text(self, conn: Conn, payload: bytes) -> None:
        try:
            req = _mexc_request.decode(payload)
        except msgspec.DecodeError:
            conn.reply(_mexc_reply("Invalid request", code=1))  # the venue documents no answer: the sim's
            return
        method = req.method.upper()
        if method == "PING":
            conn.reply(_mexc_reply(PONG_MSG, req.id))
        elif method == "SUBSCRIPTION":
            conn.subscribe(req.params)
            conn.reply(_mexc_reply(",".join(req.params), req.id))
        elif method == "UNSUBSCRIPTION":
            conn.unsubscribe(req.params)
            conn.reply(_mexc_reply(",".join(req.params), req.id))
        else:
            conn.reply(_mexc_reply(f"Invalid method {req.method}", req.id, code=1))


# ----- MEXC contract
class _ContractParam(Struct, frozen=True):
    symbol: str = ""


class _ContractRequest(Struct):
    method: str
    param: _ContractParam = _ContractParam()


_contract_request = msgspec.json.Decoder(_ContractRequest)


class MexcContractServer(VenueServer):
    paths = (CONTRACT_WS_PATH,)

    def __init__(self, name: str, kind: str, specs: Sequence[SymbolSpec], listed: Sequence[int]) -> None:
        super().__init__(name, kind, specs, listed)
        self.channels = {contract_symbol(specs[s]): s for s in listed}

    def on_text(self, conn: Conn, payload: bytes) -> None:
        try:
            req = _contract_request.decode(payload)
        except msgspec.DecodeError as exc:
            conn.reply(_encode({"channel": "rs.error", "data": f"invalid request: {exc}", "ts": now_ms()}))
            return
        if req.method == "ping":
            conn.reply(_encode({"channel": "pong", "data": now_ms()}))
        elif req.method in (CONTRACT_SUB_FUNDING, CONTRACT_UNSUB_FUNDING):
            if req.param.symbol not in self.channels:
                conn.reply(_encode({"channel": "rs.error", "data": f"contract not exist: {req.param.symbol!r}",
                                    "ts": now_ms()}))
                return
            if req.method == CONTRACT_SUB_FUNDING:
                conn.subscribe([req.param.symbol])
            else:
                conn.unsubscribe([req.param.symbol])
            conn.reply(_encode({"channel": "rs." + req.method, "data": "success", "ts": now_ms()}))
        else:
            conn.reply(_encode({"channel": "rs.error", "data": f"unknown method {req.method!r}", "ts": now_ms()}))

    def push(self, points: Mapping[int, FundingPoint], ts_ms: int, tick: int) -> None:
        """Each subscriber's ``push.funding.rate`` frames for ``points``, as one write per connection (every
        push alike: ``tick`` does not matter here)."""
        frames = {
            s: mexc_funding_frame(contract_symbol(self.specs[s]), pt.rate, pt.next_funding_ms, ts_ms)
            for s, pt in points.items()
        }
        for conn in list(self.conns):
            if conn.paused or conn.closing():
                self.dropped += len(conn.subs)
                continue
            parts = [frames[s] for s in conn.subs if s in frames]
            if parts:
                conn.write(b"".join(parts))
                self.frames_sent += len(parts)
