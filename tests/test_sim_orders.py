"""The simulated exchange's REST API over real sockets: signed orders, fills, errors, and the sim process."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import pytest

from services.sim.app import Simulator
from shared.config import parse_config
from shared.http.client import HttpPool, HttpResponse
from shared.venues import order_format
from shared.venues.common import OrderResult
from tests.conftest import make_config_dict
from tests.sim_kit import (
    CREDS,
    DEADLINE_S,
    REPO,
    balances,
    error_of,
    http,
    query_order,
    send_order,
    sim_config,
    top,
)


# ----- REST
@pytest.mark.parametrize(
    ("venue", "code"), [("binance", -1022), ("mexc", 700002)]
)
async def test_bad_signature_gets_the_venue_error(still_sim: Simulator, venue: str, code: int) -> None:
    resp = await send_order(still_sim, venue, secret="wrong", price="97000.00", qty="0.00100")
    assert resp.status == 400
    assert json.loads(resp.body) == {"code": code, "msg": "Signature for this request is not valid."}


async def test_binance_ioc_buy_at_the_ask_fills_with_fees_and_moves_balances(still_sim: Simulator) -> None:
    sim = still_sim
    before = await balances(sim, "binance")
    _, _, ask, _ = top(sim, "binance")
    resp = await send_order(sim, "binance", price=ask, qty="0.00100", client_order_id="buy1")
    assert resp.status == 200, resp.body
    assert {"x-mbx-used-weight-1m", "x-mbx-order-count-10s", "x-mbx-order-count-1d"} <= set(resp.headers)
    body = json.loads(resp.body)
    assert body["status"] == "FILLED" and body["executedQty"] == "0.00100000"
    assert body["fills"] == [{
        "price": f"{Decimal(ask):.8f}", "qty": "0.00100000", "commission": "0.00000100",
        "commissionAsset": "BTC", "tradeId": body["fills"][0]["tradeId"],
    }]
    r = order_format("binance").parse_order_response(resp.status, resp.body, "BTC")
    assert r.ok and r.status == "FILLED" and r.filled_qty == pytest.approx(0.001)
    assert r.avg_price == pytest.approx(float(ask)) and r.fee_usd == pytest.approx(0.000001 * float(ask))
    after = await balances(sim, "binance")
    assert after["BTC"] - before["BTC"] == Decimal("0.00100") - Decimal("0.00000100")
    assert before["USDT"] - after["USDT"] == Decimal(ask) * Decimal("0.00100")

    q = await query_order(sim, "binance", "buy1")
    assert q.status == 200
    assert order_format("binance").parse_order_response(q.status, q.body, "BTC").status == "FILLED"


async def test_binance_ioc_remainders_expire(still_sim: Simulator) -> None:
    sim = still_sim
    bid, _, ask, ask_qty = top(sim, "binance")
    too_much = format(Decimal(ask_qty) * 2, "f")
    partial = json.loads((await send_order(sim, "binance", price=ask, qty=too_much)).body)
    assert partial["status"] == "EXPIRED" and Decimal(partial["executedQty"]) == Decimal(ask_qty)
    # the top's quantity was taken: nothing left at that ask until the next quote
    empty = json.loads((await send_order(sim, "binance", price=ask, qty="0.00100")).body)
    assert empty["status"] == "EXPIRED" and Decimal(empty["executedQty"]) == 0 and empty["fills"] == []
    above = json.loads((await send_order(sim, "binance", side="SELL", price=ask, qty="0.00100")).body)
    assert Decimal(ask) > Decimal(bid)
    assert above["status"] == "EXPIRED" and Decimal(above["executedQty"]) == 0  # a sell above the bid


@pytest.mark.parametrize(
    ("order", "expected"),
    [
        ({"qty": "0.000015"}, (400, -1013, "Filter failure: LOT_SIZE")),
        ({"price": "97000.015"}, (400, -1013, "Filter failure: PRICE_FILTER")),
        ({"price": "97000.000000001"}, (400, -1111, "Parameter 'price' has too much precision.")),
        ({"qty": "0.00001"}, (400, -1013, "Filter failure: NOTIONAL")),
        ({"symbol": "FOOUSDT"}, (400, -1121, "Invalid symbol.")),
        ({"qty": "1000.00000"}, (400, -2010, "Account has insufficient balance for requested action.")),
        ({"ts_offset_ms": -60_000}, (400, -1021, "Timestamp for this request is outside of the recvWindow.")),
        ({"ts_offset_ms": 5_000}, (400, -1021, "Timestamp for this request is outside of the recvWindow.")),
    ],
)
async def test_binance_order_errors(
    still_sim: Simulator, order: dict[str, Any], expected: tuple[int, int, str]
) -> None:
    fields: dict[str, Any] = {"price": "97000.00", "qty": "0.00100", **order}
    resp = await send_order(still_sim, "binance", **fields)
    assert error_of(resp) == expected


async def test_binance_duplicate_client_order_id_and_unknown_order(still_sim: Simulator) -> None:
    sim = still_sim
    first = await send_order(sim, "binance", price="90000.00", qty="0.00100", client_order_id="dup1")
    assert first.status == 200
    again = await send_order(sim, "binance", price="90000.00", qty="0.00100", client_order_id="dup1")
    assert error_of(again) == (400, -2010, "Duplicate order sent.")
    assert error_of(await query_order(sim, "binance", "nope")) == (400, -2013, "Order does not exist.")


async def test_unknown_api_key_is_refused(still_sim: Simulator) -> None:
    resp = await http(still_sim, "binance", "GET", "/sim/balances", [("X-MBX-APIKEY", "stranger")])
    assert error_of(resp) == (401, -2015, "Invalid API-key, IP, or permissions for action.")
    resp = await http(still_sim, "mexc", "GET", "/sim/balances")
    assert error_of(resp) == (400, 700001, "API-key format invalid.")


async def test_latency_is_split_in_halves_with_seeded_jitter(tmp_path: Path) -> None:
    settings = {"binance": {"latency_ms": 200.0, "latency_jitter_ms": 100.0}}
    async with Simulator(sim_config(tmp_path, settings), CREDS, emit_quotes=False) as sim:
        sim.emit(sim.model.n_slots)
        rest = sim.venue("binance").rest
        draws = [rest._rng.random() for _ in range(3)]
        rest._rng.seed(f"latency:{sim.cfg.sim.seed}:binance")  # seeded: the same draws again
        assert [rest._rng.random() for _ in range(3)] == draws
        started = time.monotonic()
        assert (await send_order(sim, "binance", price="90000.00", qty="0.00100")).status == 200
        assert time.monotonic() - started >= 0.2  # both halves, whatever the jitter
        started = time.monotonic()
        assert (await query_order(sim, "binance", "none")).status == 400
        assert time.monotonic() - started >= 0.2


def _result(venue_kind: str, resp: HttpResponse) -> OrderResult:
    return order_format(venue_kind).parse_order_response(resp.status, resp.body, "BTC")


async def test_mexc_ioc_ack_then_query_and_quote_fees(still_sim: Simulator) -> None:
    sim = still_sim
    before = await balances(sim, "mexc")
    _, _, ask, ask_qty = top(sim, "mexc")
    resp = await send_order(sim, "mexc", price=ask, qty="0.00100", client_order_id="m1")
    assert resp.status == 200, resp.body
    ack = json.loads(resp.body)
    assert set(ack) == {"symbol", "orderId", "orderListId", "price", "origQty", "type", "side", "transactTime"}
    assert isinstance(ack["orderId"], str) and ack["type"] == "IMMEDIATE_OR_CANCEL"
    assert _result("mexc", resp).needs_query

    r = _result("mexc", await query_order(sim, "mexc", "m1"))
    assert r.ok and r.status == "FILLED" and r.order_id == ack["orderId"]
    assert r.filled_qty == pytest.approx(0.001) and r.avg_price == pytest.approx(float(ask))
    after = await balances(sim, "mexc")
    notional = Decimal(ask) * Decimal("0.00100")
    assert after["BTC"] - before["BTC"] == Decimal("0.00100")  # MEXC charges the quote asset
    fee = (notional * Decimal("0.0005")).quantize(Decimal("1e-8"), rounding="ROUND_UP")
    assert before["USDT"] - after["USDT"] == notional + fee

    too_much = format(Decimal(ask_qty) * 2, "f")
    await send_order(sim, "mexc", price=ask, qty=too_much, client_order_id="m2")
    partial = _result("mexc", await query_order(sim, "mexc", "m2"))
    assert partial.status == "PARTIALLY_CANCELED" and partial.filled_qty == pytest.approx(float(ask_qty) - 0.001)
    await send_order(sim, "mexc", price=ask, qty="0.00100", client_order_id="m3")
    assert _result("mexc", await query_order(sim, "mexc", "m3")).status == "CANCELED"


@pytest.mark.parametrize(
    ("order", "code"),
    [({"qty": "0.000015"}, 33333), ({"symbol": "FOOUSDT"}, 10007), ({"qty": "1000.00000"}, 10101),
     ({"ts_offset_ms": -60_000}, 700003), ({"price": "97000.001"}, 33333)],
)
async def test_mexc_order_errors(still_sim: Simulator, order: dict[str, Any], code: int) -> None:
    resp = await send_order(still_sim, "mexc", **{"price": "97000.00", "qty": "0.00100", **order})
    status, got, _ = error_of(resp)
    assert (status, got) == (400, code)
    assert not _result("mexc", resp).ok


async def test_time_exchange_info_and_stats(still_sim: Simulator) -> None:
    sim = still_sim
    for venue in ("binance", "mexc"):
        t = json.loads((await http(sim, venue, "GET", "/api/v3/time")).body)
        assert abs(t["serverTime"] - time.time() * 1000) < 5000
    info = json.loads((await http(sim, "binance", "GET", '/api/v3/exchangeInfo?symbols=["BTCUSDT","ETHUSDT"]')).body)
    assert [s["symbol"] for s in info["symbols"]] == ["BTCUSDT", "ETHUSDT"]
    filters = {f["filterType"]: f for f in info["symbols"][0]["filters"]}
    assert filters["PRICE_FILTER"]["tickSize"] == "0.01000000"
    assert filters["LOT_SIZE"]["stepSize"] == "0.00001000"
    assert filters["NOTIONAL"]["minNotional"] == "5.00000000"
    bad = await http(sim, "binance", "GET", "/api/v3/exchangeInfo?symbol=FOOUSDT")
    assert error_of(bad) == (400, -1121, "Invalid symbol.")
    info = json.loads((await http(sim, "mexc", "GET", "/api/v3/exchangeInfo?symbol=BTCUSDT")).body)
    (s,) = info["symbols"]
    assert s["filters"] == [] and s["baseSizePrecision"] == "0.00001" and s["takerCommission"] == "0.0005"
    await send_order(sim, "mexc", price="90000.00", qty="0.00100")
    stats = json.loads((await http(sim, "mexc", "GET", "/sim/stats")).body)
    assert stats["venue"] == "mexc" and stats["orders"] == 1 and stats["fills"] == 0
    assert stats["quotes"]["BTCUSDT"] == 1 and stats["requests"] >= 2


async def test_sim_process_serves_and_exits_cleanly_on_sigterm(tmp_path: Path) -> None:
    data = make_config_dict(tmp_path)
    config = tmp_path / "sim.toml"
    config.write_bytes(msgspec.toml.encode(data))
    cfg = parse_config(config.read_bytes())
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    for v in cfg.venues:
        if v.name in CREDS and v.api_key_env:  # a venue without key variables takes no orders
            env[v.api_key_env], env[v.api_secret_env] = CREDS[v.name]
    proc = subprocess.Popen([sys.executable, "-m", "services.sim", "--config", str(config)], env=env, cwd=REPO)
    try:
        pool = HttpPool(cfg.venues[0].rest_url, size=1)
        answered: list[HttpResponse] = []

        async def poll() -> None:
            with contextlib.suppress(ConnectionError, TimeoutError):  # not listening yet
                answered.append(await asyncio.wait_for(pool.request("GET", "/api/v3/time", []), 2))

        deadline = time.monotonic() + DEADLINE_S
        while not answered and time.monotonic() < deadline and proc.poll() is None:
            await poll()
            if not answered:
                await asyncio.sleep(0.05)
        await pool.close()
        assert answered and answered[0].status == 200
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(DEADLINE_S) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
