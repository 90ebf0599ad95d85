"""Order faults armed on the simulated spot venues, each seen by a real client over real sockets."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from decimal import Decimal

import pytest

from services.sim.app import Simulator
from services.sim.book import half_cap
from services.sim.faults import FaultError
from services.sim.units import SymbolSpec
from shared.config import Symbol
from shared.http.client import HttpPool, HttpResponse
from tests.conftest import eventually_async
from tests.sim_kit import CREDS, DEADLINE_S, error_of, http, levels, place, query_order, signed, text

BINANCE_KEY = CREDS["binance"][0]


async def post_fault(sim: Simulator, venue: str, body: dict[str, object]) -> HttpResponse:
    pool = HttpPool(sim.rest_url(venue), size=1)
    try:
        return await pool.request("POST", "/sim/order_fault", [("Content-Type", "application/json")],
                                  json.dumps(body).encode())
    finally:
        await pool.close()


async def until(request: Callable[[], Awaitable[HttpResponse]], ok: Callable[[HttpResponse], bool]) -> HttpResponse:
    """Repeat ``request`` until ``ok`` holds for its answer (deadline: DEADLINE_S)."""
    deadline = time.monotonic() + DEADLINE_S
    while True:
        resp = await request()
        if ok(resp):
            return resp
        assert time.monotonic() < deadline, resp.body
        await asyncio.sleep(0.02)


def best_ask(sim: Simulator, venue: str) -> str:
    return text(levels(sim, venue)[2][0][0])


def venue_stats(sim: Simulator, venue: str) -> dict[str, object]:
    stats: dict[str, object] = sim.venue(venue).stats()
    return stats


@pytest.mark.parametrize(
    ("venue", "expected"),
    [("binance", (400, -2010, "Account has insufficient balance for requested action.")),
     ("mexc", (400, 10101, "Insufficient balance"))],
)
async def test_reject_refuses_without_touching_book_or_balances(
    still_sim: Simulator, venue: str, expected: tuple[int, int, str]
) -> None:
    sim = still_sim
    key = CREDS[venue][0]
    sim.inject_order_fault(venue, "reject")
    book, balances = levels(sim, venue), sim.balances(venue, key)
    resp = await place(sim, venue, price=best_ask(sim, venue), qty="0.00100", client_order_id="r1")
    assert error_of(resp) == expected
    assert levels(sim, venue) == book and sim.balances(venue, key) == balances
    assert error_of(await query_order(sim, venue, "r1"))[1] == -2013  # never existed
    # one use only: the next order trades
    assert (await place(sim, venue, price=best_ask(sim, venue), qty="0.00100", client_order_id="r2")).status == 200
    assert sim.balances(venue, key) != balances
    assert venue_stats(sim, venue)["order_faults"] == {
        "injected": {"reject": 1, "error_after_accept": 0, "rate_limit": 0, "slow": 0, "partial": 0},
        "triggered": {"reject": 1, "error_after_accept": 0, "rate_limit": 0, "slow": 0, "partial": 0},
    }


@pytest.mark.parametrize(
    ("venue", "expected"),
    [("binance", (503, -1007, "Timeout waiting for response from backend server. Send status unknown; "
                               "execution status unknown.")),
     ("mexc", (500, 500, "Internal error"))],
)
async def test_error_after_accept_answers_5xx_yet_the_order_filled(
    still_sim: Simulator, venue: str, expected: tuple[int, int, str]
) -> None:
    sim = still_sim
    key = CREDS[venue][0]
    before = sim.balances(venue, key)
    assert (await post_fault(sim, venue, {"kind": "error_after_accept"})).status == 200
    resp = await place(sim, venue, price=best_ask(sim, venue), qty="0.00100", client_order_id="e1")
    assert error_of(resp) == expected
    body = json.loads((await query_order(sim, venue, "e1")).body)
    assert body["status"] == "FILLED" and Decimal(body["executedQty"]) == Decimal("0.001")
    assert sim.balances(venue, key)["BTC"] > before["BTC"]


async def test_binance_rate_limit_then_ban_when_ignored_then_normal(still_sim: Simulator) -> None:
    sim = still_sim
    assert (await post_fault(sim, "binance", {"kind": "rate_limit", "seconds": 1.5})).status == 200
    listed = json.loads((await http(sim, "binance", "GET", "/sim/order_faults")).body)
    assert [f["kind"] for f in listed] == ["rate_limit"] and 0 < listed[0]["seconds"] <= 1.5
    first = await http(sim, "binance", "GET", "/api/v3/time")
    assert first.status == 429 and first.headers["retry-after"] == "2"
    assert json.loads(first.body)["code"] == -1003 and "x-mbx-used-weight-1m" in first.headers
    ignored = await place(sim, "binance", price=best_ask(sim, "binance"), qty="0.00100")
    status, code, msg = error_of(ignored)
    assert (status, code) == (418, -1003) and "IP banned until" in msg
    assert 1 <= int(ignored.headers["retry-after"]) <= 2
    assert venue_stats(sim, "binance")["limited"] == 1 and venue_stats(sim, "binance")["banned"] == 1
    assert sim.venue("binance").book.orders == 0  # the refused order never reached the engine
    gate = sim.venue("binance").rest.gate
    await eventually_async(lambda: gate.fault_remaining() == 0, DEADLINE_S, "the limited period to end")
    assert (await http(sim, "binance", "GET", "/api/v3/time")).status == 200
    assert (await place(sim, "binance", price=best_ask(sim, "binance"), qty="0.00100")).status == 200


async def test_mexc_rate_limit_answers_429_and_never_bans(still_sim: Simulator) -> None:
    sim = still_sim
    sim.inject_order_fault("mexc", "rate_limit", seconds=1.0)
    for _ in range(2):
        resp = await http(sim, "mexc", "GET", "/api/v3/time")
        assert error_of(resp) == (429, 429, "Too many requests") and resp.headers["retry-after"] == "1"
        assert "x-mbx-used-weight-1m" not in resp.headers
    gate = sim.venue("mexc").rest.gate
    await eventually_async(lambda: gate.fault_remaining() == 0, DEADLINE_S, "the limited period to end")
    assert (await http(sim, "mexc", "GET", "/api/v3/time")).status == 200
    assert venue_stats(sim, "mexc")["limited"] == 2 and venue_stats(sim, "mexc")["banned"] == 0


async def test_slow_orders_rest_open_answer_late_and_can_be_cancelled(still_sim: Simulator) -> None:
    sim = still_sim
    sim.inject_order_fault("binance", "slow", count=2, seconds=0.5)
    ask = best_ask(sim, "binance")
    before = sim.balances("binance", BINANCE_KEY)
    open_orders = lambda: signed(sim, "binance", "GET", "/api/v3/openOrders", [("symbol", "BTCUSDT")])  # noqa: E731

    started = time.monotonic()
    slow1 = asyncio.create_task(place(sim, "binance", price=ask, qty="0.00100", client_order_id="s1"))
    listed = await until(open_orders, lambda r: bool(json.loads(r.body)))
    (order,) = json.loads(listed.body)
    assert order["clientOrderId"] == "s1" and order["status"] == "NEW" and order["executedQty"] == "0.00000000"
    assert json.loads((await query_order(sim, "binance", "s1")).body)["status"] == "NEW"
    account = json.loads((await signed(sim, "binance", "GET", "/api/v3/account")).body)
    usdt = next(b for b in account["balances"] if b["asset"] == "USDT")
    assert Decimal(usdt["locked"]) == Decimal(ask) * Decimal("0.001")  # held while open
    resp = await slow1
    assert time.monotonic() - started >= 0.5
    body = json.loads(resp.body)
    assert body["status"] == "FILLED" and Decimal(body["executedQty"]) == Decimal("0.001")
    assert json.loads((await open_orders()).body) == []
    filled = sim.balances("binance", BINANCE_KEY)
    assert filled != before

    slow2 = asyncio.create_task(place(sim, "binance", price=ask, qty="0.00100", client_order_id="s2"))
    await until(open_orders, lambda r: bool(json.loads(r.body)))
    cancel = await signed(sim, "binance", "DELETE", "/api/v3/order",
                          [("symbol", "BTCUSDT"), ("origClientOrderId", "s2")])
    assert cancel.status == 200 and json.loads(cancel.body)["status"] == "CANCELED"
    body = json.loads((await slow2).body)
    assert body["status"] == "CANCELED" and body["executedQty"] == "0.00000000" and body["fills"] == []
    assert sim.balances("binance", BINANCE_KEY) == filled  # nothing moved, nothing stays locked
    assert sim.venue("binance").book.locked(BINANCE_KEY) == {}


@pytest.mark.parametrize(("venue", "status"), [("binance", "EXPIRED"), ("mexc", "PARTIALLY_CANCELED")])
async def test_partial_fills_half_floored_to_the_step(still_sim: Simulator, venue: str, status: str) -> None:
    sim = still_sim
    sim.inject_order_fault(venue, "partial", count=2)
    _, _, asks = levels(sim, venue)
    assert asks[0][1] >= Decimal("0.00015")
    await place(sim, venue, price=text(asks[0][0]), qty="0.00015", client_order_id="p1")
    body = json.loads((await query_order(sim, venue, "p1")).body)
    assert body["status"] == status and Decimal(body["executedQty"]) == Decimal("0.00007")
    await place(sim, venue, price=text(asks[0][0]), qty="0.00011", client_order_id="p2")
    body = json.loads((await query_order(sim, venue, "p2")).body)
    assert body["status"] == status and Decimal(body["executedQty"]) == Decimal("0.00005")
    await place(sim, venue, price=text(asks[0][0]), qty="0.00011", client_order_id="p3")  # the faults are used up
    assert json.loads((await query_order(sim, venue, "p3")).body)["status"] == "FILLED"


def test_half_cap_is_at_least_one_step() -> None:
    spec = SymbolSpec.of(Symbol(name="XUSDT", base="X", quote="USDT", tick_size="0.01", step_size="0.5",
                                start_price=1.0))
    assert [half_cap(spec, units) for units in (5, 10, 15, 20, 25)] == [5, 5, 5, 10, 10]  # steps of 5 units


async def test_symbol_and_side_restrict_which_orders_a_fault_meets(still_sim: Simulator) -> None:
    sim = still_sim
    sim.inject_order_fault("binance", "reject", symbol="ETHUSDT", side="SELL")
    eth_bid = text(levels(sim, "binance", "ETHUSDT")[1][0][0])
    btc_bid = text(levels(sim, "binance")[1][0][0])
    assert (await place(sim, "binance", side="SELL", price=btc_bid, qty="0.00100")).status == 200
    assert (await place(sim, "binance", symbol="ETHUSDT", price=best_ask(sim, "binance"), qty="0.0100")).status == 200
    assert len(json.loads((await http(sim, "binance", "GET", "/sim/order_faults")).body)) == 1
    refused = await place(sim, "binance", symbol="ETHUSDT", side="SELL", price=eth_bid, qty="0.0100")
    assert error_of(refused)[1] == -2010
    assert json.loads((await http(sim, "binance", "GET", "/sim/order_faults")).body) == []


async def test_impossible_faults_are_refused(still_sim: Simulator) -> None:
    sim = still_sim
    for body in ({"kind": "explode"}, {"kind": "slow"}, {"kind": "reject", "count": 0},
                 {"kind": "reject", "symbol": "FOOUSDT"}, {"kind": "reject", "side": "HOLD"}, {"kind": 3}):
        resp = await post_fault(sim, "binance", body)
        assert resp.status == 400 and json.loads(resp.body)["ok"] is False, body
    with pytest.raises(FaultError):
        sim.inject_order_fault("binance_usdm", "reject")
    with pytest.raises(FaultError):
        sim.inject_order_fault("nowhere", "reject")
    assert json.loads((await http(sim, "binance", "GET", "/sim/order_faults")).body) == []
