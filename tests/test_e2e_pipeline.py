"""End to end: the real pipeline under real supervisord, in both placements.

A test subscriber listens to every service's events from before the start; the pipeline runs until
quotes, opportunities, approvals, rejections and fills have all been seen; then `draizer run` is stopped
and the counts the test saw must equal the counters the bridge wrote to shared memory.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import msgspec
import pytest
from prometheus_client.parser import text_string_to_metric_families

from services.cli.tap import EventTap
from shared.messages import STRATEGY_NAMES
from shared.runtime.endpoints import Endpoints
from shared.shm import shm_path
from shared.venues.kinds import kind_of
from tests.conftest import eventually, make_config_dict, write_config
from tests.supervisor_kit import supervisor_status

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[1]


def draizer(*args: str, env: dict[str, str] | None = None, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "services.cli.main", *args],
        capture_output=True, text=True, timeout=timeout, cwd=REPO, env={**os.environ, **(env or {})}, check=False,
    )


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.parametrize("placement", ["processes", "fused", "single"])
def test_pipeline_end_to_end(placement: str, tmp_path: Path, run_dir: Path, request: pytest.FixtureRequest) -> None:
    data = make_config_dict(
        run_dir,
        runtime={"placement": placement, "heartbeat_interval_s": 0.2},
        # More dislocations than the demo so a short test sees every kind of decision.
        # A funding rate well above the carry threshold, so the funding strategy signals within the test too.
        sim={"quotes_per_second": 3000.0, "dislocation_probability": 0.01, "funding_rate_mean": 0.0003},
        risk={"max_concurrent": 1},
    )
    cfg_path = tmp_path / "draizer.toml"
    cfg = write_config(cfg_path, data)
    endpoints = Endpoints(cfg, run_dir)
    tap = EventTap([endpoints.events(s) for s in endpoints.all_services()])
    request.addfinalizer(tap.close)  # a failed check must not leave sockets behind for the next test
    proc = subprocess.Popen(
        [sys.executable, "-m", "services.cli.main", "run", "--config", str(cfg_path), "--run-dir", str(run_dir),
         "--quiet"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    pids: dict[str, tuple[str, int]] = {}
    try:
        def everything_seen() -> bool:
            c = tap.drain()
            feeds_quoting = all(
                tap.stats.get(f"feed.{v.name}") is not None
                and tap.stats[f"feed.{v.name}"].counters["quotes" if kind_of(v.kind).spot else "funding"] > 0
                for v in cfg.venues
            )
            # More approvals than max_concurrent proves risk hears the executor's executions and frees slots.
            seen_all = all(c[k] > 0 for k in ("opportunities", "rejected", "fills"))
            # Every strategy finds something on the simulator: cross-venue dislocations, triangular mispricings
            # (a dislocated BTC pair) and funding above the threshold.
            seen_all &= all(c[f"strategy:{name}"] > 0 for name in STRATEGY_NAMES)
            return feeds_quoting and seen_all and c["approved"] >= 3

        eventually(everything_seen, timeout=90, what=f"quotes, opportunities, decisions and fills: {tap.counts}")

        expected_programs = {"bridge", "sim", "api"}
        if placement != "single":  # the single placement runs the feeds inside its engine
            expected_programs |= {f"feed:feed-{i}" for i in range(len(cfg.venues))}
        expected_programs |= {"detector", "risk", "executor"} if placement == "processes" else {"engine"}
        pids = eventually(
            lambda: (p := supervisor_status(run_dir, cfg_path, placement, len(cfg.venues)))
            and all(s == "RUNNING" for s, _ in p.values()) and p,
            timeout=20, what="supervisorctl status: every program RUNNING",
        )
        assert {name.split(":")[-1] if not name.startswith("feed") else name for name in pids} == expected_programs

        status = draizer("status", "--json", "--instance", cfg.instance)
        assert status.returncode == 0, status.stderr
        live = json.loads(status.stdout)
        assert all(live["quotes"][v.name] > 0 for v in cfg.venues if kind_of(v.kind).spot)
        assert live["opportunities"] > 0
        # The acceptance: books for >= 20 symbols per spot venue, funding for every perp symbol, none stale.
        books = eventually(
            lambda: (b := json.loads(draizer("status", "--json", "--instance", cfg.instance).stdout)["books"])
            and all(b.get(v.name, {}).get("live", 0) >= 20 for v in cfg.venues if kind_of(v.kind).spot) and b,
            timeout=20, what="books live for every symbol",
        )
        assert all(b["stale"] == 0 for b in books.values()), books
        # Each perp symbol's first funding push may come up to a push interval after the books are live: poll.
        def funding_for_every_perp_symbol() -> dict[str, Any] | None:
            funding = json.loads(draizer("status", "--json", "--instance", cfg.instance).stdout)["funding"]
            return funding if all(
                {s for s, venues in funding.items() if v.name in venues} == set(v.symbols)
                for v in cfg.venues if kind_of(v.kind).perp
            ) else None

        eventually(funding_for_every_perp_symbol, timeout=20, what="funding for every perpetual symbol")

        with urllib.request.urlopen(f"http://127.0.0.1:{cfg.sinks.prometheus_port}/metrics", timeout=10) as r:
            families = {f.name: f for f in text_string_to_metric_families(r.read().decode())}
        assert families["draizer_opportunities"].samples[0].value > 0  # counter family name drops _total
        assert "draizer_stage_latency_seconds" in families
    finally:
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=90)
    assert proc.returncode == 0, output
    assert "Traceback" not in output, output
    for log in run_dir.glob("*.log"):
        text = log.read_text()
        assert "Traceback" not in text, f"{log.name}:\n{text[-3000:]}"

    # Nothing left behind.
    for name, (_state, pid) in pids.items():
        eventually(lambda pid=pid: not alive(pid), timeout=10, what=f"{name} (pid {pid}) to exit")

    # Every event the bridge counted was an event the services sent, and vice versa.
    eventually(lambda: (tap.drain(), True)[1], timeout=2)
    after = draizer("status", "--json", "--instance", cfg.instance)
    assert after.returncode == 0, f"status after stop: {after.stderr}\n{(run_dir / 'bridge.log').read_text()[-3000:]}"
    final = json.loads(after.stdout)
    tap.close()
    counts = tap.counts
    assert final["opportunities"] == counts["opportunities"]
    assert final["approved"] == counts["approved"]
    assert final["rejected"] == counts["rejected"]
    assert final["fills"] == counts["fills"]
    assert sum(final["orders"].values()) == counts["orders"]
    assert sum(final["executions"].values()) == counts["executions"]
    reasons: dict[str, Any] = final["rejections_by_reason"]
    assert reasons == {k.split(":", 1)[1]: v for k, v in counts.items() if k.startswith("reason:")}
    # The services' own counters agree too (last heartbeat, sent after they stopped).
    assert tap.stats["detector"].counters["opportunities"] == counts["opportunities"]
    assert tap.stats["executor"].counters["fills"] == counts["fills"]


@pytest.fixture(autouse=True)
def _remove_shared_memory(tmp_path: Path):  # type: ignore[no-untyped-def]
    """Unlink the shared memory of this test's own instances only: other runs may be going on at the same time."""
    yield
    for config in tmp_path.glob("*.toml"):
        instance = msgspec.toml.decode(config.read_bytes()).get("instance")
        if instance:
            Path(shm_path(instance)).unlink(missing_ok=True)
