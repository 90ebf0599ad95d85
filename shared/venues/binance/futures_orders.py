"""Binance USD-M perpetual orders and account, sans I/O: signed requests built, answers parsed.

The spot path (``orders.py`` over ``spot_rest.py``) does this for ``/api/v3``; USD-M futures differ enough to
need their own module: ``/fapi`` paths, ``cumQuote``/``avgPrice`` in place of ``cummulativeQuoteQty`` and
fills, ``newOrderRespType`` ACK or RESULT (no FULL), signed amounts (a short's ``positionAmt``, funding paid,
unrealized losses are negative), usage headers counting orders per 10 s and per minute (not per day), and
codes of their own (-2019 margin, -2022/-4118 reduce-only, -4046 margin type unchanged, -1008 overload).
``futures_rest.py`` adapts this to the common ``OrderFormat`` / ``PerpOrderFormat`` protocols (the kind's
declared order format); this module keeps the venue's full answers.

Sources. Each builder names its page in the current docs (the anchors the official Python SDK,
binance-sdk-derivatives-trading-usds-futures 17.x, cites); the rules below come from these pages of
https://developers.binance.com/docs/derivatives/usds-margined-futures/ :
  general-info       base https://fapi.binance.com; HMAC-SHA256 over query string + body, ``signature``
                     last, ``X-MBX-APIKEY``, ``timestamp``, ``recvWindow`` (default 5000); HTTP 408 is a
                     backend timeout, 503 "Unknown error..." leaves the execution status UNKNOWN, -1008 is
                     a certain failure; ``X-MBX-USED-WEIGHT-1M`` on every answer, ``X-MBX-ORDER-COUNT-1M``
                     and ``-10S`` on order answers (not guaranteed on rejected ones)
  common-definition  order statuses; PRICE_FILTER, LOT_SIZE, MARKET_LOT_SIZE, MIN_NOTIONAL (``notional``);
                     rate limiters: REQUEST_WEIGHT 2400/min, ORDERS 1200/min
  error-code         the codes below
Pure code: no sockets, no clock.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import NamedTuple, TypeVar

import msgspec
from msgspec import Struct

from shared.errors import ProtocolError, VenueError
from shared.money import snap, to_wire
from shared.venues.binance import constants as c
from shared.venues.binance.auth import signed_request
from shared.venues.common import (
    ANSWER_OK,
    ANSWER_REJECTED,
    ANSWER_THROTTLED,
    ANSWER_UNKNOWN,
    CANCELED,
    EXPIRED,
    FILLED,
    NEW,
    ORDER_LIMIT_IOC,
    ORDER_MARKET,
    PARTIALLY_FILLED,
    REJECTED,
    ZERO,
    HttpRequest,
    OrderAnswer,
    RateHeaders,
    RequestWeights,
    SymbolRules,
    answer_without_order,
)
from shared.venues.spot_rest import (
    THROTTLED_HTTP,
    dec,
    decimals,
    header_int,
    parse_code_msg,
    plain_decimal,
    retry_after,
)

KIND = "binance_usdm"  # the venue kind's name in kind.py
BASE_URL = "https://fapi.binance.com"  # general-info: "The base endpoint is"

# The current docs put each group of endpoints on one page; each builder names its own section under it.
DOC = "https://developers.binance.com/en/docs/catalog/core-trading-derivatives-trading-usd-s-m-futures/api/rest-api/"

ORDER_PATH = "/fapi/v1/order"
OPEN_ORDERS_PATH = "/fapi/v1/openOrders"
CANCEL_ALL_PATH = "/fapi/v1/allOpenOrders"
# V3 is the current position and account API (V2 is still served, with leverage and marginType in its
# position items; V3 dropped them: read them from symbolConfig).
POSITION_RISK_PATH = "/fapi/v3/positionRisk"
ACCOUNT_PATH = "/fapi/v3/account"
SYMBOL_CONFIG_PATH = "/fapi/v1/symbolConfig"
LEVERAGE_PATH = "/fapi/v1/leverage"
MARGIN_TYPE_PATH = "/fapi/v1/marginType"
INCOME_PATH = "/fapi/v1/income"
USER_TRADES_PATH = "/fapi/v1/userTrades"
EXCHANGE_INFO_PATH = "/fapi/v1/exchangeInfo"
TIME_PATH = "/fapi/v1/time"

# Usage headers, lower-cased as HttpPool hands them over (the venue writes X-MBX-USED-WEIGHT-1M etc.).
WEIGHT_HEADER = "x-mbx-used-weight-1m"
ORDER_COUNT_1M_HEADER = "x-mbx-order-count-1m"
ORDER_COUNT_10S_HEADER = "x-mbx-order-count-10s"

# Documented limits, used until exchangeInfo's rateLimits say otherwise (parse_exchange_info_full).
# 2400 and 1200 are common-definition's; 300 per 10 s is the ORDERS/SECOND/10 limiter the WebSocket API's
# order answers report (the official SDK's order.place fixture); exchangeInfo's own example omits it.
LIMIT_WEIGHT_PER_MINUTE = c.FUTURES_LIMIT_WEIGHT_PER_MINUTE
LIMIT_ORDERS_PER_MINUTE = c.FUTURES_LIMIT_ORDERS_PER_MINUTE
LIMIT_ORDERS_PER_10S = c.FUTURES_LIMIT_ORDERS_PER_10S

# IP weights per request (each endpoint's page). A new order weighs 0 on the IP limit and 1 on each order
# counter; openOrders weighs 1 with a symbol and 40 without.
WEIGHT_NEW_ORDER = 0
WEIGHT_QUERY_ORDER = 1
WEIGHT_CANCEL_ORDER = 1
WEIGHT_OPEN_ORDERS_SYMBOL = 1
WEIGHT_OPEN_ORDERS_ALL = 40
WEIGHT_CANCEL_ALL = 1
WEIGHT_ACCOUNT = 5
WEIGHT_MY_TRADES = 5  # GET /fapi/v1/userTrades, with or without orderId
WEIGHT_EXCHANGE_INFO = 1
WEIGHT_TIME = 1
WEIGHT_ALL_ORDERS = 5  # GET /fapi/v1/allOrders (not built here yet)
WEIGHT_POSITION_RISK = 5
WEIGHT_SYMBOL_CONFIG = 5
WEIGHT_LEVERAGE = 1
WEIGHT_MARGIN_TYPE = 1
WEIGHT_INCOME = 30

MAX_LEVERAGE = 125  # Change Initial Leverage: "int from 1 to 125"
INCOME_MAX_LIMIT = 1000  # Get Income History: "Default 100; max 1000"
USER_TRADES_MAX_LIMIT = 1000  # Account Trade List: "Default 500; max 1000"
INCOME_FUNDING_FEE = "FUNDING_FEE"
MARGIN_ISOLATED = "ISOLATED"  # the marginType parameter's words; answers' variants are mapped onto them
MARGIN_CROSSED = "CROSSED"
RESPONSE_TYPE = "RESULT"  # IOC and MARKET orders come back final (FILLED or EXPIRED): no query needed
# New Order: newClientOrderId "Can only be string following the rule: ^[\.A-Z\:/a-z0-9_-]{1,36}$"
CLIENT_ID_RULE = re.compile(r"[.A-Z:/a-z0-9_-]{1,36}")
SIDES = ("BUY", "SELL")

# Order statuses (common-definition): all but EXPIRED_IN_MATCH (self-trade prevention) keep their name.
STATUSES = {
    "NEW": NEW,
    "PARTIALLY_FILLED": PARTIALLY_FILLED,
    "FILLED": FILLED,
    "CANCELED": CANCELED,
    "REJECTED": REJECTED,
    "EXPIRED": EXPIRED,
    "EXPIRED_IN_MATCH": EXPIRED,
}

# Error codes (error-code page).
ERR_UNKNOWN = -1000
ERR_TOO_MANY_REQUESTS = -1003
ERR_UNEXPECTED_RESP = -1006  # "Execution status unknown."
ERR_TIMEOUT = -1007  # "Send status unknown; execution status unknown."
ERR_THROTTLED = -1008  # system-level protection: the request failed and was not counted
ERR_TOO_MANY_ORDERS = -1015
ERR_TIMESTAMP = -1021
ERR_SIGNATURE = -1022
ERR_BAD_PRECISION = -1111
ERR_BAD_SYMBOL = -1121
ERR_CANCEL_REJECTED = -2011  # "Unknown order sent": nothing open with that id
ERR_NO_SUCH_ORDER = -2013
ERR_BALANCE = -2018
ERR_MARGIN = -2019  # "Margin is insufficient."
ERR_REDUCE_ONLY = -2022  # "ReduceOnly Order is rejected."
ERR_MARGIN_TYPE_UNCHANGED = -4046  # "No need to change margin type."
ERR_REDUCE_ONLY_MARGIN = -4118
ERR_MIN_NOTIONAL = -4164

STATUS_UNKNOWN_CODES = frozenset({ERR_UNKNOWN, ERR_UNEXPECTED_RESP, ERR_TIMEOUT})
NOT_FOUND_CODES = frozenset({ERR_NO_SUCH_ORDER, ERR_CANCEL_REJECTED})
HTTP_BACKEND_TIMEOUT = 408  # general-info: a 4xx that leaves the order's fate open

_DECIMAL_TEXT = re.compile(r"[0-9]+(\.[0-9]+)?")
_ROUNDINGS = ("down", "up", "nearest")


# ----- prices and quantities: Decimal text, never a float's repr
def wire_decimal(value: Decimal | str, what: str) -> str:
    """A positive price or quantity as the plain decimal text the venue gets (``0.001``, never ``1E-3``)."""
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"{what}: not finite: {value}")
        text = to_wire(value)
    elif isinstance(value, str):
        text = value
    else:  # a float would need its repr, and a float's repr is what must never reach the venue
        raise TypeError(f"{what}: Decimal or decimal text, not {type(value).__name__}")
    if not _DECIMAL_TEXT.fullmatch(text) or Decimal(text) <= 0:
        raise ValueError(f"{what}: not a positive plain decimal: {text!r}")
    return text


def _exact(value: Decimal | str, what: str) -> Decimal:
    if isinstance(value, Decimal):
        d = value
    elif isinstance(value, str):
        try:
            d = Decimal(value)
        except InvalidOperation:
            raise ValueError(f"{what}: not a decimal: {value!r}") from None
    else:
        raise TypeError(f"{what}: Decimal or decimal text, not {type(value).__name__}")
    if not d.is_finite():
        raise ValueError(f"{what}: not finite: {value!r}")
    return d


def wire_qty(qty: Decimal | str, step: Decimal) -> str:
    """``qty`` floored to whole ``step``s: never trade more than was sized (LOT_SIZE/MARKET_LOT_SIZE)."""
    return to_wire(snap(_exact(qty, "quantity"), step, "down"))


def wire_price(price: Decimal | str, tick: Decimal, rounding: str = "down") -> str:
    """``price`` as whole ``tick``s (PRICE_FILTER); floored unless the caller asks otherwise."""
    if rounding not in _ROUNDINGS:
        raise ValueError(f"unknown rounding {rounding!r}")
    return to_wire(snap(_exact(price, "price"), tick, rounding))


def sdec(text: str | int) -> Decimal:
    """A signed venue decimal (positionAmt, income, unrealized PnL): exact and finite; ValueError otherwise."""
    if isinstance(text, bool) or not isinstance(text, str | int):
        raise ValueError(f"not a decimal: {text!r}")
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"not a decimal: {text!r}") from None
    if not value.is_finite():
        raise ValueError(f"not finite: {text!r}")
    return value


def margin_type(word: str) -> str:
    """The venue's margin-type words (``isolated``/``cross`` in positions and events, ``ISOLATED``/``CROSSED``
    in symbolConfig and requests) as MARGIN_ISOLATED or MARGIN_CROSSED."""
    w = word.lower()
    if w == "isolated":
        return MARGIN_ISOLATED
    if w in ("cross", "crossed"):
        return MARGIN_CROSSED
    raise ValueError(f"unknown margin type {word!r}")


# ----- typed results
class FuturesOrder(NamedTuple):
    """One order answer: the common ``OrderAnswer`` plus what a futures order adds. For an answer that
    states no order (refused, throttled, unknown) the extras are empty."""

    answer: OrderAnswer
    symbol: str
    side: str
    order_type: str  # LIMIT | MARKET | ...
    time_in_force: str
    position_side: str  # BOTH in one-way mode
    price: Decimal
    avg_price: Decimal
    orig_qty: Decimal
    reduce_only: bool
    update_ms: int


class FuturesPosition(NamedTuple):
    """One positionRisk item. ``leverage``/``margin_type`` are None from V3 (see ``with_symbol_config``)."""

    symbol: str
    position_side: str
    amount: Decimal  # signed: negative is short
    entry_price: Decimal
    break_even_price: Decimal
    mark_price: Decimal
    unrealized_pnl: Decimal  # signed
    liquidation_price: Decimal  # 0: none
    notional: Decimal  # signed like amount
    margin_asset: str
    isolated_margin: Decimal
    isolated_wallet: Decimal
    leverage: int | None
    margin_type: str | None  # MARGIN_ISOLATED | MARGIN_CROSSED
    update_ms: int
    initial_margin: Decimal | None = None  # V3 only (V2 items have none)

    @property
    def isolated(self) -> bool | None:
        return None if self.margin_type is None else self.margin_type == MARGIN_ISOLATED


class SymbolConfig(NamedTuple):
    symbol: str
    margin_type: str  # MARGIN_ISOLATED | MARGIN_CROSSED
    leverage: int
    max_notional: Decimal
    auto_add_margin: bool


class LeverageAnswer(NamedTuple):
    symbol: str
    leverage: int
    max_notional: Decimal


class FuturesBalance(NamedTuple):
    """One margin asset of the account (USDT, USDC, ...)."""

    asset: str
    wallet: Decimal
    unrealized_pnl: Decimal
    margin_balance: Decimal
    available: Decimal
    cross_wallet: Decimal
    cross_unrealized_pnl: Decimal
    initial_margin: Decimal
    maint_margin: Decimal
    max_withdraw: Decimal
    update_ms: int


class AccountPosition(NamedTuple):
    symbol: str
    position_side: str
    amount: Decimal  # signed
    unrealized_pnl: Decimal
    notional: Decimal
    initial_margin: Decimal
    maint_margin: Decimal
    isolated_margin: Decimal
    isolated_wallet: Decimal
    update_ms: int


class FuturesAccount(NamedTuple):
    """Account V3. The totals are USDT-only in single-asset mode and USD values in multi-assets mode."""

    wallet_balance: Decimal
    margin_balance: Decimal
    available_balance: Decimal
    unrealized_pnl: Decimal
    initial_margin: Decimal
    maint_margin: Decimal
    max_withdraw: Decimal
    assets: dict[str, FuturesBalance]
    positions: tuple[AccountPosition, ...]


class IncomeRecord(NamedTuple):
    """One income flow. ``(income_type, tran_id)`` is unique for the account (the page: "trandId is unique
    in the same incomeType for a user"), so it is the key to count a funding payment once."""

    symbol: str  # "" for account-wide flows (TRANSFER)
    income_type: str  # FUNDING_FEE, COMMISSION, REALIZED_PNL, ...
    amount: Decimal  # signed: a funding fee paid is negative
    asset: str
    time_ms: int
    tran_id: str
    trade_id: str  # "" when the flow is not a trade's
    info: str


class FuturesRules(NamedTuple):
    """A symbol's rules: ``rules`` is the spot-shaped part (PRICE_FILTER tick, LOT_SIZE step and minQty,
    MIN_NOTIONAL notional); MARKET orders obey MARKET_LOT_SIZE instead of LOT_SIZE (0: not published)."""

    rules: SymbolRules
    market_step: Decimal
    market_min_qty: Decimal
    market_max_qty: Decimal
    max_qty: Decimal
    min_price: Decimal
    max_price: Decimal
    status: str  # TRADING, SETTLING, ...
    contract_type: str  # PERPETUAL, CURRENT_QUARTER, ...


class FuturesLimits(NamedTuple):
    weight_per_minute: int
    orders_per_minute: int
    orders_per_10s: int


DOCUMENTED_LIMITS = FuturesLimits(LIMIT_WEIGHT_PER_MINUTE, LIMIT_ORDERS_PER_MINUTE, LIMIT_ORDERS_PER_10S)


class FuturesExchangeInfo(NamedTuple):
    rules: dict[str, FuturesRules]
    limits: FuturesLimits


class FuturesRateHeaders(NamedTuple):
    """The venue's count of our usage from one answer (None: not in this answer)."""

    weight_1m: int | None
    orders_1m: int | None
    orders_10s: int | None
    retry_after_s: float | None


# ----- JSON bodies (unknown fields are skipped: the venue adds fields over time)
class _OrderBody(Struct):
    """New-order (RESULT), query, cancel and openOrders items share these names; ``cumQty`` (new order and
    cancel only) is ``executedQty`` again."""

    orderId: int | None = None
    clientOrderId: str = ""
    symbol: str = ""
    status: str | None = None
    side: str = ""
    type: str = ""
    timeInForce: str = ""
    positionSide: str = ""
    price: str = "0"
    avgPrice: str = "0"
    origQty: str = "0"
    executedQty: str = "0"
    cumQuote: str = "0"
    reduceOnly: bool = False
    updateTime: int = 0
    code: int | None = None
    msg: str | None = None


class _ErrorBody(Struct):
    code: int
    msg: str = ""


class _Position(Struct):
    symbol: str
    positionAmt: str
    positionSide: str = "BOTH"
    entryPrice: str = "0"
    breakEvenPrice: str = "0"
    markPrice: str = "0"
    unRealizedProfit: str = "0"
    liquidationPrice: str = "0"
    notional: str = "0"
    marginAsset: str = ""
    isolatedMargin: str = "0"
    isolatedWallet: str = "0"
    leverage: str | None = None  # V2 only
    marginType: str | None = None  # V2 only
    initialMargin: str | None = None  # V3 only
    updateTime: int = 0


class _SymbolConfig(Struct):
    symbol: str
    marginType: str
    leverage: int
    maxNotionalValue: str = "0"
    isAutoAddMargin: bool = False


class _Leverage(Struct):
    symbol: str
    leverage: int
    maxNotionalValue: str = "0"


class _Asset(Struct):
    asset: str
    walletBalance: str = "0"
    unrealizedProfit: str = "0"
    marginBalance: str = "0"
    maintMargin: str = "0"
    initialMargin: str = "0"
    crossWalletBalance: str = "0"
    crossUnPnl: str = "0"
    availableBalance: str = "0"
    maxWithdrawAmount: str = "0"
    updateTime: int = 0


class _AccountPosition(Struct):
    symbol: str
    positionSide: str = "BOTH"
    positionAmt: str = "0"
    unrealizedProfit: str = "0"
    isolatedMargin: str = "0"
    notional: str = "0"
    isolatedWallet: str = "0"
    initialMargin: str = "0"
    maintMargin: str = "0"
    updateTime: int = 0


class _Account(Struct):
    totalWalletBalance: str
    totalMarginBalance: str
    availableBalance: str
    totalUnrealizedProfit: str = "0"
    totalInitialMargin: str = "0"
    totalMaintMargin: str = "0"
    maxWithdrawAmount: str = "0"
    assets: list[_Asset] = []
    positions: list[_AccountPosition] = []


class _Income(Struct):
    incomeType: str
    income: str
    asset: str
    time: int
    tranId: int | str
    symbol: str = ""
    info: str = ""
    tradeId: int | str = ""


class _Filter(Struct):
    filterType: str
    tickSize: str = "0"
    minPrice: str = "0"
    maxPrice: str = "0"
    stepSize: str = "0"
    minQty: str = "0"
    maxQty: str = "0"
    notional: str = "0"


class _Symbol(Struct):
    symbol: str
    status: str = ""
    contractType: str = ""
    pricePrecision: int = 8
    quantityPrecision: int = 8
    filters: list[_Filter] = []


class _RateLimit(Struct):
    rateLimitType: str
    interval: str
    intervalNum: int
    limit: int


class _ExchangeInfo(Struct):
    symbols: list[_Symbol]
    rateLimits: list[_RateLimit] = []


class _Ack(Struct):
    code: int
    msg: str = ""


class _Time(Struct):
    serverTime: int


_order_decoder = msgspec.json.Decoder(_OrderBody)
_order_list_decoder = msgspec.json.Decoder(list[_OrderBody])
_error_decoder = msgspec.json.Decoder(_ErrorBody)
_positions_decoder = msgspec.json.Decoder(list[_Position])
_symbol_config_decoder = msgspec.json.Decoder(list[_SymbolConfig])
_leverage_decoder = msgspec.json.Decoder(_Leverage)
_account_decoder = msgspec.json.Decoder(_Account)
_income_decoder = msgspec.json.Decoder(list[_Income])
_info_decoder = msgspec.json.Decoder(_ExchangeInfo)
_ack_decoder = msgspec.json.Decoder(_Ack)
_time_decoder = msgspec.json.Decoder(_Time)

Params = list[tuple[str, str]]
T = TypeVar("T")


class BinanceFuturesOrderFormat:
    """USD-M perpetual orders and account: every ``build_*`` returns a signed ``HttpRequest`` (parameters in
    the query string, empty body; general-info allows the query string for POST and DELETE too), every
    ``parse_*`` reads one answer. Order answers never raise (anything unreadable is ``unknown``); the others
    raise VenueError for the venue's error answer (its code and message kept) and ProtocolError for an
    unreadable one."""

    kind = KIND
    not_found_codes = NOT_FOUND_CODES  # a query or cancel of an order the venue does not have (open)
    status_unknown_codes = STATUS_UNKNOWN_CODES
    timestamp_codes = frozenset({ERR_TIMESTAMP})  # our clock offset drifted: resync, then resend
    statuses = STATUSES
    weights = RequestWeights(
        WEIGHT_NEW_ORDER, WEIGHT_QUERY_ORDER, WEIGHT_CANCEL_ORDER, WEIGHT_OPEN_ORDERS_SYMBOL,
        WEIGHT_OPEN_ORDERS_ALL, WEIGHT_CANCEL_ALL, WEIGHT_ACCOUNT, WEIGHT_MY_TRADES, WEIGHT_MY_TRADES,
        WEIGHT_EXCHANGE_INFO, WEIGHT_TIME, WEIGHT_ALL_ORDERS,
    )
    limits = DOCUMENTED_LIMITS

    # ----- requests
    def signed(self, method: str, path: str, params: Params, api_key: str, api_secret: str, timestamp_ms: int,
               recv_window_ms: int) -> HttpRequest:
        """``path?params&recvWindow=..&timestamp=..&signature=..`` with the key in ``X-MBX-APIKEY``."""
        params = [*params, ("recvWindow", str(recv_window_ms)), ("timestamp", str(timestamp_ms))]
        return signed_request(method, path, params, api_key, api_secret)

    def new_order_params(self, *, symbol: str, side: str, price: Decimal | str | None, qty: Decimal | str,
                         client_order_id: str, order_type: str = ORDER_LIMIT_IOC,
                         reduce_only: bool = False) -> Params:
        if side not in SIDES:
            raise ValueError(f"unknown side {side!r}")
        if not CLIENT_ID_RULE.fullmatch(client_order_id):
            raise ValueError(f"client order id {client_order_id!r} breaks ^[.A-Z:/a-z0-9_-]{{1,36}}$")
        params = [("symbol", symbol), ("side", side)]
        quantity = wire_decimal(qty, "quantity")
        if order_type == ORDER_LIMIT_IOC:
            if price is None:
                raise ValueError("a LIMIT IOC order needs a price")
            params += [("type", "LIMIT"), ("timeInForce", "IOC"), ("quantity", quantity),
                       ("price", wire_decimal(price, "price"))]
        elif order_type == ORDER_MARKET:
            params += [("type", "MARKET"), ("quantity", quantity)]  # MARKET takes no price, no timeInForce
        else:
            raise ValueError(f"unknown order type {order_type!r}")
        if reduce_only:
            # Sent only when true: the venue defaults to false and refuses the parameter in hedge mode.
            params.append(("reduceOnly", "true"))
        params.append(("newClientOrderId", client_order_id))
        params.append(("newOrderRespType", RESPONSE_TYPE))
        return params

    def build_new_order(
        self, *, symbol: str, side: str, price: Decimal | str | None, qty: Decimal | str, client_order_id: str,
        api_key: str, api_secret: str, timestamp_ms: int, recv_window_ms: int, order_type: str = ORDER_LIMIT_IOC,
        reduce_only: bool = False,
    ) -> HttpRequest:
        """POST /fapi/v1/order (TRADE): LIMIT IOC or MARKET, RESULT answer.
        https://developers.binance.com/en/docs/catalog/core-trading-derivatives-trading-usd-s-m-futures/api/rest-api/trade#new-order
        """
        params = self.new_order_params(symbol=symbol, side=side, price=price, qty=qty,
                                       client_order_id=client_order_id, order_type=order_type,
                                       reduce_only=reduce_only)
        return self.signed("POST", ORDER_PATH, params, api_key, api_secret, timestamp_ms, recv_window_ms)

    def build_close_position(
        self, *, symbol: str, position_amt: Decimal, step: Decimal, client_order_id: str, api_key: str,
        api_secret: str, timestamp_ms: int, recv_window_ms: int, order_type: str = ORDER_MARKET,
        price: Decimal | str | None = None,
    ) -> HttpRequest:
        """A reduce-only order against a one-way position: SELL a long, BUY a short, |positionAmt| floored to
        ``step`` (MARKET_LOT_SIZE's for a MARKET close). Reduce-only keeps a stale amount from opening the
        opposite side, and general-info exempts it from -1008 overload refusals."""
        if position_amt == 0:
            raise ValueError(f"{symbol}: no position to close")
        side = "SELL" if position_amt > 0 else "BUY"
        qty = wire_qty(abs(position_amt), step)
        if Decimal(qty) == 0:
            raise ValueError(f"{symbol}: position {position_amt} is below one step {step}")
        return self.build_new_order(
            symbol=symbol, side=side, price=price, qty=qty, client_order_id=client_order_id, api_key=api_key,
            api_secret=api_secret, timestamp_ms=timestamp_ms, recv_window_ms=recv_window_ms,
            order_type=order_type, reduce_only=True,
        )

    def build_query_order(self, *, symbol: str, client_order_id: str, api_key: str, api_secret: str,
                          timestamp_ms: int, recv_window_ms: int) -> HttpRequest:
        """GET /fapi/v1/order (USER_DATA) by origClientOrderId. The venue forgets CANCELED/EXPIRED orders
        without fills after 3 days, and every order after 90 days (-2013 then).
        https://developers.binance.com/en/docs/catalog/core-trading-derivatives-trading-usd-s-m-futures/api/rest-api/trade#query-order
        """
        params = [("symbol", symbol), ("origClientOrderId", client_order_id)]
        return self.signed("GET", ORDER_PATH, params, api_key, api_secret, timestamp_ms, recv_window_ms)

    def build_cancel_order(self, *, symbol: str, client_order_id: str, api_key: str, api_secret: str,
                           timestamp_ms: int, recv_window_ms: int) -> HttpRequest:
        """DELETE /fapi/v1/order (TRADE) by origClientOrderId.
        https://developers.binance.com/en/docs/catalog/core-trading-derivatives-trading-usd-s-m-futures/api/rest-api/trade#cancel-order
        """
        params = [("symbol", symbol), ("origClientOrderId", client_order_id)]
        return self.signed("DELETE", ORDER_PATH, params, api_key, api_secret, timestamp_ms, recv_window_ms)

    def build_open_orders(self, *, symbol: str | None, api_key: str, api_secret: str, timestamp_ms: int,
                          recv_window_ms: int) -> HttpRequest:
        """GET /fapi/v1/openOrders (USER_DATA); weight 1 with a symbol, 40 without.
        https://developers.binance.com/en/docs/catalog/core-trading-derivatives-trading-usd-s-m-futures/api/rest-api/trade#current-all-open-orders
        """
        params = [("symbol", symbol)] if symbol else []
        return self.signed("GET", OPEN_ORDERS_PATH, params, api_key, api_secret, timestamp_ms, recv_window_ms)

    def build_cancel_all(self, *, symbol: str, api_key: str, api_secret: str, timestamp_ms: int,
                         recv_window_ms: int) -> HttpRequest:
        """DELETE /fapi/v1/allOpenOrders (TRADE); answers ``{"code":200,"msg":..}`` (``parse_ack``), not the
        orders.
        https://developers.binance.com/en/docs/catalog/core-trading-derivatives-trading-usd-s-m-futures/api/rest-api/trade#cancel-all-open-orders
        """
        params = [("symbol", symbol)]
        return self.signed("DELETE", CANCEL_ALL_PATH, params, api_key, api_secret, timestamp_ms, recv_window_ms)

    def build_position_risk(self, *, symbol: str | None, api_key: str, api_secret: str, timestamp_ms: int,
                            recv_window_ms: int) -> HttpRequest:
        """GET /fapi/v3/positionRisk (USER_DATA): only symbols with a position or open orders.
        https://developers.binance.com/en/docs/catalog/core-trading-derivatives-trading-usd-s-m-futures/api/rest-api/trade#position-information-v3
        """
        params = [("symbol", symbol)] if symbol else []
        return self.signed("GET", POSITION_RISK_PATH, params, api_key, api_secret, timestamp_ms, recv_window_ms)

    def build_account(self, *, api_key: str, api_secret: str, timestamp_ms: int, recv_window_ms: int) -> HttpRequest:
        """GET /fapi/v3/account (USER_DATA).
        https://developers.binance.com/en/docs/catalog/core-trading-derivatives-trading-usd-s-m-futures/api/rest-api/account#account-information-v3
        """
        return self.signed("GET", ACCOUNT_PATH, [], api_key, api_secret, timestamp_ms, recv_window_ms)

    def build_symbol_config(self, *, symbol: str | None, api_key: str, api_secret: str, timestamp_ms: int,
                            recv_window_ms: int) -> HttpRequest:
        """GET /fapi/v1/symbolConfig (USER_DATA): margin type and leverage, which positionRisk V3 no longer
        carries.
        https://developers.binance.com/en/docs/catalog/core-trading-derivatives-trading-usd-s-m-futures/api/rest-api/account#symbol-configuration
        """
        params = [("symbol", symbol)] if symbol else []
        return self.signed("GET", SYMBOL_CONFIG_PATH, params, api_key, api_secret, timestamp_ms, recv_window_ms)

    def build_leverage(self, *, symbol: str, leverage: int, api_key: str, api_secret: str, timestamp_ms: int,
                       recv_window_ms: int) -> HttpRequest:
        """POST /fapi/v1/leverage (TRADE), 1..125.
        https://developers.binance.com/en/docs/catalog/core-trading-derivatives-trading-usd-s-m-futures/api/rest-api/trade#change-initial-leverage
        """
        if isinstance(leverage, bool) or not isinstance(leverage, int) or not 1 <= leverage <= MAX_LEVERAGE:
            raise ValueError(f"leverage must be an int in 1..{MAX_LEVERAGE}, got {leverage!r}")
        params = [("symbol", symbol), ("leverage", str(leverage))]
        return self.signed("POST", LEVERAGE_PATH, params, api_key, api_secret, timestamp_ms, recv_window_ms)

    def build_margin_type(self, *, symbol: str, margin: str, api_key: str, api_secret: str, timestamp_ms: int,
                          recv_window_ms: int) -> HttpRequest:
        """POST /fapi/v1/marginType (TRADE), ISOLATED or CROSSED.
        https://developers.binance.com/en/docs/catalog/core-trading-derivatives-trading-usd-s-m-futures/api/rest-api/trade#change-margin-type
        """
        if margin not in (MARGIN_ISOLATED, MARGIN_CROSSED):
            raise ValueError(f"margin type must be {MARGIN_ISOLATED} or {MARGIN_CROSSED}, got {margin!r}")
        params = [("symbol", symbol), ("marginType", margin)]
        return self.signed("POST", MARGIN_TYPE_PATH, params, api_key, api_secret, timestamp_ms, recv_window_ms)

    def build_income(self, *, symbol: str | None = None, income_type: str | None = INCOME_FUNDING_FEE,
                     start_ms: int | None = None, end_ms: int | None = None, limit: int = INCOME_MAX_LIMIT,
                     api_key: str, api_secret: str, timestamp_ms: int, recv_window_ms: int) -> HttpRequest:
        """GET /fapi/v1/income (USER_DATA), funding fees by default. Without times the venue answers the
        last 7 days; it keeps three months.
        https://developers.binance.com/en/docs/catalog/core-trading-derivatives-trading-usd-s-m-futures/api/rest-api/account#get-income-history
        """
        params: Params = [("symbol", symbol)] if symbol else []
        if income_type:
            params.append(("incomeType", income_type))
        if start_ms is not None:
            params.append(("startTime", str(start_ms)))
        if end_ms is not None:
            params.append(("endTime", str(end_ms)))
        params.append(("limit", str(max(1, min(limit, INCOME_MAX_LIMIT)))))
        return self.signed("GET", INCOME_PATH, params, api_key, api_secret, timestamp_ms, recv_window_ms)

    def build_exchange_info(self, symbols: Sequence[str] = ()) -> HttpRequest:
        """GET /fapi/v1/exchangeInfo (NONE): every symbol; the page documents no parameters, so ``symbols``
        is accepted for the OrderFormat signature and ignored.
        https://developers.binance.com/en/docs/catalog/core-trading-derivatives-trading-usd-s-m-futures/api/rest-api/market-data#exchange-information
        """
        return HttpRequest("GET", EXCHANGE_INFO_PATH, [], b"")

    def build_time(self) -> HttpRequest:
        """GET /fapi/v1/time (NONE).
        https://developers.binance.com/en/docs/catalog/core-trading-derivatives-trading-usd-s-m-futures/api/rest-api/market-data#check-server-time
        """
        return HttpRequest("GET", TIME_PATH, [], b"")

    # ----- order answers (never raise)
    def parse_error(self, http_status: int, body: bytes) -> tuple[int, str]:
        return parse_code_msg(http_status, body)

    def parse_order(
        self, http_status: int, body: bytes, headers: Mapping[str, str], *, new_order: bool = True
    ) -> OrderAnswer:
        return self.parse_order_detail(http_status, body, headers, new_order=new_order).answer

    def parse_order_detail(
        self, http_status: int, body: bytes, headers: Mapping[str, str], *, new_order: bool = True
    ) -> FuturesOrder:
        """A new-order, query or cancel answer.

        429/418, and -1008 on any status, are throttled: the request did not take effect. 5xx (503 "Unknown
        error" included) and 408 are unknown: the order may exist, so query it, never resend. A 4xx with
        ``{"code","msg"}`` is rejected, unless its code leaves the outcome open (-1000/-1006/-1007)."""
        if http_status in THROTTLED_HTTP:
            code, msg = self.parse_error(http_status, body)
            wait = retry_after(headers) or 0.0
            return _no_order(answer_without_order(ANSWER_THROTTLED, "", code, msg, http_status, wait,
                                                  new_order=new_order))
        if not 200 <= http_status < 300:
            code, msg = self.parse_error(http_status, body)
            if code == ERR_THROTTLED:
                kind = ANSWER_THROTTLED
            elif http_status >= 500 or http_status == HTTP_BACKEND_TIMEOUT or code == 0:
                # code 0: no venue error object (a proxy's or the WAF's page): nothing says the order died
                kind = ANSWER_UNKNOWN
            else:
                kind = ANSWER_UNKNOWN if code in self.status_unknown_codes else ANSWER_REJECTED
            return _no_order(answer_without_order(kind, "", code, msg, http_status, new_order=new_order))
        try:
            return self._order(_order_decoder.decode(body), http_status, new_order)
        except (msgspec.DecodeError, ValueError) as exc:
            msg = f"HTTP {http_status}: unreadable order answer ({exc})"
            return _no_order(answer_without_order(ANSWER_UNKNOWN, "", 0, msg, http_status, new_order=new_order))

    def _order(self, r: _OrderBody, http_status: int, new_order: bool) -> FuturesOrder:
        if r.orderId is None:
            if r.code is not None and r.code < 0:
                kind = ANSWER_UNKNOWN if r.code in self.status_unknown_codes else ANSWER_REJECTED
                if r.code == ERR_THROTTLED:
                    kind = ANSWER_THROTTLED
                return _no_order(answer_without_order(kind, r.clientOrderId, r.code, r.msg or "", http_status,
                                                      new_order=new_order))
            raise ValueError("no orderId")
        venue_status = r.status or ""
        status = self.statuses.get(venue_status) if venue_status else NEW  # an ACK: accepted, not reported
        if status is None:
            raise ValueError(f"unknown order status {venue_status!r}")
        answer = OrderAnswer(
            ANSWER_OK, status, venue_status, str(r.orderId), r.clientOrderId, dec(r.executedQty), dec(r.cumQuote),
            None, 0, "", http_status, 0.0,
        )
        return FuturesOrder(answer, r.symbol, r.side, r.type, r.timeInForce, r.positionSide, dec(r.price),
                            dec(r.avgPrice), dec(r.origQty), r.reduceOnly, r.updateTime)

    def not_found(self, answer: OrderAnswer) -> bool:
        """The venue says it has no such order (a query or cancel of an id it never accepted or closed)."""
        return answer.kind == ANSWER_REJECTED and answer.error_code in self.not_found_codes

    def parse_order_list(self, http_status: int, body: bytes, headers: Mapping[str, str]) -> list[OrderAnswer]:
        return [o.answer for o in self.parse_order_list_detail(http_status, body, headers)]

    def parse_order_list_detail(self, http_status: int, body: bytes, headers: Mapping[str, str]) -> list[FuturesOrder]:
        """openOrders: VenueError for an error answer, ProtocolError for an unreadable one; an item with an
        unreadable status is ``unknown``."""
        self._check_ok(http_status, body)
        try:
            items = _order_list_decoder.decode(body)
        except msgspec.DecodeError as exc:
            raise ProtocolError(f"{self.kind}: unreadable order list ({exc})") from None
        out: list[FuturesOrder] = []
        for item in items:
            try:
                out.append(self._order(item, http_status, False))
            except ValueError as exc:
                out.append(_no_order(answer_without_order(ANSWER_UNKNOWN, item.clientOrderId, 0, str(exc),
                                                          http_status, new_order=False)))
        return out

    # ----- other answers (VenueError / ProtocolError)
    def _check_ok(self, http_status: int, body: bytes) -> None:
        if not 200 <= http_status < 300:
            code, msg = self.parse_error(http_status, body)
            raise VenueError(code, msg, http_status)

    def _decode(self, decoder: msgspec.json.Decoder[T], http_status: int, body: bytes, what: str) -> T:
        self._check_ok(http_status, body)
        try:
            return decoder.decode(body)
        except msgspec.DecodeError as exc:
            # An error object with a 2xx status would land here too: keep its code if it is one.
            try:
                err = _error_decoder.decode(body)
            except msgspec.DecodeError:
                raise ProtocolError(f"{self.kind}: unreadable {what} answer ({exc})") from None
            raise VenueError(err.code, err.msg, http_status) from None

    def parse_ack(self, http_status: int, body: bytes) -> str:
        """``{"code":200,"msg":..}`` (marginType, cancel all): the message; VenueError for anything else."""
        a = self._decode(_ack_decoder, http_status, body, "acknowledgement")
        if a.code != 200:
            raise VenueError(a.code, a.msg, http_status)
        return a.msg

    def parse_margin_type(self, http_status: int, body: bytes) -> bool:
        """True: changed; False: it already was that type (-4046), which the caller wanted anyway."""
        try:
            self.parse_ack(http_status, body)
        except VenueError as exc:
            if exc.code == ERR_MARGIN_TYPE_UNCHANGED:
                return False
            raise
        return True

    def parse_leverage(self, http_status: int, body: bytes) -> LeverageAnswer:
        r = self._decode(_leverage_decoder, http_status, body, "leverage")
        return self._read("leverage", lambda: LeverageAnswer(r.symbol, r.leverage, dec(r.maxNotionalValue)))

    def parse_positions(self, http_status: int, body: bytes) -> list[FuturesPosition]:
        """positionRisk V3 (V2's shape is read too: it adds leverage and marginType)."""
        items = self._decode(_positions_decoder, http_status, body, "positionRisk")
        return self._read("positionRisk", lambda: [_position(p) for p in items])

    def parse_symbol_config(self, http_status: int, body: bytes) -> dict[str, SymbolConfig]:
        items = self._decode(_symbol_config_decoder, http_status, body, "symbolConfig")
        return self._read("symbolConfig", lambda: {
            s.symbol: SymbolConfig(s.symbol, margin_type(s.marginType), s.leverage, dec(s.maxNotionalValue),
                                   s.isAutoAddMargin)
            for s in items
        })

    def parse_account(self, http_status: int, body: bytes) -> FuturesAccount:
        a = self._decode(_account_decoder, http_status, body, "account")
        return self._read("account", lambda: _account(a))

    def parse_income(self, http_status: int, body: bytes) -> list[IncomeRecord]:
        items = self._decode(_income_decoder, http_status, body, "income")
        return self._read("income", lambda: [
            IncomeRecord(i.symbol, i.incomeType, sdec(i.income), i.asset, i.time, str(i.tranId), str(i.tradeId),
                         i.info)
            for i in items
        ])

    def parse_exchange_info(self, body: bytes) -> dict[str, SymbolRules]:
        """The spot-shaped rules (what the OrderFormat protocol returns)."""
        return {s: r.rules for s, r in self.parse_exchange_info_full(body).rules.items()}

    def parse_exchange_info_full(self, body: bytes) -> FuturesExchangeInfo:
        """Every symbol's rules and the rate limits (documented ones where rateLimits names none)."""
        try:
            info = _info_decoder.decode(body)
            rules = {s.symbol: _rules(s) for s in info.symbols}
        except (msgspec.DecodeError, ValueError) as exc:
            raise ProtocolError(f"{self.kind}: unreadable exchangeInfo ({exc})") from None
        return FuturesExchangeInfo(rules, _limits(info.rateLimits))

    def parse_time(self, body: bytes) -> int:
        try:
            return _time_decoder.decode(body).serverTime
        except msgspec.DecodeError as exc:
            raise ProtocolError(f"{self.kind}: unreadable time answer ({exc})") from None

    def parse_rate_headers(self, headers: Mapping[str, str]) -> RateHeaders:
        """The common shape: futures count orders per minute, not per day, so ``orders_1d`` is None."""
        h = self.parse_futures_rate_headers(headers)
        return RateHeaders(h.weight_1m, h.orders_10s, None, h.retry_after_s)

    def parse_futures_rate_headers(self, headers: Mapping[str, str]) -> FuturesRateHeaders:
        return FuturesRateHeaders(
            header_int(headers, WEIGHT_HEADER),
            header_int(headers, ORDER_COUNT_1M_HEADER),
            header_int(headers, ORDER_COUNT_10S_HEADER),
            retry_after(headers),
        )

    def _read(self, what: str, build: Callable[[], T]) -> T:
        try:
            return build()
        except ValueError as exc:
            raise ProtocolError(f"{self.kind}: unreadable {what} answer ({exc})") from None


def _no_order(answer: OrderAnswer) -> FuturesOrder:
    return FuturesOrder(answer, "", "", "", "", "", ZERO, ZERO, ZERO, False, 0)


def _position(p: _Position) -> FuturesPosition:
    return FuturesPosition(
        p.symbol, p.positionSide, sdec(p.positionAmt), dec(p.entryPrice), dec(p.breakEvenPrice), dec(p.markPrice),
        sdec(p.unRealizedProfit), dec(p.liquidationPrice), sdec(p.notional), p.marginAsset, dec(p.isolatedMargin),
        dec(p.isolatedWallet), int(p.leverage) if p.leverage is not None else None,
        margin_type(p.marginType) if p.marginType is not None else None, p.updateTime,
        dec(p.initialMargin) if p.initialMargin is not None else None,
    )


def with_symbol_config(
    positions: Sequence[FuturesPosition], configs: Mapping[str, SymbolConfig]
) -> list[FuturesPosition]:
    """V3 positions completed with symbolConfig's leverage and margin type (kept where the position has them)."""
    out = []
    for p in positions:
        cfg = configs.get(p.symbol)
        if cfg is not None:
            p = p._replace(leverage=p.leverage if p.leverage is not None else cfg.leverage,
                           margin_type=p.margin_type or cfg.margin_type)
        out.append(p)
    return out


def _account(a: _Account) -> FuturesAccount:
    assets = {
        x.asset: FuturesBalance(
            x.asset, sdec(x.walletBalance), sdec(x.unrealizedProfit), sdec(x.marginBalance), sdec(x.availableBalance),
            sdec(x.crossWalletBalance), sdec(x.crossUnPnl), dec(x.initialMargin), dec(x.maintMargin),
            sdec(x.maxWithdrawAmount), x.updateTime,
        )
        for x in a.assets
    }
    positions = tuple(
        AccountPosition(
            p.symbol, p.positionSide, sdec(p.positionAmt), sdec(p.unrealizedProfit), sdec(p.notional),
            dec(p.initialMargin), dec(p.maintMargin), dec(p.isolatedMargin), dec(p.isolatedWallet), p.updateTime,
        )
        for p in a.positions
    )
    return FuturesAccount(
        sdec(a.totalWalletBalance), sdec(a.totalMarginBalance), sdec(a.availableBalance),
        sdec(a.totalUnrealizedProfit), dec(a.totalInitialMargin), dec(a.totalMaintMargin),
        sdec(a.maxWithdrawAmount), assets, positions,
    )


def _rules(s: _Symbol) -> FuturesRules:
    """0 (or an absent filter) disables a rule, as common-definition says of each filter's fields."""
    tick = step = min_qty = max_qty = min_price = max_price = min_notional = ZERO
    market_step = market_min = market_max = ZERO
    for f in s.filters:
        if f.filterType == "PRICE_FILTER":
            tick, min_price, max_price = dec(f.tickSize), dec(f.minPrice), dec(f.maxPrice)
        elif f.filterType == "LOT_SIZE":
            step, min_qty, max_qty = dec(f.stepSize), dec(f.minQty), dec(f.maxQty)
        elif f.filterType == "MARKET_LOT_SIZE":
            market_step, market_min, market_max = dec(f.stepSize), dec(f.minQty), dec(f.maxQty)
        elif f.filterType == "MIN_NOTIONAL":
            min_notional = dec(f.notional)  # futures name the field "notional" (spot: "minNotional")
    # pricePrecision/quantityPrecision are documented as "please do not use" for tick and step: only the
    # decimals of a symbol that publishes no tick or step fall back on them.
    price_decimals = decimals(tick) if tick else s.pricePrecision
    qty_decimals = decimals(step) if step else s.quantityPrecision
    p = plain_decimal
    rules = SymbolRules(s.symbol, p(tick), p(step), p(min_qty), p(min_notional), price_decimals, qty_decimals)
    return FuturesRules(rules, p(market_step), p(market_min), p(market_max), p(max_qty), p(min_price),
                        p(max_price), s.status, s.contractType)


def _limits(items: Sequence[_RateLimit]) -> FuturesLimits:
    weight, per_minute, per_10s = DOCUMENTED_LIMITS
    for r in items:
        if r.rateLimitType == "REQUEST_WEIGHT" and r.interval == "MINUTE" and r.intervalNum == 1:
            weight = r.limit
        elif r.rateLimitType == "ORDERS" and r.interval == "MINUTE" and r.intervalNum == 1:
            per_minute = r.limit
        elif r.rateLimitType == "ORDERS" and r.interval == "SECOND" and r.intervalNum == 10:
            per_10s = r.limit
    return FuturesLimits(weight, per_minute, per_10s)
