"""Simulated Binance spot market-data WebSocket: ``<symbol>@bookTicker`` as JSON text.

Paths: combined ``/stream?streams=a/b`` (events wrapped as ``{"stream","data"}``), raw ``/ws/<stream>``
or ``/ws`` (bare payloads). Control frames SUBSCRIBE, UNSUBSCRIBE, LIST_SUBSCRIPTIONS, SET_PROPERTY and
GET_PROPERTY answer ``{"result":..,"id":..}``; bad requests get error code 2, bad JSON code 3. Not
enforced: the 5 messages/s incoming limit and the 24 h connection lifetime.
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import parse_qs

import msgspec
import picows
from msgspec import Struct

from services.sim.market import SimQuote
from services.sim.units import SymbolSpec, units_text
from services.sim.ws_common import Connection, ListenerOrResponse, StreamServer
from shared.venues.binance.constants import (
    COMBINED_PATH,
    MAX_STREAMS_PER_CONNECTION,
    RAW_PATH_PREFIX,
    WS_ERR_INVALID_JSON,
    WS_ERR_INVALID_REQUEST,
)
from shared.venues.binance.market import stream_name

METHODS = ("SUBSCRIBE", "UNSUBSCRIBE", "LIST_SUBSCRIPTIONS", "SET_PROPERTY", "GET_PROPERTY")


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


class BinanceConnection(Connection):
    def __init__(self, server: BinanceStreamServer, combined: bool, streams: Sequence[str]) -> None:
        super().__init__(server)
        self.bserver = server
        self.combined = combined  # wrap events as {"stream","data"}
        self.streams: list[str] = []  # in subscription order, as LIST_SUBSCRIPTIONS reports them
        self._initial = list(streams)

    def on_open(self) -> None:
        self._subscribe(self._initial)

    def on_close(self) -> None:
        self.server.forget(self)

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

    def _subscribe(self, names: Sequence[str]) -> None:
        for name in names:
            if name in self.streams:
                continue
            self.streams.append(name)
            # Unknown stream names are accepted and stay silent, as on the venue.
            symbol = self.bserver.stream_index.get(name)
            if symbol is not None:
                self.server.subscribe(self, symbol, name)

    def _unsubscribe(self, names: Sequence[str]) -> None:
        for name in names:
            if name in self.streams:
                self.streams.remove(name)
            symbol = self.bserver.stream_index.get(name)
            if symbol is not None:
                self.server.unsubscribe(self, symbol)


class BinanceStreamServer(StreamServer):
    auto_ping = True  # the venue pings every 20 s and wants a pong within a minute

    def __init__(self, venue: str, specs: Sequence[SymbolSpec]) -> None:
        super().__init__(venue, specs)
        self.stream_index = {stream_name(s.name): i for i, s in enumerate(specs)}
        # Pre-formatted pieces: the hot path only fills in numbers.
        self._mids = [f',"s":"{s.name}","b":"' for s in specs]
        self._wrappers = [f'{{"stream":"{stream_name(s.name)}","data":' for s in specs]

    def listener(self, request: picows.WSUpgradeRequest) -> ListenerOrResponse:
        path, _, query = request.path.decode("latin-1").partition("?")
        if path == COMBINED_PATH:
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

    def publish(self, q: SimQuote) -> None:
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
        raw: bytes | None = None
        wrapped: bytes | None = None
        sent = 0
        for conn in subs:
            transport = conn.transport
            if conn.paused or transport is None or conn.closing():
                self.dropped += 1
                continue
            if conn.combined:
                if wrapped is None:
                    wrapped = (self._wrappers[s] + data + "}").encode()
                transport.send(picows.WSMsgType.TEXT, wrapped)
            else:
                if raw is None:
                    raw = data.encode()
                transport.send(picows.WSMsgType.TEXT, raw)
            sent += 1
        self.frames[s] += sent
