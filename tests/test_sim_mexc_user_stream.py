"""MEXC user data on the simulated MEXC venue: signed listen-key endpoints, the ``/ws?listenKey=..`` stream and its
protobuf orders and deals pushes matching the REST trade list, invalid and expiring keys, over real sockets."""

from __future__ import annotations

import json
from decimal import Decimal

import picows

from services.sim.app import Simulator
from shared.venues.mexc.proto.push_data_pb2 import PushDataV3ApiWrapper
from shared.venues.mexc.user_stream import CHANNEL_DEALS, CHANNEL_ORDERS, LISTEN_KEY_PATH, MAX_CONNECTIONS_PER_KEY
from tests.conftest import eventually_async
from tests.sim_kit import CREDS, DEADLINE_S, Collector, connect, levels, place, signed, text

SUBSCRIBE = json.dumps({"method": "SUBSCRIPTION", "params": [CHANNEL_ORDERS, CHANNEL_DEALS]})


async def new_key(sim: Simulator) -> str:
    resp = await signed(sim, "mexc", "POST", LISTEN_KEY_PATH)
    assert resp.status == 200, resp.body
    key = json.loads(resp.body)["listenKey"]
    assert isinstance(key, str) and len(key) == 64 and key.isalnum()
    return str(key)


def pushes(c: Collector, cid: str) -> list[PushDataV3ApiWrapper]:
    out = []
    for binary, payload in c.frames:
        if binary:
            w = PushDataV3ApiWrapper.FromString(payload)
            body = w.privateOrders if w.WhichOneof("body") == "privateOrders" else w.privateDeals
            if getattr(body, "clientId", "") == cid or getattr(body, "clientOrderId", "") == cid:
                out.append(w)
    return out


async def test_listen_keys_are_signed_kept_alive_and_closed(still_sim: Simulator) -> None:
    sim = still_sim
    unsigned = await signed(sim, "mexc", "POST", LISTEN_KEY_PATH, secret="wrong")
    assert unsigned.status == 400 and json.loads(unsigned.body)["code"] == 700002
    key = await new_key(sim)
    listed = await signed(sim, "mexc", "GET", LISTEN_KEY_PATH)
    assert json.loads(listed.body) == {"listenKey": [key]}
    kept = await signed(sim, "mexc", "PUT", LISTEN_KEY_PATH, [("listenKey", key)])
    assert (kept.status, json.loads(kept.body)) == (200, {"listenKey": key})
    closed = await signed(sim, "mexc", "DELETE", LISTEN_KEY_PATH, [("listenKey", key)])
    assert (closed.status, json.loads(closed.body)) == (200, {"listenKey": key})
    for method in ("PUT", "DELETE"):  # a closed (or unknown) key is refused
        gone = await signed(sim, "mexc", method, LISTEN_KEY_PATH, [("listenKey", key)])
        assert gone.status == 400 and json.loads(gone.body)["code"] == 33333
    missing = await signed(sim, "mexc", "PUT", LISTEN_KEY_PATH)
    assert missing.status == 400
    assert json.loads((await signed(sim, "mexc", "GET", LISTEN_KEY_PATH)).body) == {"listenKey": []}


async def test_pushes_follow_the_order_and_match_the_trade_list(still_sim: Simulator) -> None:
    sim = still_sim
    key = await new_key(sim)
    t, c = await connect(f"{sim.user_ws_url('mexc')}?listenKey={key}", [SUBSCRIBE])
    try:
        acks = await eventually_async(lambda: c.texts(), DEADLINE_S, "the subscription's answer")
        assert acks[0] == {"id": 0, "code": 0, "msg": f"{CHANNEL_ORDERS},{CHANNEL_DEALS}"}
        _, _, asks = levels(sim, "mexc")
        (p0, q0), (p1, q1) = asks[:2]
        qty = q0 + q1 + Decimal("0.00100")  # the limit stops at the second level: the rest is cancelled
        await place(sim, "mexc", price=text(p1), qty=text(qty), client_order_id="m1")
        got = await eventually_async(lambda: len(pushes(c, "m1")) == 6 and pushes(c, "m1"), DEADLINE_S, "6 pushes")
        bodies = [w.WhichOneof("body") for w in got]
        assert bodies == ["privateOrders", "privateOrders", "privateDeals", "privateOrders", "privateDeals",
                          "privateOrders"]
        orders = [w.privateOrders for w in got if w.WhichOneof("body") == "privateOrders"]
        assert [o.status for o in orders] == [1, 3, 3, 5]  # new, partially filled twice, partially cancelled
        assert [Decimal(o.cumulativeQuantity) for o in orders] == [0, q0, q0 + q1, q0 + q1]
        assert Decimal(orders[-1].cumulativeAmount) == p0 * q0 + p1 * q1
        assert all(o.clientId == "m1" and o.id.startswith("C02__") and o.tradeType == 1 and o.orderType == 3
                   for o in orders)
        deals = [w.privateDeals for w in got if w.WhichOneof("body") == "privateDeals"]
        listed = await signed(sim, "mexc", "GET", "/api/v3/myTrades", [("symbol", "BTCUSDT")])
        trades = [r for r in json.loads(listed.body) if r["orderId"] == deals[0].orderId]
        assert [(d.tradeId, d.price, d.quantity, d.feeAmount, d.feeCurrency) for d in deals] == [
            (str(r["id"]), r["price"], r["qty"], r["commission"], r["commissionAsset"]) for r in trades]
        assert all(w.channel in (CHANNEL_ORDERS, CHANNEL_DEALS) and w.symbol == "BTCUSDT" and w.sendTime > 0
                   for w in got)
        t.send(picows.WSMsgType.TEXT, b'{"method":"PING"}')
        await eventually_async(lambda: {"id": 0, "code": 0, "msg": "PONG"} in c.texts(), DEADLINE_S, "PONG")
    finally:
        t.disconnect()


async def test_invalid_and_expiring_keys(still_sim: Simulator) -> None:
    sim = still_sim
    ud = sim.venue("mexc").user_data
    base = sim.user_ws_url("mexc")
    for bad in ("0" * 64, "nokey"):
        try:
            await connect(f"{base}?listenKey={bad}")
            raise AssertionError("an unknown listen key was let in")
        except picows.WSError as exc:
            assert "400" in str(exc)
    key = await new_key(sim)
    links = [await connect(f"{base}?listenKey={key}", [SUBSCRIBE]) for _ in range(MAX_CONNECTIONS_PER_KEY)]
    try:
        try:
            await connect(f"{base}?listenKey={key}")
            raise AssertionError("a sixth connection on one key was let in")
        except picows.WSError:
            pass
        ud.validity_s = 0.3  # not kept alive from now on: the key lapses and its links close
        assert (await signed(sim, "mexc", "PUT", LISTEN_KEY_PATH, [("listenKey", key)])).status == 200
        await eventually_async(lambda: all(t.is_disconnected for t, _ in links), DEADLINE_S, "links closed at expiry")
        assert ud.expired == 1 and ud.valid_keys(CREDS["mexc"][0]) == []
        gone = await signed(sim, "mexc", "PUT", LISTEN_KEY_PATH, [("listenKey", key)])
        assert gone.status == 400
    finally:
        for t, _ in links:
            t.disconnect()
