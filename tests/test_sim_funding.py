"""The simulator's perpetual venues: the funding model, Binance USD-M markPrice, MEXC contract funding,
their REST reads and the MEXC contract ping rule."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import msgspec
import pytest

from services.sim import ws_mexc_contract
from services.sim.app import Simulator
from services.sim.perp import MAX_RATE, FundingModel, next_funding_ms
from tests.conftest import eventually_async
from tests.sim_kit import CREDS, DEADLINE_S, Collector, connect, http, sim_config

PERIOD_MS = 8 * 3600 * 1000


@pytest.fixture
async def still(tmp_path: Path) -> AsyncIterator[Simulator]:
    # The venues' own 8 h period (the embedded demo settles every 60 s): the wire shapes below are the venues'.
    async with Simulator(sim_config(tmp_path, funding_period_s=PERIOD_MS // 1000), CREDS, emit_quotes=False) as s:
        s.emit(s.model.n_slots)
        yield s


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def datas(c: Collector) -> list[dict[str, object]]:
    return [d.get("data", d) for d in c.texts()]


# ----- the model
def test_funding_model_is_seeded_bounded_and_mean_reverting(tmp_path: Path) -> None:
    sim = sim_config(tmp_path).sim
    a, b = FundingModel(sim, 3), FundingModel(sim, 3)
    other = FundingModel(msgspec.structs.replace(sim, seed=sim.seed + 1), 3)
    walk = []
    for _ in range(2000):
        a.step()
        b.step()
        other.step()
        walk.append(a.rates[0])
    assert a.rates == b.rates != other.rates
    assert all(-MAX_RATE <= r <= MAX_RATE for r in walk)
    assert abs(sum(walk) / len(walk) - sim.funding_rate_mean) < 5 * sim.funding_rate_vol
    assert len(set(walk)) > 1000
    p0, p1 = a.point(0, 0, 8, 100.0, 0), a.point(0, 1, 6, 100.0, 0)
    assert p0.rate != p1.rate and p0.mark == pytest.approx(100.0 * (1 + sim.perp_basis_bps / 1e4))
    assert next_funding_ms(PERIOD_MS + 1, 8 * 3600) == 2 * PERIOD_MS and next_funding_ms(0, 8 * 3600) == PERIOD_MS


# ----- Binance USD-M
async def test_binance_mark_price_stream_shape(still: Simulator) -> None:
    sim = still
    assert sim.ws_url("binance_perp").endswith("/market/stream")
    url = sim.ws_url("binance_perp") + "?streams=btcusdt@markPrice@1s/ethusdt@markPrice"
    t, c = await connect(url)
    try:
        await eventually_async(lambda: sim.venue("binance_perp").stream.connections, DEADLINE_S, "connected")
        for _ in range(3):
            sim.push_funding()
        await eventually_async(lambda: len(c.frames) == 4, DEADLINE_S, "3 fast + 1 slow")
        frames = c.texts()
        assert [f["stream"] for f in frames].count("ethusdt@markPrice") == 1  # every third push
        last = [f for f in frames if f["stream"] == "btcusdt@markPrice@1s"][-1]
        d = last["data"]
        assert list(d) == ["e", "E", "s", "p", "i", "P", "r", "T"]
        assert d["e"] == "markPriceUpdate" and d["s"] == "BTCUSDT" and abs(d["E"] - now_ms()) < 60_000
        rate, next_ms, mark = sim.funding("binance_perp", "BTCUSDT")
        assert (d["r"], d["T"], d["p"]) == (rate, next_ms, mark)
        assert all(len(d[k].split(".")[1]) == 8 for k in ("p", "i", "P", "r"))
        assert d["T"] % PERIOD_MS == 0 and 0 < d["T"] - now_ms() <= PERIOD_MS
        mid = sim.model.mid(sim.venue("binance").book.index["BTCUSDT"])
        assert float(d["i"]) == pytest.approx(mid) and float(d["p"]) == pytest.approx(mid * 1.0003)
    finally:
        t.disconnect()


async def test_binance_futures_paths_and_control(still: Simulator) -> None:
    sim = still
    port = sim.venue("binance_perp").stream.port
    t1, raw = await connect(f"ws://127.0.0.1:{port}/ws/solusdt@markPrice@1s")
    t2, comb = await connect(f"ws://127.0.0.1:{port}/stream?streams=solusdt@markPrice@1s")
    t3, ctl = await connect(f"ws://127.0.0.1:{port}/ws")
    try:
        ctl.send('{"method":"SUBSCRIBE","params":["xrpusdt@markPrice@1s","adausdt@markPrice@1s"],"id":7}')
        ctl.send('{"method":"LIST_SUBSCRIPTIONS","id":8}')
        await eventually_async(lambda: len(ctl.frames) == 2, DEADLINE_S, "replies")
        assert ctl.texts() == [{"result": None, "id": 7},
                               {"result": ["xrpusdt@markPrice@1s", "adausdt@markPrice@1s"], "id": 8}]
        sim.push_funding()
        await eventually_async(lambda: raw.frames and comb.frames and len(ctl.frames) == 3, DEADLINE_S, "pushes")
        assert json.loads(raw.frames[0][1])["s"] == "SOLUSDT"  # bare
        assert json.loads(comb.frames[0][1])["stream"] == "solusdt@markPrice@1s"
        assert json.loads(ctl.frames[2][1])["s"] == "XRPUSDT"  # ADA is not listed on the perp venue
    finally:
        for t in (t1, t2, t3):
            t.disconnect()


async def test_binance_premium_index(still: Simulator) -> None:
    sim = still
    before = json.loads((await http(sim, "binance_perp", "GET", "/fapi/v1/premiumIndex?symbol=BTCUSDT")).body)
    rate, next_ms, mark = sim.funding("binance_perp", "BTCUSDT")
    assert (before["lastFundingRate"], before["nextFundingTime"], before["markPrice"]) == (rate, next_ms, mark)
    sim.push_funding()
    body = json.loads((await http(sim, "binance_perp", "GET", "/fapi/v1/premiumIndex?symbol=BTCUSDT")).body)
    assert list(body) == ["symbol", "markPrice", "indexPrice", "estimatedSettlePrice", "lastFundingRate",
                          "interestRate", "nextFundingTime", "time"]
    rate, next_ms, mark = sim.funding("binance_perp", "BTCUSDT")
    assert (body["symbol"], body["lastFundingRate"], body["nextFundingTime"], body["markPrice"]) == (
        "BTCUSDT", rate, next_ms, mark)
    assert isinstance(body["time"], int) and isinstance(body["interestRate"], str)
    everything = json.loads((await http(sim, "binance_perp", "GET", "/fapi/v1/premiumIndex")).body)
    assert [x["symbol"] for x in everything] == list(sim.cfg.venues[2].symbols)
    bad = await http(sim, "binance_perp", "GET", "/fapi/v1/premiumIndex?symbol=ADAUSDT")
    assert (bad.status, json.loads(bad.body)) == (400, {"code": -1121, "msg": "Invalid symbol."})


# ----- MEXC contract
async def test_mexc_contract_ping_subscribe_and_push(still: Simulator) -> None:
    sim = still
    assert sim.ws_url("mexc_perp").endswith("/edge")
    t, c = await connect(sim.ws_url("mexc_perp"))
    try:
        c.send('{"method":"ping"}')
        c.send('{"method":"sub.funding.rate","param":{"symbol":"BTC_USDT"}}')
        c.send('{"method":"sub.funding.rate","param":{"symbol":"NOPE_USDT"}}')
        await eventually_async(lambda: len(c.frames) == 3, DEADLINE_S, "replies")
        pong, ack, err = c.texts()
        assert list(pong) == ["channel", "data"] and pong["channel"] == "pong" and abs(pong["data"] - now_ms()) < 60_000
        assert list(ack) == ["channel", "data", "ts"] and (ack["channel"], ack["data"]) == ("rs.sub.funding.rate",
                                                                                              "success")
        assert err["channel"] == "rs.error" and "NOPE_USDT" in err["data"] and isinstance(err["ts"], int)
        sim.push_funding()
        await eventually_async(lambda: len(c.frames) == 4, DEADLINE_S, "push")
        raw = c.frames[3][1]
        assert b"e-" not in raw  # plain decimals, as the venue writes them
        push = json.loads(raw)
        assert list(push) == ["channel", "data", "ts"] and push["channel"] == "push.funding.rate"
        assert list(push["data"]) == ["symbol", "rate", "nextSettleTime"]
        rate, next_ms, _ = sim.funding("mexc_perp", "BTCUSDT")
        assert push["data"]["symbol"] == "BTC_USDT" and isinstance(push["data"]["rate"], float)
        assert f'{push["data"]["rate"]:.8f}' == rate and push["data"]["nextSettleTime"] == next_ms
        assert rate != sim.funding("binance_perp", "BTCUSDT")[0]  # each venue has its own offset
    finally:
        t.disconnect()


async def test_mexc_contract_rest_funding_rate(still: Simulator) -> None:
    sim = still
    sim.push_funding()
    resp = await http(sim, "mexc_perp", "GET", "/api/v1/contract/funding_rate/ETH_USDT")
    assert b"e-" not in resp.body
    body = json.loads(resp.body)
    assert list(body) == ["success", "code", "data"] and body["success"] is True and body["code"] == 0
    d = body["data"]
    assert list(d) == ["symbol", "fundingRate", "maxFundingRate", "minFundingRate", "collectCycle",
                       "nextSettleTime", "timestamp"]
    rate, next_ms, _ = sim.funding("mexc_perp", "ETH_USDT")
    assert d["symbol"] == "ETH_USDT" and f'{d["fundingRate"]:.8f}' == rate and d["nextSettleTime"] == next_ms
    assert (d["maxFundingRate"], d["minFundingRate"], d["collectCycle"]) == (0.003, -0.003, 8)
    bad = json.loads((await http(sim, "mexc_perp", "GET", "/api/v1/contract/funding_rate/ADA_USDT")).body)
    assert bad["success"] is False and bad["code"] != 0


async def test_mexc_contract_drops_a_link_that_never_pings(
    still: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ws_mexc_contract, "PING_TIMEOUT_S", 0.5)
    t, c = await connect(still.ws_url("mexc_perp"))
    t2, c2 = await connect(still.ws_url("mexc_perp"))
    try:
        start = time.monotonic()
        while not t.is_disconnected:  # the second link keeps pinging until the first is dropped
            assert time.monotonic() - start < DEADLINE_S, "the silent link was never dropped"
            n = len(c2.frames)
            c2.send('{"method":"ping"}')
            await eventually_async(lambda n=n: len(c2.frames) > n, DEADLINE_S, "pong")
        assert time.monotonic() - start >= 0.4
        assert not t2.is_disconnected and c.frames == []
    finally:
        t.disconnect()
        t2.disconnect()


async def test_funding_pushes_on_the_timer(tmp_path: Path) -> None:
    cfg = sim_config(tmp_path, funding_push_interval_ms=20)
    async with Simulator(cfg, CREDS) as sim:
        t, c = await connect(sim.ws_url("binance_perp") + "?streams=bnbusdt@markPrice@1s")
        try:
            await eventually_async(lambda: len(c.frames) >= 3, DEADLINE_S, "pushes")
            rates = {d["r"] for d in datas(c)}
            assert sim.funding_ticks >= 3 and len(rates) >= 2
        finally:
            t.disconnect()
