"""The simulated venues' account endpoints (account, myTrades, open orders, cancels) and their rate limits,
over real sockets, in each venue's own shapes."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import msgspec
import pytest

from services.sim.app import Simulator
from services.sim.rate_limits import SimRateLimits
from shared.config import parse_config
from tests.conftest import make_config_dict
from tests.sim_kit import CREDS, error_of, http, levels, place, query_order, signed, sim_config, text

BTC = [("symbol", "BTCUSDT")]


@pytest.fixture
async def tight_sim(tmp_path: Path) -> AsyncIterator[Simulator]:
    """Small limits: Binance 5 orders / 10 s and 60 weight / minute, MEXC 3 requests / 10 s per endpoint."""
    limits = {"binance": SimRateLimits(weight_per_minute=60, orders_per_10s=5),
              "mexc": SimRateLimits(requests_per_endpoint_10s=3)}
    async with Simulator(sim_config(tmp_path), CREDS, emit_quotes=False, rate_limits=limits) as s:
        s.emit(s.model.n_slots)
        yield s


async def test_binance_account_shape_and_commission_rates(still_sim: Simulator) -> None:
    sim = still_sim
    resp = await signed(sim, "binance", "GET", "/api/v3/account")
    assert resp.status == 200, resp.body
    body = json.loads(resp.body)
    assert body["makerCommission"] == 10 and body["takerCommission"] == 10
    assert body["commissionRates"] == {"maker": "0.00100000", "taker": "0.00100000", "buyer": "0.00000000",
                                       "seller": "0.00000000"}
    assert body["canTrade"] is True and body["accountType"] == "SPOT" and isinstance(body["updateTime"], int)
    totals = sim.balances("binance", CREDS["binance"][0])
    assert {b["asset"]: Decimal(b["free"]) for b in body["balances"]} == totals
    assert all(b["locked"] == "0.00000000" and len(b["free"].split(".")[1]) == 8 for b in body["balances"])


async def test_mexc_account_shape_in_basis_points(still_sim: Simulator) -> None:
    sim = still_sim
    body = json.loads((await signed(sim, "mexc", "GET", "/api/v3/account")).body)
    assert body["makerCommission"] == 0 and body["takerCommission"] == 5  # 0.0005
    assert "commissionRates" not in body and body["permissions"] == ["SPOT"]
    totals = sim.balances("mexc", CREDS["mexc"][0])
    assert {b["asset"]: Decimal(b["free"]) for b in body["balances"]} == totals
    assert all(b["locked"] == "0" for b in body["balances"])


async def test_binance_my_trades_are_the_fills(still_sim: Simulator) -> None:
    sim = still_sim
    _, _, asks = levels(sim, "binance")
    qty = asks[0][1] + asks[1][1]
    order = json.loads((await place(sim, "binance", price=text(asks[1][0]), qty=text(qty))).body)
    other = json.loads((await place(sim, "binance", price=text(asks[2][0]), qty="0.00100")).body)
    trades = json.loads((await signed(sim, "binance", "GET", "/api/v3/myTrades", BTC)).body)
    assert [t["id"] for t in trades] == [f["tradeId"] for f in order["fills"] + other["fills"]]
    mine = json.loads((await signed(sim, "binance", "GET", "/api/v3/myTrades",
                                    [*BTC, ("orderId", str(order["orderId"]))])).body)
    assert [(t["price"], t["qty"], t["commission"], t["commissionAsset"]) for t in mine] == [
        (f["price"], f["qty"], f["commission"], f["commissionAsset"]) for f in order["fills"]
    ]
    t = mine[0]
    assert set(t) == {"symbol", "id", "orderId", "orderListId", "price", "qty", "quoteQty", "commission",
                      "commissionAsset", "time", "isBuyer", "isMaker", "isBestMatch"}
    assert t["orderId"] == order["orderId"] and t["isBuyer"] is True and t["isMaker"] is False
    assert Decimal(t["quoteQty"]) == Decimal(t["price"]) * Decimal(t["qty"])
    last = json.loads((await signed(sim, "binance", "GET", "/api/v3/myTrades", [*BTC, ("limit", "1")])).body)
    assert [x["id"] for x in last] == [trades[-1]["id"]]
    eth = json.loads((await signed(sim, "binance", "GET", "/api/v3/myTrades", [("symbol", "ETHUSDT")])).body)
    assert eth == []
    assert error_of(await signed(sim, "binance", "GET", "/api/v3/myTrades"))[:2] == (400, -1102)


async def test_mexc_my_trades_carry_the_commissions_its_orders_do_not(still_sim: Simulator) -> None:
    sim = still_sim
    _, bids, _ = levels(sim, "mexc")
    (p0, q0), (p1, _) = bids[:2]
    await place(sim, "mexc", side="SELL", price=text(p1), qty=text(q0 + Decimal("0.00100")), client_order_id="m1")
    order = json.loads((await query_order(sim, "mexc", "m1")).body)
    trades = json.loads((await signed(sim, "mexc", "GET", "/api/v3/myTrades",
                                      [*BTC, ("orderId", order["orderId"])])).body)
    assert [(Decimal(t["price"]), Decimal(t["qty"])) for t in trades] == [(p0, q0), (p1, Decimal("0.001"))]
    assert all(t["orderId"] == order["orderId"] and isinstance(t["orderId"], str) for t in trades)
    assert all(t["commissionAsset"] == "USDT" and t["isBuyer"] is False for t in trades)
    paid = sum(Decimal(t["commission"]) for t in trades)
    assert paid > 0 and Decimal(order["cummulativeQuoteQty"]) == sum(Decimal(t["quoteQty"]) for t in trades)


@pytest.mark.parametrize("venue", ["binance", "mexc"])
async def test_open_orders_and_cancels(still_sim: Simulator, venue: str) -> None:
    sim = still_sim
    assert json.loads((await signed(sim, venue, "GET", "/api/v3/openOrders")).body) == []
    assert json.loads((await signed(sim, venue, "GET", "/api/v3/openOrders", BTC)).body) == []
    await place(sim, venue, price=text(levels(sim, venue)[2][0][0]), qty="0.00100", client_order_id="done")
    for ident in (("origClientOrderId", "done"), ("origClientOrderId", "nope"), ("orderId", "12345")):
        resp = await signed(sim, venue, "DELETE", "/api/v3/order", [*BTC, ident])
        assert error_of(resp) == (400, -2011, "Unknown order sent."), ident  # filled, or never existed
    assert json.loads((await signed(sim, venue, "DELETE", "/api/v3/openOrders", BTC)).body) == []
    assert error_of(await signed(sim, venue, "DELETE", "/api/v3/openOrders"))[0] == 400  # symbol required
    # only a slow order rests; cancel-all takes it
    sim.inject_order_fault(venue, "slow", seconds=2.0)  # cancelled well within, answered after it

    task = asyncio.create_task(place(sim, venue, price="90000.00", qty="0.00100", client_order_id="rest1"))
    try:
        deadline = asyncio.get_running_loop().time() + 20
        while not sim.venue(venue).book.open_orders(CREDS[venue][0]):
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.01)
        listed = json.loads((await signed(sim, venue, "GET", "/api/v3/openOrders")).body)
        assert [o["clientOrderId"] for o in listed] == ["rest1"] and listed[0]["status"] == "NEW"
        cancelled = json.loads((await signed(sim, venue, "DELETE", "/api/v3/openOrders", BTC)).body)
        assert [(o["clientOrderId"], o["status"]) for o in cancelled] == [("rest1", "CANCELED")]
        assert cancelled[0]["origClientOrderId"] == "rest1"
        assert json.loads((await signed(sim, venue, "GET", "/api/v3/openOrders", BTC)).body) == []
        answer = await task
        assert answer.status == 200
        assert json.loads((await query_order(sim, venue, "rest1")).body)["status"] == "CANCELED"
    finally:
        task.cancel()


@pytest.mark.parametrize(("venue", "code"), [("binance", -1022), ("mexc", 700002)])
async def test_account_endpoints_check_signatures(still_sim: Simulator, venue: str, code: int) -> None:
    for method, path, params in (("GET", "/api/v3/account", []), ("GET", "/api/v3/myTrades", BTC),
                                 ("GET", "/api/v3/openOrders", []), ("DELETE", "/api/v3/openOrders", BTC),
                                 ("DELETE", "/api/v3/order", [*BTC, ("origClientOrderId", "x")])):
        resp = await signed(still_sim, venue, method, path, params, secret="wrong")
        assert error_of(resp) == (400, code, "Signature for this request is not valid."), path


async def test_binance_usage_headers_count_the_documented_weights(still_sim: Simulator) -> None:
    sim = still_sim
    used = lambda r: int(r.headers["x-mbx-used-weight-1m"])  # noqa: E731
    base = used(await http(sim, "binance", "GET", "/api/v3/time"))
    assert used(await signed(sim, "binance", "GET", "/api/v3/account")) == base + 20
    assert used(await signed(sim, "binance", "GET", "/api/v3/openOrders")) == base + 100
    assert used(await signed(sim, "binance", "GET", "/api/v3/openOrders", BTC)) == base + 106
    assert used(await query_order(sim, "binance", "none")) == base + 110
    order = await place(sim, "binance", price="90000.00", qty="0.00100")
    assert used(order) == base + 111
    assert order.headers["x-mbx-order-count-10s"] == "1" and order.headers["x-mbx-order-count-1d"] == "1"
    assert "x-mbx-order-count-10s" not in (await http(sim, "binance", "GET", "/api/v3/time")).headers


async def test_binance_order_limit_then_ban_for_orders_only(tight_sim: Simulator) -> None:
    sim = tight_sim
    for n in range(1, 6):
        resp = await place(sim, "binance", price="90000.00", qty="0.00100")
        assert resp.status == 200 and resp.headers["x-mbx-order-count-10s"] == str(n)
    sixth = await place(sim, "binance", price="90000.00", qty="0.00100")
    assert error_of(sixth) == (429, -1015, "Too many new orders; current limit is 5 orders per TEN_SECONDS.")
    assert 1 <= int(sixth.headers["retry-after"]) <= 10
    seventh = await place(sim, "binance", price="90000.00", qty="0.00100")
    assert seventh.status == 418 and error_of(seventh)[1] == -1003
    assert (await http(sim, "binance", "GET", "/api/v3/time")).status == 200  # other requests still pass
    assert sim.venue("binance").book.orders == 5
    stats = sim.venue("binance").stats()
    assert (stats["limited"], stats["banned"]) == (1, 1)


async def test_binance_weight_limit(tight_sim: Simulator) -> None:
    sim = tight_sim
    assert (await signed(sim, "binance", "GET", "/api/v3/account")).status == 200  # 20
    assert (await signed(sim, "binance", "GET", "/api/v3/account")).status == 200  # 40
    assert (await signed(sim, "binance", "GET", "/api/v3/account")).status == 200  # 60
    over = await http(sim, "binance", "GET", "/api/v3/time")
    assert over.status == 429 and error_of(over)[1] == -1003 and over.headers["x-mbx-used-weight-1m"] == "61"
    assert 1 <= int(over.headers["retry-after"]) <= 60
    assert (await http(sim, "binance", "GET", "/api/v3/time")).status == 418


async def test_mexc_limits_each_endpoint_on_its_own(tight_sim: Simulator) -> None:
    sim = tight_sim
    for _ in range(3):
        assert (await http(sim, "mexc", "GET", "/api/v3/time")).status == 200
    limited = await http(sim, "mexc", "GET", "/api/v3/time")
    assert error_of(limited) == (429, 429, "Too many requests") and 1 <= int(limited.headers["retry-after"]) <= 10
    assert (await http(sim, "mexc", "GET", "/api/v3/exchangeInfo?symbol=BTCUSDT")).status == 200


async def test_marks_value_each_asset_at_its_usd_mid(tmp_path: Path) -> None:
    data = make_config_dict(tmp_path)
    data["symbols"].append({"name": "FOOBTC", "base": "FOO", "quote": "BTC", "tick_size": "0.00000001",
                            "step_size": "1", "start_price": 0.0000001})
    for v in data["venues"]:
        if v["name"] == "binance":
            v["symbols"] = ["BTCUSDT", "ETHBTC", "FOOBTC"]  # no ETHUSDT here: ETH goes through BTC
    for sv in data["sim"]["venues"]:
        sv["ws_port"] = sv["rest_port"] = 0
    cfg = parse_config(msgspec.toml.encode(data))
    async with Simulator(cfg, CREDS, emit_quotes=False) as sim:
        sim.emit(sim.model.n_slots)
        sim.venue("binance").depth[sim.venue("binance").book.index["FOOBTC"]].bids.keys.clear()  # one-sided
        marks = sim.marks("binance")
        _, bids, asks = levels(sim, "binance")
        btc = (bids[0][0] + asks[0][0]) / 2
        _, bids, asks = levels(sim, "binance", "ETHBTC")
        assert marks["USDT"] == 1 and marks["BTC"] == btc
        assert marks["ETH"] == (bids[0][0] + asks[0][0]) / 2 * btc
        assert marks["FOO"] == Decimal("1E-7") * btc  # no two-sided book: its start price
        assert set(marks) == {"USDT", "BTC", "ETH", "FOO"}
        assert sim.balances("binance", CREDS["binance"][0])["USDT"] == Decimal("1000000")


async def test_starting_balances_hook_stays_put_while_balances_move(still_sim: Simulator) -> None:
    sim = still_sim
    header = [("X-MBX-APIKEY", CREDS["binance"][0])]
    start = json.loads((await http(sim, "binance", "GET", "/sim/starting_balances", header)).body)
    assert start == json.loads((await http(sim, "binance", "GET", "/sim/balances", header)).body)
    await place(sim, "binance", price=text(levels(sim, "binance")[2][0][0]), qty="0.00100")
    assert json.loads((await http(sim, "binance", "GET", "/sim/starting_balances", header)).body) == start
    assert json.loads((await http(sim, "binance", "GET", "/sim/balances", header)).body) != start
    stranger = await http(sim, "binance", "GET", "/sim/starting_balances", [("X-MBX-APIKEY", "who")])
    assert error_of(stranger)[1] == -2015


async def test_marks_hook_serves_the_simulators_marks(still_sim: Simulator) -> None:
    """`GET /sim/marks`: what a paper run's settlement values balances at, the same as `Simulator.marks`."""
    for venue in ("binance", "mexc"):
        resp = await http(still_sim, venue, "GET", "/sim/marks")
        assert resp.status == 200, resp.body
        served = {a: Decimal(m) for a, m in json.loads(resp.body).items()}
        assert served == still_sim.marks(venue) and served["USDT"] == 1 and served["BTC"] > 0
