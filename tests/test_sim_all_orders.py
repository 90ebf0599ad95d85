"""``GET /api/v3/allOrders`` on the simulated venues (what a restart lists to find orders a host crash took from
the journal), over real sockets, and the venue layer's parser of it: every detail needed to rebuild an order."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from services.sim.app import Simulator
from shared.venues import order_format
from tests.sim_kit import error_of, now_ms, place, signed, text, top

BTC = [("symbol", "BTCUSDT")]


async def _three_orders(sim: Simulator, venue: str) -> list[str]:
    """A filled buy, an expired buy (far below the book) and a filled sell; their client ids, oldest first."""
    _bid, _bq, ask, _aq = top(sim, venue)
    ids = [f"t{venue}{i}" for i in range(3)]
    high, low = (text((Decimal(ask) * k).quantize(Decimal("0.01"))) for k in (Decimal("1.01"), Decimal("0.9")))
    for cid, side, price in zip(ids, ("BUY", "BUY", "SELL"), (high, low, low), strict=True):
        resp = await place(sim, venue, qty="0.001", price=price, side=side, client_order_id=cid)
        assert resp.status == 200, resp.body
    return ids


@pytest.mark.parametrize("venue", ["binance", "mexc"])
async def test_all_orders_lists_every_order_oldest_first_in_the_query_shape(still_sim: Simulator, venue: str) -> None:
    sim = still_sim
    start = now_ms()
    ids = await _three_orders(sim, venue)
    resp = await signed(sim, venue, "GET", "/api/v3/allOrders", BTC)
    assert resp.status == 200, resp.body
    body = json.loads(resp.body)
    assert [o["clientOrderId"] for o in body] == ids
    assert {"symbol", "orderId", "side", "type", "price", "origQty", "executedQty", "cummulativeQuoteQty",
            "status", "time", "updateTime"} <= set(body[0])
    orders, unreadable = order_format(venue).parse_order_details(resp.status, resp.body)
    assert unreadable == []
    assert [(o.client_order_id, o.side, o.symbol) for o in orders] == [
        (ids[0], "BUY", "BTCUSDT"), (ids[1], "BUY", "BTCUSDT"), (ids[2], "SELL", "BTCUSDT")]
    assert [o.status for o in orders] == ["FILLED", "CANCELED" if venue == "mexc" else "EXPIRED", "FILLED"]
    assert orders[0].executed_qty == orders[0].orig_qty == Decimal("0.001") and orders[0].cum_quote > 0
    assert orders[1].executed_qty == 0 and orders[1].price > 0
    assert all(start <= o.time_ms <= now_ms() for o in orders)


@pytest.mark.parametrize("venue", ["binance", "mexc"])
async def test_all_orders_window_and_limit(still_sim: Simulator, venue: str) -> None:
    sim = still_sim
    ids = await _three_orders(sim, venue)
    after = now_ms() + 1
    late = await signed(sim, venue, "GET", "/api/v3/allOrders", [*BTC, ("startTime", str(after))])
    assert json.loads(late.body) == []
    first = await signed(sim, venue, "GET", "/api/v3/allOrders",
                         [*BTC, ("startTime", str(after - 60_000)), ("endTime", str(after)), ("limit", "1")])
    assert [o["clientOrderId"] for o in json.loads(first.body)] == ids[:1]  # from a start: the oldest first
    recent = await signed(sim, venue, "GET", "/api/v3/allOrders", [*BTC, ("limit", "2")])
    assert [o["clientOrderId"] for o in json.loads(recent.body)] == ids[1:]  # no start: the most recent
    other = await signed(sim, venue, "GET", "/api/v3/allOrders", [("symbol", "ETHUSDT")])
    assert json.loads(other.body) == []


async def test_binance_all_orders_span_limit_and_weight(still_sim: Simulator) -> None:
    sim = still_sim
    now = now_ms()
    too_long = await signed(sim, "binance", "GET", "/api/v3/allOrders",
                            [*BTC, ("startTime", str(now - 86_400_001)), ("endTime", str(now))])
    assert error_of(too_long) == (400, -1127, "More than 24 hours between startTime and endTime.")
    before = int(too_long.headers["x-mbx-used-weight-1m"])
    again = await signed(sim, "binance", "GET", "/api/v3/allOrders", BTC)
    assert int(again.headers["x-mbx-used-weight-1m"]) == before + 20
    missing = await signed(sim, "binance", "GET", "/api/v3/allOrders")
    assert error_of(missing)[0] == 400


async def test_mexc_all_orders_looks_back_seven_days_at_most(still_sim: Simulator) -> None:
    sim = still_sim
    ids = await _three_orders(sim, "mexc")
    now = now_ms()
    wide = await signed(sim, "mexc", "GET", "/api/v3/allOrders",
                        [*BTC, ("startTime", str(now - 30 * 86_400_000)), ("endTime", str(now + 1000))])
    assert wide.status == 200 and [o["clientOrderId"] for o in json.loads(wide.body)] == ids
