"""`draizer bench`: the real pipeline under supervisord, driven by the simulator at fixed quote rates.

Two measurements per placement:
* latency: at ``--latency-rate`` quotes/s, tick→order = order request written (executor) − frame received
  (feed) for every execution, as P50/P90/P99/P99.9; each process stamps with CLOCK_MONOTONIC.
* throughput: for each rate of ``--rates`` (ascending), the run is "sustained" when the feeds received at
  least 95 % of the asked rate and every quote the feeds published reached the detector (exact counts from
  the services' final heartbeats). The highest sustained rate is reported; the sweep stops at a failure.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import numpy as np

from services.cli.run import REPO_ROOT
from services.cli.tap import EventTap
from shared.config import default_config_path, parse_config
from shared.messages import Event, Execution, Stats
from shared.runtime.endpoints import Endpoints

WARM_UP_TIMEOUT_S = 60.0


@dataclass
class RunResult:
    placement: str
    rate_asked: float
    seconds: float
    feed_rate: float = 0.0
    quotes_published: int = 0
    quotes_detected: int = 0
    publish_dropped: int = 0
    executions: int = 0
    tick_to_order_us: dict[str, float] = field(default_factory=dict)
    sustained: bool = False


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


WS_PATHS = {"binance": "/stream", "mexc": "/ws", "binance_usdm": "/market/stream", "mexc_contract": "/edge"}


def make_config(run_dir: Path, placement: str, rate: float, dislocation: float) -> dict[str, Any]:
    data: dict[str, Any] = msgspec.toml.decode(default_config_path().read_bytes())
    for sv in data["sim"]["venues"]:
        sv["ws_port"], sv["rest_port"] = _free_port(), _free_port()
    by_venue = {sv["venue"]: sv for sv in data["sim"]["venues"]}
    for v in data["venues"]:
        sv = by_venue[v["name"]]
        v["ws_url"] = f"ws://127.0.0.1:{sv['ws_port']}{WS_PATHS[v['kind']]}"
        v["rest_url"] = f"http://127.0.0.1:{sv['rest_port']}"
        if v.get("ws_api_url"):
            v["ws_api_url"] = f"ws://127.0.0.1:{sv['ws_port']}/ws-api/v3"
    data["instance"] = f"bench{os.getpid()}"
    data["runtime"].update(run_dir=str(run_dir), placement=placement, heartbeat_interval_s=0.25)
    data["sinks"]["prometheus_port"] = 0
    data["sim"].update(quotes_per_second=rate, dislocation_probability=dislocation)
    if os.environ.get("DRAIZER_BENCH_UNPINNED"):
        for svc in data["services"].values():
            svc["cpu"] = -1
    # Let executions through so the latency distribution has samples: no breakers, a long age limit. The venues'
    # own order-rate limits stay (Binance: 50 orders / 10 s), so a run gets a few executions per second.
    data["risk"].update(max_concurrent=16, max_opportunity_age_ms=1000.0, failure_breaker_count=1_000_000,
                        loss_breaker_usd=1e12, max_daily_loss_usd=1e12)
    return data


def run_once(placement: str, rate: float, seconds: float, dislocation: float) -> RunResult:
    run_dir = Path(tempfile.mkdtemp(prefix="dzb-", dir="/tmp"))
    os.chmod(run_dir, 0o700)
    data = make_config(run_dir, placement, rate, dislocation)
    cfg_path = run_dir / "bench.toml"
    raw = msgspec.toml.encode(data)
    cfg_path.write_bytes(raw)
    cfg = parse_config(raw, str(cfg_path))
    endpoints = Endpoints(cfg, run_dir)
    latencies: list[int] = []
    window = {"open": False}

    def on_event(ev: Event) -> None:
        if window["open"] and isinstance(ev, Execution) and ev.sent_ns:
            latencies.append(ev.sent_ns - ev.tick_ns)

    tap = EventTap([endpoints.events(s) for s in endpoints.all_services()], on_event)
    proc = subprocess.Popen(
        [sys.executable, "-m", "services.cli.main", "run", "--config", str(cfg_path), "--run-dir", str(run_dir),
         "--quiet"],
        cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    result = RunResult(placement, rate, seconds)
    feeds = [f"feed.{v.name}" for v in cfg.venues]
    try:
        deadline = time.monotonic() + WARM_UP_TIMEOUT_S
        while time.monotonic() < deadline:
            tap.drain(100)
            det = tap.stats.get("detector")
            if det is not None and det.counters.get("quotes", 0) > 0:
                break
        else:
            raise RuntimeError(f"pipeline did not start; logs in {run_dir}")
        time.sleep(1.0)  # past start-up transients (JIT cache load, connection warm-up)
        tap.drain()
        start = _frames(tap.stats, feeds)
        window["open"] = True
        t_end = time.monotonic() + seconds
        while time.monotonic() < t_end:
            tap.drain(50)
        window["open"] = False
        end = _frames(tap.stats, feeds)
        result.feed_rate = (end[0] - start[0]) / max(1e-9, (end[1] - start[1]) / 1e9)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(120)
    final_deadline = time.monotonic() + 5
    while time.monotonic() < final_deadline and not all(
        tap.stats.get(s) is not None and tap.stats[s].state == "STOPPED" for s in [*feeds, "detector"]
    ):
        tap.drain(100)
    tap.close()
    result.quotes_published = sum(tap.stats[f].counters.get("quotes", 0) for f in feeds if f in tap.stats)
    result.publish_dropped = sum(tap.stats[f].counters.get("publish_dropped", 0) for f in feeds if f in tap.stats)
    result.quotes_detected = tap.stats["detector"].counters.get("quotes", 0) if "detector" in tap.stats else 0
    result.executions = len(latencies)
    if latencies:
        arr = np.array(latencies, dtype=np.float64) / 1e3
        result.tick_to_order_us = {
            f"p{q}": round(float(np.percentile(arr, q)), 1) for q in (50, 90, 99, 99.9)
        }
    result.sustained = (
        result.feed_rate >= 0.95 * rate
        and result.publish_dropped == 0
        and result.quotes_published == result.quotes_detected
    )
    shutil.rmtree(run_dir, ignore_errors=True)
    return result


def _frames(stats: dict[str, Stats], feeds: list[str]) -> tuple[int, int]:
    """Frames received by all feeds, and the newest heartbeat time among them."""
    total = sum(stats[f].counters.get("frames", 0) for f in feeds if f in stats)
    ts = max((stats[f].ts_ns for f in feeds if f in stats), default=0)
    return total, ts


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="draizer bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--json", action="store_true")
    p.add_argument("--placements", default="processes,fused")
    p.add_argument("--latency-rate", type=float, default=10_000.0)
    p.add_argument("--latency-seconds", type=float, default=20.0)
    p.add_argument("--dislocation", type=float, default=0.005, help="sim dislocation probability per quote")
    p.add_argument("--rates", default="10000,25000,50000,100000,150000")
    p.add_argument("--rate-seconds", type=float, default=6.0)
    args = p.parse_args(argv)
    report: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "placements": {},
    }
    for placement in args.placements.split(","):
        lat = run_once(placement, args.latency_rate, args.latency_seconds, args.dislocation)
        sweep = []
        best = 0.0
        for rate in (float(r) for r in args.rates.split(",")):
            r = run_once(placement, rate, args.rate_seconds, 0.0005)
            sweep.append(asdict(r))
            if not r.sustained:
                break
            best = rate
        report["placements"][placement] = {"latency": asdict(lat), "sweep": sweep, "max_sustained_rate": best}
        if not args.json:
            print(f"{placement}: tick->order at {args.latency_rate:,.0f} quotes/s over {lat.executions} executions: "
                  + " ".join(f"{k}={v}us" for k, v in lat.tick_to_order_us.items()), flush=True)
            for r in sweep:
                print(f"  {r['rate_asked']:>9,.0f}/s asked: feeds got {r['feed_rate']:>9,.0f}/s, published "
                      f"{r['quotes_published']:,} detected {r['quotes_detected']:,} dropped {r['publish_dropped']} "
                      f"-> {'sustained' if r['sustained'] else 'NOT sustained'}", flush=True)
            print(f"  max sustained: {best:,.0f} quotes/s", flush=True)
    if args.json:
        print(json.dumps(report, indent=2))
    return 0
