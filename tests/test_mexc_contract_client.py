"""MEXC contract as a venue draizer trades: ``MexcContractRestFormat`` (the ``PerpOrderFormat`` of ``mexc_contract``)
byte for byte and against the real simulator, driven by the executor's own ``VenueClient`` where it can.

Answer bodies marked "docs" are copied from https://mexcdevelop.github.io/apidocs/contract_v1_en/ (source
github.com/mexcdevelop/apidocs, branch contract_v1_en). The docs publish no signature example for the contract
API: each signature is checked against an independent HMAC-SHA256 over the documented target string (accessKey +
Request-Time + parameter string) and one is pinned.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from decimal import ROUND_HALF_EVEN, ROUND_UP, Decimal
from pathlib import Path
from typing import Any

import msgspec
import pytest

from services.executor.venue_client import VenueClient
from services.sim.app import Simulator
from services.sim.rate_limits_mexc_contract import ContractGate
from shared.errors import ProtocolError, VenueError
from shared.http.client import HttpPool, HttpResponse
from shared.messages import SIDE_SELL
from shared.registry import Registry
from shared.venues import order_format
from shared.venues.common import (
    ANSWER_OK,
    ANSWER_REJECTED,
    ANSWER_THROTTLED,
    ANSWER_UNKNOWN,
    CANCELED,
    FILLED,
    NEW,
    ORDER_MARKET,
    REJECTED,
    UNKNOWN,
    HttpRequest,
    OrderAnswer,
    OrderFormat,
    RateHeaders,
    SymbolRules,
    TradeFill,
)
from shared.venues.mexc import contract_orders as co
from shared.venues.mexc.contract_rest import MexcContractRestFormat
from shared.venues.order_template import OrderTemplate
from shared.venues.perp import FundingPaymentInfo, PerpOrderFormat, PerpPositionInfo
from tests.conftest import eventually_async
from tests.sim_kit import DEADLINE_S, sim_config

KEY = "mx0vglTESTKEY"
SECRET = "0123456789abcdef0123456789abcdef"
TS = 1700000000123
D = Decimal


def hmac_hex(target: str) -> str:
    return hmac.new(SECRET.encode(), target.encode(), hashlib.sha256).hexdigest()


def creds(recv_window_ms: int = 0) -> dict[str, Any]:
    return {"api_key": KEY, "api_secret": SECRET, "timestamp_ms": TS, "recv_window_ms": recv_window_ms}


def signed_headers(parameters: str, recv_window: str | None = None) -> list[tuple[str, str]]:
    """The documented headers, the signature an independent HMAC over accessKey + Request-Time + parameters."""
    out = [("ApiKey", KEY), ("Request-Time", str(TS)), ("Signature", hmac_hex(f"{KEY}{TS}{parameters}")),
           ("Content-Type", "application/json")]
    return out + ([("Recv-Window", recv_window)] if recv_window else [])


def envelope(data: object) -> bytes:
    return json.dumps({"success": True, "code": 0, "data": data}).encode()


# docs, get the contract information: BTC_USDT as printed (fields draizer reads; the rest left out); ETH_USDT
# with MEXC's listing of 0.01 ETH per contract, the symbol of the docs' order, deal and position examples.
BTC_DETAIL = {
    "symbol": "BTC_USDT", "displayNameEn": "BTC_USDT SWAP", "baseCoin": "BTC", "quoteCoin": "USDT",
    "settleCoin": "USDT", "contractSize": 0.0001, "minLeverage": 1, "maxLeverage": 125, "priceScale": 2,
    "volScale": 0, "amountScale": 4, "priceUnit": 0.5, "volUnit": 1, "minVol": 1, "maxVol": 5000000,
    "takerFeeRate": 0.0006, "makerFeeRate": 0.0002, "maintenanceMarginRate": 0.004, "initialMarginRate": 0.008,
    "state": 0, "apiAllowed": False,
}
ETH_DETAIL = {**BTC_DETAIL, "symbol": "ETH_USDT", "displayNameEn": "ETH_USDT SWAP", "baseCoin": "ETH",
              "contractSize": 0.01, "priceUnit": 0.01}
DETAIL = envelope([BTC_DETAIL, ETH_DETAIL])


def fmt_with_rules() -> MexcContractRestFormat:
    f = MexcContractRestFormat()
    f.parse_exchange_info(DETAIL)
    return f


# ----- declaration, symbols and rules
def test_the_kind_declares_this_format_its_limits_and_key_header() -> None:
    f = order_format("mexc_contract")
    assert isinstance(f, MexcContractRestFormat)
    typed: PerpOrderFormat = f  # the type checker's proof; below, every member the protocols name is there
    names = {n for p in (PerpOrderFormat, OrderFormat) for n in (*vars(p), *p.__annotations__) if n[0] != "_"}
    assert {"build_new_perp_order", "parse_funding_income", "build_cancel_all", "weights"} <= names
    assert [n for n in sorted(names) if not hasattr(typed, n)] == []
    assert (f.kind, f.quote_asset) == ("mexc_contract", "USDT")
    assert f.weights.exchange_info == 50 and f.weights.new_order == f.weights.query_order == 1
    assert order_format("mexc_contract") is not f  # each client its own (it remembers rules and setups)
    # No prepared template (a JSON body signed in headers): VenueClient takes the general path for every order.
    with pytest.raises(ValueError):
        OrderTemplate("mexc_contract", "BTCUSDT", "SELL", ORDER_MARKET, tick="0.01", step="0.00001", api_key="K",
                      api_secret="S", recv_window_ms=5000, base_url="http://127.0.0.1:1")


def test_exchange_info_in_base_units_by_draizers_name() -> None:
    f = MexcContractRestFormat()
    assert f.build_exchange_info(["BTCUSDT"]) == HttpRequest("GET", "/api/v1/contract/detail?symbol=BTC_USDT", [],
                                                             b"")
    assert f.build_exchange_info(["BTCUSDT", "ETHUSDT"]).path == "/api/v1/contract/detail"
    rules = f.parse_exchange_info(DETAIL)
    assert rules == {
        "BTCUSDT": SymbolRules("BTCUSDT", D("0.5"), D("0.0001"), D("0.0001"), D(0), 2, 4),
        "ETHUSDT": SymbolRules("ETHUSDT", D("0.01"), D("0.01"), D("0.01"), D(0), 2, 2),
    }
    assert f.wire_symbol("BTCUSDT") == "BTC_USDT" and f.contract_rules("ETHUSDT").contract_size == D("0.01")
    one = json.loads(DETAIL)
    one["data"] = BTC_DETAIL  # ?symbol= answers the one object
    assert MexcContractRestFormat().parse_exchange_info(json.dumps(one).encode()) == {"BTCUSDT": rules["BTCUSDT"]}
    with pytest.raises(ValueError, match="not a USDT-margined contract"):
        f.wire_symbol("BTCEUR")
    with pytest.raises(VenueError):
        f.parse_exchange_info(b'{"success":false,"code":1001,"message":"Contract does not exist"}')


def test_time_is_the_ping_answer() -> None:
    f = MexcContractRestFormat()
    assert f.build_time() == HttpRequest("GET", "/api/v1/contract/ping", [], b"")
    assert f.parse_time(b'{"success": true, "data":1587442022003}') == 1587442022003  # docs
    with pytest.raises(ProtocolError):
        f.parse_time(b'{"success": true, "data": "soon"}')


# ----- orders: exact requests
def test_an_ioc_sell_opens_a_short_in_contracts_with_exact_text() -> None:
    f = fmt_with_rules()
    req = f.build_new_order(symbol="BTCUSDT", side="SELL", price="97000.5", qty="0.0012", client_order_id="dz1s",
                            **creds(5000))
    body = '{"symbol":"BTC_USDT","price":97000.5,"vol":12,"side":3,"type":3,"openType":2,"externalOid":"dz1s"}'
    assert (req.method, req.path, req.body) == ("POST", "/api/v1/private/order/submit", body.encode())
    assert req.headers == signed_headers(body, "5")  # Recv-Window in seconds
    assert dict(req.headers)["Signature"] == "e2590575153489b37af3a21e0a3f3df47df8a31a1bfee0ebac1f2dbc4a43bde7"


def test_setup_is_remembered_for_openings_and_closes_carry_no_leverage() -> None:
    f = fmt_with_rules()
    assert f.build_setup(symbol="BTCUSDT", leverage=5, isolated=True, **creds()) == []
    req = f.build_new_perp_order(symbol="BTCUSDT", side="BUY", price=None, qty="0.01", client_order_id="o1",
                                 reduce_only=False, order_type=ORDER_MARKET, **creds())
    assert req.body == b'{"symbol":"BTC_USDT","vol":100,"leverage":5,"side":1,"type":5,"openType":1,"externalOid":"o1"}'
    assert req.headers == signed_headers(req.body.decode())
    close = f.build_new_perp_order(symbol="BTCUSDT", side="BUY", price="96999.5", qty="0.0025", client_order_id="c1",
                                   reduce_only=True, **creds())
    assert close.body == (b'{"symbol":"BTC_USDT","price":96999.5,"vol":25,"side":2,"type":3,"openType":1,'
                          b'"externalOid":"c1"}')  # buying back closes the short
    sell_close = f.build_new_perp_order(symbol="BTCUSDT", side="SELL", price="97000", qty="0.0001",
                                        client_order_id="c2", reduce_only=True, **creds())
    assert json.loads(sell_close.body)["side"] == co.SIDE_CLOSE_LONG
    other = f.build_new_order(symbol="ETHUSDT", side="SELL", price="3000.01", qty="0.03", client_order_id="e",
                              **creds())
    assert json.loads(other.body) == {"symbol": "ETH_USDT", "price": 3000.01, "vol": 3, "side": 3, "type": 3,
                                      "openType": 2, "externalOid": "e"}  # no setup: cross, the account's leverage
    for bad in (0, 126, True):
        with pytest.raises(ValueError):
            f.build_setup(symbol="BTCUSDT", leverage=bad, isolated=False, **creds())


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"qty": "0.00015"}, "not a whole number of steps of 0.0001"),  # never cut to 1 contract silently
        ({"qty": "0"}, "qty must be a positive number"),
        ({"qty": "1e-300"}, "not a whole number of steps"),
        ({"qty": "NaN"}, "qty must be a positive number"),
        ({"qty": "abc"}, "qty 'abc' is not a decimal"),
        ({"price": "-1"}, "price must be a positive number"),
        ({"price": None}, "an IOC order needs a positive price"),
        ({"side": "buy"}, "unknown side"),
        ({"symbol": "SOLUSDT"}, "no contract rules for 'SOLUSDT'"),
        ({"client_order_id": "a/b"}, "cannot go into a URL path"),
    ],
)
def test_new_order_refuses_bad_input_clearly(change: dict[str, Any], message: str) -> None:
    order: dict[str, Any] = {"symbol": "BTCUSDT", "side": "SELL", "price": "97000.5", "qty": "0.0012",
                             "client_order_id": "dz1s", **change}
    with pytest.raises(ValueError, match=message):
        fmt_with_rules().build_new_order(**order, **creds())


def test_query_cancel_lists_and_cancel_all_requests() -> None:
    f = fmt_with_rules()
    q = f.build_query_order(symbol="BTCUSDT", client_order_id="dz1s", **creds())
    assert (q.method, q.path, q.body) == ("GET", "/api/v1/private/order/external/BTC_USDT/dz1s", b"")
    assert q.headers == signed_headers("")  # path parameters are not signed
    c = f.build_cancel_order(symbol="BTCUSDT", client_order_id="dz1s", **creds())
    body = '{"symbol":"BTC_USDT","externalOid":"dz1s"}'
    assert (c.method, c.path, c.body) == ("POST", "/api/v1/private/order/cancel_with_external", body.encode())
    assert c.headers == signed_headers(body)
    a = f.build_cancel_all(symbol="BTCUSDT", **creds())
    assert (a.method, a.path, a.body) == ("POST", "/api/v1/private/order/cancel_all", b'{"symbol":"BTC_USDT"}')
    assert a.headers == signed_headers('{"symbol":"BTC_USDT"}')
    o = f.build_open_orders(symbol="BTCUSDT", **creds())
    assert o.path == "/api/v1/private/order/list/open_orders/BTC_USDT?page_num=1&page_size=100"
    assert o.headers == signed_headers("page_num=1&page_size=100")
    assert f.build_open_orders(symbol=None, **creds()).path.startswith("/api/v1/private/order/list/open_orders?")
    t = f.build_my_trades(symbol="BTCUSDT", order_id="102015012431820288", **creds())
    assert (t.method, t.path) == ("GET", "/api/v1/private/order/deal_details/102015012431820288")
    assert t.headers == signed_headers("")
    with pytest.raises(ValueError, match="give the order id"):
        f.build_my_trades(symbol="BTCUSDT", order_id=None, **creds())
    acct = f.build_account(**creds())
    assert (acct.path, acct.headers) == ("/api/v1/private/account/assets", signed_headers(""))
    assets, positions, ticker = f.build_perp_account(**creds())
    assert assets == acct and positions.path == "/api/v1/private/position/open_positions"
    assert ticker == HttpRequest("GET", "/api/v1/contract/ticker", [], b"")  # public: unsigned
    funding = f.build_funding_income(start_ms=1, **creds())
    assert funding.path == "/api/v1/private/position/funding_records?page_num=1&page_size=100"


# ----- answers
SUBMIT_OK = b'{"success": true, "code": 0, "data": 102057569836905984}'  # docs, order submit
QUERY_OK = {  # docs, query the order based on the external number
    "orderId": "102015012431820288", "symbol": "ETH_USDT", "positionId": 1394917, "price": 1209.05, "vol": 1,
    "leverage": 0, "side": 2, "category": 1, "orderType": 5, "dealAvgPrice": 1208.35, "dealVol": 1,
    "orderMargin": 0, "takerFee": 0.0072501, "makerFee": 0, "profit": 0, "feeCurrency": "USDT", "openType": 1,
    "state": 3, "externalOid": "_m_f95eb99b061d4eef8f64a04e9ac4dad3", "errorCode": 0, "usedMargin": 0,
    "createTime": 1609992674000, "updateTime": 1609992674000,
}


def test_submit_and_query_answers() -> None:
    f = fmt_with_rules()
    assert f.parse_order(200, SUBMIT_OK, {}) == OrderAnswer(
        ANSWER_OK, NEW, "", "102057569836905984", "", D(0), D(0), None, 0, "", 200, 0.0)
    assert f.parse_order(200, envelope(QUERY_OK), {}, new_order=False) == OrderAnswer(
        ANSWER_OK, FILLED, "3", "102015012431820288", "_m_f95eb99b061d4eef8f64a04e9ac4dad3", D("0.01"),
        D("12.0835"), None, 0, "", 200, 0.0)  # 1 contract of 0.01 ETH at 1208.35, exact
    partial = envelope({**QUERY_OK, "vol": 7, "dealVol": 3, "state": 4})
    a = f.parse_order(200, partial, {}, new_order=False)
    assert (a.status, a.venue_status, a.executed_qty, a.cum_quote) == (CANCELED, "4", D("0.03"), D("36.2505"))
    unknown_contract = f.parse_order(200, envelope({**QUERY_OK, "symbol": "SOL_USDT"}), {}, new_order=False)
    assert (unknown_contract.kind, unknown_contract.status) == (ANSWER_UNKNOWN, UNKNOWN)
    assert "no contract rules for SOL_USDT" in unknown_contract.error_msg
    # Before contract/detail the volumes cannot be read: unknown, never a guess.
    assert MexcContractRestFormat().parse_order(200, envelope(QUERY_OK), {}, new_order=False).kind == ANSWER_UNKNOWN
    assert f.parse_order(200, envelope({**QUERY_OK, "state": 9}), {}, new_order=False).kind == ANSWER_UNKNOWN


@pytest.mark.parametrize(
    ("status", "body", "headers", "kind", "code", "msg", "retry"),
    [
        (200, b'{"success":false,"code":602,"message":"Verify failed"}', {}, ANSWER_REJECTED, 602, "Verify failed", 0),
        (200, b'{"success":false,"code":2005,"message":"Balance insufficient"}', {}, ANSWER_REJECTED, 2005,
         "Balance insufficient", 0),
        (200, b'{"success":false,"code":513,"message":"Invalid request"}', {}, ANSWER_REJECTED, 513,
         "Invalid request", 0),
        (200, b'{"success":false,"code":500,"message":"System internal error!"}', {}, ANSWER_UNKNOWN, 500,
         "System internal error!", 0),
        (429, b'{"success":false,"code":510,"message":"Excessive frequency of requests"}', {"Retry-After": "3"},
         ANSWER_THROTTLED, 510, "Excessive frequency of requests", 3.0),
        (200, b'{"success":false,"code":510,"message":"Excessive frequency of requests"}', {}, ANSWER_THROTTLED, 510,
         "Excessive frequency of requests", 0),
        (502, b"<html>", {}, ANSWER_UNKNOWN, 0, "HTTP 502: <html>", 0),
    ],
)
def test_refusals_keep_the_venues_code(status: int, body: bytes, headers: dict[str, str], kind: str, code: int,
                                       msg: str, retry: float) -> None:
    f = fmt_with_rules()
    placed = f.parse_order(status, body, headers)
    assert (placed.kind, placed.error_code, placed.error_msg, placed.retry_after_s) == (kind, code, msg, retry)
    assert placed.status == (REJECTED if kind in (ANSWER_REJECTED, ANSWER_THROTTLED) else UNKNOWN)
    query = f.parse_order(status, body, headers, new_order=False)
    assert (query.kind, query.status, query.error_code) == (kind, UNKNOWN, code)
    assert f.parse_error(status, body) == (code, msg)
    assert (code in f.timestamp_codes) == (code == 513)


def test_cancel_answers() -> None:
    f = fmt_with_rules()
    for code, msg in ((2040, "order not exist"), (2041, "order state cannot be cancelled")):
        a = f.parse_order(200, json.dumps({"success": False, "code": code, "message": msg}).encode(), {},
                          new_order=False)
        assert (a.kind, a.status, a.error_code, a.error_msg) == (ANSWER_REJECTED, UNKNOWN, code, msg)
        assert f.not_found(a)  # nothing open by that id
    taken = f.parse_order(200, b'{"success":true,"code":0}', {}, new_order=False)
    assert (taken.kind, taken.status, taken.error_code) == (ANSWER_UNKNOWN, UNKNOWN, 0) and not f.not_found(taken)
    item = b'{"success":true,"code":0,"data":[{"orderId":1,"errorCode":2040,"errorMsg":"order not exist"}]}'
    assert f.not_found(f.parse_order(200, item, {}, new_order=False))
    assert not f.not_found(f.parse_order(200, b'{"success":false,"code":500,"message":"x"}', {}, new_order=False))


def test_order_lists_and_the_cancel_all_answer() -> None:
    f = fmt_with_rules()
    listed = f.parse_order_list(200, envelope([QUERY_OK, {**QUERY_OK, "state": 2, "dealVol": 0}]), {})
    assert [(a.status, a.executed_qty) for a in listed] == [(FILLED, D("0.01")), ("NEW", D(0))]
    assert f.parse_order_list(200, b'{"success":true,"code":0}', {}) == []  # cancel_all: the bare envelope
    assert f.parse_order_list(200, envelope([]), {}) == []
    with pytest.raises(VenueError) as err:
        f.parse_order_list(200, b'{"success":false,"code":401,"message":"Unauthorized"}', {})
    assert (err.value.code, err.value.msg) == (401, "Unauthorized")
    with pytest.raises(ProtocolError):
        f.parse_order_list(200, b'{"success":true,"code":0,"data":{"x":1}}', {})


DEALS = {  # docs, get order transaction details based on the order ID
    "id": "159274416", "symbol": "ETH_USDT", "side": 2, "vol": 1, "price": 1208.35, "feeCurrency": "USDT",
    "fee": 0.0072501, "timestamp": 1609992674000, "profit": 0, "category": 1, "orderId": "102015012431820288",
    "taker": True,
}


def test_trades_are_the_orders_deals_in_base_units() -> None:
    f = fmt_with_rules()
    assert f.parse_my_trades(envelope([DEALS, {**DEALS, "id": 159274417, "vol": 3, "fee": 0.0217503}])) == [
        TradeFill("159274416", D("1208.35"), D("0.01"), D("0.0072501"), "USDT"),
        TradeFill("159274417", D("1208.35"), D("0.03"), D("0.0217503"), "USDT"),
    ]
    with pytest.raises(ProtocolError, match="SOL_USDT"):
        f.parse_my_trades(envelope([{**DEALS, "symbol": "SOL_USDT"}]))
    with pytest.raises(VenueError):
        f.parse_my_trades(b'{"success":false,"code":703,"message":"Trade information read permission"}')


ASSETS = envelope([  # docs, get all informations of user's asset
    {"currency": "BTC", "positionMargin": 0, "availableBalance": 0, "cashBalance": 0, "frozenBalance": 0,
     "equity": 0, "unrealized": 0, "bonus": 0},
    {"currency": "USDT", "positionMargin": 0, "availableBalance": 0.03176562, "cashBalance": 0.03176562,
     "frozenBalance": 0, "equity": 0.03176562, "unrealized": 0, "bonus": 0},
])


def test_account_balances_and_fee_fallback() -> None:
    f = fmt_with_rules()
    info = f.parse_account(ASSETS, fallback=(D("0"), D("0.0002")))
    assert info.balances == {"BTC": (D(0), D(0)), "USDT": (D("0.03176562"), D(0))}
    assert (info.maker_fee, info.taker_fee) == (D(0), D("0.0002"))
    with pytest.raises(ProtocolError, match="no commission rates"):
        f.parse_account(ASSETS)


POSITION = {  # docs, get the user's current holding position
    "positionId": 1394650, "symbol": "ETH_USDT", "positionType": 1, "openType": 1, "state": 1, "holdVol": 1,
    "frozenVol": 0, "closeVol": 0, "holdAvgPrice": 1217.3, "openAvgPrice": 1217.3, "closeAvgPrice": 0,
    "liquidatePrice": 1211.2, "oim": 0.1290338, "im": 0.1290338, "holdFee": 0, "realised": -0.0073,
    "leverage": 100, "createTime": 1609991676000, "updateTime": 1609991676000, "autoAddIm": False,
}
TICKER = {  # docs, get contract trend data (BTC_USDT's), here for ETH_USDT
    "symbol": "ETH_USDT", "lastPrice": 1219, "bid1": 1218.99, "ask1": 1219.01, "volume24": 40146908,
    "amount24": 124905007.4428, "holdVol": 55102960, "lower24Price": 1195, "high24Price": 1233.5,
    "riseFallRate": -0.0176, "riseFallValue": -562, "indexPrice": 1218.3, "fairPrice": 1219.5, "fundingRate": 0.001,
    "maxBidPrice": 1250, "minAskPrice": 1190, "timestamp": 1609831334016,
}


def test_perp_account_in_signed_base_units() -> None:
    f = fmt_with_rules()
    short = {**POSITION, "positionId": 1394651, "positionType": 2, "openType": 2, "holdVol": 3,
             "holdAvgPrice": 1220, "liquidatePrice": 0, "im": 0.366, "leverage": 10}
    assets = envelope([{"currency": "USDT", "positionMargin": 0.4950338, "availableBalance": 100.1, "cashBalance": 100,
                        "frozenBalance": 0, "equity": 100.6, "unrealized": 0.037}])
    info = f.parse_perp_account([assets, envelope([POSITION, short]), envelope([TICKER])])
    long_pos, short_pos = info.positions
    assert long_pos == PerpPositionInfo("ETH_USDT", D("0.01"), D("1217.3"), D("1219.5"), D("1211.2"), 100, True,
                                        D("0.1290338"), D("0.022"))  # 0.01 x (1219.5 - 1217.3)
    assert short_pos == PerpPositionInfo("ETH_USDT", D("-0.03"), D("1220"), D("1219.5"), D(0), 10, False,
                                         D("0.366"), D("0.015"))  # -0.03 x (1219.5 - 1220): a short gains
    assert (info.wallet, info.margin_balance, info.available) == (D("100.563"), D("100.6"), D("100.1"))
    assert info.maint_margin == D("0.04") * D("1219.5") * D("0.004")
    closed = {**POSITION, "state": 3}
    assert f.parse_perp_account([assets, envelope([closed]), envelope([TICKER])]).positions == ()
    with pytest.raises(ProtocolError, match="without its contract rules or ticker"):
        f.parse_perp_account([assets, envelope([POSITION]), envelope([{**TICKER, "symbol": "BTC_USDT"}])])
    with pytest.raises(ValueError):
        f.parse_perp_account([assets])


FUNDING = envelope({  # docs, get details of user's funding rate
    "pageSize": 2, "totalCount": 73, "totalPage": 37, "currentPage": 1,
    "resultList": [
        {"id": 328033, "symbol": "SUSHI_USDT", "positionType": 1, "positionValue": 41.8899, "funding": 0.0837798,
         "rate": -0.002, "settleTime": 1606435200000},
        {"id": 327194, "symbol": "SUSHI_USDT", "positionType": 1, "positionValue": 34.2654, "funding": 0.0685308,
         "rate": -0.002, "settleTime": 1606406400000},
    ],
})


def test_funding_income_from_the_records_since_start() -> None:
    f = MexcContractRestFormat()
    f.build_funding_income(start_ms=0, **creds())
    assert f.parse_funding_income(FUNDING) == [  # oldest first
        FundingPaymentInfo("327194", "SUSHI_USDT", D("0.0685308"), 1606406400000),
        FundingPaymentInfo("328033", "SUSHI_USDT", D("0.0837798"), 1606435200000),
    ]
    f.build_funding_income(start_ms=1606406400001, **creds())
    assert [p.payment_id for p in f.parse_funding_income(FUNDING)] == ["328033"]


def test_rate_headers_carry_only_retry_after() -> None:
    f = MexcContractRestFormat()
    assert f.parse_rate_headers({"retry-after": "2"}) == RateHeaders(None, None, None, 2.0)
    assert f.parse_rate_headers({"x-mbx-used-weight-1m": "3"}) == RateHeaders(None, None, None, None)


def test_the_simulators_gate_counts_each_endpoint_in_its_documented_window() -> None:
    now = [100.0]
    gate = ContractGate(clock=lambda: now[0])
    assert all(gate.admit("GET", "/api/v1/contract/ping") is None for _ in range(20))
    assert gate.admit("GET", "/api/v1/contract/ping") == 2  # 20 / 2 s
    assert gate.admit("POST", co.SUBMIT_PATH) is None  # another endpoint, its own window
    assert gate.admit("GET", co.CONTRACT_DETAIL_PATH) is None
    now[0] += 4.0
    assert gate.admit("GET", co.CONTRACT_DETAIL_PATH) == 1  # 1 / 5 s
    assert gate.admit("GET", "/api/v1/contract/ping") is None  # a new 2 s window
    gate.fault(2.5)
    assert gate.admit("POST", co.SUBMIT_PATH) == 3 and gate.limited == 3


# ----- against the simulator
PERP = "mexc_perp"
SIM_KEY, SIM_SECRET = "ckey", "csecret"
SIM_CREDS = {PERP: (SIM_KEY, SIM_SECRET)}
START = D(1_000_000)  # sim.starting_balance_usd
FEE = D("0.0002")  # mexc_perp taker fee (default config)
MMR = D("0.004")  # the sim's maintenance margin rate = its contract detail's maintenanceMarginRate
EIGHT = D("1e-8")


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def fee(notional: Decimal) -> Decimal:
    return (notional * FEE).quantize(EIGHT, ROUND_UP)


async def send(sim: Simulator, req: HttpRequest) -> HttpResponse:
    pool = HttpPool(sim.rest_url(PERP), size=1)
    try:
        return await asyncio.wait_for(pool.request(req.method, req.path, req.headers, req.body), DEADLINE_S)
    finally:
        await pool.close()


def sim_auth(secret: str = SIM_SECRET, ts_offset_ms: int = 0) -> dict[str, Any]:
    return {"api_key": SIM_KEY, "api_secret": secret, "timestamp_ms": now_ms() + ts_offset_ms, "recv_window_ms": 5000}


async def perp_account(sim: Simulator, f: MexcContractRestFormat) -> Any:
    bodies = [(await send(sim, r)).body for r in f.build_perp_account(**sim_auth())]
    return f.parse_perp_account(bodies)


async def query(sim: Simulator, f: MexcContractRestFormat, cid: str) -> OrderAnswer:
    resp = await send(sim, f.build_query_order(symbol="BTCUSDT", client_order_id=cid, **sim_auth()))
    return f.parse_order(resp.status, resp.body, resp.headers, new_order=False)


@pytest.fixture
async def client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[tuple[Simulator, VenueClient]]:
    """The executor's VenueClient on the simulated MEXC contract venue (no timer: the mark moves when told)."""
    monkeypatch.setenv("DRAIZER_TEST_MEXC_PERP_KEY", SIM_KEY)
    monkeypatch.setenv("DRAIZER_TEST_MEXC_PERP_SECRET", SIM_SECRET)
    async with Simulator(sim_config(tmp_path), SIM_CREDS, emit_quotes=False) as sim:
        sim.push_funding()  # a published mark: orders trade around it
        venue = next(v for v in sim.cfg.venues if v.name == PERP)
        venue = msgspec.structs.replace(venue, rest_url=sim.rest_url(PERP), api_key_env="DRAIZER_TEST_MEXC_PERP_KEY",
                                        api_secret_env="DRAIZER_TEST_MEXC_PERP_SECRET")
        c = VenueClient(venue, Registry(sim.cfg), 5.0)
        try:
            await asyncio.wait_for(c.start(), DEADLINE_S)
            yield sim, c
        finally:
            await c.close()


async def test_venue_client_shorts_queries_reads_trades_account_and_closes_without_flipping(
    client: tuple[Simulator, VenueClient],
) -> None:
    sim, c = client
    f = c.fmt
    assert isinstance(f, MexcContractRestFormat)
    s = c.registry.symbol_id["BTCUSDT"]
    assert c.started and abs(c.clock_offset_ms) < 1000  # contract/ping
    assert c.rules_for(s) == SymbolRules("BTCUSDT", D("0.01"), D("0.00001"), D("0.00001"), D(0), 2, 5)
    assert (c.maker_fee, c.taker_fee) == (D("0.0"), FEE)  # the config's: MEXC's assets state no rates
    f.build_setup(symbol="BTCUSDT", leverage=5, isolated=True, **sim_auth())
    book = sim.venue(PERP).book
    touch = book.touch(book.index["BTCUSDT"])
    bid, ask, mark = touch.bid, touch.ask, touch.mark

    placed = await asyncio.wait_for(c.send_order(s, SIDE_SELL, "0.01", format(bid, "f"), "dzshort1"), DEADLINE_S)
    assert (placed.kind, placed.status, placed.client_order_id, placed.executed_qty) == (ANSWER_OK, NEW, "dzshort1", 0)
    found = await c.query_order(s, "dzshort1")
    assert (found.kind, found.status, found.order_id, found.executed_qty, found.cum_quote) == (
        ANSWER_OK, FILLED, placed.order_id, D("0.01"), D("0.01") * bid)
    commission = fee(D("0.01") * bid)
    [fill] = sim.perp_account(PERP, SIM_KEY)["orders"][0]["trade_ids"]
    assert await c.my_trades(s, placed.order_id) == [TradeFill(str(fill), bid, D("0.01"), commission, "USDT")]

    cost = D("0.01") * bid
    im = (cost / 5).quantize(EIGHT, ROUND_UP)
    unrealized = cost - D("0.01") * mark
    info = await perp_account(sim, f)
    liquidation = ((bid + im / D("0.01")) / (1 + MMR)).quantize(EIGHT, ROUND_HALF_EVEN)
    assert info.positions == (PerpPositionInfo("BTC_USDT", D("-0.01"), bid, mark, liquidation, 5, True, im,
                                               unrealized),)
    assert (info.wallet, info.margin_balance) == (START - commission, START - commission + unrealized)
    assert info.available == START - commission + unrealized - im
    assert info.maint_margin == D("0.01") * mark * MMR
    account = await c.account()
    assert account.balances == {"USDT": (info.available, D(0))}

    # A reduce-only buy twice the position: cut to it, the position closes and no long appears.
    req = f.build_new_perp_order(symbol="BTCUSDT", side="BUY", price=format(ask, "f"), qty="0.02",
                                 client_order_id="dzclose1", reduce_only=True, **sim_auth())
    assert json.loads(req.body)["side"] == co.SIDE_CLOSE_SHORT
    resp = await send(sim, req)
    closed = f.parse_order(resp.status, resp.body, resp.headers)
    assert closed.kind == ANSWER_OK
    found = await c.query_order(s, "dzclose1")
    assert (found.status, found.executed_qty, found.cum_quote) == (CANCELED, D("0.01"), D("0.01") * ask)
    [trade] = await c.my_trades(s, found.order_id)
    assert (trade.qty, trade.price, trade.commission) == (D("0.01"), ask, fee(D("0.01") * ask))
    assert (await perp_account(sim, f)).positions == ()
    assert sim.perp_account(PERP, SIM_KEY)["positions"] == []

    # Final orders: a cancel finds nothing open; cancel_all and the open orders list nothing.
    cancel = await c.cancel_order(s, "dzshort1")
    assert (cancel.kind, cancel.error_code) == (ANSWER_REJECTED, co.ERR_NOT_CANCELLABLE) and c.not_found(cancel)
    assert c.not_found(await c.cancel_order(s, "never-sent"))
    assert await c.cancel_all(s) == [] and await c.open_orders(s) == [] and await c.open_orders() == []
    missing = await c.query_order(s, "never-sent")
    assert (missing.kind, missing.error_code) == (ANSWER_REJECTED, co.ERR_ORDER_NOT_EXIST) and c.not_found(missing)


async def test_refusals_from_the_simulated_venue(client: tuple[Simulator, VenueClient]) -> None:
    sim, c = client
    f = c.fmt
    assert isinstance(f, MexcContractRestFormat)
    for auth, code in ((sim_auth(secret="wrong"), co.ERR_SIGNATURE), (sim_auth(ts_offset_ms=-60_000), 513)):
        req = f.build_new_order(symbol="BTCUSDT", side="SELL", price=None, qty="0.01", client_order_id="bad1",
                                order_type=ORDER_MARKET, **auth)
        resp = await send(sim, req)
        a = f.parse_order(resp.status, resp.body, resp.headers)
        assert (a.kind, a.status, a.error_code) == (ANSWER_REJECTED, REJECTED, code)
    close = f.build_new_perp_order(symbol="BTCUSDT", side="SELL", price=None, qty="0.01", client_order_id="noclose",
                                   reduce_only=True, order_type=ORDER_MARKET, **sim_auth())
    resp = await send(sim, close)  # nothing to close: refused, never an opening
    assert (f.parse_order(resp.status, resp.body, resp.headers).error_code) == 2009
    sim.inject_order_fault(PERP, "rate_limit", seconds=3.0)
    resp = await send(sim, f.build_time())
    assert resp.status == 429 and f.parse_error(resp.status, resp.body) == (co.ERR_TOO_FREQUENT,
                                                                           "Excessive frequency of requests")
    a = f.parse_order(resp.status, resp.body, resp.headers)
    assert (a.kind, a.retry_after_s) == (ANSWER_THROTTLED, float(resp.headers["retry-after"]))
    assert sim.perp_account(PERP, SIM_KEY)["orders"] == []


async def test_funding_records_after_a_settlement(tmp_path: Path) -> None:
    cfg = sim_config(tmp_path, funding_period_s=1, quotes_per_second=50.0, funding_push_interval_ms=200)
    async with Simulator(cfg, SIM_CREDS) as sim:  # the timer pushes funding and settles every second
        f = MexcContractRestFormat()
        info = await send(sim, f.build_exchange_info(["BTCUSDT"]))
        f.parse_exchange_info(info.body)
        req = f.build_new_order(symbol="BTCUSDT", side="SELL", price=None, qty="0.01", client_order_id="fshort",
                                order_type=ORDER_MARKET, **sim_auth())
        resp = await send(sim, req)
        assert f.parse_order(resp.status, resp.body, resp.headers).kind == ANSWER_OK
        await eventually_async(lambda: sim.perp_account(PERP, SIM_KEY)["funding"], DEADLINE_S, "a funding payment")
        resp = await send(sim, f.build_funding_income(start_ms=0, **sim_auth()))
        payments = f.parse_funding_income(resp.body)
        listed = sim.perp_account(PERP, SIM_KEY)["funding"]  # read after: it holds every payment answered
        assert payments and payments == [
            FundingPaymentInfo(str(p["tran_id"]), "BTC_USDT", D(p["amount"]), p["time"]) for p in listed[:len(payments)]
        ]
        for p in listed[:len(payments)]:  # a short receives rate x its value (pays a negative rate), exactly
            assert D(p["amount"]) == D(p["position_value"]) * D(p["rate"])
        f.build_funding_income(start_ms=payments[-1].time_ms + 1, **sim_auth())
        assert f.parse_funding_income(resp.body) == []
