"""What Binance and MEXC spot REST share: the same paths, parameter names and JSON field names.

Both venues copy one API (``orderId``, ``clientOrderId``, ``executedQty``, ``cummulativeQuoteQty``,
``{"code","msg"}`` errors), so the builders and parsers live here once; a venue folder subclasses
``SpotOrderFormat`` with what differs: its signing header, new-order parameters, status names, error
codes that leave an order's fate open, exchangeInfo rules and usage headers. Pure code: no sockets.

``allOrders`` (``build_all_orders`` / ``parse_order_details``) lists an account's orders of one symbol in the
query shape, with what a restart needs to rebuild an order it lost: symbol, side, type, price, quantity, time.
Both venues document ``GET /api/v3/allOrders`` with ``symbol`` (required), ``startTime``, ``endTime`` and
``limit`` (default 500, at most 1000); Binance weighs it 20 and allows at most 24 hours between startTime and
endTime (-1127 beyond), MEXC weighs it 10 and looks back at most 7 days (24 hours when no time is given).

Error classification of an order answer (``parse_order``): 429/418 → throttled (the request never took
effect; Retry-After kept); 5xx → unknown (the order may exist: query it, never resend); a 4xx (or, on
MEXC, a 2xx) with the venue's ``{"code","msg"}`` → rejected, unless the code is one that does not say
whether the order exists (Binance -1000/-1007) → unknown; anything unreadable → unknown.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from types import ModuleType
from typing import NamedTuple

import msgspec
from msgspec import Struct

from shared.errors import ProtocolError, VenueError
from shared.venues.common import (
    ANSWER_OK,
    ANSWER_REJECTED,
    ANSWER_THROTTLED,
    ANSWER_UNKNOWN,
    ORDER_LIMIT_IOC,
    REJECTED,
    ZERO,
    AccountInfo,
    DeclaredLimit,
    HttpRequest,
    OrderAnswer,
    OrderResult,
    RateHeaders,
    RequestWeights,
    SymbolRules,
    TradeFill,
    TradingPermission,
    answer_without_order,
    rejected,
    unknown,
)

ORDER_PATH = "/api/v3/order"
OPEN_ORDERS_PATH = "/api/v3/openOrders"
ACCOUNT_PATH = "/api/v3/account"
MY_TRADES_PATH = "/api/v3/myTrades"
ALL_ORDERS_PATH = "/api/v3/allOrders"
ALL_ORDERS_MAX_LIMIT = 1000
ALL_ORDERS_MAX_SPAN_MS = 86_400_000  # Binance: endTime - startTime at most 24 h (MEXC allows more)
EXCHANGE_INFO_PATH = "/api/v3/exchangeInfo"
TIME_PATH = "/api/v3/time"
RETRY_AFTER_HEADER = "retry-after"
THROTTLED_HTTP = (429, 418)
BPS = Decimal(10_000)

Params = Sequence[tuple[str, str]]
Signer = Callable[[str, str, Params, str, str], HttpRequest]  # method, path, params, key, secret


def dec(text: str | int) -> Decimal:
    """A venue decimal (text, or a JSON integer) as an exact, finite, non-negative Decimal; ValueError else."""
    if isinstance(text, bool) or not isinstance(text, str | int):
        raise ValueError(f"not a decimal: {text!r}")
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"not a decimal: {text!r}") from None
    if not value.is_finite() or value < 0:
        raise ValueError(f"not a finite non-negative decimal: {text!r}")
    return value


def decimals(value: Decimal) -> int:
    """Digits after the point of an increment (``0.010`` → 2, ``10`` → 0)."""
    return max(0, -int(value.normalize().as_tuple().exponent)) if value else 0


def plain_decimal(d: Decimal) -> Decimal:
    """``0.01000000`` → ``0.01``, ``10.00000000`` → ``10`` (never exponent notation)."""
    n = d.normalize()
    return n.quantize(Decimal(1)) if n == n.to_integral_value() else n


def retry_after(headers: Mapping[str, str]) -> float | None:
    """``Retry-After`` in seconds (both venues send a number of seconds); None when absent or unreadable."""
    text = _header(headers, RETRY_AFTER_HEADER)
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return value if 0 <= value < float("inf") else None


def _header(headers: Mapping[str, str], lower_name: str) -> str | None:
    value = headers.get(lower_name)
    if value is not None:
        return value
    for k, v in headers.items():  # a caller with original-case names (HttpPool lower-cases them already)
        if k.lower() == lower_name:
            return v
    return None


def header_int(headers: Mapping[str, str], lower_name: str) -> int | None:
    text = _header(headers, lower_name)
    return int(text) if text is not None and text.strip().isdigit() else None


# ----- JSON bodies (unknown fields are skipped: the venues add fields over time)
class _Fill(Struct):
    price: str
    qty: str
    commission: str = "0"
    commissionAsset: str | None = None
    tradeId: int | str = -1


class OrderBody(Struct):
    """New-order answers (ACK/RESULT/FULL, MEXC's ack), queries, cancels and list items share these names.
    A cancel names the order in ``origClientOrderId`` (``clientOrderId`` is then the cancel's own id)."""

    orderId: int | str | None = None
    clientOrderId: str | None = None
    origClientOrderId: str | None = None
    status: str | None = None  # absent in an ACK
    executedQty: str = "0"
    cummulativeQuoteQty: str = "0"
    fills: list[_Fill] | None = None
    code: int | None = None  # MEXC may answer HTTP 200 with an error object
    msg: str | None = None


class _ListedOrder(Struct):
    """One item of ``allOrders`` / ``openOrders`` (the query shape); MEXC writes "" for a market order's price."""

    symbol: str
    orderId: int | str
    clientOrderId: str
    side: str
    origQty: str
    status: str
    price: str = "0"
    type: str = ""
    executedQty: str = "0"
    cummulativeQuoteQty: str = "0"
    time: int = 0
    updateTime: int = 0


class VenueOrder(NamedTuple):
    """An order as the venue lists it: enough to rebuild the order a lost journal record described."""

    symbol: str
    order_id: str
    client_order_id: str
    side: str  # BUY | SELL
    order_type: str  # the venue's type: LIMIT, MARKET, IMMEDIATE_OR_CANCEL, ...
    price: Decimal  # 0 for a market order
    orig_qty: Decimal
    executed_qty: Decimal
    cum_quote: Decimal
    status: str  # canonical (order_state's names)
    venue_status: str
    time_ms: int  # venue clock
    update_ms: int


class _ErrorBody(Struct):
    code: int
    msg: str = ""


class _Balance(Struct):
    asset: str
    free: str
    locked: str = "0"


class _CommissionRates(Struct):
    maker: str
    taker: str


Commission = int | str | None


class _AccountBody(Struct):
    balances: list[_Balance]
    makerCommission: Commission = None
    takerCommission: Commission = None
    commissionRates: _CommissionRates | None = None


class _Trade(Struct):
    id: int | str
    price: str
    qty: str
    commission: str = "0"
    commissionAsset: str | None = None


class _TimeBody(Struct):
    serverTime: int


class _RateLimit(Struct):
    rateLimitType: str
    interval: str
    intervalNum: int
    limit: int


class _RateLimits(Struct):
    rateLimits: list[_RateLimit] | None = None


class _Permission(Struct):
    canTrade: bool | None = None
    permissions: list[str] = []


INTERVAL_S = {"SECOND": 1, "MINUTE": 60, "HOUR": 3600, "DAY": 86_400}


_order_decoder = msgspec.json.Decoder(OrderBody)
_list_decoder = msgspec.json.Decoder(list[OrderBody])
_listed_decoder = msgspec.json.Decoder(list[msgspec.Raw])
_listed_item_decoder = msgspec.json.Decoder(_ListedOrder)
_error_decoder = msgspec.json.Decoder(_ErrorBody)
_account_decoder = msgspec.json.Decoder(_AccountBody)
_trades_decoder = msgspec.json.Decoder(list[_Trade])
_time_decoder = msgspec.json.Decoder(_TimeBody)
_rate_limits_decoder = msgspec.json.Decoder(_RateLimits)
_permission_decoder = msgspec.json.Decoder(_Permission)


def parse_rate_limits(body: bytes) -> tuple[DeclaredLimit, ...] | None:
    """The ``rateLimits`` an exchangeInfo answer declares (Binance spot and USD-M; MEXC spot writes ``[]``): () when
    it declares none, None when they cannot be read (the caller says so; start-up does not depend on them)."""
    try:
        declared = _rate_limits_decoder.decode(body).rateLimits or []
        return tuple(DeclaredLimit(r.rateLimitType, INTERVAL_S[r.interval] * r.intervalNum, r.limit) for r in declared)
    except (msgspec.DecodeError, KeyError):
        return None


def parse_permission(body: bytes) -> TradingPermission:
    """``canTrade`` and ``permissions`` of an account answer (both spot venues; USD-M has ``canTrade``); unreadable
    or absent: (None, ())."""
    try:
        p = _permission_decoder.decode(body)
    except msgspec.DecodeError:
        return TradingPermission(None, ())
    return TradingPermission(p.canTrade, tuple(p.permissions))


def parse_code_msg(http_status: int, body: bytes) -> tuple[int, str]:
    """A ``{"code", "msg"}`` error body's ``(code, msg)`` (Binance spot and USD-M, MEXC spot); ``(0, <start of the
    body>)`` when the body is not one."""
    try:
        err = _error_decoder.decode(body)
    except msgspec.DecodeError:
        return 0, f"HTTP {http_status}: {body[:200].decode(errors='replace')}"
    return err.code, err.msg


def commission_rate(value: int | str) -> Decimal:
    """An account's integer commission: basis points on both venues (Binance ``takerCommission: 10`` next to
    ``commissionRates.taker: "0.00100000"``; MEXC ``takerCommission: 5`` is 0.05%). Text with a fraction
    (``"0.0005"``) is already a rate."""
    d = dec(value)
    return d / BPS if d == d.to_integral_value() else d


class SpotOrderFormat:
    """The shared implementation of ``OrderFormat``; subclasses fill in the class attributes and hooks."""

    kind = ""
    not_found_codes: frozenset[int] = frozenset()
    status_unknown_codes: frozenset[int] = frozenset()
    timestamp_codes: frozenset[int] = frozenset()  # "timestamp outside recvWindow": our clock offset drifted
    statuses: Mapping[str, str] = {}  # venue status -> canonical
    weights: RequestWeights = RequestWeights(1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1)
    sign: Signer

    # ----- venue hooks
    def new_order_params(self, symbol: str, side: str, price: str | None, qty: str, client_order_id: str,
                         order_type: str) -> list[tuple[str, str]]:
        raise NotImplementedError

    def exchange_info_query(self, symbols: Sequence[str]) -> str:
        raise NotImplementedError

    def parse_exchange_info(self, body: bytes) -> dict[str, SymbolRules]:
        raise NotImplementedError

    def parse_rate_headers(self, headers: Mapping[str, str]) -> RateHeaders:
        return RateHeaders(None, None, None, retry_after(headers))

    # ----- requests
    def _signed(self, method: str, path: str, params: list[tuple[str, str]], api_key: str, api_secret: str,
                timestamp_ms: int, recv_window_ms: int) -> HttpRequest:
        params.append(("recvWindow", str(recv_window_ms)))
        params.append(("timestamp", str(timestamp_ms)))
        return self.sign(method, path, params, api_key, api_secret)

    def build_new_order(
        self, *, symbol: str, side: str, price: str | None, qty: str, client_order_id: str, api_key: str,
        api_secret: str, timestamp_ms: int, recv_window_ms: int, order_type: str = ORDER_LIMIT_IOC,
    ) -> HttpRequest:
        params = self.new_order_params(symbol, side, price, qty, client_order_id, order_type)
        return self._signed("POST", ORDER_PATH, params, api_key, api_secret, timestamp_ms, recv_window_ms)

    def build_query_order(self, *, symbol: str, client_order_id: str, api_key: str, api_secret: str,
                          timestamp_ms: int, recv_window_ms: int) -> HttpRequest:
        params = [("symbol", symbol), ("origClientOrderId", client_order_id)]
        return self._signed("GET", ORDER_PATH, params, api_key, api_secret, timestamp_ms, recv_window_ms)

    def build_cancel_order(self, *, symbol: str, client_order_id: str, api_key: str, api_secret: str,
                           timestamp_ms: int, recv_window_ms: int) -> HttpRequest:
        params = [("symbol", symbol), ("origClientOrderId", client_order_id)]
        return self._signed("DELETE", ORDER_PATH, params, api_key, api_secret, timestamp_ms, recv_window_ms)

    def build_open_orders(self, *, symbol: str | None, api_key: str, api_secret: str, timestamp_ms: int,
                          recv_window_ms: int) -> HttpRequest:
        params = [("symbol", symbol)] if symbol else []
        return self._signed("GET", OPEN_ORDERS_PATH, params, api_key, api_secret, timestamp_ms, recv_window_ms)

    def build_cancel_all(self, *, symbol: str, api_key: str, api_secret: str, timestamp_ms: int,
                         recv_window_ms: int) -> HttpRequest:
        params = [("symbol", symbol)]
        return self._signed("DELETE", OPEN_ORDERS_PATH, params, api_key, api_secret, timestamp_ms, recv_window_ms)

    def build_account(self, *, api_key: str, api_secret: str, timestamp_ms: int, recv_window_ms: int) -> HttpRequest:
        return self._signed("GET", ACCOUNT_PATH, [], api_key, api_secret, timestamp_ms, recv_window_ms)

    def build_my_trades(self, *, symbol: str, order_id: str | None, api_key: str, api_secret: str,
                        timestamp_ms: int, recv_window_ms: int) -> HttpRequest:
        params = [("symbol", symbol)]
        if order_id:
            params.append(("orderId", order_id))
        return self._signed("GET", MY_TRADES_PATH, params, api_key, api_secret, timestamp_ms, recv_window_ms)

    def build_all_orders(self, *, symbol: str, start_ms: int | None, end_ms: int | None, limit: int,
                         api_key: str, api_secret: str, timestamp_ms: int, recv_window_ms: int) -> HttpRequest:
        """The account's orders of ``symbol`` (open, cancelled, filled) created in [start_ms, end_ms] (venue
        clock); without times the most recent ones. The caller keeps the span within 24 h (Binance)."""
        params = [("symbol", symbol)]
        if start_ms is not None:
            params.append(("startTime", str(start_ms)))
        if end_ms is not None:
            params.append(("endTime", str(end_ms)))
        params.append(("limit", str(max(1, min(limit, ALL_ORDERS_MAX_LIMIT)))))
        return self._signed("GET", ALL_ORDERS_PATH, params, api_key, api_secret, timestamp_ms, recv_window_ms)

    def build_exchange_info(self, symbols: Sequence[str] = ()) -> HttpRequest:
        query = self.exchange_info_query(symbols) if symbols else ""
        return HttpRequest("GET", EXCHANGE_INFO_PATH + (f"?{query}" if query else ""), [], b"")

    def build_time(self) -> HttpRequest:
        return HttpRequest("GET", TIME_PATH, [], b"")

    # ----- answers
    def parse_error(self, http_status: int, body: bytes) -> tuple[int, str]:
        return parse_code_msg(http_status, body)

    def parse_order(
        self, http_status: int, body: bytes, headers: Mapping[str, str], *, new_order: bool = True
    ) -> OrderAnswer:
        if http_status in THROTTLED_HTTP:
            code, msg = self.parse_error(http_status, body)
            wait = retry_after(headers) or 0.0
            return answer_without_order(ANSWER_THROTTLED, "", code, msg, http_status, wait, new_order=new_order)
        if http_status >= 500:
            code, msg = self.parse_error(http_status, body)
            return answer_without_order(ANSWER_UNKNOWN, "", code, msg, http_status, new_order=new_order)
        if not 200 <= http_status < 300:
            try:
                err = _error_decoder.decode(body)
            except msgspec.DecodeError:
                msg = f"HTTP {http_status}: unreadable body {body[:200]!r}"
                return answer_without_order(ANSWER_UNKNOWN, "", 0, msg, http_status, new_order=new_order)
            return self._refusal(err.code, err.msg, http_status, new_order)
        try:
            return self._order(_order_decoder.decode(body), http_status, new_order)
        except (msgspec.DecodeError, ValueError) as exc:
            msg = f"HTTP {http_status}: unreadable order answer ({exc})"
            return answer_without_order(ANSWER_UNKNOWN, "", 0, msg, http_status, new_order=new_order)

    def _refusal(self, code: int, msg: str, http_status: int, new_order: bool) -> OrderAnswer:
        kind = ANSWER_UNKNOWN if code in self.status_unknown_codes else ANSWER_REJECTED
        return answer_without_order(kind, "", code, msg, http_status, new_order=new_order)

    def _order(self, r: OrderBody, http_status: int, new_order: bool) -> OrderAnswer:
        cid = r.origClientOrderId or r.clientOrderId or ""
        if r.orderId is None:
            if r.code is not None:
                return self._refusal(r.code, r.msg or "", http_status, new_order)._replace(client_order_id=cid)
            raise ValueError("no orderId")
        venue_status = r.status or ""
        status = self.statuses.get(venue_status) if venue_status else "NEW"  # an ACK: accepted, not reported
        if status is None:
            raise ValueError(f"unknown order status {venue_status!r}")
        fills = None
        if r.fills is not None:
            fills = tuple(
                TradeFill(str(f.tradeId), dec(f.price), dec(f.qty), dec(f.commission), f.commissionAsset or "")
                for f in r.fills
            )
        return OrderAnswer(
            ANSWER_OK, status, venue_status, str(r.orderId), cid, dec(r.executedQty), dec(r.cummulativeQuoteQty),
            fills, 0, "", http_status, 0.0,
        )

    def _check_ok(self, http_status: int, body: bytes) -> None:
        if not 200 <= http_status < 300:
            code, msg = self.parse_error(http_status, body)
            raise VenueError(code, msg, http_status)

    def parse_order_list(self, http_status: int, body: bytes, headers: Mapping[str, str]) -> list[OrderAnswer]:
        """``openOrders`` (GET) or the cancelled orders of ``DELETE openOrders``. VenueError for an error
        answer, ProtocolError for an unreadable one; an item with an unreadable status is ``unknown``."""
        self._check_ok(http_status, body)
        try:
            items = _list_decoder.decode(body)
        except msgspec.DecodeError as exc:
            raise ProtocolError(f"{self.kind}: unreadable order list ({exc})") from None
        out: list[OrderAnswer] = []
        for item in items:
            try:
                out.append(self._order(item, http_status, False))
            except ValueError as exc:
                cid = item.origClientOrderId or item.clientOrderId or ""
                out.append(answer_without_order(ANSWER_UNKNOWN, cid, 0, str(exc), http_status, new_order=False))
        return out

    def parse_order_details(self, http_status: int, body: bytes) -> tuple[list[VenueOrder], list[str]]:
        """``allOrders`` or ``openOrders`` with every detail: (the orders, the client ids of items that could
        not be read). VenueError for an error answer, ProtocolError when the body is not a list."""
        self._check_ok(http_status, body)
        try:
            items = _listed_decoder.decode(body)
        except msgspec.DecodeError as exc:
            raise ProtocolError(f"{self.kind}: unreadable order list ({exc})") from None
        orders: list[VenueOrder] = []
        unreadable: list[str] = []
        for raw in items:
            try:
                orders.append(self._listed(_listed_item_decoder.decode(raw)))
            except (msgspec.DecodeError, ValueError) as exc:
                unreadable.append(_client_id_of(bytes(raw)) or f"? ({exc})")
        return orders, unreadable

    def _listed(self, r: _ListedOrder) -> VenueOrder:
        status = self.statuses.get(r.status)
        if status is None:
            raise ValueError(f"unknown order status {r.status!r}")
        if r.side not in ("BUY", "SELL"):
            raise ValueError(f"unknown side {r.side!r}")
        return VenueOrder(
            r.symbol, str(r.orderId), r.clientOrderId, r.side, r.type, dec(r.price or "0"), dec(r.origQty),
            dec(r.executedQty), dec(r.cummulativeQuoteQty), status, r.status, r.time, r.updateTime,
        )

    def parse_account(self, body: bytes, fallback: tuple[Decimal, Decimal] | None = None) -> AccountInfo:
        """Balances and commission rates; ``commissionRates`` wins over the integer commissions, and
        ``fallback`` (maker, taker) fills in for an account answer that states neither."""
        try:
            a = _account_decoder.decode(body)
            balances = {b.asset: (dec(b.free), dec(b.locked)) for b in a.balances}
            if a.commissionRates is not None:
                maker, taker = dec(a.commissionRates.maker), dec(a.commissionRates.taker)
            elif a.makerCommission is not None and a.takerCommission is not None:
                maker, taker = commission_rate(a.makerCommission), commission_rate(a.takerCommission)
            elif fallback is not None:
                maker, taker = fallback
            else:
                raise ValueError("no commission in the account answer")
        except (msgspec.DecodeError, ValueError) as exc:
            raise ProtocolError(f"{self.kind}: unreadable account answer ({exc})") from None
        return AccountInfo(balances, maker, taker)

    def parse_my_trades(self, body: bytes) -> list[TradeFill]:
        try:
            return [
                TradeFill(str(t.id), dec(t.price), dec(t.qty), dec(t.commission), t.commissionAsset or "")
                for t in _trades_decoder.decode(body)
            ]
        except (msgspec.DecodeError, ValueError) as exc:
            raise ProtocolError(f"{self.kind}: unreadable myTrades answer ({exc})") from None

    def parse_time(self, body: bytes) -> int:
        try:
            return _time_decoder.decode(body).serverTime
        except msgspec.DecodeError as exc:
            raise ProtocolError(f"{self.kind}: unreadable time answer ({exc})") from None

    def not_found(self, answer: OrderAnswer) -> bool:
        """The venue says it has no such order (a query or cancel of an id it never accepted or closed)."""
        return answer.kind == ANSWER_REJECTED and answer.error_code in self.not_found_codes

    # ----- the first executor's shape, kept until it moves to OrderAnswer
    def parse_order_response(self, http_status: int, body: bytes, base_asset: str) -> OrderResult:
        a = self.parse_order(http_status, body, {})
        if a.kind in (ANSWER_REJECTED, ANSWER_THROTTLED):
            return rejected(a.client_order_id, a.error_code, a.error_msg)
        if a.kind != ANSWER_OK:
            return unknown(a.client_order_id, a.error_msg, a.error_code)
        filled = float(a.executed_qty)
        avg = float(a.cum_quote / a.executed_qty) if a.executed_qty > 0 else 0.0
        fills: list[tuple[float, float, float, str]] = []
        fee_total = ZERO
        if a.fills is not None:
            for f in a.fills:
                # Buys pay commission in the base asset: value it at this fill's price; others at face value.
                fee = f.commission * f.price if f.commission_asset == base_asset else f.commission
                fee_total += fee
                fills.append((float(f.price), float(f.qty), float(fee), f.trade_id))
        elif filled > 0:
            fills.append((avg, filled, 0.0, f"order:{a.order_id}"))  # totals only: one aggregate fill
        return OrderResult(
            a.status != REJECTED, a.venue_status or "NEW", a.order_id, a.client_order_id, filled, avg,
            float(fee_total), fills, 0, "", not a.venue_status,
        )


def weights_from(constants: ModuleType) -> RequestWeights:
    """A venue's ``WEIGHT_*`` constants (its ``constants.py``) as the weight table."""
    c = constants
    return RequestWeights(
        c.WEIGHT_NEW_ORDER, c.WEIGHT_QUERY_ORDER, c.WEIGHT_CANCEL_ORDER, c.WEIGHT_OPEN_ORDERS_SYMBOL,
        c.WEIGHT_OPEN_ORDERS_ALL, c.WEIGHT_CANCEL_ALL, c.WEIGHT_ACCOUNT, c.WEIGHT_MY_TRADES,
        c.WEIGHT_MY_TRADES_BY_ORDER, c.WEIGHT_EXCHANGE_INFO, c.WEIGHT_TIME, c.WEIGHT_ALL_ORDERS,
    )


class _ClientId(Struct):
    clientOrderId: str = ""


def _client_id_of(raw: bytes) -> str:
    """The client id of an item that failed to decode whole (for the log), or ""."""
    try:
        return msgspec.json.decode(raw, type=_ClientId).clientOrderId
    except msgspec.DecodeError:
        return ""
