"""The benchmark's configuration: the embedded default pointed at the thin load source, one core map per placement.

The load source (``services.loadgen``) replays pre-encoded venue frames and answers orders without a book, so
it costs next to nothing and runs on the *other* core; the Python simulator is off. For latency, the venues'
rate limits and risk's breakers are lifted (every rule is still evaluated on every opportunity: the decision
path is the production one, it just never refuses for those reasons). Which process runs on which core is
part of every figure, so it is decided here, per placement, and printed with the results.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

import msgspec

from shared.config import default_config_path
from shared.venues.kinds import kind_of

LOAD_CPU = 0  # the load source, and what the engine does not need on its core
ENGINE_CPU = 1

# Which core each program gets, per placement. The hot path owns core 1 where it fits in one process; the
# processes placement cannot fit 7 processes on one core, so the feeds stay with the load source.
CORE_MAPS: dict[str, dict[str, int]] = {
    "single": {"loadgen": LOAD_CPU, "bridge": LOAD_CPU, "engine": ENGINE_CPU},
    "fused": {"loadgen": LOAD_CPU, "bridge": LOAD_CPU, "feed": LOAD_CPU, "engine": ENGINE_CPU},
    "processes": {"loadgen": LOAD_CPU, "bridge": LOAD_CPU, "feed": LOAD_CPU, "detector": ENGINE_CPU,
                  "risk": ENGINE_CPU, "executor": ENGINE_CPU},
}

LIFTED_LIMITS = {"weight_per_minute": 1_000_000_000, "orders_per_10s": 1_000_000_000,
                 "orders_per_day": 1_000_000_000, "budget_share": 1.0}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def core_map(placement: str, unpinned: bool = False) -> dict[str, int]:
    cores = dict(CORE_MAPS[placement])
    if unpinned:
        cores = dict.fromkeys(cores, -1)
    return cores


def bench_config(run_dir: Path, placement: str, *, busy_poll: bool = False, fsync: str = "batch",
                 unpinned: bool = False) -> dict[str, Any]:
    """The config both the engine and the load source read (the load source takes its ports from ``sim.venues``)."""
    data: dict[str, Any] = msgspec.toml.decode(default_config_path().read_bytes())
    for sv in data["sim"]["venues"]:
        sv["ws_port"], sv["rest_port"] = free_port(), free_port()
    by_venue = {sv["venue"]: sv for sv in data["sim"]["venues"]}
    for v in data["venues"]:
        sv = by_venue[v["name"]]
        kind = kind_of(v["kind"])
        v["ws_url"] = f"ws://127.0.0.1:{sv['ws_port']}{kind.ws_path}"
        v["rest_url"] = f"http://127.0.0.1:{sv['rest_port']}"
        v.pop("ws_api_url", None)  # fills come in the order answers: no user stream to serve
        v.pop("user_ws_url", None)
        v["limits"] = dict(LIFTED_LIMITS)
        if kind.spot:
            v["feed"] = {**v.get("feed", {}), "depth": "none"}  # tops only: the load source replays bookTickers
        else:  # the load source plays no perpetual order API: the perpetuals stay funding feeds (no carries)
            v.pop("api_key_env", None)
            v.pop("api_secret_env", None)
    data["instance"] = f"bench{os.getpid()}"
    data["sim"]["enabled"] = False
    cores = core_map(placement, unpinned)
    services = data.setdefault("services", {})
    for name, cpu in cores.items():
        if name != "loadgen":
            # A hot-path process's ZeroMQ I/O thread goes to the load core.
            io = LOAD_CPU if cpu == ENGINE_CPU else -1
            services[name] = {**services.get(name, {}), "cpu": cpu, "io_cpu": io}
    data["runtime"].update(run_dir=str(run_dir), placement=placement, heartbeat_interval_s=0.5, busy_poll=busy_poll)
    data["sinks"].update(prometheus_port=0, api_port=0)
    data.setdefault("execution", {})["journal_fsync"] = fsync
    data["risk"].update(max_concurrent=64, max_opportunity_age_ms=1000.0, failure_breaker_count=1_000_000,
                        loss_breaker_usd=1e12, max_daily_loss_usd=1e12, max_notional_usd=1e9)
    return data
