"""The simulated Binance USD-M order and account API (``/fapi``), on the perp venue's REST port.

The server side of ``shared/venues/binance/futures_orders.py`` (requests it builds are accepted, answers it
parses are produced) and of the listen-key part of ``futures_user.py``:

- ``POST /fapi/v1/order``: MARKET, or LIMIT with timeInForce IOC (the sim rests nothing: GTC/GTX/FOK are
  refused with -2010); ``reduceOnly``; ``newClientOrderId`` (the venue's rule; a reuse is -4116
  "ClientOrderId is duplicated."); ``newOrderRespType`` ACK (the default, as on the venue) or RESULT;
  one-way mode only (``positionSide`` BOTH). Refusals: -2019 margin insufficient, -2022 reduce-only with
  nothing to reduce (one larger than the position is cut to it: see ``perp_account``), -4164 notional below
  MIN_NOTIONAL unless reduce-only, -1111 precision, -4014 tick, -4023 step, -4003 quantity not positive.
- ``GET``/``DELETE /fapi/v1/order`` by origClientOrderId or orderId: unknown is -2013 for a query; a cancel of
  an unknown or final order (every order is final at once) is -2011 "Unknown order sent.".
- ``GET /fapi/v1/openOrders`` (always ``[]``), ``DELETE /fapi/v1/allOpenOrders`` (``{"code":200,..}``).
- ``GET /fapi/v3/positionRisk``, ``/fapi/v3/account``, ``/fapi/v1/symbolConfig``, ``/fapi/v1/income``
  (symbol, incomeType, startTime, endTime, limit: default 100, at most 1000; the last 7 days without times).
- ``GET /fapi/v1/userTrades`` (Account Trade List): symbol (required), orderId, startTime, endTime, fromId
  (not with a time: -1128), limit (default 500, at most 1000); without orderId, fromId or a time, the last 7
  days. One trade per filled order (the sim fills an order whole at one price), listed oldest first: the first
  ``limit`` from startTime or fromId, else the most recent ``limit``. The 7-day cap on endTime - startTime is not
  enforced.
- ``POST /fapi/v1/leverage`` (1..125, else -4028), ``POST /fapi/v1/marginType`` (-4046 unchanged, -4048 with a
  position open).
- ``GET /fapi/v1/exchangeInfo``, ``/fapi/v1/time``; ``POST``/``PUT``/``DELETE /fapi/v1/listenKey`` (API key
  header only; the events go out on the WebSocket port's ``/private`` path: ``ws_binance_futures_user``).
- Test hook ``GET /sim/perp_account`` (API key header): the account's orders, positions and funding.

Signed endpoints check as on spot: the key header, HMAC-SHA256 over query string + body, the timestamp window
(codes -2014/-2015/-1022/-1021). Usage is reported, not enforced: ``X-MBX-USED-WEIGHT-1M`` on every answer
(each endpoint's documented weight), ``X-MBX-ORDER-COUNT-1M``/``-10S`` on new-order answers. A ``rate_limit``
order fault (``inject_order_fault``, the only kind this API takes) answers every /fapi request 429 -1003 with
Retry-After for its duration, and 418 (banned) to a client that sends again before the Retry-After it was
given, as the spot sim's ``RateGate`` does.
"""

from __future__ import annotations

import hmac
import math
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

from services.sim import futures_binance_answers as answers
from services.sim import order_faults
from services.sim import perp_account as pa
from services.sim.dialect import ApiError
from services.sim.dialect_binance import BinanceDialect
from services.sim.faults import FaultError
from services.sim.order_faults import OrderFault
from services.sim.perp_account import OrderRequest, PerpBook, PerpOrder, Reject
from services.sim.rate_limits import Window
from services.sim.rest import check_timestamp, split_signature
from services.sim.rest_common import json_response, now_ms
from services.sim.units import parse_decimal, to_units
from services.sim.ws_binance_futures_user import FuturesUserStreams
from shared.config import Venue
from shared.venues.binance import constants as c
from shared.venues.binance import futures_orders as f
from shared.venues.binance.futures_user import LISTEN_KEY_PATH
from shared.venues.common import hmac_sha256_hex

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
INCOME_DEFAULT_LIMIT = 100
INCOME_DEFAULT_SPAN_MS = 7 * 86_400_000
TRADES_DEFAULT_LIMIT = 500
TRADES_DEFAULT_SPAN_MS = 7 * 86_400_000
ERR_PARAM_COMBINATION = -1128
ERR_PRICE_NOT_POSITIVE = -4001
ERR_QTY_NOT_POSITIVE = -4003
ERR_TICK = -4014
ERR_STEP = -4023
ERR_CLIENT_ID = -4015
ERR_DUPLICATE = -4116
ERR_LEVERAGE = -4028
ERR_MARGIN_TYPE_POSITION = -4048
ERR_POSITION_SIDE = -4061
ERR_PARAM_NOT_REQUIRED = -1106

_WEIGHTS = {
    ("POST", f.ORDER_PATH): f.WEIGHT_NEW_ORDER,
    ("GET", f.ORDER_PATH): f.WEIGHT_QUERY_ORDER,
    ("DELETE", f.ORDER_PATH): f.WEIGHT_CANCEL_ORDER,
    ("DELETE", f.CANCEL_ALL_PATH): f.WEIGHT_CANCEL_ALL,
    ("GET", f.POSITION_RISK_PATH): f.WEIGHT_POSITION_RISK,
    ("GET", f.ACCOUNT_PATH): f.WEIGHT_ACCOUNT,
    ("GET", f.SYMBOL_CONFIG_PATH): f.WEIGHT_SYMBOL_CONFIG,
    ("POST", f.LEVERAGE_PATH): f.WEIGHT_LEVERAGE,
    ("POST", f.MARGIN_TYPE_PATH): f.WEIGHT_MARGIN_TYPE,
    ("GET", f.INCOME_PATH): f.WEIGHT_INCOME,
    ("GET", f.USER_TRADES_PATH): f.WEIGHT_MY_TRADES,
    ("GET", f.EXCHANGE_INFO_PATH): f.WEIGHT_EXCHANGE_INFO,
    ("GET", f.TIME_PATH): f.WEIGHT_TIME,
}
_CLIENT_ID = re.compile(r"[.A-Z:/a-z0-9_-]{1,36}")

_REJECTIONS: dict[str, ApiError] = {
    pa.DUPLICATE: ApiError(400, ERR_DUPLICATE, "ClientOrderId is duplicated."),
    pa.INSUFFICIENT_MARGIN: ApiError(400, f.ERR_MARGIN, "Margin is insufficient."),
    pa.REDUCE_ONLY: ApiError(400, f.ERR_REDUCE_ONLY, "ReduceOnly Order is rejected."),
    pa.MARGIN_TYPE_SAME: ApiError(400, f.ERR_MARGIN_TYPE_UNCHANGED, "No need to change margin type."),
    pa.MARGIN_TYPE_POSITION: ApiError(400, ERR_MARGIN_TYPE_POSITION,
                                      "Margin type cannot be changed if there exists position."),
}


class Usage:
    """The venue's usage counters: request weight per minute, orders per minute and per 10 s."""

    def __init__(self) -> None:
        self.weight = Window(60, f.LIMIT_WEIGHT_PER_MINUTE)
        self.orders_1m = Window(60, f.LIMIT_ORDERS_PER_MINUTE)
        self.orders_10s = Window(10, f.LIMIT_ORDERS_PER_10S)

    def count(self, method: str, path: str, query: Mapping[str, str]) -> dict[str, str]:
        now = time.monotonic()
        weight = _WEIGHTS.get((method, path), 1)
        if method == "GET" and path == f.OPEN_ORDERS_PATH:
            weight = f.WEIGHT_OPEN_ORDERS_SYMBOL if query.get("symbol") else f.WEIGHT_OPEN_ORDERS_ALL
        self.weight.current(now)
        self.weight.count += weight
        headers = {"X-MBX-USED-WEIGHT-1M": str(self.weight.count)}
        if method == "POST" and path == f.ORDER_PATH:
            for window in (self.orders_1m, self.orders_10s):
                window.current(now)
                window.count += 1
            headers["X-MBX-ORDER-COUNT-1M"] = str(self.orders_1m.count)
            headers["X-MBX-ORDER-COUNT-10S"] = str(self.orders_10s.count)
        return headers


class Throttle:
    """A ``rate_limit`` fault: 429 until it ends, 418 to a client that does not wait as told (error-code page
    messages for -1003)."""

    def __init__(self) -> None:
        self.fault_until = 0.0  # monotonic seconds
        self.told_until = 0.0  # a 429 told the client to wait until then
        self.limited = 0
        self.banned = 0

    def fault(self, seconds: float) -> None:
        self.fault_until = max(self.fault_until, time.monotonic() + seconds)

    def refusal(self) -> tuple[ApiError, int] | None:
        """(the error, Retry-After seconds) for a request now, or None."""
        now = time.monotonic()
        if now < self.told_until:
            self.banned += 1
            wait = max(1, math.ceil(self.told_until - now))
            until = now_ms() + wait * 1000
            msg = (f"Way too many requests; IP banned until {until}. Please use the websocket for live updates to "
                   "avoid bans.")
            return ApiError(418, f.ERR_TOO_MANY_REQUESTS, msg), wait
        if now < self.fault_until:
            self.limited += 1
            self.told_until = self.fault_until
            msg = (f"Too many requests; current limit is {f.LIMIT_WEIGHT_PER_MINUTE} requests per minute. Please use "
                   "the websocket for live updates to avoid polling the API.")
            return ApiError(429, f.ERR_TOO_MANY_REQUESTS, msg), max(1, math.ceil(self.fault_until - now))
        return None


class BinanceFuturesApi:
    def __init__(self, venue: Venue, book: PerpBook, credentials: Mapping[str, str], stream: Any) -> None:
        """``stream``: the venue's WebSocket server (``BinanceFuturesPrivateStreamServer``), which serves the
        account events of the listen keys this API hands out."""
        self.venue = venue
        self.book = book
        self.secrets = dict(credentials)
        for key in self.secrets:
            book.open_account(key)
        self.d = BinanceDialect()  # spot and USD-M share the authentication codes and messages
        self.usage = Usage()
        self.throttle = Throttle()
        self.user_streams = FuturesUserStreams(book)
        stream.user_streams = self.user_streams
        self.requests = 0

    def routes(self, app: web.Application) -> None:
        r = app.router
        r.add_post(f.ORDER_PATH, self._new_order)
        r.add_get(f.ORDER_PATH, self._query_order)
        r.add_delete(f.ORDER_PATH, self._cancel_order)
        r.add_get(f.OPEN_ORDERS_PATH, self._open_orders)
        r.add_delete(f.CANCEL_ALL_PATH, self._cancel_all)
        r.add_get(f.POSITION_RISK_PATH, self._position_risk)
        r.add_get(f.ACCOUNT_PATH, self._account)
        r.add_get(f.SYMBOL_CONFIG_PATH, self._symbol_config)
        r.add_post(f.LEVERAGE_PATH, self._leverage)
        r.add_post(f.MARGIN_TYPE_PATH, self._margin_type)
        r.add_get(f.INCOME_PATH, self._income)
        r.add_get(f.USER_TRADES_PATH, self._user_trades)
        r.add_get(f.EXCHANGE_INFO_PATH, self._exchange_info)
        r.add_get(f.TIME_PATH, self._time)
        r.add_post(LISTEN_KEY_PATH, self._listen_key)
        r.add_put(LISTEN_KEY_PATH, self._listen_key)
        r.add_delete(LISTEN_KEY_PATH, self._listen_key)
        r.add_get("/sim/perp_account", self._sim_account)

    def middlewares(self) -> list[Any]:
        @web.middleware
        async def usage(request: web.Request, handler: Handler) -> web.StreamResponse:
            if not request.path.startswith("/fapi/"):
                return await handler(request)
            headers = self.usage.count(request.method, request.path, request.query)
            refused = self.throttle.refusal()
            if refused is None:
                resp = await handler(request)
            else:
                self.requests += 1
                error, wait = refused
                resp = self.error(error)
                resp.headers["Retry-After"] = str(wait)
            resp.headers.update(headers)
            return resp

        return [usage]

    # ----- answers
    @staticmethod
    def error(e: ApiError) -> web.Response:
        return json_response({"code": e.code, "msg": e.msg}, e.http_status)

    def _answer(self, body: object) -> web.Response:
        return self.error(body) if isinstance(body, ApiError) else json_response(body)

    # ----- authentication
    async def _auth(self, request: web.Request) -> tuple[str, dict[str, str]] | ApiError:
        """The API key and the parameters once key, signature and timestamp are good."""
        self.requests += 1
        d = self.d
        api_key = request.headers.get(c.API_KEY_HEADER, "")
        if not api_key:
            return d.missing_api_key()
        secret = self.secrets.get(api_key)
        if secret is None:
            return d.unknown_api_key()
        query, sig_q = split_signature(request.rel_url.raw_query_string)
        body, sig_b = split_signature((await request.read()).decode("latin-1"))
        signature = sig_q if sig_q is not None else sig_b
        if signature is None:
            return d.missing_param("signature")
        if not hmac.compare_digest(signature.lower(), hmac_sha256_hex(secret, query + body)):
            return d.bad_signature()
        params = dict(parse_qsl(body, keep_blank_values=True))
        params.update(parse_qsl(query, keep_blank_values=True))
        problem = check_timestamp(d, params)
        return problem if problem is not None else (api_key, params)

    def _symbol(self, params: Mapping[str, str], *, required: bool = True) -> int | ApiError | None:
        name = params.get("symbol", "")
        if not name:
            return self.d.missing_param("symbol") if required else None
        s = self.book.index.get(name)
        return ApiError(400, f.ERR_BAD_SYMBOL, c.MSG_BAD_SYMBOL) if s is None else s

    # ----- orders
    async def _new_order(self, request: web.Request) -> web.Response:
        auth = await self._auth(request)
        if isinstance(auth, ApiError):
            return self.error(auth)
        api_key, params = auth
        parsed = self._order_request(params)
        if isinstance(parsed, ApiError):
            return self.error(parsed)
        req, ack = parsed
        order = self.book.place(api_key, req, now_ms())
        if isinstance(order, Reject):
            if order.reason == pa.NOTIONAL:
                msg = f"Order's notional must be no smaller than {order.detail} (unless you choose reduce only)."
                return self.error(ApiError(400, f.ERR_MIN_NOTIONAL, msg))
            return self.error(_REJECTIONS.get(order.reason, ApiError(400, c.ERR_NEW_ORDER_REJECTED, order.reason)))
        return json_response(answers.order_body(order, ack=ack))

    def _order_request(self, p: Mapping[str, str]) -> tuple[OrderRequest, bool] | ApiError:
        """The parameters as a book request, and whether the answer is an ACK; or the venue's refusal."""
        d = self.d
        for name in ("symbol", "side", "type", "quantity"):
            if not p.get(name):
                return d.missing_param(name)
        s = self._symbol(p)
        if isinstance(s, ApiError) or s is None:
            return s or d.missing_param("symbol")
        spec = self.book.specs[s]
        side, order_type = p["side"], p["type"]
        if side not in f.SIDES:
            return ApiError(400, c.ERR_INVALID_SIDE, "Invalid side.")
        if p.get("positionSide", pa.BOTH) != pa.BOTH:
            return ApiError(400, ERR_POSITION_SIDE, "Order's position side does not match user's setting.")
        response_type = p.get("newOrderRespType", "ACK")
        if response_type not in ("ACK", "RESULT"):
            return d.bad_param("newOrderRespType")
        reduce_text = p.get("reduceOnly", "false")
        if reduce_text not in ("true", "false"):
            return d.bad_param("reduceOnly")
        cid = p.get("newClientOrderId") or f"sim{time.time_ns():x}"
        if not _CLIENT_ID.fullmatch(cid):
            return ApiError(400, ERR_CLIENT_ID, "Client order id is not valid.")
        price: Decimal | None = None
        if order_type == "MARKET":
            kind = pa.MARKET
            if p.get("price"):
                return ApiError(400, ERR_PARAM_NOT_REQUIRED, "Parameter 'price' sent when not required.")
        elif order_type == "LIMIT":
            tif = p.get("timeInForce", "")
            if not tif:
                return d.missing_param("timeInForce")
            if tif != "IOC":
                return ApiError(400, c.ERR_NEW_ORDER_REJECTED, "The simulator does not rest orders: use IOC.")
            if not p.get("price"):
                return d.missing_param("price")
            price_or_error = _units(p["price"], spec.price_decimals, Decimal(spec.tick_text), ERR_TICK,
                                    "Price not increased by tick size.")
            if isinstance(price_or_error, ApiError):
                return price_or_error
            kind, price = pa.LIMIT_IOC, price_or_error
        else:
            return ApiError(400, c.ERR_INVALID_ORDER_TYPE, "Invalid orderType.")
        qty = _units(p["quantity"], spec.qty_decimals, Decimal(spec.step_text), ERR_STEP,
                     "Quantity not increased by step size.")
        if isinstance(qty, ApiError):
            return qty
        req = OrderRequest(s, side, pa.BOTH, kind, qty, price, cid, reduce_text == "true",
                           min_notional=spec.min_notional)
        return req, response_type == "ACK"

    def _find(self, api_key: str, p: Mapping[str, str]) -> PerpOrder | ApiError:
        s = self._symbol(p)
        if isinstance(s, ApiError) or s is None:
            return s or self.d.missing_param("symbol")
        cid, number = p.get("origClientOrderId", ""), p.get("orderId", "")
        if cid:
            order = self.book.find(api_key, cid)
        elif number:
            order = self.book.find_by_number(api_key, int(number)) if number.isdigit() else None
        else:
            return ApiError(400, c.ERR_MANDATORY_PARAM, "Either orderId or origClientOrderId must be sent.")
        if order is None or order.request.symbol != s:
            return ApiError(400, f.ERR_NO_SUCH_ORDER, "Order does not exist.")
        return order

    async def _query_order(self, request: web.Request) -> web.Response:
        auth = await self._auth(request)
        order = auth if isinstance(auth, ApiError) else self._find(*auth)
        return self._answer(order if isinstance(order, ApiError) else answers.order_body(order, query=True))

    async def _cancel_order(self, request: web.Request) -> web.Response:
        auth = await self._auth(request)
        if isinstance(auth, ApiError):
            return self.error(auth)
        order = self._find(*auth)
        if isinstance(order, ApiError) and order.code != f.ERR_NO_SUCH_ORDER:
            return self.error(order)
        # Every order is IOC or MARKET, final when its answer left: nothing is open to cancel.
        return self.error(ApiError(400, f.ERR_CANCEL_REJECTED, "Unknown order sent."))

    async def _open_orders(self, request: web.Request) -> web.Response:
        auth = await self._auth(request)
        if isinstance(auth, ApiError):
            return self.error(auth)
        s = self._symbol(auth[1], required=False)
        if isinstance(s, ApiError):
            return self.error(s)
        return json_response([answers.order_body(o, query=True) for o in self.book.open_orders(auth[0], s)])

    async def _cancel_all(self, request: web.Request) -> web.Response:
        auth = await self._auth(request)
        s = auth if isinstance(auth, ApiError) else self._symbol(auth[1])
        if isinstance(s, ApiError):
            return self.error(s)
        return json_response({"code": 200, "msg": "The operation of cancel all open order is done."})

    # ----- positions and account
    async def _position_risk(self, request: web.Request) -> web.Response:
        auth = await self._auth(request)
        if isinstance(auth, ApiError):
            return self.error(auth)
        api_key, params = auth
        s = self._symbol(params, required=False)
        if isinstance(s, ApiError):
            return self.error(s)
        return json_response([answers.position_body(self.book, api_key, p) for p in self.book.positions(api_key, s)])

    async def _account(self, request: web.Request) -> web.Response:
        auth = await self._auth(request)
        if isinstance(auth, ApiError):
            return self.error(auth)
        return json_response(answers.account_body(self.book, auth[0], now_ms()))

    async def _symbol_config(self, request: web.Request) -> web.Response:
        auth = await self._auth(request)
        if isinstance(auth, ApiError):
            return self.error(auth)
        api_key, params = auth
        s = self._symbol(params, required=False)
        if isinstance(s, ApiError):
            return self.error(s)
        symbols = sorted(self.book.index.values()) if s is None else [s]
        return json_response(answers.symbol_config_body(self.book, api_key, symbols))

    async def _leverage(self, request: web.Request) -> web.Response:
        auth = await self._auth(request)
        if isinstance(auth, ApiError):
            return self.error(auth)
        api_key, params = auth
        s = self._symbol(params)
        if isinstance(s, ApiError) or s is None:
            return self.error(s or self.d.missing_param("symbol"))
        text = params.get("leverage", "")
        if not text:
            return self.error(self.d.missing_param("leverage"))
        if not text.isdigit() or not 1 <= int(text) <= pa.MAX_LEVERAGE:
            return self.error(ApiError(400, ERR_LEVERAGE, f"Leverage {text} is not valid"))
        leverage = int(text)
        self.book.set_leverage(api_key, s, leverage)
        return json_response({"leverage": leverage, "maxNotionalValue": answers.max_notional(leverage),
                              "symbol": self.book.specs[s].name})

    async def _margin_type(self, request: web.Request) -> web.Response:
        auth = await self._auth(request)
        if isinstance(auth, ApiError):
            return self.error(auth)
        api_key, params = auth
        s = self._symbol(params)
        if isinstance(s, ApiError) or s is None:
            return self.error(s or self.d.missing_param("symbol"))
        word = params.get("marginType", "")
        if not word:
            return self.error(self.d.missing_param("marginType"))
        if word not in (f.MARGIN_ISOLATED, f.MARGIN_CROSSED):
            return self.error(self.d.bad_param("marginType"))
        refused = self.book.set_margin_type(api_key, s, word == f.MARGIN_ISOLATED)
        if refused is not None:
            return self.error(_REJECTIONS[refused.reason])
        return json_response({"code": 200, "msg": "success"})

    async def _income(self, request: web.Request) -> web.Response:
        auth = await self._auth(request)
        if isinstance(auth, ApiError):
            return self.error(auth)
        api_key, p = auth
        s = self._symbol(p, required=False)
        if isinstance(s, ApiError):
            return self.error(s)
        for name in ("startTime", "endTime", "limit"):
            if p.get(name) and not p[name].isdigit():
                return self.error(self.d.bad_param(name))
        now = now_ms()
        start = int(p["startTime"]) if p.get("startTime") else None
        end = int(p["endTime"]) if p.get("endTime") else None
        if start is None and end is None:
            start = now - INCOME_DEFAULT_SPAN_MS
        limit = max(1, min(int(p.get("limit") or INCOME_DEFAULT_LIMIT), f.INCOME_MAX_LIMIT))
        kind = p.get("incomeType", "")
        rows = [i for i in self.book.account(api_key).income
                if (s is None or i.symbol == s) and (not kind or i.kind == kind)
                and (start is None or i.time_ms >= start) and (end is None or i.time_ms <= end)]
        rows = rows[:limit] if start is not None else rows[-limit:]
        return json_response([answers.income_body(self.book, i) for i in rows])

    async def _user_trades(self, request: web.Request) -> web.Response:
        auth = await self._auth(request)
        if isinstance(auth, ApiError):
            return self.error(auth)
        api_key, p = auth
        s = self._symbol(p)
        if isinstance(s, ApiError) or s is None:
            return self.error(s or self.d.missing_param("symbol"))
        for name in ("orderId", "startTime", "endTime", "fromId", "limit"):
            if p.get(name) and not p[name].isdigit():
                return self.error(self.d.bad_param(name))
        start = int(p["startTime"]) if p.get("startTime") else None
        end = int(p["endTime"]) if p.get("endTime") else None
        from_id = int(p["fromId"]) if p.get("fromId") else None
        number = int(p["orderId"]) if p.get("orderId") else None
        if from_id is not None and (start is not None or end is not None):
            return self.error(ApiError(400, ERR_PARAM_COMBINATION, "Combination of optional parameters invalid."))
        oldest_first = start is not None or from_id is not None  # else the most recent ("Default gets most recent")
        if start is None and end is None and from_id is None and number is None:
            start = now_ms() - TRADES_DEFAULT_SPAN_MS
        limit = max(1, min(int(p.get("limit") or TRADES_DEFAULT_LIMIT), f.USER_TRADES_MAX_LIMIT))
        rows = [(o, fill) for o in self.book.every_order(api_key)
                if o.request.symbol == s and (number is None or o.number == number) for fill in o.fills
                if (start is None or fill.time_ms >= start) and (end is None or fill.time_ms <= end)
                and (from_id is None or fill.trade_id >= from_id)]
        rows.sort(key=lambda row: row[1].trade_id)
        rows = rows[:limit] if oldest_first else rows[-limit:]
        return json_response([answers.trade_body(o, fill) for o, fill in rows])

    # ----- public
    async def _exchange_info(self, request: web.Request) -> web.Response:
        self.requests += 1
        specs = [self.book.specs[i] for i in sorted(self.book.index.values())]
        limits = (f.LIMIT_WEIGHT_PER_MINUTE, f.LIMIT_ORDERS_PER_MINUTE, f.LIMIT_ORDERS_PER_10S)
        return json_response(answers.exchange_info_body(specs, now_ms(), limits))

    async def _time(self, request: web.Request) -> web.Response:
        self.requests += 1
        return json_response({"serverTime": now_ms()})

    async def _listen_key(self, request: web.Request) -> web.Response:
        """USER_STREAM: the API key header only; POST answers the account's key (new or extended), PUT extends
        it (-1125 when there is none), DELETE closes it."""
        self.requests += 1
        api_key = request.headers.get(c.API_KEY_HEADER, "")
        if not api_key:
            return self.error(self.d.missing_api_key())
        if api_key not in self.secrets:
            return self.error(self.d.unknown_api_key())
        streams = self.user_streams
        if request.method == "POST":
            return json_response({"listenKey": streams.start(api_key)})
        if request.method == "PUT":
            key = streams.keepalive(api_key)
            if key is None:
                return self.error(ApiError(400, -1125, "This listenKey does not exist."))
            return json_response({"listenKey": key})
        streams.close(api_key)
        return json_response({})

    # ----- test hooks
    def inject_order_fault(self, fault: OrderFault) -> None:
        """Arm a ``rate_limit`` fault (``Simulator.inject_order_fault``); FaultError for any other kind."""
        if fault.kind != order_faults.RATE_LIMIT:
            raise FaultError(f"{self.venue.name}: the simulated USD-M API takes {order_faults.RATE_LIMIT} faults "
                             f"only, not {fault.kind!r}")
        order_faults.check(fault, self.book.index)
        self.throttle.fault(fault.seconds or 0.0)

    async def _sim_account(self, request: web.Request) -> web.Response:
        api_key = request.headers.get(c.API_KEY_HEADER, "")
        if api_key not in self.secrets:
            return self.error(self.d.unknown_api_key() if api_key else self.d.missing_api_key())
        return json_response(pa.account_listing(self.book, api_key))


def _units(text: str, decimals: int, increment: Decimal, code: int, msg: str) -> Decimal | ApiError:
    """A positive price or quantity with at most ``decimals`` decimals, in whole ``increment``s (``code`` and
    ``msg``: the venue's answer to a value off the increment)."""
    value = parse_decimal(text)
    if value is None:
        return ApiError(400, c.ERR_ILLEGAL_CHARS, "Illegal characters found in a parameter.")
    if to_units(value, decimals) is None:
        return ApiError(400, f.ERR_BAD_PRECISION, "Precision is over the maximum defined for this asset.")
    if value <= 0:
        if code == ERR_TICK:
            return ApiError(400, ERR_PRICE_NOT_POSITIVE, "Price less than 0.")
        return ApiError(400, ERR_QTY_NOT_POSITIVE, "Quantity less than or equal to zero.")
    if value % increment:
        return ApiError(400, code, msg)
    return value

