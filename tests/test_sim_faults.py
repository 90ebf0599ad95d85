"""Faults injected at runtime and the venue connection rules, each seen on the wire by a real client."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import msgspec
import picows
import pytest
from google.protobuf.message import DecodeError

from services.sim.app import Simulator
from services.sim.faults import Fault, FaultError
from services.sim.ws_binance import BinanceSpotStreamServer
from shared.config import Config, parse_config
from shared.http.client import HttpPool
from shared.venues.mexc.proto.push_data_pb2 import PushDataV3ApiWrapper
from tests.conftest import eventually_async, make_config_dict
from tests.sim_kit import CREDS, DEADLINE_S, http, sim_config
from tests.test_sim_depth import LocalBook, binance_diffs, rounds, sync

BTC_TICKER = "spot@public.aggre.bookTicker.v3.api.pb@100ms@BTCUSDT"


class Probe(picows.WSListener):  # type: ignore[misc]
    """Records everything: data frames, close frames, pings, pongs and the end of the connection."""

    def __init__(self, hello: Sequence[str] = ()) -> None:
        self.hello = hello
        self.frames: list[tuple[bool, bytes]] = []  # (binary, payload)
        self.close_code: int | None = None
        self.pings = 0
        self.pongs = 0
        self.disconnected = False
        self.transport: picows.WSTransport | None = None

    def on_ws_connected(self, transport: picows.WSTransport) -> None:
        self.transport = transport
        for text in self.hello:
            transport.send(picows.WSMsgType.TEXT, text.encode())

    def on_ws_frame(self, transport: picows.WSTransport, frame: picows.WSFrame) -> None:
        kind = frame.msg_type
        if kind == picows.WSMsgType.CLOSE:
            self.close_code = int(frame.get_close_code())
        elif kind == picows.WSMsgType.PING:
            self.pings += 1
        elif kind == picows.WSMsgType.PONG:
            self.pongs += 1
        else:
            self.frames.append((kind == picows.WSMsgType.BINARY, frame.get_payload_as_bytes()))

    def on_ws_disconnected(self, transport: picows.WSTransport) -> None:
        self.disconnected = True

    def send(self, text: str) -> None:
        assert self.transport is not None
        self.transport.send(picows.WSMsgType.TEXT, text.encode())

    def ping(self) -> None:
        assert self.transport is not None
        self.transport.send_ping(b"hi")


async def probe(url: str, hello: Sequence[str] = (), *, auto_pong: bool = True) -> tuple[picows.WSTransport, Probe]:
    transport, listener = await picows.ws_connect(lambda: Probe(hello), url, enable_auto_pong=auto_pong)
    return transport, listener


def config(tmp_path: Path, venues: dict[str, dict[str, Any]] | None = None, **sim: Any) -> Config:
    data = make_config_dict(tmp_path, sim=sim)
    for sv in data["sim"]["venues"]:
        sv["ws_port"] = sv["rest_port"] = 0
        sv.update((venues or {}).get(sv["venue"], {}))
    return parse_config(msgspec.toml.encode(data))


@pytest.fixture
async def still(tmp_path: Path) -> AsyncIterator[Simulator]:
    async with Simulator(sim_config(tmp_path), CREDS, emit_quotes=False) as s:
        rounds(s)
        yield s


async def binance_ticker(sim: Simulator) -> tuple[picows.WSTransport, Probe]:
    t, p = await probe(sim.ws_url("binance") + "?streams=btcusdt@bookTicker")
    await eventually_async(lambda: sim.venue("binance").stream.connections, DEADLINE_S, "connected")
    return t, p


def server_side(sim: Simulator, venue: str) -> Any:
    (conn,) = sim.venue(venue).stream.connections
    return conn


# ----- drop, stall, slow consumer
async def test_drop_aborts_without_a_close_frame(still: Simulator) -> None:
    _t, p = await binance_ticker(still)
    _t2, p2 = await probe(still.ws_url("mexc_perp"))
    still.inject("binance", "drop")
    still.inject("mexc_perp", "drop")
    await eventually_async(lambda: p.disconnected and p2.disconnected, DEADLINE_S, "dropped")
    assert p.close_code is None and p2.close_code is None
    assert still.stats()["venues"][0]["faults"]["drop"] == 1


async def test_stall_stops_data_but_answers_pings_and_control(still: Simulator) -> None:
    sim = still
    t, p = await binance_ticker(sim)
    try:
        sim.inject("binance", "stall")
        rounds(sim, 3)
        p.ping()
        p.send('{"method":"LIST_SUBSCRIPTIONS","id":1}')
        await eventually_async(lambda: p.pongs == 1 and p.frames, DEADLINE_S, "pong and reply")
        assert [json.loads(x) for _, x in p.frames] == [{"result": ["btcusdt@bookTicker"], "id": 1}]
        assert server_side(sim, "binance").stalled  # without seconds: until the connection closes
    finally:
        t.disconnect()


async def test_a_timed_stall_ends(still: Simulator) -> None:
    sim = still
    t, p = await binance_ticker(sim)
    try:
        sim.inject("binance", "stall", seconds=0.2)
        conn = server_side(sim, "binance")
        rounds(sim)
        await eventually_async(lambda: not conn.stalled, DEADLINE_S, "stall over")
        rounds(sim)
        await eventually_async(lambda: p.frames, DEADLINE_S, "data again")
        assert [json.loads(x)["data"]["u"] for _, x in p.frames] == [3]
    finally:
        t.disconnect()


async def test_slow_consumer_loses_frames_then_resumes(still: Simulator) -> None:
    sim = still
    t, p = await binance_ticker(sim)
    try:
        sim.inject("binance", "slow_consumer", seconds=0.2)
        conn = server_side(sim, "binance")
        dropped = sim.venue("binance").stream.dropped
        rounds(sim, 4)
        assert sim.venue("binance").stream.dropped == dropped + 4
        await eventually_async(lambda: not conn.slow, DEADLINE_S, "recovered")
        rounds(sim, 2)
        await eventually_async(lambda: len(p.frames) == 2, DEADLINE_S, "data again")
        assert [json.loads(x)["data"]["u"] for _, x in p.frames] == [6, 7]  # 2..5 were lost
    finally:
        t.disconnect()


# ----- gap
async def test_gap_is_visible_and_a_new_snapshot_is_consistent(still: Simulator) -> None:
    sim = still
    t, p = await probe(sim.ws_url("binance") + "?streams=btcusdt@depth@100ms")
    tm, pm = await probe(sim.ws_url("mexc"), ['{"method":"SUBSCRIPTION","params":'
                                               '["spot@public.aggre.depth.v3.api.pb@100ms@BTCUSDT"]}'])
    try:
        await eventually_async(lambda: pm.frames and sim.venue("binance").stream.connections, DEADLINE_S, "ready")
        rounds(sim, 2)
        sim.flush_depth()
        sim.inject("binance", "gap", symbol="BTCUSDT")
        sim.inject("mexc", "gap")
        rounds(sim, 2)
        sim.flush_depth()  # lost
        rounds(sim, 2)
        sim.flush_depth()
        await eventually_async(lambda: len(binance_diffs(p)) == 2 and len(pm.frames) == 3, DEADLINE_S, "diffs")
        (u1, first), (u2, _second) = [(d[0], d[1]) for d in binance_diffs(p)]
        assert (u1, first) == (1, 3) and u2 > first + 1  # U > previous u + 1
        versions = [PushDataV3ApiWrapper.FromString(x).publicAggreDepths for _, x in pm.frames[1:]]
        assert int(versions[1].fromVersion) != int(versions[0].toVersion) + 1
        # resync: a snapshot now and the diffs after it rebuild the book
        snapshot = json.loads((await http(sim, "binance", "GET", "/api/v3/depth?symbol=BTCUSDT&limit=1000")).body)
        rounds(sim, 2)
        sim.flush_depth()
        await eventually_async(lambda: len(binance_diffs(p)) == 3, DEADLINE_S, "one more")
        book = LocalBook()
        sync(book, snapshot, binance_diffs(p)[2:])
        assert book.levels() == sim.book_levels("binance", "BTCUSDT")
    finally:
        t.disconnect()
        tm.disconnect()


# ----- malformed, shutdown
async def test_malformed_frames(still: Simulator) -> None:
    sim = still
    tb, pb = await binance_ticker(sim)
    tm, pm = await probe(sim.ws_url("mexc"), [f'{{"method":"SUBSCRIPTION","params":["{BTC_TICKER}"]}}'])
    tc, pc = await probe(sim.ws_url("mexc_perp"))
    try:
        await eventually_async(lambda: pm.frames and sim.venue("mexc_perp").stream.connections, DEADLINE_S, "ready")
        for venue in ("binance", "mexc", "mexc_perp"):
            sim.inject(venue, "malformed")
        rounds(sim)
        await eventually_async(lambda: len(pb.frames) == 2 and len(pm.frames) == 3 and pc.frames, DEADLINE_S, "all")
        binary, bad = pb.frames[0]
        assert not binary
        with pytest.raises(json.JSONDecodeError):
            json.loads(bad)
        assert json.loads(pb.frames[1][1])["data"]["s"] == "BTCUSDT"  # the stream goes on
        binary, bad = pm.frames[1]
        assert binary
        with pytest.raises(DecodeError):
            PushDataV3ApiWrapper.FromString(bad)
        assert PushDataV3ApiWrapper.FromString(pm.frames[2][1]).symbol == "BTCUSDT"
        with pytest.raises(json.JSONDecodeError):
            json.loads(pc.frames[0][1])
    finally:
        for t in (tb, tm, tc):
            t.disconnect()


async def test_shutdown_notice_then_close_1001(still: Simulator) -> None:
    sim = still
    _t, p = await binance_ticker(sim)
    _tm, pm = await probe(sim.ws_url("mexc"))
    await eventually_async(lambda: sim.venue("mexc").stream.connections, DEADLINE_S, "connected")
    sim.inject("binance", "shutdown", seconds=0.1)
    sim.inject("mexc", "shutdown", seconds=0.1)
    await eventually_async(lambda: p.disconnected and pm.disconnected, DEADLINE_S, "closed")
    notice = json.loads(p.frames[0][1])
    assert list(notice) == ["e", "E"] and notice["e"] == "serverShutdown"
    assert p.close_code == 1001 and pm.close_code == 1001 and pm.frames == []


# ----- ping silence, server pings, connection rules
async def test_ping_silence_is_half_open(still: Simulator) -> None:
    sim = still
    t, p = await binance_ticker(sim)
    tm, pm = await probe(sim.ws_url("mexc"))
    await eventually_async(lambda: sim.venue("mexc").stream.connections, DEADLINE_S, "connected")
    try:
        sim.inject("binance", "ping_silence")
        sim.inject("mexc", "ping_silence", seconds=0.3)
        conn, mconn = server_side(sim, "binance"), server_side(sim, "mexc")
        p.ping()
        pm.ping()
        pm.send('{"method":"PING"}')
        rounds(sim, 2)
        # the server has read the ping (and the MEXC PING): had it answered, the pong would be out already
        await eventually_async(lambda: conn.ignored == 1, DEADLINE_S, "ping read")
        await eventually_async(lambda: pm.disconnected, DEADLINE_S, "aborted after 0.3 s")
        assert p.pongs == 0 and p.frames == [] and not p.disconnected
        assert pm.pongs == 0 and pm.frames == [] and pm.close_code is None
        assert mconn.ignored == 2
    finally:
        t.disconnect()
        tm.disconnect()


async def test_binance_server_pings_and_pong_deadline(still: Simulator, monkeypatch: pytest.MonkeyPatch) -> None:
    sim = still
    monkeypatch.setattr(BinanceSpotStreamServer, "ping_interval_s", 0.1)
    monkeypatch.setattr(BinanceSpotStreamServer, "pong_timeout_s", 0.3)
    t1, answering = await probe(sim.ws_url("binance"))
    t2, mute = await probe(sim.ws_url("binance"), auto_pong=False)
    t3, silenced = await probe(sim.ws_url("binance"), auto_pong=False)
    try:
        await eventually_async(lambda: len(sim.venue("binance").stream.connections) == 3, DEADLINE_S, "connected")
        first, _, quiet = sorted(sim.venue("binance").stream.connections, key=lambda c: c.opened_at)
        quiet.apply(Fault("ping_silence", None, None))
        pinged_at = quiet.ping_sent_at
        await eventually_async(lambda: mute.disconnected, DEADLINE_S, "no pong: closed")
        assert mute.pings >= 1 and mute.close_code == 1001
        assert first.ping_sent_at > first.opened_at  # pinged, and answered: it outlived the mute link
        assert not answering.disconnected
        assert quiet.ping_sent_at == pinged_at and not silenced.disconnected  # half-open: no server pings
    finally:
        for t in (t1, t2, t3):
            t.disconnect()


async def test_binance_cuts_a_client_sending_over_5_messages_a_second(still: Simulator) -> None:
    sim = still
    t, p = await binance_ticker(sim)
    t2, ok = await binance_ticker(sim)
    try:
        for i in range(5):
            ok.send(f'{{"method":"LIST_SUBSCRIPTIONS","id":{i}}}')
        await eventually_async(lambda: len(ok.frames) == 5, DEADLINE_S, "5 replies")
        for i in range(4):
            p.send(f'{{"method":"LIST_SUBSCRIPTIONS","id":{i}}}')
        p.ping()
        p.ping()  # the 6th message within a second
        await eventually_async(lambda: p.disconnected, DEADLINE_S, "cut")
        assert p.close_code == 1008 and not ok.disconnected
        assert sim.stats()["venues"][0]["rate_disconnects"] == 1
    finally:
        t.disconnect()
        t2.disconnect()


async def test_max_connection_age_closes(tmp_path: Path) -> None:
    cfg = config(tmp_path, {"binance": {"max_connection_age_s": 0.3}, "mexc_perp": {"max_connection_age_s": 0.3}})
    async with Simulator(cfg, CREDS, emit_quotes=False) as sim:
        _t, p = await probe(sim.ws_url("binance") + "?streams=btcusdt@bookTicker")
        _t2, p2 = await probe(sim.ws_url("mexc_perp"))
        t3, p3 = await probe(sim.ws_url("mexc"))
        await eventually_async(lambda: p.disconnected and p2.disconnected, DEADLINE_S, "closed")
        assert p.close_code == p2.close_code == 1001 and not p3.disconnected
        t3.disconnect()


# ----- runtime API
async def test_fault_endpoint_and_errors(still: Simulator) -> None:
    sim = still
    _t, p = await binance_ticker(sim)
    pool_resp = await post(sim, "binance", {"kind": "drop"})
    assert (pool_resp[0], pool_resp[1]) == (200, {"ok": True})
    await eventually_async(lambda: p.disconnected, DEADLINE_S, "dropped")
    status, body = await post(sim, "binance", {"kind": "explode"})
    assert status == 400 and body["ok"] is False and "unknown fault kind 'explode'" in body["error"]
    status, body = await post(sim, "mexc", {"kind": "gap", "symbol": "FOOUSDT"})
    assert status == 400 and "FOOUSDT" in body["error"]
    status, body = await post(sim, "binance_perp", {"kind": "gap", "symbol": "BTCUSDT", "seconds": 1})
    assert status == 200
    stats = json.loads((await http(sim, "binance", "GET", "/sim/stats")).body)
    assert stats["faults"]["drop"] == 1 and {"connections", "rate_disconnects", "depth_frames", "dropped"} <= set(stats)
    perp = json.loads((await http(sim, "binance_perp", "GET", "/sim/stats")).body)
    assert perp["faults"]["gap"] == 1 and perp["venue"] == "binance_perp"
    with pytest.raises(FaultError, match="unknown venue"):
        sim.inject("kraken", "drop")
    with pytest.raises(FaultError, match="seconds"):
        sim.inject("mexc", "stall", seconds=-1)


async def post(sim: Simulator, venue: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    pool = HttpPool(sim.rest_url(venue), size=1)
    try:
        data = json.dumps(body).encode()
        resp = await pool.request("POST", "/sim/fault", [("Content-Type", "application/json")], data)
        return resp.status, json.loads(resp.body)
    finally:
        await pool.close()
