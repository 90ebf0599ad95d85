"""Risk's inline decision per opportunity: ``RiskBook.decide`` (every rule, then the reservation) and the
refusal path, P50/P99 in ns on one core. The approval is followed by its Execution (release), as in a run.

    .venv/bin/python benchmarks/risk_decide.py --n 200000
"""

from __future__ import annotations

import argparse
import gc
import os
import time

import numpy as np

from services.risk.rules import APPROVED, RiskBook
from services.risk.state import RiskState, utc_day
from shared.config import Risk, default_config_path, load_config
from shared.messages import ACTION_OPEN, SIDE_BUY, SIDE_SELL, STRATEGY_CROSS, Execution, Leg, Opportunity, VenueState
from shared.registry import Registry


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--n", type=int, default=200_000)
    p.add_argument("--cpu", type=int, default=1)
    args = p.parse_args()
    if args.cpu >= 0:
        os.sched_setaffinity(0, {args.cpu})
    reg = Registry(load_config(default_config_path()))
    b, m = reg.venue_id["binance"], reg.venue_id["mexc"]
    btc = reg.symbol_id["BTCUSDT"]
    wall = time.time_ns()
    book = RiskBook(Risk(max_concurrent=4, max_opportunity_age_ms=1000.0), reg, RiskState(day=utc_day(wall)))
    now = time.monotonic_ns()
    for v in (b, m):
        book.on_venue_state(VenueState(v, wall, True, (("USDT", "100000000"), ("BTC", "1000")), 0, 6000, 0, 50_000_000,
                                       0, 160_000_000, 0, 0), now)
    approve = np.empty(args.n, dtype=np.int64)
    refuse = np.empty(args.n, dtype=np.int64)
    gc.collect()
    gc.freeze()
    for i in range(args.n):
        now = time.monotonic_ns()
        legs = (Leg(b, btc, SIDE_BUY, 97_000.0, 0.01, 1.0, now), Leg(m, btc, SIDE_SELL, 97_100.0, 0.01, 1.0, now))
        opp = Opportunity(i + 1, STRATEGY_CROSS, ACTION_OPEN, btc, legs, 970.0, 10.0, 1.0, now, now, now)
        t0 = time.perf_counter_ns()
        reason = book.decide(opp, now, time.time_ns())
        t1 = time.perf_counter_ns()
        assert reason == APPROVED, reason
        t2 = time.perf_counter_ns()
        refused = book.decide(opp, now, time.time_ns())  # the same symbol is now in flight
        t3 = time.perf_counter_ns()
        assert refused != APPROVED
        approve[i], refuse[i] = t1 - t0, t3 - t2
        book.on_execution(Execution(i + 1, btc, b, m, 0.01, 0.01, 97_000.0, 97_100.0, 0.0, 0.0, 970.0, "filled",
                                    now, now, now, now, now), time.time_ns())
    for name, arr in (("approve (every rule + reservation)", approve), ("refuse (symbol in flight)", refuse)):
        print(f"{name:<38} P50 {np.percentile(arr, 50):7.0f} ns  P99 {np.percentile(arr, 99):7.0f} ns")


if __name__ == "__main__":
    main()
