"""Simulated MEXC spot v3 market-data WebSocket: JSON control, binary protobuf data.

``SUBSCRIPTION`` of ``spot@public.aggre.bookTicker.v3.api.pb@(100ms|10ms)@SYMBOL`` or
``spot@public.aggre.depth.v3.api.pb@(100ms|10ms)@SYMBOL`` is acked with ``{"id":0,"code":0,"msg":"<params>"}``
(at most 30 channels per connection, both kinds counted); ``PING`` gets ``PONG``; retired JSON channels
are answered "Blocked!". ``/ws?listenKey=..`` is the account's private stream (``user_mexc``: the orders and
deals channels besides the public ones). Every book update goes out as a bookTicker at once (the ticker's aggregation is
not simulated, so the feed sees the sim's full quote rate); depth is aggregated per interval into
``publicAggreDepths`` with absolute quantities and a fromVersion..toVersion range. Not enforced: the
30 s / 60 s idle disconnects.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING
from urllib.parse import parse_qs

import msgspec
import picows
from msgspec import Struct

from services.sim.depth import DepthBook, DepthDiff
from services.sim.market import SimQuote
from services.sim.units import SymbolSpec, units_text
from services.sim.ws_common import TICKER, Connection, ListenerOrResponse, StreamServer
from shared.venues.mexc.constants import DEPTH_CHANNEL_PREFIX, MAX_SUBSCRIPTIONS, PONG_MSG, WS_PATH
from shared.venues.mexc.proto.push_data_pb2 import PushDataV3ApiWrapper
from shared.venues.mexc.user_stream import CHANNELS

if TYPE_CHECKING:
    from services.sim.user_mexc import MexcUserStreams
    from services.sim.ws_api import UserStreams

CHANNEL_PREFIX = "spot@public.aggre.bookTicker.v3.api.pb@"
INTERVALS = ("100ms", "10ms")
DIFF_INTERVALS = (10, 100)  # ms
MALFORMED = b"\x0a\xff\xff\xff"  # field 1 with a length that runs past the end: no wrapper parses


def diff_topic(interval_ms: int) -> str:
    return f"diff@{interval_ms}"


def all_channels(specs: Sequence[SymbolSpec], listed: Sequence[int]) -> dict[str, tuple[int, str]]:
    """Every channel the sim serves, with its symbol and topic."""
    out: dict[str, tuple[int, str]] = {}
    for i in listed:
        spec = specs[i]
        for interval in INTERVALS:
            out[f"{CHANNEL_PREFIX}{interval}@{spec.name}"] = (i, TICKER)
            out[f"{DEPTH_CHANNEL_PREFIX}{interval}@{spec.name}"] = (i, diff_topic(int(interval.removesuffix("ms"))))
    return out


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
        self.channels: dict[str, tuple[int, str]] = {}  # subscribed channel -> (symbol index, topic)

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
                found = self.channels.pop(ch, None)
                if found is not None:
                    self.server.unsubscribe(self, *found)
            self.reply(_reply(",".join(req.params), req.id))
        else:
            self.reply(_reply(f"Invalid method {req.method}", req.id, code=1))

    def _subscribe(self, req: _Request) -> None:
        targets: list[tuple[int, str]] = []
        for ch in req.params:
            if ".api.pb@" not in ch:
                self.reply(_refusal(req.params, "Blocked! ", req.id))
                return
            found = self.mserver.channels.get(ch)
            if found is None:
                self.reply(_refusal(req.params, "Illegal channel or symbol", req.id))
                return
            targets.append(found)
        new = {ch for ch in req.params if ch not in self.channels}
        if len(self.channels) + len(new) > MAX_SUBSCRIPTIONS:
            reason = f"at most {MAX_SUBSCRIPTIONS} subscriptions per connection"
            self.reply(_refusal(req.params, reason, req.id))
            return
        for ch, (symbol, topic) in zip(req.params, targets, strict=True):
            # One channel per symbol and kind (ticker, depth) per connection: the newest interval wins.
            kind = topic == TICKER
            old = next((c for c, (s, t) in self.channels.items() if s == symbol and (t == TICKER) == kind), None)
            if old is not None and old != ch:
                self.server.unsubscribe(self, *self.channels.pop(old))
            self.channels[ch] = (symbol, topic)
            self.server.subscribe(self, symbol, ch, topic)
        self.reply(_reply(",".join(req.params), req.id))


class MexcPrivateConnection(MexcConnection):
    """A ``/ws?listenKey=..`` connection: the account's private channels as well as the public ones."""

    def __init__(self, server: MexcStreamServer, streams: MexcUserStreams, listen_key: str) -> None:
        super().__init__(server)
        self.streams = streams
        self.listen_key = listen_key

    def on_open(self) -> None:
        if not self.streams.add(self.listen_key, self):  # expired between the upgrade and now
            self.close(picows.WSCloseCode.POLICY_VIOLATION)

    def on_close(self) -> None:
        self.streams.remove(self.listen_key, self)

    def on_text(self, payload: bytes) -> None:
        try:
            req = _request_decoder.decode(payload)
        except msgspec.DecodeError:
            req = None
        method = req.method.upper() if req is not None else ""
        if req is None or method not in ("SUBSCRIPTION", "UNSUBSCRIPTION") or not set(req.params) & CHANNELS:
            super().on_text(payload)
            return
        if not set(req.params) <= CHANNELS:
            self.reply(_refusal(req.params, "Illegal channel or symbol", req.id))
            return
        chans = self.streams.channels.setdefault(self, set())
        if method == "SUBSCRIPTION":
            chans.update(req.params)
        else:
            chans.difference_update(req.params)
        self.reply(_reply(",".join(req.params), req.id))


class MexcStreamServer(StreamServer):
    diff_intervals = DIFF_INTERVALS
    partial_intervals: tuple[int, ...] = ()  # MEXC pushes no partial books
    user_streams: UserStreams | None = None  # and serves no WS API on this port
    private: MexcUserStreams | None = None  # listen keys and their private pushes (set by the venue)

    def __init__(
        self, venue: str, specs: Sequence[SymbolSpec], listed: Sequence[int], max_connection_age_s: float = 86_400.0
    ) -> None:
        super().__init__(venue, specs, max_connection_age_s)
        self.channels = all_channels(specs, listed)
        self._diff_subs = {ms: self.topic(diff_topic(ms)) for ms in DIFF_INTERVALS}

    def malformed_frame(self) -> tuple[picows.WSMsgType, bytes]:
        return picows.WSMsgType.BINARY, MALFORMED

    def has_diff_subscribers(self, symbol: int, interval_ms: int) -> bool:
        return bool(self._diff_subs[interval_ms][symbol])

    def publish_diff(self, symbol: int, interval_ms: int, diff: DepthDiff) -> None:
        subs = self._diff_subs[interval_ms][symbol]
        if not subs:
            return
        spec = self.specs[symbol]
        pd, qd = spec.price_decimals, spec.qty_decimals
        w = PushDataV3ApiWrapper()  # a fresh message per push: a reused upb message never gives memory back
        d = w.publicAggreDepths
        for p, q in diff.asks:
            d.asks.add(price=units_text(p, pd), quantity=units_text(q, qd))
        for p, q in diff.bids:
            d.bids.add(price=units_text(p, pd), quantity=units_text(q, qd))
        d.eventType = f"{DEPTH_CHANNEL_PREFIX}{interval_ms}ms"
        d.fromVersion = str(diff.first)
        d.toVersion = str(diff.last)
        w.channel = next(iter(subs.values()))  # every subscriber of this topic and symbol shares it
        w.symbol = spec.name
        w.sendTime = time.time_ns() // 1_000_000
        self.depth_frames += self.send(subs, picows.WSMsgType.BINARY, w.SerializeToString())

    def publish_partials(self, interval_ms: int, books: Sequence[DepthBook]) -> None:
        """Never called (no partial intervals): here so every spot server answers the same calls."""

    def listener(self, request: picows.WSUpgradeRequest) -> ListenerOrResponse:
        path, _, query = request.path.decode("latin-1").partition("?")
        if path != WS_PATH:
            return None
        key = parse_qs(query).get("listenKey", [""])[0]
        if not key or self.private is None:
            return MexcConnection(self)
        refusal = self.private.admit(key)
        if refusal is not None:
            body = _encode({"code": refusal.code, "msg": refusal.msg})
            return picows.WSUpgradeResponseWithListener(
                picows.WSUpgradeResponse.create_error_response(refusal.http_status, body), None)
        return MexcPrivateConnection(self, self.private, key)

    def keepalive(self, conn: Connection, now: float) -> None:
        super().keepalive(conn, now)
        if self.private is not None and isinstance(conn, MexcPrivateConnection):
            self.private.sweep()  # a key not kept alive ends, and its connections with it

    def publish(self, q: SimQuote) -> None:
        s = q.symbol
        subs = self.subscribers[s]
        if not subs:
            return
        spec = self.specs[s]
        pd, qd = spec.price_decimals, spec.qty_decimals
        w = PushDataV3ApiWrapper()  # a fresh message per push: a reused upb message never gives memory back
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
            if conn.blocked or conn.closing():
                if conn.lossy:
                    self.dropped += 1
                continue
            if ch != channel:  # the channel is part of the message: re-encode only when it changes
                w.channel = channel = ch
                data = w.SerializeToString()
            transport.send(picows.WSMsgType.BINARY, data)
            sent += 1
        self.frames[s] += sent
