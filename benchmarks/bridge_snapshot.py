"""Bridge: cost of one shared-memory publish (snapshot() + seqlock write) at 8 venues × 50 symbols.

Run: .venv/bin/python benchmarks/bridge_snapshot.py   (one core; prints P50/P99 and publishes/s)
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the test kit builds the events

from services.bridge.state import BridgeState
from shared.shm import ShmWriter
from tests.test_bridge_state import big_registry, decision, execution, opportunity, stats


def main() -> None:
    reg = big_registry(8, 50)
    services = [f"feed.venue{i}" for i in range(8)] + ["detector", "risk", "executor"]
    state = BridgeState(reg, services)
    prices = [(v, s, 100.0 + s, 100.5 + s) for v in range(8) for s in range(50)]
    for name in services:
        state.on_event(stats(name, counters={f"c{i}": i for i in range(12)}, prices=prices,
                             latencies_ns={"frame_to_publish": [900] * 512}))
    timings = []
    with tempfile.TemporaryDirectory() as d, ShmWriter(Path(d) / "shm", state.layout) as writer:
        for i in range(2000):
            opp = opportunity(i)
            state.on_event(opp)
            state.on_event(decision(opp, "approved" if i % 2 else "max_concurrent"))
            state.on_event(execution(opp, "filled", 0.1, 0.01, 30_000))
            t = time.perf_counter_ns()
            writer.publish(state.snapshot())
            timings.append(time.perf_counter_ns() - t)
    arr = np.array(timings) / 1e3
    print(f"bridge snapshot+publish (8x50): p50 {np.percentile(arr, 50):.0f} us  p99 {np.percentile(arr, 99):.0f} us"
          f"  {1e6 / arr.mean():,.0f} publishes/s")


if __name__ == "__main__":
    main()
