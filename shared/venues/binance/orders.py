"""Binance spot orders: LIMIT IOC requests with a FULL response, the query request, and their parsing."""

from __future__ import annotations

import msgspec
from msgspec import Struct

from shared.venues.binance.auth import signed_request
from shared.venues.binance.constants import ORDER_PATH, REJECTED, STATUS_UNKNOWN_CODES
from shared.venues.common import HttpRequest, OrderResult, error_result, to_float, unknown


class Fill(Struct):
    price: str
    qty: str
    commission: str
    commissionAsset: str
    tradeId: int | str


class OrderResponse(Struct):
    """ACK, RESULT, FULL and the query response share these names; absent fields keep their defaults."""

    symbol: str
    orderId: int | str
    clientOrderId: str = ""
    status: str | None = None  # absent in an ACK response
    executedQty: str = "0"
    cummulativeQuoteQty: str = "0"
    fills: list[Fill] | None = None


class BinanceOrderFormat:
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
            ("type", "LIMIT"),
            ("timeInForce", "IOC"),
            ("quantity", qty),
            ("price", price),
            ("newClientOrderId", client_order_id),
            ("newOrderRespType", "FULL"),  # fills in the answer: no query needed
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
            return _result(r, base_asset)
        except (msgspec.DecodeError, ValueError, ZeroDivisionError) as exc:
            return unknown("", f"HTTP {http_status}: unreadable order response ({exc})")


def _result(r: OrderResponse, base_asset: str) -> OrderResult:
    order_id = str(r.orderId)
    if r.status is None:  # ACK: accepted, execution not reported
        return OrderResult(True, "NEW", order_id, r.clientOrderId, 0.0, 0.0, 0.0, [], 0, "", True)
    filled = to_float(r.executedQty)
    quote = to_float(r.cummulativeQuoteQty)
    avg = quote / filled if filled > 0 else 0.0
    fills: list[tuple[float, float, float, str]] = []
    fee_usd = 0.0
    if r.fills is not None:
        for f in r.fills:
            price = to_float(f.price)
            commission = to_float(f.commission)
            # Buys pay commission in the base asset: value it at this fill's price. Other assets
            # (BNB discounts) are taken at face value; the simulator never charges them.
            fee = commission * price if f.commissionAsset == base_asset else commission
            fee_usd += fee
            fills.append((price, to_float(f.qty), fee, str(f.tradeId)))
    elif filled > 0:
        # A query response reports only the totals: one aggregate fill, fee unknown (0).
        fills.append((avg, filled, 0.0, f"order:{order_id}"))
    ok = r.status != REJECTED
    return OrderResult(ok, r.status, order_id, r.clientOrderId, filled, avg, fee_usd, fills, 0, "", False)
