"""Simulated MEXC spot v3 market-data WebSocket: JSON control, binary protobuf data.

``SUBSCRIPTION`` of ``spot@public.aggre.bookTicker.v3.api.pb@(100ms|10ms)@SYMBOL`` is acked with
``{"id":0,"code":0,"msg":"<params>"}``; ``PING`` gets ``PONG``; retired JSON channels are answered
"Blocked!". Every book update is pushed at once: the channel's 100 ms aggregation is not simulated, so
the feed sees the sim's full quote rate. Not enforced: the 30 s / 60 s idle disconnects.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import msgspec
import picows
from msgspec import Struct

from services.sim.market import SimQuote
from services.sim.units import SymbolSpec, units_text
from services.sim.ws_common import Connection, ListenerOrResponse, StreamServer
from shared.venues.mexc.constants import MAX_SUBSCRIPTIONS, PONG_MSG, WS_PATH
from shared.venues.mexc.proto.push_data_pb2 import PushDataV3ApiWrapper

CHANNEL_PREFIX = "spot@public.aggre.bookTicker.v3.api.pb@"
INTERVALS = ("100ms", "10ms")


class _Request(Struct):
    method: str
    params: list[str] = []
    id: int = 0


_request_decoder = msgspec.json.Decoder(_Request)
_encode = msgspec.json.encode


def _reply(msg: str, request_id: int = 0, code: int = 0) -> bytes:
    return _encode({"id": request_id, "code": code, "msg": msg})


def _refusal(params: Sequence[str], reason: str, request_id: int) -> bytes:
    return _reply(f"Not Subscribed successfully! [{','.join(params)}].  Reason： {reason}", request_id)


class MexcConnection(Connection):
    def __init__(self, server: MexcStreamServer) -> None:
        super().__init__(server)
        self.mserver = server
        self.channels: dict[str, int] = {}  # subscribed channel -> symbol index

    def on_close(self) -> None:
        self.server.forget(self)

    def on_text(self, payload: bytes) -> None:
        try:
            req = _request_decoder.decode(payload)
        except msgspec.DecodeError:
            self.reply(_reply("Invalid request", code=1))  # the venue documents no answer: the sim's own
            return
        method = req.method.upper()
        if method == "PING":
            self.reply(_reply(PONG_MSG, req.id))
        elif method == "SUBSCRIPTION":
            self._subscribe(req)
        elif method == "UNSUBSCRIPTION":
            for ch in req.params:
                symbol = self.channels.pop(ch, None)
                if symbol is not None:
                    self.server.unsubscribe(self, symbol)
            self.reply(_reply(",".join(req.params), req.id))
        else:
            self.reply(_reply(f"Invalid method {req.method}", req.id, code=1))

    def _subscribe(self, req: _Request) -> None:
        symbols: list[int] = []
        for ch in req.params:
            if ".api.pb@" not in ch:
                self.reply(_refusal(req.params, "Blocked! ", req.id))
                return
            symbol = self.mserver.channel_symbol(ch)
            if symbol is None:
                self.reply(_refusal(req.params, "Illegal channel or symbol", req.id))
                return
            symbols.append(symbol)
        new = {ch for ch in req.params if ch not in self.channels}
        if len(self.channels) + len(new) > MAX_SUBSCRIPTIONS:
            reason = f"at most {MAX_SUBSCRIPTIONS} subscriptions per connection"
            self.reply(_refusal(req.params, reason, req.id))
            return
        for ch, symbol in zip(req.params, symbols, strict=True):
            old = next((c for c, s in self.channels.items() if s == symbol and c != ch), None)
            if old is not None:  # one channel per symbol per connection: the newest interval wins
                del self.channels[old]
            self.channels[ch] = symbol
            self.server.subscribe(self, symbol, ch)
        self.reply(_reply(",".join(req.params), req.id))


class MexcStreamServer(StreamServer):
    def __init__(self, venue: str, specs: Sequence[SymbolSpec]) -> None:
        super().__init__(venue, specs)
        self._symbol_index = {s.name: i for i, s in enumerate(specs)}
        self._wrapper = PushDataV3ApiWrapper()  # reused for every push: no per-message object

    def channel_symbol(self, channel: str) -> int | None:
        if not channel.startswith(CHANNEL_PREFIX):
            return None
        interval, _, symbol = channel[len(CHANNEL_PREFIX) :].partition("@")
        if interval not in INTERVALS:
            return None
        return self._symbol_index.get(symbol)

    def listener(self, request: picows.WSUpgradeRequest) -> ListenerOrResponse:
        path = request.path.decode("latin-1").partition("?")[0]
        return MexcConnection(self) if path == WS_PATH else None

    def publish(self, q: SimQuote) -> None:
        s = q.symbol
        subs = self.subscribers[s]
        if not subs:
            return
        spec = self.specs[s]
        pd, qd = spec.price_decimals, spec.qty_decimals
        w = self._wrapper
        t = w.publicAggreBookTicker
        t.bidPrice = units_text(q.bid, pd)
        t.bidQuantity = units_text(q.bid_qty, qd)
        t.askPrice = units_text(q.ask, pd)
        t.askQuantity = units_text(q.ask_qty, qd)
        t.version = str(q.seq)
        w.symbol = spec.name
        w.sendTime = time.time_ns() // 1_000_000
        data = b""
        channel = ""
        sent = 0
        for conn, ch in subs.items():
            transport = conn.transport
            if conn.paused or transport is None or conn.closing():
                self.dropped += 1
                continue
            if ch != channel:  # the channel is part of the message: re-encode only when it changes
                w.channel = channel = ch
                data = w.SerializeToString()
            transport.send(picows.WSMsgType.BINARY, data)
            sent += 1
        self.frames[s] += sent
