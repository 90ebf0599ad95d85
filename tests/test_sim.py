"""The simulated exchange over real sockets: seeded quotes, both WebSocket formats, signed REST orders."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import picows
import pytest

from services.sim.app import Simulator
from services.sim.market import PriceModel, SimQuote
from services.sim.units import SymbolSpec
from shared.config import SPOT_KINDS, Config, parse_config
from shared.http.client import HttpPool, HttpResponse
from shared.venues import market_format, order_format
from shared.venues.common import OrderResult, TopOfBook
from tests.conftest import eventually_async, make_config_dict

REPO = Path(__file__).resolve().parents[1]
CREDS = {"binance": ("bkey", "bsecret"), "mexc": ("mkey", "msecret")}
DEADLINE_S = 20.0


def sim_config(tmp_path: Path, **sim: Any) -> Config:
    """Port 0 everywhere: the in-process sim binds whatever is free (no race with other test runs);
    clients ask it for ``ws_url``/``rest_url``."""
    data = make_config_dict(tmp_path, sim=sim)
    for sv in data["sim"]["venues"]:
        sv["ws_port"] = sv["rest_port"] = 0
    return parse_config(msgspec.toml.encode(data))


@pytest.fixture
async def sim(tmp_path: Path) -> AsyncIterator[Simulator]:
    """Quotes flowing at the configured rate."""
    async with Simulator(sim_config(tmp_path), CREDS) as s:
        yield s


@pytest.fixture
async def still_sim(tmp_path: Path) -> AsyncIterator[Simulator]:
    """No timer: the test moves the market with ``emit`` and knows what an order will meet."""
    async with Simulator(sim_config(tmp_path), CREDS, emit_quotes=False) as s:
        s.emit(s.model.n_slots)  # one quote for every (venue, symbol)
        yield s


# ----- small clients
class Collector(picows.WSListener):  # type: ignore[misc]
    def __init__(self, hello: Sequence[str] = ()) -> None:
        self.hello = hello
        self.frames: list[tuple[bool, bytes]] = []  # (binary, payload)
        self.transport: picows.WSTransport | None = None

    def on_ws_connected(self, transport: picows.WSTransport) -> None:
        self.transport = transport
        for text in self.hello:
            transport.send(picows.WSMsgType.TEXT, text.encode())

    def on_ws_frame(self, transport: picows.WSTransport, frame: picows.WSFrame) -> None:
        if frame.msg_type in (picows.WSMsgType.TEXT, picows.WSMsgType.BINARY):
            self.frames.append((frame.msg_type == picows.WSMsgType.BINARY, frame.get_payload_as_bytes()))

    def send(self, text: str) -> None:
        assert self.transport is not None
        self.transport.send(picows.WSMsgType.TEXT, text.encode())

    def texts(self) -> list[Any]:
        return [json.loads(p) for binary, p in self.frames if not binary]


def binance_url(ws_url: str, symbols: Sequence[str]) -> str:
    return ws_url + "?streams=" + "/".join(f"{s.lower()}@bookTicker" for s in symbols)


def mexc_subscribe(symbols: Sequence[str]) -> list[str]:
    channels = ",".join(f'"spot@public.aggre.bookTicker.v3.api.pb@100ms@{s}"' for s in symbols)
    return [f'{{"method":"SUBSCRIPTION","params":[{channels}]}}']


async def connect(url: str, hello: Sequence[str] = ()) -> tuple[picows.WSTransport, Collector]:
    transport, listener = await picows.ws_connect(lambda: Collector(hello), url)
    return transport, listener


async def http(
    sim: Simulator, venue: str, method: str, path: str, headers: list[tuple[str, str]] | None = None
) -> HttpResponse:
    pool = HttpPool(sim.rest_url(venue), size=1)
    try:
        return await asyncio.wait_for(pool.request(method, path, headers or []), DEADLINE_S)
    finally:
        await pool.close()


async def send_order(sim: Simulator, venue: str, *, secret: str | None = None, ts_offset_ms: int = 0,
                     **order: str) -> HttpResponse:
    kind = sim.venue(venue).venue.kind
    key, real_secret = CREDS[venue]
    fields = {"symbol": "BTCUSDT", "side": "BUY", "client_order_id": f"t{time.time_ns():x}", **order}
    req = order_format(kind).build_new_order(
        symbol=fields["symbol"], side=fields["side"], price=fields["price"], qty=fields["qty"],
        client_order_id=fields["client_order_id"], api_key=key, api_secret=secret or real_secret,
        timestamp_ms=time.time_ns() // 1_000_000 + ts_offset_ms, recv_window_ms=5000,
    )
    pool = HttpPool(sim.rest_url(venue), size=1)
    try:
        return await asyncio.wait_for(pool.request(req.method, req.path, req.headers, req.body), DEADLINE_S)
    finally:
        await pool.close()


async def query_order(sim: Simulator, venue: str, client_order_id: str, symbol: str = "BTCUSDT") -> HttpResponse:
    kind = sim.venue(venue).venue.kind
    key, secret = CREDS[venue]
    req = order_format(kind).build_query_order(
        symbol=symbol, client_order_id=client_order_id, api_key=key, api_secret=secret,
        timestamp_ms=time.time_ns() // 1_000_000, recv_window_ms=5000,
    )
    return await http(sim, venue, req.method, req.path, req.headers)


async def balances(sim: Simulator, venue: str) -> dict[str, Decimal]:
    header = "X-MBX-APIKEY" if venue == "binance" else "X-MEXC-APIKEY"
    resp = await http(sim, venue, "GET", "/sim/balances", [(header, CREDS[venue][0])])
    assert resp.status == 200, resp.body
    return {k: Decimal(v) for k, v in json.loads(resp.body).items()}


def top(sim: Simulator, venue: str, symbol: str = "BTCUSDT") -> tuple[str, str, str, str]:
    """The venue's current (bid, bid qty, ask, ask qty) as wire text."""
    book = sim.venue(venue).book
    q = book.top(book.index[symbol])
    assert q is not None
    spec = book.specs[q.symbol]
    return spec.price_text(q.bid), spec.qty_text(q.bid_qty), spec.price_text(q.ask), spec.qty_text(q.ask_qty)


def error_of(resp: HttpResponse) -> tuple[int, int, str]:
    body = json.loads(resp.body)
    assert set(body) == {"code", "msg"}, body
    return resp.status, body["code"], body["msg"]


# ----- the price model
def _model(cfg: Config, seed: int | None = None) -> PriceModel:
    sim_cfg = cfg.sim if seed is None else msgspec.structs.replace(cfg.sim, seed=seed)
    kinds = {v.name: v.kind for v in cfg.venues}
    spreads = [v.spread_bps for v in cfg.sim.venues if kinds[v.venue] in SPOT_KINDS]  # perps get no quotes
    return PriceModel(sim_cfg, [SymbolSpec.of(s) for s in cfg.symbols], spreads)


def test_same_seed_gives_the_same_quotes(tmp_path: Path) -> None:
    cfg = sim_config(tmp_path)
    a, b, c = _model(cfg), _model(cfg), _model(cfg, seed=cfg.sim.seed + 1)
    first = [a.next_quote() for _ in range(3000)]
    assert first == [b.next_quote() for _ in range(3000)]
    assert first != [c.next_quote() for _ in range(3000)]


def test_quotes_are_on_tick_and_step_with_ask_above_bid(tmp_path: Path) -> None:
    cfg = sim_config(tmp_path)
    model = _model(cfg)
    specs = [SymbolSpec.of(s) for s in cfg.symbols]
    last_seq: dict[tuple[int, int], int] = {}
    for _ in range(5000):
        q = model.next_quote()
        spec = specs[q.symbol]
        assert q.ask > q.bid > 0
        assert q.bid % spec.tick == 0 and q.ask % spec.tick == 0
        assert q.bid_qty % spec.step == 0 and q.ask_qty % spec.step == 0 and q.bid_qty > 0 and q.ask_qty > 0
        assert q.seq == last_seq.get((q.venue, q.symbol), 0) + 1
        last_seq[(q.venue, q.symbol)] = q.seq


def test_dislocations_open_cross_venue_spreads_beyond_fees(tmp_path: Path) -> None:
    cfg = sim_config(tmp_path)
    model = _model(cfg)
    fees_bps = sum(v.taker_fee for v in cfg.venues) * 1e4
    latest: dict[tuple[int, int], SimQuote] = {}
    widest = 0.0
    for _ in range(40_000):
        q = model.next_quote()
        latest[(q.venue, q.symbol)] = q
        other = latest.get((1 - q.venue, q.symbol))
        if other is not None:
            for buy, sell in ((q, other), (other, q)):
                widest = max(widest, (sell.bid - buy.ask) / buy.ask * 1e4)
    assert widest > fees_bps, f"widest cross-venue edge {widest:.1f} bps never beat fees {fees_bps:.1f} bps"


# ----- market data over WebSocket
async def test_subscribers_of_both_venues_receive_valid_frames(sim: Simulator) -> None:
    symbols = [s.name for s in sim.cfg.symbols]
    binance, mexc = market_format("binance"), market_format("mexc")
    tb, cb = await connect(binance_url(sim.ws_url("binance"), symbols))
    tm, cm = await connect(sim.ws_url("mexc"), mexc_subscribe(symbols))
    try:
        await eventually_async(lambda: len(cb.frames) >= 60 and len(cm.frames) >= 60, DEADLINE_S, "frames")
        seqs: dict[str, int] = {}
        for binary, payload in cb.frames:
            assert not binary
            assert set(json.loads(payload)) == {"stream", "data"}
            t = binance.parse(payload, binary)
            assert t is not None and t.symbol in symbols and 0 < t.bid < t.ask
            assert t.seq > seqs.get(t.symbol, 0)  # u increases per symbol
            seqs[t.symbol] = t.seq
        assert set(seqs) == set(symbols)
        assert cm.frames[0] == (False, b'{"id":0,"code":0,"msg":"' + ",".join(
            f"spot@public.aggre.bookTicker.v3.api.pb@100ms@{s}" for s in symbols).encode() + b'"}')
        tops = [mexc.parse(p, binary) for binary, p in cm.frames[1:]]
        assert all(binary for binary, _ in cm.frames[1:])
        assert all(isinstance(t, TopOfBook) and t.symbol in symbols and 0 < t.bid < t.ask for t in tops)
    finally:
        tb.disconnect()
        tm.disconnect()


async def test_wire_quotes_are_the_seeded_quotes(still_sim: Simulator) -> None:
    sim = still_sim
    symbols = [s.name for s in sim.cfg.symbols]
    fmt = market_format("binance")
    t, c = await connect(binance_url(sim.ws_url("binance"), symbols))
    try:
        await eventually_async(lambda: sim.venue("binance").stream.connections, DEADLINE_S, "subscribed")
        rounds = 3
        sim.emit(rounds * sim.model.n_slots)
        await eventually_async(lambda: len(c.frames) >= rounds * len(symbols), DEADLINE_S, "frames")
        got = [fmt.parse(p, False) for _, p in c.frames]
        # an independent model with the same seed, skipping the first round the fixture emitted
        model = _model(sim.cfg)
        specs = sim.specs
        expected = []
        for i in range((rounds + 1) * model.n_slots):
            q = model.next_quote()
            if i >= model.n_slots and q.venue == 0:
                sp = specs[q.symbol]
                expected.append(TopOfBook(sp.name, float(sp.price(q.bid)), float(sp.qty(q.bid_qty)),
                                          float(sp.price(q.ask)), float(sp.qty(q.ask_qty)), q.seq))
        assert got == expected
        assert got[-1] == sim.top_of_book("binance", got[-1].symbol)
    finally:
        t.disconnect()


async def test_binance_raw_stream_and_control_frames(still_sim: Simulator) -> None:
    sim = still_sim
    port = sim.venue("binance").stream.port
    t, c = await connect(f"ws://127.0.0.1:{port}/ws/btcusdt@bookTicker")
    try:
        c.send('{"method":"SUBSCRIBE","params":["ethusdt@bookTicker"],"id":1}')
        c.send('{"method":"LIST_SUBSCRIPTIONS","id":2}')
        c.send("{not json")
        c.send('{"method":"FOO","id":4}')
        await eventually_async(lambda: len(c.frames) >= 4, DEADLINE_S, "replies")
        replies = c.texts()
        assert replies[0] == {"result": None, "id": 1}
        assert replies[1] == {"result": ["btcusdt@bookTicker", "ethusdt@bookTicker"], "id": 2}
        assert replies[2]["code"] == 3 and replies[2]["msg"].startswith("Invalid JSON")
        assert replies[3]["code"] == 2 and replies[3]["id"] == 4 and "unknown variant `FOO`" in replies[3]["msg"]
        sim.emit(sim.model.n_slots)
        await eventually_async(lambda: len(c.frames) >= 6, DEADLINE_S, "data")
        data = c.texts()[4:]
        assert {d["s"] for d in data} == {"BTCUSDT", "ETHUSDT"}
        assert all(set(d) == {"u", "s", "b", "B", "a", "A"} for d in data)  # raw: no stream wrapper
    finally:
        t.disconnect()


async def test_mexc_ping_ack_and_blocked_channels(still_sim: Simulator) -> None:
    sim = still_sim
    t, c = await connect(sim.ws_url("mexc"))
    try:
        c.send('{"method":"PING"}')
        c.send('{"method":"SUBSCRIPTION","params":["spot@public.aggre.bookTicker.v3.api.pb@100ms@ETHUSDT"]}')
        c.send('{"method":"SUBSCRIPTION","params":["spot@public.deals.v3.api@BTCUSDT"]}')
        await eventually_async(lambda: len(c.frames) >= 3, DEADLINE_S, "replies")
        assert c.frames[0] == (False, b'{"id":0,"code":0,"msg":"PONG"}')
        assert c.frames[1] == (False, b'{"id":0,"code":0,"msg":"spot@public.aggre.bookTicker.v3.api.pb@100ms@ETHUSDT"}')
        assert "Blocked!" in c.texts()[2]["msg"]
        sim.emit(sim.model.n_slots)
        await eventually_async(lambda: len(c.frames) >= 4, DEADLINE_S, "data")
        from shared.venues.mexc.proto.push_data_pb2 import PushDataV3ApiWrapper

        binary, payload = c.frames[3]
        w = PushDataV3ApiWrapper.FromString(payload)
        assert binary and w.channel == "spot@public.aggre.bookTicker.v3.api.pb@100ms@ETHUSDT"
        assert w.symbol == "ETHUSDT" and abs(w.sendTime - time.time() * 1000) < 60_000
        assert market_format("mexc").parse(payload, True) == sim.top_of_book("mexc", "ETHUSDT")
    finally:
        t.disconnect()


async def test_unknown_websocket_paths_get_404(still_sim: Simulator) -> None:
    for url in (still_sim.ws_url("binance").replace("/stream", "/nope"), still_sim.ws_url("mexc") + "x"):
        with pytest.raises(picows.WSError, match="404"):
            await picows.ws_connect(picows.WSListener, url)


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
        if v.name in CREDS:  # perp venues take no orders and have no keys
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
