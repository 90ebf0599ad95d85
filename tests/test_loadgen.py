"""The benchmark's load source (``services.loadgen``) against the engine's own code, over real sockets.

The load source runs as its own process (``python -m services.loadgen``, every port bound to 0 and read back
from its ready line); the real feed and the real executor VenueClient run in the test's process and meet it
exactly as ``draizer bench`` does. The tape is deterministic, so the test rebuilds it to know every quote.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from decimal import ROUND_UP, Decimal
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import picows
import pytest

from services.executor.venue_client import VenueClient
from services.loadgen.app import make_tape
from services.loadgen.frames import (
    ID_BASE,
    OP_BINARY,
    OP_TEXT,
    Tape,
    split_id,
    update_id,
    ws_frame,
)
from shared.config import Config, parse_config
from shared.http.client import HttpPool
from shared.messages import SIDE_BUY, SIDE_SELL, Funding, Quote
from shared.registry import Registry
from shared.venues import order_format
from shared.venues.binance.market import BinanceMarketFormat
from shared.venues.common import ANSWER_OK, ORDER_MARKET
from shared.venues.kinds import kind_of
from shared.venues.mexc.market import MexcMarketFormat
from tests.conftest import eventually_async, make_config_dict
from tests.test_feed_live import running_feed

REPO = Path(__file__).resolve().parents[1]
START_S = 60.0  # building the tape and binding: a few seconds on a busy box
SEED = 11
TAPE = 3000  # small: at 5000 quotes/s the tape starts over every 0.6 s, so the tests cross loops
DEADLINE_S = 20.0
CREDS = {"binance": ("lg-bkey", "lg-bsecret"), "mexc": ("lg-mkey", "lg-msecret")}


# ----- the load source as a process
class Running:
    def __init__(self, proc: subprocess.Popen[str], ports: dict[str, dict[str, int]], data: dict[str, Any]) -> None:
        self.proc = proc
        self.ports = ports
        self.data = data  # the engine's config: the loadgen's own with every URL pointed at it
        self.summary: dict[str, Any] = {}

    def config(self) -> Config:
        return parse_config(msgspec.toml.encode(self.data))

    def rest_url(self, venue: str) -> str:
        return f"http://127.0.0.1:{self.ports[venue]['rest']}"

    def ws_url(self, venue: str) -> str:
        kind = next(v["kind"] for v in self.data["venues"] if v["name"] == venue)
        return f"ws://127.0.0.1:{self.ports[venue]['ws']}{kind_of(kind).ws_path}"


def base_config(run_dir: Path) -> dict[str, Any]:
    data = make_config_dict(run_dir)
    for sv in data["sim"]["venues"]:
        sv["ws_port"] = sv["rest_port"] = 0
    for v in data["venues"]:
        v.pop("ws_api_url", None)
        v.pop("user_ws_url", None)  # the load source serves no private stream either
        if kind_of(v["kind"]).spot:
            v["feed"] = {"depth": "none"}  # tops only: the load source replays book tickers
    return data


def _read_line(proc: subprocess.Popen[str], deadline: float) -> str:
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"loadgen exited with {proc.returncode} before it was ready")
        ready, _, _ = select.select([proc.stdout], [], [], 0.2)
        if ready:
            return proc.stdout.readline()
    raise AssertionError("loadgen did not print its ready line in time")


@contextlib.contextmanager
def loadgen(run_dir: Path, rate: float, *extra: str, stop: int = signal.SIGTERM) -> Iterator[Running]:
    data = base_config(run_dir)
    cfg_path = run_dir / "loadgen.toml"
    cfg_path.write_bytes(msgspec.toml.encode(data))
    cmd = [sys.executable, "-m", "services.loadgen", "--config", str(cfg_path), "--rate", str(rate),
           "--seed", str(SEED), "--tape", str(TAPE), *extra]
    env = {**os.environ, "DRAIZER_LOG_LEVEL": "WARNING"}
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, text=True)
    running: Running | None = None
    try:
        line = json.loads(_read_line(proc, time.monotonic() + START_S))
        assert line["ready"] is True and line["pid"] == proc.pid
        ports = line["ports"]
        for v in data["venues"]:
            v["ws_url"] = f"ws://127.0.0.1:{ports[v['name']]['ws']}{kind_of(v['kind']).ws_path}"
            if "rest" in ports[v["name"]]:
                v["rest_url"] = f"http://127.0.0.1:{ports[v['name']]['rest']}"
        running = Running(proc, ports, data)
        yield running
    finally:
        if proc.poll() is None:
            proc.send_signal(stop)
        try:
            out, _ = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            raise
    assert proc.returncode == 0, f"loadgen exited with {proc.returncode}"
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["summary"] is True
    running.summary = summary


def tape_for(running: Running) -> Tape:
    return make_tape(running.config(), TAPE, seed=SEED)


# ----- the real feed, in process: tests.test_feed_live.running_feed


def expected_quote(tape: Tape, venue: str, q: Quote) -> tuple[float, float, float, float]:
    """What the tape says quote ``q`` (by its symbol and update id) carries."""
    p = tape.prices
    v = next(t.info.index for t in tape.venues if t.info.name == venue)
    _loop, rnd = split_id(q.seq)
    g = rnd * p.n_slots + p.slots.index((v, q.symbol))
    spec = p.specs[q.symbol]
    return (float(spec.price(int(p.bid[g]))), float(spec.qty(int(p.bid_qty[g]))),
            float(spec.price(int(p.ask[g]))), float(spec.qty(int(p.ask_qty[g]))))


# ----- the tape (no sockets)
def test_tape_frames_parse_to_the_generated_prices_and_ids_grow_across_loops(run_dir: Path) -> None:
    cfg = parse_config(msgspec.toml.encode(base_config(run_dir)))
    tape = make_tape(cfg, TAPE, seed=SEED)
    again = make_tape(cfg, TAPE, seed=SEED)
    p = tape.prices
    assert np.array_equal(p.bid, again.prices.bid) and np.array_equal(p.ask_qty, again.prices.ask_qty)
    assert len(tape.venues) == 2 and sum(len(v) for v in tape.venues) == tape.n_quotes >= TAPE
    parsers = {"binance": (BinanceMarketFormat(), False), "mexc": (MexcMarketFormat(), True)}
    for loop in (0, 1, 7):
        tape.restamp(loop)
        for vt in tape.venues:
            fmt, binary = parsers[vt.info.kind]
            last_seq: dict[str, int] = {}
            for k in range(len(vt)):
                top = fmt.parse(vt.payload(k), binary)
                rnd = k // tape.per_round[vt.info.index]
                assert split_id(top.seq) == (loop, rnd)
                assert top.seq > last_seq.get(top.symbol, 0)
                last_seq[top.symbol] = top.seq
                g = rnd * p.n_slots + p.slots.index((vt.info.index, vt.symbols[k]))
                spec = p.specs[vt.symbols[k]]
                assert top.symbol == spec.name
                assert (top.bid, top.bid_qty, top.ask, top.ask_qty) == (
                    float(spec.price(int(p.bid[g]))), float(spec.qty(int(p.bid_qty[g]))),
                    float(spec.price(int(p.ask[g]))), float(spec.qty(int(p.ask_qty[g]))))
                assert 0 < top.bid < top.ask
    assert update_id(1, 0) > update_id(0, p.rounds - 1) and update_id(0, 0) == ID_BASE + 1


def test_dislocations_open_spreads_that_clear_the_fees_and_nothing_else_does(run_dir: Path) -> None:
    """Bought at one venue's ask and sold at the other's bid, net of both taker fees: only dislocated rounds
    clear the detector's min spread (the walk is bridged, so the wrap opens nothing either)."""
    cfg = parse_config(msgspec.toml.encode(base_config(run_dir)))
    tape = make_tape(cfg, 30_000, seed=SEED, dislocation=0.01)
    p = tape.prices
    fees = {v.name: v.taker_fee for v in cfg.venues}
    fee = [fees[v.name] * 1e4 for v in p.venues]
    need = cfg.strategies.cross_exchange.min_spread_bps
    bid = (p.bid.astype(np.float64)).reshape(p.rounds, p.n_slots)
    ask = (p.ask.astype(np.float64)).reshape(p.rounds, p.n_slots)
    shifted = (p.shift_bps != 0).reshape(p.rounds, p.n_slots)
    cleared = spurious = 0
    for s in range(len(p.specs)):
        cols = [(k, v) for k, (v, sym) in enumerate(p.slots) if sym == s]
        if len(cols) != 2:
            continue
        (ka, va), (kb, vb) = cols
        for buy, sell, vbuy, vsell in ((ka, kb, va, vb), (kb, ka, vb, va)):
            net = (bid[:, sell] / ask[:, buy] - 1) * 1e4 - fee[vbuy] - fee[vsell]
            clears = net >= need
            disl = shifted[:, buy] | shifted[:, sell]
            cleared += int((clears & disl).sum())
            spurious += int((clears & ~disl).sum())
    assert cleared > 100 and spurious == 0
    notional = p.bid.astype(np.float64) * p.bid_qty / np.array([10.0 ** (s.price_decimals + s.qty_decimals)
                                                               for s in p.specs])[p.symbol]
    usd = notional * np.array([s.quote_usd for s in p.specs])[p.symbol]
    assert 1_000 < np.median(usd) < 10_000  # a few thousand dollars a side


@pytest.mark.parametrize("size", [0, 125, 126, 65535, 65536])
def test_ws_frame_length_encodings(size: int) -> None:
    payload = bytes(range(256)) * (size // 256) + bytes(size % 256)
    frame = ws_frame(payload, OP_BINARY if size % 2 else OP_TEXT)
    assert frame[0] & 0x80 and frame[0] & 0x0F == (OP_BINARY if size % 2 else OP_TEXT)
    assert not frame[1] & 0x80  # server frames are never masked
    n = frame[1] & 0x7F
    head = 2 + (2 if n == 126 else 8 if n == 127 else 0)
    length = n if n < 126 else int.from_bytes(frame[2:head], "big")
    assert length == size and frame[head:] == payload


# ----- (a) the real feeds
async def test_real_feeds_parse_exactly_the_tape_on_both_spot_venues_and_funding_flows(run_dir: Path) -> None:
    with loadgen(run_dir, 5000) as lg:
        cfg = lg.config()
        tape = tape_for(lg)
        async with running_feed(cfg, "binance") as (bfeed, bout), running_feed(cfg, "mexc") as (mfeed, mout), \
                running_feed(cfg, "binance_perp") as (_, bpout), running_feed(cfg, "mexc_perp") as (_, mpout):
            def enough() -> bool:
                loops = [{split_id(q.seq)[0] for q in out if isinstance(q, Quote)} for out in (bout, mout)]
                return all(len(seen) >= 3 for seen in loops)  # frames from three passes of the tape

            await eventually_async(enough, DEADLINE_S, "quotes from three loops of the tape on both venues")
            perp_symbols = len(cfg.venues[2].symbols)
            await eventually_async(
                lambda: all(len({f.symbol for f in out if isinstance(f, Funding)}) == perp_symbols
                            for out in (bpout, mpout)),
                DEADLINE_S, "funding for every perp symbol on both perp venues")
            for venue, feed, out in (("binance", bfeed, bout), ("mexc", mfeed, mout)):
                quotes = [q for q in out if isinstance(q, Quote)]
                assert {q.symbol for q in quotes} == set(range(len(cfg.symbols)))
                for q in quotes:
                    assert (q.bid, q.bid_qty, q.ask, q.ask_qty) == expected_quote(tape, venue, q), (venue, q)
                c = feed.counters()
                assert c["malformed"] == 0 and c["duplicates"] == 0 and c["out_of_order"] == 0
                assert c["unknown_symbol"] == 0 and feed.stale_channels() == []
            fundings = [f for f in bpout + mpout if isinstance(f, Funding)]
            assert all(-0.01 < f.rate < 0.01 and f.next_funding_ms > time.time() * 1000 for f in fundings)
            assert all(f.mark_price > 0 for f in bpout if isinstance(f, Funding))
    s = lg.summary
    assert s["frames"]["binance"] > 0 and s["frames"]["mexc"] > 0 and s["frames"]["binance_perp"] > 0
    assert s["loops"] >= 2 and s["dropped"] == dict.fromkeys(s["dropped"], 0)


# ----- (b) the real executor client
@pytest.fixture
def credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for venue, (key, secret) in CREDS.items():
        monkeypatch.setenv(f"DRAIZER_{venue.upper()}_API_KEY", key)
        monkeypatch.setenv(f"DRAIZER_{venue.upper()}_API_SECRET", secret)


async def get_json(url: str, path: str) -> Any:
    pool = HttpPool(url, size=1)
    try:
        resp = await asyncio.wait_for(pool.request("GET", path, []), DEADLINE_S)
    finally:
        await pool.close()
    assert resp.status == 200, resp.body
    return json.loads(resp.body)


@pytest.mark.usefixtures("credentials")
@pytest.mark.parametrize("venue", ["binance", "mexc"])
async def test_orders_through_the_executor_client_come_back_filled(run_dir: Path, venue: str) -> None:
    with loadgen(run_dir, 1000) as lg:
        cfg = lg.config()
        reg = Registry(cfg)
        client = VenueClient(next(v for v in cfg.venues if v.name == venue), reg, 5.0)
        try:
            await asyncio.wait_for(client.start(), DEADLINE_S)
            btc = reg.symbol_id["BTCUSDT"]
            for name, sym in reg.symbol_id.items():  # exchangeInfo: the config's rules, through the venue's parser
                spec = cfg.symbols[sym]
                rules = client.rules_for(sym)
                assert (rules.symbol, rules.tick) == (name, Decimal(spec.tick_size))
                assert rules.step == Decimal(spec.step_size)
                assert rules.min_notional == Decimal(spec.min_notional)
            fee = Decimal(repr(next(v for v in cfg.venues if v.name == venue).taker_fee))
            assert client.taker_fee == fee
            info = await client.account()
            assert info.balances["USDT"][0] > 10**8 and info.balances["BTC"][0] > 1000
            before = time.monotonic_ns()
            buy = await asyncio.wait_for(client.send_order(btc, SIDE_BUY, "0.00300", "97001.25", "dzt1b0"), 20)
            sell = await asyncio.wait_for(client.send_order(btc, SIDE_SELL, "0.00200", "96999.50", "dzt1s1"), 20)
            after = time.monotonic_ns()
            for ans, qty, px, side in ((buy, "0.00300", "97001.25", "BUY"), (sell, "0.00200", "96999.50", "SELL")):
                assert ans.kind == ANSWER_OK, ans
                q, p = Decimal(qty), Decimal(px)
                if venue == "binance":  # FULL: filled, with its fill
                    assert ans.status == "FILLED" and ans.executed_qty == q and ans.cum_quote == q * p
                    assert ans.fills is not None and len(ans.fills) == 1
                    fills = ans.fills
                else:  # MEXC: an ack; the query says FILLED, the trade list has the fill
                    assert ans.status == "NEW" and ans.fills is None and ans.order_id.startswith("C02__")
                    queried = await client.query_order(btc, ans.client_order_id)
                    assert queried.kind == ANSWER_OK and queried.status == "FILLED"
                    assert queried.executed_qty == q and queried.cum_quote == q * p
                    fills = tuple(await client.my_trades(btc, ans.order_id))
                    assert len(fills) == 1
                f = fills[0]
                assert (f.price, f.qty) == (p, q)
                in_base = venue == "binance" and side == "BUY"
                assert f.commission_asset == ("BTC" if in_base else "USDT")
                charged = (q if in_base else q * p) * fee
                assert f.commission == charged.quantize(Decimal("1e-8"), ROUND_UP)
                queried = await client.query_order(btc, ans.client_order_id)
                assert queried.kind == ANSWER_OK and queried.status == "FILLED" and queried.executed_qty == q
            cancel = await client.cancel_order(btc, "dzt1b0")
            assert client.not_found(cancel)
            assert await client.open_orders(btc) == [] and await client.open_orders() == []
            assert await client.cancel_all(btc) == []
            dup = await asyncio.wait_for(client.send_order(btc, SIDE_BUY, "0.00300", "97001.25", "dzt1b0"), DEADLINE_S)
            assert dup.kind == "rejected" and dup.status == "REJECTED"
            market = await asyncio.wait_for(
                client.send_order(btc, SIDE_BUY, "0.00100", None, "dzt1m2", order_type=ORDER_MARKET), DEADLINE_S)
            if venue == "mexc":
                market = await client.query_order(btc, "dzt1m2")
            assert market.kind == ANSWER_OK and market.status == "FILLED" and market.executed_qty == Decimal("0.001")
            start = float(cfg.symbols[btc].start_price)
            assert 0.9 * start < float(market.cum_quote / market.executed_qty) < 1.1 * start  # at the last quote
            trades = await client.my_trades(btc, None)
            assert len(trades) == 3
            listed = await get_json(lg.rest_url(venue), "/api/v3/allOrders?symbol=BTCUSDT")
            answers = order_format(venue).parse_order_list(200, json.dumps(listed).encode(), {})
            assert [(a.client_order_id, a.status) for a in answers] == [
                ("dzt1b0", "FILLED"), ("dzt1s1", "FILLED"), ("dzt1m2", "FILLED")]
            stats = await get_json(lg.rest_url(venue), "/loadgen/stats?last=10")
            assert stats["orders"][venue] == 4
            arrivals = [a for a in stats["arrivals"] if a["venue"] == venue]
            assert [a["clientOrderId"] for a in arrivals] == ["dzt1b0", "dzt1s1", "dzt1b0", "dzt1m2"]
            assert all(before <= a["arrival_ns"] <= after for a in arrivals[:2])
            snapshot = await get_json(lg.rest_url(venue), "/api/v3/depth?symbol=BTCUSDT&limit=5")
            assert snapshot["lastUpdateId"] > ID_BASE and len(snapshot["bids"]) == len(snapshot["asks"]) == 1
            assert float(snapshot["bids"][0][0]) < float(snapshot["asks"][0][0])
        finally:
            await client.close()
    assert lg.summary["orders"][venue] == 4


# ----- (c) the rate, and the subscription protocols
class Counter(picows.WSListener):  # type: ignore[misc]
    def __init__(self, hello: list[str]) -> None:
        self.hello = hello
        self.frames: list[tuple[int, bytes]] = []  # (msg type, payload)
        self.data = 0
        self.pongs = 0

    def on_ws_connected(self, transport: picows.WSTransport) -> None:
        for text in self.hello:
            transport.send(picows.WSMsgType.TEXT, text.encode())

    def on_ws_frame(self, transport: picows.WSTransport, frame: picows.WSFrame) -> None:
        if frame.msg_type == picows.WSMsgType.PONG:
            self.pongs += 1
            return
        payload = frame.get_payload_as_bytes()
        if frame.msg_type == picows.WSMsgType.BINARY or payload.startswith(b'{"stream"'):
            self.data += 1
        if len(self.frames) < 100_000:
            self.frames.append((int(frame.msg_type), payload))

    def texts(self) -> list[Any]:
        return [json.loads(p) for t, p in self.frames if t == int(picows.WSMsgType.TEXT)]


async def closed(*transports: picows.WSTransport) -> None:
    for t in transports:
        t.disconnect()
    for t in transports:
        await asyncio.wait_for(t.wait_disconnected(), DEADLINE_S)


def binance_url(lg: Running, symbols: list[str]) -> str:
    return lg.ws_url("binance") + "?streams=" + "/".join(f"{s.lower()}@bookTicker" for s in symbols)


def mexc_hello(symbols: list[str]) -> list[str]:
    channels = [f"spot@public.aggre.bookTicker.v3.api.pb@100ms@{s}" for s in symbols]
    return [json.dumps({"method": "SUBSCRIPTION", "params": channels})]


async def test_rate_holds_within_ten_percent_at_5k_quotes_per_second(run_dir: Path) -> None:
    with loadgen(run_dir, 5000) as lg:
        symbols = [s["name"] for s in lg.data["symbols"]]
        b_t, b = await picows.ws_connect(lambda: Counter([]), binance_url(lg, symbols))
        m_t, m = await picows.ws_connect(lambda: Counter(mexc_hello(symbols)), lg.ws_url("mexc"))
        try:
            await eventually_async(lambda: b.data > 100 and m.data > 100, DEADLINE_S, "frames on both venues")
            n0, t0 = b.data + m.data, time.monotonic()
            await asyncio.sleep(2.0)  # the measurement window itself, not a wait for something to happen
            n1, t1 = b.data + m.data, time.monotonic()
        finally:
            await closed(b_t, m_t)
        rate = (n1 - n0) / (t1 - t0)
        assert 4500 <= rate <= 5500, rate
        assert abs(b.data - m.data) <= 0.1 * (b.data + m.data)  # both venues list every symbol: equal shares
    assert abs(lg.summary["rate_achieved"] - 5000) <= 500


async def test_subscription_protocols_and_subsets(run_dir: Path) -> None:
    with loadgen(run_dir, 2000, stop=signal.SIGINT) as lg:  # draizer bench stops it with SIGINT
        fmt_b, fmt_m = BinanceMarketFormat(), MexcMarketFormat()
        # Binance: two streams in the URL, one more by SUBSCRIBE; frames only for those three symbols.
        b_t, b = await picows.ws_connect(lambda: Counter([]), binance_url(lg, ["BTCUSDT", "ETHUSDT"]))
        m_t, m = await picows.ws_connect(lambda: Counter([*mexc_hello(["SOLUSDT"]), '{"method":"PING"}']),
                                         lg.ws_url("mexc"))
        c_t, c = await picows.ws_connect(
            lambda: Counter(['{"method":"sub.funding.rate","param":{"symbol":"BTC_USDT"}}', '{"method":"ping"}']),
            lg.ws_url("mexc_perp"))
        try:
            b_t.send(picows.WSMsgType.TEXT, b'{"method":"SUBSCRIBE","params":["xrpusdt@bookTicker"],"id":7}')
            b_t.send(picows.WSMsgType.TEXT, b'{"method":"LIST_SUBSCRIPTIONS","id":8}')
            b_t.send(picows.WSMsgType.TEXT, b'{"method":"SUBSCRIBE"')
            b_t.send_ping(b"hello")
            await eventually_async(lambda: len(b.texts()) >= 3 + 100 and b.pongs == 1, DEADLINE_S, "binance answers")
            replies = [t for t in b.texts() if "stream" not in t]
            assert {"result": None, "id": 7} in replies
            assert {"result": ["btcusdt@bookTicker", "ethusdt@bookTicker", "xrpusdt@bookTicker"], "id": 8} in replies
            assert any(r.get("code") == 3 for r in replies)
            seen = {fmt_b.parse(p, False).symbol for t, p in b.frames if p.startswith(b'{"stream"')}
            assert seen == {"BTCUSDT", "ETHUSDT", "XRPUSDT"}

            await eventually_async(lambda: m.data > 20 and len(m.texts()) >= 2, DEADLINE_S, "mexc answers")
            channel = "spot@public.aggre.bookTicker.v3.api.pb@100ms@SOLUSDT"
            assert m.texts()[:2] == [{"id": 0, "code": 0, "msg": channel}, {"id": 0, "code": 0, "msg": "PONG"}]
            tops = [fmt_m.parse(p, True) for t, p in m.frames if t == int(picows.WSMsgType.BINARY)]
            assert {t.symbol for t in tops} == {"SOLUSDT"}
            seqs = [t.seq for t in tops]
            assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)

            await eventually_async(lambda: any(t.get("channel") == "push.funding.rate" for t in c.texts()),
                                   DEADLINE_S, "a funding push")
            texts = c.texts()
            assert next(t for t in texts if t["channel"].startswith("rs."))["channel"] == "rs.sub.funding.rate"
            assert isinstance(next(t for t in texts if t["channel"] == "pong")["data"], int)
            push = next(t for t in texts if t.get("channel") == "push.funding.rate")
            assert push["data"]["symbol"] == "BTC_USDT" and isinstance(push["data"]["rate"], float)
        finally:
            await closed(b_t, m_t, c_t)
        stats = await get_json(lg.rest_url("binance"), "/loadgen/stats")
        assert stats["rate_asked"] == 2000 and stats["frames"]["binance"] > 0
