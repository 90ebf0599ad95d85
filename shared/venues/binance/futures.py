"""Binance USD-M futures ``<symbol>@markPrice@1s``: mark price and funding rate (JSON text).

The routed path (``/market/stream``) is part of the configured ``ws_url``: the venue moves such paths, so
draizer never hard-codes one.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec
from msgspec import Struct

from shared.config import FeedSettings
from shared.errors import ProtocolError
from shared.venues.binance.constants import MARK_PRICE_SUFFIX
from shared.venues.binance.market import (
    STREAMS_PER_CONNECTION,
    ControlFrame,
    control_event,
    event_time_ms,
    request_frame,
)
from shared.venues.common import (
    CHANNEL_FUNDING,
    INF,
    Channel,
    FundingUpdate,
    MarketEvent,
    NoSnapshots,
)


class MarkPrice(Struct):
    e: str
    E: int
    s: str
    p: str
    r: str
    T: int


class CombinedMarkPrice(Struct):
    stream: str
    data: MarkPrice


class BinanceFuturesFormat(NoSnapshots):
    keepalive_interval_s: float | None = None
    max_channels_per_connection = STREAMS_PER_CONNECTION
    subscribes_in_url = True

    def __init__(self) -> None:
        self._combined = msgspec.json.Decoder(CombinedMarkPrice)
        self._raw = msgspec.json.Decoder(MarkPrice)
        self._control = msgspec.json.Decoder(ControlFrame)

    def wire_symbol(self, base: str, quote: str) -> str:
        return base + quote

    def channels(self, symbols: Sequence[str], settings: FeedSettings) -> list[Channel]:
        return [Channel(s.lower() + MARK_PRICE_SUFFIX, s, CHANNEL_FUNDING) for s in symbols]

    def url(self, ws_url: str, channels: Sequence[Channel]) -> str:
        return ws_url + "?streams=" + "/".join(c.name for c in channels)

    def subscribe_frames(self, channels: Sequence[Channel]) -> list[str]:
        return [request_frame("SUBSCRIBE", channels)] if channels else []

    def unsubscribe_frames(self, channels: Sequence[Channel]) -> list[str]:
        return [request_frame("UNSUBSCRIBE", channels)] if channels else []

    def keepalive_frame(self) -> str | None:
        return None

    def event_time_ms(self, payload: bytes, binary: bool) -> int:
        return event_time_ms(payload, binary)

    def parse(self, payload: bytes, binary: bool) -> MarketEvent | None:
        if binary:
            raise ProtocolError("unexpected binary frame")
        try:
            return _funding(self._combined.decode(payload).data)
        except msgspec.DecodeError:
            pass
        try:
            return _funding(self._raw.decode(payload))
        except msgspec.DecodeError:
            pass
        return control_event(self._control, payload, "markPrice")


def _funding(m: MarkPrice) -> FundingUpdate:
    if m.e != "markPriceUpdate":
        raise ProtocolError(f"unexpected event {m.e!r} for {m.s}")
    try:
        rate, mark = float(m.r), float(m.p)
    except ValueError:
        raise ProtocolError(f"non-numeric rate or mark price for {m.s}") from None
    if not (-1.0 < rate < 1.0 and 0.0 <= mark < INF):
        raise ProtocolError(f"funding rate or mark price out of range for {m.s}: {m.r} {m.p}")
    return FundingUpdate(m.s, rate, m.T, mark, m.E)
