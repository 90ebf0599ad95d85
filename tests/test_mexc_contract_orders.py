"""MEXC contract v1 order wire format (pure code): exact signed requests, documented answers, contract conversions.

Answer bodies marked "docs" are copied from https://mexcdevelop.github.io/apidocs/contract_v1_en/ (source
github.com/mexcdevelop/apidocs, branch contract_v1_en, 2025-04-17). The docs publish no signature example for the
contract API, so signatures are checked against an independent HMAC over the documented target string
(accessKey + Request-Time + parameter string) and pinned.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.errors import ProtocolError, VenueError
from shared.venues.common import (
    ANSWER_OK,
    ANSWER_REJECTED,
    ANSWER_THROTTLED,
    ANSWER_UNKNOWN,
    CANCELED,
    FILLED,
    NEW,
    ORDER_MARKET,
    PARTIALLY_FILLED,
    REJECTED,
    UNKNOWN,
    SymbolRules,
)
from shared.venues.mexc import contract_orders as co
from shared.venues.mexc.contract_orders import (
    ContractRules,
    MexcContractOrderFormat,
    base_to_contracts,
    contract_side,
    contracts_to_base,
)

KEY = "mx0vglTESTKEY"
SECRET = "0123456789abcdef0123456789abcdef"
TS = 1700000000123
FMT = MexcContractOrderFormat()


def hmac_hex(target: str) -> str:
    return hmac.new(SECRET.encode(), target.encode(), hashlib.sha256).hexdigest()


def creds(recv_window_ms: int = 0) -> dict[str, str | int]:
    return {"api_key": KEY, "api_secret": SECRET, "timestamp_ms": TS, "recv_window_ms": recv_window_ms}


def headers_of(signature: str) -> list[tuple[str, str]]:
    return [("ApiKey", KEY), ("Request-Time", str(TS)), ("Signature", signature), ("Content-Type", "application/json")]


def rules(
    symbol: str = "BTC_USDT", contract_size: str = "0.0001", vol_unit: str = "1", min_vol: str = "1"
) -> ContractRules:
    return ContractRules(
        symbol, symbol.split("_")[0], "USDT", "USDT", Decimal(contract_size), Decimal("0.1"), Decimal(vol_unit),
        Decimal(min_vol), Decimal("5000000"), 1, 125, 1, 0, Decimal("0.0006"), Decimal("0.0002"), 0, True,
    )


# ETH_USDT, the symbol of the docs' order and position examples: 0.01 ETH per contract (MEXC's listing).
ETH = rules("ETH_USDT", contract_size="0.01")


# ----- requests
def test_new_order_exact_body_headers_and_signature() -> None:
    req = FMT.build_new_order(
        symbol="BTC_USDT", side=co.SIDE_OPEN_LONG, vol=Decimal("12"), price=Decimal("97000.5"),
        client_order_id="dz1-abc", open_type=co.OPEN_ISOLATED, leverage=5, **creds(),
    )
    body = (
        '{"symbol":"BTC_USDT","price":97000.5,"vol":12,"leverage":5,"side":1,"type":3,"openType":1,'
        '"externalOid":"dz1-abc"}'
    )
    assert (req.method, req.path, req.body) == ("POST", "/api/v1/private/order/submit", body.encode())
    signature = hmac_hex(f"{KEY}{TS}{body}")  # the POST parameter string is the JSON body as sent
    assert signature == "298973638db1edb9978ec1572f3da5ac249ded114edbbaa3ebb6d865a2a8e5d0"
    assert req.headers == headers_of(signature)
    assert json.loads(req.body) == {
        "symbol": "BTC_USDT", "price": 97000.5, "vol": 12, "leverage": 5, "side": 1, "type": 3, "openType": 1,
        "externalOid": "dz1-abc",
    }


def test_numbers_go_out_as_decimal_text_never_float_repr() -> None:
    req = FMT.build_new_order(
        symbol="PEPE_USDT", side=co.SIDE_OPEN_SHORT, vol=Decimal("1E+1"), price=Decimal("1E-7"),
        client_order_id="x", open_type=co.OPEN_CROSS, leverage=None, **creds(),
    )
    assert req.body == (
        b'{"symbol":"PEPE_USDT","price":0.0000001,"vol":10,"side":3,"type":3,"openType":2,"externalOid":"x"}'
    )
    req = FMT.build_new_order(
        symbol="BTC_USDT", side=co.SIDE_OPEN_LONG, vol=Decimal("3"), price=Decimal("0.30000000000000004441"),
        client_order_id="x", open_type=co.OPEN_CROSS, leverage=None, **creds(),
    )
    assert b'"price":0.30000000000000004441,' in req.body  # the caller's digits, untouched
    with pytest.raises(TypeError):
        co.json_body([("price", 0.1)])  # type: ignore[list-item]  # a float never reaches the wire


def test_close_orders_use_the_close_sides() -> None:
    assert contract_side("BUY", close=False) == co.SIDE_OPEN_LONG == 1
    assert contract_side("SELL", close=False) == co.SIDE_OPEN_SHORT == 3
    assert contract_side("SELL", close=True) == co.SIDE_CLOSE_LONG == 4  # selling closes a long
    assert contract_side("BUY", close=True) == co.SIDE_CLOSE_SHORT == 2  # buying closes a short
    with pytest.raises(ValueError):
        contract_side("buy", close=True)
    for engine_side, wire_side in (("SELL", 4), ("BUY", 2)):
        # An isolated close needs no leverage; reduceOnly and positionId go out only when asked for.
        req = FMT.build_new_order(
            symbol="BTC_USDT", side=contract_side(engine_side, close=True), vol=Decimal("5"), price=None,
            client_order_id="dz1-close", open_type=co.OPEN_ISOLATED, leverage=None, order_type=ORDER_MARKET,
            reduce_only=True, position_id=1394650, **creds(),
        )
        assert req.body == (
            f'{{"symbol":"BTC_USDT","vol":5,"side":{wire_side},"type":5,"openType":1,"positionId":1394650,'
            f'"externalOid":"dz1-close","reduceOnly":true}}'
        ).encode()


def test_market_order_sends_no_price() -> None:
    req = FMT.build_new_order(
        symbol="BTC_USDT", side=co.SIDE_OPEN_LONG, vol=Decimal("1"), price=Decimal("97000"), client_order_id="m",
        open_type=co.OPEN_CROSS, leverage=20, order_type=ORDER_MARKET, **creds(),
    )
    assert req.body == b'{"symbol":"BTC_USDT","vol":1,"leverage":20,"side":1,"type":5,"openType":2,"externalOid":"m"}'


@pytest.mark.parametrize(
    "change",
    [
        {"client_order_id": "x" * 33},  # error 2030: externalOid at most 32
        {"client_order_id": "a/b"},  # would change the query path
        {"client_order_id": ""},
        {"vol": Decimal("0")},
        {"vol": Decimal("NaN")},
        {"price": None},  # an IOC needs a price
        {"price": Decimal("-1")},
        {"leverage": None},  # isolated opening without leverage
        {"leverage": 0},
        {"side": 5},
        {"open_type": 3},
        {"order_type": "limit_gtc"},
    ],
)
def test_new_order_refuses_what_the_venue_would(change: dict[str, object]) -> None:
    args: dict[str, object] = {
        "symbol": "BTC_USDT", "side": co.SIDE_OPEN_LONG, "vol": Decimal("1"), "price": Decimal("1"),
        "client_order_id": "ok", "open_type": co.OPEN_ISOLATED, "leverage": 10, **creds(),
    }
    with pytest.raises(ValueError):
        FMT.build_new_order(**{**args, **change})  # type: ignore[arg-type]


def test_get_signs_the_sorted_query_it_sends() -> None:
    req = FMT.build_funding_records(symbol="BTC_USDT", position_id=1394650, page=2, page_size=20, **creds())
    query = "page_num=2&page_size=20&position_id=1394650&symbol=BTC_USDT"  # dictionary order
    signature = hmac_hex(f"{KEY}{TS}{query}")
    assert signature == "2c5b77782ac59d9c43a2605768be93514cf0d841a5f7bc09ed9c4a9b7d0bbdca"
    assert req == ("GET", f"/api/v1/private/position/funding_records?{query}", headers_of(signature), b"")


def test_null_parameters_are_neither_sent_nor_signed() -> None:
    req = FMT.build_funding_records(symbol=None, **creds())
    query = "page_num=1&page_size=100"
    assert req.path == f"/api/v1/private/position/funding_records?{query}"
    assert req.headers == headers_of(hmac_hex(f"{KEY}{TS}{query}"))
    req = FMT.build_open_positions(symbol=None, **creds())
    assert req.path == "/api/v1/private/position/open_positions"
    assert req.headers == headers_of(hmac_hex(f"{KEY}{TS}"))  # no parameters: the parameter string is ""


def test_path_parameters_are_not_signed() -> None:
    req = FMT.build_query_order(symbol="ETH_USDT", client_order_id="dz1-abc", **creds())
    assert (req.method, req.path, req.body) == ("GET", "/api/v1/private/order/external/ETH_USDT/dz1-abc", b"")
    assert req.headers == headers_of(hmac_hex(f"{KEY}{TS}"))
    req = FMT.build_query_order_by_id(order_id="102015012431820288", **creds())
    assert req.path == "/api/v1/private/order/get/102015012431820288"
    req = FMT.build_open_orders(symbol="ETH_USDT", **creds())
    assert req.path == "/api/v1/private/order/list/open_orders/ETH_USDT?page_num=1&page_size=100"
    assert req.headers == headers_of(hmac_hex(f"{KEY}{TS}page_num=1&page_size=100"))
    with pytest.raises(ValueError):
        FMT.build_query_order(symbol="ETH_USDT/../x", client_order_id="a", **creds())
    with pytest.raises(ValueError):
        FMT.build_query_order_by_id(order_id="12a", **creds())


def test_cancel_requests() -> None:
    req = FMT.build_cancel_order(order_id="108886241042563584", **creds())
    assert (req.method, req.path, req.body) == ("POST", "/api/v1/private/order/cancel", b"[108886241042563584]")
    assert req.headers == headers_of(hmac_hex(f"{KEY}{TS}[108886241042563584]"))
    req = FMT.build_cancel_by_client_id(symbol="BTC_USDT", client_order_id="mexc-a-001", **creds())
    body = '{"symbol":"BTC_USDT","externalOid":"mexc-a-001"}'  # the docs' example request
    assert (req.path, req.body) == ("/api/v1/private/order/cancel_with_external", body.encode())
    assert req.headers == headers_of(hmac_hex(f"{KEY}{TS}{body}"))


def test_account_and_public_contract_detail() -> None:
    req = FMT.build_account(**creds())
    assert (req.method, req.path) == ("GET", "/api/v1/private/account/assets")
    assert FMT.build_contract_detail("BTC_USDT") == ("GET", "/api/v1/contract/detail?symbol=BTC_USDT", [], b"")
    assert FMT.build_contract_detail() == ("GET", "/api/v1/contract/detail", [], b"")


@pytest.mark.parametrize(("ms", "header"), [(0, None), (5000, "5"), (1, "1"), (10_500, "11"), (120_000, "60")])
def test_recv_window_goes_out_in_whole_seconds(ms: int, header: str | None) -> None:
    req = FMT.build_account(**creds(ms))
    sent = dict(req.headers).get("Recv-Window")
    assert sent == header
    assert dict(req.headers)["Signature"] == hmac_hex(f"{KEY}{TS}")  # not part of the signature


# ----- answers
SUBMIT_OK = b'{"success": true, "code": 0, "data": 102057569836905984}'  # docs, order submit
QUERY_OK = b"""{
    "success": true,
    "code": 0,
    "data": {
        "orderId": "102015012431820288",
        "symbol": "ETH_USDT",
        "positionId": 1394917,
        "price": 1209.05,
        "vol": 1,
        "leverage": 0,
        "side": 2,
        "category": 1,
        "orderType": 5,
        "dealAvgPrice": 1208.35,
        "dealVol": 1,
        "orderMargin": 0,
        "takerFee": 0.0072501,
        "makerFee": 0,
        "profit": 0,
        "feeCurrency": "USDT",
        "openType": 1,
        "state": 3,
        "externalOid": "_m_f95eb99b061d4eef8f64a04e9ac4dad3",
        "errorCode": 0,
        "usedMargin": 0,
        "createTime": 1609992674000,
        "updateTime": 1609992674000
    }
}"""  # docs, query the order based on the external number
INTERNAL_ERROR = b'{"success": false, "code": 500, "message": "System internal error!"}'  # docs, envelope


def test_submit_answer_is_new_and_needs_a_query() -> None:
    a = FMT.parse_new_order(200, SUBMIT_OK, {}, client_order_id="dz1-abc")
    assert (a.kind, a.status, a.order_id, a.client_order_id) == (ANSWER_OK, NEW, "102057569836905984", "dz1-abc")
    assert a.executed_qty == 0 and a.fills is None and not a.final
    # The shape SDKs record for the same endpoint family: {"orderId": "...", "ts": ...}
    body = b'{"success":true,"code":0,"data":{"orderId":"739113577038255616","ts":1761888808839}}'
    assert FMT.parse_new_order(200, body, {}, client_order_id="c").order_id == "739113577038255616"


@pytest.mark.parametrize(
    ("status", "body", "kind", "code"),
    [
        (200, b'{"success":false,"code":2005,"message":"Balance insufficient"}', ANSWER_REJECTED, 2005),
        (200, b'{"success":false,"code":602,"message":"Verify failed"}', ANSWER_REJECTED, 602),
        (401, b'{"success":false,"code":401,"message":"Unauthorized"}', ANSWER_REJECTED, 401),
        (200, INTERNAL_ERROR, ANSWER_UNKNOWN, 500),  # the order may exist: query, never resend
        (200, b'{"success":false,"code":603,"message":"Repeated requests"}', ANSWER_UNKNOWN, 603),
        (200, b'{"success":false,"code":510,"message":"Excessive frequency of requests"}', ANSWER_THROTTLED, 510),
        (429, b"", ANSWER_THROTTLED, 0),
        (502, b"<html>bad gateway</html>", ANSWER_UNKNOWN, 0),
        (200, b"<html>", ANSWER_UNKNOWN, 0),
        (200, b'{"success":true,"code":0,"data":null}', ANSWER_UNKNOWN, 0),  # accepted, but which order?
        (200, b'{"success":true,"code":0,"data":{"ts":1}}', ANSWER_UNKNOWN, 0),
    ],
)
def test_error_envelopes_keep_code_and_message(status: int, body: bytes, kind: str, code: int) -> None:
    a = FMT.parse_new_order(status, body, {"retry-after": "3"}, client_order_id="dz1-abc")
    assert (a.kind, a.error_code, a.client_order_id, a.order_id) == (kind, code, "dz1-abc", "")
    assert a.status == (REJECTED if kind in (ANSWER_REJECTED, ANSWER_THROTTLED) else UNKNOWN)
    if kind == ANSWER_REJECTED:
        assert a.error_msg == json.loads(body)["message"]
    if status == 429:
        assert a.retry_after_s == 3.0
    assert FMT.parse_error(200, INTERNAL_ERROR) == (500, "System internal error!")
    assert FMT.parse_error(200, b'{"success":false,"code":600,"message":null}') == (600, "")


def test_query_answer_in_base_units() -> None:
    a = FMT.parse_order(200, QUERY_OK, {}, rules=ETH)
    assert (a.kind, a.status, a.venue_status, a.order_id) == (ANSWER_OK, FILLED, "3", "102015012431820288")
    assert a.client_order_id == "_m_f95eb99b061d4eef8f64a04e9ac4dad3"
    assert a.executed_qty == Decimal("0.01")  # 1 contract of 0.01 ETH
    assert a.cum_quote == Decimal("12.0835")  # 0.01 x 1208.35, exact
    assert a.final and a.fills is None
    o = FMT.parse_order_detail(200, QUERY_OK)
    assert (o.side, o.order_type, o.open_type, o.state) == (co.SIDE_CLOSE_SHORT, co.TYPE_MARKET, co.OPEN_ISOLATED, 3)
    assert (o.vol, o.deal_vol, o.deal_avg_price, o.price) == (1, 1, Decimal("1208.35"), Decimal("1209.05"))
    assert (o.taker_fee, o.fee_currency, o.position_id) == (Decimal("0.0072501"), "USDT", "1394917")
    assert (o.create_ms, o.update_ms) == (1609992674000, 1609992674000)


def test_query_with_the_wrong_rules_is_unknown() -> None:
    a = FMT.parse_order(200, QUERY_OK, {}, rules=rules(), client_order_id="c")
    assert (a.kind, a.status, a.client_order_id) == (ANSWER_UNKNOWN, UNKNOWN, "c")


@pytest.mark.parametrize(
    ("state", "deal_vol", "status"),
    [(1, 0, NEW), (2, 0, NEW), (2, 3, PARTIALLY_FILLED), (3, 7, FILLED), (4, 0, CANCELED), (4, 3, CANCELED),
     (5, 0, REJECTED)],
)
def test_order_states(state: int, deal_vol: int, status: str) -> None:
    data = json.loads(QUERY_OK)
    data["data"].update(state=state, dealVol=deal_vol, vol=7)
    a = FMT.parse_order(200, json.dumps(data).encode(), {}, rules=ETH)
    assert (a.kind, a.status, a.venue_status) == (ANSWER_OK, status, str(state))
    assert a.executed_qty == Decimal(deal_vol) * Decimal("0.01")


@pytest.mark.parametrize("change", [{"state": 0}, {"state": 6}, {"side": 9}, {"dealVol": 2}, {"vol": "x"}])
def test_unreadable_orders_are_unknown_or_protocol_errors(change: dict[str, object]) -> None:
    data = json.loads(QUERY_OK)
    data["data"].update(change)
    body = json.dumps(data).encode()
    assert FMT.parse_order(200, body, {}, rules=ETH).kind == ANSWER_UNKNOWN
    with pytest.raises(ProtocolError):
        FMT.parse_order_detail(200, body)


def test_a_refused_query_says_nothing_about_the_order() -> None:
    body = b'{"success":false,"code":2040,"message":"order not exist"}'
    a = FMT.parse_order(200, body, {}, rules=ETH, client_order_id="dz1-abc")
    assert (a.kind, a.status, a.error_code) == (ANSWER_REJECTED, UNKNOWN, 2040)
    assert FMT.not_found(a)
    assert not FMT.not_found(FMT.parse_order(200, INTERNAL_ERROR, {}, rules=ETH))


def test_open_order_list() -> None:
    item = json.loads(QUERY_OK)["data"]
    body = json.dumps({"success": True, "code": 0, "data": [item, {**item, "state": 2, "dealVol": 0}]}).encode()
    orders = FMT.parse_order_list(200, body)
    assert [o.status for o in orders] == [FILLED, NEW]
    assert FMT.parse_order_list(200, b'{"success":true,"code":0,"data":[]}') == []
    with pytest.raises(VenueError) as err:
        FMT.parse_order_list(200, b'{"success":false,"code":703,"message":"Trade information read permission"}')
    assert (err.value.code, err.value.msg) == (703, "Trade information read permission")


CANCEL_OK = b"""{
 "success":true,
 "code":0,
 "data":[
 {
 "orderId":101716841474621953,
 "errorCode":2040,
 "errorMsg":"order not exist"
 },
 {
 "orderId":108885377779302912,
 "errorCode":2041,
 "errorMsg":"order state cannot be cancelled"
 },
 {
 "orderId":108886241042563584,
 "errorCode":0,
 "errorMsg":"success"
 }
 ]
}"""  # docs, cancel the order


def test_cancel_answer_per_order() -> None:
    gone, closed, taken = FMT.parse_cancel(200, CANCEL_OK, {})
    assert (gone.kind, gone.order_id, gone.error_code, gone.not_found) == (ANSWER_REJECTED, "101716841474621953",
                                                                          2040, True)
    assert (closed.kind, closed.error_code, closed.error_msg, closed.not_found) == (
        ANSWER_REJECTED, 2041, "order state cannot be cancelled", False)
    assert (taken.ok, taken.order_id) == (True, "108886241042563584")
    (refused,) = FMT.parse_cancel(200, b'{"success":false,"code":401,"message":"Unauthorized"}', {})
    assert (refused.kind, refused.error_code, refused.order_id) == (ANSWER_REJECTED, 401, "")
    (lost,) = FMT.parse_cancel(504, b"", {})
    assert lost.kind == ANSWER_UNKNOWN


def test_cancel_by_client_id_answer() -> None:
    r = FMT.parse_cancel_by_client_id(200, b'{"success":true,"code":0}', {}, client_order_id="mexc-a-001")
    assert (r.ok, r.client_order_id) == (True, "mexc-a-001")
    body = b'{"success":true,"code":0,"data":[{"orderId":1,"errorCode":2040,"errorMsg":"order not exist"}]}'
    r = FMT.parse_cancel_by_client_id(200, body, {}, client_order_id="mexc-a-001")
    assert r.not_found and r.order_id == "1"
    r = FMT.parse_cancel_by_client_id(200, INTERNAL_ERROR, {}, client_order_id="mexc-a-001")
    assert (r.kind, r.error_code) == (ANSWER_UNKNOWN, 500)


POSITIONS = b"""{
    "success": true,
    "code": 0,
    "data": [
        {
            "positionId": 1394650,
            "symbol": "ETH_USDT",
            "positionType": 1,
            "openType": 1,
            "state": 1,
            "holdVol": 1,
            "frozenVol": 0,
            "closeVol": 0,
            "holdAvgPrice": 1217.3,
            "openAvgPrice": 1217.3,
            "closeAvgPrice": 0,
            "liquidatePrice": 1211.2,
            "oim": 0.1290338,
            "im": 0.1290338,
            "holdFee": 0,
            "realised": -0.0073,
            "leverage": 100,
            "createTime": 1609991676000,
            "updateTime": 1609991676000,
            "autoAddIm": false
        }
    ]
}"""  # docs, get the user's current holding position


def test_positions() -> None:
    (p,) = FMT.parse_positions(200, POSITIONS)
    assert (p.position_id, p.symbol, p.position_type, p.open_type, p.state) == ("1394650", "ETH_USDT", 1, 1, 1)
    assert (p.hold_vol, p.hold_avg_price, p.liquidate_price) == (1, Decimal("1217.3"), Decimal("1211.2"))
    assert (p.leverage, p.realised, p.im) == (100, Decimal("-0.0073"), Decimal("0.1290338"))
    assert contracts_to_base(p.hold_vol, ETH) == Decimal("0.01")
    with pytest.raises(ProtocolError):
        FMT.parse_positions(200, POSITIONS.replace(b'"positionType": 1', b'"positionType": 3'))
    with pytest.raises(ProtocolError):
        FMT.parse_positions(200, POSITIONS.replace(b'"holdVol": 1', b'"holdVol": -1'))


ASSETS = b"""{
    "success": true,
    "code": 0,
    "data": [
        {"currency": "BTC", "positionMargin": 0, "availableBalance": 0, "cashBalance": 0, "frozenBalance": 0,
         "equity": 0, "unrealized": 0, "bonus": 0},
        {"currency": "USDT", "positionMargin": 0, "availableBalance": 0.03176562, "cashBalance": 0.03176562,
         "frozenBalance": 0, "equity": 0.03176562, "unrealized": 0, "bonus": 0}
    ]
}"""  # docs, get all informations of user's asset (ETH entry left out)


def test_assets() -> None:
    assets = FMT.parse_assets(200, ASSETS)
    usdt = assets["USDT"]
    assert (usdt.available_balance, usdt.equity, usdt.position_margin) == (
        Decimal("0.03176562"), Decimal("0.03176562"), 0)
    assert str(usdt.available_balance) == "0.03176562"  # straight from the JSON text, no float on the way
    assert set(assets) == {"BTC", "USDT"}
    with pytest.raises(VenueError):
        FMT.parse_assets(200, b'{"success":false,"code":402,"message":"Api_key expired"}')
    with pytest.raises(ProtocolError):
        FMT.parse_assets(200, b"[]")


FUNDING = b"""{
    "success": true,
    "code": 0,
    "data": {
        "pageSize": 2,
        "totalCount": 73,
        "totalPage": 37,
        "currentPage": 1,
        "resultList": [
            {
                "id": 328033,
                "symbol": "SUSHI_USDT",
                "positionType": 1,
                "positionValue": 41.8899,
                "funding": 0.0837798,
                "rate": -0.002,
                "settleTime": 1606435200000
            },
            {
                "id": 327194,
                "symbol": "SUSHI_USDT",
                "positionType": 1,
                "positionValue": 34.2654,
                "funding": 0.0685308,
                "rate": -0.002,
                "settleTime": 1606406400000
            }
        ]
    }
}"""  # docs, get details of user's funding rate


def test_funding_records() -> None:
    page = FMT.parse_funding_records(200, FUNDING)
    assert (page.page, page.total_pages, page.total_count) == (1, 37, 73)
    first = page.records[0]
    assert (first.record_id, first.symbol, first.position_type, first.position_id) == ("328033", "SUSHI_USDT", 1, "")
    # A long receives funding when the rate is negative: the sign of ``funding`` is the account's.
    assert (first.funding, first.rate, first.position_value) == (Decimal("0.0837798"), Decimal("-0.002"),
                                                               Decimal("41.8899"))
    assert [r.settle_ms for r in page.records] == [1606435200000, 1606406400000]


# docs, get the contract information (the docs' list ends in a stray comma, dropped here)
DETAIL = b"""{
    "success":true,
    "code":0,
    "data":[
        {
            "symbol":"BTC_USDT",
            "displayName":"BTC_USDT\xe6\xb0\xb8\xe7\xbb\xad",
            "displayNameEn":"BTC_USDT SWAP",
            "positionOpenType":3,
            "baseCoin":"BTC",
            "quoteCoin":"USDT",
            "settleCoin":"USDT",
            "contractSize":0.0001,
            "minLeverage":1,
            "maxLeverage":125,
            "priceScale":2,
            "volScale":0,
            "amountScale":4,
            "priceUnit":0.5,
            "volUnit":1,
            "minVol":1,
            "maxVol":5000000,
            "bidLimitPriceRate":0.03,
            "askLimitPriceRate":0.03,
            "takerFeeRate":0.0006,
            "makerFeeRate":0.0002,
            "maintenanceMarginRate":0.004,
            "initialMarginRate":0.008,
            "riskBaseVol":150000,
            "riskIncrVol":150000,
            "riskIncrMmr":0.004,
            "riskIncrImr":0.004,
            "riskLevelLimit":5,
            "priceCoefficientVariation":0.05,
            "indexOrigin":[
                "Binance",
                "GATEIO",
                "HUOBI",
                "MXC"
            ],
            "state":0,
            "isNew":false,
            "isHot":true,
            "isHidden":false,
            "conceptPlate": [
                "mc-trade-zone-grey",
                "mc-trade-zone-pow"
            ],
            "riskLimitType": "BY_VOLUME",
            "maxNumOrders": [
                200,
                50
            ],
            "marketOrderMaxLevel": 15,
            "marketOrderPriceLimitRate1": 0.03,
            "marketOrderPriceLimitRate2": 0.005,
            "triggerProtect": 0.05,
            "appraisal": 0,
            "showAppraisalCountdown": 0,
            "automaticDelivery": 0,
            "apiAllowed": false
        }
    ]
}"""


def test_contract_detail_into_rules() -> None:
    r = FMT.parse_contract_detail(200, DETAIL)["BTC_USDT"]
    assert (r.base, r.quote, r.settle) == ("BTC", "USDT", "USDT")
    assert (r.contract_size, r.price_unit, r.vol_unit, r.min_vol, r.max_vol) == (
        Decimal("0.0001"), Decimal("0.5"), 1, 1, 5000000)
    assert (r.min_leverage, r.max_leverage, r.price_scale, r.vol_scale) == (1, 125, 2, 0)
    assert (r.taker_fee, r.maker_fee, r.state, r.api_allowed) == (Decimal("0.0006"), Decimal("0.0002"), 0, False)
    assert r.symbol_rules() == SymbolRules("BTC_USDT", Decimal("0.5"), Decimal("0.0001"), Decimal("0.0001"), 0, 2, 4)
    # With ?symbol= the venue answers the one object, not a list.
    one = json.loads(DETAIL)
    one["data"] = one["data"][0]
    assert FMT.parse_contract_detail(200, json.dumps(one).encode()) == {"BTC_USDT": r}
    with pytest.raises(ProtocolError):
        FMT.parse_contract_detail(200, DETAIL.replace(b'"volUnit":1', b'"volUnit":0'))


# ----- quantities
def test_base_to_contracts_floors_to_whole_steps() -> None:
    btc = rules()
    assert base_to_contracts(Decimal("0.00019999"), btc) == 1  # 1.9999 contracts: floor, never 2
    assert base_to_contracts(Decimal("0.0002"), btc) == 2
    assert base_to_contracts(Decimal("0.00009999"), btc) == 0
    assert base_to_contracts(Decimal("0"), btc) == 0
    tens = rules(vol_unit="10")
    assert base_to_contracts(Decimal("0.0199"), tens) == 190  # 199 contracts → 19 whole steps of 10
    odd = rules(contract_size="3")  # a quotient that does not terminate: 2/3 must not round up to 1
    assert base_to_contracts(Decimal("2.999999999999999999999999999999"), odd) == 0
    with pytest.raises(ValueError):
        base_to_contracts(Decimal("-0.001"), btc)
    with pytest.raises(ValueError):
        base_to_contracts(Decimal("Infinity"), btc)
    assert contracts_to_base(Decimal("190"), tens) == Decimal("0.019")


@given(
    base=st.decimals(min_value=0, max_value=10_000, places=10, allow_nan=False, allow_infinity=False),
    size=st.sampled_from(["0.0001", "0.001", "0.01", "0.1", "1", "10", "3", "0.0003"]),
    unit=st.sampled_from(["1", "10", "0.1"]),
)
def test_contract_conversion_never_rounds_up(base: Decimal, size: str, unit: str) -> None:
    r = rules(contract_size=size, vol_unit=unit)
    contracts = base_to_contracts(base, r)
    back = contracts_to_base(contracts, r)
    assert back <= base  # never more than asked for
    assert base - back < Decimal(size) * Decimal(unit)  # and less than one step short
    assert contracts % Decimal(unit) == 0
