"""A simulated spot venue's signed account endpoints (USER_DATA), in the venue's own shapes.

- ``GET /api/v3/account``: the caller's balances (``free`` / ``locked``: funds of open orders) and
  commissions (Binance also ``commissionRates``; see the dialects).
- ``GET /api/v3/myTrades?symbol=X[&orderId=N][&limit=L]``: the caller's fills in that symbol, oldest first,
  the most recent ``limit`` (default 500, at most 1000).
- ``DELETE /api/v3/order`` (symbol + origClientOrderId | orderId): cancels an open order and answers it in
  the query shape with status CANCELED; an order that is not open, or unknown, is -2011 "Unknown order sent."
- ``GET /api/v3/openOrders[?symbol=X]``: open orders in the query shape. Orders only rest while a ``slow``
  order fault holds them; otherwise the list is empty, since immediate orders never rest.
- ``DELETE /api/v3/openOrders?symbol=X``: cancels them all; the list of cancelled orders (possibly empty).
- ``GET /api/v3/allOrders?symbol=X[&orderId=N][&startTime=T][&endTime=T][&limit=L]``: the caller's orders in
  that symbol (open, cancelled, filled) in the query shape, oldest first, as both venues document it: created
  in [startTime, endTime]; ``limit`` default 500, at most 1000; with a startTime the first ``limit`` from it,
  otherwise the most recent. Binance: ``orderId`` lists from that order id on, and more than 24 hours between
  startTime and endTime is -1127. MEXC: no time means the last 24 hours, and it looks back 7 days at most.

Weights (Binance, enforced by the rate gate): account 20, myTrades 20, allOrders 20, openOrders 6 with a symbol
/ 80 without, cancel 1.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from aiohttp import web

from services.sim.dialect import ApiError, Balance
from services.sim.rate_limits import ORDER_PATH
from services.sim.rest_common import now_ms

if TYPE_CHECKING:
    from services.sim.rest import VenueRest

OPEN_ORDERS_PATH = "/api/v3/openOrders"
ALL_ORDERS_PATH = "/api/v3/allOrders"
DEFAULT_TRADES_LIMIT = 500
MAX_TRADES_LIMIT = 1000
DEFAULT_ORDERS_LIMIT = 500
MAX_ORDERS_LIMIT = 1000
BINANCE_MAX_SPAN_MS = 86_400_000  # -1127 "More than 24 hours between startTime and endTime."
MEXC_DEFAULT_SPAN_MS = 86_400_000  # no startTime: the last 24 hours
MEXC_MAX_LOOKBACK_MS = 7 * 86_400_000


class AccountApi:
    def __init__(self, rest: VenueRest) -> None:
        self.rest = rest

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/api/v3/account", self._account)
        app.router.add_get("/api/v3/myTrades", self._my_trades)
        app.router.add_get(ALL_ORDERS_PATH, self._all_orders)
        app.router.add_delete(ORDER_PATH, self._cancel)
        app.router.add_get(OPEN_ORDERS_PATH, self._open_orders)
        app.router.add_delete(OPEN_ORDERS_PATH, self._cancel_all)

    async def _answer(self, body: object) -> web.Response:
        """The way out: the second half of the latency, then the answer (an ApiError renders as one)."""
        rest = self.rest
        await rest.delay()
        if isinstance(body, ApiError):
            return rest.error(body)
        return rest.json(body)

    async def _account(self, request: web.Request) -> web.Response:
        rest = self.rest
        auth = await rest.arrive(request)
        if isinstance(auth, ApiError):
            return await self._answer(auth)
        api_key = auth[0]
        totals, locked = rest.book.balances(api_key), rest.book.locked(api_key)
        zero = Decimal(0)
        balances = [Balance(a, q - locked.get(a, zero), locked.get(a, zero)) for a, q in sorted(totals.items())]
        return await self._answer(rest.dialect.account(rest.venue, balances, now_ms()))

    async def _my_trades(self, request: web.Request) -> web.Response:
        rest, d = self.rest, self.rest.dialect
        auth = await rest.arrive(request)
        if isinstance(auth, ApiError):
            return await self._answer(auth)
        api_key, params = auth
        s = rest.symbol_index(params)
        if isinstance(s, ApiError) or s is None:
            return await self._answer(s or d.missing_param("symbol"))
        number: int | None = None
        if params.get("orderId"):
            number = d.order_number(params["orderId"])
            if number is None:
                return await self._answer(d.bad_param("orderId"))
        limit_text = params.get("limit", "")
        if limit_text and not limit_text.isdigit():
            return await self._answer(d.bad_param("limit"))
        limit = min(int(limit_text or DEFAULT_TRADES_LIMIT), MAX_TRADES_LIMIT)
        trades = rest.book.trades(api_key, s, number)[-limit:] if limit else []
        return await self._answer([d.trade(order, fill) for order, fill in trades])

    async def _all_orders(self, request: web.Request) -> web.Response:
        rest, d = self.rest, self.rest.dialect
        auth = await rest.arrive(request)
        if isinstance(auth, ApiError):
            return await self._answer(auth)
        api_key, params = auth
        s = rest.symbol_index(params)
        if isinstance(s, ApiError) or s is None:
            return await self._answer(s or d.missing_param("symbol"))
        numbers = {name: params.get(name, "") for name in ("orderId", "startTime", "endTime", "limit")}
        for name, text in numbers.items():
            if text and not text.isdigit():
                return await self._answer(d.bad_param(name))
        window = self._window(numbers["startTime"], numbers["endTime"])
        if isinstance(window, ApiError):
            return await self._answer(window)
        first_number = int(numbers["orderId"]) if numbers["orderId"] and d.binance_limits else None
        limit = min(int(numbers["limit"] or DEFAULT_ORDERS_LIMIT), MAX_ORDERS_LIMIT)
        orders = [o for o in rest.book.account_orders(api_key, s)
                  if window[0] <= o.time_ms <= window[1] and (first_number is None or o.number >= first_number)]
        # From a start (a time or an order id): the first `limit` after it; otherwise the most recent `limit`.
        from_start = bool(numbers["startTime"]) or first_number is not None
        chosen = orders[:limit] if from_start else orders[-limit:] if limit else []
        return await self._answer([d.query_response(o) for o in chosen])

    def _window(self, start_text: str, end_text: str) -> tuple[int, int] | ApiError:
        """[start, end] in ms from the parameters, per the venue's documented rules."""
        now = now_ms()
        start = int(start_text) if start_text else None
        end = int(end_text) if end_text else None
        if self.rest.dialect.binance_limits:
            if start is not None and end is not None and end - start > BINANCE_MAX_SPAN_MS:
                return ApiError(400, -1127, "More than 24 hours between startTime and endTime.")
            return (start or 0, end if end is not None else now + BINANCE_MAX_SPAN_MS)
        end = now if end is None else end
        start = end - MEXC_DEFAULT_SPAN_MS if start is None else start
        return (max(start, now - MEXC_MAX_LOOKBACK_MS), end)

    async def _cancel(self, request: web.Request) -> web.Response:
        rest, d = self.rest, self.rest.dialect
        auth = await rest.arrive(request)
        if isinstance(auth, ApiError):
            return await self._answer(auth)
        api_key, params = auth
        order = rest.find_order(api_key, params)
        if order == d.no_such_order():
            return await self._answer(d.unknown_cancel())
        if isinstance(order, ApiError):
            return await self._answer(order)
        if not rest.book.cancel(api_key, order, now_ms()):
            return await self._answer(d.unknown_cancel())
        return await self._answer(d.cancel_response(order))

    async def _open_orders(self, request: web.Request) -> web.Response:
        rest = self.rest
        auth = await rest.arrive(request)
        if isinstance(auth, ApiError):
            return await self._answer(auth)
        api_key, params = auth
        s = rest.symbol_index(params, required=False)
        if isinstance(s, ApiError):
            return await self._answer(s)
        return await self._answer([rest.dialect.query_response(o) for o in rest.book.open_orders(api_key, s)])

    async def _cancel_all(self, request: web.Request) -> web.Response:
        rest, d = self.rest, self.rest.dialect
        auth = await rest.arrive(request)
        if isinstance(auth, ApiError):
            return await self._answer(auth)
        api_key, params = auth
        s = rest.symbol_index(params)
        if isinstance(s, ApiError) or s is None:
            return await self._answer(s or d.missing_param("symbol"))
        cancelled = [o for o in rest.book.open_orders(api_key, s) if rest.book.cancel(api_key, o, now_ms())]
        return await self._answer([d.cancel_response(o) for o in cancelled])
