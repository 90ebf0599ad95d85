"""Binance spot market data over the combined stream: bookTicker, diff depth and partial depth (JSON text).

Book tickers, by far the most frequent frames, are decoded by one typed msgspec decoder (no dicts on the
hot path). Everything else goes down a second path that reads the stream name and picks the decoder.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec
from msgspec import Struct

from shared.config import FeedSettings
from shared.errors import ProtocolError
from shared.venues.binance.constants import (
    BOOK_TICKER_SUFFIX,
    DEPTH_PATH,
    DEPTH_SUFFIX,
    MAX_STREAMS_PER_CONNECTION,
    SERVER_SHUTDOWN_EVENT,
)
from shared.venues.common import (
    CHANNEL_DEPTH,
    CHANNEL_TICKER,
    INF,
    NOTICE_SHUTDOWN,
    Channel,
    DepthBody,
    DepthDiff,
    DepthSnapshot,
    MarketEvent,
    Notice,
    TopOfBook,
    depth_snapshot,
    levels,
    parse_depth_snapshot,
)

# Streams per connection: the venue allows 1024, but they all go in the URL; 200 keeps it a few KB long.
STREAMS_PER_CONNECTION = min(200, MAX_STREAMS_PER_CONNECTION)


class BookTicker(Struct):
    u: int
    s: str
    b: str
    B: str
    a: str
    A: str


class CombinedTicker(Struct):
    stream: str
    data: BookTicker


class Combined(Struct):
    stream: str
    data: msgspec.Raw


class DepthUpdate(Struct):
    e: str
    E: int
    s: str
    U: int
    u: int
    b: list[tuple[str, str]]
    a: list[tuple[str, str]]


class _Stamped(Struct):
    """Any event's time: ``E`` (bookTicker on spot has none; depthUpdate, markPriceUpdate, serverShutdown do)."""

    E: int = 0


class _StampedCombined(Struct):
    """A combined-stream frame's event time is in its ``data``; a raw frame has no ``stream``/``data``."""

    data: _Stamped | None = None
    E: int = 0


_stamped = msgspec.json.Decoder(_StampedCombined)


def event_time_ms(payload: bytes, binary: bool) -> int:
    """Binance's ``E`` (event time, ms) of a spot or futures frame, wrapped or raw; 0 without one."""
    if binary:
        return 0
    try:
        f = _stamped.decode(payload)
    except (msgspec.DecodeError, ValueError):  # not an object, or E not an integer: no event time to keep
        return 0
    return f.data.E if f.data is not None else f.E


class ControlFrame(Struct):
    """Everything else the server may send: replies ``{"result","id"}``, errors ``{"code","msg"}``,
    events ``{"e":"serverShutdown"}``."""

    result: object = None
    id: int | str | None = None
    code: int | None = None
    msg: str | None = None
    e: str | None = None


def stream_name(symbol: str) -> str:
    return symbol.lower() + BOOK_TICKER_SUFFIX


def depth_stream(symbol: str, settings: FeedSettings) -> str:
    speed = "@100ms" if settings.depth_interval_ms == 100 else ""
    levels_part = str(settings.depth_levels) if settings.depth == "partial" else ""
    return f"{symbol.lower()}{DEPTH_SUFFIX}{levels_part}{speed}"


def _symbol_of(stream: str) -> str:
    return stream.partition("@")[0].upper()


class BinanceMarketFormat:
    keepalive_interval_s: float | None = None  # the server pings; a client ping is only our liveness probe
    max_channels_per_connection = STREAMS_PER_CONNECTION
    snapshots = True
    subscribes_in_url = True

    def __init__(self) -> None:
        self._ticker = msgspec.json.Decoder(CombinedTicker)
        self._combined = msgspec.json.Decoder(Combined)
        self._raw_ticker = msgspec.json.Decoder(BookTicker)
        self._depth = msgspec.json.Decoder(DepthUpdate)
        self._partial = msgspec.json.Decoder(DepthBody)
        self._control = msgspec.json.Decoder(ControlFrame)

    def wire_symbol(self, base: str, quote: str) -> str:
        return base + quote

    def channels(self, symbols: Sequence[str], settings: FeedSettings) -> list[Channel]:
        out: list[Channel] = []
        for s in symbols:
            if settings.book_ticker:
                out.append(Channel(stream_name(s), s, CHANNEL_TICKER))
            if settings.depth != "none":
                out.append(Channel(depth_stream(s, settings), s, CHANNEL_DEPTH))
        return out

    def url(self, ws_url: str, channels: Sequence[Channel]) -> str:
        """``ws_url`` ends with ``/stream``: every stream goes in the URL, nothing to subscribe later."""
        return ws_url + "?streams=" + "/".join(c.name for c in channels)

    def subscribe_frames(self, channels: Sequence[Channel]) -> list[str]:
        return [request_frame("SUBSCRIBE", channels)] if channels else []

    def unsubscribe_frames(self, channels: Sequence[Channel]) -> list[str]:
        return [request_frame("UNSUBSCRIBE", channels)] if channels else []

    def keepalive_frame(self) -> str | None:
        return None

    def snapshot_path(self, symbol: str, limit: int) -> str:
        return f"{DEPTH_PATH}?symbol={symbol}&limit={limit}"

    def parse_snapshot(self, symbol: str, body: bytes) -> DepthSnapshot:
        return parse_depth_snapshot(symbol, body)

    def event_time_ms(self, payload: bytes, binary: bool) -> int:
        return event_time_ms(payload, binary)

    def parse(self, payload: bytes, binary: bool) -> MarketEvent | None:
        if binary:
            raise ProtocolError("unexpected binary frame")
        if b"@depth" in payload[:48]:  # the stream name leads a combined frame: skip the ticker attempt
            return self._parse_other(payload)
        try:
            t = self._ticker.decode(payload).data
        except msgspec.DecodeError:
            return self._parse_other(payload)
        return _top(t)

    def _parse_other(self, payload: bytes) -> MarketEvent | None:
        try:
            wrapped = self._combined.decode(payload)
        except msgspec.DecodeError:
            return self._parse_raw(payload)
        stream, data = wrapped.stream, wrapped.data
        kind = stream.partition("@")[2]
        try:
            if kind.startswith("depth"):
                if kind == "depth" or kind == "depth@100ms":
                    return _diff(self._depth.decode(data))
                return depth_snapshot(_symbol_of(stream), self._partial.decode(data))
            if kind == "bookTicker":
                return _top(self._raw_ticker.decode(data))
        except msgspec.DecodeError as exc:
            raise ProtocolError(f"bad {stream} payload: {exc}") from None
        raise ProtocolError(f"unexpected stream {stream!r}")

    def _parse_raw(self, payload: bytes) -> MarketEvent | None:
        # A raw-stream (``/ws/<stream>``) payload has no wrapper: recognize it by its fields.
        try:
            return _top(self._raw_ticker.decode(payload))
        except msgspec.DecodeError:
            pass
        try:
            return _diff(self._depth.decode(payload))
        except msgspec.DecodeError:
            pass
        return control_event(self._control, payload, "market-data")


def control_event(decoder: msgspec.json.Decoder[ControlFrame], payload: bytes, what: str) -> Notice | None:
    """A frame that is not data: an ack (None), ``serverShutdown`` (a notice) or a venue error (raised)."""
    try:
        c = decoder.decode(payload)
    except msgspec.DecodeError as exc:
        raise ProtocolError(f"not a {what} or control frame: {exc}") from None
    if c.code is not None:
        raise ProtocolError(f"venue error {c.code}: {c.msg}")
    if c.e == SERVER_SHUTDOWN_EVENT:
        return Notice(NOTICE_SHUTDOWN)
    if c.e is not None or c.id is not None:
        return None
    raise ProtocolError(f"not a {what} or control frame")


def request_frame(method: str, channels: Sequence[Channel]) -> str:
    return msgspec.json.encode({"method": method, "params": [c.name for c in channels], "id": 1}).decode()


def _diff(d: DepthUpdate) -> DepthDiff:
    if d.e != "depthUpdate" or d.u < d.U:
        raise ProtocolError(f"bad depth update for {d.s}: e={d.e!r} U={d.U} u={d.u}")
    return DepthDiff(d.s, d.U, d.u, levels(d.b, d.s), levels(d.a, d.s))


def _top(t: BookTicker) -> TopOfBook:
    try:
        bid, bid_qty, ask, ask_qty = float(t.b), float(t.B), float(t.a), float(t.A)
    except ValueError:
        raise ProtocolError(f"non-numeric price or quantity in {t.s} update {t.u}") from None
    # Chained comparisons reject NaN and infinities without a function call per number.
    if not (0.0 <= bid < INF and 0.0 <= bid_qty < INF and 0.0 <= ask < INF and 0.0 <= ask_qty < INF):
        raise ProtocolError(f"price or quantity out of range in {t.s} update {t.u}")
    return TopOfBook(t.s, bid, bid_qty, ask, ask_qty, t.u)
