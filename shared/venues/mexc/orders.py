"""MEXC spot orders: IMMEDIATE_OR_CANCEL requests, the query request, and their parsing.

MEXC's new-order answer is an acknowledgement without execution data (``orderId`` is a string), so it
always asks for a query; the query answer carries status and cumulative quantities but no fills or fees.
"""

from __future__ import annotations

import msgspec
from msgspec import Struct

from shared.venues.common import HttpRequest, OrderResult, error_result, rejected, to_float, unknown
from shared.venues.mexc.auth import signed_request
from shared.venues.mexc.constants import ORDER_PATH, REJECTED, STATUS_UNKNOWN_CODES, TYPE_IOC


class OrderResponse(Struct):
    """The new-order ack and the query response share these names; absent fields keep their defaults."""

    orderId: str | int | None = None
    clientOrderId: str | None = None
    status: str | None = None  # absent in the new-order ack
    executedQty: str = "0"
    cummulativeQuoteQty: str = "0"
    # Some MEXC endpoints answer HTTP 200 with an error object.
    code: int | None = None
    msg: str | None = None


class MexcOrderFormat:
    def __init__(self) -> None:
        self._decoder = msgspec.json.Decoder(OrderResponse)

    def build_new_order(
        self,
        *,
        symbol: str,
        side: str,
        price: str,
        qty: str,
        client_order_id: str,
        api_key: str,
        api_secret: str,
        timestamp_ms: int,
        recv_window_ms: int,
    ) -> HttpRequest:
        params = (
            ("symbol", symbol),
            ("side", side),
            ("type", TYPE_IOC),  # MEXC has no timeInForce: IOC is its own order type
            ("quantity", qty),
            ("price", price),
            ("newClientOrderId", client_order_id),
            ("recvWindow", str(recv_window_ms)),
            ("timestamp", str(timestamp_ms)),
        )
        return signed_request("POST", ORDER_PATH, params, api_key, api_secret)

    def build_query_order(
        self,
        *,
        symbol: str,
        client_order_id: str,
        api_key: str,
        api_secret: str,
        timestamp_ms: int,
        recv_window_ms: int,
    ) -> HttpRequest:
        params = (
            ("symbol", symbol),
            ("origClientOrderId", client_order_id),
            ("recvWindow", str(recv_window_ms)),
            ("timestamp", str(timestamp_ms)),
        )
        return signed_request("GET", ORDER_PATH, params, api_key, api_secret)

    def parse_order_response(self, http_status: int, body: bytes, base_asset: str) -> OrderResult:
        if not 200 <= http_status < 300:
            return error_result(http_status, body, STATUS_UNKNOWN_CODES)
        try:
            r = self._decoder.decode(body)
            return _result(r)
        except (msgspec.DecodeError, ValueError) as exc:
            return unknown("", f"HTTP {http_status}: unreadable order response ({exc})")


def _result(r: OrderResponse) -> OrderResult:
    cid = r.clientOrderId or ""
    if r.orderId is None:
        if r.code is not None:
            return rejected(cid, r.code, r.msg or "")
        raise ValueError("no orderId")
    order_id = str(r.orderId)
    if r.status is None:  # the new-order ack: accepted, execution not reported
        return OrderResult(True, "NEW", order_id, cid, 0.0, 0.0, 0.0, [], 0, "", True)
    filled = to_float(r.executedQty)
    quote = to_float(r.cummulativeQuoteQty)
    avg = quote / filled if filled > 0 else 0.0
    # Totals only: one aggregate fill; MEXC reports the commission elsewhere (myTrades), so fee is 0 here.
    fills = [(avg, filled, 0.0, f"order:{order_id}")] if filled > 0 else []
    ok = r.status != REJECTED
    return OrderResult(ok, r.status, order_id, cid, filled, avg, 0.0, fills, 0, "", False)
