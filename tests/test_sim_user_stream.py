"""Binance WS API user data on the simulated Binance venue: signed subscriptions and executionReport events
that match the REST fills, over real sockets."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from typing import Any

import picows
import pytest

from services.sim.app import Simulator
from tests.conftest import eventually_async
from tests.sim_kit import (
    DEADLINE_S,
    Collector,
    error_of,
    levels,
    now_ms,
    place,
    query_order,
    signed,
    text,
    ws_api_subscribe,
)


class PongCollector(Collector):
    def __init__(self) -> None:
        super().__init__()
        self.pongs: list[bytes] = []

    def on_ws_frame(self, transport: picows.WSTransport, frame: picows.WSFrame) -> None:
        if frame.msg_type == picows.WSMsgType.PONG:
            self.pongs.append(frame.get_payload_as_bytes())
        super().on_ws_frame(transport, frame)


async def open_api(sim: Simulator) -> tuple[picows.WSTransport, PongCollector]:
    transport, listener = await picows.ws_connect(PongCollector, sim.ws_api_url("binance"))
    return transport, listener


async def answer(c: Collector, request_id: object) -> dict[str, Any]:
    found = await eventually_async(lambda: [m for m in c.texts() if m.get("id") == request_id], DEADLINE_S,
                                   f"the answer to {request_id}")
    return dict(found[0])


def events(c: Collector, client_id: str, sub_id: int | None = None) -> list[dict[str, Any]]:
    return [m["event"] for m in c.texts()
            if "event" in m and m["event"]["c"] == client_id and (sub_id is None or m["subscriptionId"] == sub_id)]


async def subscribed(sim: Simulator) -> tuple[picows.WSTransport, PongCollector]:
    t, c = await open_api(sim)
    c.send(ws_api_subscribe("sub"))
    assert await answer(c, "sub") == {"id": "sub", "status": 200, "result": {"subscriptionId": 0}}
    return t, c


async def test_subscriptions_are_signed(still_sim: Simulator) -> None:
    t, c = await open_api(still_sim)
    try:
        c.send(ws_api_subscribe(1, secret="wrong"))
        assert await answer(c, 1) == {"id": 1, "status": 400, "error": {
            "code": -1022, "msg": "Signature for this request is not valid."}}
        c.send(ws_api_subscribe(2, key="stranger"))
        assert (await answer(c, 2))["status"] == 401 and (await answer(c, 2))["error"]["code"] == -2015
        c.send(ws_api_subscribe(3, timestamp=now_ms() - 60_000))
        assert (await answer(c, 3))["error"]["code"] == -1021
        c.send(json.dumps({"id": 4, "method": "userDataStream.subscribe.signature", "params": {"apiKey": "bkey"}}))
        assert (await answer(c, 4))["error"]["code"] == -1102
        c.send(json.dumps({"id": 5, "method": "order.place", "params": {}}))
        assert (await answer(c, 5))["status"] == 400
        c.send(ws_api_subscribe(6))
        assert (await answer(c, 6))["result"] == {"subscriptionId": 0}  # refusals used no id
    finally:
        t.disconnect()
    with pytest.raises(KeyError):
        still_sim.ws_api_url("mexc")


async def test_events_follow_the_order_and_match_the_rest_fills(still_sim: Simulator) -> None:
    sim = still_sim
    t, c = await subscribed(sim)
    try:
        _, _, asks = levels(sim, "binance")
        (p0, q0), (p1, q1) = asks[:2]
        qty = q0 + q1 + Decimal("0.00100")  # the limit stops at the second level: the rest expires
        rest = json.loads((await place(sim, "binance", price=text(p1), qty=text(qty), client_order_id="w1")).body)
        got = await eventually_async(lambda: len(events(c, "w1")) == 4 and events(c, "w1"), DEADLINE_S, "4 events")
        assert [(e["x"], e["X"]) for e in got] == [("NEW", "NEW"), ("TRADE", "PARTIALLY_FILLED"),
                                                   ("TRADE", "PARTIALLY_FILLED"), ("EXPIRED", "EXPIRED")]
        trades = [e for e in got if e["x"] == "TRADE"]
        assert [(e["L"], e["l"], e["n"], e["N"], e["t"]) for e in trades] == [
            (f["price"], f["qty"], f["commission"], f["commissionAsset"], f["tradeId"]) for f in rest["fills"]
        ]
        assert [Decimal(e["z"]) for e in trades] == [q0, q0 + q1]
        assert Decimal(trades[-1]["Z"]) == p0 * q0 + p1 * q1 == Decimal(rest["cummulativeQuoteQty"])
        assert all(e["e"] == "executionReport" and e["s"] == "BTCUSDT" and e["S"] == "BUY" and e["i"] == rest["orderId"]
                   and e["o"] == "LIMIT" and e["f"] == "IOC" and Decimal(e["q"]) == qty for e in got)
        assert got[0]["N"] is None and got[0]["t"] == -1 and got[-1]["z"] == rest["executedQty"]

        # a MARKET order filled in full: NEW then TRADE FILLED, nothing more
        done = json.loads((await place(sim, "binance", kind="MARKET", side="SELL", qty="0.00100",
                                       client_order_id="w2")).body)
        got = await eventually_async(lambda: len(events(c, "w2")) == 2 and events(c, "w2"), DEADLINE_S, "w2")
        assert [(e["x"], e["X"], e["o"]) for e in got] == [("NEW", "NEW", "MARKET"), ("TRADE", "FILLED", "MARKET")]
        assert got[1]["n"] == done["fills"][0]["commission"] and got[1]["N"] == "USDT"
    finally:
        t.disconnect()


async def test_events_come_from_the_engine_not_the_rest_answer(still_sim: Simulator) -> None:
    sim = still_sim
    t, c = await subscribed(sim)
    try:
        ask = text(levels(sim, "binance")[2][0][0])
        # a 5xx answer after acceptance: the stream still reports the fill
        sim.inject_order_fault("binance", "error_after_accept")
        assert error_of(await place(sim, "binance", price=ask, qty="0.00100", client_order_id="u1"))[0] == 503
        got = await eventually_async(lambda: len(events(c, "u1")) == 2 and events(c, "u1"), DEADLINE_S, "u1")
        assert [e["X"] for e in got] == ["NEW", "FILLED"] and got[1]["l"] == "0.00100000"

        # slow: NEW at once, the trade when matched; a cancelled one ends CANCELED
        sim.inject_order_fault("binance", "slow", count=2, seconds=0.5)
        slow = asyncio.create_task(place(sim, "binance", price=ask, qty="0.00100", client_order_id="u2"))
        await eventually_async(lambda: events(c, "u2"), DEADLINE_S, "NEW of u2")
        assert not slow.done() and [e["x"] for e in events(c, "u2")] == ["NEW"] and events(c, "u2")[0]["w"]
        await slow
        assert [e["X"] for e in events(c, "u2")] == ["NEW", "FILLED"]

        cancelled = asyncio.create_task(place(sim, "binance", price=ask, qty="0.00100", client_order_id="u3"))
        await eventually_async(lambda: events(c, "u3"), DEADLINE_S, "NEW of u3")
        resp = await signed(sim, "binance", "DELETE", "/api/v3/order", [("symbol", "BTCUSDT"),
                                                                         ("origClientOrderId", "u3")])
        assert resp.status == 200
        got = await eventually_async(lambda: len(events(c, "u3")) == 2 and events(c, "u3"), DEADLINE_S, "u3")
        assert [(e["x"], e["X"], e["C"], e["z"]) for e in got[1:]] == [("CANCELED", "CANCELED", "u3", "0.00000000")]
        assert json.loads((await cancelled).body)["status"] == "CANCELED"

        # refused orders never reach the engine: no event
        sim.inject_order_fault("binance", "reject")
        assert error_of(await place(sim, "binance", price=ask, qty="0.00100", client_order_id="u4"))[1] == -2010
        await place(sim, "binance", price=ask, qty="0.00100", client_order_id="u5")
        await eventually_async(lambda: len(events(c, "u5")) == 2, DEADLINE_S, "u5")
        assert events(c, "u4") == [] and (await query_order(sim, "binance", "u4")).status == 400
    finally:
        t.disconnect()


async def test_several_subscriptions_unsubscribe_and_pongs(still_sim: Simulator) -> None:
    sim = still_sim
    t, c = await subscribed(sim)
    try:
        c.send(ws_api_subscribe("again"))
        assert (await answer(c, "again"))["result"] == {"subscriptionId": 1}
        c.send(json.dumps({"id": "list", "method": "session.subscriptions"}))
        assert (await answer(c, "list"))["result"] == [{"subscriptionId": 0}, {"subscriptionId": 1}]
        ask = text(levels(sim, "binance")[2][0][0])
        await place(sim, "binance", price=ask, qty="0.00100", client_order_id="d1")
        await eventually_async(lambda: len(events(c, "d1")) == 4, DEADLINE_S, "both subscriptions")
        assert events(c, "d1", 0) == events(c, "d1", 1)

        c.send(json.dumps({"id": "off", "method": "userDataStream.unsubscribe", "params": {"subscriptionId": 0}}))
        assert (await answer(c, "off"))["status"] == 200
        await place(sim, "binance", price=ask, qty="0.00100", client_order_id="d2")
        await eventually_async(lambda: len(events(c, "d2", 1)) == 2, DEADLINE_S, "the remaining subscription")
        assert events(c, "d2", 0) == []

        t.send_ping(b"hello")
        await eventually_async(lambda: c.pongs, DEADLINE_S, "a pong")
        assert c.pongs == [b"hello"]
        assert sim.venue("binance").stats()["user_streams"] == 1
    finally:
        t.disconnect()
    await eventually_async(lambda: sim.venue("binance").stats()["user_streams"] == 0, DEADLINE_S, "forgotten")
