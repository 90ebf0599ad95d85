"""MEXC spot v3 aggregated book ticker: JSON text for control, binary protobuf for data.

Data frames are ``PushDataV3ApiWrapper`` messages carrying ``publicAggreBookTicker`` (field 315). The
symbol is field 3 when present, else the last ``@`` part of the channel name.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import msgspec
from google.protobuf.message import DecodeError
from msgspec import Struct

from shared.errors import ProtocolError
from shared.venues.common import INF, TopOfBook
from shared.venues.mexc.constants import (
    BLOCKED_MARKER,
    BOOK_TICKER_CHANNEL,
    KEEPALIVE_INTERVAL_S,
    MAX_SUBSCRIPTIONS,
    NOT_SUBSCRIBED_MARKER,
    PING_FRAME,
)
from shared.venues.mexc.proto.push_data_pb2 import PushDataV3ApiWrapper


class _Reply(Struct):
    """Subscription acks and PONG: ``{"id":0,"code":0,"msg":"..."}``."""

    code: int
    msg: str
    id: int = 0


def channel(symbol: str) -> str:
    return BOOK_TICKER_CHANNEL + symbol.upper()


def subscription_frames(channels: Sequence[str]) -> list[str]:
    return [
        json.dumps({"method": "SUBSCRIPTION", "params": list(channels[i : i + MAX_SUBSCRIPTIONS])})
        for i in range(0, len(channels), MAX_SUBSCRIPTIONS)
    ]


class MexcMarketFormat:
    keepalive_interval_s: float | None = KEEPALIVE_INTERVAL_S  # MEXC drops links silent for a minute

    def __init__(self) -> None:
        self._reply = msgspec.json.Decoder(_Reply)
        self._wrapper = PushDataV3ApiWrapper()  # reused: ParseFromString clears it first

    def url(self, ws_url: str, symbols: Sequence[str]) -> str:
        return ws_url

    def subscribe_frames(self, symbols: Sequence[str]) -> list[str]:
        # MEXC serves at most 30 subscriptions per connection: more symbols need more connections.
        return subscription_frames([channel(s) for s in symbols])

    def keepalive_frame(self) -> str | None:
        return PING_FRAME

    def parse(self, payload: bytes, binary: bool) -> TopOfBook | None:
        if not binary:
            return self._parse_text(payload)
        w = self._wrapper
        try:
            w.ParseFromString(payload)
        except (DecodeError, ValueError, RuntimeError) as exc:
            raise ProtocolError(f"bad protobuf frame: {exc}") from None
        if w.WhichOneof("body") != "publicAggreBookTicker":
            raise ProtocolError(f"not a book ticker push (channel {w.channel!r})")
        t = w.publicAggreBookTicker
        symbol = w.symbol if w.HasField("symbol") else w.channel.rpartition("@")[2]
        if not symbol:
            raise ProtocolError("book ticker push without a symbol")
        try:
            bid, bid_qty = float(t.bidPrice), float(t.bidQuantity)
            ask, ask_qty = float(t.askPrice), float(t.askQuantity)
            seq = int(t.version) if t.version else 0
        except ValueError:
            raise ProtocolError(f"non-numeric field in {symbol} book ticker") from None
        if not (0.0 <= bid < INF and 0.0 <= bid_qty < INF and 0.0 <= ask < INF and 0.0 <= ask_qty < INF):
            raise ProtocolError(f"price or quantity out of range in {symbol} book ticker")
        return TopOfBook(symbol, bid, bid_qty, ask, ask_qty, seq)

    def _parse_text(self, payload: bytes) -> None:
        try:
            r = self._reply.decode(payload)
        except msgspec.DecodeError as exc:
            raise ProtocolError(f"unexpected text frame: {exc}") from None
        if r.code != 0 or BLOCKED_MARKER in r.msg or r.msg.startswith(NOT_SUBSCRIBED_MARKER):
            raise ProtocolError(f"venue refused: code {r.code}: {r.msg}")
        return None
