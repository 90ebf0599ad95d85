"""`draizer run --duration N` trades for N seconds counted from the moment every service is up, however long the
start takes, and a start that never gets there fails with exit 4 naming what it waited for.

The slow start is real: an empty ``NUMBA_CACHE_DIR`` makes the engine compile the detector's kernels (~14 s on
the 2-core box), as a fresh checkout's first run did before the install precompiled them.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from services.bridge.journal import expand_paths, read_journal
from services.cli.readiness import expected_services, not_ready
from shared.shm import shm_path
from tests.conftest import make_config_dict, write_config

REPO = Path(__file__).resolve().parents[1]


def _service(state: str = "RUNNING", age: float | None = 0.1, pid: int | None = None) -> dict[str, Any]:
    return {"state": state, "heartbeat_age_s": age, "pid": os.getpid() if pid is None else pid}


def test_ready_only_when_every_expected_service_runs_with_a_fresh_heartbeat_from_a_live_process(
    tmp_path: Path,
) -> None:
    cfg = write_config(tmp_path / "c.toml", make_config_dict(tmp_path))
    names = expected_services(cfg)
    assert names[-3:] == ["detector", "risk", "executor"] and names[0] == f"feed.{cfg.venues[0].name}"
    assert len(names) == len(cfg.venues) + 3
    assert not_ready(cfg, None) == ["bridge (no shared memory yet)", *(f"{n} (not seen)" for n in names)]
    everyone = {name: _service() for name in names}
    assert not_ready(cfg, {"services": everyone}) == []
    dead_pid = _exited_pid()
    cases = {
        "STARTING": _service("STARTING"),
        "no fresh heartbeat": _service(age=60.0),
        "never beat": _service(age=None),
        "dead process": _service(pid=dead_pid),
    }
    for what, svc in cases.items():
        waiting = not_ready(cfg, {"services": {**everyone, "risk": svc}})
        assert len(waiting) == 1 and waiting[0].startswith("risk ("), (what, waiting)
    missing = {k: v for k, v in everyone.items() if k != "executor"}
    assert not_ready(cfg, {"services": missing}) == ["executor (not seen)"]


def _exited_pid() -> int:
    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


def _run(cfg_path: Path, run_dir: Path, cache: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache)}  # empty: the engine compiles its kernels at start
    return subprocess.run(
        [sys.executable, "-m", "services.cli.main", "run", "--config", str(cfg_path), "--run-dir", str(run_dir),
         "--quiet", *extra],
        capture_output=True, text=True, timeout=240, cwd=REPO, env=env, check=False,
    )


@pytest.mark.e2e
def test_duration_is_trading_time_after_a_slow_start(
    tmp_path: Path, run_dir: Path, request: pytest.FixtureRequest
) -> None:
    data = make_config_dict(run_dir, runtime={"placement": "single"},
                            sim={"quotes_per_second": 3000.0, "dislocation_probability": 0.01})
    cfg = write_config(tmp_path / "draizer.toml", data)
    request.addfinalizer(lambda: shm_path(cfg.instance).unlink(missing_ok=True))
    t0 = time.monotonic()
    run = _run(tmp_path / "draizer.toml", run_dir, tmp_path / "numba-cache", "--duration", "3", "--no-settle")
    took = time.monotonic() - t0
    out = run.stdout + run.stderr
    assert run.returncode == 0, out
    ready_line = next((line for line in run.stdout.splitlines() if line.startswith("draizer: ready after ")), None)
    assert ready_line is not None, out
    start_s = float(ready_line.removeprefix("draizer: ready after ").removesuffix(" s"))
    assert start_s > 3.0, f"the start was not slower than the duration, the test proves nothing: {ready_line}"
    assert took >= start_s + 3.0, (took, start_s)
    # Three seconds of trading after the start: orders went out and risk refused nothing for a halt.
    records = [r for p in expand_paths([run_dir / "journal"]) for r in read_journal(p)]
    kinds = Counter(r.kind for r in records)
    reasons = Counter(str(r.data.get("reason")) for r in records if r.kind == "decision")
    assert kinds["order"] > 0, (kinds, reasons)
    assert reasons["kill_switch"] == 0, reasons


@pytest.mark.e2e
def test_a_start_that_never_gets_ready_fails_with_exit_4_naming_what_it_waited_for(
    tmp_path: Path, run_dir: Path, request: pytest.FixtureRequest
) -> None:
    data = make_config_dict(run_dir, runtime={"placement": "single"}, sim={"quotes_per_second": 50.0})
    cfg = write_config(tmp_path / "draizer.toml", data)
    request.addfinalizer(lambda: shm_path(cfg.instance).unlink(missing_ok=True))
    run = _run(tmp_path / "draizer.toml", run_dir, tmp_path / "numba-cache", "--duration", "60",
               "--start-timeout", "1")
    out = run.stdout + run.stderr
    assert run.returncode == 4, out
    assert "draizer: not ready after 1 s; still waiting for: " in run.stderr, out
    assert "detector" in run.stderr.split("still waiting for: ", 1)[1], out
    assert "draizer: ready after" not in out and "settlement" not in out, out
    # The pipeline it started is stopped: no process of this run directory is left.
    assert _processes_of(run_dir) == [], out


def _processes_of(run_dir: Path) -> list[int]:
    """Processes started for this run directory (supervisord passes it to every program it runs)."""
    mark = f"DRAIZER_RUN_DIR={run_dir}".encode()
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if mark in (proc / "environ").read_bytes().split(b"\0"):
                found.append(int(proc.name))
        except OSError:
            continue
    return found
