"""Spot order API formats (pure): every request's exact signed text, and the venues' documented answers."""

from __future__ import annotations

import hashlib
import hmac
import json
from decimal import Decimal

import pytest

from shared.errors import ProtocolError, VenueError
from shared.venues import documented_limits, order_format
from shared.venues.common import FINAL_STATUSES, AccountInfo, RateHeaders, SymbolRules, TradeFill

KEY, SECRET, TS = "KEY", "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j", 1499827319559
AUTH = {"api_key": KEY, "api_secret": SECRET, "timestamp_ms": TS, "recv_window_ms": 5000}
HEADER = {"binance": "X-MBX-APIKEY", "mexc": "X-MEXC-APIKEY"}
D = Decimal


def signed(path: str, query: str) -> str:
    """The expected path, signed independently of the code under test."""
    sig = hmac.new(SECRET.encode(), query.encode(), hashlib.sha256).hexdigest()
    return f"{path}?{query}&signature={sig}"


TAIL = f"recvWindow=5000&timestamp={TS}"


@pytest.mark.parametrize("kind", ["binance", "mexc"])
def test_every_signed_request_exact_text(kind: str) -> None:
    fmt = order_format(kind)
    cases = [
        (fmt.build_query_order(symbol="BTCUSDT", client_order_id="dz1", **AUTH),
         "GET", "/api/v3/order", f"symbol=BTCUSDT&origClientOrderId=dz1&{TAIL}"),
        (fmt.build_cancel_order(symbol="BTCUSDT", client_order_id="dz1", **AUTH),
         "DELETE", "/api/v3/order", f"symbol=BTCUSDT&origClientOrderId=dz1&{TAIL}"),
        (fmt.build_open_orders(symbol="BTCUSDT", **AUTH), "GET", "/api/v3/openOrders", f"symbol=BTCUSDT&{TAIL}"),
        (fmt.build_open_orders(symbol=None, **AUTH), "GET", "/api/v3/openOrders", TAIL),
        (fmt.build_cancel_all(symbol="ETHUSDT", **AUTH), "DELETE", "/api/v3/openOrders", f"symbol=ETHUSDT&{TAIL}"),
        (fmt.build_account(**AUTH), "GET", "/api/v3/account", TAIL),
        (fmt.build_my_trades(symbol="BTCUSDT", order_id="C02__7", **AUTH),
         "GET", "/api/v3/myTrades", f"symbol=BTCUSDT&orderId=C02__7&{TAIL}"),
        (fmt.build_my_trades(symbol="BTCUSDT", order_id=None, **AUTH),
         "GET", "/api/v3/myTrades", f"symbol=BTCUSDT&{TAIL}"),
    ]
    for req, method, path, query in cases:
        assert (req.method, req.path) == (method, signed(path, query))
        assert req.headers == [(HEADER[kind], KEY)] and req.body == b""


def test_new_order_types_exact_text() -> None:
    b, m = order_format("binance"), order_format("mexc")
    common = {"symbol": "BTCUSDT", "side": "SELL", "qty": "0.00150", "client_order_id": "dz2", **AUTH}
    req = b.build_new_order(price=None, order_type="market", **common)
    q = f"symbol=BTCUSDT&side=SELL&type=MARKET&quantity=0.00150&newClientOrderId=dz2&newOrderRespType=FULL&{TAIL}"
    assert (req.method, req.path) == ("POST", signed("/api/v3/order", q))
    req = m.build_new_order(price=None, order_type="market", **common)
    q = f"symbol=BTCUSDT&side=SELL&type=MARKET&quantity=0.00150&newClientOrderId=dz2&{TAIL}"
    assert req.path == signed("/api/v3/order", q)
    req = m.build_new_order(price="97000.1", order_type="limit_ioc", **common)
    q = f"symbol=BTCUSDT&side=SELL&type=IMMEDIATE_OR_CANCEL&quantity=0.00150&price=97000.1&newClientOrderId=dz2&{TAIL}"
    assert req.path == signed("/api/v3/order", q)
    for fmt in (b, m):
        with pytest.raises(ValueError):
            fmt.build_new_order(price=None, order_type="limit_ioc", **common)
        with pytest.raises(ValueError):
            fmt.build_new_order(price="1", order_type="stop", **common)


def test_unsigned_requests() -> None:
    b, m = order_format("binance"), order_format("mexc")
    assert b.build_time().path == m.build_time().path == "/api/v3/time"
    assert b.build_exchange_info().path == "/api/v3/exchangeInfo" and b.build_exchange_info().headers == []
    assert b.build_exchange_info(["BTCUSDT"]).path == "/api/v3/exchangeInfo?symbol=BTCUSDT"
    # symbols=["BTCUSDT","ETHUSDT"] (Binance, JSON array) and symbols=BTCUSDT,ETHUSDT (MEXC), percent-encoded
    assert b.build_exchange_info(["BTCUSDT", "ETHUSDT"]).path == (
        "/api/v3/exchangeInfo?symbols=%5B%22BTCUSDT%22%2C%22ETHUSDT%22%5D"
    )
    assert m.build_exchange_info(["BTCUSDT", "ETHUSDT"]).path == "/api/v3/exchangeInfo?symbols=BTCUSDT%2CETHUSDT"
    assert b.parse_time(b'{"serverTime":1499827319559}') == 1499827319559
    with pytest.raises(ProtocolError):
        m.parse_time(b'{"serverTime":"soon"}')


FULL = {
    "symbol": "BTCUSDT", "orderId": 28, "orderListId": -1, "clientOrderId": "dz1fb", "transactTime": 1507725176595,
    "price": "97000.00000000", "origQty": "0.00300000", "executedQty": "0.00300000",
    "origQuoteOrderQty": "0.00000000", "cummulativeQuoteQty": "290.99700000", "status": "FILLED",
    "timeInForce": "IOC", "type": "LIMIT", "side": "BUY", "workingTime": 1507725176595,
    "selfTradePreventionMode": "NONE",
    "fills": [
        {"price": "96999.00000000", "qty": "0.00100000", "commission": "0.00000100",
         "commissionAsset": "BTC", "tradeId": 56},
        {"price": "96999.00000000", "qty": "0.00200000", "commission": "0.19399800",
         "commissionAsset": "USDT", "tradeId": 57},
    ],
}


def test_binance_full_answer_is_exact() -> None:
    a = order_format("binance").parse_order(200, json.dumps(FULL).encode(), {"x-mbx-used-weight-1m": "3"})
    assert (a.kind, a.status, a.venue_status) == ("ok", "FILLED", "FILLED")
    assert (a.order_id, a.client_order_id) == ("28", "dz1fb")
    assert (a.executed_qty, a.cum_quote) == (D("0.003"), D("290.997"))
    assert a.fills == (
        TradeFill("56", D("96999"), D("0.001"), D("0.000001"), "BTC"),  # a buy pays in the base asset, kept as is
        TradeFill("57", D("96999"), D("0.002"), D("0.193998"), "USDT"),
    )
    assert a.final and (a.error_code, a.http_status, a.retry_after_s) == (0, 200, 0.0)


def test_binance_query_cancel_and_statuses() -> None:
    fmt = order_format("binance")
    query = {k: v for k, v in FULL.items() if k != "fills"}
    a = fmt.parse_order(200, json.dumps(query).encode(), {}, new_order=False)
    assert a.kind == "ok" and a.fills is None and a.executed_qty == D("0.003")
    # The documented cancel answer: clientOrderId is the cancel's own id, origClientOrderId the order's.
    cancel = (
        b'{"symbol":"LTCBTC","origClientOrderId":"myOrder1","orderId":4,"orderListId":-1,'
        b'"clientOrderId":"cancelMyOrder1","transactTime":1684804350068,"price":"2.00000000",'
        b'"origQty":"1.00000000","executedQty":"0.00000000","cummulativeQuoteQty":"0.00000000",'
        b'"status":"CANCELED","timeInForce":"GTC","type":"LIMIT","side":"BUY","selfTradePreventionMode":"NONE"}'
    )
    a = fmt.parse_order(200, cancel, {}, new_order=False)
    assert (a.status, a.client_order_id, a.order_id, a.executed_qty) == ("CANCELED", "myOrder1", "4", D(0))
    for venue_status, canonical in [("EXPIRED_IN_MATCH", "EXPIRED"), ("PENDING_NEW", "NEW"),
                                    ("PARTIALLY_FILLED", "PARTIALLY_FILLED"), ("REJECTED", "REJECTED")]:
        a = fmt.parse_order(200, json.dumps({**query, "status": venue_status}).encode(), {})
        assert (a.status, a.venue_status) == (canonical, venue_status)
    ack = b'{"symbol":"BTCUSDT","orderId":28,"orderListId":-1,"clientOrderId":"dz1fb","transactTime":1507725176595}'
    a = fmt.parse_order(200, ack, {})
    assert (a.kind, a.status, a.venue_status, a.fills, a.final) == ("ok", "NEW", "", None, False)
    assert {"FILLED", "CANCELED", "REJECTED", "EXPIRED"} == FINAL_STATUSES


MEXC_QUERY = {
    "symbol": "BTCUSDT", "orderId": "C02__1", "orderListId": -1, "clientOrderId": "dz1fs", "price": "97000.02",
    "origQty": "0.0015", "executedQty": "0.001", "cummulativeQuoteQty": "97.00002", "status": "PARTIALLY_CANCELED",
    "timeInForce": "", "type": "IMMEDIATE_OR_CANCEL", "side": "SELL", "stopPrice": "", "time": 1, "updateTime": 1,
    "isWorking": False, "origQuoteOrderQty": "0",
}


def test_mexc_answers_string_ids_and_partially_canceled() -> None:
    fmt = order_format("mexc")
    ack = (b'{"symbol":"MXUSDT","orderId":"06a480e69e604477bfb48dddd5f0b750","orderListId":-1,"price":"0.1",'
           b'"origQty":"50","type":"LIMIT","side":"BUY","transactTime":1666676533741}')
    a = fmt.parse_order(200, ack, {})
    assert (a.kind, a.status, a.order_id, a.client_order_id, a.fills) == (
        "ok", "NEW", "06a480e69e604477bfb48dddd5f0b750", "", None)
    a = fmt.parse_order(200, json.dumps(MEXC_QUERY).encode(), {}, new_order=False)
    assert (a.status, a.venue_status, a.order_id) == ("CANCELED", "PARTIALLY_CANCELED", "C02__1")
    assert (a.executed_qty, a.cum_quote, a.fills) == (D("0.001"), D("97.00002"), None)
    listing = json.dumps([MEXC_QUERY, {**MEXC_QUERY, "orderId": "C02__2", "status": "NEW", "executedQty": "0"},
                          {**MEXC_QUERY, "status": "HALF_DONE"}]).encode()
    answers = fmt.parse_order_list(200, listing, {})
    assert [(x.kind, x.status, x.order_id) for x in answers] == [
        ("ok", "CANCELED", "C02__1"), ("ok", "NEW", "C02__2"), ("unknown", "UNKNOWN", "")]
    assert answers[2].client_order_id == "dz1fs"
    with pytest.raises(VenueError) as err:
        fmt.parse_order_list(400, b'{"code":700002,"msg":"Signature for this request is not valid."}', {})
    assert (err.value.code, err.value.http_status) == (700002, 400)
    with pytest.raises(ProtocolError):
        fmt.parse_order_list(200, b'{"not":"a list"}', {})


BINANCE_ERRORS = [
    # (http, body, headers, kind, status of a new order, code, retry_after)
    (503, b'{"code":-1007,"msg":"Timeout waiting for response from backend server."}', {}, "unknown", "UNKNOWN",
     -1007, 0.0),
    (400, b'{"code":-1000,"msg":"An unknown error occurred while processing the request."}', {}, "unknown",
     "UNKNOWN", -1000, 0.0),
    (408, b'{"code":-1007,"msg":"Timeout waiting for response from backend server."}', {}, "unknown", "UNKNOWN",
     -1007, 0.0),
    (500, b"<html>Internal Server Error</html>", {}, "unknown", "UNKNOWN", 0, 0.0),
    (429, b'{"code":-1015,"msg":"Too many new orders; current limit is 50 orders per TEN_SECONDS."}',
     {"retry-after": "7"}, "throttled", "REJECTED", -1015, 7.0),
    (418, b'{"code":-1003,"msg":"Way too many requests; IP banned."}', {"Retry-After": "120"}, "throttled",
     "REJECTED", -1003, 120.0),
    (429, b"", {}, "throttled", "REJECTED", 0, 0.0),
    (400, b'{"code":-2010,"msg":"Account has insufficient balance for requested action."}', {}, "rejected",
     "REJECTED", -2010, 0.0),
    (400, b"<html>bad gateway</html>", {}, "unknown", "UNKNOWN", 0, 0.0),
    (200, b"not json", {}, "unknown", "UNKNOWN", 0, 0.0),
    (200, b'{"symbol":"BTCUSDT","orderId":1,"status":"FILLED","executedQty":"x"}', {}, "unknown", "UNKNOWN", 0, 0.0),
    (200, b'{"symbol":"BTCUSDT","orderId":1,"status":"FILLED","executedQty":"-1"}', {}, "unknown", "UNKNOWN", 0, 0.0),
]


@pytest.mark.parametrize(("http", "body", "headers", "kind", "status", "code", "retry"), BINANCE_ERRORS)
def test_binance_error_classification(http: int, body: bytes, headers: dict[str, str], kind: str, status: str,
                                      code: int, retry: float) -> None:
    fmt = order_format("binance")
    a = fmt.parse_order(http, body, headers)
    assert (a.kind, a.status, a.error_code, a.retry_after_s, a.http_status) == (kind, status, code, retry, http)
    assert a.executed_qty == 0 and a.fills is None
    # The same answer to a query or cancel says nothing about the order's state.
    assert fmt.parse_order(http, body, headers, new_order=False).status == "UNKNOWN"


@pytest.mark.parametrize(
    ("http", "body", "kind", "code"),
    [
        (500, b'{"code":500,"msg":"Internal error"}', "unknown", 500),
        (429, b'{"code":429,"msg":"Too many requests"}', "throttled", 429),
        (400, b'{"code":10101,"msg":"Insufficient balance"}', "rejected", 10101),
        (200, b'{"code":700002,"msg":"Signature for this request is not valid."}', "rejected", 700002),
        (200, b'{"code":500,"msg":"Internal error"}', "unknown", 500),
        (403, b"waf", "unknown", 0),
        (200, b"{}", "unknown", 0),
    ],
)
def test_mexc_error_classification(http: int, body: bytes, kind: str, code: int) -> None:
    a = order_format("mexc").parse_order(http, body, {"retry-after": "3"})
    assert (a.kind, a.error_code) == (kind, code)
    assert a.retry_after_s == (3.0 if kind == "throttled" else 0.0)


@pytest.mark.parametrize(("kind", "code"), [("binance", -2013), ("binance", -2011), ("mexc", -2013)])
def test_no_such_order_is_recognised(kind: str, code: int) -> None:
    fmt = order_format(kind)
    a = fmt.parse_order(400, json.dumps({"code": code, "msg": "Order does not exist."}).encode(), {}, new_order=False)
    assert (a.kind, a.status) == ("rejected", "UNKNOWN") and fmt.not_found(a)
    other = fmt.parse_order(400, b'{"code":-1121,"msg":"Invalid symbol."}', {}, new_order=False)
    assert not fmt.not_found(other)


BINANCE_ACCOUNT = (
    b'{"makerCommission":15,"takerCommission":15,"buyerCommission":0,"sellerCommission":0,'
    b'"commissionRates":{"maker":"0.00150000","taker":"0.00150000","buyer":"0.00000000","seller":"0.00000000"},'
    b'"canTrade":true,"canWithdraw":true,"canDeposit":true,"brokered":false,"requireSelfTradePrevention":false,'
    b'"preventSor":false,"updateTime":123456789,"accountType":"SPOT","balances":[{"asset":"BTC",'
    b'"free":"4723846.89208129","locked":"0.00000000"},{"asset":"LTC","free":"4763368.68006011",'
    b'"locked":"0.00000010"}],"permissions":["SPOT"],"uid":354937868}'
)


def test_account_answers() -> None:
    b, m = order_format("binance"), order_format("mexc")
    assert b.parse_account(BINANCE_ACCOUNT) == AccountInfo(
        {"BTC": (D("4723846.89208129"), D(0)), "LTC": (D("4763368.68006011"), D("0.0000001"))},
        D("0.0015"), D("0.0015"),
    )
    # commissionRates wins over the integers; without it the integers are basis points.
    body = json.loads(BINANCE_ACCOUNT)
    body["commissionRates"]["taker"] = "0.00100000"
    assert b.parse_account(json.dumps(body).encode()).taker_fee == D("0.001")
    del body["commissionRates"]
    assert b.parse_account(json.dumps(body).encode())[1:] == (D("0.0015"), D("0.0015"))
    mexc = (b'{"makerCommission":0,"takerCommission":5,"canTrade":true,"accountType":"SPOT",'
            b'"balances":[{"asset":"USDT","free":"1000.5","locked":"2"}],"permissions":["SPOT"]}')
    assert m.parse_account(mexc) == AccountInfo({"USDT": (D("1000.5"), D(2))}, D(0), D("0.0005"))
    text_rates = mexc.replace(b'"takerCommission":5', b'"takerCommission":"0.0005"')
    assert m.parse_account(text_rates).taker_fee == D("0.0005")
    # MEXC's documented example states no commission: the caller's fallback (the config's fees) fills in.
    documented = (b'{"canTrade":true,"canWithdraw":true,"canDeposit":true,"updateTime":null,"accountType":"SPOT",'
                  b'"balances":[{"asset":"NBNTEST","free":"1111","locked":"0"}],"permissions":["SPOT"]}')
    assert m.parse_account(documented, fallback=(D(0), D("0.0005")))[1:] == (D(0), D("0.0005"))
    for bad in (documented, b'{"balances":[{"asset":"X","free":"nan"}],"makerCommission":1,"takerCommission":1}',
                b"[]"):
        with pytest.raises(ProtocolError):
            m.parse_account(bad)


def test_my_trades_both_venues() -> None:
    binance = (b'[{"symbol":"BNBBTC","id":28457,"orderId":100234,"orderListId":-1,"price":"4.00000100",'
               b'"qty":"12.00000000","quoteQty":"48.000012","commission":"10.10000000","commissionAsset":"BNB",'
               b'"time":1499865549590,"isBuyer":true,"isMaker":false,"isBestMatch":true}]')
    assert order_format("binance").parse_my_trades(binance) == [
        TradeFill("28457", D("4.000001"), D(12), D("10.1"), "BNB")]
    mexc = (b'[{"symbol":"MXUSDT","id":"fad2af9e942049b6adbda1a271f990c6","orderId":"bb41e5663e124046bd9497a3f5692f39",'
            b'"orderListId":-1,"price":"3.4","qty":"0.9","quoteQty":"3.06","commission":"0.00306",'
            b'"commissionAsset":"USDT","time":1630029138000,"isBuyer":false,"isMaker":false,"isBestMatch":true,'
            b'"isSelfTrade":true,"clientOrderId":null}]')
    assert order_format("mexc").parse_my_trades(mexc) == [
        TradeFill("fad2af9e942049b6adbda1a271f990c6", D("3.4"), D("0.9"), D("0.00306"), "USDT")]
    assert order_format("mexc").parse_my_trades(b"[]") == []
    with pytest.raises(ProtocolError):
        order_format("mexc").parse_my_trades(b'[{"id":1,"price":"1e400x","qty":"1"}]')


def test_binance_exchange_info_filters() -> None:
    def symbol(name: str, filters: list[dict[str, object]]) -> dict[str, object]:
        return {"symbol": name, "status": "TRADING", "baseAssetPrecision": 8, "quotePrecision": 8, "filters": filters}

    body = {"timezone": "UTC", "serverTime": 1, "symbols": [
        symbol("ETHBTC", [
            {"filterType": "PRICE_FILTER", "minPrice": "0.00000100", "maxPrice": "100000.00000000",
             "tickSize": "0.00000100"},
            {"filterType": "LOT_SIZE", "minQty": "0.00100000", "maxQty": "100000.00000000", "stepSize": "0.00100000"},
            {"filterType": "MIN_NOTIONAL", "minNotional": "0.00100000", "applyToMarket": True, "avgPriceMins": 5},
            {"filterType": "ICEBERG_PARTS", "limit": 10},
        ]),
        symbol("BTCUSDT", [
            {"filterType": "PRICE_FILTER", "minPrice": "0.01000000", "maxPrice": "0", "tickSize": "0.01000000"},
            {"filterType": "LOT_SIZE", "minQty": "0.00001000", "maxQty": "9000.00000000", "stepSize": "0.00001000"},
            {"filterType": "NOTIONAL", "minNotional": "5.00000000", "applyMinToMarket": True,
             "maxNotional": "9000000.00000000", "applyMaxToMarket": False, "avgPriceMins": 5},
        ]),
        symbol("ODDUSDT", [
            {"filterType": "PRICE_FILTER", "minPrice": "0", "maxPrice": "0", "tickSize": "0.00000000"},
            {"filterType": "LOT_SIZE", "minQty": "0", "maxQty": "0", "stepSize": "10.00000000"},
        ]),
    ]}
    rules = order_format("binance").parse_exchange_info(json.dumps(body).encode())
    assert rules["ETHBTC"] == SymbolRules("ETHBTC", D("0.000001"), D("0.001"), D("0.001"), D("0.001"), 6, 3)
    assert rules["BTCUSDT"] == SymbolRules("BTCUSDT", D("0.01"), D("0.00001"), D("0.00001"), D(5), 2, 5)
    # 0 disables a rule: no tick (decimals from the asset precision), a step of 10, no minimum notional
    assert rules["ODDUSDT"] == SymbolRules("ODDUSDT", D(0), D(10), D(0), D(0), 8, 0)
    assert str(rules["ODDUSDT"].step) == "10" and str(rules["BTCUSDT"].min_notional) == "5"
    with pytest.raises(ProtocolError):
        order_format("binance").parse_exchange_info(b'{"symbols":[{"symbol":"X","filters":[{"filterType":'
                                                    b'"PRICE_FILTER","tickSize":"abc"}]}]}')


def test_mexc_exchange_info_precisions() -> None:
    documented = {
        "symbol": "METALUSDT", "status": "1", "baseAsset": "METAL", "baseAssetPrecision": 3, "quoteAsset": "USDT",
        "quotePrecision": 3, "quoteAssetPrecision": 3, "baseCommissionPrecision": 3, "quoteCommissionPrecision": 3,
        "orderTypes": ["LIMIT", "MARKET", "LIMIT_MAKER"], "isSpotTradingAllowed": False,
        "isMarginTradingAllowed": False, "quoteAmountPrecision": "5", "baseSizePrecision": "0.0001",
        "permissions": ["SPOT"], "filters": [], "maxQuoteAmount": "5000000", "makerCommission": "0.002",
        "takerCommission": "0.002", "quoteAmountPrecisionMarket": "1", "maxQuoteAmountMarket": "100000",
        "fullName": "METAL", "tradeSideType": 1,
    }
    no_size = {**documented, "symbol": "BTCUSDT", "quotePrecision": 2, "baseAssetPrecision": 6,
               "baseSizePrecision": "0", "quoteAmountPrecision": "1.000000000000000000"}
    body = json.dumps({"timezone": "CST", "serverTime": 1, "symbols": [documented, no_size]}).encode()
    rules = order_format("mexc").parse_exchange_info(body)
    assert rules["METALUSDT"] == SymbolRules("METALUSDT", D("0.001"), D("0.0001"), D("0.0001"), D(5), 3, 4)
    assert rules["BTCUSDT"] == SymbolRules("BTCUSDT", D("0.01"), D("0.000001"), D("0.000001"), D(1), 2, 6)
    assert str(rules["BTCUSDT"].min_notional) == "1"
    with pytest.raises(ProtocolError):
        order_format("mexc").parse_exchange_info(b'{"symbols":[{"symbol":"X"}]}')


def test_rate_headers_and_documented_limits() -> None:
    headers = {"x-mbx-used-weight-1m": "31", "x-mbx-order-count-10s": "2", "x-mbx-order-count-1d": "90",
               "retry-after": "3"}
    assert order_format("binance").parse_rate_headers(headers) == RateHeaders(31, 2, 90, 3.0)
    assert order_format("binance").parse_rate_headers({"X-MBX-USED-WEIGHT-1M": "7"}) == RateHeaders(7, None, None, None)
    assert order_format("binance").parse_rate_headers({"x-mbx-used-weight-1m": "lots"}).weight_1m is None
    assert order_format("mexc").parse_rate_headers(headers) == RateHeaders(None, None, None, 3.0)
    assert tuple(documented_limits("binance")) == (6000, 50, 160_000)
    assert tuple(documented_limits("mexc")) == (3000, 500, 0)
    # USD-M: 2400 weight per minute; orders budgeted 1200 / 6 per 10 s (its 1200 per minute), no daily limit
    assert tuple(documented_limits("binance_usdm")) == (2400, 200, 0)
