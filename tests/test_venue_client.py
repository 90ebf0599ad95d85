"""VenueClient against the real simulator: clock, rules, fees, orders, faults, rate limits, recovery."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import msgspec
import pytest

from services.executor.venue_client import VenueClient
from services.sim.app import Simulator
from shared.config import RateLimits
from shared.errors import ConfigError, VenueError
from shared.messages import SIDE_BUY, SIDE_SELL
from shared.registry import Registry
from tests.conftest import eventually_async, free_port
from tests.sim_kit import CREDS, DEADLINE_S, place, signed, sim_config, top

BTC = "BTCUSDT"
D = Decimal


@pytest.fixture(autouse=True)
def credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for venue, (key, secret) in CREDS.items():
        monkeypatch.setenv(f"DRAIZER_{venue.upper()}_API_KEY", key)
        monkeypatch.setenv(f"DRAIZER_{venue.upper()}_API_SECRET", secret)


def make_client(sim: Simulator, name: str, timeout_s: float = 5.0, limits: RateLimits | None = None,
                rest_url: str | None = None, connections: int = 4) -> VenueClient:
    cfg = sim.cfg
    venue = next(v for v in cfg.venues if v.name == name)
    venue = msgspec.structs.replace(venue, rest_url=rest_url or sim.rest_url(name), limits=limits or venue.limits,
                                    order_connections=connections)
    return VenueClient(venue, Registry(cfg), timeout_s)


@pytest.fixture
async def clients(still_sim: Simulator) -> AsyncIterator[dict[str, VenueClient]]:
    out = {name: make_client(still_sim, name) for name in ("binance", "mexc")}
    try:
        await asyncio.wait_for(asyncio.gather(*(c.start() for c in out.values())), DEADLINE_S)
        yield out
    finally:
        for c in out.values():
            await c.close()


def sid(client: VenueClient, name: str = BTC) -> int:
    return client.registry.symbol_id[name]


async def buy_at_ask(sim: Simulator, c: VenueClient, cid: str, qty: str = "0.00100", **kw: str) -> object:
    _, _, ask, _ = top(sim, c.name)
    return await asyncio.wait_for(c.send_order(sid(c), SIDE_BUY, qty, ask, cid, **kw), DEADLINE_S)


def test_missing_credentials_name_the_variables(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    cfg = sim_config(tmp_path)
    monkeypatch.delenv("DRAIZER_MEXC_API_SECRET")
    venue = next(v for v in cfg.venues if v.name == "mexc")
    with pytest.raises(ConfigError) as err:
        VenueClient(venue, Registry(cfg), 1.0)
    assert "DRAIZER_MEXC_API_KEY" in str(err.value) and "DRAIZER_MEXC_API_SECRET" in str(err.value)
    binance = VenueClient(next(v for v in cfg.venues if v.name == "binance"), Registry(cfg), 1.0)
    shown = repr(binance) + str(vars(binance).keys())
    assert "bsecret" not in repr(binance) and "bkey" not in repr(binance) and "bsecret" not in shown


async def test_start_reads_clock_rules_and_fees(still_sim: Simulator, clients: dict[str, VenueClient]) -> None:
    b, m = clients["binance"], clients["mexc"]
    for c in (b, m):
        assert c.started and c.reachable and abs(c.clock_offset_ms) < 1000
        assert set(c.rules) == set(c.symbol_ids)
        r = c.rules_for(sid(c))
        assert (r.symbol, r.tick, r.step) == (BTC, D("0.01"), D("0.00001"))
        assert (r.price_decimals, r.qty_decimals, r.min_notional) == (2, 5, D(5))
    assert (b.maker_fee, b.taker_fee) == (D("0.001"), D("0.001"))  # commissionRates
    assert (m.maker_fee, m.taker_fee) == (D(0), D("0.0005"))  # basis points
    info = await m.account()
    assert info.balances["USDT"][0] > 0 and info.balances["USDT"][1] == 0


async def test_binance_ioc_fills_with_per_fill_commissions(
    still_sim: Simulator, clients: dict[str, VenueClient]
) -> None:
    b = clients["binance"]
    a = await buy_at_ask(still_sim, b, "vc-b1")
    assert (a.kind, a.status, a.client_order_id) == ("ok", "FILLED", "vc-b1")
    assert a.executed_qty == D("0.001") and a.fills and sum(f.qty for f in a.fills) == a.executed_qty
    assert {f.commission_asset for f in a.fills} == {"BTC"}  # Binance charges a buy in the base asset
    assert b.budget.usage().weight_1m >= 1 and b.budget.usage().orders_10s == 1
    q = await b.query_order(sid(b), "vc-b1")
    assert (q.kind, q.status, q.order_id, q.fills) == ("ok", "FILLED", a.order_id, None)
    trades = await b.my_trades(sid(b), a.order_id)
    assert sorted(t.trade_id for t in trades) == sorted(f.trade_id for f in a.fills)
    market = await asyncio.wait_for(b.send_order(sid(b), SIDE_SELL, "0.00100", None, "vc-b2", "market"), DEADLINE_S)
    assert (market.kind, market.status, market.executed_qty) == ("ok", "FILLED", D("0.001"))


async def test_mexc_ack_then_query_and_trades(still_sim: Simulator, clients: dict[str, VenueClient]) -> None:
    m = clients["mexc"]
    a = await buy_at_ask(still_sim, m, "vc-m1")
    assert (a.kind, a.status, a.fills, a.client_order_id) == ("ok", "NEW", None, "vc-m1")
    assert a.order_id.startswith("C02__")
    q = await m.query_order(sid(m), "vc-m1")
    assert (q.kind, q.status, q.executed_qty, q.final) == ("ok", "FILLED", D("0.001"), True)
    trades = await m.my_trades(sid(m), q.order_id)
    assert sum(t.qty for t in trades) == q.executed_qty
    assert {t.commission_asset for t in trades} == {"USDT"}
    assert sum(t.qty * t.price for t in trades) == q.cum_quote


@pytest.mark.parametrize("venue", ["binance", "mexc"])
async def test_unknown_order_and_empty_lists(clients: dict[str, VenueClient], venue: str) -> None:
    c = clients[venue]
    a = await c.query_order(sid(c), "never-sent")
    assert (a.kind, a.status) == ("rejected", "UNKNOWN") and c.not_found(a)
    x = await c.cancel_order(sid(c), "never-sent")
    assert x.kind == "rejected" and c.not_found(x)
    assert await c.open_orders(sid(c)) == [] and await c.open_orders() == []
    assert await c.cancel_all(sid(c)) == []


@pytest.mark.parametrize(("venue", "code"), [("binance", -2010), ("mexc", 10101)])
async def test_reject_fault_is_a_rejected_order(
    still_sim: Simulator, clients: dict[str, VenueClient], venue: str, code: int
) -> None:
    c = clients[venue]
    still_sim.inject_order_fault(venue, "reject")
    a = await buy_at_ask(still_sim, c, f"vc-rej-{venue}")
    assert (a.kind, a.status, a.error_code, a.http_status) == ("rejected", "REJECTED", code, 400)
    assert a.client_order_id == f"vc-rej-{venue}"
    assert c.not_found(await c.query_order(sid(c), f"vc-rej-{venue}"))  # it never existed


@pytest.mark.parametrize(("venue", "http"), [("binance", 503), ("mexc", 500)])
async def test_error_after_accept_is_unknown_and_resolved_by_query(
    still_sim: Simulator, clients: dict[str, VenueClient], venue: str, http: int
) -> None:
    c = clients[venue]
    still_sim.inject_order_fault(venue, "error_after_accept")
    a = await buy_at_ask(still_sim, c, f"vc-5xx-{venue}")
    assert (a.kind, a.status, a.http_status) == ("unknown", "UNKNOWN", http)
    assert c.counters()["unknown"] == 1
    q = await c.query_order(sid(c), f"vc-5xx-{venue}")
    assert (q.kind, q.status, q.executed_qty) == ("ok", "FILLED", D("0.001"))


@pytest.mark.parametrize(("venue", "venue_status"), [("binance", "EXPIRED"), ("mexc", "PARTIALLY_CANCELED")])
async def test_partial_fill(still_sim: Simulator, clients: dict[str, VenueClient], venue: str,
                            venue_status: str) -> None:
    c = clients[venue]
    still_sim.inject_order_fault(venue, "partial")
    await buy_at_ask(still_sim, c, f"vc-part-{venue}", qty="0.00200")
    q = await c.query_order(sid(c), f"vc-part-{venue}")
    expected_status = "EXPIRED" if venue == "binance" else "CANCELED"
    assert (q.status, q.venue_status, q.executed_qty) == (expected_status, venue_status, D("0.001"))


@pytest.mark.parametrize("venue", ["binance", "mexc"])
async def test_slow_order_is_open_and_cancellable(still_sim: Simulator, clients: dict[str, VenueClient],
                                                  venue: str) -> None:
    c = clients[venue]
    still_sim.inject_order_fault(venue, "slow", seconds=2.0)
    _, _, ask, _ = top(still_sim, venue)
    fut = c.send_order(sid(c), SIDE_BUY, "0.00100", ask, f"vc-slow-{venue}")

    async def listed() -> list[str]:
        return [a.client_order_id for a in await c.open_orders(sid(c))]

    seen: list[str] = []

    async def poll() -> bool:
        seen[:] = await listed()
        return f"vc-slow-{venue}" in seen

    deadline = asyncio.get_running_loop().time() + DEADLINE_S
    while not await poll():
        assert asyncio.get_running_loop().time() < deadline, seen
        await asyncio.sleep(0.02)
    cancelled = await c.cancel_all(sid(c))
    assert [(x.client_order_id, x.status) for x in cancelled] == [(f"vc-slow-{venue}", "CANCELED")]
    a = await asyncio.wait_for(fut, DEADLINE_S)
    assert a.executed_qty == 0 and a.client_order_id == f"vc-slow-{venue}"
    q = await c.query_order(sid(c), f"vc-slow-{venue}")
    assert (q.status, q.executed_qty) == ("CANCELED", D(0))


async def test_timeout_is_unknown_and_the_pool_recovers(still_sim: Simulator) -> None:
    # One connection: the timed-out order's late answer would hold it for 3 s unless it is replaced.
    c = make_client(still_sim, "binance", timeout_s=0.5, connections=1)
    try:
        await asyncio.wait_for(c.start(), DEADLINE_S)
        still_sim.inject_order_fault("binance", "slow", seconds=3.0)
        a = await buy_at_ask(still_sim, c, "vc-timeout")
        assert (a.kind, a.status, a.http_status) == ("unknown", "UNKNOWN", 0)
        assert not c.reachable
        q = await c.query_order(sid(c), "vc-timeout")  # the venue has it (NEW until it matches)
        assert q.kind == "ok" and q.status in ("NEW", "FILLED") and c.reachable
        assert c.pool.connects == 2
        single = await c.cancel_order(sid(c), "vc-timeout")
        assert single.kind == "ok" and single.status == "CANCELED"
    finally:
        await c.close()


@pytest.mark.parametrize("venue", ["binance", "mexc"])
async def test_429_blocks_sending_until_retry_after(still_sim: Simulator, clients: dict[str, VenueClient],
                                                    venue: str) -> None:
    c = clients[venue]
    still_sim.inject_order_fault(venue, "rate_limit", seconds=1.0)
    a = await buy_at_ask(still_sim, c, f"vc-429-{venue}")
    assert (a.kind, a.status, a.http_status) == ("throttled", "REJECTED", 429)
    assert a.retry_after_s == 1.0
    assert c.budget.blocked() and c.budget.usage().blocked_until_ms_wall > 0
    # Refused locally while blocked: nothing reaches the venue, so it never bans us.
    b = await buy_at_ask(still_sim, c, f"vc-429b-{venue}")
    assert (b.kind, b.status, b.http_status) == ("throttled", "REJECTED", 0)
    with pytest.raises(VenueError) as err:
        await c.account()
    assert err.value.http_status == 429 and err.value.code == 0
    assert still_sim.venue(venue).stats().get("banned", 0) == 0
    await eventually_async(lambda: not c.budget.blocked(), timeout=DEADLINE_S, what="the Retry-After to pass")
    ok = await buy_at_ask(still_sim, c, f"vc-429c-{venue}")
    assert ok.kind == "ok"
    assert c.counters()["throttled"] == 1 and c.counters()["refused"] >= 2


async def test_local_order_budget_refuses_without_sending(still_sim: Simulator) -> None:
    c = make_client(still_sim, "binance", limits=RateLimits(orders_per_10s=2, budget_share=1.0))
    try:
        await asyncio.wait_for(c.start(), DEADLINE_S)
        answers = [await buy_at_ask(still_sim, c, f"vc-budget{i}") for i in range(3)]
        assert [a.kind for a in answers] == ["ok", "ok", "throttled"]
        assert answers[2].http_status == 0 and "budget" in answers[2].error_msg
        assert c.not_found(await c.query_order(sid(c), "vc-budget2"))  # never sent
    finally:
        await c.close()


async def test_start_waits_for_a_venue_that_starts_later(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="services.executor.venue_client")
    port = free_port()
    cfg = sim_config(tmp_path, {"mexc": {"rest_port": port}}, quotes_per_second=100.0)
    sim = Simulator(cfg, CREDS, emit_quotes=False)
    c = make_client(sim, "mexc", rest_url=f"http://127.0.0.1:{port}")
    starting = asyncio.get_running_loop().create_task(c.start())
    try:
        await eventually_async(lambda: caplog.text.count("venue not ready") >= 2, timeout=DEADLINE_S,
                               what="failed connection attempts")
        assert not starting.done() and not c.started
        async with sim:
            await asyncio.wait_for(starting, DEADLINE_S)
            assert c.started and c.rules
    finally:
        starting.cancel()
        await c.close()


async def test_a_refusal_at_start_is_raised_not_retried(still_sim: Simulator,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DRAIZER_BINANCE_API_SECRET", "wrong")
    c = make_client(still_sim, "binance")
    try:
        with pytest.raises(VenueError) as err:
            await asyncio.wait_for(c.start(), DEADLINE_S)
        assert err.value.code == -1022 and "wrong" not in str(err.value)
    finally:
        await c.close()


async def test_venue_headers_raise_our_counts(still_sim: Simulator, clients: dict[str, VenueClient]) -> None:
    b = clients["binance"]
    for i in range(5):  # another client on the same venue: our local counts cannot know about these
        assert (await place(still_sim, "binance", qty="0.00100", price=top(still_sim, "binance")[2],
                            client_order_id=f"other{i}")).status == 200
    await buy_at_ask(still_sim, b, "vc-hdr")
    usage = b.budget.usage()
    assert usage.orders_10s == 6 and usage.orders_1d == 6
    assert usage.weight_1m > 6  # the venue's weight count includes the other client's and our start-up


async def test_418_after_someone_ignored_a_429(still_sim: Simulator, clients: dict[str, VenueClient]) -> None:
    b = clients["binance"]
    still_sim.inject_order_fault("binance", "rate_limit", seconds=2.0)
    assert (await signed(still_sim, "binance", "GET", "/api/v3/account")).status == 429  # told to wait
    a = await buy_at_ask(still_sim, b, "vc-418")  # we did not hear it, but the venue holds it against us
    assert (a.kind, a.status, a.http_status) == ("throttled", "REJECTED", 418) and a.retry_after_s >= 1
    assert b.budget.banned and b.budget.blocked() and b.counters()["banned"] == 1


async def test_venue_rules_that_differ_from_the_config_are_logged(
    still_sim: Simulator, caplog: pytest.LogCaptureFixture
) -> None:
    symbols = tuple(msgspec.structs.replace(s, tick_size="0.1") if s.name == BTC else s for s in still_sim.cfg.symbols)
    cfg = msgspec.structs.replace(still_sim.cfg, symbols=symbols)
    mexc = next(v for v in cfg.venues if v.name == "mexc")
    venue = msgspec.structs.replace(mexc, rest_url=still_sim.rest_url("mexc"))
    c = VenueClient(venue, Registry(cfg), 5.0)
    caplog.set_level(logging.WARNING, logger="services.executor.venue_client")
    try:
        await asyncio.wait_for(c.start(), DEADLINE_S)
        assert c.rules_for(sid(c)).tick == D("0.01")  # the venue's rule applies
        assert "BTCUSDT: venue tick/step 0.01/0.00001 differ from the config's 0.1/0.00001" in caplog.text
    finally:
        await c.close()


@pytest.mark.parametrize(("venue", "code"), [("binance", -1021), ("mexc", 700003)])
async def test_a_refused_timestamp_resyncs_the_clock(still_sim: Simulator, clients: dict[str, VenueClient],
                                                     venue: str, code: int) -> None:
    c = clients[venue]
    c.clock_offset_ms = -60_000  # as if our clock had jumped a minute ahead of the venue's
    a = await buy_at_ask(still_sim, c, f"vc-ts-{venue}")
    assert (a.kind, a.error_code) == ("rejected", code)
    await eventually_async(lambda: abs(c.clock_offset_ms) < 1000, timeout=DEADLINE_S, what="the clock re-sync")
    assert (await buy_at_ask(still_sim, c, f"vc-ts2-{venue}")).kind == "ok"
