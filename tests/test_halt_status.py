"""When approvals stop, the status line says HALTED, why, and for how long: from risk's halt gauges, through the
bridge's shared memory, to the line `draizer run` prints and `draizer status`. Pure parts first, then a real
pipeline whose failure breaker trips (the simulator refuses Binance's orders) and whose kill switch is thrown."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from pathlib import Path

import msgspec
import pytest

from services.bridge.state import BridgeState
from services.cli.status_line import StatusLine
from services.risk.service import halt_gauges
from services.risk.state import MS_PER_DAY, utc_day
from shared import halt
from shared.messages import OUTCOME_REJECTED, OUTCOME_UNWOUND, STRATEGY_FUNDING, Stats
from shared.shm import ShmWriter, shm_path
from tests.conftest import eventually, make_config_dict, write_config
from tests.test_bridge_state import SERVICES, registry
from tests.test_risk_rules import WALL, WALL_MS, book, execution, limits

REPO = Path(__file__).resolve().parents[1]
S = 10**9


def test_risk_reports_each_halt_with_its_end_and_nothing_once_it_is_over() -> None:
    b = book(limits(failure_breaker_count=2, failure_window_s=60.0, breaker_cooldown_s=30.0,
                    loss_breaker_usd=50.0, max_daily_loss_usd=80.0))
    quiet = halt_gauges(b, WALL_MS)
    assert set(quiet) == set(halt.GAUGES) and not any(quiet.values())
    assert halt.halt_conditions(quiet) == [] and halt.halt_text([], WALL_MS) is None

    b.on_execution(execution(1, outcome=OUTCOME_UNWOUND), WALL)
    b.on_execution(execution(2, outcome=OUTCOME_REJECTED), WALL + 1 * S)  # the second failure trips it
    g = halt_gauges(b, WALL_MS + 1_000)
    assert g[halt.FAILURE_UNTIL] == WALL_MS + 1_000 + 30_000
    conditions = halt.halt_conditions(g)
    assert conditions == [{"reason": "failure_breaker", "until_ms": WALL_MS + 31_000, "scope": "spot"}]
    # The seconds left count down as the reader's clock moves; the snapshot itself does not change.
    assert halt.halt_text(conditions, WALL_MS + 1_000) == "HALTED failure breaker 30s"
    assert halt.halt_text(conditions, WALL_MS + 21_500) == "HALTED failure breaker 10s"
    assert halt.halt_text(conditions, WALL_MS + 31_000) is None  # over, before risk's next heartbeat says so
    assert not halt_gauges(b, WALL_MS + 31_000)[halt.FAILURE_UNTIL]

    # A loss beyond the breaker and the day's limit: both, the day's until the next UTC day.
    b.on_execution(execution(3, pnl=-90.0), WALL + 40 * S)
    g = halt_gauges(b, WALL_MS + 40_000)
    assert g[halt.LOSS_UNTIL] == WALL_MS + 40_000 + 30_000
    assert g[halt.DAILY_LOSS_UNTIL] == (utc_day(WALL) + 1) * MS_PER_DAY
    text = halt.halt_text(halt.halt_conditions(g), WALL_MS + 40_000)
    assert text is not None and text.startswith("HALTED loss breaker 30s, daily loss limit ")

    # The kill switch: until an operator resumes; the settlement's wind-down kill: until the run ends.
    b.kill("operator command")
    assert halt.halt_text(halt.halt_conditions(halt_gauges(b, WALL_MS)), WALL_MS).startswith(  # type: ignore[union-attr]
        "HALTED kill switch (until resume)")
    b.resume()
    b.kill("end-of-run settlement", persist=False)
    g = halt_gauges(b, WALL_MS)
    assert (g[halt.KILL], g[halt.KILL_SESSION]) == (0.0, 1.0)
    # (the day's loss limit stays reached: resume clears breakers, not the day's PnL)
    assert halt.halt_text(halt.halt_conditions(g), WALL_MS) == (
        "HALTED end-of-run wind-down (until the run ends), daily loss limit 7h 53m")


def test_the_carrys_own_breaker_and_the_orphan_latch() -> None:
    b = book(limits(failure_breaker_count=1, breaker_cooldown_s=20.0))
    b.on_execution(msgspec.structs.replace(execution(1, outcome=OUTCOME_UNWOUND), strategy=STRATEGY_FUNDING), WALL)
    conditions = halt.halt_conditions(halt_gauges(b, WALL_MS))
    assert conditions == [{"reason": "carry_failure_breaker", "until_ms": WALL_MS + 20_000, "scope": "carry"}]
    assert halt.halt_text(conditions, WALL_MS) == "HALTED carry failure breaker 20s"
    b.breakers.latch_orphan("opportunity 9 orphaned")
    assert halt.halt_text(halt.halt_conditions(halt_gauges(b, WALL_MS)), WALL_MS) == (
        "HALTED orphaned position (until resume), carry failure breaker 20s")
    assert halt.halt_conditions({}) is None and halt.halt_conditions({"halted": 0.0}) is None  # an older risk


def risk_stats(gauges: dict[str, float]) -> Stats:
    return Stats("risk", os.getpid(), "RUNNING", time.monotonic_ns(), {}, gauges, [], {})


def test_the_status_line_leads_with_halted_from_risks_gauges_in_shared_memory(request: pytest.FixtureRequest) -> None:
    state = BridgeState(registry(), SERVICES)
    instance = f"t{uuid.uuid4().hex[:12]}"
    path = shm_path(instance)
    request.addfinalizer(lambda: path.unlink(missing_ok=True))
    line = StatusLine(instance, "run-a")
    b = book(limits(failure_breaker_count=1, breaker_cooldown_s=45.0))
    now_ms = time.time_ns() // 1_000_000
    b.on_execution(execution(1, outcome=OUTCOME_UNWOUND), now_ms * 10**6)
    with ShmWriter(path, state.layout, "run-a") as writer:
        state.on_event(risk_stats(halt_gauges(b, now_ms)))
        writer.publish(state.snapshot())
        first = line.render()
        assert re.match(r"HALTED failure breaker (45|44)s \| quotes ", first), first
        b.resume()
        state.on_event(risk_stats(halt_gauges(b, time.time_ns() // 1_000_000)))
        writer.publish(state.snapshot())
        assert line.render().startswith("quotes "), line.render()  # resumed: no HALTED
        b.kill("operator command")
        state.on_event(risk_stats(halt_gauges(b, time.time_ns() // 1_000_000)))
        writer.publish(state.snapshot())
        assert line.render().startswith("HALTED kill switch (until resume) | quotes ")
        assert line.render(final=True).startswith("quotes ")  # after the stop nothing is halted: it is stopped


# ----------------------------------------------------------------------------------------- a real pipeline
COOLDOWN_S = 60.0


def countdown(lines: list[str]) -> list[int] | None:
    """The seconds left of the first three consecutive status lines that show the failure breaker's halt with
    the count going down; None until there are such."""
    run: list[int] = []
    for x in lines:
        if x.startswith("starting ") or x.startswith("draizer: "):
            continue  # not a status line
        m = re.match(r"HALTED failure breaker (\d+)s \| ", x)
        if m is None:
            run = []
            continue
        s = int(m.group(1))
        run = [*run, s] if run and s < run[-1] else [s]
        if len(run) == 3:
            return run
    return None
def _reject_binance_orders(rest_url: str) -> None:
    """The simulator's test hook: Binance refuses the next orders, so cross-exchange executions fail."""
    body = json.dumps({"kind": "reject", "count": 1_000_000}).encode()
    req = urllib.request.Request(f"{rest_url}/sim/order_fault", data=body, method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status == 200


@pytest.mark.e2e
def test_a_tripped_breaker_and_the_kill_switch_show_on_the_status_line_of_a_real_run(
    tmp_path: Path, run_dir: Path, request: pytest.FixtureRequest
) -> None:
    data = make_config_dict(
        run_dir, runtime={"placement": "processes", "heartbeat_interval_s": 0.2},
        sim={"quotes_per_second": 3000.0, "dislocation_probability": 0.01},
        # The first failed execution halts the spot strategies for long enough to watch the seconds go down.
        risk={"failure_breaker_count": 1, "failure_window_s": 60.0, "breaker_cooldown_s": COOLDOWN_S},
    )
    cfg_path = tmp_path / "draizer.toml"
    cfg = write_config(cfg_path, data)
    request.addfinalizer(lambda: shm_path(cfg.instance).unlink(missing_ok=True))
    proc = subprocess.Popen(
        [sys.executable, "-m", "services.cli.main", "run", "--config", str(cfg_path), "--run-dir", str(run_dir),
         "--duration", "600"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    lines: list[str] = []
    assert proc.stdout is not None
    out = proc.stdout
    reader = threading.Thread(target=lambda: lines.extend(iter(out.readline, "")), daemon=True)
    reader.start()
    code = None
    try:
        eventually(lambda: any(x.startswith("draizer: ready after") for x in lines) or proc.poll() is not None,
                   timeout=180, what="the pipeline ready")
        assert proc.poll() is None, "".join(lines)[-3000:]
        binance = next(v for v in cfg.venues if v.name == "binance")
        _reject_binance_orders(binance.rest_url)

        # Three status lines in a row showing the breaker's halt, the seconds left going down with each. (The
        # breaker may trip before the start is over, or trip again after a cooldown: any such three will do.)
        seconds = eventually(lambda: countdown(lines), timeout=150, what="three HALTED status lines in a row")
        assert all(0 < s <= COOLDOWN_S for s in seconds), seconds

        kill = subprocess.run(
            [sys.executable, "-m", "services.cli.main", "kill", "--config", str(cfg_path), "--run-dir", str(run_dir)],
            capture_output=True, text=True, timeout=30, cwd=REPO, check=False)
        assert kill.returncode == 0, kill.stdout + kill.stderr
        eventually(lambda: any(x.startswith("HALTED kill switch (until resume)") for x in lines), timeout=30,
                   what="the kill switch on the status line")
        status = subprocess.run([sys.executable, "-m", "services.cli.main", "status", "--instance", cfg.instance],
                                capture_output=True, text=True, timeout=30, cwd=REPO, check=False)
        assert status.returncode == 0, status.stderr
        assert "risk           HALTED kill switch (until resume)" in status.stdout, status.stdout
        proc.send_signal(signal.SIGINT)
        code = proc.wait(180)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(120)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(30)
        reader.join(10)
        out.close()
    said = "".join(lines)
    assert code == 0, said[-4000:]
    settlement = said.split("draizer: settlement\n", 1)[1]
    assert "  trading halted: failure breaker tripped " in settlement, settlement
    assert re.search(r"  PnL [-+]\d+\.\d\d USD = [-+]\d+\.\d\d filled executions", settlement), settlement
    final = next(x for x in lines if x.startswith("draizer: stopped; final: "))
    assert "HALTED" not in final, final
