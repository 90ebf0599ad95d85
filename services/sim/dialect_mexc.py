"""The simulated MEXC spot v3 REST dialect: its error codes, string order ids, ack-only new orders.

MEXC answers a new order with an acknowledgement only; execution is read back with ``GET /api/v3/order``
and commissions with ``GET /api/v3/myTrades`` (same field names as Binance, orderId a string). The account
answer carries ``makerCommission``/``takerCommission`` as integer basis points of the configured fees, the
same unit as Binance's (0.0005 -> 5), and no ``commissionRates``.
Where MEXC documents no code for a case (an off-step quantity, a reused client order id) the sim answers
with MEXC's generic parameter error 33333.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from services.sim import book
from services.sim.book import Reject, SimFill, SimOrder, StatusNames
from services.sim.dialect import ApiError, Balance, OrderKind, basis_points, plain
from services.sim.rate_limits import Refusal, SimRateLimits
from services.sim.units import SymbolSpec
from shared.config import Venue
from shared.venues.mexc import constants as c

ORDER_ID_PREFIX = "C02__"
_KINDS = {c.TYPE_IOC: book.LIMIT_IOC, c.TYPE_FOK: book.LIMIT_FOK, c.TYPE_MARKET: book.MARKET}
_TYPE_NAME = {v: k for k, v in _KINDS.items()}
_PARAM_ERROR = 33333


class MexcDialect:
    api_key_header = c.API_KEY_HEADER
    status_names = StatusNames(filled=c.FILLED, partial=c.PARTIALLY_CANCELED, none=c.CANCELED)
    commission_in_base_on_buy = False  # MEXC charges the quote asset on both sides
    depth_timestamp = True  # the depth snapshot adds "timestamp"
    binance_limits = False

    def check_signature_text(self, signature: str) -> bool:
        return signature == signature.lower()  # MEXC accepts lowercase hex only

    def price_decimals_limit(self, spec: SymbolSpec) -> int | None:
        return spec.price_decimals  # quotePrecision: more decimals are a precision error

    def order_kind(self, params: Mapping[str, str]) -> OrderKind | ApiError:
        order_type = params.get("type", "")
        kind = _KINDS.get(order_type)
        if kind is not None:
            return OrderKind(kind, "ACK")
        if order_type in (c.TYPE_LIMIT, "LIMIT_MAKER"):
            return ApiError(400, c.ERR_ORDER_TYPE, c.MSG_ORDER_TYPE)  # the sim never rests an order
        return self.bad_param("type")

    def rejection(self, reject: Reject) -> ApiError:
        reason, detail = reject
        if reason == book.BAD_SYMBOL:
            return ApiError(400, c.ERR_BAD_SYMBOL, c.MSG_BAD_SYMBOL)
        if reason == book.BAD_PARAM:
            return self.bad_param(detail)
        if reason == book.PRECISION:
            return ApiError(400, _PARAM_ERROR, f"{detail} scale is invalid")
        if reason == book.PRICE_FILTER:
            return ApiError(400, _PARAM_ERROR, f"price is not a multiple of {detail}")
        if reason == book.LOT_SIZE:
            return ApiError(400, _PARAM_ERROR, f"quantity is not a multiple of baseSizePrecision {detail}")
        if reason == book.NOTIONAL:
            return ApiError(400, c.ERR_MIN_VOLUME, f"The minimum transaction volume cannot be less than:{detail}")
        if reason == book.INSUFFICIENT:
            return ApiError(400, c.ERR_INSUFFICIENT, c.MSG_INSUFFICIENT)
        if reason == book.DUPLICATE:
            return ApiError(400, _PARAM_ERROR, c.MSG_DUPLICATE)
        return ApiError(400, _PARAM_ERROR, reason)

    def missing_api_key(self) -> ApiError:
        return ApiError(400, c.ERR_API_KEY_FORMAT, c.MSG_API_KEY_FORMAT)

    def unknown_api_key(self) -> ApiError:
        return ApiError(400, c.ERR_INVALID_ACCESS_KEY, c.MSG_INVALID_ACCESS_KEY)

    def bad_signature(self) -> ApiError:
        return ApiError(400, c.ERR_SIGNATURE, c.MSG_SIGNATURE)

    def bad_timestamp(self) -> ApiError:
        return ApiError(400, c.ERR_TIMESTAMP, c.MSG_TIMESTAMP)

    def bad_recv_window(self) -> ApiError:
        return ApiError(400, c.ERR_RECV_WINDOW, c.MSG_RECV_WINDOW)

    def missing_param(self, name: str) -> ApiError:
        return ApiError(400, 44444, f"param {name} cannot be null")

    def bad_param(self, name: str) -> ApiError:
        return ApiError(400, _PARAM_ERROR, f"param {name} is error")

    def missing_order_id(self) -> ApiError:
        return ApiError(400, 700004, "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null")

    def no_such_order(self) -> ApiError:
        return ApiError(400, c.ERR_NO_SUCH_ORDER, c.MSG_NO_SUCH_ORDER)

    def order_number(self, order_id: str) -> int | None:
        digits = order_id.removeprefix(ORDER_ID_PREFIX)
        return int(digits) if digits.isdigit() else None

    def new_order_response(self, order: SimOrder, response_type: str) -> dict[str, Any]:
        t = order.ticket
        return {
            "symbol": order.spec.name,
            "orderId": _order_id(order),
            "orderListId": -1,
            "price": "" if t.kind == book.MARKET else t.price_text,
            "origQty": t.qty_text,
            "type": _TYPE_NAME[t.kind],
            "side": t.side,
            "transactTime": order.time_ms,
        }

    def query_response(self, order: SimOrder) -> dict[str, Any]:
        t = order.ticket
        return {
            "symbol": order.spec.name,
            "orderId": _order_id(order),
            "orderListId": -1,
            "clientOrderId": t.client_order_id,
            "price": "" if t.kind == book.MARKET else t.price_text,
            "origQty": t.qty_text,
            "executedQty": plain(order.executed),
            "cummulativeQuoteQty": plain(order.cum_quote),
            "status": order.status,
            "timeInForce": "",
            "type": _TYPE_NAME[t.kind],
            "side": t.side,
            "stopPrice": "",
            "time": order.time_ms,
            "updateTime": order.update_ms,
            "isWorking": order.is_open,
            "origQuoteOrderQty": "0",
        }

    def exchange_info(self, venue: Venue, specs: Sequence[SymbolSpec], server_ms: int) -> dict[str, Any]:
        return {
            "timezone": "CST",
            "serverTime": server_ms,
            "rateLimits": [],
            "exchangeFilters": [],
            "symbols": [self._symbol(venue, s) for s in specs],
        }

    def _symbol(self, venue: Venue, s: SymbolSpec) -> dict[str, Any]:
        return {
            "symbol": s.name,
            "status": "1",
            "baseAsset": s.base,
            "baseAssetPrecision": s.qty_decimals,
            "quoteAsset": s.quote,
            "quotePrecision": s.price_decimals,
            "quoteAssetPrecision": s.price_decimals,
            "baseCommissionPrecision": s.qty_decimals,
            "quoteCommissionPrecision": s.price_decimals,
            "orderTypes": ["IMMEDIATE_OR_CANCEL", "FILL_OR_KILL", "MARKET"],
            "isSpotTradingAllowed": True,
            "isMarginTradingAllowed": False,
            "quoteAmountPrecision": plain(s.min_notional),
            "baseSizePrecision": s.step_text,
            "permissions": ["SPOT"],
            "filters": [],
            "maxQuoteAmount": "2000000",
            "makerCommission": repr(venue.maker_fee),
            "takerCommission": repr(venue.taker_fee),
            "quoteAmountPrecisionMarket": plain(s.min_notional),
            "maxQuoteAmountMarket": "100000",
            "fullName": s.base,
            "tradeSideType": 1,
        }

    def cancel_response(self, order: SimOrder) -> dict[str, Any]:
        out = self.query_response(order)
        out["origClientOrderId"] = order.ticket.client_order_id
        return out

    def unknown_cancel(self) -> ApiError:
        return ApiError(400, -2011, "Unknown order sent.")

    def status_unknown(self) -> ApiError:
        return ApiError(500, c.ERR_INTERNAL, "Internal error")

    def rate_refusal(self, refusal: Refusal, limits: SimRateLimits, server_ms: int) -> ApiError:
        return ApiError(429, 429, "Too many requests")

    def account(self, venue: Venue, balances: Sequence[Balance], server_ms: int) -> dict[str, Any]:
        return {
            "makerCommission": basis_points(venue.maker_fee),
            "takerCommission": basis_points(venue.taker_fee),
            "buyerCommission": 0,
            "sellerCommission": 0,
            "canTrade": True,
            "canWithdraw": True,
            "canDeposit": True,
            "updateTime": None,
            "accountType": "SPOT",
            "balances": [{"asset": b.asset, "free": plain(b.free), "locked": plain(b.locked)} for b in balances],
            "permissions": ["SPOT"],
        }

    def trade(self, order: SimOrder, fill: SimFill) -> dict[str, Any]:
        return {
            "symbol": order.spec.name,
            "id": fill.trade_id,
            "orderId": _order_id(order),
            "orderListId": -1,
            "price": plain(fill.price),
            "qty": plain(fill.qty),
            "quoteQty": plain(fill.price * fill.qty),
            "commission": plain(fill.commission),
            "commissionAsset": fill.commission_asset,
            "time": fill.time_ms,
            "isBuyer": order.ticket.side == "BUY",
            "isMaker": False,
            "isBestMatch": True,
            "isSelfTrade": False,
            "clientOrderId": order.ticket.client_order_id,
        }


def _order_id(order: SimOrder) -> str:
    return f"{ORDER_ID_PREFIX}{order.number}"
