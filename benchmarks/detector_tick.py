"""One quote through the detector service's real path (``Detector.on_batch``: ingest, the single Numba entry, no
opportunity found), P50/P99 per quote on one core, for a few symbols. Opportunities go to a counting outlet.

    .venv/bin/python benchmarks/detector_tick.py [--quotes 20000] [--cpu 1]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from services.detector.service import Detector
from shared.config import default_config_path, load_config
from shared.messages import MarketBatch, Opportunity, Quote
from shared.runtime.host import ProcessContext
from shared.runtime.outlet import Outlet


class _Count(Outlet[Opportunity]):
    @property
    def connected(self) -> bool:
        return True

    def send(self, msg: Opportunity) -> bool:
        self.sent += 1
        return True


async def run(quotes: int) -> None:
    cfg = load_config(default_config_path())
    d = Detector(ProcessContext(cfg, Path(tempfile.mkdtemp(prefix="dzt-"))))
    d.warm_up()
    d.opportunities = _Count("opportunities")
    d.publish = lambda _event: None  # type: ignore[method-assign]  # no events socket here
    reg = d.registry
    venues = [reg.venue_id["binance"], reg.venue_id["mexc"]]
    now = time.monotonic_ns()
    for s in range(reg.n_symbols):  # every book quoted once, 2 bps wide, no arbitrage
        p = cfg.symbols[s].start_price
        for v in venues:
            d.on_batch(MarketBatch(now, [Quote(v, s, p * 0.9999, 1.0, p * 1.0001, 1.0, 1, now)]))
    gc.collect()
    gc.freeze()
    for name in ("BTCUSDT", "ETHUSDT", "XRPUSDT"):
        s = reg.symbol_id[name]
        p = cfg.symbols[s].start_price
        samples = np.empty(quotes, dtype=np.int64)
        for i in range(quotes):
            now = time.monotonic_ns()
            batch = MarketBatch(now, [Quote(venues[0], s, p * (0.9999 - (i % 7) * 1e-6), 0.5,
                                            p * (1.0001 + (i % 5) * 1e-6), 0.5, i + 10, now)])
            t0 = time.perf_counter_ns()
            d.on_batch(batch)
            samples[i] = time.perf_counter_ns() - t0
        p50, p99 = np.percentile(samples, 50) / 1e3, np.percentile(samples, 99) / 1e3
        print(f"{name:<8} one quote through on_batch: P50 {p50:6.1f} us  P99 {p99:6.1f} us  ({quotes:,} quotes, "
              f"opportunities {d.opportunities.sent})")




def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--quotes", type=int, default=20_000)
    p.add_argument("--cpu", type=int, default=1)
    args = p.parse_args()
    if args.cpu >= 0:
        os.sched_setaffinity(0, {args.cpu})
    asyncio.run(run(args.quotes))


if __name__ == "__main__":
    main()
