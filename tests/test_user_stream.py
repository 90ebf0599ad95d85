"""Binance user data over the WS API: the signed subscribe request, event parsing, and the live stream."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest

from services.executor.user_stream import UserStream
from services.executor.venue_client import VenueClient
from services.sim.app import Simulator
from shared.errors import ProtocolError
from shared.venues.binance.user_stream import (
    ExecutionReport,
    StreamTerminated,
    SubscribeAnswer,
    parse_message,
    subscribe_request,
)
from tests.conftest import eventually_async
from tests.sim_kit import CREDS, DEADLINE_S
from tests.user_stream_kit import Reports, buy, client_on

D = Decimal

# Binance's documented executionReport (user-data-stream.md), wrapped as the WS API delivers it.
DOC_EVENT = {
    "e": "executionReport", "E": 1499405658658, "s": "ETHBTC", "c": "mUvoqJxFIILMdfAW5iGSOW", "S": "BUY",
    "o": "LIMIT", "f": "GTC", "q": "1.00000000", "p": "0.10264410", "P": "0.00000000", "F": "0.00000000", "g": -1,
    "C": "", "x": "NEW", "X": "NEW", "r": "NONE", "i": 4293153, "l": "0.00000000", "z": "0.00000000",
    "L": "0.00000000", "n": "0", "N": None, "T": 1499405658657, "t": -1, "I": 8641984, "w": True, "m": False,
    "M": False, "O": 1499405658657, "Z": "0.00000000", "Y": "0.00000000", "Q": "0.00000000", "W": 1499405658657,
    "V": "NONE",
}
TRADE = {**DOC_EVENT, "x": "TRADE", "X": "PARTIALLY_FILLED", "l": "0.40000000", "z": "0.40000000",
         "L": "0.10264000", "n": "0.00040000", "N": "ETH", "t": 556, "Z": "0.04105600", "Y": "0.04105600"}


def wrap(event: dict[str, object], sub: int = 0) -> bytes:
    return json.dumps({"subscriptionId": sub, "event": event}).encode()


def test_subscribe_request_is_signed_over_sorted_params() -> None:
    key, secret, ts = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A", "NhqPtmdSJYdK", 1649729878532
    request = json.loads(subscribe_request(key, secret, ts, "d3df8a21-98ea-4fe0-8f4e-0fcea5d418b7"))
    expected = hmac.new(secret.encode(), f"apiKey={key}&timestamp={ts}".encode(), hashlib.sha256).hexdigest()
    assert request == {
        "id": "d3df8a21-98ea-4fe0-8f4e-0fcea5d418b7",
        "method": "userDataStream.subscribe.signature",
        "params": {"apiKey": key, "timestamp": ts, "signature": expected},
    }


def test_execution_reports_parse_exactly() -> None:
    new = parse_message(wrap(DOC_EVENT))
    assert new == ExecutionReport("ETHBTC", "mUvoqJxFIILMdfAW5iGSOW", "4293153", "BUY", "NEW", "NEW", D(0), D(0),
                                  D(0), D(0), D(0), "", "", 1499405658658)
    trade = parse_message(wrap(TRADE))
    assert isinstance(trade, ExecutionReport)
    assert (trade.exec_type, trade.status, trade.trade_id, trade.commission_asset) == (
        "TRADE", "PARTIALLY_FILLED", "556", "ETH")
    assert (trade.last_qty, trade.last_price, trade.cum_qty, trade.cum_quote, trade.commission) == (
        D("0.4"), D("0.10264"), D("0.4"), D("0.041056"), D("0.0004"))
    expired = parse_message(wrap({**TRADE, "x": "EXPIRED", "X": "EXPIRED_IN_MATCH", "t": -1}))
    assert isinstance(expired, ExecutionReport) and expired.status == "EXPIRED" and expired.trade_id == ""


def test_answers_other_events_and_malformed_frames() -> None:
    ok = b'{"id":"dz-sub-1","status":200,"result":{"subscriptionId":3},"rateLimits":[]}'
    assert parse_message(ok) == SubscribeAnswer("dz-sub-1", 3, 200, 0, "")
    refused = b'{"id":7,"status":400,"error":{"code":-1022,"msg":"Signature for this request is not valid."}}'
    assert parse_message(refused) == SubscribeAnswer("7", None, 400, -1022, "Signature for this request is not valid.")
    balance = {"e": "outboundAccountPosition", "E": 1564034571105, "u": 1564034571073,
               "B": [{"a": "ETH", "f": "10000.000000", "l": "0.000000"}]}
    assert parse_message(wrap(balance)) is None
    assert parse_message(b'{"id":"p","status":200,"result":{}}') is None  # a ping's answer
    assert parse_message(wrap({"e": "eventStreamTerminated", "E": 1}, sub=4)) == StreamTerminated(4)
    for bad in (b"not json", b"{}", b'{"subscriptionId":0,"event":{"E":1}}',
                b'{"id":"x","status":200,"result":{"subscriptionId":"zero"}}',
                wrap({**DOC_EVENT, "X": "WHATEVER"}), wrap({**DOC_EVENT, "c": ""}), wrap({**TRADE, "l": "-1"}),
                wrap({**TRADE, "z": "NaN"}), wrap({**TRADE, "i": None})):
        with pytest.raises(ProtocolError):
            parse_message(bad)


# ----- live, against the simulator's WS API
@pytest.fixture(autouse=True)
def credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    key, secret = CREDS["binance"]
    monkeypatch.setenv("DRAIZER_BINANCE_API_KEY", key)
    monkeypatch.setenv("DRAIZER_BINANCE_API_SECRET", secret)


@pytest.fixture
async def binance(still_sim: Simulator) -> AsyncIterator[VenueClient]:
    async with client_on(still_sim, "binance", ws_api_url=still_sim.ws_api_url("binance")) as c:
        yield c


async def test_reports_follow_an_order(still_sim: Simulator, binance: VenueClient) -> None:
    seen: Reports[ExecutionReport] = Reports()
    stream = UserStream(binance, binance.venue.ws_api_url, seen, seen.gap)
    await stream.start()
    try:
        await eventually_async(lambda: stream.connected, timeout=DEADLINE_S, what="the subscription")
        await buy(still_sim, binance, "us-1")
        await eventually_async(lambda: seen.of("us-1") and seen.of("us-1")[-1].status == "FILLED",
                               timeout=DEADLINE_S, what="the fill report")
        reports = seen.of("us-1")
        assert reports[0].exec_type == "NEW" and all(r.exec_type == "TRADE" for r in reports[1:])
        assert sum(r.last_qty for r in reports) == D("0.002") == reports[-1].cum_qty
        assert all(r.trade_id and r.commission_asset == "BTC" for r in reports[1:])
        still_sim.inject_order_fault("binance", "partial")
        await buy(still_sim, binance, "us-2")
        await eventually_async(lambda: seen.of("us-2") and seen.of("us-2")[-1].status == "EXPIRED",
                               timeout=DEADLINE_S, what="the expiry report")
        assert seen.of("us-2")[-1].cum_qty == D("0.001")
        assert stream.reports == len(seen.reports) and stream.malformed == 0 and seen.gaps == 0
    finally:
        await stream.close()
    assert not stream.connected


async def test_reconnects_after_a_drop_and_reports_the_gap(still_sim: Simulator, binance: VenueClient) -> None:
    seen: Reports[ExecutionReport] = Reports()
    stream = UserStream(binance, binance.venue.ws_api_url, seen, seen.gap)
    await stream.start()
    try:
        await eventually_async(lambda: stream.connected, timeout=DEADLINE_S, what="the subscription")
        still_sim.inject("binance", "drop")
        await eventually_async(lambda: stream.reconnects >= 1 and stream.connected and seen.gaps == 1,
                               timeout=DEADLINE_S, what="the resubscription")
        await buy(still_sim, binance, "us-3")
        await eventually_async(lambda: seen.of("us-3") and seen.of("us-3")[-1].status == "FILLED",
                               timeout=DEADLINE_S, what="a report after the reconnect")
    finally:
        await stream.close()


async def test_a_refused_subscription_is_retried_not_connected(still_sim: Simulator, binance: VenueClient,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DRAIZER_BINANCE_API_SECRET", "wrong")  # the venue will refuse the signature
    wrong = VenueClient(binance.venue, binance.registry, 5.0)  # not started: signing needs no REST
    stream = UserStream(wrong, binance.venue.ws_api_url, Reports[ExecutionReport]())
    await stream.start()
    try:
        await eventually_async(lambda: stream.refused >= 2, timeout=DEADLINE_S, what="refused subscriptions")
        assert not stream.connected and stream.subscription_id is None
    finally:
        await stream.close()
        await wrong.close()
