"""MEXC spot v3 wire format: signing, protobuf book ticker, control frames, orders (pure code)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.config import FeedSettings
from shared.errors import ProtocolError
from shared.venues import market_format, order_format
from shared.venues.common import NOTICE_PONG, DepthDiff, DepthSnapshot, FundingUpdate, Notice, TopOfBook
from shared.venues.mexc.auth import sign
from shared.venues.mexc.proto import push_data_pb2
from shared.venues.mexc.proto.push_data_pb2 import (
    PublicAggreBookTickerV3Api,
    PublicAggreDepthItem,
    PublicAggreDepthsV3Api,
    PushDataV3ApiWrapper,
)

MARKET_EVENTS = (TopOfBook, DepthDiff, DepthSnapshot, FundingUpdate, Notice)

REPO = Path(__file__).resolve().parents[1]
PROTO_DIR = REPO / "shared" / "venues" / "mexc" / "proto"

# MEXC's documented signing examples (spot v3 "SIGNED Endpoint Examples for POST /api/v3/order").
DOC_SECRET = "45d0b3c26f2644f19bfb98b07741b2f5"
DOC_PARAMS = "symbol=BTCUSDT&side=BUY&type=LIMIT&quantity=1&price=11&recvWindow=5000&timestamp=1644489390087"
CHANNEL = "spot@public.aggre.bookTicker.v3.api.pb@100ms@BTCUSDT"
BLOCKED = (
    '{"id":0,"code":0,"msg":"Not Subscribed successfully! [spot@public.deals.v3.api@BTCUSDT].  Reason： Blocked! "}'
).encode()


def push(symbol: str | None = "BTCUSDT", version: str = "3811093", channel: str = CHANNEL) -> PushDataV3ApiWrapper:
    w = PushDataV3ApiWrapper(
        channel=channel,
        publicAggreBookTicker=PublicAggreBookTickerV3Api(
            bidPrice="97000.01", bidQuantity="0.15012", askPrice="97000.02", askQuantity="1.20000", version=version
        ),
        sendTime=1736412092433,
    )
    if symbol is not None:
        w.symbol = symbol
    return w


def test_signature_matches_documented_examples() -> None:
    assert sign(DOC_SECRET, DOC_PARAMS) == "fd3e4e8543c5188531eb7279d68ae7d26a573d0fc5ab0d18eb692451654d837a"
    # query string and body concatenated with no separator
    query, body = DOC_PARAMS.split("&quantity=")
    assert sign(DOC_SECRET, query, "quantity=" + body) == (
        "d1a676610ceb39174c8039b3f548357994b2a34139a8addd33baadba65684592"
    )


def test_subscription_frames_hold_at_most_30_channels() -> None:
    fmt = market_format("mexc")
    tickers = FeedSettings(depth="none")
    assert fmt.url("wss://wbs-api.mexc.com/ws", fmt.channels(["BTCUSDT"], tickers)) == "wss://wbs-api.mexc.com/ws"
    assert fmt.subscribe_frames(fmt.channels(["BTCUSDT", "ETHUSDT"], tickers)) == [
        '{"method": "SUBSCRIPTION", "params": ["spot@public.aggre.bookTicker.v3.api.pb@100ms@BTCUSDT", '
        '"spot@public.aggre.bookTicker.v3.api.pb@100ms@ETHUSDT"]}'
    ]
    frames = fmt.subscribe_frames(fmt.channels([f"S{i}USDT" for i in range(31)], tickers))
    assert [len(json.loads(f)["params"]) for f in frames] == [30, 1]
    assert fmt.keepalive_interval_s == 20.0
    assert json.loads(fmt.keepalive_frame() or "") == {"method": "PING"}


def test_parse_book_ticker_push() -> None:
    top = market_format("mexc").parse(push().SerializeToString(), True)
    assert top == TopOfBook("BTCUSDT", 97000.01, 0.15012, 97000.02, 1.2, 3811093)


def test_symbol_from_channel_and_missing_version() -> None:
    top = market_format("mexc").parse(push(symbol=None, version="").SerializeToString(), True)
    assert top is not None and top.symbol == "BTCUSDT" and top.seq == 0


def _field(number: int, wire_type: int, payload: bytes) -> bytes:
    """One protobuf field, hand-encoded: fields this schema does not know."""

    def varint(n: int) -> bytes:
        out = bytearray()
        while True:
            b, n = n & 0x7F, n >> 7
            out.append(b | (0x80 if n else 0))
            if not n:
                return bytes(out)

    if wire_type == 0:
        return varint(number << 3) + payload
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def test_unknown_fields_are_skipped() -> None:
    inner = push().publicAggreBookTicker.SerializeToString() + _field(9, 0, b"\x05") + _field(12, 2, b"future")
    frame = (
        _field(1, 2, CHANNEL.encode())
        + _field(314, 2, _field(1, 2, b"an aggregated deal"))  # a body this schema leaves out
        + _field(315, 2, inner)
        + _field(3, 2, b"BTCUSDT")
        + _field(7, 0, b"\x2a")
        + _field(400, 2, b"\x00\x01")
    )
    top = market_format("mexc").parse(frame, True)
    assert top == TopOfBook("BTCUSDT", 97000.01, 0.15012, 97000.02, 1.2, 3811093)


def test_a_push_with_only_an_unknown_body_is_not_a_quote() -> None:
    frame = _field(1, 2, b"spot@public.aggre.deals.v3.api.pb@100ms@BTCUSDT") + _field(314, 2, b"")
    with pytest.raises(ProtocolError):
        market_format("mexc").parse(frame, True)


def test_acks_are_none_and_pong_is_a_notice() -> None:
    fmt = market_format("mexc")
    assert fmt.parse(b'{"id":0,"code":0,"msg":"spot@public.aggre.bookTicker.v3.api.pb@100ms@BTCUSDT"}', False) is None
    assert fmt.parse(b'{"id":0,"code":0,"msg":"PONG"}', False) == Notice(NOTICE_PONG)


def depth_push(first: str = "101", last: str = "103") -> PushDataV3ApiWrapper:
    return PushDataV3ApiWrapper(
        channel="spot@public.aggre.depth.v3.api.pb@100ms@BTCUSDT",
        symbol="BTCUSDT",
        publicAggreDepths=PublicAggreDepthsV3Api(
            asks=[PublicAggreDepthItem(price="97000.02", quantity="0.5")],
            bids=[
                PublicAggreDepthItem(price="96999.99", quantity="0"),
                PublicAggreDepthItem(price="96999.98", quantity="2"),
            ],
            eventType="spot@public.aggre.depth.v3.api.pb@100ms",
            fromVersion=first,
            toVersion=last,
        ),
    )


def test_parse_depth_push_and_snapshot() -> None:
    fmt = market_format("mexc")
    d = fmt.parse(depth_push().SerializeToString(), True)
    assert d == DepthDiff("BTCUSDT", 101, 103, [(96999.99, 0.0), (96999.98, 2.0)], [(97000.02, 0.5)])
    for bad in (depth_push(first="104"), depth_push(first="x")):
        with pytest.raises(ProtocolError):
            fmt.parse(bad.SerializeToString(), True)
    body = b'{"lastUpdateId":100,"bids":[["96999.99","1.5"]],"asks":[["97000.02","0.4"]],"timestamp":1736412092433}'
    assert fmt.parse_snapshot("BTCUSDT", body) == DepthSnapshot("BTCUSDT", 100, [(96999.99, 1.5)], [(97000.02, 0.4)])
    names = [c.name for c in fmt.channels(["BTCUSDT"], FeedSettings())]
    assert names == [CHANNEL, "spot@public.aggre.depth.v3.api.pb@100ms@BTCUSDT"]


@pytest.mark.parametrize("field", ["rate", "fundingRate"])
def test_contract_funding_push_accepts_both_rate_names(field: str) -> None:
    fmt = market_format("mexc_contract")
    frame = json.dumps({
        "channel": "push.funding.rate",
        "data": {"symbol": "BTC_USDT", field: 0.000034, "nextSettleTime": 1609833600000},
        "ts": 1609833500000,
    }).encode()
    assert fmt.parse(frame, False) == FundingUpdate("BTC_USDT", 0.000034, 1609833600000, 0.0, 1609833500000)
    assert fmt.wire_symbol("BTC", "USDT") == "BTC_USDT"
    assert fmt.parse(b'{"channel":"pong","data":1587453241453}', False) == Notice(NOTICE_PONG)
    assert fmt.parse(b'{"channel":"rs.sub.funding.rate","data":"success","ts":1}', False) is None
    assert json.loads(fmt.subscribe_frames(fmt.channels(["BTC_USDT"], FeedSettings()))[0]) == {
        "method": "sub.funding.rate", "param": {"symbol": "BTC_USDT"}
    }
    for bad in (b'{"channel":"rs.error","data":"bad symbol"}', b'{"channel":"push.funding.rate","data":{}}', b"{"):
        with pytest.raises(ProtocolError):
            fmt.parse(bad, False)


def _bad_ticker(**fields: str) -> bytes:
    w = push()
    for k, v in fields.items():
        setattr(w.publicAggreBookTicker, k, v)
    return w.SerializeToString()


@pytest.mark.parametrize(
    ("frame", "binary"),
    [
        (BLOCKED, False),
        (b'{"id":0,"code":1,"msg":"Invalid request"}', False),
        (b"not json", False),
        (b'{"method":"PING"}', False),
        (push().SerializeToString(), False),
        (b"\xff\xff\xff\xff", True),
        (b"", True),
        (_field(1, 2, b"\xff\xfe"), True),  # invalid UTF-8 in a string field
        (_bad_ticker(bidPrice="abc"), True),
        (_bad_ticker(askPrice=""), True),
        (_bad_ticker(askQuantity="nan"), True),
        (_bad_ticker(bidQuantity="-5"), True),
        (_bad_ticker(version="v1"), True),
        (push(symbol=None, channel="").SerializeToString(), True),
    ],
)
def test_malformed_frames_raise_protocol_error(frame: bytes, binary: bool) -> None:
    with pytest.raises(ProtocolError):
        market_format("mexc").parse(frame, binary)


@settings(deadline=None)  # a busy test machine must not turn slowness into failure
@given(payload=st.binary(max_size=300), binary=st.booleans())
def test_random_bytes_only_raise_protocol_error(payload: bytes, binary: bool) -> None:
    try:
        result = market_format("mexc").parse(payload, binary)
    except ProtocolError:
        return
    assert result is None or isinstance(result, MARKET_EVENTS)


@settings(deadline=None)  # a busy test machine must not turn slowness into failure
@given(prefix=st.binary(max_size=40), cut=st.integers(min_value=0, max_value=120))
def test_mangled_real_frames_only_raise_protocol_error(prefix: bytes, cut: int) -> None:
    real = push().SerializeToString()
    for payload in (prefix + real, real[:cut], real[:cut] + prefix):
        try:
            result = market_format("mexc").parse(payload, True)
        except ProtocolError:
            continue
        assert result is None or isinstance(result, MARKET_EVENTS)


def test_generated_module_is_what_gen_proto_makes(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHON": sys.executable}
    subprocess.run(["bash", str(REPO / "scripts" / "gen_proto.sh"), str(tmp_path)], check=True, env=env)
    for name in ("push_data_pb2.py", "push_data_pb2.pyi"):
        assert (tmp_path / name).read_bytes() == (PROTO_DIR / name).read_bytes(), f"{name} is stale: run gen_proto.sh"


def test_schema_field_numbers_are_the_wire_contract() -> None:
    w = push_data_pb2.PushDataV3ApiWrapper.DESCRIPTOR
    numbers = {f.name: (f.number, f.type) for f in w.fields}
    t = push_data_pb2.PushDataV3ApiWrapper.DESCRIPTOR.fields_by_name["channel"]
    assert numbers["channel"] == (1, t.TYPE_STRING)
    assert numbers["publicAggreDepths"][0] == 313 and numbers["publicAggreBookTicker"][0] == 315
    assert numbers["symbol"] == (3, t.TYPE_STRING) and numbers["symbolId"] == (4, t.TYPE_STRING)
    assert numbers["createTime"] == (5, t.TYPE_INT64) and numbers["sendTime"] == (6, t.TYPE_INT64)
    b = {f.name: (f.number, f.type) for f in PublicAggreBookTickerV3Api.DESCRIPTOR.fields}
    assert b == {
        "bidPrice": (1, t.TYPE_STRING), "bidQuantity": (2, t.TYPE_STRING), "askPrice": (3, t.TYPE_STRING),
        "askQuantity": (4, t.TYPE_STRING), "version": (5, t.TYPE_STRING), "lastOrderCreateTime": (6, t.TYPE_INT64),
    }


def test_new_order_request_exact_text() -> None:
    req = order_format("mexc").build_new_order(
        symbol="BTCUSDT", side="SELL", price="97000.02", qty="0.0015", client_order_id="dz1fs",
        api_key="mx0KEY", api_secret=DOC_SECRET, timestamp_ms=1644489390087, recv_window_ms=5000,
    )
    query = (
        "symbol=BTCUSDT&side=SELL&type=IMMEDIATE_OR_CANCEL&quantity=0.0015&price=97000.02"
        "&newClientOrderId=dz1fs&recvWindow=5000&timestamp=1644489390087"
    )
    assert req.method == "POST"
    assert req.path == f"/api/v3/order?{query}&signature={sign(DOC_SECRET, query)}"
    assert req.headers == [("X-MEXC-APIKEY", "mx0KEY")]
    assert req.body == b""


def test_query_order_request_exact_text() -> None:
    req = order_format("mexc").build_query_order(
        symbol="BTCUSDT", client_order_id="dz1fs", api_key="mx0KEY", api_secret=DOC_SECRET,
        timestamp_ms=1644489390087, recv_window_ms=5000,
    )
    query = "symbol=BTCUSDT&origClientOrderId=dz1fs&recvWindow=5000&timestamp=1644489390087"
    assert (req.method, req.path) == ("GET", f"/api/v3/order?{query}&signature={sign(DOC_SECRET, query)}")


def test_new_order_ack_needs_a_query() -> None:
    body = (
        b'{"symbol":"MXUSDT","orderId":"06a480e69e604477bfb48dddd5f0b750","orderListId":-1,"price":"0.1",'
        b'"origQty":"50","type":"LIMIT","side":"BUY","transactTime":1666676533741}'
    )
    r = order_format("mexc").parse_order_response(200, body, "MX")
    assert r.ok and r.needs_query and r.status == "NEW"
    assert r.order_id == "06a480e69e604477bfb48dddd5f0b750" and r.fills == []


QUERY = {
    "symbol": "BTCUSDT", "orderId": "C02__1", "orderListId": -1, "clientOrderId": "dz1fs", "price": "97000.02",
    "origQty": "0.0015", "executedQty": "0.001", "cummulativeQuoteQty": "97.00002", "status": "PARTIALLY_CANCELED",
    "timeInForce": "", "type": "IMMEDIATE_OR_CANCEL", "side": "SELL", "stopPrice": "", "time": 1, "updateTime": 1,
    "isWorking": False, "origQuoteOrderQty": "0",
}


def test_query_response_gives_totals_and_an_aggregate_fill() -> None:
    r = order_format("mexc").parse_order_response(200, json.dumps(QUERY).encode(), "BTC")
    assert r.ok and not r.needs_query and r.status == "PARTIALLY_CANCELED"
    assert (r.order_id, r.client_order_id) == ("C02__1", "dz1fs")
    assert r.filled_qty == pytest.approx(0.001) and r.avg_price == pytest.approx(97000.02)
    assert r.fee_usd == 0.0  # MEXC's query answer carries no commission
    assert r.fills == [(pytest.approx(97000.02), pytest.approx(0.001), 0.0, "order:C02__1")]


def test_query_response_with_numeric_order_id_and_no_fill() -> None:
    body = {**QUERY, "orderId": 1, "executedQty": "0", "cummulativeQuoteQty": "0", "status": "CANCELED"}
    r = order_format("mexc").parse_order_response(200, json.dumps(body).encode(), "BTC")
    assert r.ok and r.status == "CANCELED" and r.order_id == "1" and r.filled_qty == 0.0 and r.fills == []


def test_error_json_is_rejected_with_code_kept() -> None:
    body = b'{"code":700002,"msg":"Signature for this request is not valid."}'
    for status in (400, 200):  # some MEXC endpoints put the error in a 200 answer
        r = order_format("mexc").parse_order_response(status, body, "BTC")
        assert not r.ok and r.status == "REJECTED"
        assert (r.error_code, r.error_msg) == (700002, "Signature for this request is not valid.")


@pytest.mark.parametrize(
    ("status", "body"),
    [(500, b'{"code":500,"msg":"Internal error"}'), (503, b""), (200, b"{}"), (200, b"<html>"), (403, b"waf")],
)
def test_5xx_and_unreadable_answers_are_unknown(status: int, body: bytes) -> None:
    r = order_format("mexc").parse_order_response(status, body, "BTC")
    assert not r.ok and r.status == "UNKNOWN"
