"""`draizer bench`: the real pipeline under supervisord, driven by a thin load source at fixed quote rates.

The load source (``python -m services.loadgen``) replays pre-encoded Binance and MEXC frames and answers
orders with valid venue answers without walking a book; it runs on core 0, the hot path on core 1 (the core
map of each placement is printed with its figures). Per placement:

* latency, at ``--latency-rate`` quotes/s: tick→decision on every opportunity, tick→order on every execution
  (P50/P90/P99/P99.9) and the execution's stages (feed, detect, decide, journal, write);
* throughput (placements in ``--sweep``): for each rate of ``--rates`` (ascending), "sustained" when the feeds
  received ≥ 95 % of the asked rate and every quote they published reached the detector (exact counts from
  the final heartbeats). The highest sustained rate is reported; the sweep stops at the first failure.

For latency the venues' rate limits and risk's breakers are lifted (risk still evaluates every rule on every
opportunity). ``--profile`` adds a run under cProfile and prints where the hot-path processes spend their time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from dataclasses import asdict
from typing import Any

from services.cli.bench_run import STAGES, RunResult, run_once

TARGETS_US = {"single": (30.0, 100.0), "fused": (100.0, 400.0), "processes": (250.0, 1000.0)}


def _line(r: RunResult) -> str:
    cores = ", ".join(f"{k}@{v}" for k, v in r.cores.items())
    t2o = " ".join(f"{k}={v}" for k, v in r.tick_to_order_us.items()) or "no executions"
    t2d = " ".join(f"{k}={v}" for k, v in r.tick_to_decision_us.items()) or "no opportunities"
    stages = " | ".join(f"{s} {r.stages_us[s].get('p50', '-')}/{r.stages_us[s].get('p99', '-')}" for s in STAGES)
    target = TARGETS_US.get(r.placement)
    verdict = ""
    if target and r.tick_to_order_us:
        ok = r.tick_to_order_us["p50"] <= target[0] and r.tick_to_order_us["p99"] <= target[1]
        verdict = f"  [target P50 <= {target[0]:g} us, P99 <= {target[1]:g} us: {'met' if ok else 'MISSED'}]"
    return (f"{r.placement} (cores: {cores}; busy_poll {r.busy_poll}; journal fsync {r.fsync}) at "
            f"{r.rate_asked:,.0f} quotes/s, feeds got {r.feed_rate:,.0f}/s\n"
            f"  tick->order over {r.executions} executions (us): {t2o}{verdict}\n"
            f"  tick->decision over {r.opportunities} opportunities (us): {t2d}\n"
            f"  stages P50/P99 (us): {stages}")


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="draizer bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--json", action="store_true", help="one JSON document instead of text")
    p.add_argument("--placements", default="single,fused,processes")
    p.add_argument("--latency-rate", type=float, default=10_000.0)
    p.add_argument("--latency-seconds", type=float, default=15.0)
    p.add_argument("--dislocation", type=float, default=0.0005, help="share of quotes that start a dislocation")
    p.add_argument("--sweep", default="single", help="placements whose maximum zero-loss rate is measured")
    p.add_argument("--rates", default="10000,25000,50000,100000,150000")
    p.add_argument("--rate-seconds", type=float, default=6.0)
    p.add_argument("--fsync", default="batch", help="journal fsync policies to compare (single only if several)")
    p.add_argument("--busy-poll", action="store_true", help="the hot-path process spins on its core")
    p.add_argument("--profile", action="store_true", help="one more run per placement under cProfile")
    args = p.parse_args(argv)
    unpinned = bool(os.environ.get("DRAIZER_BENCH_UNPINNED"))
    report: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "load_source": "services.loadgen: pre-encoded frames, thin order acceptor",
        "risk": "rate limits and breakers lifted; every rule still evaluated",
        "placements": {},
    }
    policies = args.fsync.split(",")
    say_header = (f"draizer bench: {report['load_source']}; venue rate limits and risk breakers lifted for the run "
                  "(risk still evaluates every rule on every opportunity); "
                  f"{report['machine']['cpus']} cpus, Python {report['machine']['python']}")

    def say(text: str) -> None:
        if not args.json:
            print(text, flush=True)

    say(say_header)
    for placement in args.placements.split(","):
        entry: dict[str, Any] = {"latency": []}
        for policy in policies if placement == "single" else policies[:1]:
            lat = run_once(placement, args.latency_rate, args.latency_seconds, dislocation=args.dislocation,
                           busy_poll=args.busy_poll, fsync=policy, unpinned=unpinned)
            entry["latency"].append(asdict(lat))
            say(_line(lat))
        if args.profile:
            prof = run_once(placement, args.latency_rate, min(args.latency_seconds, 10.0),
                            dislocation=args.dislocation, busy_poll=args.busy_poll, fsync=policies[0],
                            unpinned=unpinned, profile=True)
            entry["profile"] = prof.profile
            say("  profile (cProfile, separate run; times include the profiler's own overhead):")
            for row in prof.profile:
                say("  " + row)
        if placement in args.sweep.split(","):
            sweep, best = [], 0.0
            for rate in (float(r) for r in args.rates.split(",")):
                r = run_once(placement, rate, args.rate_seconds, dislocation=args.dislocation / 10,
                             busy_poll=args.busy_poll, fsync=policies[0], unpinned=unpinned)
                sweep.append(asdict(r))
                say(f"  {rate:>9,.0f}/s asked: feeds got {r.feed_rate:>9,.0f}/s, published {r.quotes_published:,} "
                    f"detected {r.quotes_detected:,} dropped {r.publish_dropped} -> "
                    f"{'sustained' if r.sustained else 'NOT sustained'}")
                if not r.sustained:
                    break
                best = rate
            entry["sweep"] = sweep
            entry["max_sustained_rate"] = best
            say(f"  {placement}: max sustained with zero loss: {best:,.0f} quotes/s")
        report["placements"][placement] = entry
    if args.json:
        print(json.dumps(report, indent=2))
    return 0
