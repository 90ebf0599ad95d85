"""MEXC contract (futures) funding over the JSON WebSocket: ``push.funding.rate``.

Perpetual symbols are written ``BASE_QUOTE``. Captures show the rate as ``rate``; the docs name it
``fundingRate``: both are accepted. The venue wants a ``{"method":"ping"}`` at least every minute.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import msgspec
from msgspec import Struct

from shared.config import FeedSettings
from shared.errors import ProtocolError
from shared.venues.common import (
    CHANNEL_FUNDING,
    NOTICE_PONG,
    Channel,
    FundingUpdate,
    MarketEvent,
    NoSnapshots,
    Notice,
)
from shared.venues.mexc.constants import (
    CONTRACT_PING_FRAME,
    CONTRACT_PING_INTERVAL_S,
    CONTRACT_PUSH_FUNDING,
    CONTRACT_SUB_FUNDING,
    MAX_SUBSCRIPTIONS,
)


class _FundingData(Struct):
    symbol: str
    nextSettleTime: int
    rate: float | None = None
    fundingRate: float | None = None


class _Push(Struct):
    channel: str
    data: msgspec.Raw
    ts: int = 0


class MexcContractFormat(NoSnapshots):
    keepalive_interval_s: float | None = CONTRACT_PING_INTERVAL_S
    max_channels_per_connection = MAX_SUBSCRIPTIONS
    subscribes_in_url = False

    def __init__(self) -> None:
        self._push = msgspec.json.Decoder(_Push)
        self._funding = msgspec.json.Decoder(_FundingData)

    def wire_symbol(self, base: str, quote: str) -> str:
        return f"{base}_{quote}"

    def channels(self, symbols: Sequence[str], settings: FeedSettings) -> list[Channel]:
        return [Channel(f"funding.rate:{s}", s, CHANNEL_FUNDING) for s in symbols]

    def url(self, ws_url: str, channels: Sequence[Channel]) -> str:
        return ws_url

    def subscribe_frames(self, channels: Sequence[Channel]) -> list[str]:
        # One symbol per request: the venue's funding subscription takes no list.
        return [json.dumps({"method": CONTRACT_SUB_FUNDING, "param": {"symbol": c.symbol}}) for c in channels]

    def unsubscribe_frames(self, channels: Sequence[Channel]) -> list[str]:
        return [json.dumps({"method": "unsub.funding.rate", "param": {"symbol": c.symbol}}) for c in channels]

    def keepalive_frame(self) -> str | None:
        return CONTRACT_PING_FRAME

    def event_time_ms(self, payload: bytes, binary: bool) -> int:
        """The push's ``ts`` (ms), on data pushes and replies alike; 0 without one."""
        if binary:
            return 0
        try:
            return self._push.decode(payload).ts
        except msgspec.DecodeError:
            return 0

    def parse(self, payload: bytes, binary: bool) -> MarketEvent | None:
        if binary:
            raise ProtocolError("unexpected binary frame")
        try:
            push = self._push.decode(payload)
        except msgspec.DecodeError as exc:
            raise ProtocolError(f"not a contract push: {exc}") from None
        if push.channel == CONTRACT_PUSH_FUNDING:
            try:
                d = self._funding.decode(push.data)
            except msgspec.DecodeError as exc:
                raise ProtocolError(f"bad funding push: {exc}") from None
            rate = d.rate if d.rate is not None else d.fundingRate
            if rate is None or not -1.0 < rate < 1.0:
                raise ProtocolError(f"funding push for {d.symbol} without a valid rate")
            return FundingUpdate(d.symbol, rate, d.nextSettleTime, 0.0, push.ts)
        if push.channel == "pong":
            return Notice(NOTICE_PONG)
        if push.channel == "rs.error":
            raise ProtocolError(f"venue refused: {bytes(push.data)[:200].decode(errors='replace')}")
        if push.channel.startswith("rs."):
            return None
        raise ProtocolError(f"unexpected channel {push.channel!r}")
