"""One benchmark run: the load source on its core, the pipeline under supervisord, the events tapped.

Every opportunity's ``RiskDecision`` gives tick→decision; every execution's ``Execution`` gives tick→order and
its stages, from the stamps the services put on the messages (all ``CLOCK_MONOTONIC``, shared by the
processes of one host):

    received (the feed's frame stamp) → published (the feed's batch, after parse and book upkeep)
    → detected → decided → journaled (every order record written) → written (first request on the socket)

Throughput comes from the services' own counters: frames the feeds received over the window (from their
heartbeats) and, after the stop, quotes published by the feeds against quotes ingested by the detector (exact).
"""

from __future__ import annotations

import json
import os
import pstats
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import numpy as np

from services.cli.bench_config import bench_config, core_map
from services.cli.run import REPO_ROOT
from services.cli.tap import EventTap
from shared.config import parse_config
from shared.messages import OUTCOME_ABORTED, Event, Execution, RiskDecision, Stats
from shared.runtime.endpoints import Endpoints

START_TIMEOUT_S = 90.0
WARM_UP_S = 2.0  # past start-up transients (JIT cache load, first connections)
QUANTILES = (50, 90, 99, 99.9)
STAGES = ("feed", "detect", "decide", "journal", "write")


@dataclass
class RunResult:
    placement: str
    rate_asked: float
    seconds: float
    cores: dict[str, int]
    busy_poll: bool
    fsync: str
    feed_rate: float = 0.0
    quotes_published: int = 0
    quotes_detected: int = 0
    publish_dropped: int = 0
    opportunities: int = 0
    executions: int = 0
    tick_to_decision_us: dict[str, float] = field(default_factory=dict)
    tick_to_order_us: dict[str, float] = field(default_factory=dict)
    stages_us: dict[str, dict[str, float]] = field(default_factory=dict)
    sustained: bool = False
    profile: list[str] = field(default_factory=list)


def percentiles(samples_ns: list[int]) -> dict[str, float]:
    if not samples_ns:
        return {}
    arr = np.asarray(samples_ns, dtype=np.float64) / 1e3
    return {f"p{q:g}": round(float(np.percentile(arr, q)), 1) for q in QUANTILES}


class _Collector:
    """Samples taken only while the measurement window is open."""

    def __init__(self) -> None:
        self.open = False
        self.decisions: list[int] = []
        self.orders: list[int] = []
        self.stages: dict[str, list[int]] = {s: [] for s in STAGES}

    def __call__(self, ev: Event) -> None:
        if not self.open:
            return
        if isinstance(ev, RiskDecision):
            self.decisions.append(ev.decided_ns - ev.opportunity.tick_ns)
        elif isinstance(ev, Execution) and ev.sent_ns and ev.outcome != OUTCOME_ABORTED:
            self.orders.append(ev.sent_ns - ev.tick_ns)
            if ev.pub_ns and ev.journaled_ns:
                st = self.stages
                st["feed"].append(ev.pub_ns - ev.tick_ns)
                st["detect"].append(ev.detected_ns - ev.pub_ns)
                st["decide"].append(ev.decided_ns - ev.detected_ns)
                st["journal"].append(ev.journaled_ns - ev.decided_ns)
                st["write"].append(ev.sent_ns - ev.journaled_ns)


def _start_loadgen(cfg_path: Path, rate: float, cpu: int, dislocation: float, run_dir: Path) -> subprocess.Popen[str]:
    log = (run_dir / "loadgen.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "services.loadgen", "--config", str(cfg_path), "--rate", str(rate), "--cpu", str(cpu),
         "--dislocation", str(dislocation)],
        cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=log, text=True,
    )
    log.close()
    assert proc.stdout is not None
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the load source exited with {proc.returncode}; see {run_dir / 'loadgen.log'}")
        ready, _, _ = select.select([proc.stdout], [], [], 0.2)
        if ready and '"ready"' in proc.stdout.readline():
            return proc
    proc.kill()
    raise RuntimeError("the load source did not get ready")


def _stop(proc: subprocess.Popen[Any], timeout: float = 120.0) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _counter(stats: dict[str, Stats], names: list[str], key: str) -> int:
    return sum(stats[n].counters.get(key, 0) for n in names if n in stats)


def _frames(stats: dict[str, Stats], feeds: list[str]) -> tuple[int, int]:
    """Frames received by all feeds, and the newest heartbeat time among them."""
    return _counter(stats, feeds, "frames"), max((stats[f].ts_ns for f in feeds if f in stats), default=0)


def run_once(placement: str, rate: float, seconds: float, *, dislocation: float = 0.002, busy_poll: bool = False,
             fsync: str = "batch", unpinned: bool = False, profile: bool = False) -> RunResult:
    run_dir = Path(tempfile.mkdtemp(prefix="dzb-", dir="/tmp"))
    os.chmod(run_dir, 0o700)
    data = bench_config(run_dir, placement, busy_poll=busy_poll, fsync=fsync, unpinned=unpinned)
    cfg_path = run_dir / "bench.toml"
    raw = msgspec.toml.encode(data)
    cfg_path.write_bytes(raw)
    cfg = parse_config(raw, str(cfg_path))
    cores = core_map(placement, unpinned)
    result = RunResult(placement, rate, seconds, cores, busy_poll, fsync)
    endpoints = Endpoints(cfg, run_dir)
    collect = _Collector()
    tap = EventTap([endpoints.events(s) for s in endpoints.all_services()], collect)
    feeds = [f"feed.{v.name}" for v in cfg.venues]
    env = dict(os.environ)
    if profile:
        env["DRAIZER_PROFILE_DIR"] = str(run_dir / "profiles")
    loadgen = _start_loadgen(cfg_path, rate, cores["loadgen"], dislocation, run_dir)
    pipeline: subprocess.Popen[bytes] | None = None
    try:
        pipeline = subprocess.Popen(
            [sys.executable, "-m", "services.cli.main", "run", "--config", str(cfg_path), "--run-dir", str(run_dir),
             "--quiet", "--no-settle"],
            cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            tap.drain(100)
            det = tap.stats.get("detector")
            if det is not None and det.counters.get("quotes", 0) > 0 and "executor" in tap.stats:
                break
        else:
            raise RuntimeError(f"pipeline did not start; logs in {run_dir}")
        warm_end = time.monotonic() + WARM_UP_S
        while time.monotonic() < warm_end:
            tap.drain(50)
        start = _frames(tap.stats, feeds)
        collect.open = True
        t_end = time.monotonic() + seconds
        while time.monotonic() < t_end:
            tap.drain(50)
        collect.open = False
        end = _frames(tap.stats, feeds)
        result.feed_rate = round((end[0] - start[0]) / max(1e-9, (end[1] - start[1]) / 1e9), 1)
    finally:
        _stop(loadgen)
        if pipeline is not None:
            _stop(pipeline)
    final_deadline = time.monotonic() + 10
    while time.monotonic() < final_deadline and not all(
        s in tap.stats and tap.stats[s].state == "STOPPED" for s in [*feeds, "detector"]
    ):
        tap.drain(100)
    tap.close()
    result.quotes_published = _counter(tap.stats, feeds, "quotes")
    result.publish_dropped = _counter(tap.stats, feeds, "publish_dropped")
    result.quotes_detected = _counter(tap.stats, ["detector"], "quotes")
    result.opportunities = len(collect.decisions)
    result.executions = len(collect.orders)
    result.tick_to_decision_us = percentiles(collect.decisions)
    result.tick_to_order_us = percentiles(collect.orders)
    result.stages_us = {s: percentiles(v) for s, v in collect.stages.items()}
    result.sustained = (
        result.feed_rate >= 0.95 * rate
        and result.publish_dropped == 0
        and result.quotes_published == result.quotes_detected
    )
    if profile:
        result.profile = top_functions(run_dir / "profiles")
    shutil.rmtree(run_dir, ignore_errors=True)
    return result


def top_functions(directory: Path, n: int = 25) -> list[str]:
    """The hot-path processes' profiles, the functions that took the most time of their own."""
    lines: list[str] = []
    for path in sorted(directory.glob("*.prof")):
        if path.stem in ("bridge", "sim"):
            continue
        stats = pstats.Stats(str(path))
        rows = sorted(stats.stats.items(), key=lambda kv: kv[1][2], reverse=True)[:n]  # type: ignore[attr-defined]
        total = sum(v[2] for v in stats.stats.values()) or 1.0  # type: ignore[attr-defined]
        lines.append(f"{path.stem}: {total:.2f} s of own time")
        for (file, line, func), (_cc, calls, own, cum, _callers) in rows:
            short = file.replace(str(REPO_ROOT) + "/", "")
            lines.append(f"  {100 * own / total:5.1f}%  own {own * 1e3:8.1f} ms  cum {cum * 1e3:8.1f} ms  "
                         f"{calls:>9} calls  {func} ({short}:{line})")
    return lines


def as_json(result: RunResult) -> str:
    return json.dumps(result.__dict__)
