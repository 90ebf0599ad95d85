"""Binance USD-M futures wire format (pure code): exact signed requests, documented answers and events.

Every JSON body below is the documented example of its page (developers.binance.com, USDⓈ-M Futures),
copied as published; where the page's example is not valid JSON (// comments, missing or trailing
commas, a full-width comma) only that punctuation was repaired, and the test says so. The expected
signatures were computed with a plain ``hmac``/``hashlib`` call over the expected query string, apart
from the project's code.
"""

from __future__ import annotations

import contextlib
import json
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.errors import ProtocolError, VenueError
from shared.venues.binance import futures_orders as fo
from shared.venues.binance import futures_user as fu
from shared.venues.common import (
    ANSWER_OK,
    ANSWER_REJECTED,
    ANSWER_THROTTLED,
    ANSWER_UNKNOWN,
    CANCELED,
    EXPIRED,
    FILLED,
    NEW,
    ORDER_MARKET,
    REJECTED,
    UNKNOWN,
    HttpRequest,
    RateHeaders,
    SymbolRules,
)

# general-info, "SIGNED Endpoint Examples for POST /fapi/v1/order - HMAC Keys".
KEY = "dbefbc809e3e83c283a984c3a1459732ea7db1360ca80c5c2c8867408d28cc83"
SECRET = "2b5eb11e18796d12d88f13dc27dbbd02c2cc51ff7059765ed9821957d82bb4d9"
TS = 1591702613943
RW = 5000
TAIL = f"recvWindow={RW}&timestamp={TS}"
AUTH = dict(api_key=KEY, api_secret=SECRET, timestamp_ms=TS, recv_window_ms=RW)
HEADERS = [("X-MBX-APIKEY", KEY)]

FMT = fo.BinanceFuturesOrderFormat()


def signed(method: str, path: str, query: str, signature: str) -> HttpRequest:
    return HttpRequest(method, f"{path}?{query}&signature={signature}", HEADERS, b"")


# ----- signing
def test_documented_hmac_example_byte_for_byte() -> None:
    """Example 1 of general-info: the same parameters in the same order give the documented URL."""
    params = [("symbol", "BTCUSDT"), ("side", "BUY"), ("type", "LIMIT"), ("quantity", "1"), ("price", "9000"),
              ("timeInForce", "GTC")]
    req = FMT.signed("POST", "/fapi/v1/order", params, KEY, SECRET, TS, RW)
    assert req == signed(
        "POST", "/fapi/v1/order",
        "symbol=BTCUSDT&side=BUY&type=LIMIT&quantity=1&price=9000&timeInForce=GTC&recvWindow=5000"
        "&timestamp=1591702613943",
        "3c661234138461fcc7a7d8746c6558c9842d4e10870d2ecbedf7777cad694af9",
    )


def test_documented_mixed_query_and_body_example() -> None:
    """Example 3 signs the query string and body joined with no '&' (the page's text, space included)."""
    from shared.venues.binance.auth import sign

    query = "symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTC"
    body = "quantity=1&price=9000&recvWindow=5000&timestamp= 1591702613943"
    assert sign(SECRET, query, body) == "f9d0ae5e813ef6ccf15c2b5a434047a0181cb5a342b903b367ca6d27a66e36f2"


# ----- request builders: exact bytes
def test_new_limit_ioc_order() -> None:
    req = FMT.build_new_order(symbol="BTCUSDT", side="BUY", price=Decimal("9000.10"), qty="0.001",
                              client_order_id="arb-1", **AUTH)
    assert req == signed(
        "POST", "/fapi/v1/order",
        "symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=IOC&quantity=0.001&price=9000.10&newClientOrderId=arb-1"
        f"&newOrderRespType=RESULT&{TAIL}",
        "5550b2db9f18a2574f08874829929b8012b776e4316296d0f04078d438057309",
    )


def test_new_market_order_has_no_price_nor_time_in_force() -> None:
    req = FMT.build_new_order(symbol="BTCUSDT", side="SELL", price=Decimal("1"), qty=Decimal("0.010"),
                              client_order_id="arb-2", order_type=ORDER_MARKET, **AUTH)
    assert req == signed(
        "POST", "/fapi/v1/order",
        f"symbol=BTCUSDT&side=SELL&type=MARKET&quantity=0.010&newClientOrderId=arb-2&newOrderRespType=RESULT&{TAIL}",
        "01bc27eab47356d4e632ad5122e97bef866401777a6f68051ab3a5de79849ac4",
    )


def test_reduce_only_order_sends_reduce_only_true() -> None:
    req = FMT.build_new_order(symbol="BTCUSDT", side="SELL", price="25000", qty="0.5", client_order_id="arb-3",
                              reduce_only=True, **AUTH)
    assert req == signed(
        "POST", "/fapi/v1/order",
        "symbol=BTCUSDT&side=SELL&type=LIMIT&timeInForce=IOC&quantity=0.5&price=25000&reduceOnly=true"
        f"&newClientOrderId=arb-3&newOrderRespType=RESULT&{TAIL}",
        "6178b0b4f8839eb31ad181aa1669a68c60b49a4c0ebd1ea3ad11cc40c4651ce3",
    )


def test_an_opening_order_never_sends_reduce_only() -> None:
    """The venue refuses reduceOnly in hedge mode even as "false": it is sent only when true."""
    req = FMT.build_new_order(symbol="BTCUSDT", side="BUY", price="1", qty="1", client_order_id="a", **AUTH)
    assert "reduceOnly" not in req.path


def test_close_short_position_buys_reduce_only_floored_to_step() -> None:
    req = FMT.build_close_position(symbol="BTCUSDT", position_amt=Decimal("-0.0157"), step=Decimal("0.001"),
                                   client_order_id="close-1", **AUTH)
    assert req == signed(
        "POST", "/fapi/v1/order",
        "symbol=BTCUSDT&side=BUY&type=MARKET&quantity=0.015&reduceOnly=true&newClientOrderId=close-1"
        f"&newOrderRespType=RESULT&{TAIL}",
        "a93912235f6768f330fc870ab6442a047d4646a169fc9422f2964482ce0bfdb9",
    )


def test_close_long_position_sells() -> None:
    req = FMT.build_close_position(symbol="ADAUSDT", position_amt=Decimal("30"), step=Decimal("1"),
                                   client_order_id="close-2", **AUTH)
    assert req.path.startswith("/fapi/v1/order?symbol=ADAUSDT&side=SELL&type=MARKET&quantity=30&reduceOnly=true&")


@pytest.mark.parametrize("amt", [Decimal(0), Decimal("0.0004")])
def test_close_refuses_nothing_to_close(amt: Decimal) -> None:
    with pytest.raises(ValueError):
        FMT.build_close_position(symbol="BTCUSDT", position_amt=amt, step=Decimal("0.001"), client_order_id="c",
                                 **AUTH)


def test_client_id_characters_are_percent_encoded_before_signing() -> None:
    """':' and '/' are allowed in newClientOrderId; the signature covers the text as sent (encoded)."""
    req = FMT.build_new_order(symbol="BTCUSDT", side="BUY", price=None, qty="1", client_order_id="x:1/2",
                              order_type=ORDER_MARKET, **AUTH)
    assert req == signed(
        "POST", "/fapi/v1/order",
        f"symbol=BTCUSDT&side=BUY&type=MARKET&quantity=1&newClientOrderId=x%3A1%2F2&newOrderRespType=RESULT&{TAIL}",
        "cf39fecb158f6c90f0d2535ddb1b5f4101c4b051f11b6eca74f73aaa2027389e",
    )


QUERY_SIG = "a730617cfb622bc7c2ec870152341f5c8063dd0b224bfea3052d28785c81797b"
SYMBOL_SIG = "94ae0e3b5872d3eb469d1af5e892198c5f1dfc78ce21c3a7323f98d2de155229"
NO_PARAMS_SIG = "5581570ecf76b9b74c6f1a66ef6520c2959a75c32641affb2634d655d6e64db8"


def test_query_and_cancel_by_client_id() -> None:
    q = FMT.build_query_order(symbol="BTCUSDT", client_order_id="arb-1", **AUTH)
    c = FMT.build_cancel_order(symbol="BTCUSDT", client_order_id="arb-1", **AUTH)
    query = f"symbol=BTCUSDT&origClientOrderId=arb-1&{TAIL}"
    assert q == signed("GET", "/fapi/v1/order", query, QUERY_SIG)
    assert c == signed("DELETE", "/fapi/v1/order", query, QUERY_SIG)


def test_symbol_scoped_reads_and_cancel_all() -> None:
    query = f"symbol=BTCUSDT&{TAIL}"
    assert FMT.build_open_orders(symbol="BTCUSDT", **AUTH) == signed("GET", "/fapi/v1/openOrders", query,
                                                                     SYMBOL_SIG)
    assert FMT.build_cancel_all(symbol="BTCUSDT", **AUTH) == signed("DELETE", "/fapi/v1/allOpenOrders", query,
                                                                    SYMBOL_SIG)
    assert FMT.build_position_risk(symbol="BTCUSDT", **AUTH) == signed("GET", "/fapi/v3/positionRisk", query,
                                                                       SYMBOL_SIG)
    assert FMT.build_symbol_config(symbol="BTCUSDT", **AUTH) == signed("GET", "/fapi/v1/symbolConfig", query,
                                                                       SYMBOL_SIG)


def test_account_wide_reads() -> None:
    assert FMT.build_account(**AUTH) == signed("GET", "/fapi/v3/account", TAIL, NO_PARAMS_SIG)
    assert FMT.build_open_orders(symbol=None, **AUTH) == signed("GET", "/fapi/v1/openOrders", TAIL, NO_PARAMS_SIG)
    assert FMT.build_position_risk(symbol=None, **AUTH) == signed("GET", "/fapi/v3/positionRisk", TAIL,
                                                                  NO_PARAMS_SIG)


def test_leverage_and_margin_type() -> None:
    assert FMT.build_leverage(symbol="BTCUSDT", leverage=5, **AUTH) == signed(
        "POST", "/fapi/v1/leverage", f"symbol=BTCUSDT&leverage=5&{TAIL}",
        "7d025403f01c61e44d52767ca44a91fb8584fe45837863c588f72e50c24d5745",
    )
    assert FMT.build_margin_type(symbol="BTCUSDT", margin=fo.MARGIN_ISOLATED, **AUTH) == signed(
        "POST", "/fapi/v1/marginType", f"symbol=BTCUSDT&marginType=ISOLATED&{TAIL}",
        "8ae0b29ea28c4a5af6f2095d4087467c3cd21b8e0b1747d2c57c3916e1d3fdad",
    )


@pytest.mark.parametrize("leverage", [0, 126, True, 2.0])
def test_leverage_out_of_range(leverage: object) -> None:
    with pytest.raises(ValueError):
        FMT.build_leverage(symbol="BTCUSDT", leverage=leverage, **AUTH)  # type: ignore[arg-type]


def test_margin_type_words() -> None:
    with pytest.raises(ValueError):
        FMT.build_margin_type(symbol="BTCUSDT", margin="cross", **AUTH)


def test_funding_income() -> None:
    req = FMT.build_income(symbol="BTCUSDT", start_ms=1591700000000, end_ms=TS, **AUTH)
    assert req == signed(
        "GET", "/fapi/v1/income",
        f"symbol=BTCUSDT&incomeType=FUNDING_FEE&startTime=1591700000000&endTime={TS}&limit=1000&{TAIL}",
        "ee4aafa61a66b26d0102866c8cb2f4a0e8f9a459c34b39278df91e63e11ba43a",
    )
    assert FMT.build_income(limit=5000, **AUTH) == signed(
        "GET", "/fapi/v1/income", f"incomeType=FUNDING_FEE&limit=1000&{TAIL}",
        "a4d2835ae4870e08c6f3031366fd711db1f0ecacff7422e4e578788ee7128e55",
    )


def test_public_requests_are_unsigned() -> None:
    assert FMT.build_exchange_info() == HttpRequest("GET", "/fapi/v1/exchangeInfo", [], b"")
    assert FMT.build_exchange_info(["BTCUSDT"]) == HttpRequest("GET", "/fapi/v1/exchangeInfo", [], b"")
    assert FMT.build_time() == HttpRequest("GET", "/fapi/v1/time", [], b"")


def test_listen_key_requests_carry_the_key_and_no_signature() -> None:
    for build, method in ((fu.build_start_listen_key, "POST"), (fu.build_keepalive_listen_key, "PUT"),
                          (fu.build_close_listen_key, "DELETE")):
        assert build(KEY) == HttpRequest(method, "/fapi/v1/listenKey", HEADERS, b"")


# ----- prices and quantities: Decimal text
def test_values_are_plain_decimal_text() -> None:
    req = FMT.build_new_order(symbol="BTCUSDT", side="BUY", price=Decimal("9E+3"), qty=Decimal("1E-3"),
                              client_order_id="a", **AUTH)
    assert "&quantity=0.001&price=9000&" in req.path


@pytest.mark.parametrize("bad", ["1e-05", "0", "-1", "1,5", " 1", "nan", ""])
def test_non_plain_or_non_positive_text_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        FMT.build_new_order(symbol="BTCUSDT", side="BUY", price="1", qty=bad, client_order_id="a", **AUTH)


def test_floats_are_refused() -> None:
    """A float's repr never goes on the wire: the caller snaps it to Decimal first (shared.money)."""
    with pytest.raises(TypeError):
        FMT.build_new_order(symbol="BTCUSDT", side="BUY", price=0.1, qty="1",  # type: ignore[arg-type]
                            client_order_id="a", **AUTH)
    with pytest.raises(TypeError):
        fo.wire_qty(0.3, Decimal("0.1"))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"side": "buy"}, "side"),
        ({"client_order_id": "a" * 37}, "client order id"),
        ({"client_order_id": "a b"}, "client order id"),
        ({"price": None}, "price"),
        ({"order_type": "stop"}, "order type"),
    ],
)
def test_new_order_argument_checks(kwargs: dict[str, object], match: str) -> None:
    args: dict[str, object] = dict(symbol="BTCUSDT", side="BUY", price="1", qty="1", client_order_id="a", **AUTH)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        FMT.build_new_order(**args)  # type: ignore[arg-type]


def test_floor_to_step_and_tick() -> None:
    assert fo.wire_qty(Decimal("0.0159"), Decimal("0.001")) == "0.015"
    assert fo.wire_qty("12.9", Decimal("1")) == "12"
    assert fo.wire_qty("0.3", Decimal("0.1")) == "0.3"  # exact multiples stay
    assert fo.wire_price("9000.19", Decimal("0.10")) == "9000.10"  # the tick's own decimals kept
    assert fo.wire_price(Decimal("0.385077"), Decimal("0.0001")) == "0.3850"
    assert fo.wire_price("0.38505", Decimal("0.0001"), rounding="up") == "0.3851"


@given(
    units=st.integers(min_value=0, max_value=10**12),
    extra=st.integers(min_value=0, max_value=999),
    exp=st.integers(min_value=0, max_value=8),
)
def test_floored_quantity_is_a_step_multiple_not_above_the_input(units: int, extra: int, exp: int) -> None:
    step = Decimal(1).scaleb(-exp)
    qty = Decimal(units) * step + Decimal(extra).scaleb(-exp - 3)
    text = fo.wire_qty(qty, step)
    assert "E" not in text and "e" not in text
    d = Decimal(text)
    assert d <= qty and qty - d < step and d % step == 0


# ----- order answers (documented examples)
NEW_ORDER_DOC = b"""{
  "clientOrderId": "testOrder", "cumQty": "0", "cumQuote": "0", "executedQty": "0", "orderId": 22542179,
  "avgPrice": "0.00000", "origQty": "10", "price": "0", "reduceOnly": false, "side": "BUY",
  "positionSide": "SHORT", "status": "NEW", "stopPrice": "0", "closePosition": false, "symbol": "BTCUSDT",
  "timeInForce": "GTD", "type": "LIMIT", "origType": "LIMIT", "updateTime": 1566818724722,
  "workingType": "CONTRACT_PRICE", "priceProtect": false, "priceMatch": "NONE",
  "selfTradePreventionMode": "NONE", "goodTillDate": 1693207680000
}"""

QUERY_ORDER_DOC = b"""{
  "avgPrice": "0.00000", "clientOrderId": "abc", "cumQuote": "0", "executedQty": "0", "orderId": 1917641,
  "origQty": "0.40", "origType": "TRAILING_STOP_MARKET", "price": "0", "reduceOnly": false, "side": "BUY",
  "positionSide": "SHORT", "status": "NEW", "stopPrice": "9300", "closePosition": false, "symbol": "BTCUSDT",
  "time": 1579276756075, "timeInForce": "GTC", "type": "TRAILING_STOP_MARKET", "activatePrice": "9020",
  "priceRate": "0.3", "updateTime": 1579276756075, "workingType": "CONTRACT_PRICE", "priceProtect": false
}"""

CANCEL_ORDER_DOC = b"""{
  "clientOrderId": "myOrder1", "cumQty": "0", "cumQuote": "0", "executedQty": "0", "orderId": 283194212,
  "origQty": "11", "origType": "TRAILING_STOP_MARKET", "price": "0", "avgPrice": "0.00", "reduceOnly": false,
  "side": "BUY", "positionSide": "SHORT", "status": "CANCELED", "stopPrice": "9300", "closePosition": false,
  "symbol": "BTCUSDT", "timeInForce": "GTC", "type": "TRAILING_STOP_MARKET", "activatePrice": "9020",
  "priceRate": "0.3", "updateTime": 1571110484038, "workingType": "CONTRACT_PRICE", "priceProtect": false,
  "priceMatch": "NONE", "selfTradePreventionMode": "NONE", "goodTillDate": 1693207680000
}"""

OPEN_ORDERS_DOC = b"""[
  {
    "avgPrice": "0.00000", "clientOrderId": "abc", "cumQuote": "0", "executedQty": "0", "orderId": 1917641,
    "origQty": "0.40", "origType": "TRAILING_STOP_MARKET", "price": "0", "reduceOnly": false, "side": "BUY",
    "positionSide": "SHORT", "status": "NEW", "stopPrice": "9300", "closePosition": false, "symbol": "BTCUSDT",
    "time": 1579276756075, "timeInForce": "GTC", "type": "TRAILING_STOP_MARKET", "activatePrice": "9020",
    "priceRate": "0.3", "updateTime": 1579276756075, "workingType": "CONTRACT_PRICE", "priceProtect": false,
    "priceMatch": "NONE", "selfTradePreventionMode": "NONE", "goodTillDate": 0
  }
]"""

# Not a documented example: the RESULT answer of a filled IOC reduce-only order, in the documented field set
# (the pages only show NEW and CANCELED orders), to check the execution fields.
FILLED_IOC = b"""{
  "clientOrderId": "arb-3", "cumQty": "0.500", "cumQuote": "12500.25", "executedQty": "0.500",
  "orderId": 4075832123, "avgPrice": "25000.50", "origQty": "0.500", "price": "24990", "reduceOnly": true,
  "side": "SELL", "positionSide": "BOTH", "status": "FILLED", "stopPrice": "0", "closePosition": false,
  "symbol": "BTCUSDT", "timeInForce": "IOC", "type": "LIMIT", "origType": "LIMIT", "updateTime": 1591702614001,
  "workingType": "CONTRACT_PRICE", "priceProtect": false, "priceMatch": "NONE",
  "selfTradePreventionMode": "EXPIRE_MAKER", "goodTillDate": 0
}"""


def test_new_order_documented_answer() -> None:
    d = FMT.parse_order_detail(200, NEW_ORDER_DOC, {})
    a = d.answer
    assert (a.kind, a.status, a.venue_status, a.order_id, a.client_order_id) == (
        ANSWER_OK, NEW, "NEW", "22542179", "testOrder"
    )
    assert a.executed_qty == 0 and a.cum_quote == 0 and a.fills is None and not a.final
    assert (d.symbol, d.side, d.order_type, d.time_in_force, d.position_side) == (
        "BTCUSDT", "BUY", "LIMIT", "GTD", "SHORT"
    )
    assert d.orig_qty == Decimal("10") and d.avg_price == 0 and d.reduce_only is False
    assert d.update_ms == 1566818724722
    assert FMT.parse_order(200, NEW_ORDER_DOC, {}) == a


def test_query_and_cancel_documented_answers() -> None:
    q = FMT.parse_order_detail(200, QUERY_ORDER_DOC, {}, new_order=False)
    assert (q.answer.status, q.answer.order_id, q.answer.client_order_id) == (NEW, "1917641", "abc")
    assert q.orig_qty == Decimal("0.40") and q.update_ms == 1579276756075
    c = FMT.parse_order_detail(200, CANCEL_ORDER_DOC, {}, new_order=False)
    assert (c.answer.status, c.answer.venue_status, c.answer.client_order_id) == (CANCELED, "CANCELED", "myOrder1")
    assert c.answer.final and c.avg_price == 0


def test_filled_ioc_answer_keeps_exact_decimals() -> None:
    d = FMT.parse_order_detail(200, FILLED_IOC, {})
    assert d.answer.status == FILLED and d.answer.final
    assert d.answer.executed_qty == Decimal("0.500") and d.answer.cum_quote == Decimal("12500.25")
    assert d.avg_price == Decimal("25000.50") and d.reduce_only is True


@pytest.mark.parametrize(("venue", "canonical"), [("EXPIRED", EXPIRED), ("EXPIRED_IN_MATCH", EXPIRED),
                                                  ("PARTIALLY_FILLED", "PARTIALLY_FILLED")])
def test_statuses(venue: str, canonical: str) -> None:
    body = FILLED_IOC.replace(b'"FILLED"', json.dumps(venue).encode())
    a = FMT.parse_order(200, body, {})
    assert (a.status, a.venue_status) == (canonical, venue)


def test_open_orders_documented_answer() -> None:
    [o] = FMT.parse_order_list_detail(200, OPEN_ORDERS_DOC, {})
    assert (o.answer.order_id, o.answer.status, o.symbol, o.order_type) == (
        "1917641", NEW, "BTCUSDT", "TRAILING_STOP_MARKET"
    )
    assert FMT.parse_order_list(200, OPEN_ORDERS_DOC, {}) == [o.answer]


def test_open_orders_unknown_status_item_is_unknown_not_fatal() -> None:
    body = OPEN_ORDERS_DOC.replace(b'"status": "NEW"', b'"status": "WHATEVER"')
    [a] = FMT.parse_order_list(200, body, {})
    assert (a.kind, a.client_order_id) == (ANSWER_UNKNOWN, "abc")


# ----- error answers
MARGIN = b'{"code":-2019,"msg":"Margin is insufficient."}'


def test_margin_insufficient_is_a_rejection_with_code_and_message() -> None:
    a = FMT.parse_order(400, MARGIN, {})
    assert (a.kind, a.status, a.error_code, a.error_msg, a.http_status) == (
        ANSWER_REJECTED, REJECTED, -2019, "Margin is insufficient.", 400
    )
    assert not FMT.not_found(a)


@pytest.mark.parametrize(
    ("status", "body", "kind", "code"),
    [
        (400, b'{"code":-1121,"msg":"Invalid symbol."}', ANSWER_REJECTED, -1121),  # general-info's example
        (400, b'{"code":-2022,"msg":"ReduceOnly Order is rejected."}', ANSWER_REJECTED, -2022),
        (400, b'{"code":-4164,"msg":"Order\'s notional must be no smaller than 5.0 (unless you choose reduce only)"}',
         ANSWER_REJECTED, -4164),
        (400, b'{"code":-1007,"msg":"Timeout waiting for response from backend server. Send status unknown; '
              b'execution status unknown."}', ANSWER_UNKNOWN, -1007),
        (400, b'{"code":-1006,"msg":"An unexpected response was received from the message bus. Execution status '
              b'unknown."}', ANSWER_UNKNOWN, -1006),
        (503, b'{"code":-1000,"msg":"Unknown error, please check your request or try again later."}',
         ANSWER_UNKNOWN, -1000),
        (503, b'{"code":-1008,"msg":"Request throttled by system-level protection. Reduce-only/close-position '
              b'orders are exempt. Please try again."}', ANSWER_THROTTLED, -1008),
        (408, b"", ANSWER_UNKNOWN, 0),
        (502, b"<html>Bad Gateway</html>", ANSWER_UNKNOWN, 0),
        (400, b"not json", ANSWER_UNKNOWN, 0),
        (200, b"{}", ANSWER_UNKNOWN, 0),
        (200, b"[1]", ANSWER_UNKNOWN, 0),
    ],
)
def test_error_classification(status: int, body: bytes, kind: str, code: int) -> None:
    a = FMT.parse_order(status, body, {})
    assert (a.kind, a.error_code, a.http_status) == (kind, code, status)
    assert a.status == (REJECTED if kind in (ANSWER_REJECTED, ANSWER_THROTTLED) else UNKNOWN)
    q = FMT.parse_order(status, body, {}, new_order=False)
    assert q.status == UNKNOWN  # a refused query or cancel says nothing of the order


def test_throttled_keeps_retry_after() -> None:
    body = b'{"code":-1003,"msg":"Too many requests; current limit is 2400 requests per minute."}'
    a = FMT.parse_order(429, body, {"retry-after": "7"})
    assert (a.kind, a.status, a.error_code, a.retry_after_s) == (ANSWER_THROTTLED, REJECTED, -1003, 7.0)


@pytest.mark.parametrize("body", [b'{"code":-2013,"msg":"Order does not exist."}',
                                  b'{"code":-2011,"msg":"Unknown order sent."}'])
def test_not_found(body: bytes) -> None:
    a = FMT.parse_order(400, body, {}, new_order=False)
    assert a.status == UNKNOWN and FMT.not_found(a)


def test_timestamp_code() -> None:
    a = FMT.parse_order(400, b'{"code":-1021,"msg":"Timestamp for this request is outside of the recvWindow."}',
                        {})
    assert a.error_code in FMT.timestamp_codes


def test_non_order_errors_raise_venue_error_with_code_and_message() -> None:
    with pytest.raises(VenueError) as exc:
        FMT.parse_account(401, b'{"code":-2015,"msg":"Invalid API-key, IP, or permissions for action."}')
    assert (exc.value.code, exc.value.msg, exc.value.http_status) == (
        -2015, "Invalid API-key, IP, or permissions for action.", 401
    )
    with pytest.raises(VenueError) as exc:
        FMT.parse_positions(200, MARGIN)  # an error object even with a 2xx keeps its code
    assert exc.value.code == -2019
    with pytest.raises(ProtocolError):
        FMT.parse_positions(200, b"[{}]")
    assert FMT.parse_error(400, MARGIN) == (-2019, "Margin is insufficient.")


# ----- position risk, symbol config, leverage, margin type
POSITION_V3_HEDGE_DOC = b"""[
  {
    "symbol": "ADAUSDT", "positionSide": "LONG", "positionAmt": "30", "entryPrice": "0.385",
    "breakEvenPrice": "0.385077", "markPrice": "0.41047590", "unRealizedProfit": "0.76427700",
    "liquidationPrice": "0", "isolatedMargin": "0", "notional": "12.31427700", "marginAsset": "USDT",
    "isolatedWallet": "0", "initialMargin": "0.61571385", "maintMargin": "0.08004280",
    "positionInitialMargin": "0.61571385", "openOrderInitialMargin": "0", "adl": 2, "bidNotional": "0",
    "askNotional": "0", "updateTime": 1720736417660
  },
  {
    "symbol": "COMPUSDT", "positionSide": "SHORT", "positionAmt": "-1.000", "entryPrice": "70.92841",
    "breakEvenPrice": "70.900038636", "markPrice": "49.72023376", "unRealizedProfit": "21.20817624",
    "liquidationPrice": "2260.56757210", "isolatedMargin": "0", "notional": "-49.72023376", "marginAsset": "USDT",
    "isolatedWallet": "0", "initialMargin": "2.48601168", "maintMargin": "0.49720233",
    "positionInitialMargin": "2.48601168", "openOrderInitialMargin": "0", "adl": 2, "bidNotional": "0",
    "askNotional": "0", "updateTime": 1708943511656
  }
]"""

POSITION_V2_HEDGE_DOC = b"""[
  {
    "symbol": "BTCUSDT", "positionAmt": "0.001", "entryPrice": "22185.2", "breakEvenPrice": "0.0",
    "markPrice": "21123.05052574", "unRealizedProfit": "-1.06214947", "liquidationPrice": "19731.45529116",
    "leverage": "4", "maxNotionalValue": "100000000", "marginType": "cross", "isolatedMargin": "0.00000000",
    "isAutoAddMargin": "false", "positionSide": "LONG", "notional": "21.12305052", "isolatedWallet": "0",
    "updateTime": 1655217461579
  }
]"""

# Symbol Configuration's example ends its object with a trailing comma; removed.
SYMBOL_CONFIG_DOC = b"""[
  {"symbol": "BTCUSDT", "marginType": "CROSSED", "isAutoAddMargin": false, "leverage": 21,
   "maxNotionalValue": "1000000"}
]"""


def test_position_risk_v3_documented_answer() -> None:
    long, short = FMT.parse_positions(200, POSITION_V3_HEDGE_DOC)
    assert (long.symbol, long.position_side, long.amount, long.entry_price, long.mark_price) == (
        "ADAUSDT", "LONG", Decimal("30"), Decimal("0.385"), Decimal("0.41047590")
    )
    assert long.unrealized_pnl == Decimal("0.76427700") and long.liquidation_price == 0
    assert long.leverage is None and long.margin_type is None and long.isolated is None  # not in V3
    assert short.amount == Decimal("-1.000") and short.notional == Decimal("-49.72023376")
    assert short.liquidation_price == Decimal("2260.56757210") and short.update_ms == 1708943511656


def test_position_risk_v2_shape_carries_leverage_and_margin_type() -> None:
    [p] = FMT.parse_positions(200, POSITION_V2_HEDGE_DOC)
    assert (p.leverage, p.margin_type, p.isolated) == (4, fo.MARGIN_CROSSED, False)
    assert p.unrealized_pnl == Decimal("-1.06214947")


def test_symbol_config_completes_v3_positions() -> None:
    configs = FMT.parse_symbol_config(200, SYMBOL_CONFIG_DOC)
    assert configs == {"BTCUSDT": fo.SymbolConfig("BTCUSDT", fo.MARGIN_CROSSED, 21, Decimal("1000000"), False)}
    v3 = FMT.parse_positions(200, POSITION_V3_HEDGE_DOC.replace(b'"ADAUSDT"', b'"BTCUSDT"'))
    done = fo.with_symbol_config(v3, configs)
    assert (done[0].leverage, done[0].margin_type) == (21, fo.MARGIN_CROSSED)
    assert (done[1].leverage, done[1].margin_type) == (None, None)  # COMPUSDT: no config given


def test_leverage_documented_answer() -> None:
    body = b'{"leverage": 21, "maxNotionalValue": "1000000", "symbol": "BTCUSDT"}'
    assert FMT.parse_leverage(200, body) == fo.LeverageAnswer("BTCUSDT", 21, Decimal("1000000"))


def test_margin_type_documented_answer_and_unchanged() -> None:
    assert FMT.parse_margin_type(200, b'{"code": 200, "msg": "success"}') is True
    assert FMT.parse_margin_type(400, b'{"code":-4046,"msg":"No need to change margin type."}') is False
    with pytest.raises(VenueError) as exc:
        FMT.parse_margin_type(400, b'{"code":-4047,"msg":"Margin type cannot be changed if there exists open orders."}')
    assert exc.value.code == -4047


def test_cancel_all_documented_answer() -> None:
    body = b'{"code": 200, "msg": "The operation of cancel all open order is done."}'
    assert FMT.parse_ack(200, body) == "The operation of cancel all open order is done."


# ----- account
# Account Information V3, single-asset mode; the example's // comments removed and its missing commas
# (after "maxWithdrawAmount" and "crossUnPnl", and the one before "]" of assets) repaired.
ACCOUNT_V3_DOC = b"""{
  "totalInitialMargin": "0.00000000", "totalMaintMargin": "0.00000000", "totalWalletBalance": "103.12345678",
  "totalUnrealizedProfit": "0.00000000", "totalMarginBalance": "103.12345678",
  "totalPositionInitialMargin": "0.00000000", "totalOpenOrderInitialMargin": "0.00000000",
  "totalCrossWalletBalance": "103.12345678", "totalCrossUnPnl": "0.00000000", "availableBalance": "103.12345678",
  "maxWithdrawAmount": "103.12345678",
  "assets": [
    {"asset": "USDT", "walletBalance": "23.72469206", "unrealizedProfit": "0.00000000",
     "marginBalance": "23.72469206", "maintMargin": "0.00000000", "initialMargin": "0.00000000",
     "positionInitialMargin": "0.00000000", "openOrderInitialMargin": "0.00000000",
     "crossWalletBalance": "23.72469206", "crossUnPnl": "0.00000000", "availableBalance": "23.72469206",
     "maxWithdrawAmount": "23.72469206", "updateTime": 1625474304765},
    {"asset": "USDC", "walletBalance": "103.12345678", "unrealizedProfit": "0.00000000",
     "marginBalance": "103.12345678", "maintMargin": "0.00000000", "initialMargin": "0.00000000",
     "positionInitialMargin": "0.00000000", "openOrderInitialMargin": "0.00000000",
     "crossWalletBalance": "103.12345678", "crossUnPnl": "0.00000000", "availableBalance": "126.72469206",
     "maxWithdrawAmount": "103.12345678", "updateTime": 1625474304765}
  ],
  "positions": [
    {"symbol": "BTCUSDT", "positionSide": "BOTH", "positionAmt": "1.000", "unrealizedProfit": "0.00000000",
     "isolatedMargin": "0.00000000", "notional": "0", "isolatedWallet": "0", "initialMargin": "0",
     "maintMargin": "0", "updateTime": 0}
  ]
}"""


def test_account_v3_documented_answer() -> None:
    a = FMT.parse_account(200, ACCOUNT_V3_DOC)
    assert (a.wallet_balance, a.margin_balance, a.available_balance, a.max_withdraw) == (
        Decimal("103.12345678"),) * 4
    assert set(a.assets) == {"USDT", "USDC"}
    usdt = a.assets["USDT"]
    assert (usdt.wallet, usdt.margin_balance, usdt.available, usdt.update_ms) == (
        Decimal("23.72469206"), Decimal("23.72469206"), Decimal("23.72469206"), 1625474304765
    )
    assert a.assets["USDC"].available == Decimal("126.72469206")
    [p] = a.positions
    assert (p.symbol, p.position_side, p.amount) == ("BTCUSDT", "BOTH", Decimal("1.000"))


# ----- income
INCOME_DOC = b"""[
  {"symbol": "", "incomeType": "TRANSFER", "income": "-0.37500000", "asset": "USDT", "info": "TRANSFER",
   "time": 1570608000000, "tranId": 9689322392, "tradeId": ""},
  {"symbol": "BTCUSDT", "incomeType": "COMMISSION", "income": "-0.01000000", "asset": "USDT",
   "info": "COMMISSION", "time": 1570636800000, "tranId": 9689322392, "tradeId": "2059192"}
]"""

# Not a documented example: a FUNDING_FEE record in the documented shape.
FUNDING = b"""[{"symbol": "BTCUSDT", "incomeType": "FUNDING_FEE", "income": "0.01932500", "asset": "USDT",
  "info": "FUNDING_FEE", "time": 1591718400000, "tranId": 2345234523, "tradeId": ""}]"""


def test_income_documented_answer() -> None:
    transfer, commission = FMT.parse_income(200, INCOME_DOC)
    assert transfer == fo.IncomeRecord("", "TRANSFER", Decimal("-0.37500000"), "USDT", 1570608000000, "9689322392",
                                       "", "TRANSFER")
    assert (commission.symbol, commission.amount, commission.trade_id) == (
        "BTCUSDT", Decimal("-0.01000000"), "2059192"
    )
    [f] = FMT.parse_income(200, FUNDING)
    assert (f.income_type, f.amount, f.tran_id) == ("FUNDING_FEE", Decimal("0.01932500"), "2345234523")


# ----- exchangeInfo
# Exchange Information's example with its // comments and trailing commas removed.
EXCHANGE_INFO_DOC = b"""{
  "exchangeFilters": [],
  "rateLimits": [
    {"interval": "MINUTE", "intervalNum": 1, "limit": 2400, "rateLimitType": "REQUEST_WEIGHT"},
    {"interval": "MINUTE", "intervalNum": 1, "limit": 1200, "rateLimitType": "ORDERS"}
  ],
  "serverTime": 1565613908500,
  "assets": [
    {"asset": "BTC", "marginAvailable": true, "autoAssetExchange": "-0.10"},
    {"asset": "USDT", "marginAvailable": true, "autoAssetExchange": "0"},
    {"asset": "BNB", "marginAvailable": false, "autoAssetExchange": null}
  ],
  "symbols": [
    {
      "symbol": "BLZUSDT", "pair": "BLZUSDT", "contractType": "PERPETUAL", "deliveryDate": 4133404800000,
      "onboardDate": 1598252400000, "status": "TRADING", "maintMarginPercent": "2.5000",
      "requiredMarginPercent": "5.0000", "baseAsset": "BLZ", "quoteAsset": "USDT", "marginAsset": "USDT",
      "pricePrecision": 5, "quantityPrecision": 0, "baseAssetPrecision": 8, "quotePrecision": 8,
      "underlyingType": "COIN", "underlyingSubType": ["STORAGE"], "settlePlan": 0, "triggerProtect": "0.15",
      "filters": [
        {"filterType": "PRICE_FILTER", "maxPrice": "300", "minPrice": "0.0001", "tickSize": "0.0001"},
        {"filterType": "LOT_SIZE", "maxQty": "10000000", "minQty": "1", "stepSize": "1"},
        {"filterType": "MARKET_LOT_SIZE", "maxQty": "590119", "minQty": "1", "stepSize": "1"},
        {"filterType": "MAX_NUM_ORDERS", "limit": 200},
        {"filterType": "MIN_NOTIONAL", "notional": "5.0"},
        {"filterType": "PERCENT_PRICE", "multiplierUp": "1.1500", "multiplierDown": "0.8500",
         "multiplierDecimal": "4"}
      ],
      "orderTypes": ["LIMIT", "MARKET", "STOP", "STOP_MARKET", "TAKE_PROFIT", "TAKE_PROFIT_MARKET",
                     "TRAILING_STOP_MARKET"],
      "timeInForce": ["GTC", "IOC", "FOK", "GTX"],
      "liquidationFee": "0.010000", "marketTakeBound": "0.30"
    }
  ],
  "timezone": "UTC"
}"""


def test_exchange_info_documented_answer() -> None:
    info = FMT.parse_exchange_info_full(EXCHANGE_INFO_DOC)
    r = info.rules["BLZUSDT"]
    assert r.rules == SymbolRules("BLZUSDT", Decimal("0.0001"), Decimal("1"), Decimal("1"), Decimal("5"), 4, 0)
    assert (r.market_step, r.market_min_qty, r.market_max_qty, r.max_qty) == (
        Decimal("1"), Decimal("1"), Decimal("590119"), Decimal("10000000")
    )
    assert (r.min_price, r.max_price, r.status, r.contract_type) == (
        Decimal("0.0001"), Decimal("300"), "TRADING", "PERPETUAL"
    )
    # The example lists weight and orders per minute; the 10 s order limit stays the documented one.
    assert info.limits == fo.FuturesLimits(2400, 1200, 300)
    assert FMT.parse_exchange_info(EXCHANGE_INFO_DOC) == {"BLZUSDT": r.rules}


def test_exchange_info_rate_limits_win_over_the_documented_ones() -> None:
    body = json.loads(EXCHANGE_INFO_DOC)
    body["rateLimits"] = [
        {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 6000},
        {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 250},
        {"rateLimitType": "ORDERS", "interval": "MINUTE", "intervalNum": 1, "limit": 1000},
    ]
    assert FMT.parse_exchange_info_full(json.dumps(body).encode()).limits == fo.FuturesLimits(6000, 1000, 250)


def test_exchange_info_floor_uses_the_published_step_and_tick() -> None:
    r = FMT.parse_exchange_info_full(EXCHANGE_INFO_DOC).rules["BLZUSDT"]
    assert fo.wire_qty(Decimal("1234.9"), r.market_step) == "1234"
    assert fo.wire_price(Decimal("0.123456"), r.rules.tick) == "0.1234"


@pytest.mark.parametrize("body", [b"{}", b"not json", b'{"symbols":[{"symbol":"X","filters":'
                                                          b'[{"filterType":"LOT_SIZE","stepSize":"-1"}]}]}'])
def test_exchange_info_unreadable(body: bytes) -> None:
    with pytest.raises(ProtocolError):
        FMT.parse_exchange_info_full(body)


# ----- usage headers and time
def test_rate_headers() -> None:
    headers = {"x-mbx-used-weight-1m": "15", "x-mbx-order-count-1m": "3", "x-mbx-order-count-10s": "1"}
    assert FMT.parse_futures_rate_headers(headers) == fo.FuturesRateHeaders(15, 3, 1, None)
    assert FMT.parse_rate_headers(headers) == RateHeaders(15, 1, None, None)
    # Original-case names (the venue's spelling) are read too; a rejected order may carry no order counts.
    assert FMT.parse_futures_rate_headers({"X-MBX-USED-WEIGHT-1M": "40", "Retry-After": "3"}) == (
        fo.FuturesRateHeaders(40, None, None, 3.0)
    )


def test_documented_limits_and_weights() -> None:
    assert fo.FuturesLimits(2400, 1200, 300) == fo.DOCUMENTED_LIMITS
    w = FMT.weights
    assert (w.new_order, w.query_order, w.cancel_order, w.open_orders_symbol, w.open_orders_all, w.account,
            w.exchange_info) == (0, 1, 1, 1, 40, 5, 1)


def test_time() -> None:
    assert FMT.parse_time(b'{"serverTime": 1499827319559}') == 1499827319559
    with pytest.raises(ProtocolError):
        FMT.parse_time(b"{}")


# ----- user data stream
def test_listen_key_answers() -> None:
    key = "pqia91ma19a5s61cv6a81va65sdf19v8a65a1a5s61cv6a81va65sdf19v8a65a1"  # Start User Data Stream's example
    assert fu.parse_listen_key(200, json.dumps({"listenKey": key}).encode()) == key
    with pytest.raises(VenueError) as exc:
        fu.parse_listen_key(400, b'{"code":-1125,"msg":"This listenKey does not exist."}')
    assert exc.value.code == fu.ERR_LISTEN_KEY_MISSING
    with pytest.raises(ProtocolError):
        fu.parse_listen_key(200, b'{"listenKey":"a/b"}')


def test_private_stream_urls() -> None:
    key = "XaEAKTsQSRLZAGH9tuIu37plSRsdjmlAVBoNYPUITlTAko1WI22PgmBMpI1rS8Yh"
    assert fu.user_stream_url(key) == (
        f"wss://fstream.binance.com/private/ws?listenKey={key}&events=ORDER_TRADE_UPDATE/ACCOUNT_UPDATE"
    )
    assert fu.user_stream_url(key, ()) == f"wss://fstream.binance.com/private/ws/{key}"  # the page's example
    assert fu.user_stream_url("k1", ["ORDER_TRADE_UPDATE"], "ws://127.0.0.1:9000/private") == (
        "ws://127.0.0.1:9000/private/ws?listenKey=k1&events=ORDER_TRADE_UPDATE"
    )
    with pytest.raises(ValueError):
        fu.user_stream_url("k&events=X")


ORDER_TRADE_UPDATE_DOC = b"""{
  "e": "ORDER_TRADE_UPDATE", "E": 1568879465651, "T": 1568879465650,
  "o": {
    "s": "BTCUSDT", "c": "TEST", "S": "SELL", "o": "TRAILING_STOP_MARKET", "f": "GTC", "q": "0.001", "p": "0",
    "ap": "0", "sp": "7103.04", "x": "NEW", "X": "NEW", "i": 8886774, "l": "0", "z": "0", "L": "0", "N": "USDT",
    "n": "0", "T": 1568879465650, "t": 0, "b": "0", "a": "9.91", "m": false, "R": false, "wt": "CONTRACT_PRICE",
    "ot": "TRAILING_STOP_MARKET", "ps": "LONG", "cp": false, "AP": "7476.89", "cr": "5.0", "pP": false,
    "si": 0, "ss": 0, "rp": "0", "V": "EXPIRE_TAKER", "pm": "OPPONENT", "gtd": 0, "er": "0"
  }
}"""

# Not a documented example: the documented event as the fill of a reduce-only IOC order.
ORDER_FILL = (
    ORDER_TRADE_UPDATE_DOC.replace(b'"x": "NEW", "X": "NEW"', b'"x": "TRADE", "X": "PARTIALLY_FILLED"')
    .replace(b'"l": "0", "z": "0", "L": "0"', b'"l": "0.0005", "z": "0.0005", "L": "7103.10"')
    .replace(b'"n": "0"', b'"n": "0.00177577"').replace(b'"t": 0', b'"t": 12345678')
    .replace(b'"R": false', b'"R": true').replace(b'"rp": "0"', b'"rp": "-0.12500000"')
    .replace(b'"m": false', b'"m": true')
)


def test_order_trade_update_documented_event() -> None:
    u = fu.parse_user_event(ORDER_TRADE_UPDATE_DOC)
    assert isinstance(u, fu.FuturesOrderUpdate)
    assert (u.symbol, u.client_order_id, u.order_id, u.side, u.order_type, u.time_in_force) == (
        "BTCUSDT", "TEST", "8886774", "SELL", "TRAILING_STOP_MARKET", "GTC"
    )
    assert (u.exec_type, u.status, u.venue_status, u.trade_id, u.commission_asset) == ("NEW", NEW, "NEW", "", "USDT")
    assert (u.orig_qty, u.last_qty, u.cum_qty, u.commission, u.realized_pnl) == (
        Decimal("0.001"), 0, 0, 0, 0
    )
    assert (u.reduce_only, u.maker, u.position_side, u.expiry_reason) == (False, False, "LONG", "0")
    assert (u.event_ms, u.trade_ms) == (1568879465651, 1568879465650)


def test_order_trade_update_fill() -> None:
    u = fu.parse_user_event(ORDER_FILL)
    assert isinstance(u, fu.FuturesOrderUpdate)
    assert (u.exec_type, u.status, u.trade_id, u.reduce_only, u.maker) == (
        "TRADE", "PARTIALLY_FILLED", "12345678", True, True
    )
    assert (u.last_qty, u.last_price, u.commission, u.realized_pnl) == (
        Decimal("0.0005"), Decimal("7103.10"), Decimal("0.00177577"), Decimal("-0.12500000")
    )


def test_expired_in_match_is_expired() -> None:
    u = fu.parse_user_event(ORDER_TRADE_UPDATE_DOC.replace(b'"X": "NEW"', b'"X": "EXPIRED_IN_MATCH"'))
    assert isinstance(u, fu.FuturesOrderUpdate) and u.status == EXPIRED


# Event: Balance and Position Update; the example's // comments removed and its full-width comma made ','.
ACCOUNT_UPDATE_DOC = b"""{
  "e": "ACCOUNT_UPDATE", "E": 1564745798939, "T": 1564745798938,
  "a": {
    "m": "ORDER",
    "B": [
      {"a": "USDT", "wb": "122624.12345678", "cw": "100.12345678", "bc": "50.12345678"},
      {"a": "BUSD", "wb": "1.00000000", "cw": "0.00000000", "bc": "-49.12345678"}
    ],
    "P": [
      {"s": "BTCUSDT", "pa": "0", "ep": "0.00000", "bep": "0", "cr": "200", "up": "0", "mt": "isolated",
       "iw": "0.00000000", "ps": "BOTH"},
      {"s": "BTCUSDT", "pa": "20", "ep": "6563.66500", "bep": "0", "cr": "0", "up": "2850.21200",
       "mt": "isolated", "iw": "13200.70726908", "ps": "LONG"},
      {"s": "BTCUSDT", "pa": "-10", "ep": "6563.86000", "bep": "6563.6", "cr": "-45.04000000",
       "up": "-1423.15600", "mt": "isolated", "iw": "6570.42511771", "ps": "SHORT"}
    ]
  }
}"""


def test_account_update_documented_event() -> None:
    u = fu.parse_user_event(ACCOUNT_UPDATE_DOC)
    assert isinstance(u, fu.FuturesAccountUpdate)
    assert (u.reason, u.event_ms, u.transaction_ms) == ("ORDER", 1564745798939, 1564745798938)
    assert u.balances == (
        fu.BalanceUpdate("USDT", Decimal("122624.12345678"), Decimal("100.12345678"), Decimal("50.12345678")),
        fu.BalanceUpdate("BUSD", Decimal("1.00000000"), Decimal("0.00000000"), Decimal("-49.12345678")),
    )
    both, long, short = u.positions
    assert (both.amount, both.accumulated_realized, both.margin_type) == (0, Decimal("200"), fo.MARGIN_ISOLATED)
    assert (long.amount, long.entry_price, long.unrealized_pnl, long.isolated_wallet, long.position_side) == (
        Decimal("20"), Decimal("6563.66500"), Decimal("2850.21200"), Decimal("13200.70726908"), "LONG"
    )
    assert (short.amount, short.break_even_price, short.accumulated_realized, short.unrealized_pnl) == (
        Decimal("-10"), Decimal("6563.6"), Decimal("-45.04000000"), Decimal("-1423.15600")
    )


def test_cross_funding_fee_update_has_balances_only() -> None:
    """The page: a cross FUNDING_FEE pushes B with the fee's asset only and no P (this body is built so)."""
    body = b'{"e":"ACCOUNT_UPDATE","E":1,"T":1,"a":{"m":"FUNDING_FEE","B":[{"a":"USDT","wb":"99.9","cw":"99.9",' \
           b'"bc":"0"}],"P":[]}}'
    u = fu.parse_user_event(body)
    assert isinstance(u, fu.FuturesAccountUpdate)
    assert (u.reason, len(u.balances), u.positions) == ("FUNDING_FEE", 1, ())


def test_listen_key_expired_documented_event_and_stream_envelope() -> None:
    raw = (b'{"e": "listenKeyExpired", "E": 1736996475556, '
           b'"listenKey": "WsCMN0a4KHUPTQuX6IUnqEZfB1inxmv1qR4kbf1LuEjur5VdbzqvyxqG9TSjVVxv"}')
    expected = fu.ListenKeyExpired("WsCMN0a4KHUPTQuX6IUnqEZfB1inxmv1qR4kbf1LuEjur5VdbzqvyxqG9TSjVVxv", 1736996475556)
    assert fu.parse_user_event(raw) == expected
    assert fu.parse_user_event(b'{"stream": "WsCMN0a4", "data": ' + raw + b"}") == expected
    assert fu.parse_user_event(b'{"stream":"k","data":' + ACCOUNT_UPDATE_DOC + b"}") == (
        fu.parse_user_event(ACCOUNT_UPDATE_DOC)
    )


@pytest.mark.parametrize("frame", [b'{"result":null,"id":1}', b'{"e":"TRADE_LITE","E":1,"T":1,"s":"BTCUSDT"}',
                                   b'{"e":"ALGO_UPDATE","E":1,"T":1,"o":{"caid":"x","aid":1}}'])
def test_other_frames_are_none(frame: bytes) -> None:
    assert fu.parse_user_event(frame) is None


@pytest.mark.parametrize(
    "frame",
    [b"", b"[]", b"not json", b'{"e":"ORDER_TRADE_UPDATE","E":1}', b'{"e":"ACCOUNT_UPDATE","a":{"B":[]}}',
     ORDER_TRADE_UPDATE_DOC.replace(b'"X": "NEW"', b'"X": "HALF"'),
     ORDER_TRADE_UPDATE_DOC.replace(b'"q": "0.001"', b'"q": "x"'),
     ACCOUNT_UPDATE_DOC.replace(b'"mt": "isolated"', b'"mt": "hedged"', 1)],
)
def test_malformed_events_raise_protocol_error(frame: bytes) -> None:
    with pytest.raises(ProtocolError):
        fu.parse_user_event(frame)


@given(st.binary(max_size=200))
def test_random_bytes_only_raise_protocol_error(payload: bytes) -> None:
    with contextlib.suppress(ProtocolError):
        fu.parse_user_event(payload)
