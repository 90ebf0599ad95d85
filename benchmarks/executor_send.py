"""Executor: the cost of turning one approved two-leg intent into two orders on the wire, by journal policy.

What is timed is ``Executor.on_intent`` — the synchronous part between receiving an intent and both signed
requests being written to their keep-alive connections: order state, the order journal (written, and synced
per policy, *before* sending), client ids, exact prices and quantities, HMAC signing, the rate budget, the
socket writes. Everything after (answers, queries, legging, books) runs in a task and is not on this path.

Same run, same process, one core: ``never`` (journal written, not synced) is the baseline the synced
policies are compared with; a bare signed ``HttpPool.request`` pair is the floor below that.

    .venv/bin/python benchmarks/executor_send.py [--intents 300]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import msgspec

from services.executor.service import Executor
from services.sim.app import Simulator
from services.sim.rate_limits import SimRateLimits
from shared.config import default_config_path, parse_config
from shared.messages import ACTION_OPEN, SIDE_BUY, SIDE_SELL, STRATEGY_CROSS, Leg, Opportunity, OrderIntent
from shared.registry import Registry
from shared.runtime.host import ProcessContext
from shared.venues.kinds import kind_of

KEYS = {"binance": ("bkey", "bsecret"), "mexc": ("mkey", "msecret")}
UNLIMITED = SimRateLimits(weight_per_minute=10**9, orders_per_10s=10**9, orders_per_day=10**9,
                          requests_per_endpoint_10s=10**9)


def config(run_dir: Path) -> dict[str, Any]:
    data: dict[str, Any] = msgspec.toml.decode(default_config_path().read_bytes())
    data["runtime"]["run_dir"] = str(run_dir)
    data["instance"] = "bench" + os.urandom(3).hex()
    for sv in data["sim"]["venues"]:
        sv["ws_port"] = sv["rest_port"] = 0
    for v in data["venues"]:
        v["limits"] = {"weight_per_minute": 10**9, "orders_per_10s": 10**9, "orders_per_day": 10**9}
    return data


def intent(reg: Registry, sim: Simulator) -> OrderIntent:
    s = reg.symbol_id["BTCUSDT"]
    b, m = sim.top_of_book("binance", "BTCUSDT"), sim.top_of_book("mexc", "BTCUSDT")
    assert b is not None and m is not None
    now = time.monotonic_ns()
    legs = (Leg(reg.venue_id["binance"], s, SIDE_BUY, b.ask, 0.001, 1.0, now),
            Leg(reg.venue_id["mexc"], s, SIDE_SELL, m.bid, 0.001, 1.0, now))
    opp = Opportunity(random.getrandbits(48), STRATEGY_CROSS, ACTION_OPEN, s, legs, b.ask * 0.001, 0, 0, now, now, now)
    return OrderIntent(opportunity=opp, decided_ns=now)


def pct(samples: list[int], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1e3


async def run(n: int) -> None:
    run_dir = Path(tempfile.mkdtemp(prefix="dzb"))
    try:
        data = config(run_dir)
        sim_cfg = parse_config(msgspec.toml.encode(data))
        async with Simulator(sim_cfg, KEYS, emit_quotes=False,
                             rate_limits={"binance": UNLIMITED, "mexc": UNLIMITED}) as sim:
            sim.emit(sim.model.n_slots)
            for v in data["venues"]:
                if kind_of(v["kind"]).spot:
                    v["rest_url"] = sim.rest_url(v["name"])
                    if v.get("ws_api_url"):
                        v["ws_api_url"] = sim.ws_api_url(v["name"])
            os.environ.update({"DRAIZER_BINANCE_API_KEY": "bkey", "DRAIZER_BINANCE_API_SECRET": "bsecret",
                               "DRAIZER_MEXC_API_KEY": "mkey", "DRAIZER_MEXC_API_SECRET": "msecret"})
            cfg = parse_config(msgspec.toml.encode(data))
            ex = Executor(ProcessContext(cfg, run_dir))
            ex.link_in_process({"RiskEngine": object()})
            await ex.start()
            reg = Registry(cfg)
            try:
                print(f"{n} two-leg intents per policy, spaced 20 ms (executions settle in between); one core\n")
                print(f"{'policy':<8} {'P50 µs':>8} {'P99 µs':>8} {'mean µs':>8} {'intents/s':>10} {'vs never':>9}")
                results: dict[str, list[int]] = {}
                for policy in ("never", "batch", "always"):
                    ex.journal.fsync_policy = policy
                    samples: list[int] = []
                    for _ in range(n):
                        it = intent(reg, sim)
                        t0 = time.perf_counter_ns()
                        ok = ex.on_intent(it)
                        samples.append(time.perf_counter_ns() - t0)
                        assert ok
                        await asyncio.sleep(0.02)
                    results[policy] = samples
                    base = statistics.median(results["never"])
                    mean = statistics.fmean(samples)
                    print(f"{policy:<8} {pct(samples, 0.5):>8.0f} {pct(samples, 0.99):>8.0f} {mean / 1e3:>8.0f} "
                          f"{1e9 / mean:>10.0f} {statistics.median(samples) / base:>8.2f}x")
                await floor(ex, reg, sim, n)
            finally:
                await ex.stop()
                ex.close()
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)


async def floor(ex: Executor, reg: Registry, sim: Simulator, n: int) -> None:
    """Two signed requests written straight to the pools: what is left without the executor's bookkeeping."""
    samples = []
    clients = [ex.clients[reg.venue_id["binance"]], ex.clients[reg.venue_id["mexc"]]]
    s = reg.symbol_id["BTCUSDT"]
    for i in range(n):
        t0 = time.perf_counter_ns()
        futs = [c.send_order(s, SIDE_BUY, "0.001", "1.00", f"dzfloor{os.getpid():x}{i}{k}") for k, c in
                enumerate(clients)]
        samples.append(time.perf_counter_ns() - t0)
        await asyncio.gather(*futs)
        await asyncio.sleep(0.005)
    print(f"{'floor':<8} {pct(samples, 0.5):>8.0f} {pct(samples, 0.99):>8.0f} "
          f"{statistics.fmean(samples) / 1e3:>8.0f}   (two signed requests written, no journal or state)")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--intents", type=int, default=300)
    args = p.parse_args()
    asyncio.run(run(args.intents))


if __name__ == "__main__":
    main()
