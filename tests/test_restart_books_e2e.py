"""A real paper run whose executor — or risk — is killed with kill -9 mid-run settles clean.

`draizer run` (placement "processes": the executor and risk are programs of their own) trades on a busy simulator;
once executions happened, the victim is killed, supervisord restarts it, trading goes on, and the run ends with
Ctrl-C: the wind-down and the settlement report. The executor's ledger for the run must equal the venues'
balance changes exactly, and risk's PnL for the run the executor's booked PnL: the executor rebuilds its books
from its order journal, risk keeps its session PnL in its state file and books from the executor's numbered list
what the events socket lost while either was away. Before the fix each process counted only its own lifetime,
and the report said ``! executor ledger = venue balance changes … venue -1061.63 vs executor 0`` (exit 3).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from shared.shm import shm_path
from tests.conftest import eventually, make_config_dict, write_config
from tests.supervisor_kit import supervisor_status

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[1]
READY_S = 240.0  # a cold first start compiles the detector's kernels; two busy cores make it slower still
EXECUTIONS_BEFORE = 3  # executions that move money before the kill
EXECUTIONS_AFTER = 3  # after the restarted program runs: more than max_concurrent (2) reconciled ones


def trades(instance: str) -> int | None:
    """Executions that reached the venues so far (refused ones left out), as the bridge counted them."""
    out = subprocess.run([sys.executable, "-m", "services.cli.main", "status", "--json", "--instance", instance],
                         capture_output=True, text=True, cwd=REPO, timeout=20, check=False)
    if out.returncode != 0:
        return None
    executions: dict[str, int] = json.loads(out.stdout)["executions"]
    return sum(n for outcome, n in executions.items() if outcome != "aborted")


def settlement(said: str) -> list[str]:
    """The report's lines ("  " ok, "! " failed), after its heading."""
    head = said.find("draizer: settlement\n")
    assert head >= 0, said[-4000:]
    lines = said[head:].splitlines()[1:]
    return [line for line in lines if line.startswith(("  ", "! "))]


@pytest.mark.parametrize("victim", ["executor", "risk"])
def test_a_kill_9_mid_run_settles_with_the_ledger_equal_to_the_venues(
    victim: str, tmp_path: Path, run_dir: Path, request: pytest.FixtureRequest
) -> None:
    data = make_config_dict(
        run_dir,
        runtime={"placement": "processes", "heartbeat_interval_s": 0.2},
        sim={"quotes_per_second": 3000.0, "dislocation_probability": 0.01},
        sinks={"metrics_interval_s": 0.5},
    )
    cfg_path = tmp_path / "draizer.toml"
    cfg = write_config(cfg_path, data)
    request.addfinalizer(lambda: shm_path(cfg.instance).unlink(missing_ok=True))
    n_feeds = len(cfg.venues)
    out_path = tmp_path / "run.out"
    with open(out_path, "wb") as out:
        # Ended by Ctrl-C once the test has seen what it needs: a fixed --duration would race the restart.
        proc = subprocess.Popen(
            [sys.executable, "-m", "services.cli.main", "run", "--config", str(cfg_path), "--run-dir", str(run_dir),
             "--duration", "900", "--quiet"],
            cwd=REPO, stdout=out, stderr=subprocess.STDOUT,
        )
    code: int | None = None
    try:
        try:
            eventually(lambda: "draizer: ready after" in out_path.read_text() or proc.poll() is not None,
                       timeout=READY_S, what="the pipeline ready")
        except AssertionError as exc:  # which service held the start, in its own words
            raise AssertionError(f"{exc}\n{out_path.read_text()[-2000:]}{_every_log_tail(run_dir)}") from None
        assert proc.poll() is None, out_path.read_text()[-4000:]
        eventually(lambda: (n := trades(cfg.instance)) is not None and n >= EXECUTIONS_BEFORE, timeout=120,
                   what=f"{EXECUTIONS_BEFORE} executions before the kill")
        _state, pid = eventually(lambda: (s := supervisor_status(run_dir, cfg_path, "processes", n_feeds).get(victim))
                                 and s[0] == "RUNNING" and s, timeout=30, what=f"{victim} running")
        os.kill(pid, signal.SIGKILL)
        eventually(lambda: (s := supervisor_status(run_dir, cfg_path, "processes", n_feeds).get(victim))
                   and s[0] == "RUNNING" and s[1] != pid, timeout=60, what=f"{victim} restarted by supervisord")
        restarted: int = eventually(lambda: trades(cfg.instance), timeout=30, what="the bridge's counts")
        eventually(lambda: (n := trades(cfg.instance)) is not None and n >= restarted + EXECUTIONS_AFTER,
                   timeout=180, what=f"{EXECUTIONS_AFTER} executions after the restart of {victim}")
        proc.send_signal(signal.SIGINT)  # the operator's Ctrl-C: wind down, settle, stop in order
        code = proc.wait(240)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(120)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(30)
    said = out_path.read_text()
    logs = _log_tails(run_dir, victim)
    lines = settlement(said)
    assert code == 0, "\n".join(lines) + "\n" + said[-3000:] + logs
    assert not [line for line in lines if line.startswith("! ")], "\n".join(lines)
    assert "  executor ledger = venue balance changes, asset by asset (exact)" in lines, "\n".join(lines)
    assert any(line.startswith("  booked PnL: executor") for line in lines), "\n".join(lines)
    # Each restarted program took the run's books back rather than starting from zero.
    log = (run_dir / f"{victim}.log").read_text()
    resumed = "books resumed from the journal" if victim == "executor" else "continues: session pnl"
    assert resumed in log, log[-3000:]


def _every_log_tail(run_dir: Path) -> str:
    logs = sorted(run_dir.glob("*.log"))
    return "".join(f"\n--- {p.name} ---\n{p.read_text(errors='replace')[-1500:]}" for p in logs)


def _log_tails(run_dir: Path, victim: str) -> str:
    parts: list[Any] = []
    for name in (victim, "risk" if victim == "executor" else "executor"):
        path = run_dir / f"{name}.log"
        if path.exists():
            parts.append(f"\n--- {name}.log ---\n{path.read_text()[-3000:]}")
    return "".join(parts)
