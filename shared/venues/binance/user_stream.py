"""Binance user data over the WebSocket API (``/ws-api/v3``): the signed subscribe request and its events.

Listen-key streams were retired; a client subscribes on the WS API with
``{"id","method":"userDataStream.subscribe.signature","params":{"apiKey","timestamp","signature"}}``,
where the signature is HMAC-SHA256 over the other params sorted by name (``apiKey=..&timestamp=..``).
The answer is ``{"id","status":200,"result":{"subscriptionId":N}}`` or ``{"id","status":4xx,"error":{..}}``;
events then arrive as ``{"subscriptionId":N,"event":{"e":"executionReport",...}}``. Pure code.
"""

from __future__ import annotations

from decimal import Decimal
from typing import NamedTuple

import msgspec
from msgspec import Struct

from shared.errors import ProtocolError
from shared.venues.binance import constants as c
from shared.venues.binance.orders import STATUSES
from shared.venues.common import hmac_sha256_hex, query_string
from shared.venues.spot_rest import dec


class ExecutionReport(NamedTuple):
    """One order event: NEW, then one TRADE per fill, then EXPIRED/CANCELED for an unfilled remainder."""

    symbol: str
    client_order_id: str
    order_id: str
    side: str  # BUY | SELL
    exec_type: str  # x: NEW | TRADE | CANCELED | EXPIRED | REJECTED | ...
    status: str  # X made canonical (EXPIRED_IN_MATCH → EXPIRED)
    last_qty: Decimal
    last_price: Decimal
    cum_qty: Decimal
    cum_quote: Decimal
    commission: Decimal
    commission_asset: str  # "" when the event carries none (N is null)
    trade_id: str  # "" when the event is not a trade (t is -1)
    event_ms: int


class SubscribeAnswer(NamedTuple):
    request_id: str
    subscription_id: int | None  # None: refused (see error_code / error_msg)
    http_status: int
    error_code: int
    error_msg: str


class StreamTerminated(NamedTuple):
    """The venue ended the subscription (``eventStreamTerminated``): subscribe again."""

    subscription_id: int


UserStreamMessage = ExecutionReport | SubscribeAnswer | StreamTerminated


def subscribe_request(api_key: str, api_secret: str, timestamp_ms: int, request_id: str) -> str:
    """The signed request; the timestamp goes as a JSON number, as in Binance's examples."""
    signed = sorted([("apiKey", api_key), ("timestamp", str(timestamp_ms))])  # by name, signature excluded
    signature = hmac_sha256_hex(api_secret, query_string(signed))
    params = {"apiKey": api_key, "timestamp": timestamp_ms, "signature": signature}
    return msgspec.json.encode({"id": request_id, "method": c.WS_API_SUBSCRIBE, "params": params}).decode()


class _Event(Struct):
    e: str
    E: int = 0
    s: str = ""
    c: str = ""
    S: str = ""
    x: str = ""
    X: str = ""
    i: int | str = 0
    l: str = "0"  # noqa: E741 - the venue's field name
    z: str = "0"
    L: str = "0"
    n: str | None = "0"
    N: str | None = None
    t: int | str = -1
    Z: str = "0"


class _Error(Struct):
    code: int = 0
    msg: str = ""


class _Frame(Struct):
    id: str | int | None = None
    status: int = 0
    result: dict[str, object] | None = None
    error: _Error | None = None
    subscriptionId: int | None = None
    event: _Event | None = None


_decoder = msgspec.json.Decoder(_Frame)


def parse_message(payload: bytes) -> UserStreamMessage | None:
    """An execution report, the subscribe answer, or the end of the subscription; None for events of other
    types (balance and account updates) and other answers. ProtocolError for anything malformed."""
    try:
        f = _decoder.decode(payload)
    except msgspec.DecodeError as exc:
        raise ProtocolError(f"binance user stream: malformed frame ({exc})") from None
    if f.event is not None:
        return _event(f.event, f.subscriptionId)
    if f.id is None:
        raise ProtocolError("binance user stream: a frame with neither event nor id")
    if f.error is not None:
        return SubscribeAnswer(str(f.id), None, f.status, f.error.code, f.error.msg)
    if f.status == 200 and f.result is not None and "subscriptionId" in f.result:
        sid = f.result["subscriptionId"]
        if not isinstance(sid, int) or isinstance(sid, bool):
            raise ProtocolError(f"binance user stream: subscriptionId {sid!r}")
        return SubscribeAnswer(str(f.id), sid, 200, 0, "")
    return None


def _event(e: _Event, subscription_id: int | None) -> ExecutionReport | StreamTerminated | None:
    if e.e == c.STREAM_TERMINATED_EVENT:
        return StreamTerminated(subscription_id if subscription_id is not None else -1)
    if e.e != c.EXECUTION_REPORT_EVENT:
        return None
    status = STATUSES.get(e.X)
    if status is None or not e.c:
        raise ProtocolError(f"binance executionReport: status {e.X!r}, client id {e.c!r}")
    try:
        return ExecutionReport(
            e.s, e.c, str(e.i), e.S, e.x, status, dec(e.l), dec(e.L), dec(e.z), dec(e.Z),
            dec(e.n or "0"), e.N or "", "" if str(e.t) == "-1" else str(e.t), e.E,
        )
    except ValueError as exc:
        raise ProtocolError(f"binance executionReport: {exc}") from None
