from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class PublicAggreDepthItem(_message.Message):
    __slots__ = ("price", "quantity")
    PRICE_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    price: str
    quantity: str
    def __init__(self, price: _Optional[str] = ..., quantity: _Optional[str] = ...) -> None: ...

class PublicAggreDepthsV3Api(_message.Message):
    __slots__ = ("asks", "bids", "eventType", "fromVersion", "toVersion")
    ASKS_FIELD_NUMBER: _ClassVar[int]
    BIDS_FIELD_NUMBER: _ClassVar[int]
    EVENTTYPE_FIELD_NUMBER: _ClassVar[int]
    FROMVERSION_FIELD_NUMBER: _ClassVar[int]
    TOVERSION_FIELD_NUMBER: _ClassVar[int]
    asks: _containers.RepeatedCompositeFieldContainer[PublicAggreDepthItem]
    bids: _containers.RepeatedCompositeFieldContainer[PublicAggreDepthItem]
    eventType: str
    fromVersion: str
    toVersion: str
    def __init__(self, asks: _Optional[_Iterable[_Union[PublicAggreDepthItem, _Mapping]]] = ..., bids: _Optional[_Iterable[_Union[PublicAggreDepthItem, _Mapping]]] = ..., eventType: _Optional[str] = ..., fromVersion: _Optional[str] = ..., toVersion: _Optional[str] = ...) -> None: ...

class PublicAggreBookTickerV3Api(_message.Message):
    __slots__ = ("bidPrice", "bidQuantity", "askPrice", "askQuantity", "version", "lastOrderCreateTime")
    BIDPRICE_FIELD_NUMBER: _ClassVar[int]
    BIDQUANTITY_FIELD_NUMBER: _ClassVar[int]
    ASKPRICE_FIELD_NUMBER: _ClassVar[int]
    ASKQUANTITY_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    LASTORDERCREATETIME_FIELD_NUMBER: _ClassVar[int]
    bidPrice: str
    bidQuantity: str
    askPrice: str
    askQuantity: str
    version: str
    lastOrderCreateTime: int
    def __init__(self, bidPrice: _Optional[str] = ..., bidQuantity: _Optional[str] = ..., askPrice: _Optional[str] = ..., askQuantity: _Optional[str] = ..., version: _Optional[str] = ..., lastOrderCreateTime: _Optional[int] = ...) -> None: ...

class PushDataV3ApiWrapper(_message.Message):
    __slots__ = ("channel", "publicAggreDepths", "publicAggreBookTicker", "symbol", "symbolId", "createTime", "sendTime")
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    PUBLICAGGREDEPTHS_FIELD_NUMBER: _ClassVar[int]
    PUBLICAGGREBOOKTICKER_FIELD_NUMBER: _ClassVar[int]
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    SYMBOLID_FIELD_NUMBER: _ClassVar[int]
    CREATETIME_FIELD_NUMBER: _ClassVar[int]
    SENDTIME_FIELD_NUMBER: _ClassVar[int]
    channel: str
    publicAggreDepths: PublicAggreDepthsV3Api
    publicAggreBookTicker: PublicAggreBookTickerV3Api
    symbol: str
    symbolId: str
    createTime: int
    sendTime: int
    def __init__(self, channel: _Optional[str] = ..., publicAggreDepths: _Optional[_Union[PublicAggreDepthsV3Api, _Mapping]] = ..., publicAggreBookTicker: _Optional[_Union[PublicAggreBookTickerV3Api, _Mapping]] = ..., symbol: _Optional[str] = ..., symbolId: _Optional[str] = ..., createTime: _Optional[int] = ..., sendTime: _Optional[int] = ...) -> None: ...
