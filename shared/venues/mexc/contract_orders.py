"""MEXC contract (perpetual) v1 orders, positions and account: signed requests and parsed answers (sans I/O).

Docs: https://mexcdevelop.github.io/apidocs/contract_v1_en/ (source: github.com/mexcdevelop/apidocs, branch
``contract_v1_en``, ``source/index.html.md``, 2025-04-17). Private REST lives under
``https://contract.mexc.com/api/v1/private/``; ``HttpRequest.path`` holds the path and query, as on spot.

**Order entry through the API is restricted.** Since 2022-07-25 the docs mark every order placement and
cancellation endpoint "Under maintenance" ("place order endpoints and cancel orders endpoints will be closed
temporarily. The query endpoints can still be used"); MEXC enables them only for some accounts (institutional /
market-maker keys), and ``contract/detail`` says per contract whether the API may trade it (``apiAllowed``).
Expect an ordinary key's submit and cancel to be refused; the query, position, asset and funding endpoints stay
open to any key with read permission.

Signing (#authentication-method): ``Signature`` = lowercase hex HMAC-SHA256(secret, accessKey + Request-Time +
parameter string), where the parameter string is the dictionary-sorted ``k=v&...`` query of a GET/DELETE (values
URL-encoded, null values left out, path parameters not signed) or the JSON body of a POST exactly as sent. Headers:
``ApiKey``, ``Request-Time`` (ms), ``Signature``, ``Content-Type: application/json`` and an optional
``Recv-Window`` in *seconds* (#time-security: default 10, at most 60).

Quantities: an order's ``vol`` counts contracts of ``contractSize`` base units each, in steps of ``volUnit``; the
engine thinks in base units, so ``base_to_contracts`` floors to whole steps (never up) and ``contracts_to_base``
multiplies back, both exact Decimals. Every number sent is Decimal text (never a float repr); every number read
is decoded straight into a Decimal from its JSON text.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import NamedTuple

import msgspec
from msgspec import Struct

from shared.errors import ProtocolError, VenueError
from shared.venues.common import (
    ANSWER_OK,
    ANSWER_REJECTED,
    ANSWER_THROTTLED,
    ANSWER_UNKNOWN,
    CANCELED,
    FILLED,
    NEW,
    ORDER_LIMIT_IOC,
    ORDER_MARKET,
    PARTIALLY_FILLED,
    REJECTED,
    ZERO,
    HttpRequest,
    OrderAnswer,
    SymbolRules,
    answer_without_order,
    hmac_sha256_hex,
    query_string,
)
from shared.venues.spot_rest import THROTTLED_HTTP, decimals, plain_decimal, retry_after

# ----- wire constants (contract v1; shared/venues/mexc/constants.py holds the spot and funding-stream ones)
REST_URL = "https://contract.mexc.com"
PRIVATE_PREFIX = "/api/v1/private"
SUBMIT_PATH = PRIVATE_PREFIX + "/order/submit"
CANCEL_PATH = PRIVATE_PREFIX + "/order/cancel"
CANCEL_EXTERNAL_PATH = PRIVATE_PREFIX + "/order/cancel_with_external"
QUERY_EXTERNAL_PATH = PRIVATE_PREFIX + "/order/external/"  # + {symbol}/{external_oid}
QUERY_ORDER_PATH = PRIVATE_PREFIX + "/order/get/"  # + {order_id}
OPEN_ORDERS_PATH = PRIVATE_PREFIX + "/order/list/open_orders"  # + /{symbol} (optional path parameter)
OPEN_POSITIONS_PATH = PRIVATE_PREFIX + "/position/open_positions"
ASSETS_PATH = PRIVATE_PREFIX + "/account/assets"
FUNDING_RECORDS_PATH = PRIVATE_PREFIX + "/position/funding_records"
CANCEL_ALL_PATH = PRIVATE_PREFIX + "/order/cancel_all"
DEAL_DETAILS_PATH = PRIVATE_PREFIX + "/order/deal_details/"  # + {order_id}
CONTRACT_DETAIL_PATH = "/api/v1/contract/detail"
PING_PATH = "/api/v1/contract/ping"  # the server time
TICKER_PATH = "/api/v1/contract/ticker"  # fair (mark) price, index, bid/ask per contract

API_KEY_HEADER = "ApiKey"
TIME_HEADER = "Request-Time"
SIGNATURE_HEADER = "Signature"
RECV_WINDOW_HEADER = "Recv-Window"
JSON_CONTENT = ("Content-Type", "application/json")
MAX_RECV_WINDOW_S = 60  # #time-security: "with a maximum value of 60"
MAX_EXTERNAL_OID = 32  # error 2030: "External order ID is too long (Max. 32 bits)"
MAX_PAGE_SIZE = 100  # open orders and funding records: "page size, default 20, maximum 100"

# Documented rate limits: 20 requests / 2 s for each private endpoint used here, 1 / 5 s for contract/detail.
PRIVATE_LIMIT = (20, 2.0)
CONTRACT_DETAIL_LIMIT = (1, 5.0)

# side: "order direction 1 open long, 2 close short, 3 open short, 4 close long"
SIDE_OPEN_LONG = 1
SIDE_CLOSE_SHORT = 2
SIDE_OPEN_SHORT = 3
SIDE_CLOSE_LONG = 4
CLOSE_SIDES = frozenset({SIDE_CLOSE_SHORT, SIDE_CLOSE_LONG})
# type: "1 price limited order, 2 Post Only Maker, 3 transact or cancel instantly, 4 transact completely or cancel
# completely, 5 market orders, 6 convert market price to current price"
TYPE_LIMIT = 1
TYPE_POST_ONLY = 2
TYPE_IOC = 3
TYPE_FOK = 4
TYPE_MARKET = 5
TYPE_MARKET_TO_LIMIT = 6
OPEN_ISOLATED = 1
OPEN_CROSS = 2
POSITION_LONG = 1
POSITION_SHORT = 2
# order state: "1 uninformed, 2 uncompleted, 3 completed, 4 cancelled, 5 invalid" (not 1 open / 2 filled: the
# docs and Mexc.Net's FuturesOrderStatus both map 1 and 2 to open, 3 filled, 4 cancelled, 5 invalid)
STATE_UNINFORMED = 1
STATE_UNCOMPLETED = 2
STATE_COMPLETED = 3
STATE_CANCELLED = 4
STATE_INVALID = 5
POSITION_HOLDING = 1  # position state: 1 holding, 2 system auto-holding, 3 closed

# Error codes (#error-code); 2040/2041 appear only in the cancel answer's example.
ERR_INTERNAL = 500
ERR_BUSY = 501
ERR_UNAUTHORIZED = 401
ERR_TOO_FREQUENT = 510
ERR_REQUEST_TIME = 513  # "Invalid request (for open api serves time more or less than 10s)"
ERR_PARAM = 600
ERR_SIGNATURE = 602
ERR_REPEATED = 603
ERR_PUBLIC_ABNORMAL = 9999
ERR_BALANCE = 2005
ERR_QUANTITY = 2011
ERR_PRECISION = 2015
ERR_EXTERNAL_OID_LONG = 2030
ERR_ORDER_NOT_EXIST = 2040
ERR_NOT_CANCELLABLE = 2041

# Codes that do not say whether a new order exists: query it, never resend. "Repeated requests" is among them
# because the first of the repeated requests may have gone through.
STATUS_UNKNOWN_CODES = frozenset({ERR_INTERNAL, ERR_BUSY, ERR_PUBLIC_ABNORMAL, ERR_REPEATED})
THROTTLE_CODES = frozenset({ERR_TOO_FREQUENT})
NOT_FOUND_CODES = frozenset({ERR_ORDER_NOT_EXIST})
TIMESTAMP_CODES = frozenset({ERR_REQUEST_TIME})

# Text that may go into a URL path (symbol, externalOid) without encoding: path parameters are not signed, so
# anything the server would decode differently is refused here instead.
_PATH_SAFE = re.compile(r"[A-Za-z0-9_-]+")

Json = str | int | bool | Decimal


class ContractRules(NamedTuple):
    """One contract from ``contract/detail``; ``vol_unit``/``min_vol``/``max_vol`` count contracts."""

    symbol: str
    base: str
    quote: str
    settle: str
    contract_size: Decimal  # base units per contract
    price_unit: Decimal  # the price tick
    vol_unit: Decimal  # the volume step, in contracts
    min_vol: Decimal
    max_vol: Decimal
    min_leverage: int
    max_leverage: int
    price_scale: int
    vol_scale: int
    taker_fee: Decimal
    maker_fee: Decimal
    state: int  # 0 enabled, 1 delivery, 2 completed, 3 offline, 4 pause
    api_allowed: bool  # whether the API may trade this contract
    maint_margin_rate: Decimal = ZERO  # maintenanceMarginRate: the first risk tier's

    def symbol_rules(self) -> SymbolRules:
        """The engine's rules in base units: step = volUnit × contractSize, minimum = minVol × contractSize."""
        step = plain_decimal(self.vol_unit * self.contract_size)
        return SymbolRules(
            self.symbol, plain_decimal(self.price_unit), step, plain_decimal(self.min_vol * self.contract_size),
            ZERO, max(self.price_scale, decimals(self.price_unit)), decimals(step),
        )


class ContractOrder(NamedTuple):
    """One order as a query or a list reports it; volumes in contracts, status canonical (see ``STATUSES``)."""

    order_id: str
    client_order_id: str  # externalOid ("" when the order has none)
    symbol: str
    side: int
    order_type: int
    open_type: int
    state: int
    status: str
    price: Decimal
    vol: Decimal
    deal_vol: Decimal
    deal_avg_price: Decimal
    taker_fee: Decimal
    maker_fee: Decimal
    fee_currency: str
    leverage: int
    position_id: str
    category: int
    error_code: int  # the order's own error (0 normal, 8 system cancelled, ...), not an envelope code
    create_ms: int
    update_ms: int


class CancelResult(NamedTuple):
    """What a cancel answer says about one order: ``ok`` means the venue took the cancel, not the final state
    (query the order for that); ``not_found`` is code 2040."""

    kind: str  # ANSWER_OK | ANSWER_REJECTED | ANSWER_UNKNOWN | ANSWER_THROTTLED
    order_id: str
    client_order_id: str
    error_code: int
    error_msg: str
    http_status: int

    @property
    def ok(self) -> bool:
        return self.kind == ANSWER_OK

    @property
    def not_found(self) -> bool:
        return self.kind == ANSWER_REJECTED and self.error_code in NOT_FOUND_CODES


class ContractPosition(NamedTuple):
    position_id: str
    symbol: str
    position_type: int  # POSITION_LONG | POSITION_SHORT
    open_type: int  # OPEN_ISOLATED | OPEN_CROSS
    state: int
    hold_vol: Decimal  # contracts
    frozen_vol: Decimal
    hold_avg_price: Decimal
    open_avg_price: Decimal
    liquidate_price: Decimal
    leverage: int
    im: Decimal  # initial margin
    realised: Decimal  # signed
    hold_fee: Decimal  # signed: positive received, negative paid
    create_ms: int
    update_ms: int


class ContractAsset(NamedTuple):
    currency: str
    position_margin: Decimal
    frozen_balance: Decimal
    available_balance: Decimal
    cash_balance: Decimal  # "drawable balance"
    equity: Decimal
    unrealized: Decimal  # signed


class FundingRecord(NamedTuple):
    record_id: str
    symbol: str
    position_id: str  # "" when the answer omits it (the docs' example does)
    position_type: int
    position_value: Decimal
    funding: Decimal  # signed: positive received, negative paid
    rate: Decimal  # signed
    settle_ms: int


class ContractDeal(NamedTuple):
    """One fill of an order (``order/deal_details``); ``vol`` in contracts, ``fee`` paid (> 0) in fee_currency."""

    deal_id: str
    symbol: str
    side: int
    vol: Decimal
    price: Decimal
    fee: Decimal
    fee_currency: str
    profit: Decimal  # signed
    taker: bool
    order_id: str
    time_ms: int


class ContractTicker(NamedTuple):
    """One contract's ``contract/ticker``: ``fair_price`` is the mark price positions are valued at."""

    symbol: str
    fair_price: Decimal
    index_price: Decimal
    last_price: Decimal
    bid1: Decimal
    ask1: Decimal
    funding_rate: Decimal  # signed
    time_ms: int


class FundingPage(NamedTuple):
    records: list[FundingRecord]
    page: int
    total_pages: int
    total_count: int


STATUSES = {
    STATE_UNINFORMED: NEW,  # accepted, not yet in the book
    STATE_UNCOMPLETED: NEW,  # PARTIALLY_FILLED once dealVol > 0
    STATE_COMPLETED: FILLED,
    STATE_CANCELLED: CANCELED,  # an IOC remainder too: dealVol tells what filled
    STATE_INVALID: REJECTED,
}


# ----- quantities
def base_to_contracts(base_qty: Decimal, rules: ContractRules) -> Decimal:
    """``base_qty`` as contracts, floored to whole ``volUnit`` steps: never more than asked for. ``//`` is exact
    integer division on Decimals (a rounded quotient could round 0.999… up to 1)."""
    if not base_qty.is_finite() or base_qty < 0:
        raise ValueError(f"not a finite non-negative quantity: {base_qty}")
    steps = base_qty // (rules.contract_size * rules.vol_unit)
    return plain_decimal(steps * rules.vol_unit)


def contracts_to_base(contracts: Decimal, rules: ContractRules) -> Decimal:
    if not contracts.is_finite() or contracts < 0:
        raise ValueError(f"not a finite non-negative volume: {contracts}")
    return plain_decimal(contracts * rules.contract_size)


def contract_side(side: str, *, close: bool) -> int:
    """The engine's BUY/SELL as a contract side: buying opens a long or closes a short, selling opens a short
    or closes a long."""
    if side == "BUY":
        return SIDE_CLOSE_SHORT if close else SIDE_OPEN_LONG
    if side == "SELL":
        return SIDE_CLOSE_LONG if close else SIDE_OPEN_SHORT
    raise ValueError(f"unknown side {side!r}")


# ----- signing and bodies
def sign(api_key: str, api_secret: str, timestamp_ms: int, parameter_string: str) -> str:
    """#authentication-method: HMAC-SHA256 over accessKey + timestamp + parameter string, lowercase hex."""
    return hmac_sha256_hex(api_secret, f"{api_key}{timestamp_ms}{parameter_string}")


def wire_decimal(value: Decimal) -> str:
    """Fixed-point text of a finite, non-negative Decimal (``1E-7`` → ``0.0000001``): no float repr, no exponent."""
    if not value.is_finite() or value < 0:
        raise ValueError(f"not a finite non-negative decimal: {value}")
    return format(value, "f")


def json_body(fields: Sequence[tuple[str, Json | None]]) -> str:
    """Compact JSON object in the given key order, ``None`` left out (the docs: null parameters are not signed,
    so they are not sent). Decimals are written as JSON numbers from their text."""
    parts: list[str] = []
    for key, value in fields:
        if value is None:
            continue
        if isinstance(value, bool):  # before int: bool is an int
            text = "true" if value else "false"
        elif isinstance(value, int):
            text = str(value)
        elif isinstance(value, Decimal):
            text = wire_decimal(value)
        elif isinstance(value, str):
            text = msgspec.json.encode(value).decode()
        else:  # a float would go out as its repr
            raise TypeError(f"{key}: send a Decimal, int, bool or str, not {type(value).__name__}")
        parts.append(f"{msgspec.json.encode(key).decode()}:{text}")
    return "{" + ",".join(parts) + "}"


def _path_part(value: str, what: str) -> str:
    if not _PATH_SAFE.fullmatch(value):
        raise ValueError(f"{what} {value!r} cannot go into a URL path (letters, digits, '_' and '-' only)")
    return value


def _client_id(client_order_id: str) -> str:
    if len(client_order_id) > MAX_EXTERNAL_OID:
        raise ValueError(f"externalOid longer than {MAX_EXTERNAL_OID}: {client_order_id!r}")
    return _path_part(client_order_id, "externalOid")


def _recv_window_header(recv_window_ms: int) -> list[tuple[str, str]]:
    """The docs give Recv-Window in seconds (default 10, at most 60): whole seconds, rounded up so the window is
    never narrower than asked; 0 leaves the header out (the venue's 10 s)."""
    if recv_window_ms <= 0:
        return []
    return [(RECV_WINDOW_HEADER, str(min(MAX_RECV_WINDOW_S, math.ceil(recv_window_ms / 1000))))]


def signed_get(path: str, params: Sequence[tuple[str, str | None]], api_key: str, api_secret: str,
               timestamp_ms: int, recv_window_ms: int = 0) -> HttpRequest:
    """A private GET: parameters sorted by name, URL-encoded, sent in that order and signed as sent."""
    present = sorted((k, v) for k, v in params if v is not None)
    qs = query_string(present)
    headers = [
        (API_KEY_HEADER, api_key), (TIME_HEADER, str(timestamp_ms)),
        (SIGNATURE_HEADER, sign(api_key, api_secret, timestamp_ms, qs)), JSON_CONTENT,
        *_recv_window_header(recv_window_ms),
    ]
    return HttpRequest("GET", f"{path}?{qs}" if qs else path, headers, b"")


def signed_post(path: str, body: str, api_key: str, api_secret: str, timestamp_ms: int,
                recv_window_ms: int = 0) -> HttpRequest:
    """A private POST: the signature covers the JSON body text, and exactly that text is sent."""
    headers = [
        (API_KEY_HEADER, api_key), (TIME_HEADER, str(timestamp_ms)),
        (SIGNATURE_HEADER, sign(api_key, api_secret, timestamp_ms, body)), JSON_CONTENT,
        *_recv_window_header(recv_window_ms),
    ]
    return HttpRequest("POST", path, headers, body.encode())


# ----- JSON answers (unknown fields skipped; numbers decoded from their text into Decimals)
Id = int | str
Time = int | str  # the docs' list template writes "" for times


class _Envelope(Struct):
    success: bool = False
    code: int = 0
    message: str | None = ""  # null values are left to default alike
    data: msgspec.Raw = msgspec.Raw(b"null")


class _SubmitData(Struct):
    orderId: Id


class _Order(Struct):
    orderId: Id
    symbol: str
    side: int
    state: int
    vol: Decimal
    price: Decimal = ZERO
    orderType: int = 0
    openType: int = 0
    dealVol: Decimal = ZERO
    dealAvgPrice: Decimal = ZERO
    takerFee: Decimal = ZERO
    makerFee: Decimal = ZERO
    feeCurrency: str | None = ""
    leverage: int = 0
    positionId: Id = ""
    category: int = 0
    externalOid: str | None = None
    errorCode: int = 0
    createTime: Time = 0
    updateTime: Time = 0


class _CancelItem(Struct):
    orderId: Id | None = None
    errorCode: int = 0
    errorMsg: str | None = ""


class _Position(Struct):
    positionId: Id
    symbol: str
    positionType: int
    openType: int
    holdVol: Decimal
    holdAvgPrice: Decimal
    state: int = POSITION_HOLDING
    frozenVol: Decimal = ZERO
    openAvgPrice: Decimal = ZERO
    liquidatePrice: Decimal = ZERO
    leverage: int = 0
    im: Decimal = ZERO
    realised: Decimal = ZERO
    holdFee: Decimal = ZERO
    createTime: Time = 0
    updateTime: Time = 0


class _Asset(Struct):
    currency: str
    availableBalance: Decimal
    equity: Decimal
    positionMargin: Decimal = ZERO
    frozenBalance: Decimal = ZERO
    cashBalance: Decimal = ZERO
    unrealized: Decimal = ZERO


class _Funding(Struct):
    id: Id
    symbol: str
    positionType: int
    funding: Decimal
    rate: Decimal
    settleTime: int
    positionValue: Decimal = ZERO
    positionId: Id = ""


class _FundingPage(Struct):
    resultList: list[_Funding]
    currentPage: int = 1
    totalPage: int = 1
    totalCount: int = 0


class _Contract(Struct):
    symbol: str
    contractSize: Decimal
    priceUnit: Decimal
    volUnit: Decimal
    minVol: Decimal
    baseCoin: str = ""
    quoteCoin: str = ""
    settleCoin: str = ""
    maxVol: Decimal = ZERO
    minLeverage: int = 1
    maxLeverage: int = 1
    priceScale: int = 0
    volScale: int = 0
    takerFeeRate: Decimal = ZERO
    makerFeeRate: Decimal = ZERO
    state: int = 0
    apiAllowed: bool = False
    maintenanceMarginRate: Decimal = ZERO


class _Deal(Struct):
    id: Id
    symbol: str
    side: int
    vol: Decimal
    price: Decimal
    fee: Decimal = ZERO
    feeCurrency: str | None = ""
    profit: Decimal = ZERO
    taker: bool | None = None  # the docs' example says "taker", their field table "isTaker"
    isTaker: bool | None = None
    orderId: Id = ""
    timestamp: Time = 0


class _Ticker(Struct):
    symbol: str
    fairPrice: Decimal
    indexPrice: Decimal = ZERO
    lastPrice: Decimal = ZERO
    bid1: Decimal = ZERO
    ask1: Decimal = ZERO
    fundingRate: Decimal = ZERO
    timestamp: int = 0


_envelope = msgspec.json.Decoder(_Envelope)
_submit_data = msgspec.json.Decoder(Id | _SubmitData)
_order = msgspec.json.Decoder(_Order)
_orders = msgspec.json.Decoder(list[_Order])
_cancel_items = msgspec.json.Decoder(list[_CancelItem])
_positions = msgspec.json.Decoder(list[_Position])
_assets = msgspec.json.Decoder(list[_Asset])
_funding_page = msgspec.json.Decoder(_FundingPage)
_contracts = msgspec.json.Decoder(list[_Contract] | _Contract)
_deals = msgspec.json.Decoder(list[_Deal])
_tickers = msgspec.json.Decoder(list[_Ticker] | _Ticker)
_server_time = msgspec.json.Decoder(int)


def _ms(value: Time) -> int:
    if isinstance(value, int):
        return value
    return int(value) if value.strip() else 0


def _finite(*values: Decimal) -> None:
    for v in values:
        if not v.is_finite():
            raise ValueError(f"not a finite number: {v}")


def _non_negative(*values: Decimal) -> None:
    for v in values:
        if not v.is_finite() or v < 0:
            raise ValueError(f"not a finite non-negative number: {v}")


def _contract_order(o: _Order) -> ContractOrder:
    status = STATUSES.get(o.state)
    if status is None:
        raise ValueError(f"unknown order state {o.state}")
    if o.side not in (SIDE_OPEN_LONG, SIDE_CLOSE_SHORT, SIDE_OPEN_SHORT, SIDE_CLOSE_LONG):
        raise ValueError(f"unknown side {o.side}")
    _non_negative(o.vol, o.price, o.dealVol, o.dealAvgPrice)
    _finite(o.takerFee, o.makerFee)
    if o.dealVol > o.vol:
        raise ValueError(f"dealVol {o.dealVol} above vol {o.vol}")
    if status == NEW and o.dealVol > 0:
        status = PARTIALLY_FILLED
    return ContractOrder(
        str(o.orderId), o.externalOid or "", o.symbol, o.side, o.orderType, o.openType, o.state, status,
        o.price, o.vol, o.dealVol, o.dealAvgPrice, o.takerFee, o.makerFee, o.feeCurrency or "", o.leverage,
        str(o.positionId), o.category, o.errorCode, _ms(o.createTime), _ms(o.updateTime),
    )


def decode_order(data: bytes) -> ContractOrder:
    """An order object (a query's or a list item's ``data``); msgspec.DecodeError or ValueError when unreadable."""
    return _contract_order(_order.decode(data))


def order_answer(order: ContractOrder, rules: ContractRules, http_status: int = 200) -> OrderAnswer:
    """A contract order as the engine's ``OrderAnswer``: executed quantity in base units (dealVol × contractSize),
    quote amount executed × dealAvgPrice (the venue's average, as reported). No per-fill data."""
    if order.symbol != rules.symbol:
        raise ValueError(f"order of {order.symbol} read with the rules of {rules.symbol}")
    executed = contracts_to_base(order.deal_vol, rules)
    return OrderAnswer(
        ANSWER_OK, order.status, str(order.state), order.order_id, order.client_order_id, executed,
        plain_decimal(executed * order.deal_avg_price), None, 0, "", http_status, 0.0,
    )


class Verdict(NamedTuple):
    kind: str
    code: int
    msg: str
    data: bytes  # the envelope's ``data`` (b"null" unless ok)
    retry_after_s: float


class MexcContractOrderFormat:
    """MEXC contract v1 order API: ``build_*`` return signed ``HttpRequest``s, ``parse_*`` read the answers.

    Order answers never raise (anything unreadable is ``unknown``); the other parsers raise VenueError for an
    error envelope and ProtocolError for an unreadable body. Standalone: not yet an ``OrderFormat`` of a kind."""

    kind = "mexc_contract"
    not_found_codes = NOT_FOUND_CODES
    timestamp_codes = TIMESTAMP_CODES
    status_unknown_codes = STATUS_UNKNOWN_CODES

    # ----- requests
    def build_new_order(
        self, *, symbol: str, side: int, vol: Decimal, price: Decimal | None, client_order_id: str,
        open_type: int, leverage: int | None, api_key: str, api_secret: str, timestamp_ms: int,
        recv_window_ms: int = 0, order_type: str = ORDER_LIMIT_IOC, reduce_only: bool = False,
        position_id: int | None = None,
    ) -> HttpRequest:
        """POST /api/v1/private/order/submit — #order-under-maintenance. ``vol`` in contracts (a whole number of
        volUnit steps: see ``base_to_contracts``); ``side`` one of SIDE_*; closing uses SIDE_CLOSE_LONG (4) or
        SIDE_CLOSE_SHORT (2). ``leverage`` is required for an isolated opening ("Leverage is necessary on Isolated
        Margin"); ``reduce_only`` is for one-way position mode only (a hedge-mode account refuses it);
        ``position_id`` is "recommended when closing a position". A market order sends no price (the docs mark
        price mandatory, but MEXC's own demo client leaves it out for market orders)."""
        if side not in (SIDE_OPEN_LONG, SIDE_CLOSE_SHORT, SIDE_OPEN_SHORT, SIDE_CLOSE_LONG):
            raise ValueError(f"unknown side {side!r}")
        if open_type not in (OPEN_ISOLATED, OPEN_CROSS):
            raise ValueError(f"unknown openType {open_type!r}")
        if not vol.is_finite() or vol <= 0:
            raise ValueError(f"vol must be a positive number of contracts, not {vol}")
        if leverage is not None and leverage < 1:
            raise ValueError(f"leverage must be at least 1, not {leverage}")
        if open_type == OPEN_ISOLATED and side not in CLOSE_SIDES and leverage is None:
            raise ValueError("an isolated opening order needs a leverage")
        if order_type == ORDER_LIMIT_IOC:
            if price is None or not price.is_finite() or price <= 0:
                raise ValueError("an IOC order needs a positive price")
            wire_type = TYPE_IOC
        elif order_type == ORDER_MARKET:
            price, wire_type = None, TYPE_MARKET
        else:
            raise ValueError(f"unknown order type {order_type!r}")
        body = json_body([
            ("symbol", symbol), ("price", price), ("vol", vol), ("leverage", leverage), ("side", side),
            ("type", wire_type), ("openType", open_type), ("positionId", position_id),
            ("externalOid", _client_id(client_order_id)), ("reduceOnly", True if reduce_only else None),
        ])
        return signed_post(SUBMIT_PATH, body, api_key, api_secret, timestamp_ms, recv_window_ms)

    def build_cancel_order(self, *, order_id: str, api_key: str, api_secret: str, timestamp_ms: int,
                           recv_window_ms: int = 0) -> HttpRequest:
        """POST /api/v1/private/order/cancel — #cancel-the-order-under-maintenance: the body is a JSON list of
        order ids (up to 50); one id here."""
        if not order_id.isdigit():
            raise ValueError(f"a contract order id is a number, not {order_id!r}")
        return signed_post(CANCEL_PATH, f"[{order_id}]", api_key, api_secret, timestamp_ms, recv_window_ms)

    def build_cancel_by_client_id(self, *, symbol: str, client_order_id: str, api_key: str, api_secret: str,
                                  timestamp_ms: int, recv_window_ms: int = 0) -> HttpRequest:
        """POST /api/v1/private/order/cancel_with_external —
        #cancel-the-order-according-to-the-external-order-id-under-maintenance (one order per request)."""
        body = json_body([("symbol", symbol), ("externalOid", _client_id(client_order_id))])
        return signed_post(CANCEL_EXTERNAL_PATH, body, api_key, api_secret, timestamp_ms, recv_window_ms)

    def build_query_order(self, *, symbol: str, client_order_id: str, api_key: str, api_secret: str,
                          timestamp_ms: int, recv_window_ms: int = 0) -> HttpRequest:
        """GET /api/v1/private/order/external/{symbol}/{external_oid} —
        #query-the-order-based-on-the-external-number. Path parameters are not signed: the parameter string is
        empty."""
        path = f"{QUERY_EXTERNAL_PATH}{_path_part(symbol, 'symbol')}/{_client_id(client_order_id)}"
        return signed_get(path, [], api_key, api_secret, timestamp_ms, recv_window_ms)

    def build_query_order_by_id(self, *, order_id: str, api_key: str, api_secret: str, timestamp_ms: int,
                                recv_window_ms: int = 0) -> HttpRequest:
        """GET /api/v1/private/order/get/{order_id} — #query-the-order-based-on-the-order-number."""
        if not order_id.isdigit():
            raise ValueError(f"a contract order id is a number, not {order_id!r}")
        return signed_get(QUERY_ORDER_PATH + order_id, [], api_key, api_secret, timestamp_ms, recv_window_ms)

    def build_open_orders(self, *, symbol: str | None, api_key: str, api_secret: str, timestamp_ms: int,
                          recv_window_ms: int = 0, page: int = 1, page_size: int = MAX_PAGE_SIZE) -> HttpRequest:
        """GET /api/v1/private/order/list/open_orders/{symbol} — #get-the-user-39-s-current-pending-order. The
        symbol is an optional path parameter (all contracts without it); page_num/page_size are mandatory."""
        path = f"{OPEN_ORDERS_PATH}/{_path_part(symbol, 'symbol')}" if symbol else OPEN_ORDERS_PATH
        params = [("page_num", str(page)), ("page_size", str(_page_size(page_size)))]
        return signed_get(path, params, api_key, api_secret, timestamp_ms, recv_window_ms)

    def build_open_positions(self, *, symbol: str | None, api_key: str, api_secret: str, timestamp_ms: int,
                             recv_window_ms: int = 0) -> HttpRequest:
        """GET /api/v1/private/position/open_positions — #get-the-user-39-s-current-holding-position."""
        return signed_get(OPEN_POSITIONS_PATH, [("symbol", symbol)], api_key, api_secret, timestamp_ms,
                          recv_window_ms)

    def build_account(self, *, api_key: str, api_secret: str, timestamp_ms: int,
                      recv_window_ms: int = 0) -> HttpRequest:
        """GET /api/v1/private/account/assets — #get-all-informations-of-user-39-s-asset."""
        return signed_get(ASSETS_PATH, [], api_key, api_secret, timestamp_ms, recv_window_ms)

    def build_funding_records(
        self, *, symbol: str | None, api_key: str, api_secret: str, timestamp_ms: int, recv_window_ms: int = 0,
        position_id: int | None = None, page: int = 1, page_size: int = MAX_PAGE_SIZE,
    ) -> HttpRequest:
        """GET /api/v1/private/position/funding_records — #get-details-of-user-s-funding-rate."""
        params = [
            ("symbol", symbol), ("position_id", None if position_id is None else str(position_id)),
            ("page_num", str(page)), ("page_size", str(_page_size(page_size))),
        ]
        return signed_get(FUNDING_RECORDS_PATH, params, api_key, api_secret, timestamp_ms, recv_window_ms)

    def build_cancel_all(self, *, symbol: str | None, api_key: str, api_secret: str, timestamp_ms: int,
                         recv_window_ms: int = 0) -> HttpRequest:
        """POST /api/v1/private/order/cancel_all — #cancel-all-orders-under-a-contract-under-maintenance: every
        uncompleted order of ``symbol`` (of every contract without it). The answer is the bare envelope."""
        body = json_body([("symbol", None if symbol is None else _path_part(symbol, "symbol"))])
        return signed_post(CANCEL_ALL_PATH, body, api_key, api_secret, timestamp_ms, recv_window_ms)

    def build_deal_details(self, *, order_id: str, api_key: str, api_secret: str, timestamp_ms: int,
                           recv_window_ms: int = 0) -> HttpRequest:
        """GET /api/v1/private/order/deal_details/{order_id} —
        #get-order-transaction-details-based-on-the-order-id (path parameter: nothing signed but the time)."""
        if not order_id.isdigit():
            raise ValueError(f"a contract order id is a number, not {order_id!r}")
        return signed_get(DEAL_DETAILS_PATH + order_id, [], api_key, api_secret, timestamp_ms, recv_window_ms)

    def build_ping(self) -> HttpRequest:
        """GET /api/v1/contract/ping — #get-the-server-time (public)."""
        return HttpRequest("GET", PING_PATH, [], b"")

    def build_ticker(self, symbol: str | None = None) -> HttpRequest:
        """GET /api/v1/contract/ticker — #get-contract-trend-data (public): one object with a symbol, else a list."""
        path = f"{TICKER_PATH}?{query_string([('symbol', symbol)])}" if symbol else TICKER_PATH
        return HttpRequest("GET", path, [], b"")

    def build_contract_detail(self, symbol: str | None = None) -> HttpRequest:
        """GET /api/v1/contract/detail — #get-the-contract-information (public: no signature). With a symbol the
        venue answers one object, without it a list of every contract."""
        path = f"{CONTRACT_DETAIL_PATH}?{query_string([('symbol', symbol)])}" if symbol else CONTRACT_DETAIL_PATH
        return HttpRequest("GET", path, [], b"")

    # ----- answers
    def parse_error(self, http_status: int, body: bytes) -> tuple[int, str]:
        """The envelope's ``(code, message)``; ``(0, <start of the body>)`` when the body is not one."""
        try:
            env = _envelope.decode(body)
        except msgspec.DecodeError:
            return 0, f"HTTP {http_status}: {body[:200].decode(errors='replace')}"
        return env.code, env.message or ""

    def verdict(self, http_status: int, body: bytes, headers: Mapping[str, str]) -> Verdict:
        """Classify an answer: 429/418 or code 510 → throttled; 5xx, codes that leave the outcome open, or an
        unreadable body → unknown; any other ``success: false`` (or non-2xx envelope) → rejected; ``success:
        true`` with code 0 → ok. MEXC answers business errors with HTTP 200."""
        wait = retry_after(headers) or 0.0
        if http_status in THROTTLED_HTTP:
            code, msg = self.parse_error(http_status, body)
            return Verdict(ANSWER_THROTTLED, code, msg, b"null", wait)
        if http_status >= 500:
            code, msg = self.parse_error(http_status, body)
            return Verdict(ANSWER_UNKNOWN, code, msg, b"null", 0.0)
        try:
            env = _envelope.decode(body)
        except msgspec.DecodeError as exc:
            return Verdict(ANSWER_UNKNOWN, 0, f"HTTP {http_status}: unreadable answer ({exc})", b"null", 0.0)
        if env.success and env.code == 0 and 200 <= http_status < 300:
            return Verdict(ANSWER_OK, 0, "", bytes(env.data), 0.0)
        msg = env.message or ""
        if env.code in THROTTLE_CODES:
            return Verdict(ANSWER_THROTTLED, env.code, msg, b"null", wait)
        if env.code in STATUS_UNKNOWN_CODES:
            return Verdict(ANSWER_UNKNOWN, env.code, msg, b"null", 0.0)
        return Verdict(ANSWER_REJECTED, env.code, msg, b"null", 0.0)

    def _data(self, http_status: int, body: bytes, what: str) -> bytes:
        """The ``data`` of an ok answer; VenueError for an error answer, ProtocolError for an unreadable 2xx."""
        v = self.verdict(http_status, body, {})
        if v.kind == ANSWER_OK:
            return v.data
        if 200 <= http_status < 300 and v.kind == ANSWER_UNKNOWN and v.code == 0:
            raise ProtocolError(f"{self.kind}: {what}: {v.msg}")
        raise VenueError(v.code, v.msg, http_status)

    def parse_new_order(self, http_status: int, body: bytes, headers: Mapping[str, str], *,
                        client_order_id: str) -> OrderAnswer:
        """The submit answer: ``data`` is the new order id (the docs: a JSON number; SDKs also see
        ``{"orderId": "...", "ts": ...}``). It carries no execution data: NEW, query it for fills."""
        v = self.verdict(http_status, body, headers)
        if v.kind != ANSWER_OK:
            return answer_without_order(v.kind, client_order_id, v.code, v.msg, http_status, v.retry_after_s)
        try:
            data = _submit_data.decode(v.data)
        except msgspec.DecodeError as exc:
            msg = f"HTTP {http_status}: no order id in the submit answer ({exc})"
            return answer_without_order(ANSWER_UNKNOWN, client_order_id, 0, msg, http_status)
        order_id = str(data.orderId if isinstance(data, _SubmitData) else data)
        return OrderAnswer(ANSWER_OK, NEW, "", order_id, client_order_id, ZERO, ZERO, None, 0, "", http_status, 0.0)

    def parse_order(self, http_status: int, body: bytes, headers: Mapping[str, str], *, rules: ContractRules,
                    client_order_id: str = "") -> OrderAnswer:
        """A query answer (by externalOid or by id) in base units. A refusal says nothing about the order
        (UNKNOWN with the code: ``not_found`` tells whether it means "no such order"); ``data: null`` is unknown."""
        v = self.verdict(http_status, body, headers)
        if v.kind != ANSWER_OK:
            return answer_without_order(v.kind, client_order_id, v.code, v.msg, http_status, v.retry_after_s,
                                        new_order=False)
        try:
            return order_answer(_contract_order(_order.decode(v.data)), rules, http_status)
        except (msgspec.DecodeError, ValueError) as exc:
            msg = f"HTTP {http_status}: unreadable order answer ({exc})"
            return answer_without_order(ANSWER_UNKNOWN, client_order_id, 0, msg, http_status, new_order=False)

    def parse_order_detail(self, http_status: int, body: bytes) -> ContractOrder:
        """A query answer with every field, volumes in contracts."""
        data = self._data(http_status, body, "order")
        try:
            return _contract_order(_order.decode(data))
        except (msgspec.DecodeError, ValueError) as exc:
            raise ProtocolError(f"{self.kind}: unreadable order ({exc})") from None

    def parse_order_list(self, http_status: int, body: bytes) -> list[ContractOrder]:
        """Open orders (or history orders): the list under ``data``."""
        data = self._data(http_status, body, "order list")
        try:
            return [_contract_order(o) for o in _orders.decode(data)]
        except (msgspec.DecodeError, ValueError) as exc:
            raise ProtocolError(f"{self.kind}: unreadable order list ({exc})") from None

    def parse_cancel(self, http_status: int, body: bytes, headers: Mapping[str, str]) -> list[CancelResult]:
        """The answer to ``order/cancel``: one item per order id, ``errorCode`` 0 when the cancel was taken
        (2040 "order not exist", 2041 "order state cannot be cancelled"). A refused or unreadable answer is one
        item without an order id."""
        v = self.verdict(http_status, body, headers)
        if v.kind != ANSWER_OK:
            return [CancelResult(v.kind, "", "", v.code, v.msg, http_status)]
        try:
            items = _cancel_items.decode(v.data)
        except msgspec.DecodeError as exc:
            return [CancelResult(ANSWER_UNKNOWN, "", "", 0, f"unreadable cancel answer ({exc})", http_status)]
        return [
            CancelResult(
                ANSWER_OK if i.errorCode == 0 else self._refusal_kind(i.errorCode),
                "" if i.orderId is None else str(i.orderId), "", i.errorCode, i.errorMsg or "", http_status,
            )
            for i in items
        ]

    def parse_cancel_by_client_id(self, http_status: int, body: bytes, headers: Mapping[str, str], *,
                                  client_order_id: str) -> CancelResult:
        """The answer to ``order/cancel_with_external``: the docs show no answer body, so only the envelope is
        read (a batch-style ``data`` item with its own errorCode is honoured if present)."""
        v = self.verdict(http_status, body, headers)
        if v.kind != ANSWER_OK:
            return CancelResult(v.kind, "", client_order_id, v.code, v.msg, http_status)
        try:
            items = _cancel_items.decode(v.data) if v.data.lstrip().startswith(b"[") else []
        except msgspec.DecodeError:
            items = []
        for i in items:
            if i.errorCode != 0:
                oid = "" if i.orderId is None else str(i.orderId)
                kind = self._refusal_kind(i.errorCode)
                return CancelResult(kind, oid, client_order_id, i.errorCode, i.errorMsg or "", http_status)
        return CancelResult(ANSWER_OK, "", client_order_id, 0, "", http_status)

    def _refusal_kind(self, code: int) -> str:
        return ANSWER_UNKNOWN if code in STATUS_UNKNOWN_CODES else ANSWER_REJECTED

    def parse_positions(self, http_status: int, body: bytes) -> list[ContractPosition]:
        data = self._data(http_status, body, "positions")
        try:
            out = []
            for p in _positions.decode(data):
                if p.positionType not in (POSITION_LONG, POSITION_SHORT):
                    raise ValueError(f"unknown positionType {p.positionType}")
                _non_negative(p.holdVol, p.frozenVol, p.holdAvgPrice, p.openAvgPrice, p.liquidatePrice, p.im)
                _finite(p.realised, p.holdFee)
                out.append(ContractPosition(
                    str(p.positionId), p.symbol, p.positionType, p.openType, p.state, p.holdVol, p.frozenVol,
                    p.holdAvgPrice, p.openAvgPrice, p.liquidatePrice, p.leverage, p.im, p.realised, p.holdFee,
                    _ms(p.createTime), _ms(p.updateTime),
                ))
            return out
        except (msgspec.DecodeError, ValueError) as exc:
            raise ProtocolError(f"{self.kind}: unreadable positions ({exc})") from None

    def parse_assets(self, http_status: int, body: bytes) -> dict[str, ContractAsset]:
        """``account/assets`` by currency."""
        data = self._data(http_status, body, "assets")
        try:
            out: dict[str, ContractAsset] = {}
            for a in _assets.decode(data):
                _non_negative(a.positionMargin, a.frozenBalance, a.availableBalance, a.cashBalance)
                _finite(a.equity, a.unrealized)
                out[a.currency] = ContractAsset(a.currency, a.positionMargin, a.frozenBalance, a.availableBalance,
                                                a.cashBalance, a.equity, a.unrealized)
            return out
        except (msgspec.DecodeError, ValueError) as exc:
            raise ProtocolError(f"{self.kind}: unreadable assets ({exc})") from None

    def parse_funding_records(self, http_status: int, body: bytes) -> FundingPage:
        data = self._data(http_status, body, "funding records")
        try:
            page = _funding_page.decode(data)
            records = []
            for f in page.resultList:
                _finite(f.funding, f.rate)
                _non_negative(f.positionValue)
                records.append(FundingRecord(str(f.id), f.symbol, str(f.positionId), f.positionType,
                                             f.positionValue, f.funding, f.rate, f.settleTime))
        except (msgspec.DecodeError, ValueError) as exc:
            raise ProtocolError(f"{self.kind}: unreadable funding records ({exc})") from None
        return FundingPage(records, page.currentPage, page.totalPage, page.totalCount)

    def parse_deal_details(self, http_status: int, body: bytes) -> list[ContractDeal]:
        data = self._data(http_status, body, "deal details")
        try:
            out = []
            for d in _deals.decode(data):
                _non_negative(d.vol, d.price)
                _finite(d.fee, d.profit)
                taker = d.taker if d.taker is not None else bool(d.isTaker)
                out.append(ContractDeal(str(d.id), d.symbol, d.side, d.vol, d.price, d.fee, d.feeCurrency or "",
                                        d.profit, taker, str(d.orderId), _ms(d.timestamp)))
            return out
        except (msgspec.DecodeError, ValueError) as exc:
            raise ProtocolError(f"{self.kind}: unreadable deal details ({exc})") from None

    def parse_ping(self, http_status: int, body: bytes) -> int:
        """The server time (ms) of ``contract/ping``."""
        data = self._data(http_status, body, "ping")
        try:
            return _server_time.decode(data)
        except msgspec.DecodeError as exc:
            raise ProtocolError(f"{self.kind}: unreadable server time ({exc})") from None

    def parse_tickers(self, http_status: int, body: bytes) -> dict[str, ContractTicker]:
        """``contract/ticker`` (one object or a list) by symbol."""
        data = self._data(http_status, body, "ticker")
        try:
            decoded = _tickers.decode(data)
            out: dict[str, ContractTicker] = {}
            for t in decoded if isinstance(decoded, list) else [decoded]:
                _non_negative(t.fairPrice, t.indexPrice, t.lastPrice, t.bid1, t.ask1)
                _finite(t.fundingRate)
                out[t.symbol] = ContractTicker(t.symbol, t.fairPrice, t.indexPrice, t.lastPrice, t.bid1, t.ask1,
                                               t.fundingRate, t.timestamp)
            return out
        except (msgspec.DecodeError, ValueError) as exc:
            raise ProtocolError(f"{self.kind}: unreadable ticker ({exc})") from None

    def parse_contract_detail(self, http_status: int, body: bytes) -> dict[str, ContractRules]:
        """``contract/detail`` (one object or a list) as rules by symbol."""
        data = self._data(http_status, body, "contract detail")
        try:
            decoded = _contracts.decode(data)
            items = decoded if isinstance(decoded, list) else [decoded]
            return {c.symbol: _contract_rules(c) for c in items}
        except (msgspec.DecodeError, ValueError) as exc:
            raise ProtocolError(f"{self.kind}: unreadable contract detail ({exc})") from None

    def not_found(self, answer: OrderAnswer) -> bool:
        return answer.kind == ANSWER_REJECTED and answer.error_code in self.not_found_codes


def _page_size(page_size: int) -> int:
    return max(1, min(page_size, MAX_PAGE_SIZE))


def _contract_rules(c: _Contract) -> ContractRules:
    _non_negative(c.minVol, c.maxVol, c.takerFeeRate, c.makerFeeRate, c.maintenanceMarginRate)
    for name, value in (("contractSize", c.contractSize), ("priceUnit", c.priceUnit), ("volUnit", c.volUnit)):
        if not value.is_finite() or value <= 0:
            raise ValueError(f"{c.symbol}: {name} must be positive, not {value}")
    return ContractRules(
        c.symbol, c.baseCoin, c.quoteCoin, c.settleCoin, plain_decimal(c.contractSize), plain_decimal(c.priceUnit),
        plain_decimal(c.volUnit), plain_decimal(c.minVol), plain_decimal(c.maxVol), c.minLeverage, c.maxLeverage,
        c.priceScale, c.volScale, c.takerFeeRate, c.makerFeeRate, c.state, c.apiAllowed,
        plain_decimal(c.maintenanceMarginRate),
    )
