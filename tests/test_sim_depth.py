"""The simulator's L2 books: the pure book, Binance and MEXC depth streams, REST snapshots, and a local
book built by the venues' documented procedure that ends equal to the sim's."""

from __future__ import annotations

import itertools
import json
import random
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import pytest

from services.sim.app import Simulator
from services.sim.depth import DepthBook
from services.sim.market import PriceModel
from services.sim.units import SymbolSpec
from shared.venues.mexc.proto.push_data_pb2 import PushDataV3ApiWrapper
from tests.conftest import eventually_async
from tests.sim_kit import CREDS, DEADLINE_S, Collector, connect, http, price_model, sim_config

Levels = list[tuple[str, str]]


@pytest.fixture
async def still(tmp_path: Path) -> AsyncIterator[Simulator]:
    async with Simulator(sim_config(tmp_path), CREDS, emit_quotes=False) as s:
        yield s


def rounds(sim: Simulator, n: int = 1) -> None:
    """``n`` quotes for every (spot venue, symbol)."""
    sim.emit(n * sim.model.n_slots)


# ----- a client-side book, as the venues document it
class LocalBook:
    def __init__(self) -> None:
        self.id = -1
        self.bids: dict[str, str] = {}
        self.asks: dict[str, str] = {}

    def load(self, snapshot: dict[str, Any]) -> None:
        self.id = snapshot["lastUpdateId"]
        self.bids = dict(map(tuple, snapshot["bids"]))
        self.asks = dict(map(tuple, snapshot["asks"]))

    def apply(self, first: int, last: int, bids: Levels, asks: Levels) -> None:
        for side, levels in ((self.bids, bids), (self.asks, asks)):
            for price, qty in levels:
                if Decimal(qty) == 0:
                    side.pop(price, None)
                else:
                    side[price] = qty
        self.id = last

    def levels(self) -> tuple[int, Levels, Levels]:
        bids = sorted(self.bids.items(), key=lambda pq: Decimal(pq[0]), reverse=True)
        asks = sorted(self.asks.items(), key=lambda pq: Decimal(pq[0]))
        return self.id, bids, asks


def sync(book: LocalBook, snapshot: dict[str, Any], diffs: list[tuple[int, int, Levels, Levels]]) -> None:
    """Binance's procedure (MEXC's is the same with fromVersion/toVersion): drop what the snapshot holds,
    the first diff must straddle it, then every diff continues the previous one."""
    book.load(snapshot)
    applied = 0
    for first, last, bids, asks in diffs:
        if last <= book.id:
            continue
        if applied == 0:
            assert first <= book.id + 1 <= last, (first, book.id, last)
        else:
            assert first == book.id + 1, f"gap: {first} after {book.id}"
        book.apply(first, last, bids, asks)
        applied += 1
    assert applied


def binance_diffs(c: Collector) -> list[tuple[int, int, Levels, Levels]]:
    out = []
    for _, payload in c.frames:
        d = json.loads(payload)
        d = d.get("data", d)
        if d.get("e") == "depthUpdate":
            out.append((d["U"], d["u"], [tuple(x) for x in d["b"]], [tuple(x) for x in d["a"]]))
    return out


def mexc_diffs(c: Collector) -> list[tuple[int, int, Levels, Levels]]:
    out = []
    for binary, payload in c.frames:
        if not binary:
            continue
        w = PushDataV3ApiWrapper.FromString(payload)
        if w.WhichOneof("body") == "publicAggreDepths":
            d = w.publicAggreDepths
            out.append((int(d.fromVersion), int(d.toVersion), [(x.price, x.quantity) for x in d.bids],
                        [(x.price, x.quantity) for x in d.asks]))
    return out


# ----- the pure book
def _book(sim_cfg: Any, spec: SymbolSpec, seed: int = 1) -> DepthBook:
    return DepthBook(spec, levels=sim_cfg.depth_levels, gap_ticks=sim_cfg.level_gap_ticks,
                     top_qty_usd=sim_cfg.top_qty_usd, intervals=(100, 1000), rng=random.Random(seed))


def _run(tmp_path: Path, seed: int, n: int) -> tuple[DepthBook, list[Any]]:
    cfg = sim_config(tmp_path)
    model: PriceModel = price_model(cfg)
    spec = SymbolSpec.of(cfg.symbols[0])
    book = _book(cfg.sim, spec, seed)
    diffs = []
    for i in range(n):
        q = model.next_quote()
        while q.venue != 0 or q.symbol != 0:
            q = model.next_quote()
        book.apply(q)
        assert book.update_id == q.seq
        assert book.top(1)[1:] == ([(q.bid, q.bid_qty)], [(q.ask, q.ask_qty)])  # the matching book's top
        if i % 7 == 0:
            diffs.append(book.take_diff(100))
    return book, diffs


def test_book_is_deterministic_sorted_and_full(tmp_path: Path) -> None:
    a, da = _run(tmp_path, 1, 500)
    b, db = _run(tmp_path, 1, 500)
    c, _ = _run(tmp_path, 2, 500)
    assert a.top() == b.top() and da == db
    assert a.top()[1:] != c.top()[1:]
    update_id, bids, asks = a.top()
    levels = sim_config(tmp_path).sim.depth_levels
    assert update_id == 500 and len(bids) == len(asks) == levels
    assert [p for p, _ in bids] == sorted((p for p, _ in bids), reverse=True)
    assert [p for p, _ in asks] == sorted(p for p, _ in asks)
    assert bids[0][0] < asks[0][0]
    spec = a.spec
    gaps = [x[0] - y[0] for x, y in itertools.pairwise(bids)] + [
        y[0] - x[0] for x, y in itertools.pairwise(asks)]
    assert all(g % spec.tick == 0 and g > 0 for g in gaps)
    assert all(q > 0 and q % spec.step == 0 for _, q in bids + asks)


def test_diffs_chain_and_rebuild_the_book(tmp_path: Path) -> None:
    book, diffs = _run(tmp_path, 3, 300)
    local: dict[int, dict[int, int]] = {-1: {}, 1: {}}
    last = 0
    for d in [*diffs, book.take_diff(100)]:
        if d is None:
            continue
        assert d.first == last + 1
        last = d.last
        for sign, levels in ((-1, d.bids), (1, d.asks)):
            for p, q in levels:
                if q:
                    local[sign][p] = q
                else:
                    local[sign].pop(p, None)
    assert last == book.update_id
    assert sorted(local[-1].items(), reverse=True) == book.top()[1]
    assert sorted(local[1].items()) == book.top()[2]
    assert book.take_diff(100) is None  # nothing changed: nothing to push


# ----- Binance over the wire
async def test_binance_diff_payload_shape_and_ticker_ids(still: Simulator) -> None:
    sim = still
    url = sim.ws_url("binance") + "?streams=btcusdt@depth@100ms/btcusdt@bookTicker"
    t, c = await connect(url)
    try:
        await eventually_async(lambda: sim.venue("binance").stream.connections, DEADLINE_S, "connected")
        rounds(sim, 3)
        sim.flush_depth()
        await eventually_async(lambda: binance_diffs(c), DEADLINE_S, "a diff")
        frames = [json.loads(p) for _, p in c.frames]
        tickers = [f["data"] for f in frames if f["stream"] == "btcusdt@bookTicker"]
        (diff,) = [f for f in frames if f["stream"] == "btcusdt@depth@100ms"]
        assert list(diff) == ["stream", "data"]
        data = diff["data"]
        assert list(data) == ["e", "E", "s", "U", "u", "b", "a"]
        assert data["e"] == "depthUpdate" and data["s"] == "BTCUSDT" and isinstance(data["E"], int)
        update_id, bids, asks = sim.book_levels("binance", "BTCUSDT")
        assert data["U"] == 1 and data["u"] == update_id == tickers[-1]["u"] == 3
        assert [t["u"] for t in tickers] == [1, 2, 3]
        assert all(len(x) == 2 and all(isinstance(v, str) for v in x) for x in data["b"] + data["a"])
        live_bids = [x for x in data["b"] if Decimal(x[1])]  # best first; removed levels carry "0.00000"
        live_asks = [x for x in data["a"] if Decimal(x[1])]
        assert live_bids[0] == list(bids[0]) and live_asks[0] == list(asks[0])
        assert all("." in p and len(p.split(".")[1]) == 2 for p, _ in data["b"])  # the tick's decimals
        # nothing changed: nothing pushed
        before = len(c.frames)
        sim.flush_depth()
        rounds(sim, 1)
        await eventually_async(lambda: len(c.frames) > before, DEADLINE_S, "the next ticker")
        assert json.loads(c.frames[before][1])["stream"] == "btcusdt@bookTicker"
    finally:
        t.disconnect()


async def test_binance_local_book_equals_the_sim(still: Simulator) -> None:
    sim = still
    t, c = await connect(sim.ws_url("binance") + "?streams=ethusdt@depth@100ms/ethusdt@depth")
    try:
        await eventually_async(lambda: sim.venue("binance").stream.connections, DEADLINE_S, "connected")
        rounds(sim, 5)
        sim.flush_depth()
        resp = await http(sim, "binance", "GET", "/api/v3/depth?symbol=ETHUSDT&limit=5000")
        snapshot = json.loads(resp.body)
        for i in range(40):
            rounds(sim, 3)
            sim.flush_depth(100)
            if i % 10 == 9:
                sim.flush_depth(1000)
        update_id = sim.book_levels("binance", "ETHUSDT")[0]
        fast = lambda: [d for d in binance_diffs(c) if d[1] == update_id]  # noqa: E731
        await eventually_async(lambda: len(fast()) == 2, DEADLINE_S, "the last diffs")
        streams = [json.loads(p)["stream"] for _, p in c.frames]
        for name in ("ethusdt@depth@100ms", "ethusdt@depth"):
            diffs = [d for d, s in zip(binance_diffs(c), streams, strict=True) if s == name]
            for a, b in itertools.pairwise(diffs):
                assert b[0] == a[1] + 1  # U = previous u + 1
            book = LocalBook()
            sync(book, snapshot, diffs)
            assert book.levels() == sim.book_levels("binance", "ETHUSDT")
        assert sim.stats()["venues"][0]["depth_frames"] == len(streams)
    finally:
        t.disconnect()


async def test_binance_partial_depth_is_the_top_n(still: Simulator) -> None:
    sim = still
    port = sim.venue("binance").stream.port
    t, c = await connect(f"ws://127.0.0.1:{port}/ws/solusdt@depth5")
    try:
        c.send('{"method":"SUBSCRIBE","params":["solusdt@depth10@100ms","solusdt@depth20"],"id":1}')
        await eventually_async(lambda: c.frames, DEADLINE_S, "ack")
        assert c.texts()[0] == {"result": None, "id": 1}
        rounds(sim, 2)
        sim.flush_depth(100)
        await eventually_async(lambda: len(c.frames) == 2, DEADLINE_S, "depth10")
        sim.flush_depth(1000)
        await eventually_async(lambda: len(c.frames) == 4, DEADLINE_S, "depth5 and depth20")
        update_id, bids, asks = sim.book_levels("binance", "SOLUSDT")
        got = sorted((json.loads(p) for _, p in c.frames[1:]), key=lambda d: len(d["bids"]))
        for d, n in zip(got, (5, 10, 20), strict=True):
            assert list(d) == ["lastUpdateId", "bids", "asks"]  # raw: no wrapper
            assert d["lastUpdateId"] == update_id
            assert d["bids"] == [list(x) for x in bids[:n]] and d["asks"] == [list(x) for x in asks[:n]]
    finally:
        t.disconnect()


# ----- MEXC over the wire
async def test_mexc_depth_payload_and_local_book(still: Simulator) -> None:
    sim = still
    channel = "spot@public.aggre.depth.v3.api.pb@100ms@BTCUSDT"
    t, c = await connect(sim.ws_url("mexc"), [f'{{"method":"SUBSCRIPTION","params":["{channel}"]}}'])
    try:
        await eventually_async(lambda: c.frames, DEADLINE_S, "ack")
        assert c.frames[0] == (False, f'{{"id":0,"code":0,"msg":"{channel}"}}'.encode())
        rounds(sim, 4)
        sim.flush_depth()
        resp = await http(sim, "mexc", "GET", "/api/v3/depth?symbol=BTCUSDT&limit=1000")
        snapshot = json.loads(resp.body)
        assert list(snapshot) == ["lastUpdateId", "bids", "asks", "timestamp"]
        for _ in range(30):
            rounds(sim, 2)
            sim.flush_depth(100)
            sim.flush_depth(10)  # nobody listens at 10 ms: nothing for this client
        update_id = sim.book_levels("mexc", "BTCUSDT")[0]
        await eventually_async(lambda: mexc_diffs(c) and mexc_diffs(c)[-1][1] == update_id, DEADLINE_S, "last")
        w = PushDataV3ApiWrapper.FromString(c.frames[1][1])
        assert w.channel == channel and w.symbol == "BTCUSDT" and w.sendTime > 0
        d = w.publicAggreDepths
        assert d.eventType == "spot@public.aggre.depth.v3.api.pb@100ms"
        assert d.fromVersion == "1" and d.toVersion == "4"
        diffs = mexc_diffs(c)
        assert len(diffs) == 31
        for a, b in itertools.pairwise(diffs):
            assert b[0] == a[1] + 1  # fromVersion = previous toVersion + 1
        book = LocalBook()
        sync(book, snapshot, diffs)
        assert book.levels() == sim.book_levels("mexc", "BTCUSDT")
    finally:
        t.disconnect()


async def test_mexc_ticker_version_shares_the_depth_ids(still: Simulator) -> None:
    sim = still
    ticker = "spot@public.aggre.bookTicker.v3.api.pb@10ms@ETHUSDT"
    t, c = await connect(sim.ws_url("mexc"), [f'{{"method":"SUBSCRIPTION","params":["{ticker}"]}}'])
    try:
        await eventually_async(lambda: c.frames, DEADLINE_S, "ack")
        rounds(sim, 3)
        await eventually_async(lambda: len(c.frames) == 4, DEADLINE_S, "tickers")
        versions = [PushDataV3ApiWrapper.FromString(p).publicAggreBookTicker.version for _, p in c.frames[1:]]
        assert versions == ["1", "2", "3"] and sim.book_levels("mexc", "ETHUSDT")[0] == 3
    finally:
        t.disconnect()


async def test_mexc_cap_counts_depth_and_ticker_channels(still: Simulator) -> None:
    symbols = [s.name for s in still.cfg.symbols][:15]
    params = [f"spot@public.aggre.{kind}.v3.api.pb@100ms@{s}" for s in symbols for kind in ("bookTicker", "depth")]
    t, c = await connect(still.ws_url("mexc"), [json.dumps({"method": "SUBSCRIPTION", "params": params})])
    try:
        extra = "spot@public.aggre.depth.v3.api.pb@100ms@PEPEUSDT"
        c.send(json.dumps({"method": "SUBSCRIPTION", "params": [extra]}))
        await eventually_async(lambda: len(c.frames) == 2, DEADLINE_S, "replies")
        ok, refused = c.texts()
        assert ok == {"id": 0, "code": 0, "msg": ",".join(params)}
        assert "Not Subscribed" in refused["msg"] and "30" in refused["msg"]
    finally:
        t.disconnect()


# ----- REST snapshots
async def test_rest_depth_limits_weights_and_errors(still: Simulator) -> None:
    sim = still
    rounds(sim, 2)
    update_id, bids, asks = sim.book_levels("binance", "BTCUSDT")
    assert update_id == 2 and len(bids) > 5
    resp = await http(sim, "binance", "GET", "/api/v3/depth?symbol=BTCUSDT&limit=5")
    assert resp.status == 200 and resp.headers["x-mbx-used-weight-1m"] == "5"
    body = json.loads(resp.body)
    assert body == {"lastUpdateId": update_id, "bids": [list(x) for x in bids[:5]], "asks": [list(x) for x in asks[:5]]}
    resp = await http(sim, "binance", "GET", "/api/v3/depth?symbol=BTCUSDT")
    assert len(json.loads(resp.body)["bids"]) == len(bids)  # default 100 > depth_levels: everything
    for limit, weight in ((500, 25), (1000, 50), (5000, 250), (9999, 250)):
        resp = await http(sim, "binance", "GET", f"/api/v3/depth?symbol=BTCUSDT&limit={limit}")
        assert resp.status == 200 and int(resp.headers["x-mbx-used-weight-1m"]) >= weight
    bad = await http(sim, "binance", "GET", "/api/v3/depth?symbol=FOOUSDT")
    assert (bad.status, json.loads(bad.body)) == (400, {"code": -1121, "msg": "Invalid symbol."})
    missing = await http(sim, "binance", "GET", "/api/v3/depth")
    assert missing.status == 400 and json.loads(missing.body)["code"] == -1102
    bad = await http(sim, "mexc", "GET", "/api/v3/depth?symbol=FOOUSDT")
    assert (bad.status, json.loads(bad.body)["code"]) == (400, 10007)
    body = json.loads((await http(sim, "mexc", "GET", "/api/v3/depth?symbol=XRPUSDT&limit=3")).body)
    assert body["lastUpdateId"] == sim.book_levels("mexc", "XRPUSDT")[0] and len(body["asks"]) == 3
    assert isinstance(body["timestamp"], int)


async def test_depth_ticks_on_the_timer(tmp_path: Path) -> None:
    cfg = sim_config(tmp_path, quotes_per_second=500.0)
    async with Simulator(cfg, CREDS) as sim:
        t, c = await connect(sim.ws_url("binance") + "?streams=btcusdt@depth@100ms")
        try:
            await eventually_async(lambda: len(binance_diffs(c)) >= 3, DEADLINE_S, "diffs")
            diffs = binance_diffs(c)
            for a, b in itertools.pairwise(diffs):
                assert b[0] == a[1] + 1
        finally:
            t.disconnect()


def test_config_depth_settings_apply(tmp_path: Path) -> None:
    cfg = sim_config(tmp_path, depth_levels=7, level_gap_ticks=5)
    sim = Simulator(cfg, CREDS, emit_quotes=False)
    rounds(sim, 3)
    _, bids, asks = sim.book_levels("binance", "BTCUSDT")
    assert len(bids) == len(asks) == 7
    ticks = [round((Decimal(a[0]) - Decimal(b[0])) / Decimal("0.01")) for a, b in itertools.pairwise(bids)]
    assert all(1 <= g <= 10 for g in ticks)
    assert msgspec.json.encode(sim.book_levels("mexc", "BTCUSDT"))  # plain data
