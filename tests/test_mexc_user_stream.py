"""MEXC spot user data: the listen key's signed requests, the private protobuf pushes (orders, deals), and the
executor's listen-key stream against the simulator (keep-alive, renewal, reconnect, malformed frames)."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from decimal import Decimal
from urllib.parse import parse_qsl

import pytest

from services.executor.listen_key_stream import ListenKeyStream
from services.executor.venue_client import VenueClient
from services.sim.app import Simulator
from shared.errors import ProtocolError, VenueError
from shared.venues.common import OrderReport
from shared.venues.mexc.proto.push_data_pb2 import PushDataV3ApiWrapper
from shared.venues.mexc.user_stream import (
    CHANNEL_DEALS,
    CHANNEL_ORDERS,
    LISTEN_KEY_PATH,
    build_listen_key,
    parse_frame,
    parse_listen_key,
    user_stream_url,
)
from shared.venues.user_data import CLOSE, CREATE, KEEPALIVE, Pong, Subscribed, SubscribeRefused
from tests import user_stream_kit
from tests.conftest import eventually_async
from tests.sim_kit import CREDS, DEADLINE_S
from tests.user_stream_kit import buy, client_on

D = Decimal
KEY = "pqia91ma19a5s61cv6a81va65sdf19v8a65a1a5s61cv6a81va65sdf19v8a65a1"  # the docs' example key


def orders_sample() -> PushDataV3ApiWrapper:
    """MEXC's documented privateOrders sample (its client id as the order's own)."""
    w = PushDataV3ApiWrapper(channel=CHANNEL_ORDERS, symbol="MXUSDT", sendTime=1736417034281)
    o = w.privateOrders
    o.id, o.clientId = "C02__505979017439002624115", "dz1b0"
    o.price, o.quantity, o.amount, o.avgPrice = "3.5121", "1", "0", "3.6962"
    o.orderType, o.tradeType = 5, 2
    o.remainAmount, o.remainQuantity, o.lastDealQuantity = "0", "0", "1"
    o.cumulativeQuantity, o.cumulativeAmount, o.status, o.createTime = "1", "3.6962", 2, 1736417034259
    return w


def deals_sample() -> PushDataV3ApiWrapper:
    """MEXC's documented privateDeals sample."""
    w = PushDataV3ApiWrapper(channel=CHANNEL_DEALS, symbol="MXUSDT", sendTime=1736417034332)
    d = w.privateDeals
    d.price, d.quantity, d.amount, d.tradeType, d.isMaker = "3.6962", "1", "3.6962", 2, False
    d.tradeId, d.orderId, d.clientOrderId = "505979017439002624X1", "C02__505979017439002624115", "dz1b0"
    d.feeAmount, d.feeCurrency, d.time = "0.0003998377369698171", "MX", 1736417034280
    return w


# ----- the wire format
def test_listen_key_requests_are_signed_in_the_query() -> None:
    for action, method in ((CREATE, "POST"), (KEEPALIVE, "PUT"), (CLOSE, "DELETE")):
        req = build_listen_key(action, "" if action == CREATE else KEY, api_key="k", api_secret="s",
                               timestamp_ms=1700000000000, recv_window_ms=5000)
        path, _, query = req.path.partition("?")
        assert (req.method, path, req.headers, req.body) == (method, LISTEN_KEY_PATH, [("X-MEXC-APIKEY", "k")], b"")
        unsigned, _, signature = query.rpartition("&signature=")
        assert signature == hmac.new(b"s", unsigned.encode(), hashlib.sha256).hexdigest()
        params = dict(parse_qsl(unsigned))
        assert params == ({} if action == CREATE else {"listenKey": KEY}) | {"recvWindow": "5000",
                                                                               "timestamp": "1700000000000"}
    with pytest.raises(ValueError):
        build_listen_key(KEEPALIVE, "a&b=c", api_key="k", api_secret="s", timestamp_ms=1, recv_window_ms=1)
    assert user_stream_url(KEY) == f"wss://wbs-api.mexc.com/ws?listenKey={KEY}"


def test_listen_key_answers() -> None:
    assert parse_listen_key(200, json.dumps({"listenKey": KEY}).encode()) == KEY
    with pytest.raises(VenueError) as refused:
        parse_listen_key(400, b'{"code":33333,"msg":"listenKey does not exist"}')
    assert refused.value.code == 33333
    for bad in (b"{}", b"[]", b'{"listenKey":"a b"}'):
        with pytest.raises(ProtocolError) as err:
            parse_listen_key(200, bad)
        assert "a b" not in str(err.value)  # the key is a secret: never quoted


def test_documented_pushes_parse_exactly() -> None:
    order = parse_frame(orders_sample().SerializeToString(), binary=True)
    assert order == OrderReport("MXUSDT", "dz1b0", "C02__505979017439002624115", "SELL", "FILLED", D(1),
                                D("3.6962"), D(1), D(0), "", D(0), "", 1736417034281)
    deal = parse_frame(deals_sample().SerializeToString(), binary=True)
    assert deal == OrderReport("MXUSDT", "dz1b0", "C02__505979017439002624115", "SELL", "", D(0), D(0), D(1),
                               D("3.6962"), "505979017439002624X1", D("0.0003998377369698171"), "MX", 1736417034280)
    partly_cancelled = orders_sample()
    partly_cancelled.privateOrders.status = 5
    assert parse_frame(partly_cancelled.SerializeToString(), True).status == "CANCELED"  # type: ignore[union-attr]
    # Unknown fields (a newer MEXC body field 99, a wrapper field 200) are skipped, not rejected.
    unknown = b"\xc2\x0c\x03abc"  # field 200, length-delimited
    extended = orders_sample().SerializeToString() + unknown
    assert parse_frame(extended, True) == order
    account = PushDataV3ApiWrapper(channel="spot@private.account.v3.api.pb")
    account.publicAggreDepths.eventType = "x"  # any other body: not ours
    assert parse_frame(account.SerializeToString(), True) is None


def test_control_frames_and_malformed_pushes() -> None:
    assert parse_frame(b'{"id":0,"code":0,"msg":"PONG"}', False) == Pong()
    ack = parse_frame(b'{"id":0,"code":0,"msg":"spot@private.deals.v3.api.pb,spot@private.orders.v3.api.pb"}', False)
    assert ack == Subscribed(frozenset({CHANNEL_DEALS, CHANNEL_ORDERS}))
    refused = parse_frame(b'{"id":0,"code":0,"msg":"Not Subscribed successfully! [x].  Reason: Blocked! "}', False)
    assert isinstance(refused, SubscribeRefused)
    bad_status = orders_sample()
    bad_status.privateOrders.status = 9
    no_trade_id = deals_sample()
    no_trade_id.privateDeals.tradeId = ""
    negative = deals_sample()
    negative.privateDeals.quantity = "-1"
    for frame, binary in ((b"\x0a\xff\xff\xff", True), (bad_status.SerializeToString(), True),
                          (no_trade_id.SerializeToString(), True), (negative.SerializeToString(), True),
                          (b"not json", False)):
        with pytest.raises(ProtocolError):
            parse_frame(frame, binary)


# ----- live, against the simulator
@pytest.fixture(autouse=True)
def credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    key, secret = CREDS["mexc"]
    monkeypatch.setenv("DRAIZER_MEXC_API_KEY", key)
    monkeypatch.setenv("DRAIZER_MEXC_API_SECRET", secret)


@pytest.fixture
async def mexc(still_sim: Simulator) -> AsyncIterator[VenueClient]:
    async with client_on(still_sim, "mexc", user_ws_url=still_sim.user_ws_url("mexc")) as c:
        yield c


class Reports(user_stream_kit.Reports[OrderReport]):
    def filled(self, cid: str) -> bool:
        return any(r.status == "FILLED" for r in self.of(cid)) and self.traded(cid) > 0

    def traded(self, cid: str) -> Decimal:
        return sum((r.last_qty for r in self.of(cid) if r.trade_id), D(0))


def user_data(sim: Simulator):  # type: ignore[no-untyped-def]
    return sim.venue("mexc").user_data


async def test_fills_arrive_by_the_stream(still_sim: Simulator, mexc: VenueClient) -> None:
    seen = Reports()
    stream = ListenKeyStream(mexc, mexc.venue.user_ws_url, seen, seen.gap)
    await stream.start()
    try:
        await eventually_async(lambda: stream.connected, timeout=DEADLINE_S, what="the subscription")
        await buy(still_sim, mexc, "mu-1")
        await eventually_async(lambda: seen.filled("mu-1"), timeout=DEADLINE_S, what="the fill by the stream")
        reports = seen.of("mu-1")
        assert reports[0].status == "NEW" and reports[-1].trade_id  # the order's state, then its deal
        assert seen.traded("mu-1") == D("0.002") == max(r.cum_qty for r in reports)
        assert all(r.commission_asset == "USDT" and r.commission > 0 for r in reports if r.trade_id)
        still_sim.inject_order_fault("mexc", "partial")
        await buy(still_sim, mexc, "mu-2")
        await eventually_async(lambda: any(r.status == "CANCELED" for r in seen.of("mu-2")), timeout=DEADLINE_S,
                               what="the partly cancelled remainder")
        assert seen.traded("mu-2") == D("0.001")
        assert stream.keys_created == 1 and stream.malformed == 0 and seen.gaps == 0
    finally:
        await stream.close()
    assert not stream.connected
    assert user_data(still_sim).valid_keys(CREDS["mexc"][0]) == []  # closing DELETEs the key


async def test_keepalive_and_renewal_of_the_listen_key(still_sim: Simulator, mexc: VenueClient) -> None:
    ud = user_data(still_sim)
    ud.validity_s = 1.0  # the venue's 60 minutes, shrunk: kept alive every 0.2 s it never lapses
    seen = Reports()
    stream = ListenKeyStream(mexc, mexc.venue.user_ws_url, seen, seen.gap, keepalive_s=0.2)
    await stream.start()
    try:
        await eventually_async(lambda: stream.connected, timeout=DEADLINE_S, what="the subscription")
        await eventually_async(lambda: ud.keepalives >= 8, timeout=DEADLINE_S, what="keep-alives past the validity")
        assert stream.keys_created == 1 and stream.reconnects == 0 and ud.expired == 0
        ud.expire(CREDS["mexc"][0])  # the venue drops the key (as when keep-alives stopped): its link closes
        await eventually_async(lambda: stream.renewals >= 1 and stream.keys_created == 2 and stream.connected,
                               timeout=DEADLINE_S, what="a new key and a new link")
        assert seen.gaps == 1 and len(ud.valid_keys(CREDS["mexc"][0])) == 1
        await buy(still_sim, mexc, "mu-3")
        await eventually_async(lambda: seen.filled("mu-3"), timeout=DEADLINE_S, what="fills on the new key")
    finally:
        await stream.close()


async def test_reconnects_after_a_drop_and_survives_a_malformed_push(still_sim: Simulator, mexc: VenueClient,
                                                                     caplog: pytest.LogCaptureFixture) -> None:
    seen = Reports()
    stream = ListenKeyStream(mexc, mexc.venue.user_ws_url, seen, seen.gap)
    await stream.start()
    try:
        await eventually_async(lambda: stream.connected, timeout=DEADLINE_S, what="the subscription")
        for _ in range(3):
            still_sim.inject("mexc", "malformed")
        await eventually_async(lambda: stream.malformed == 3, timeout=DEADLINE_S, what="the malformed pushes")
        assert sum("bad protobuf frame" in r.getMessage() for r in caplog.records) == 1  # logged once, counted
        assert stream.connected and stream.reconnects == 0
        still_sim.inject("mexc", "drop")
        await eventually_async(lambda: stream.reconnects >= 1 and stream.connected and seen.gaps == 1,
                               timeout=DEADLINE_S, what="the resubscription")
        assert stream.keys_created == 1  # the key was still good: checked, kept
        await buy(still_sim, mexc, "mu-4")
        await eventually_async(lambda: seen.filled("mu-4"), timeout=DEADLINE_S, what="a fill after the reconnect")
        key = user_data(still_sim).valid_keys(CREDS["mexc"][0])[0]
        assert all(key not in r.getMessage() for r in caplog.records)  # the listen key is never logged
    finally:
        await stream.close()
