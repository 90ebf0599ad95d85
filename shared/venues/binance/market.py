"""Binance spot ``<symbol>@bookTicker`` over the combined stream: JSON text frames.

Data frames are decoded by one typed msgspec decoder (no dicts on the hot path). Anything that is not a
book ticker goes down a slower path that recognizes the venue's control frames.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec
from msgspec import Struct

from shared.errors import ProtocolError
from shared.venues.binance.constants import STREAM_SUFFIX
from shared.venues.common import INF, TopOfBook


class BookTicker(Struct):
    u: int
    s: str
    b: str
    B: str
    a: str
    A: str


class CombinedEvent(Struct):
    stream: str
    data: BookTicker


class _Control(Struct):
    """Everything else the server may send: replies ``{"result","id"}``, errors ``{"code","msg"}``,
    events ``{"e":"serverShutdown"}``."""

    result: object = None
    id: int | str | None = None
    code: int | None = None
    msg: str | None = None
    e: str | None = None


def stream_name(symbol: str) -> str:
    return symbol.lower() + STREAM_SUFFIX


class BinanceMarketFormat:
    keepalive_interval_s: float | None = None  # the server pings; picows answers with a pong

    def __init__(self) -> None:
        self._combined = msgspec.json.Decoder(CombinedEvent)
        self._raw = msgspec.json.Decoder(BookTicker)
        self._control = msgspec.json.Decoder(_Control)

    def url(self, ws_url: str, symbols: Sequence[str]) -> str:
        """``ws_url`` ends with ``/stream``: every stream goes in the URL, nothing to subscribe later."""
        return ws_url + "?streams=" + "/".join(stream_name(s) for s in symbols)

    def subscribe_frames(self, symbols: Sequence[str]) -> list[str]:
        return []

    def keepalive_frame(self) -> str | None:
        return None

    def parse(self, payload: bytes, binary: bool) -> TopOfBook | None:
        if binary:
            raise ProtocolError("unexpected binary frame")
        try:
            t = self._combined.decode(payload).data
        except msgspec.DecodeError:
            return self._parse_other(payload)
        return _top(t)

    def _parse_other(self, payload: bytes) -> TopOfBook | None:
        # A raw-stream (``/ws/<stream>``) payload has no wrapper; accept it as the same event.
        try:
            return _top(self._raw.decode(payload))
        except msgspec.DecodeError:
            pass
        try:
            c = self._control.decode(payload)
        except msgspec.DecodeError as exc:
            raise ProtocolError(f"not a bookTicker or control frame: {exc}") from None
        if c.code is not None:
            raise ProtocolError(f"venue error {c.code}: {c.msg}")
        if c.e is not None or c.id is not None:
            return None
        raise ProtocolError("not a bookTicker or control frame")


def _top(t: BookTicker) -> TopOfBook:
    try:
        bid, bid_qty, ask, ask_qty = float(t.b), float(t.B), float(t.a), float(t.A)
    except ValueError:
        raise ProtocolError(f"non-numeric price or quantity in {t.s} update {t.u}") from None
    # Chained comparisons reject NaN and infinities without a function call per number.
    if not (0.0 <= bid < INF and 0.0 <= bid_qty < INF and 0.0 <= ask < INF and 0.0 <= ask_qty < INF):
        raise ProtocolError(f"price or quantity out of range in {t.s} update {t.u}")
    return TopOfBook(t.s, bid, bid_qty, ask, ask_qty, t.u)
