"""MEXC spot user data: the listen key's REST requests, the private WebSocket's URL and control frames, and the
protobuf pushes of the orders and deals channels. Pure code (``ListenKeyFormat``, shared/venues/user_data.py).

As MEXC documents it (spot v3, "Websocket User Data Streams"; the protobuf fields in MEXC's websocket-proto
repository, PrivateOrdersV3Api.proto, PrivateDealsV3Api.proto, PushDataV3ApiWrapper.proto):

* ``POST /api/v3/userDataStream`` (signed like every private endpoint; permission SPOT_ACCOUNT_R) answers
  ``{"listenKey": ".."}``. A key is valid 60 minutes after creation; ``PUT`` with ``listenKey`` extends it to 60
  minutes from that call ("recommended every 30 minutes"); ``DELETE`` with ``listenKey`` closes the stream and
  invalidates the key. Both answer ``{"listenKey": ".."}``. ``GET`` lists the valid keys.
* Limits: at most 60 valid keys per UID, at most 5 WebSocket connections per key, a connection lives at most
  24 hours (expect the cut and reconnect).
* The private stream is ``wss://wbs-api.mexc.com/ws?listenKey=<key>``; channels are subscribed as the public
  ones (``{"method":"SUBSCRIPTION","params":[...]}`` acked ``{"id":0,"code":0,"msg":"<channels>"}``) and kept
  alive the same way (``{"method":"PING"}`` -> ``msg "PONG"``; a link without a valid subscription is dropped
  after 30 s, one without data after 60 s).
* Pushes are ``PushDataV3ApiWrapper`` with ``privateOrders`` (oneof field 304) on
  ``spot@private.orders.v3.api.pb`` or ``privateDeals`` (306) on ``spot@private.deals.v3.api.pb``. Orders: 1 id,
  2 clientId, 12 lastDealQuantity, 13 cumulativeQuantity, 14 cumulativeAmount, 15 status (1 new, 2 filled,
  3 partially filled, 4 canceled, 5 partially canceled), 8 tradeType (1 buy, 2 sell). Deals: 1 price,
  2 quantity, 4 tradeType, 7 tradeId, 8 clientOrderId, 9 orderId, 10 feeAmount, 11 feeCurrency, 12 time.

MEXC documents no error code for an expired or unknown key (a refused ``PUT``, a refused connection): any
refusal means start again with ``POST``.
"""

from __future__ import annotations

import msgspec
from google.protobuf.message import DecodeError
from msgspec import Struct

from shared.errors import ProtocolError
from shared.venues.common import HttpRequest, OrderReport
from shared.venues.mexc.auth import signed_request
from shared.venues.mexc.constants import KEEPALIVE_INTERVAL_S, NOT_SUBSCRIBED_MARKER, PING_FRAME, PONG_MSG
from shared.venues.mexc.market import subscription_frames
from shared.venues.mexc.proto.push_data_pb2 import PrivateDealsV3Api, PrivateOrdersV3Api, PushDataV3ApiWrapper
from shared.venues.spot_rest import dec
from shared.venues.user_data import (
    CLOSE,
    CREATE,
    KEEPALIVE,
    Pong,
    Subscribed,
    SubscribeRefused,
    UserFrame,
    check_listen_key,
    listen_key_answer,
)

PRIVATE_WS_URL = "wss://wbs-api.mexc.com/ws"
LISTEN_KEY_PATH = "/api/v3/userDataStream"
LISTEN_KEY_VALIDITY_S = 3600  # "valid for 60 minutes after creation"; each PUT: 60 minutes from then
LISTEN_KEY_KEEPALIVE_S = 1800  # "recommended to send a request every 30 minutes"
CONNECTION_MAX_S = 86_400  # "A single connection is only valid for 24 hours"
MAX_LISTEN_KEYS_PER_UID = 60  # valid keys (invalid ones do not count)
MAX_CONNECTIONS_PER_KEY = 5
WEIGHT_LISTEN_KEY = 1
CHANNEL_ORDERS = "spot@private.orders.v3.api.pb"
CHANNEL_DEALS = "spot@private.deals.v3.api.pb"
CHANNELS = frozenset({CHANNEL_ORDERS, CHANNEL_DEALS})

# privateOrders.status and tradeType, as MEXC numbers them; PARTIALLY_CANCELED ends as CANCELED (orders.py).
ORDER_STATUSES = {1: "NEW", 2: "FILLED", 3: "PARTIALLY_FILLED", 4: "CANCELED", 5: "CANCELED"}
STATUS_NUMBERS = {"NEW": 1, "FILLED": 2, "PARTIALLY_FILLED": 3, "CANCELED": 4, "PARTIALLY_CANCELED": 5}
SIDES = {1: "BUY", 2: "SELL"}
SIDE_NUMBERS = {"BUY": 1, "SELL": 2}

_METHODS = {CREATE: "POST", KEEPALIVE: "PUT", CLOSE: "DELETE"}


class _Reply(Struct):
    code: int
    msg: str
    id: int = 0


_reply_decoder = msgspec.json.Decoder(_Reply)


def build_listen_key(action: str, listen_key: str, *, api_key: str, api_secret: str, timestamp_ms: int,
                     recv_window_ms: int) -> HttpRequest:
    """``create`` (POST), ``keepalive`` (PUT) or ``close`` (DELETE), signed in the query string."""
    method = _METHODS.get(action)
    if method is None:
        raise ValueError(f"unknown listen-key action {action!r}")
    params: list[tuple[str, str]] = []
    if action != CREATE:
        check_listen_key(listen_key)
        params.append(("listenKey", listen_key))
    params += [("recvWindow", str(recv_window_ms)), ("timestamp", str(timestamp_ms))]
    return signed_request(method, LISTEN_KEY_PATH, params, api_key, api_secret)


def parse_listen_key(http_status: int, body: bytes) -> str:
    """The key of a POST, PUT or DELETE answer; VenueError (code kept) when refused, ProtocolError if unreadable."""
    return listen_key_answer(http_status, body, "mexc")


def user_stream_url(listen_key: str, base: str = PRIVATE_WS_URL) -> str:
    """``<base>?listenKey=<key>``; ``base`` is the configured private URL (the simulator serves its own)."""
    check_listen_key(listen_key)
    return f"{base}?listenKey={listen_key}"


# ----- frames
def parse_frame(payload: bytes, binary: bool) -> UserFrame | None:
    """A push of the orders or deals channel (as an OrderReport), a subscription's answer, or a PONG; None for
    other pushes (the account channel) and other answers. ProtocolError for anything malformed."""
    if not binary:
        return _control(payload)
    try:
        w = PushDataV3ApiWrapper.FromString(payload)
    except (DecodeError, ValueError, RuntimeError) as exc:
        raise ProtocolError(f"mexc user stream: bad protobuf frame ({exc})") from None
    body = w.WhichOneof("body")
    symbol = w.symbol if w.HasField("symbol") else ""
    event_ms = w.sendTime if w.HasField("sendTime") else 0
    try:
        if body == "privateOrders":
            return _order(w.privateOrders, symbol, event_ms)
        if body == "privateDeals":
            return _deal(w.privateDeals, symbol, event_ms)
    except ValueError as exc:
        raise ProtocolError(f"mexc user stream: {w.channel}: {exc}") from None
    return None


def _control(payload: bytes) -> UserFrame | None:
    try:
        r = _reply_decoder.decode(payload)
    except msgspec.DecodeError as exc:
        raise ProtocolError(f"mexc user stream: malformed control frame ({exc})") from None
    if r.msg == PONG_MSG:
        return Pong()
    if NOT_SUBSCRIBED_MARKER in r.msg or r.code != 0:
        return SubscribeRefused(r.msg)
    named = frozenset(m.strip() for m in r.msg.split(","))
    return Subscribed(named & CHANNELS) if named & CHANNELS else None


def _order(o: PrivateOrdersV3Api, symbol: str, event_ms: int) -> OrderReport:
    status = ORDER_STATUSES.get(o.status)
    if status is None or not o.clientId:
        raise ValueError(f"privateOrders status {o.status}, clientId {o.clientId!r}")
    last = dec(o.lastDealQuantity) if o.HasField("lastDealQuantity") and o.lastDealQuantity else dec("0")
    return OrderReport(symbol, o.clientId, o.id, SIDES.get(o.tradeType, ""), status, dec(o.cumulativeQuantity or "0"),
                       dec(o.cumulativeAmount or "0"), last, dec("0"), "", dec("0"), "", event_ms)


def _deal(d: PrivateDealsV3Api, symbol: str, event_ms: int) -> OrderReport:
    if not d.tradeId or not (d.clientOrderId or d.orderId):
        raise ValueError(f"privateDeals tradeId {d.tradeId!r}, clientOrderId {d.clientOrderId!r}")
    zero = dec("0")
    return OrderReport(symbol, d.clientOrderId, d.orderId, SIDES.get(d.tradeType, ""), "", zero, zero,
                       dec(d.quantity), dec(d.price), d.tradeId, dec(d.feeAmount or "0"), d.feeCurrency,
                       d.time or event_ms)


class MexcUserFormat:
    """``ListenKeyFormat`` for MEXC spot."""

    keepalive_interval_s = float(LISTEN_KEY_KEEPALIVE_S)
    ping_interval_s = KEEPALIVE_INTERVAL_S  # as the market streams: MEXC drops a link silent for a minute
    channels = CHANNELS
    weight = WEIGHT_LISTEN_KEY

    def build_listen_key(self, action: str, listen_key: str, *, api_key: str, api_secret: str, timestamp_ms: int,
                         recv_window_ms: int) -> HttpRequest:
        return build_listen_key(action, listen_key, api_key=api_key, api_secret=api_secret,
                                timestamp_ms=timestamp_ms, recv_window_ms=recv_window_ms)

    def parse_listen_key(self, http_status: int, body: bytes) -> str:
        return parse_listen_key(http_status, body)

    def url(self, base: str, listen_key: str) -> str:
        return user_stream_url(listen_key, base)

    def subscribe_frames(self) -> list[str]:
        return subscription_frames(sorted(CHANNELS))

    def ping_frame(self) -> str:
        return PING_FRAME

    def parse(self, payload: bytes, binary: bool) -> UserFrame | None:
        return parse_frame(payload, binary)
