"""Taker orders walk the simulated venue's L2 book: one fill per level, limits, FOK, MARKET, and the taken
liquidity visible in the depth stream and snapshot. Real sim, real sockets."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from decimal import ROUND_UP, Decimal
from pathlib import Path

import pytest

from services.sim.app import Simulator
from tests.conftest import eventually_async
from tests.sim_kit import (
    CREDS,
    DEADLINE_S,
    connect,
    error_of,
    http,
    levels,
    place,
    query_order,
    sim_config,
    text,
)
from tests.test_sim_depth import LocalBook, binance_diffs, rounds, sync

STEP = Decimal("0.00001")  # BTCUSDT


def fee(amount: Decimal, rate: str) -> Decimal:
    return (amount * Decimal(rate)).quantize(Decimal("1e-8"), rounding=ROUND_UP)


@pytest.fixture
async def small_sim(tmp_path: Path) -> AsyncIterator[Simulator]:
    """A still sim whose accounts hold $200k per asset: less than the book's depth on one side."""
    async with Simulator(sim_config(tmp_path, starting_balance_usd=200_000.0), CREDS, emit_quotes=False) as s:
        s.emit(s.model.n_slots)
        yield s


async def test_a_big_ioc_buy_walks_the_asks_and_the_depth_stream_shows_it(still_sim: Simulator) -> None:
    sim = still_sim
    t, c = await connect(sim.ws_url("binance") + "?streams=btcusdt@depth@100ms")
    try:
        await eventually_async(lambda: sim.venue("binance").stream.connections, DEADLINE_S, "connected")
        sim.flush_depth(100)  # the book as built so far goes out first
        await eventually_async(lambda: binance_diffs(c), DEADLINE_S, "the first diff")
        snapshot = json.loads((await http(sim, "binance", "GET", "/api/v3/depth?symbol=BTCUSDT&limit=1000")).body)
        uid, _, asks = levels(sim, "binance")
        (p0, q0), (p1, q1), (p2, q2) = asks[:3]
        part = (q2 / 2).quantize(STEP, rounding="ROUND_DOWN")
        qty = q0 + q1 + part
        before = sim.balances("binance", CREDS["binance"][0])

        resp = await place(sim, "binance", price=text(p2), qty=text(qty), client_order_id="walk1")
        assert resp.status == 200, resp.body
        body = json.loads(resp.body)
        assert body["status"] == "FILLED" and Decimal(body["executedQty"]) == qty
        fills = [(Decimal(f["price"]), Decimal(f["qty"]), Decimal(f["commission"])) for f in body["fills"]]
        assert [(p, q) for p, q, _ in fills] == [(p0, q0), (p1, q1), (p2, part)]
        assert [c for _, _, c in fills] == [fee(q, "0.001") for q in (q0, q1, part)]  # per fill, rounded up
        assert len({f["tradeId"] for f in body["fills"]}) == 3
        assert Decimal(body["cummulativeQuoteQty"]) == p0 * q0 + p1 * q1 + p2 * part

        after = sim.balances("binance", CREDS["binance"][0])
        assert after["BTC"] - before["BTC"] == qty - sum(c for _, _, c in fills)
        assert before["USDT"] - after["USDT"] == p0 * q0 + p1 * q1 + p2 * part

        # the taking is one book change: the snapshot shows it at once, the next diff carries it
        uid2, _, asks2 = levels(sim, "binance")
        assert uid2 == uid + 1 and asks2[0] == (p2, q2 - part) and asks2[1:] == asks[3:]
        snap = json.loads((await http(sim, "binance", "GET", "/api/v3/depth?symbol=BTCUSDT&limit=1000")).body)
        assert snap["lastUpdateId"] == uid2 and [Decimal(x) for x in snap["asks"][0]] == [p2, q2 - part]
        sim.flush_depth(100)
        await eventually_async(lambda: len(binance_diffs(c)) == 2, DEADLINE_S, "the diff")
        (_, last, _, diff_asks) = binance_diffs(c)[-1]
        assert last == uid2
        assert {Decimal(p): Decimal(q) for p, q in diff_asks} == {p0: 0, p1: 0, p2: q2 - part}
        # a client's local book still equals the venue's, and the next quote's ticker id follows the book
        rounds(sim, 2)
        sim.flush_depth(100)
        await eventually_async(lambda: binance_diffs(c)[-1][1] == uid2 + 2, DEADLINE_S, "more diffs")
        book = LocalBook()
        sync(book, snapshot, binance_diffs(c))
        assert book.levels() == sim.book_levels("binance", "BTCUSDT")
        q = sim.venue("binance").book.top(0)
        assert q.seq == uid2 + 2 == sim.book_levels("binance", "BTCUSDT")[0]
    finally:
        t.disconnect()


async def test_the_limit_stops_the_walk_and_the_rest_expires(still_sim: Simulator) -> None:
    sim = still_sim
    _, bids, _ = levels(sim, "mexc")
    (p0, q0), (p1, q1), (_, q2) = bids[:3]
    qty = q0 + q1 + q2
    before = sim.balances("mexc", CREDS["mexc"][0])
    resp = await place(sim, "mexc", side="SELL", price=text(p1), qty=text(qty), client_order_id="lim1")
    assert resp.status == 200, resp.body
    body = json.loads((await query_order(sim, "mexc", "lim1")).body)
    assert body["status"] == "PARTIALLY_CANCELED" and Decimal(body["executedQty"]) == q0 + q1
    assert Decimal(body["cummulativeQuoteQty"]) == p0 * q0 + p1 * q1
    after = sim.balances("mexc", CREDS["mexc"][0])
    assert before["BTC"] - after["BTC"] == q0 + q1
    # MEXC: the quote asset pays, per fill, rounded up
    assert after["USDT"] - before["USDT"] == p0 * q0 + p1 * q1 - fee(p0 * q0, "0.0005") - fee(p1 * q1, "0.0005")
    assert levels(sim, "mexc")[1][0] == bids[2]


async def test_fok_is_all_or_nothing(still_sim: Simulator) -> None:
    sim = still_sim
    book_before = levels(sim, "binance")
    uid, _, asks = book_before
    (_, q0), (p1, q1) = asks[:2]
    too_much = await place(sim, "binance", kind="FOK", price=text(p1), qty=text(q0 + q1 + STEP))
    body = json.loads(too_much.body)
    assert body["status"] == "EXPIRED" and body["fills"] == [] and body["timeInForce"] == "FOK"
    assert levels(sim, "binance") == book_before  # the book is untouched
    exact = json.loads((await place(sim, "binance", kind="FOK", price=text(p1), qty=text(q0 + q1))).body)
    assert exact["status"] == "FILLED" and [Decimal(f["qty"]) for f in exact["fills"]] == [q0, q1]
    assert levels(sim, "binance")[0] == uid + 1


async def test_market_orders_walk_at_any_price(still_sim: Simulator) -> None:
    sim = still_sim
    _, bids, _ = levels(sim, "binance")
    (p0, q0), (p1, q1), (p2, _) = bids[:3]
    resp = await place(sim, "binance", kind="MARKET", side="SELL", qty=text(q0 + q1 + STEP))
    body = json.loads(resp.body)
    assert body["status"] == "FILLED" and body["type"] == "MARKET" and body["price"] == "0.00000000"
    assert [(Decimal(f["price"]), Decimal(f["qty"])) for f in body["fills"]] == [(p0, q0), (p1, q1), (p2, STEP)]
    assert [Decimal(f["commission"]) for f in body["fills"]] == [fee(p * q, "0.001") for p, q in
                                                                 ((p0, q0), (p1, q1), (p2, STEP))]
    assert {f["commissionAsset"] for f in body["fills"]} == {"USDT"}


async def test_a_market_buy_is_checked_against_its_walked_cost(small_sim: Simulator) -> None:
    """$200k of USDT buys fewer DOGE than 200k / best ask: deeper levels cost more. The quantity the top
    price would allow is refused; half of it fills across several levels."""
    sim = small_sim
    usdt = sim.balances("binance", CREDS["binance"][0])["USDT"]
    _, _, asks = levels(sim, "binance", "DOGEUSDT")
    best = asks[0][0]
    qty = (usdt / best).quantize(Decimal(1), rounding="ROUND_DOWN")  # whole DOGE (the step)
    assert best * qty <= usdt and sum(q for _, q in asks) > qty  # the book could carry it
    refused = await place(sim, "binance", kind="MARKET", symbol="DOGEUSDT", qty=text(qty))
    assert error_of(refused) == (400, -2010, "Account has insufficient balance for requested action.")
    half = await place(sim, "binance", kind="MARKET", symbol="DOGEUSDT", qty=text(qty // 2))
    body = json.loads(half.body)
    assert body["status"] == "FILLED" and len(body["fills"]) > 1
    spent = usdt - sim.balances("binance", CREDS["binance"][0])["USDT"]
    assert spent == Decimal(body["cummulativeQuoteQty"]) > best * (qty // 2)


async def test_a_trade_that_moves_the_top_pushes_a_book_ticker_at_once(still_sim: Simulator) -> None:
    """Venues push bookTicker on every change of the best levels, trades included: a client must see the
    liquidity it took before the next quote (the detector would otherwise trade a level that is gone)."""
    sim = still_sim
    t, c = await connect(sim.ws_url("binance") + "?streams=btcusdt@bookTicker")
    try:
        await eventually_async(lambda: sim.venue("binance").stream.connections, DEADLINE_S, "connected")
        _uid, _, asks = levels(sim, "binance")
        (p0, q0), (p1, _q1) = asks[:2]
        resp = await place(sim, "binance", price=text(p0), qty=text(q0), client_order_id="top1")  # the whole top
        assert resp.status == 200, resp.body

        def tickers() -> list[dict[str, str]]:
            return [json.loads(p)["data"] for binary, p in c.frames if not binary and b"bookTicker" in p]

        pushed = await eventually_async(tickers, DEADLINE_S, "a bookTicker after the trade")
        assert Decimal(pushed[-1]["a"]) == p1  # the next level is the best ask now
        top = sim.top_of_book("binance", "BTCUSDT")
        assert top is not None and Decimal(repr(top.ask)) == p1
    finally:
        t.disconnect()
