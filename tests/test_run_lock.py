"""`draizer run` twice on one run directory at the same instant: exactly one runs the pipeline, the other
fails at once naming the run directory and the pid of the one that runs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from shared.shm import shm_path
from tests.conftest import eventually, make_config_dict, write_config

REPO = Path(__file__).resolve().parents[1]


def parent_of(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[1])  # the field after "(comm) state"


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def supervisord_of(run_dir: Path) -> int | None:
    """The live supervisord the run directory's pid file names."""
    try:
        pid = int((run_dir / "supervisord.pid").read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if alive(pid) else None


@pytest.mark.e2e
def test_two_runs_started_together_on_one_run_dir_one_runs_the_other_fails(tmp_path: Path, run_dir: Path) -> None:
    cfg_path = tmp_path / "draizer.toml"
    # The lightest pipeline: one engine process, a slow simulator. What matters is who gets to start it.
    cfg = write_config(cfg_path, make_config_dict(run_dir, runtime={"placement": "single"},
                                                  sim={"quotes_per_second": 50.0}))
    cmd = [sys.executable, "-m", "services.cli.main", "run", "--config", str(cfg_path), "--run-dir", str(run_dir),
           "--duration", "300", "--no-settle", "--quiet"]
    outs = [tmp_path / "run-0.out", tmp_path / "run-1.out"]
    files = [out.open("wb") for out in outs]
    procs: list[subprocess.Popen[bytes]] = []
    supervisord = None
    try:
        for f in files:  # back to back: both check the run directory before either starts supervisord
            procs.append(subprocess.Popen(cmd, cwd=REPO, stdout=f, stderr=subprocess.STDOUT))

        loser = eventually(lambda: next((p for p in procs if p.poll() is not None), None), timeout=60,
                           what="one of the two `draizer run` to give up")
        i = procs.index(loser)
        winner = procs[1 - i]
        said = outs[i].read_text()
        assert loser.returncode == 2, said
        assert f"draizer: {run_dir}: a pipeline is already running there (`draizer run` pid {winner.pid} " in said
        assert "placement" not in said, said  # it stopped before starting anything
        # The other one runs the pipeline: its own supervisord is up, and it keeps running.
        supervisord = eventually(lambda: (pid := supervisord_of(run_dir)) and parent_of(pid) == winner.pid and pid,
                                 timeout=60, what=f"the supervisord of `draizer run` pid {winner.pid}")
        assert winner.poll() is None, outs[1 - i].read_text()
        assert (run_dir / "draizer-run.lock").read_text().strip() == str(winner.pid)
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)  # stops the pipeline in order
        for p in procs:
            try:
                p.wait(90)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        if supervisord is not None and alive(supervisord):  # only if the stop above failed
            os.kill(supervisord, signal.SIGTERM)
            eventually(lambda: not alive(supervisord), timeout=60, what="supervisord to stop")
        for f in files:
            f.close()
        shm_path(cfg.instance).unlink(missing_ok=True)
    assert winner.returncode == 0, outs[1 - i].read_text()
    assert supervisord is not None and not alive(supervisord)  # nothing left behind
