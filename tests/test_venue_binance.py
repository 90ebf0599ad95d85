"""Binance spot wire format: signing, bookTicker parsing, order requests and responses (pure code)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.config import FeedSettings
from shared.errors import ProtocolError
from shared.venues import market_format, order_format
from shared.venues.binance.auth import sign
from shared.venues.common import (
    NOTICE_SHUTDOWN,
    DepthDiff,
    DepthSnapshot,
    FundingUpdate,
    Notice,
    TopOfBook,
)

MARKET_EVENTS = (TopOfBook, DepthDiff, DepthSnapshot, FundingUpdate, Notice)

# Binance's documented signing example (rest-api.md, "SIGNED endpoint examples").
DOC_SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
DOC_QUERY = (
    "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1&recvWindow=5000&timestamp=1499827319559"
)
DOC_SIGNATURE = "c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71"

BOOK_TICKER = (
    b'{"stream":"bnbusdt@bookTicker","data":{"u":400900217,"s":"BNBUSDT","b":"25.35190000",'
    b'"B":"31.21000000","a":"25.36520000","A":"40.66000000"}}'
)


def test_signature_matches_documented_example() -> None:
    assert sign(DOC_SECRET, DOC_QUERY) == DOC_SIGNATURE


def test_signature_covers_query_then_body() -> None:
    query, body = DOC_QUERY.split("&quantity=")
    assert sign(DOC_SECRET, query, "&quantity=" + body) == DOC_SIGNATURE


def test_url_puts_every_stream_in_the_combined_path() -> None:
    fmt = market_format("binance")
    channels = fmt.channels(["BTCUSDT", "ETHUSDT"], FeedSettings(depth="none"))
    url = fmt.url("wss://stream.binance.com:9443/stream", channels)
    assert url == "wss://stream.binance.com:9443/stream?streams=btcusdt@bookTicker/ethusdt@bookTicker"
    assert fmt.subscribes_in_url
    assert json.loads(fmt.subscribe_frames(channels[:1])[0]) == {
        "method": "SUBSCRIBE", "params": ["btcusdt@bookTicker"], "id": 1
    }
    assert json.loads(fmt.unsubscribe_frames(channels[1:])[0])["method"] == "UNSUBSCRIBE"
    assert fmt.keepalive_interval_s is None and fmt.keepalive_frame() is None


@pytest.mark.parametrize(
    ("settings", "names"),
    [
        (FeedSettings(), ["btcusdt@bookTicker", "btcusdt@depth@100ms"]),
        (FeedSettings(depth_interval_ms=1000, book_ticker=False), ["btcusdt@depth"]),
        (FeedSettings(depth="partial", depth_levels=5), ["btcusdt@bookTicker", "btcusdt@depth5@100ms"]),
    ],
)
def test_stream_names_follow_the_feed_settings(settings: FeedSettings, names: list[str]) -> None:
    assert [c.name for c in market_format("binance").channels(["BTCUSDT"], settings)] == names


DEPTH_UPDATE = (
    b'{"stream":"bnbbtc@depth@100ms","data":{"e":"depthUpdate","E":1672515782136,"s":"BNBBTC","U":157,"u":160,'
    b'"b":[["0.0024","10"]],"a":[["0.0026","100"],["0.0027","0"]]}}'
)


def test_parse_depth_update_documented_example() -> None:
    d = market_format("binance").parse(DEPTH_UPDATE, False)
    assert d == DepthDiff("BNBBTC", 157, 160, [(0.0024, 10.0)], [(0.0026, 100.0), (0.0027, 0.0)])
    raw = json.dumps(json.loads(DEPTH_UPDATE)["data"]).encode()
    assert market_format("binance").parse(raw, False) == d


def test_parse_partial_depth_and_snapshot() -> None:
    frame = (
        b'{"stream":"bnbbtc@depth5@100ms","data":{"lastUpdateId":160,"bids":[["0.0024","10"]],'
        b'"asks":[["0.0026","100"]]}}'
    )
    expected = DepthSnapshot("BNBBTC", 160, [(0.0024, 10.0)], [(0.0026, 100.0)])
    assert market_format("binance").parse(frame, False) == expected
    body = b'{"lastUpdateId":1027024,"bids":[["4.00000000","431.00000000"]],"asks":[["4.00000200","12.00000000"]]}'
    snap = market_format("binance").parse_snapshot("BNBBTC", body)
    assert snap == DepthSnapshot("BNBBTC", 1027024, [(4.0, 431.0)], [(4.000002, 12.0)])
    with pytest.raises(ProtocolError):
        market_format("binance").parse_snapshot("BNBBTC", b'{"code":-1121,"msg":"Invalid symbol."}')
    assert market_format("binance").snapshot_path("BNBBTC", 1000) == "/api/v3/depth?symbol=BNBBTC&limit=1000"


def test_server_shutdown_is_a_notice() -> None:
    assert market_format("binance").parse(b'{"e":"serverShutdown","E":1672515782136}', False) == Notice(NOTICE_SHUTDOWN)


MARK_PRICE = (
    b'{"stream":"btcusdt@markPrice@1s","data":{"e":"markPriceUpdate","E":1562305380000,"s":"BTCUSDT",'
    b'"p":"11794.15000000","i":"11784.62659091","P":"11784.25641265","r":"0.00038167","T":1562306400000}}'
)


def test_futures_mark_price_documented_example() -> None:
    fmt = market_format("binance_usdm")
    assert fmt.parse(MARK_PRICE, False) == FundingUpdate("BTCUSDT", 0.00038167, 1562306400000, 11794.15, 1562305380000)
    channels = fmt.channels(["BTCUSDT"], FeedSettings())
    assert fmt.url("wss://fstream.binance.com/market/stream", channels) == (
        "wss://fstream.binance.com/market/stream?streams=btcusdt@markPrice@1s"
    )
    for bad in (MARK_PRICE.replace(b'"0.00038167"', b'"x"'), MARK_PRICE.replace(b"markPriceUpdate", b"kline"), b"{"):
        with pytest.raises(ProtocolError):
            fmt.parse(bad, False)


def test_parse_combined_book_ticker() -> None:
    top = market_format("binance").parse(BOOK_TICKER, False)
    assert top == TopOfBook("BNBUSDT", 25.3519, 31.21, 25.3652, 40.66, 400900217)


def test_parse_raw_stream_payload() -> None:
    raw = json.loads(BOOK_TICKER)["data"]
    top = market_format("binance").parse(json.dumps(raw).encode(), False)
    assert top is not None and top.seq == 400900217 and top.symbol == "BNBUSDT"


@pytest.mark.parametrize(
    "frame",
    [
        b'{"result":null,"id":1}',
        b'{"result":["btcusdt@bookTicker"],"id":3}',
    ],
)
def test_control_frames_are_none(frame: bytes) -> None:
    assert market_format("binance").parse(frame, False) is None


def _with_data(**changes: object) -> bytes:
    event = json.loads(BOOK_TICKER)
    event["data"].update(changes)
    event["data"] = {k: v for k, v in event["data"].items() if v is not None}
    return json.dumps(event).encode()


@pytest.mark.parametrize(
    ("frame", "binary"),
    [
        (b"not json", False),
        (b"", False),
        (b"{}", False),
        (b"[1,2,3]", False),
        (b"\xff\xfe", False),
        (BOOK_TICKER, True),
        (_with_data(b="abc"), False),
        (_with_data(a="NaN"), False),
        (_with_data(A="inf"), False),
        (_with_data(B="-1"), False),
        (_with_data(b=25.35), False),  # a JSON number where the venue sends a string
        (_with_data(u="400900217"), False),
        (_with_data(s=None), False),
        (b'{"stream":"bnbusdt@depth5","data":{"lastUpdateId":1,"bids":[["x","1"]],"asks":[]}}', False),
        (b'{"stream":"bnbusdt@depth","data":{"e":"depthUpdate","E":1,"s":"X","U":5,"u":4,"b":[],"a":[]}}', False),
        (b'{"stream":"bnbusdt@depth","data":{"e":"depthUpdate","E":1,"s":"X","U":1,"u":4,"b":[["1","-2"]],"a":[]}}',
         False),
        (b'{"stream":"bnbusdt@trade","data":{}}', False),
        (b'{"code":2,"msg":"Invalid request: unknown variant"}', False),
    ],
)
def test_malformed_frames_raise_protocol_error(frame: bytes, binary: bool) -> None:
    with pytest.raises(ProtocolError):
        market_format("binance").parse(frame, binary)


json_keys = st.sampled_from("usbBaAe") | st.text(max_size=4)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(json_keys, inner, max_size=7),
    max_leaves=20,
)


@settings(deadline=None)  # a busy test machine must not turn slowness into failure
@given(payload=st.binary(max_size=300), binary=st.booleans())
def test_random_bytes_only_raise_protocol_error(payload: bytes, binary: bool) -> None:
    fmt = market_format("binance")
    try:
        result = fmt.parse(payload, binary)
    except ProtocolError:
        return
    assert result is None or isinstance(result, MARKET_EVENTS)


@settings(deadline=None)  # a busy test machine must not turn slowness into failure
@given(data=json_values)
def test_random_json_only_raises_protocol_error(data: object) -> None:
    fmt = market_format("binance")
    for payload in (json.dumps(data).encode(), json.dumps({"stream": "x", "data": data}).encode()):
        try:
            result = fmt.parse(payload, False)
        except ProtocolError:
            continue
        assert result is None or isinstance(result, MARKET_EVENTS)


def test_new_order_request_exact_text() -> None:
    req = order_format("binance").build_new_order(
        symbol="BTCUSDT", side="BUY", price="97000.01", qty="0.00150", client_order_id="dz1fb",
        api_key="KEY", api_secret=DOC_SECRET, timestamp_ms=1499827319559, recv_window_ms=5000,
    )
    query = (
        "symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=IOC&quantity=0.00150&price=97000.01"
        "&newClientOrderId=dz1fb&newOrderRespType=FULL&recvWindow=5000&timestamp=1499827319559"
    )
    assert req.method == "POST"
    assert req.path == f"/api/v3/order?{query}&signature={sign(DOC_SECRET, query)}"
    assert req.headers == [("X-MBX-APIKEY", "KEY")]
    assert req.body == b""


def test_query_order_request_exact_text() -> None:
    req = order_format("binance").build_query_order(
        symbol="BTCUSDT", client_order_id="dz1fb", api_key="KEY", api_secret=DOC_SECRET,
        timestamp_ms=1499827319559, recv_window_ms=2000,
    )
    query = "symbol=BTCUSDT&origClientOrderId=dz1fb&recvWindow=2000&timestamp=1499827319559"
    assert req.method == "GET"
    assert req.path == f"/api/v3/order?{query}&signature={sign(DOC_SECRET, query)}"
    assert req.headers == [("X-MBX-APIKEY", "KEY")]


def test_values_outside_the_plain_set_are_percent_encoded_before_signing() -> None:
    req = order_format("binance").build_query_order(
        symbol="BTCUSDT", client_order_id="a b/ü", api_key="K", api_secret="S", timestamp_ms=1, recv_window_ms=1,
    )
    assert "origClientOrderId=a%20b%2F%C3%BC&" in req.path
    query = req.path.split("?", 1)[1].rsplit("&signature=", 1)[0]
    assert req.path.endswith("&signature=" + sign("S", query))


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


def test_parse_full_response_with_fills() -> None:
    r = order_format("binance").parse_order_response(200, json.dumps(FULL).encode(), "BTC")
    assert r.ok and r.status == "FILLED" and not r.needs_query
    assert (r.order_id, r.client_order_id) == ("28", "dz1fb")
    assert r.filled_qty == pytest.approx(0.003)
    assert r.avg_price == pytest.approx(96999.0)
    # base-asset commission valued at the fill price, quote-asset commission as is
    assert r.fee_usd == pytest.approx(0.000001 * 96999.0 + 0.193998)
    assert [f[3] for f in r.fills] == ["56", "57"]
    assert r.fills[0][:3] == pytest.approx((96999.0, 0.001, 0.096999))
    assert (r.error_code, r.error_msg) == (0, "")


def test_parse_expired_ioc_without_fills() -> None:
    body = {**FULL, "status": "EXPIRED", "executedQty": "0.00000000", "cummulativeQuoteQty": "0.00000000", "fills": []}
    r = order_format("binance").parse_order_response(200, json.dumps(body).encode(), "BTC")
    assert r.ok and r.status == "EXPIRED" and r.filled_qty == 0.0 and r.avg_price == 0.0 and r.fills == []


def test_parse_query_response_gives_one_aggregate_fill() -> None:
    body = {k: v for k, v in FULL.items() if k != "fills"}
    r = order_format("binance").parse_order_response(200, json.dumps(body).encode(), "BTC")
    assert r.ok and r.status == "FILLED" and r.fee_usd == 0.0
    assert r.fills == [(pytest.approx(96999.0), pytest.approx(0.003), 0.0, "order:28")]


def test_parse_ack_response_needs_query() -> None:
    body = b'{"symbol":"BTCUSDT","orderId":28,"orderListId":-1,"clientOrderId":"dz1fb","transactTime":1507725176595}'
    r = order_format("binance").parse_order_response(200, body, "BTC")
    assert r.ok and r.needs_query and r.status == "NEW" and r.order_id == "28"


def test_parse_error_json_is_rejected_with_code_kept() -> None:
    body = b'{"code":-2010,"msg":"Account has insufficient balance for requested action."}'
    r = order_format("binance").parse_order_response(400, body, "BTC")
    assert not r.ok and r.status == "REJECTED"
    assert (r.error_code, r.error_msg) == (-2010, "Account has insufficient balance for requested action.")


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (503, b'{"code":-1000,"msg":"Unknown error"}'),
        (500, b"<html>Internal Server Error</html>"),
        (504, b""),
        (400, b"<html>bad gateway</html>"),
        (408, b'{"code":-1007,"msg":"Timeout waiting for response from backend server."}'),
        (200, b"not json"),
        (200, b'{"symbol":"BTCUSDT","orderId":1,"status":"FILLED","executedQty":"x"}'),
    ],
)
def test_5xx_and_unreadable_answers_are_unknown(status: int, body: bytes) -> None:
    r = order_format("binance").parse_order_response(status, body, "BTC")
    assert not r.ok and r.status == "UNKNOWN"
