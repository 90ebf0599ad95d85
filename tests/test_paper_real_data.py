"""Paper trading on real market data, end to end: the simulator stands in for the real venues (its own process,
found only by URL, like Binance and MEXC), draizer runs with ``paper.fills = "model"`` and no keys. The feeds are
the real feed code; every order is filled inside draizer on its own local book; not one order reaches a venue;
the settlement reconciles the executor's ledger with the paper accounts exactly.
"""

from __future__ import annotations

import copy
import json
import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from shared.config import Config
from shared.runtime.control_client import ControlError
from shared.runtime.control_client import request as control
from shared.runtime.endpoints import Endpoints
from shared.shm import shm_path
from shared.venues.kinds import kind_of
from tests.conftest import eventually, make_config_dict, write_config
from tests.test_restart_books_e2e import settlement

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[1]
FILLED_WANTED = 3


def get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5.0) as resp:
        return json.loads(resp.read())


def executor_orders(endpoints: Endpoints) -> dict[str, Any] | None:
    try:
        return control(endpoints.control("executor"), "orders", timeout_s=2.0).data
    except ControlError:
        return None


def paper_config(data: dict[str, Any]) -> dict[str, Any]:
    """The engine's view: no simulator of its own, no keys, fills from the model."""
    paper = copy.deepcopy(data)
    paper["sim"]["enabled"] = False
    paper["paper"] = {"fills": "model", "asset_balance_usd": 20000.0}
    for v in paper["venues"]:
        for key in ("api_key_env", "api_secret_env", "ws_api_url", "user_ws_url"):
            v.pop(key, None)
        v["paper_latency_ms"] = 2.0
    return paper


def start(args: list[str], out: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    with open(out, "wb") as f:
        return subprocess.Popen([sys.executable, *args], cwd=REPO, stdout=f, stderr=subprocess.STDOUT,
                                env={**os.environ, **(env or {})})


def stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 120) -> int:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
    return proc.wait(30)


@pytest.mark.parametrize("placement", ["single", "processes"])
def test_paper_on_real_data_trades_on_the_local_book_and_settles_exactly(
    placement: str, tmp_path: Path, run_dir: Path, request: pytest.FixtureRequest
) -> None:
    data = make_config_dict(
        run_dir,
        runtime={"placement": placement, "heartbeat_interval_s": 0.2},
        sim={"quotes_per_second": 3000.0, "dislocation_probability": 0.01},
        risk={"max_concurrent": 1},
    )
    venue_cfg: Config = write_config(tmp_path / "venue.toml", data)
    cfg = write_config(tmp_path / "draizer.toml", paper_config(data))
    request.addfinalizer(lambda: shm_path(cfg.instance).unlink(missing_ok=True))
    assert not any(v.api_key_env for v in cfg.venues)
    spot = [v for v in venue_cfg.venues if kind_of(v.kind).spot]

    # The "real" venues: the simulator in its own process, with keys the engine never sees.
    venue_keys = {n: "k" * 64 for v in venue_cfg.venues for n in (v.api_key_env, v.api_secret_env) if n}
    venue = start(["-m", "services.sim", "--config", str(tmp_path / "venue.toml")], tmp_path / "venue.out", venue_keys)
    request.addfinalizer(lambda: stop(venue))
    eventually(lambda: _answers(f"{spot[0].rest_url}/api/v3/time") and _answers(f"{spot[1].rest_url}/api/v3/time"),
               timeout=60, what="the simulated venues up")

    endpoints = Endpoints(cfg, run_dir)
    out = tmp_path / "run.out"
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRAIZER_") or k == "DRAIZER_RUN_DIR"}
    proc = start(["-m", "services.cli.main", "run", "--config", str(tmp_path / "draizer.toml"), "--run-dir",
                  str(run_dir), "--duration", "900", "--quiet"], out, env)
    code: int | None = None
    try:
        eventually(lambda: "draizer: ready after" in out.read_text() or proc.poll() is not None, timeout=120,
                   what="the pipeline ready")
        assert proc.poll() is None, out.read_text()[-4000:]
        try:
            eventually(lambda: (o := executor_orders(endpoints)) and o.get("outcomes", {}).get("filled", 0)
                       >= FILLED_WANTED, timeout=120, what=f"{FILLED_WANTED} filled executions")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{_tail(run_dir / 'executor.log')}{_tail(run_dir / 'engine.log')}") from None
        paper = control(endpoints.control("executor"), "paper_balances", timeout_s=5.0).data["venues"]
        assert set(paper) == {v.name for v in spot}
        moved = [(v, a) for v, d in paper.items() for a in d["now"] if d["now"][a] != d["start"].get(a)]
        assert moved, paper  # the fills moved the paper accounts
        code = stop(proc, signal.SIGINT, 240)
    finally:
        if code is None:
            stop(proc)
    said = out.read_text()
    lines = settlement(said)
    assert code == 0 and not [line for line in lines if line.startswith("! ")], said[-4000:]
    assert any("executor ledger = venue balance changes" in line for line in lines), lines
    # Not one order, query or account request reached the venues: the engine traded on its own books.
    for v in spot:
        counts = get(f"{v.rest_url}/sim/path_counts")
        assert not [p for p in counts if p.startswith(("POST", "DELETE")) or "order" in p.lower()
                    or "account" in p.lower() or "myTrades" in p], (v.name, counts)
        assert counts.get("GET /api/v3/exchangeInfo"), counts  # the venue's rules were read, as live


def _answers(url: str) -> bool:
    try:
        get(url)
    except OSError:
        return False
    return True


def _tail(path: Path) -> str:
    try:
        return f"\n--- {path.name} ---\n{path.read_text()[-3000:]}"
    except OSError:
        return ""
