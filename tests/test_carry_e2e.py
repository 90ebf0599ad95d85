"""A funding carry's whole life on a real paper run, through a kill -9 of the executor and of the detector.

`draizer run` (placement "processes") trades only the carry, on simulated perpetuals that settle funding every few
seconds at a steady positive rate. Once carries are open and have collected funding:

1. the executor is killed with kill -9: the restarted one finds every carry again (both legs, from its journal),
   sends no order twice (every client order id appears once in each venue's account), and books the funding paid
   meanwhile exactly once;
2. the detector is killed with kill -9: the restarted one takes its carry signals from the executor's open carries
   instead of starting empty (which would signal a second carry on top of the first);
3. one symbol's rate is turned negative: the detector signals CLOSE and the carry closes, its perpetual short
   bought back reduce-only to exactly zero;
4. Ctrl-C winds down and settles: the executor's ledger equals every venue's balances, the perpetual positions and
   the funding included, asset by asset.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from shared.runtime.control_client import ControlError, request
from shared.runtime.endpoints import Endpoints
from shared.shm import shm_path
from shared.venues.kinds import kind_of
from tests.conftest import eventually, make_config_dict, write_config
from tests.supervisor_kit import supervisor_status
from tests.test_restart_books_e2e import settlement

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[1]
READY_S = 240.0
SYMBOLS = ["BTCUSDT", "ETHUSDT"]


def carries(endpoints: Endpoints) -> dict[str, list[dict[str, Any]]] | None:
    try:
        reply = request(endpoints.control("executor"), "carries", timeout_s=5.0)
    except ControlError:
        return None  # restarting
    return dict(reply.data) if reply.ok else None


def post(url: str) -> Any:
    with urllib.request.urlopen(urllib.request.Request(url, method="POST"), timeout=5.0) as resp:
        return json.loads(resp.read())


def get(url: str, headers: dict[str, str]) -> Any:
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=5.0) as resp:
        return json.loads(resp.read())


def venue_client_ids(cfg: Any, env: dict[str, str]) -> Counter[str]:
    """Every client order id each simulated account ever received (spot and perpetual)."""
    ids: Counter[str] = Counter()
    for v in cfg.venues:
        kind = kind_of(v.kind)
        headers = {kind.api_key_header or "": env.get(v.api_key_env, "")}
        if kind.perp:
            ids.update(f"{v.name}:{o['client_order_id']}" for o in get(f"{v.rest_url}/sim/perp_account",
                                                                        headers)["orders"])
        else:
            ids.update(f"{v.name}:{o['client_order_id']}" for o in get(f"{v.rest_url}/sim/account_orders", headers))
    return ids


def log_tails(run_dir: Path) -> str:
    parts = []
    for name in ("executor", "detector", "risk"):
        path = run_dir / f"{name}.log"
        if path.exists():
            lines = [x for x in path.read_text().splitlines() if "WS connection" not in x]
            parts.append(f"\n--- {name}.log ---\n" + "\n".join(lines[-40:]))
    return "".join(parts)


def funding_collected(c: dict[str, list[dict[str, Any]]]) -> float:
    return sum(float(x["funding_usd"]) for x in c["open"] + c["closed"])


def test_a_carry_lives_through_kills_closes_and_settles_exactly(
    tmp_path: Path, run_dir: Path, request: pytest.FixtureRequest
) -> None:
    data = make_config_dict(
        run_dir,
        runtime={"placement": "processes", "heartbeat_interval_s": 0.2},
        sim={"funding_period_s": 4, "funding_rate_mean": 0.0004, "funding_rate_vol": 0.0},
        sinks={"metrics_interval_s": 0.5},
        execution={"funding_poll_s": 1.0},
    )
    data["strategies"]["cross_exchange"]["enabled"] = False
    data["strategies"]["triangular"]["enabled"] = False
    for v in data["venues"]:
        if kind_of(v["kind"]).perp:
            v["symbols"] = SYMBOLS
    cfg_path = tmp_path / "draizer.toml"
    cfg = write_config(cfg_path, data)
    request.addfinalizer(lambda: shm_path(cfg.instance).unlink(missing_ok=True))
    endpoints = Endpoints(cfg, run_dir)
    n_feeds = len(cfg.venues)
    out_path = tmp_path / "run.out"
    env = {**os.environ}
    from services.cli.run import paper_credentials

    env.update(paper_credentials(cfg))  # the same deterministic paper keys `draizer run` hands its programs
    with open(out_path, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "services.cli.main", "run", "--config", str(cfg_path), "--run-dir", str(run_dir),
             "--duration", "900", "--quiet"],
            cwd=REPO, stdout=out, stderr=subprocess.STDOUT, env=env,
        )
    code: int | None = None
    try:
        eventually(lambda: "draizer: ready after" in out_path.read_text() or proc.poll() is not None,
                   timeout=READY_S, what="the pipeline ready")
        assert proc.poll() is None, out_path.read_text()[-4000:]
        before = eventually(lambda: (c := carries(endpoints)) and len(c["open"]) == len(SYMBOLS)
                            and funding_collected(c) > 0 and c, timeout=120,
                            what="a carry open on every symbol, with funding collected")
        held = {c["carry_id"]: (c["spot_qty"], c["perp_qty"]) for c in before["open"]}

        # 1. kill -9 the executor mid-carry
        _s, pid = eventually(lambda: (s := supervisor_status(run_dir, cfg_path, "processes", n_feeds).get("executor"))
                             and s[0] == "RUNNING" and s, timeout=30, what="executor running")
        os.kill(pid, signal.SIGKILL)
        after = eventually(lambda: (s := supervisor_status(run_dir, cfg_path, "processes", n_feeds).get("executor"))
                           and s[0] == "RUNNING" and s[1] != pid and carries(endpoints), timeout=90,
                           what="the executor restarted and answering")
        assert {c["carry_id"]: (c["spot_qty"], c["perp_qty"]) for c in after["open"]} == held
        funded = funding_collected(after)
        eventually(lambda: (c := carries(endpoints)) and funding_collected(c) > funded, timeout=60,
                   what="funding booked after the restart")

        # 2. kill -9 the detector: it takes its carry signals back from the executor
        _s, dpid = eventually(lambda: (s := supervisor_status(run_dir, cfg_path, "processes", n_feeds).get("detector"))
                              and s[0] == "RUNNING" and s, timeout=30, what="detector running")
        os.kill(dpid, signal.SIGKILL)
        detector_log = run_dir / "detector.log"
        try:
            eventually(lambda: "carry signals resumed from the executor's open carries" in detector_log.read_text(),
                       timeout=90, what="the restarted detector seeded from the executor")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n--- detector.log ---\n{detector_log.read_text()[-4000:]}") from None

        # 3. a negative rate closes the BTC carry: reduce-only buy back to exactly zero
        perp = next(v for v in cfg.venues if kind_of(v.kind).perp)
        post(f"{perp.rest_url}/sim/funding_rate?symbol=BTCUSDT&rate=-0.0005")
        try:
            closed = eventually(lambda: (c := carries(endpoints))
                                and [x for x in c["closed"] if x["symbol"] == "BTCUSDT"],
                                timeout=90, what="the BTC carry closed")
        except AssertionError as exc:
            raise AssertionError(f"{exc}{log_tails(run_dir)}") from None
        assert closed[0]["perp_qty"] == "0"
        assert [x["symbol"] for x in carries(endpoints)["open"]] == ["ETHUSDT"]  # type: ignore[index]

        ids = venue_client_ids(cfg, env)  # before the wind-down stops the simulator (kill: no new orders)
        proc.send_signal(signal.SIGINT)
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
    lines = settlement(said)
    executor_log = (run_dir / "executor.log").read_text()
    assert code == 0, "\n".join(lines) + "\n" + said[-3000:] + executor_log[-3000:]
    assert not [line for line in lines if line.startswith("! ")], "\n".join(lines)
    assert "  executor ledger = venue balance changes, asset by asset (exact)" in lines, "\n".join(lines)
    assert not [cid for cid, n in ids.items() if n > 1], "an order was sent twice"
    assert "carries resumed from the journal" in executor_log, executor_log[-3000:]
    assert "a carry is already open" not in executor_log  # the restarted detector never signalled a second one
