"""Chaos under load: kill -9 every service of a running pipeline in turn, in every placement.

After each kill supervisord restarts the program and trading resumes. At the end every order and every fill the
venues saw is in the journal, and every execution of an opportunity that reached a venue — each exactly once
— and the settlement report reconciles (exit 0): the executor's ledger equals the venues' balance changes.
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

from services.bridge.journal import expand_paths, read_journal
from shared.config import Config
from shared.shm import shm_path
from shared.venues.kinds import kind_of
from tests.conftest import eventually, make_config_dict, write_config
from tests.supervisor_kit import supervisor_status

REPO = Path(__file__).resolve().parents[1]
VICTIMS = {  # supervisord program names, in the order they are killed
    "processes": ["feed:feed-0", "detector", "risk", "executor", "bridge"],
    "fused": ["feed:feed-1", "engine", "bridge"],
    "single": ["engine", "bridge"],
}


def status(instance: str) -> dict[str, Any] | None:
    out = subprocess.run([sys.executable, "-m", "services.cli.main", "status", "--json", "--instance", instance],
                         capture_output=True, text=True, cwd=REPO, timeout=20, check=False)
    return json.loads(out.stdout) if out.returncode == 0 else None


def venue_orders(cfg: Config, env: dict[str, str]) -> dict[str, list[dict[str, Any]]]:
    """Every order each spot venue's simulator holds for the paper account, with its trade ids."""
    out = {}
    for v in cfg.venues:
        kind = kind_of(v.kind)
        if not kind.spot or kind.api_key_header is None:
            continue
        headers = {kind.api_key_header: env[v.api_key_env]}
        req = urllib.request.Request(f"{v.rest_url}/sim/account_orders", headers=headers)
        with urllib.request.urlopen(req, timeout=10) as resp:
            out[v.name] = json.loads(resp.read())
    return out


def opportunity_of(client_order_id: str) -> int:
    """``dz<hex id><b|s><leg>`` for a leg, ``dz<hex id><l|u|h><leg><b|s><attempt>`` for the others."""
    body = client_order_id[2:]
    return int(body[:-4] if body[-4] in "luh" else body[:-2], 16)


def _service_counters(instance: str) -> dict[str, dict[str, int]] | None:
    d = status(instance)
    return None if d is None else {name: svc["counters"] for name, svc in d["services"].items()}


def _progress(instance: str) -> tuple[int, int] | None:
    d = status(instance)
    return None if d is None else (d["opportunities"], d["approved"])


@pytest.mark.e2e
@pytest.mark.parametrize("placement", ["processes", "fused", "single"])
def test_kill_9_every_service_in_turn_loses_nothing_and_settles(
    placement: str, tmp_path: Path, run_dir: Path, request: pytest.FixtureRequest
) -> None:
    data = make_config_dict(
        run_dir,
        runtime={"placement": placement, "heartbeat_interval_s": 0.2},
        sim={"quotes_per_second": 3000.0, "dislocation_probability": 0.01},
        sinks={"metrics_interval_s": 0.5},
        # The simulator's fast dislocations leave many legs unfilled: the failure breaker would halt trading for
        # minutes, and this test needs trading after every kill. Every other rule stays.
        risk={"failure_breaker_count": 1_000_000},
    )
    cfg_path = tmp_path / "draizer.toml"
    cfg = write_config(cfg_path, data)
    request.addfinalizer(lambda: shm_path(cfg.instance).unlink(missing_ok=True))
    # The paper keys, set here (`draizer run` makes random ones only when unset), so the test can ask the venues.
    keys = {name: os.urandom(16).hex() for v in cfg.venues for name in (v.api_key_env, v.api_secret_env) if name}
    env = {**os.environ, **keys}
    out_path = tmp_path / "run.out"
    with open(out_path, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "services.cli.main", "run", "--config", str(cfg_path), "--run-dir", str(run_dir),
             "--duration", "600", "--quiet"],
            cwd=REPO, stdout=out, stderr=subprocess.STDOUT, env=env,
        )
    n_feeds = len(cfg.venues)
    try:
        eventually(lambda: "draizer: ready after" in out_path.read_text(), timeout=120, what="the pipeline ready")
        eventually(lambda: (p := _progress(cfg.instance)) and p[1] >= 2, timeout=60, what="first approvals")
        for victim in VICTIMS[placement]:
            _state, pid = eventually(
                lambda v=victim: (s := supervisor_status(run_dir, cfg_path, placement, n_feeds).get(v))
                and s[0] == "RUNNING" and s, timeout=30, what=f"{victim} running")
            before = eventually(lambda: _progress(cfg.instance), timeout=30, what="status")
            counted = _service_counters(cfg.instance)
            os.kill(pid, signal.SIGKILL)
            eventually(
                lambda v=victim, old=pid: (s := supervisor_status(run_dir, cfg_path, placement, n_feeds).get(v))
                and s[0] == "RUNNING" and s[1] != old, timeout=60, what=f"{victim} restarted by supervisord")
            # Trading resumed: more opportunities found and more approved than before the kill.
            eventually(lambda b=before: (p := _progress(cfg.instance)) and p[0] > b[0] and p[1] > b[1],
                       timeout=90, what=f"trading after killing {victim}")
            # Counters carry on from where the killed process left them: none is below its value before the kill.
            # Every service's heartbeat has reached the (possibly restarted) bridge: a restarted bridge shows a
            # service with no counters until its first heartbeat, and progress alone can come from its checkpoint.
            want = {svc for svc, c in counted.items() if c}
            after = eventually(lambda w=want: (c := _service_counters(cfg.instance)) and all(c.get(s) for s in w) and c,
                               timeout=30, what="every service's counters in the status")
            fell = {f"{svc}.{k}": (n, after.get(svc, {}).get(k, 0)) for svc, c in counted.items()
                    for k, n in c.items() if k not in ("in_flight", "pending") and after.get(svc, {}).get(k, 0) < n}
            assert not fell, f"counters went back after killing {victim}: {fell}"
        seen_by_venues = venue_orders(cfg, keys)  # (the simulator stops with the run)
        proc.send_signal(signal.SIGINT)  # a normal end: wind down, settle, stop in order
        code = proc.wait(180)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(120)
    said = out_path.read_text()
    assert code == 0, said[-4000:]
    assert "executor ledger = venue balance changes, asset by asset (exact)" in said, said[-4000:]

    records = [r for p in expand_paths([run_dir / "journal"]) for r in read_journal(p)]
    keys_by_kind: dict[str, Counter[str]] = {}
    for r in records:
        keys_by_kind.setdefault(r.kind, Counter())[r.key] += 1
    for kind in ("order", "fill", "execution", "opportunity", "decision"):
        twice = [k for k, n in keys_by_kind.get(kind, Counter()).items() if n > 1]
        assert not twice, f"{kind} records written more than once: {twice[:5]}"
    journal_orders = {k.rsplit(":", 1)[0] for k in keys_by_kind["order"]}
    journal_fills = set(keys_by_kind["fill"])
    journal_executions = {int(k) for k in keys_by_kind["execution"]}
    missing_orders, missing_fills, opportunities = [], [], set()
    for venue, orders in seen_by_venues.items():
        for o in orders:
            opportunities.add(opportunity_of(o["client_order_id"]))
            if o["client_order_id"] not in journal_orders:
                missing_orders.append(f"{venue} {o['client_order_id']} {o['status']}")
            missing_fills += [f"{venue}:{o['symbol']}:{t}" for t in o["trade_ids"]
                              if f"{venue}:{o['symbol']}:{t}" not in journal_fills]
    assert sum(len(o) for o in seen_by_venues.values()) > 0
    assert not missing_orders, f"{len(missing_orders)} venue orders not in the journal: {missing_orders[:5]}"
    assert not missing_fills, f"{len(missing_fills)} venue trades not in the journal: {missing_fills[:5]}"
    # The bridge's counts survived its own restarts: the final status equals what the journal holds.
    final = status(cfg.instance)
    assert final is not None
    assert final["opportunities"] == len(keys_by_kind["opportunity"])
    approved = sum(1 for r in records if r.kind == "decision" and r.data.get("approved"))
    assert final["approved"] == approved
    missing_executions = sorted(opportunities - journal_executions)
    assert not missing_executions, f"executions not in the journal: {missing_executions[:5]}"
