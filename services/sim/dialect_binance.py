"""The simulated Binance spot REST dialect: codes from errors.md, FULL/RESULT/ACK answers, filters, account
(commission in basis points and as ``commissionRates``), trades, cancels and the rate-limit answers."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from services.sim import book
from services.sim.book import Reject, SimFill, SimOrder, StatusNames
from services.sim.dialect import ApiError, Balance, OrderKind, basis_points, fixed8
from services.sim.rate_limits import BANNED, ORDERS_1D, ORDERS_10S, Refusal, SimRateLimits
from services.sim.units import SymbolSpec
from shared.config import Venue
from shared.venues.binance import constants as c

ZERO8 = "0.00000000"
STP_MODE = "EXPIRE_MAKER"
ERR_TOO_MANY_REQUESTS = -1003
ERR_TOO_MANY_ORDERS = -1015
ERR_CANCEL_REJECTED = -2011
# The sim never rests an order, so only immediate kinds are accepted.
_LIMIT_TIF = {"IOC": book.LIMIT_IOC, "FOK": book.LIMIT_FOK}


class BinanceDialect:
    api_key_header = c.API_KEY_HEADER
    status_names = StatusNames(filled=c.FILLED, partial=c.EXPIRED, none=c.EXPIRED)
    commission_in_base_on_buy = True
    depth_timestamp = False  # the depth snapshot has no "timestamp"
    binance_limits = True

    def check_signature_text(self, signature: str) -> bool:
        return True  # hex digits of either case

    def price_decimals_limit(self, spec: SymbolSpec) -> int | None:
        return None  # extra decimals are a tick (PRICE_FILTER) problem up to 8, precision beyond

    def order_kind(self, params: Mapping[str, str]) -> OrderKind | ApiError:
        order_type = params.get("type", "")
        response_type = params.get("newOrderRespType", "FULL")
        if response_type not in ("ACK", "RESULT", "FULL"):
            return ApiError(400, c.ERR_ILLEGAL_CHARS, "Invalid newOrderRespType.")
        if order_type == "MARKET":
            return OrderKind(book.MARKET, response_type)
        if order_type != "LIMIT":
            return ApiError(400, c.ERR_INVALID_ORDER_TYPE, "Invalid orderType.")
        tif = params.get("timeInForce", "")
        if not tif:
            return self.missing_param("timeInForce")
        if tif == "GTC":
            return ApiError(400, c.ERR_NEW_ORDER_REJECTED, "The simulator does not rest orders: use IOC or FOK.")
        kind = _LIMIT_TIF.get(tif)
        if kind is None:
            return ApiError(400, c.ERR_INVALID_TIF, "Invalid timeInForce.")
        return OrderKind(kind, response_type)

    def rejection(self, reject: Reject) -> ApiError:
        reason, detail = reject
        if reason == book.BAD_SYMBOL:
            return ApiError(400, c.ERR_BAD_SYMBOL, c.MSG_BAD_SYMBOL)
        if reason == book.BAD_PARAM:
            if detail == "side":
                return ApiError(400, c.ERR_INVALID_SIDE, "Invalid side.")
            return self.bad_param(detail)
        if reason == book.PRECISION:
            return ApiError(400, c.ERR_BAD_PRECISION, f"Parameter '{detail}' has too much precision.")
        if reason == book.PRICE_FILTER:
            return ApiError(400, c.ERR_FILTER, c.MSG_PRICE_FILTER)
        if reason == book.LOT_SIZE:
            return ApiError(400, c.ERR_FILTER, c.MSG_LOT_SIZE)
        if reason == book.NOTIONAL:
            return ApiError(400, c.ERR_FILTER, c.MSG_NOTIONAL)
        if reason == book.INSUFFICIENT:
            return ApiError(400, c.ERR_NEW_ORDER_REJECTED, c.MSG_INSUFFICIENT)
        if reason == book.DUPLICATE:
            return ApiError(400, c.ERR_NEW_ORDER_REJECTED, c.MSG_DUPLICATE)
        return ApiError(400, c.ERR_NEW_ORDER_REJECTED, reason)

    def missing_api_key(self) -> ApiError:
        return ApiError(401, c.ERR_API_KEY_FORMAT, c.MSG_API_KEY_FORMAT)

    def unknown_api_key(self) -> ApiError:
        return ApiError(401, c.ERR_API_KEY_REJECTED, c.MSG_API_KEY_REJECTED)

    def bad_signature(self) -> ApiError:
        return ApiError(400, c.ERR_SIGNATURE, c.MSG_SIGNATURE)

    def bad_timestamp(self) -> ApiError:
        return ApiError(400, c.ERR_TIMESTAMP, c.MSG_TIMESTAMP)

    def bad_recv_window(self) -> ApiError:
        return ApiError(400, c.ERR_BAD_RECV_WINDOW, c.MSG_RECV_WINDOW)

    def missing_param(self, name: str) -> ApiError:
        msg = f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed."
        return ApiError(400, c.ERR_MANDATORY_PARAM, msg)

    def bad_param(self, name: str) -> ApiError:
        return ApiError(400, c.ERR_ILLEGAL_CHARS, f"Illegal characters found in parameter '{name}'.")

    def missing_order_id(self) -> ApiError:
        msg = "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!"
        return ApiError(400, c.ERR_MANDATORY_PARAM, msg)

    def no_such_order(self) -> ApiError:
        return ApiError(400, c.ERR_NO_SUCH_ORDER, c.MSG_NO_SUCH_ORDER)

    def order_number(self, order_id: str) -> int | None:
        return int(order_id) if order_id.isdigit() else None

    def new_order_response(self, order: SimOrder, response_type: str) -> dict[str, Any]:
        t = order.ticket
        out: dict[str, Any] = {
            "symbol": order.spec.name,
            "orderId": order.number,
            "orderListId": -1,
            "clientOrderId": t.client_order_id,
            "transactTime": order.time_ms,
        }
        if response_type == "ACK":
            return out
        out.update(self._result_fields(order))
        out["workingTime"] = order.time_ms
        out["selfTradePreventionMode"] = STP_MODE
        if response_type == "FULL":
            out["fills"] = [
                {
                    "price": fixed8(f.price),
                    "qty": fixed8(f.qty),
                    "commission": fixed8(f.commission),
                    "commissionAsset": f.commission_asset,
                    "tradeId": f.trade_id,
                }
                for f in order.fills
            ]
        return out

    def query_response(self, order: SimOrder) -> dict[str, Any]:
        out: dict[str, Any] = {
            "symbol": order.spec.name,
            "orderId": order.number,
            "orderListId": -1,
            "clientOrderId": order.ticket.client_order_id,
        }
        out.update(self._result_fields(order))
        out.update(
            stopPrice=ZERO8,
            icebergQty=ZERO8,
            time=order.time_ms,
            updateTime=order.update_ms,
            isWorking=True,
            workingTime=order.time_ms,
            selfTradePreventionMode=STP_MODE,
        )
        return out

    def _result_fields(self, order: SimOrder) -> dict[str, Any]:
        t = order.ticket
        market = t.kind == book.MARKET
        return {
            "price": ZERO8 if market else fixed8(Decimal(t.price_text)),
            "origQty": fixed8(Decimal(t.qty_text)),
            "executedQty": fixed8(order.executed),
            "origQuoteOrderQty": ZERO8,
            "cummulativeQuoteQty": fixed8(order.cum_quote),
            "status": order.status,
            "timeInForce": "GTC" if market else ("FOK" if t.kind == book.LIMIT_FOK else "IOC"),
            "type": "MARKET" if market else "LIMIT",
            "side": t.side,
        }

    def exchange_info(self, venue: Venue, specs: Sequence[SymbolSpec], server_ms: int) -> dict[str, Any]:
        return {
            "timezone": "UTC",
            "serverTime": server_ms,
            "rateLimits": [
                {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 6000},
                {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 50},
                {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": 160000},
            ],
            "exchangeFilters": [],
            "symbols": [self._symbol(s) for s in specs],
        }

    def _symbol(self, s: SymbolSpec) -> dict[str, Any]:
        tick, step = fixed8(Decimal(s.tick_text)), fixed8(Decimal(s.step_text))
        return {
            "symbol": s.name,
            "status": "TRADING",
            "baseAsset": s.base,
            "baseAssetPrecision": 8,
            "quoteAsset": s.quote,
            "quotePrecision": 8,
            "quoteAssetPrecision": 8,
            "baseCommissionPrecision": 8,
            "quoteCommissionPrecision": 8,
            "orderTypes": ["LIMIT", "MARKET"],
            "icebergAllowed": False,
            "ocoAllowed": False,
            "quoteOrderQtyMarketAllowed": False,
            "allowTrailingStop": False,
            "cancelReplaceAllowed": False,
            "isSpotTradingAllowed": True,
            "isMarginTradingAllowed": False,
            "filters": [
                {"filterType": "PRICE_FILTER", "minPrice": tick, "maxPrice": "1000000.00000000", "tickSize": tick},
                {"filterType": "LOT_SIZE", "minQty": step, "maxQty": "9000000.00000000", "stepSize": step},
                {
                    "filterType": "NOTIONAL",
                    "minNotional": fixed8(s.min_notional),
                    "applyMinToMarket": True,
                    "maxNotional": "9000000.00000000",
                    "applyMaxToMarket": False,
                    "avgPriceMins": 5,
                },
            ],
            "permissions": [],
            "permissionSets": [["SPOT"]],
            "defaultSelfTradePreventionMode": STP_MODE,
            "allowedSelfTradePreventionModes": ["NONE", "EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"],
        }

    def cancel_response(self, order: SimOrder) -> dict[str, Any]:
        out = self.query_response(order)
        out["origClientOrderId"] = order.ticket.client_order_id
        out["transactTime"] = order.update_ms
        return out

    def unknown_cancel(self) -> ApiError:
        return ApiError(400, ERR_CANCEL_REJECTED, "Unknown order sent.")

    def status_unknown(self) -> ApiError:
        msg = "Timeout waiting for response from backend server. Send status unknown; execution status unknown."
        return ApiError(503, c.ERR_TIMEOUT, msg)

    def rate_refusal(self, refusal: Refusal, limits: SimRateLimits, server_ms: int) -> ApiError:
        status, reason, retry_after = refusal
        if status == 418 or reason == BANNED:
            until = server_ms + retry_after * 1000
            msg = (f"Way too much request weight used; IP banned until {until}. "
                   "Please use WebSocket Streams for live updates to avoid bans.")
            return ApiError(418, ERR_TOO_MANY_REQUESTS, msg)
        if reason == ORDERS_10S:
            return ApiError(429, ERR_TOO_MANY_ORDERS,
                            f"Too many new orders; current limit is {limits.orders_per_10s} orders per TEN_SECONDS.")
        if reason == ORDERS_1D:
            return ApiError(429, ERR_TOO_MANY_ORDERS,
                            f"Too many new orders; current limit is {limits.orders_per_day} orders per DAY.")
        msg = (f"Too much request weight used; current limit is {limits.weight_per_minute} request weight per "
               "1 MINUTE. Please use WebSocket Streams for live updates to avoid polling the API.")
        return ApiError(429, ERR_TOO_MANY_REQUESTS, msg)

    def account(self, venue: Venue, balances: Sequence[Balance], server_ms: int) -> dict[str, Any]:
        return {
            "makerCommission": basis_points(venue.maker_fee),
            "takerCommission": basis_points(venue.taker_fee),
            "buyerCommission": 0,
            "sellerCommission": 0,
            "commissionRates": {
                "maker": fixed8(Decimal(repr(venue.maker_fee))),
                "taker": fixed8(Decimal(repr(venue.taker_fee))),
                "buyer": ZERO8,
                "seller": ZERO8,
            },
            "canTrade": True,
            "canWithdraw": True,
            "canDeposit": True,
            "brokered": False,
            "requireSelfTradePrevention": False,
            "preventSor": False,
            "updateTime": server_ms,
            "accountType": "SPOT",
            "balances": [{"asset": b.asset, "free": fixed8(b.free), "locked": fixed8(b.locked)} for b in balances],
            "permissions": ["SPOT"],
        }

    def trade(self, order: SimOrder, fill: SimFill) -> dict[str, Any]:
        return {
            "symbol": order.spec.name,
            "id": fill.trade_id,
            "orderId": order.number,
            "orderListId": -1,
            "price": fixed8(fill.price),
            "qty": fixed8(fill.qty),
            "quoteQty": fixed8(fill.price * fill.qty),
            "commission": fixed8(fill.commission),
            "commissionAsset": fill.commission_asset,
            "time": fill.time_ms,
            "isBuyer": order.ticket.side == "BUY",
            "isMaker": False,
            "isBestMatch": True,
        }
