"""Recording format 2: event times and the venue's rules survive a round trip, version 1 files still load, a cut
file keeps its good prefix, each venue kind's event time is read from the simulator's own frames, and the
committed backtest recording (both spot venues and a perpetual, taken together) is whole and replays."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import pytest

from services.cli.record import output_paths, recording_header, venue_names
from services.cli.replay import replay
from services.feed.recorded_rules import fetch_rules, rules_from_header, rules_to_header
from services.feed.recording import (
    BINARY,
    CONNECTED,
    HEAD_V1,
    HEAD_V2,
    LAST_IN_BUFFER,
    MAGIC_V1,
    MAGIC_V2,
    SNAPSHOT,
    TEXT,
    Recorder,
    Recording,
)
from services.sim.app import Simulator
from shared.config import FeedSettings, load_config, parse_config
from shared.errors import ConfigError
from shared.venues.common import SymbolRules
from shared.venues.kinds import KINDS, kind_of
from shared.venues.mexc.proto.push_data_pb2 import PushDataV3ApiWrapper
from tests.conftest import eventually, eventually_async, listening, make_config_dict
from tests.sim_kit import DEADLINE_S, connect

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures"
BACKTEST = FIXTURES / "backtest"
BACKTEST_VENUES = {"binance": "binance", "mexc": "mexc", "binance_perp": "binance_usdm"}


def _rules() -> dict[str, SymbolRules]:
    return {
        "BTCUSDT": SymbolRules("BTCUSDT", Decimal("0.01"), Decimal("0.00001"), Decimal("0.00001"), Decimal("5"), 2, 5),
        # A tick small enough that str(Decimal) would write an exponent: the header keeps fixed-point text.
        "PEPEUSDT": SymbolRules("PEPEUSDT", Decimal("1E-8"), Decimal("1"), Decimal("100"), Decimal("1.5"), 8, 0),
    }


# ----- the format
def test_a_v2_round_trip_keeps_event_times_rules_and_the_start_clocks(tmp_path: Path) -> None:
    cfg = load_config(FIXTURES / "session.toml")
    header = recording_header(cfg, "binance", _rules(), started=(1_700_000_000_123_456_789, 42_000_000_000))
    path = tmp_path / "r.dzrec"
    rec = Recorder(path, header)
    rec.write(CONNECTED, b"ws://x", 42_000_000_100, conn=1)
    rec.write(TEXT, b'{"E":1700000000200}', 42_000_000_200, conn=1, flags=LAST_IN_BUFFER, event_ms=1_700_000_000_200)
    rec.write(BINARY, b"\x0a\x01x", 42_000_000_300, conn=2, event_ms=-1)  # signed: stored as given
    rec.snapshot("BTCUSDT", b'{"lastUpdateId":1}', 42_000_000_400)
    rec.write(TEXT, b'{"E":1180591620717411303424}', 42_000_000_500, event_ms=2**70)  # beyond i64: kept as none
    rec.close()

    assert path.read_bytes().startswith(MAGIC_V2)
    r = Recording(path)
    assert r.version == 2
    h = r.header
    assert (h["version"], h["venue"], h["kind"]) == (2, "binance", "binance")
    assert h["started_unix_ns"] == 1_700_000_000_123_456_789 and h["started_monotonic_ns"] == 42_000_000_000
    assert h["rules"]["PEPEUSDT"] == {"tick": "0.00000001", "step": "1", "min_qty": "100", "min_notional": "1.5",
                                      "price_decimals": 8, "qty_decimals": 0}
    assert h["rules"]["BTCUSDT"]["step"] == "0.00001"
    assert rules_from_header(h) == _rules()  # exact Decimals back, the executor's own type
    got = list(r)
    assert [(x.kind, x.flags, x.conn, x.tick_ns, x.event_ms) for x in got] == [
        (CONNECTED, 0, 1, 42_000_000_100, 0),
        (TEXT, LAST_IN_BUFFER, 1, 42_000_000_200, 1_700_000_000_200),
        (BINARY, 0, 2, 42_000_000_300, -1),
        (SNAPSHOT, 0, 0, 42_000_000_400, 0),
        (TEXT, 0, 0, 42_000_000_500, 0),
    ]
    assert got[3].payload == b'BTCUSDT\n{"lastUpdateId":1}' and r.truncated_bytes == 0
    assert rec.bytes == sum(HEAD_V2.size + len(x.payload) for x in got)


def test_a_cut_or_corrupt_v2_file_yields_its_good_prefix(tmp_path: Path) -> None:
    path = tmp_path / "r.dzrec"
    rec = Recorder(path, {"venue": "binance"})
    payloads = [f"frame {i}".encode() * (i + 1) for i in range(40)]
    for i, p in enumerate(payloads):
        rec.write(TEXT, p, 1000 + i, conn=1, event_ms=5000 + i)
    rec.close()
    full = path.read_bytes()
    for cut in (len(full) - 1, len(full) - len(payloads[-1]), len(full) - len(payloads[-1]) - 5, len(full) - 300):
        path.write_bytes(full[:cut])
        r = Recording(path)
        got = list(r)
        assert 30 <= len(got) < 40 and r.truncated_bytes > 0
        assert [(x.payload, x.tick_ns, x.event_ms) for x in got] == [
            (p, 1000 + i, 5000 + i) for i, p in enumerate(payloads[: len(got)])
        ]
    # The CRC covers the head too: a flipped bit in the last record's event time ends the good prefix there.
    last_head = len(full) - len(payloads[-1]) - HEAD_V2.size
    corrupt = bytearray(full)
    corrupt[last_head + HEAD_V2.size - 3] ^= 0x01
    path.write_bytes(bytes(corrupt))
    r = Recording(path)
    assert len(list(r)) == 39 and r.truncated_bytes == HEAD_V2.size + len(payloads[-1])


def test_a_wrong_magic_or_an_unknown_version_is_refused_by_name(tmp_path: Path) -> None:
    path = tmp_path / "x.dzrec"
    path.write_bytes(b"nonsense, not a recording\n")
    with pytest.raises(ValueError, match=r"x\.dzrec: not a draizer recording \(bad magic\)"):
        Recording(path)
    path.write_bytes(b"DZREC9\n{}\n")
    with pytest.raises(ValueError, match=r"x\.dzrec: recording format '9' is not one this draizer reads \(1, 2\)"):
        Recording(path)
    path.write_bytes(MAGIC_V2 + b"[1, 2]\n")
    with pytest.raises(ValueError, match="the header line is not a JSON object"):
        Recording(path)
    path.write_bytes(MAGIC_V2 + b'{"venue": "binance"')
    with pytest.raises(ValueError, match="header line is incomplete"):
        Recording(path)


def test_the_committed_v1_sessions_load_as_before() -> None:
    """``DZREC1`` files (the replay fixtures) read with their 20-byte heads, event time 0, no rules."""
    for venue in ("binance", "mexc"):
        path = FIXTURES / f"session.{venue}.dzrec"
        assert path.read_bytes().startswith(MAGIC_V1)
        r = Recording(path)
        got = list(r)
        assert r.version == 1 and "version" not in r.header and r.header["venue"] == venue
        assert len(got) > 100 and r.truncated_bytes == 0
        assert {x.event_ms for x in got} == {0}
        assert {CONNECTED, SNAPSHOT} <= {x.kind for x in got}
        data = path.read_bytes()
        records_start = data.index(b"\n", len(MAGIC_V1)) + 1
        assert sum(HEAD_V1.size + len(x.payload) for x in got) == len(data) - records_start  # every byte read
        assert rules_from_header(r.header) == {}
        ticks = [x.tick_ns for x in got]
        assert ticks == sorted(ticks)


def test_bad_rules_in_a_header_are_named() -> None:
    good = rules_to_header(_rules())
    for field, value, what in (("tick", "0.0x", "tick is '0.0x'"), ("min_qty", -1, "min_qty is -1"),
                               ("step", "NaN", "step is 'NaN'"), ("qty_decimals", "3", "qty_decimals is '3'")):
        bad = {**good, "BTCUSDT": {**good["BTCUSDT"], field: value}}
        with pytest.raises(ValueError, match=rf"f\.dzrec: rules\[BTCUSDT\]\.{what}"):
            rules_from_header({"rules": bad}, "f.dzrec")


# ----- the CLI's venue list and outputs
def test_venues_repeat_or_comma_separate_and_several_go_to_a_directory(tmp_path: Path) -> None:
    cfg = load_config(FIXTURES / "backtest" / "backtest.toml")
    assert venue_names(["binance", "mexc, binance_perp", "binance"], cfg) == ["binance", "mexc", "binance_perp"]
    with pytest.raises(ConfigError, match=r"--venue: 'kraken' is not a configured venue \(configured: binance, mexc"):
        venue_names(["binance,kraken"], cfg)
    with pytest.raises(ConfigError, match="name at least one venue"):
        venue_names([" , "], cfg)
    assert output_paths(tmp_path / "one.dzrec", ["binance"]) == {"binance": tmp_path / "one.dzrec"}
    out = output_paths(tmp_path / "many", ["binance", "mexc"])
    assert out == {"binance": tmp_path / "many" / "binance.dzrec", "mexc": tmp_path / "many" / "mexc.dzrec"}
    assert (tmp_path / "many").is_dir()
    assert output_paths(tmp_path / "many", ["mexc"]) == {"mexc": tmp_path / "many" / "mexc.dzrec"}
    (tmp_path / "file").write_text("")
    with pytest.raises(ConfigError, match="several venues are recorded into a directory, and this is a file"):
        output_paths(tmp_path / "file", ["binance", "mexc"])


# ----- event times, on the simulator's own frames
def _json_e(payload: bytes, binary: bool) -> int:
    """Binance: ``E`` of the event, in a combined frame's ``data`` or at the top of a raw one."""
    obj = json.loads(payload)
    data = obj.get("data", obj) if isinstance(obj, dict) else None
    return int(data.get("E", 0)) if isinstance(data, dict) else 0


def _mexc_send_time(payload: bytes, binary: bool) -> int:
    return PushDataV3ApiWrapper.FromString(payload).sendTime if binary else 0


def _json_ts(payload: bytes, binary: bool) -> int:
    return int(json.loads(payload).get("ts", 0))


# Each kind's event time read by an independent decoder (json, the protobuf classes), to compare with.
INDEPENDENT: dict[str, Callable[[bytes, bool], int]] = {
    "binance": _json_e, "mexc": _mexc_send_time, "binance_usdm": _json_e, "mexc_contract": _json_ts,
}


def test_every_declared_kind_has_an_independent_reader_here() -> None:
    assert set(INDEPENDENT) == set(KINDS)


async def test_each_kinds_event_time_is_read_from_the_simulators_frames(still_sim: Simulator) -> None:
    for venue in still_sim.venues:
        name = venue.venue.name
        kind = kind_of(venue.venue.kind)
        fmt = kind.market_format()
        symbols = ["BTCUSDT", "ETHUSDT"] if kind.spot else [fmt.wire_symbol("BTC", "USDT")]
        channels = fmt.channels(symbols, FeedSettings(depth="diff" if kind.spot else "none"))
        transport, listener = await connect(fmt.url(still_sim.ws_url(name), channels), fmt.subscribe_frames(channels))
        # spot: bookTicker and depth diff frames both seen; perpetual: funding pushes
        wanted = ("DepthDiff", "TopOfBook") if kind.spot else ("FundingUpdate",)
        try:
            def stamped_data(listener: Any = listener, fmt: Any = fmt, wanted: tuple[str, ...] = wanted) -> bool:
                still_sim.emit(still_sim.model.n_slots)  # the market moves: quotes, then diffs when flushed
                still_sim.flush_depth()
                still_sim.push_funding()
                parsed = [type(fmt.parse(p, b)).__name__ for b, p in listener.frames]
                return set(wanted) <= set(parsed) and parsed.count(wanted[0]) >= 3

            await eventually_async(stamped_data, DEADLINE_S, f"{name}: data frames")
        finally:
            transport.disconnect()
        now_ms = time.time_ns() // 1_000_000
        stamped = 0
        for binary, payload in listener.frames:
            got = fmt.event_time_ms(payload, binary)
            assert got == INDEPENDENT[kind.name](payload, binary), (name, payload[:200])
            if got:
                stamped += 1
                assert now_ms - 60_000 < got <= now_ms, (name, got, now_ms)  # the sim's wall clock, ms
        assert stamped >= 3, name


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_an_unreadable_frame_has_no_event_time_and_raises_nothing(kind: str) -> None:
    fmt = kind_of(kind).market_format()
    for payload, binary in ((b"", False), (b"", True), (b"not json", False), (b"\xff\xfe\x00", True),
                            (b'{"E":"soon","ts":"later"}', False), (b'{"data":[1,2]}', False), (b"[]", False),
                            (b'{"E":1.5,"ts":2.5}', False), (b"\x0a\xff", True)):
        assert fmt.event_time_ms(payload, binary) == 0, (payload, binary)


def test_binance_reads_raw_and_combined_frames_alike() -> None:
    fmt = kind_of("binance").market_format()
    data = b'{"e":"depthUpdate","E":1700000000123,"s":"BTCUSDT","U":1,"u":2,"b":[],"a":[]}'
    assert fmt.event_time_ms(data, False) == 1_700_000_000_123
    assert fmt.event_time_ms(b'{"stream":"btcusdt@depth@100ms","data":' + data + b"}", False) == 1_700_000_000_123
    ticker = b'{"stream":"btcusdt@bookTicker","data":{"u":7,"s":"BTCUSDT","b":"1","B":"1","a":"2","A":"1"}}'
    assert fmt.event_time_ms(ticker, False) == 0


# ----- the venue's rules at record time
async def test_rules_are_read_from_each_kinds_exchange_info(still_sim: Simulator) -> None:
    for venue in still_sim.venues:
        v = msgspec.structs.replace(venue.venue, rest_url=still_sim.rest_url(venue.venue.name))
        rules = await fetch_rules(v, ["BTCUSDT", "ETHUSDT"])
        assert sorted(rules) == ["BTCUSDT", "ETHUSDT"], v.name
        btc = still_sim.cfg.symbols[0]
        assert btc.name == "BTCUSDT"
        assert rules["BTCUSDT"].tick == Decimal(btc.tick_size) and rules["BTCUSDT"].step == Decimal(btc.step_size)
        assert rules_from_header({"rules": rules_to_header(rules)}) == rules


async def test_unreadable_rules_record_none_and_name_the_venue_and_endpoint(
    still_sim: Simulator, caplog: pytest.LogCaptureFixture
) -> None:
    closed = next(v.venue for v in still_sim.venues if v.venue.name == "binance")
    with socket_closed() as port:
        v = msgspec.structs.replace(closed, rest_url=f"http://127.0.0.1:{port}")
        with caplog.at_level(logging.WARNING):
            assert await fetch_rules(v, ["BTCUSDT"], timeout_s=2.0) == {}
    assert f"binance: no symbol rules recorded: GET http://127.0.0.1:{port}/api/v3/exchangeInfo" in caplog.text
    caplog.clear()
    v = msgspec.structs.replace(closed, rest_url=still_sim.rest_url("binance"))
    with caplog.at_level(logging.WARNING):  # Binance refuses a symbols list naming one it does not list
        assert await fetch_rules(v, ["BTCUSDT", "NOPEUSDT"]) == {}
    assert "/api/v3/exchangeInfo: venue error -1121: Invalid symbol. (HTTP 400)" in caplog.text
    caplog.clear()
    perp = next(x.venue for x in still_sim.venues if x.venue.name == "binance_perp")
    v = msgspec.structs.replace(perp, rest_url=still_sim.rest_url("binance_perp"))
    with caplog.at_level(logging.WARNING):  # USD-M answers with every symbol: the unknown one is left out
        assert list(await fetch_rules(v, ["BTCUSDT", "NOPEUSDT"])) == ["BTCUSDT"]
    assert "binance_perp: GET " in caplog.text and "lists no rules for ['NOPEUSDT']" in caplog.text


class socket_closed:
    """A local port nothing listens on, for as long as the block runs."""

    def __enter__(self) -> int:
        import socket

        self._s = socket.socket()
        self._s.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
        return int(self._s.getsockname()[1])

    def __exit__(self, *exc: object) -> None:
        self._s.close()


# ----- several venues recorded in one process
def test_record_several_venues_into_one_directory(tmp_path: Path) -> None:
    data = make_config_dict(tmp_path / "run")
    data["symbols"] = data["symbols"][:3]
    data["sim"]["quotes_per_second"] = 600.0
    for v in data["venues"]:
        if v.get("symbols"):
            v["symbols"] = [s for s in v["symbols"] if s in {x["name"] for x in data["symbols"]}]
    cfg_path = tmp_path / "c.toml"
    cfg_path.write_bytes(msgspec.toml.encode(data))
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    sim = subprocess.Popen([sys.executable, "-m", "services.sim", "--config", str(cfg_path)], cwd=REPO, env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    out = tmp_path / "rec"
    try:
        eventually(lambda: all(listening(sv[p]) for sv in data["sim"]["venues"] for p in ("ws_port", "rest_port")),
                   60, what="the sim")
        done = subprocess.run(
            [sys.executable, "-m", "services.cli.main", "record", "--venue", "binance", "--venue", "mexc,binance_perp",
             "--duration", "2", "-o", str(out), "--config", str(cfg_path)],
            cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
        )
    finally:
        sim.send_signal(signal.SIGTERM)
        sim.wait(20)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert set(summary["venues"]) == {"binance", "mexc", "binance_perp"}
    assert sorted(p.name for p in out.iterdir()) == ["binance.dzrec", "binance_perp.dzrec", "mexc.dzrec"]
    recs = {p.stem: Recording(p) for p in out.iterdir()}
    starts = {(r.header["started_unix_ns"], r.header["started_monotonic_ns"]) for r in recs.values()}
    assert len(starts) == 1  # one moment, one clock for every file
    for name, r in recs.items():
        got = list(r)
        assert r.version == 2 and r.header["venue"] == name and r.truncated_bytes == 0
        assert summary["venues"][name]["records"] == len(got)
        assert sorted(r.header["rules"]) == sorted(r.header["symbols"]), name
        assert any(x.event_ms for x in got), name


# ----- the committed backtest recording
def _backtest() -> dict[str, Recording]:
    return {p.stem: Recording(p) for p in sorted(BACKTEST.glob("*.dzrec"))}


def test_the_committed_backtest_recording_is_whole() -> None:
    recs = _backtest()
    assert {n: r.header["kind"] for n, r in recs.items()} == BACKTEST_VENUES
    assert sum(p.stat().st_size for p in BACKTEST.iterdir()) < 1_000_000
    cfg = parse_config((BACKTEST / "backtest.toml").read_bytes())
    assert cfg.mode == "paper" and cfg.paper.fills == "model"
    assert [v.name for v in cfg.venues] == list(BACKTEST_VENUES)
    assert {s.name for s in cfg.symbols} == set(recs["binance"].header["symbols"])
    offsets = {(r.header["started_unix_ns"], r.header["started_monotonic_ns"]) for r in recs.values()}
    assert len(offsets) == 1  # recorded together, on one clock
    [(unix0, mono0)] = offsets
    for name, r in recs.items():
        got = list(r)
        assert r.version == 2 and r.truncated_bytes == 0 and len(got) > 10, name
        rules = rules_from_header(r.header, name)
        assert sorted(rules) == sorted(r.header["symbols"]), name
        for sym in cfg.symbols:
            if sym.name in rules:
                assert rules[sym.name].tick == Decimal(sym.tick_size), (name, sym.name)
                assert rules[sym.name].step == Decimal(sym.step_size), (name, sym.name)
        frames = [x for x in got if x.kind in (TEXT, BINARY)]
        assert all(x.event_ms == 0 for x in got if x.kind in (CONNECTED, SNAPSHOT)), name
        # Where the venue stamps its frames, the stamp is there, and it agrees with the receive stamp mapped to
        # the wall clock (same machine: well under a second apart).
        stamped = [x for x in frames if x.event_ms]
        assert stamped, name
        for x in stamped:
            received_ms = (unix0 + x.tick_ns - mono0) // 1_000_000
            assert abs(received_ms - x.event_ms) < 1000, (name, received_ms, x.event_ms)
    assert all(x.event_ms for x in recs["mexc"] if x.kind == BINARY)  # every MEXC data push carries sendTime
    assert all(x.event_ms for x in recs["binance_perp"] if x.kind == TEXT)  # every markPriceUpdate carries E
    binance = [x for x in recs["binance"] if x.kind == TEXT]
    assert all(x.event_ms for x in binance if b"depthUpdate" in x.payload)
    assert all(not x.event_ms for x in binance if b"@bookTicker" in x.payload)  # Binance sends none there


def test_the_committed_backtest_recording_replays_with_opportunities() -> None:
    cfg = parse_config((BACKTEST / "backtest.toml").read_bytes())
    result = replay(cfg, sorted(BACKTEST.glob("*.dzrec")))
    assert result.opportunities > 0 and result.truncated_bytes == 0
    assert set(result.venues) == set(BACKTEST_VENUES)
    for venue in ("binance", "mexc"):
        c = result.venues[venue]
        assert c["books"] > 0 and c["quotes"] > 0 and c["malformed"] == 0 and c["gaps"] == 0, (venue, c)
    assert result.venues["binance_perp"]["malformed"] == 0
