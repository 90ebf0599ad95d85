"""One encoder and one decoder per socket, created once and reused (no per-message codec allocation)."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

import msgspec

from shared.messages import Control, Event, MarketData, Opportunity, OrderIntent

T = TypeVar("T")


class Codec(Generic[T]):
    """MessagePack codec bound to one type (usually a tagged union)."""

    __slots__ = ("_decoder", "_encoder", "type")

    def __init__(self, type_: Any) -> None:
        self.type = type_
        self._encoder = msgspec.msgpack.Encoder()
        self._decoder: msgspec.msgpack.Decoder[T] = msgspec.msgpack.Decoder(type_)

    def encode(self, msg: T) -> bytes:
        return self._encoder.encode(msg)

    def decode(self, data: bytes | memoryview) -> T:
        return self._decoder.decode(data)


def market_data_codec() -> Codec[MarketData]:
    return Codec(MarketData)


def opportunity_codec() -> Codec[Opportunity]:
    return Codec(Opportunity)


def intent_codec() -> Codec[OrderIntent]:
    return Codec(OrderIntent)


def event_codec() -> Codec[Event]:
    return Codec(Event)


def control_codec() -> Codec[Control]:
    return Codec(Control)
