"""The simulated exchange over real sockets: the seeded price model and both WebSocket formats."""

from __future__ import annotations

import json
import time
from pathlib import Path

import picows
import pytest

from services.sim.app import Simulator
from services.sim.market import SimQuote
from services.sim.units import SymbolSpec
from shared.venues import market_format
from shared.venues.common import TopOfBook
from tests.conftest import eventually_async
from tests.sim_kit import DEADLINE_S, binance_url, connect, mexc_subscribe, price_model, sim_config

# ----- the price model


def test_same_seed_gives_the_same_quotes(tmp_path: Path) -> None:
    cfg = sim_config(tmp_path)
    a, b, c = price_model(cfg), price_model(cfg), price_model(cfg, seed=cfg.sim.seed + 1)
    first = [a.next_quote() for _ in range(3000)]
    assert first == [b.next_quote() for _ in range(3000)]
    assert first != [c.next_quote() for _ in range(3000)]


def test_quotes_are_on_tick_and_step_with_ask_above_bid(tmp_path: Path) -> None:
    cfg = sim_config(tmp_path)
    model = price_model(cfg)
    specs = SymbolSpec.all_of(cfg.symbols)
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
    model = price_model(cfg)
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
        model = price_model(sim.cfg)
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


