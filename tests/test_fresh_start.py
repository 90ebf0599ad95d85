"""Every paper run starts clean unless asked otherwise: the last run's state moves to previous/<time>/ (nothing is
deleted), --keep-state carries it on, live mode always keeps it. Unit cases on a built run directory, then real
consecutive runs of `draizer run` in one run directory."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from services.cli.fresh_start import PREVIOUS, move_aside, prepare_state
from shared.errors import ConfigError
from shared.shm import shm_path
from tests.conftest import make_config_dict, write_config

REPO = Path(__file__).resolve().parents[1]
T = 1_796_515_285.0  # 2026-12-06T00:01:25Z

LAST_RUN = {  # what a run leaves in its run directory, relative path -> content
    "state/risk.json": '{"daily_pnl_usd": -41.21}',
    "state/orders/orders-1.jsonl": "{}\n",
    "state/paper/binance.json": "{}",
    "journal/journal-20261206T000125.472828Z-0000.jsonl": "{}\n",
    "bridge/checkpoint.json": "{}",
    "events/risk/log-1": "x",
    "risk.log": "the last run's lines\n",
    "supervisord.log": "x\n",
    "supervisord.log.1": "x\n",
}
STAYS = ("draizer-run.lock", "effective-config.toml", "supervisord.pid")


def built(run_dir: Path) -> None:
    for rel, text in {**LAST_RUN, **dict.fromkeys(STAYS, "x")}.items():
        (run_dir / rel).parent.mkdir(parents=True, exist_ok=True)
        (run_dir / rel).write_text(text)


def files(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): p.read_text() for p in sorted(root.rglob("*")) if p.is_file()}


def test_the_last_runs_state_moves_aside_whole_and_nothing_else(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    cfg = write_config(tmp_path / "c.toml", make_config_dict(run_dir))
    built(run_dir)
    moved = move_aside(cfg, run_dir, REPO, now=T)
    assert moved == run_dir / PREVIOUS / "20261206T000125Z"
    assert files(moved) == LAST_RUN  # every byte, under the same names
    assert files(run_dir).keys() == {*STAYS, *(f"{PREVIOUS}/20261206T000125Z/{rel}" for rel in LAST_RUN)}
    assert move_aside(cfg, run_dir, REPO, now=T) is None  # nothing left to move: no empty directory either
    built(run_dir)  # a second run within the same second
    assert move_aside(cfg, run_dir, REPO, now=T) == run_dir / PREVIOUS / "20261206T000125Z-1"


def test_state_configured_outside_the_run_directory_moves_too(tmp_path: Path) -> None:
    run_dir, elsewhere = tmp_path / "run", tmp_path / "keep"
    data = make_config_dict(run_dir, risk={"state_file": str(elsewhere / "risk.json")},
                            sinks={"journal_dir": str(elsewhere / "journal")})
    cfg = write_config(tmp_path / "c.toml", data)
    (elsewhere / "journal").mkdir(parents=True)
    (elsewhere / "risk.json").write_text("{}")
    (elsewhere / "journal" / "j.jsonl").write_text("{}\n")
    moved = move_aside(cfg, run_dir, REPO, now=T)
    assert moved is not None and not (elsewhere / "risk.json").exists()
    inside = moved / "elsewhere" / str(elsewhere).lstrip("/")
    assert files(inside) == {"risk.json": "{}", "journal/j.jsonl": "{}\n"}


def test_keep_state_keeps_it_and_live_mode_always_keeps_it_and_refuses_fresh(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    paper = write_config(tmp_path / "p.toml", make_config_dict(run_dir))
    built(run_dir)
    assert prepare_state(paper, run_dir, REPO, keep_state=True, fresh=False) is None
    assert (run_dir / "state/risk.json").exists()
    live = write_config(tmp_path / "l.toml", make_config_dict(run_dir, mode="live", sim={"enabled": False}))
    assert prepare_state(live, run_dir, REPO, keep_state=False, fresh=False) is None
    assert files(run_dir).keys() == {*STAYS, *LAST_RUN}
    with pytest.raises(ConfigError, match="--fresh: a live run always keeps its state"):
        prepare_state(live, run_dir, REPO, keep_state=False, fresh=True)
    # The command says so before anything else (no preflight, no run directory touched).
    out = subprocess.run([sys.executable, "-m", "services.cli.main", "run", "--fresh", "--config",
                          str(tmp_path / "l.toml"), "--run-dir", str(run_dir)],
                         capture_output=True, text=True, timeout=60, cwd=REPO, check=False)
    assert out.returncode != 0 and "--fresh: a live run always keeps its state" in out.stderr, out
    assert files(run_dir).keys() == {*STAYS, *LAST_RUN}
    assert prepare_state(paper, run_dir, REPO, keep_state=False, fresh=True) is not None  # paper's default, said


def test_the_flags_are_in_the_commands_help() -> None:
    out = subprocess.run([sys.executable, "-m", "services.cli.main", "run", "--help"], capture_output=True,
                         text=True, timeout=60, cwd=REPO, check=False)
    assert out.returncode == 0
    text = " ".join(out.stdout.split())
    assert "--keep-state" in text and "--fresh" in text
    assert "moved to <run dir>/previous/<UTC time>/ first (nothing is deleted)" in text


# --------------------------------------------------------------------------------------- real consecutive runs
def run(cfg_path: Path, run_dir: Path, seconds: int, *extra: str) -> list[str]:
    out = subprocess.run(
        [sys.executable, "-m", "services.cli.main", "run", "--config", str(cfg_path), "--run-dir", str(run_dir),
         "--duration", str(seconds), *extra],
        capture_output=True, text=True, timeout=300, cwd=REPO, check=False,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return out.stdout.splitlines()


def status_lines(lines: list[str]) -> list[str]:
    """The status lines after the start (what the run printed once a second), the final summary last."""
    ready = next(i for i, x in enumerate(lines) if x.startswith("draizer: ready after"))
    shown = [x for x in lines[ready + 1 :] if x.startswith(("quotes ", "HALTED "))]
    final = next(x for x in lines if x.startswith("draizer: stopped; final: "))
    return [*shown, final.removeprefix("draizer: stopped; final: ")]


def opps(line: str) -> int:
    m = re.search(r"\| opps (\d+)", line)
    assert m is not None, line
    return int(m.group(1))


def logs(run_dir: Path) -> str:
    return "".join(p.read_text(errors="replace") for p in sorted(run_dir.glob("*.log")))


def risk_state(run_dir: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((run_dir / "state" / "risk.json").read_text())
    return data


@pytest.mark.e2e
def test_consecutive_runs_start_clean_and_keep_state_carries_on(
    tmp_path: Path, run_dir: Path, request: pytest.FixtureRequest
) -> None:
    data = make_config_dict(run_dir, runtime={"placement": "single"},
                            sim={"quotes_per_second": 3000.0, "dislocation_probability": 0.01})
    cfg_path = tmp_path / "draizer.toml"
    cfg = write_config(cfg_path, data)
    request.addfinalizer(lambda: shm_path(cfg.instance).unlink(missing_ok=True))

    first = run(cfg_path, run_dir, 8)
    assert not any(x.startswith("draizer: fresh start") for x in first)  # nothing to move on a first run
    first_risk = risk_state(run_dir)
    first_final = opps(status_lines(first)[-1])
    assert first_risk["daily_pnl_usd"] == pytest.approx(first_risk["session_pnl_usd"])

    second = run(cfg_path, run_dir, 3)
    moved = next(x for x in second if x.startswith("draizer: fresh start: "))
    previous = Path(moved.split(" are in ", 1)[1].split(" (--keep-state", 1)[0])
    assert previous.parent == run_dir / PREVIOUS
    assert json.loads((previous / "state" / "risk.json").read_text()) == first_risk  # nothing lost
    assert "no risk state at" in logs(previous)  # the first run's logs went with its state
    assert "no risk state at" in logs(run_dir) and "risk state loaded from" not in logs(run_dir)
    # While this run's bridge has not published, the file the first run left is not shown: no service states
    # of it while waiting, and no status line with its numbers (counts only grow within a run, so a line with
    # more opportunities than this run's final one would be the first run's).
    assert not [x for x in second if x.startswith("starting (") and "(STOPPED)" in x], second
    shown = status_lines(second)
    this_final = opps(shown[-1])
    assert all(opps(x) <= this_final for x in shown), (first_final, shown)
    # Risk started from zero: its day's PnL is this run's alone.
    second_risk = risk_state(run_dir)
    assert second_risk["session"] != first_risk["session"]
    if second_risk["day"] == first_risk["day"]:  # (a run across UTC midnight starts a new day anyway)
        assert second_risk["daily_pnl_usd"] == pytest.approx(second_risk["session_pnl_usd"])

    third = run(cfg_path, run_dir, 3, "--keep-state")
    assert not any(x.startswith("draizer: fresh start") for x in third)
    third_risk = risk_state(run_dir)
    if third_risk["day"] == second_risk["day"]:  # carried on: the day's PnL is both runs'
        assert third_risk["daily_pnl_usd"] == pytest.approx(
            second_risk["daily_pnl_usd"] + third_risk["session_pnl_usd"])
    assert "risk state loaded from" in logs(run_dir)  # and the logs carried on too
    assert len(list((run_dir / PREVIOUS).iterdir())) == 1
    assert os.path.exists(run_dir / "journal")
