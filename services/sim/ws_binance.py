"""Simulated Binance market-data WebSocket (spot here; USD-M futures in ws_binance_futures.py): JSON text.

Paths: combined ``/stream?streams=a/b`` (events wrapped as ``{"stream","data"}``), raw ``/ws/<stream>``
or ``/ws`` (bare payloads). Control frames SUBSCRIBE, UNSUBSCRIBE, LIST_SUBSCRIPTIONS, SET_PROPERTY and
GET_PROPERTY answer ``{"result":..,"id":..}``; bad requests get error code 2, bad JSON code 3. Enforced as
on the venue: 5 incoming messages per second (text, pings, pongs), server pings with a pong deadline, the
connection lifetime.

The spot server also serves Binance's WebSocket API user data on ``/ws-api/v3`` (``ws_api``).

Spot streams: ``<s>@bookTicker`` (every book change), ``<s>@depth`` / ``<s>@depth@100ms`` (diffs every
1000 / 100 ms) and ``<s>@depth<5|10|20>[@100ms]`` (partial books).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from urllib.parse import parse_qs

import msgspec
import picows
from msgspec import Struct

from services.sim.depth import DepthBook, DepthDiff, Level
from services.sim.market import SimQuote
from services.sim.units import SymbolSpec, units_text
from services.sim.ws_api import WS_API_PATH, UserStreams, WsApiConnection
from services.sim.ws_common import TICKER, Connection, ListenerOrResponse, StreamServer
from shared.venues.binance.constants import (
    BOOK_TICKER_SUFFIX,
    COMBINED_PATH,
    DEPTH_SUFFIX,
    MAX_INCOMING_PER_S,
    MAX_STREAMS_PER_CONNECTION,
    PARTIAL_DEPTH_LEVELS,
    RAW_PATH_PREFIX,
    SERVER_SHUTDOWN_EVENT,
    WS_ERR_INVALID_JSON,
    WS_ERR_INVALID_REQUEST,
)

METHODS = ("SUBSCRIBE", "UNSUBSCRIBE", "LIST_SUBSCRIPTIONS", "SET_PROPERTY", "GET_PROPERTY")
DIFF_INTERVALS = (100, 1000)  # ms: <s>@depth@100ms and <s>@depth
PARTIAL_INTERVALS = (100, 1000)

StreamIndex = Mapping[str, tuple[int, str]]  # stream name -> (symbol index, topic)


class _Request(Struct):
    method: str
    params: list[object] = []
    id: int | str | None = None


_request_decoder = msgspec.json.Decoder(_Request)
_encode = msgspec.json.encode


def _error(code: int, msg: str, request_id: int | str | None = None) -> bytes:
    body: dict[str, object] = {"code": code, "msg": msg}
    if request_id is not None:
        body["id"] = request_id
    return _encode(body)


def diff_topic(interval_ms: int) -> str:
    return f"diff@{interval_ms}"


def partial_topic(levels: int, interval_ms: int) -> str:
    return f"depth{levels}@{interval_ms}"


def spot_streams(specs: Sequence[SymbolSpec], listed: Iterable[int]) -> dict[str, tuple[int, str]]:
    """Every spot stream name the sim serves, with its symbol and topic."""
    out: dict[str, tuple[int, str]] = {}
    for i in listed:
        s = specs[i].name.lower()
        out[s + BOOK_TICKER_SUFFIX] = (i, TICKER)
        out[s + DEPTH_SUFFIX] = (i, diff_topic(1000))
        out[s + DEPTH_SUFFIX + "@100ms"] = (i, diff_topic(100))
        for n in PARTIAL_DEPTH_LEVELS:
            out[f"{s}{DEPTH_SUFFIX}{n}"] = (i, partial_topic(n, 1000))
            out[f"{s}{DEPTH_SUFFIX}{n}@100ms"] = (i, partial_topic(n, 100))
    return out


class BinanceConnection(Connection):
    def __init__(self, server: BinanceStreamServer, combined: bool, streams: Sequence[str]) -> None:
        super().__init__(server)
        self.bserver = server
        self.combined = combined  # wrap events as {"stream","data"}
        self.streams: list[str] = []  # in subscription order, as LIST_SUBSCRIPTIONS reports them
        self._initial = list(streams)

    def on_open(self) -> None:
        self._subscribe(self._initial)

    def on_binary(self, payload: bytes) -> None:
        self.reply(_error(WS_ERR_INVALID_JSON, "Invalid JSON: expected a text frame"))

    def on_text(self, payload: bytes) -> None:
        try:
            req = _request_decoder.decode(payload)
        except msgspec.ValidationError as exc:
            self.reply(_error(WS_ERR_INVALID_REQUEST, f"Invalid request: {exc}"))
            return
        except msgspec.DecodeError as exc:
            self.reply(_error(WS_ERR_INVALID_JSON, f"Invalid JSON: {exc}"))
            return
        problem = self._handle(req)
        if problem:
            self.reply(_error(WS_ERR_INVALID_REQUEST, f"Invalid request: {problem}", req.id))

    def _handle(self, req: _Request) -> str:
        """Answer one control request; return what is wrong with it, or "" when it was answered."""
        result: object = None
        if req.method in ("SUBSCRIBE", "UNSUBSCRIBE"):
            names = [p for p in req.params if isinstance(p, str)]
            if len(names) != len(req.params):
                return "stream names must be strings"
            if req.method == "UNSUBSCRIBE":
                self._unsubscribe(names)
            elif len(self.streams) + len(names) > MAX_STREAMS_PER_CONNECTION:
                return "too many streams"
            else:
                self._subscribe(names)
        elif req.method == "LIST_SUBSCRIPTIONS":
            result = self.streams
        elif req.method == "SET_PROPERTY":
            if len(req.params) != 2 or req.params[0] != "combined" or not isinstance(req.params[1], bool):
                return "unknown property"
            self.combined = req.params[1]
        elif req.method == "GET_PROPERTY":
            if req.params != ["combined"]:
                return "unknown property"
            result = self.combined
        else:
            expected = ", ".join(f"`{m}`" for m in METHODS)
            return f"unknown variant `{req.method}`, expected one of {expected}"
        self.reply(_encode({"result": result, "id": req.id}))
        return ""

    def _subscribe(self, names: Iterable[str]) -> None:
        for name in names:
            if name in self.streams:
                continue
            self.streams.append(name)
            # Unknown stream names are accepted and stay silent, as on the venue.
            found = self.bserver.stream_index.get(name)
            if found is not None:
                self.server.subscribe(self, found[0], name, found[1])

    def _unsubscribe(self, names: Iterable[str]) -> None:
        for name in names:
            if name in self.streams:
                self.streams.remove(name)
            found = self.bserver.stream_index.get(name)
            if found is not None:
                self.server.unsubscribe(self, found[0], found[1])


class BinanceStreamServer(StreamServer):
    """Paths, control frames and event sending shared by Binance spot and USD-M futures."""

    incoming_limit = MAX_INCOMING_PER_S
    ping_interval_s: float | None = 20.0  # the venue pings every 20 s and wants a pong within a minute
    pong_timeout_s = 60.0
    paths = (COMBINED_PATH,)  # combined-stream paths; /ws and /ws/<stream> are raw

    def __init__(self, venue: str, specs: Sequence[SymbolSpec], max_connection_age_s: float = 86_400.0) -> None:
        super().__init__(venue, specs, max_connection_age_s)
        self.stream_index: StreamIndex = {}

    def listener(self, request: picows.WSUpgradeRequest) -> ListenerOrResponse:
        path, _, query = request.path.decode("latin-1").partition("?")
        if path in self.paths:
            combined = True
            streams = [s for s in parse_qs(query).get("streams", [""])[0].split("/") if s]
        elif path == RAW_PATH_PREFIX:
            combined, streams = False, []
        elif path.startswith(RAW_PATH_PREFIX + "/"):
            combined, streams = False, [s for s in path[len(RAW_PATH_PREFIX) + 1 :].split("/") if s]
        else:
            return None  # picows answers 404
        if len(streams) > MAX_STREAMS_PER_CONNECTION:
            body = _error(WS_ERR_INVALID_REQUEST, "Invalid request: too many streams")
            response = picows.WSUpgradeResponse.create_error_response(400, body)
            return picows.WSUpgradeResponseWithListener(response, None)
        return BinanceConnection(self, combined, streams)

    def shutdown_notice(self) -> bytes | None:
        return b'{"e":"%s","E":%d}' % (SERVER_SHUTDOWN_EVENT.encode(), time.time_ns() // 1_000_000)

    def malformed_frame(self) -> tuple[picows.WSMsgType, bytes]:
        return picows.WSMsgType.TEXT, b'{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpd'

    def send_event(self, subs: dict[Connection, str], data: str) -> int:
        """``data`` to each subscriber: bare on raw connections, wrapped on combined ones (every
        subscriber of one topic and symbol shares the stream name, so each form is built once)."""
        raw: bytes | None = None
        wrapped: bytes | None = None
        sent = 0
        for conn, name in subs.items():
            transport = conn.transport
            if conn.blocked or conn.closing():
                if conn.lossy:
                    self.dropped += 1
                continue
            if conn.combined:
                if wrapped is None:
                    wrapped = f'{{"stream":"{name}","data":{data}}}'.encode()
                transport.send(picows.WSMsgType.TEXT, wrapped)
            else:
                if raw is None:
                    raw = data.encode()
                transport.send(picows.WSMsgType.TEXT, raw)
            sent += 1
        return sent


def levels_json(spec: SymbolSpec, levels: Sequence[Level]) -> str:
    pd, qd = spec.price_decimals, spec.qty_decimals
    return ",".join(f'["{units_text(p, pd)}","{units_text(q, qd)}"]' for p, q in levels)


class BinanceSpotStreamServer(BinanceStreamServer):
    diff_intervals = DIFF_INTERVALS
    partial_intervals = PARTIAL_INTERVALS

    def __init__(
        self, venue: str, specs: Sequence[SymbolSpec], listed: Sequence[int], max_connection_age_s: float = 86_400.0
    ) -> None:
        super().__init__(venue, specs, max_connection_age_s)
        self.stream_index = spot_streams(specs, listed)
        self._mids = [f',"s":"{s.name}","b":"' for s in specs]  # the hot path only fills in numbers
        self._diff_subs = {ms: self.topic(diff_topic(ms)) for ms in DIFF_INTERVALS}
        self.user_streams: UserStreams | None = None  # set by the venue: the WS API's account events

    def listener(self, request: picows.WSUpgradeRequest) -> ListenerOrResponse:
        if self.user_streams is not None and request.path.decode("latin-1").partition("?")[0] == WS_API_PATH:
            return WsApiConnection(self, self.user_streams)
        return super().listener(request)

    def publish(self, q: SimQuote) -> None:
        """bookTicker on every book change; ``u`` is the book's update id (one id space with depth)."""
        s = q.symbol
        subs = self.subscribers[s]
        if not subs:
            return
        spec = self.specs[s]
        pd, qd = spec.price_decimals, spec.qty_decimals
        data = (
            f'{{"u":{q.seq}{self._mids[s]}{units_text(q.bid, pd)}","B":"{units_text(q.bid_qty, qd)}",'
            f'"a":"{units_text(q.ask, pd)}","A":"{units_text(q.ask_qty, qd)}"}}'
        )
        self.frames[s] += self.send_event(subs, data)

    def has_diff_subscribers(self, symbol: int, interval_ms: int) -> bool:
        return bool(self._diff_subs[interval_ms][symbol])

    def publish_diff(self, symbol: int, interval_ms: int, diff: DepthDiff) -> None:
        spec = self.specs[symbol]
        data = (
            f'{{"e":"depthUpdate","E":{time.time_ns() // 1_000_000},"s":"{spec.name}","U":{diff.first},'
            f'"u":{diff.last},"b":[{levels_json(spec, diff.bids)}],"a":[{levels_json(spec, diff.asks)}]}}'
        )
        self.depth_frames += self.send_event(self._diff_subs[interval_ms][symbol], data)

    def publish_partials(self, interval_ms: int, books: Sequence[DepthBook]) -> None:
        """Partial books are pushed every interval, changed or not, as on the venue."""
        for n in PARTIAL_DEPTH_LEVELS:
            per_symbol = self.topics.get(partial_topic(n, interval_ms))
            if per_symbol is None:
                continue
            for s, subs in enumerate(per_symbol):
                if not subs or books[s].update_id == 0:
                    continue
                update_id, bids, asks = books[s].top(n)
                spec = self.specs[s]
                data = (
                    f'{{"lastUpdateId":{update_id},"bids":[{levels_json(spec, bids)}],'
                    f'"asks":[{levels_json(spec, asks)}]}}'
                )
                self.depth_frames += self.send_event(subs, data)
