"""`draizer preflight` against the real simulator standing in for the venues: everything passes; a wrong or
missing key, a skewed venue clock, a configured step finer than the venue's, too small a balance and rate limits
above the venue's each fail their own row, and the command exits non-zero. A live `draizer run` refuses to start."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from services.cli.main import main
from services.cli.preflight import preflight
from services.cli.preflight_rules import Check
from services.sim.app import Simulator
from shared.config import Config, parse_config
from tests.sim_kit import CREDS, DEADLINE_S, sim_config

SPOT = ("binance", "mexc")
ROWS = ["keys present", "clock offset", "exchangeInfo rules", "rate limits", "keys accepted", "trading permission",
        "balance"]


@pytest.fixture(autouse=True)
def credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for venue, (key, secret) in CREDS.items():
        monkeypatch.setenv(f"DRAIZER_{venue.upper()}_API_KEY", key)
        monkeypatch.setenv(f"DRAIZER_{venue.upper()}_API_SECRET", secret)


async def running_sim(tmp_path: Path, **sim: Any) -> Simulator:
    s = Simulator(sim_config(tmp_path, **sim), CREDS, emit_quotes=False)
    await s.start()
    return s


@pytest.fixture
async def venues(tmp_path: Path) -> AsyncIterator[Simulator]:
    s = await running_sim(tmp_path)
    try:
        yield s
    finally:
        await s.stop()


def live_data(sim: Simulator) -> dict[str, Any]:
    """The simulator's config as a live one whose venues are the simulator's ports."""
    data: dict[str, Any] = msgspec.to_builtins(sim.cfg)
    data["mode"] = "live"
    data["sim"]["enabled"] = False
    for v in data["venues"]:
        v["rest_url"] = sim.rest_url(v["name"])
    return data


def live_config(sim: Simulator, edit: Any = None) -> Config:
    data = live_data(sim)
    if edit is not None:
        edit(data)
    return parse_config(msgspec.toml.encode(data))


async def rows_of(cfg: Config) -> dict[tuple[str, str], Check]:
    rows = await asyncio.wait_for(preflight(cfg, timeout_s=5.0), DEADLINE_S)
    return {(r.venue, r.check): r for r in rows}


def failed(rows: dict[tuple[str, str], Check]) -> set[tuple[str, str]]:
    return {key for key, r in rows.items() if not r.ok}


async def test_everything_passes_on_the_simulator(venues: Simulator) -> None:
    rows = await rows_of(live_config(venues))
    assert failed(rows) == set(), [r for r in rows.values() if not r.ok]
    names = [v.name for v in venues.cfg.venues]
    assert sorted(rows) == sorted((v, c) for v in names for c in ROWS)
    assert "recvWindow 5000 ms / 2" in rows["binance", "clock offset"].reason
    assert "REQUEST_WEIGHT 6000/60s" in rows["binance", "rate limits"].reason
    assert "declares none" in rows["mexc", "rate limits"].reason


async def test_a_wrong_key_fails_keys_accepted(venues: Simulator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DRAIZER_BINANCE_API_SECRET", "wrong")
    monkeypatch.delenv("DRAIZER_MEXC_API_KEY")
    rows = await rows_of(live_config(venues))
    assert ("binance", "keys accepted") in failed(rows)
    assert "the venue refused: code -1022" in rows["binance", "keys accepted"].reason
    assert "wrong" not in rows["binance", "keys accepted"].reason
    assert rows["binance", "clock offset"].ok and rows["binance", "exchangeInfo rules"].ok
    assert rows["binance", "balance"].reason == "not checked: keys accepted failed"
    assert rows["mexc", "keys present"].reason == "not set: DRAIZER_MEXC_API_KEY"
    assert [k for k in rows if k[0] == "mexc"] == [("mexc", "keys present")]


async def test_a_skewed_venue_clock_fails_the_clock_row(venues: Simulator) -> None:
    venues.skew_clock("binance", 10_000)  # the venue's clock 10 s ahead of this host's
    rows = await rows_of(live_config(venues))
    assert failed(rows) == {("binance", "clock offset")}
    reason = rows["binance", "clock offset"].reason
    assert reason.startswith("venue clock +") and "bound is +/-2500 ms" in reason and "NTP" in reason
    offset = int(reason.split()[2])
    assert 9_000 < offset < 11_000
    assert rows["binance", "keys accepted"].ok  # signed requests carry the venue's time: only the row fails


async def test_a_configured_step_finer_than_the_venues_fails_the_rules_row(venues: Simulator) -> None:
    def finer_btc_step(data: dict[str, Any]) -> None:
        btc = next(s for s in data["symbols"] if s["name"] == "BTCUSDT")
        btc["step_size"] = "0.000001"  # the venue's is 0.00001

    rows = await rows_of(live_config(venues, finer_btc_step))
    assert {("binance", "exchangeInfo rules"), ("mexc", "exchangeInfo rules")} <= failed(rows)
    assert all(k[1] == "exchangeInfo rules" for k in failed(rows))
    reason = rows["binance", "exchangeInfo rules"].reason
    assert reason == "BTCUSDT: configured step_size 0.000001 is not a multiple of the venue's 0.00001"


async def test_rate_limits_above_the_venues_fail_their_row(venues: Simulator) -> None:
    def more_orders(data: dict[str, Any]) -> None:
        data["venues"][0]["limits"] = {"orders_per_10s": 100}  # binance declares 50 per 10 s

    rows = await rows_of(live_config(venues, more_orders))
    assert failed(rows) == {("binance", "rate limits")}
    assert "ORDERS: ours allow 100/10s, the venue 50" in rows["binance", "rate limits"].reason


async def test_insufficient_balance_fails_the_balance_row(tmp_path: Path) -> None:
    poor = await running_sim(tmp_path, starting_balance_usd=100.0)
    try:
        rows = await rows_of(live_config(poor))
    finally:
        await poor.stop()
    assert {(v, "balance") for v in SPOT} <= failed(rows)
    assert all(k[1] == "balance" for k in failed(rows))
    # The largest trade: the funding carry's spot leg, min(max_position_usd 5000, 10 % of 100000), within
    # risk.max_notional_usd 5000; over the headroom 0.95.
    assert rows["binance", "balance"].reason == ("USDT free 100.00000000 < 5263.16 (one 5000 USD trade / "
                                                 "balance_headroom 0.95)")


async def test_the_command_exits_0_when_all_pass_and_1_on_a_failure(
    venues: Simulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "live.toml"
    path.write_bytes(msgspec.toml.encode(live_data(venues)))
    assert await asyncio.wait_for(asyncio.to_thread(main, ["preflight", "-c", str(path)]), DEADLINE_S) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split() == ["VENUE", "CHECK", "STATUS", "REASON"] and "checks passed" in out
    monkeypatch.setenv("DRAIZER_BINANCE_API_SECRET", "wrong")
    assert await asyncio.wait_for(asyncio.to_thread(main, ["preflight", "--config", str(path)]), DEADLINE_S) == 1
    out = capsys.readouterr().out
    assert any(line.split()[:4] == ["binance", "keys", "accepted", "FAIL"] for line in out.splitlines())


async def test_a_live_run_refuses_to_start_on_a_failed_preflight(
    venues: Simulator, tmp_path: Path, run_dir: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    venues.skew_clock("mexc", -20_000)
    path = tmp_path / "live.toml"
    path.write_bytes(msgspec.toml.encode(live_data(venues)))
    argv = ["run", "--config", str(path), "--run-dir", str(run_dir), "--quiet"]
    assert await asyncio.wait_for(asyncio.to_thread(main, argv), DEADLINE_S) == 1
    captured = capsys.readouterr()
    assert any(line.split()[:4] == ["mexc", "clock", "offset", "FAIL"] for line in captured.out.splitlines())
    assert "preflight failed: not starting" in captured.err
    assert not (run_dir / "supervisord.pid").exists() and not (run_dir / "draizer-run.lock").exists()
