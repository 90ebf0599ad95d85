"""Order journal: what journaling one intent costs on the tick→order path, per fsync policy, 1 to 3 orders.

Timed, per intent, exactly what ``Executor.send`` does around the requests:

- *before send*: ``intent_and_orders`` — the intent and its orders encoded and written with one ``os.write``
  (``always`` also fdatasyncs here: the request waits for the disk);
- *after send*: ``sync_soon`` — hands the group commit to the journal's thread (``batch``), nothing otherwise;
- *durable after*: from ``sync_soon`` until ``synced()`` resolves (``batch``: the fdatasync on the worker thread,
  which the hot path never waits for; ``always``: already durable, 0; ``never``: never synced).

Each intent waits for its own sync before the next (one intent at a time). The three policies run in the same
process, interleaved intent by intent (so a noisy neighbour hits them alike), each journal in its own directory
on one disk (``--dir``, default: a new directory in /tmp).

    .venv/bin/python benchmarks/journal_write.py [--intents 2000] [--dir DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import random
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from services.executor.order_journal import OrderJournal
from services.executor.order_state import TrackedOrder
from shared.messages import ACTION_OPEN, SIDE_BUY, SIDE_SELL, STRATEGY_CROSS, Leg, Opportunity, OrderIntent

POLICIES = ("always", "batch", "never")


def intent_with(n: int) -> tuple[OrderIntent, list[TrackedOrder]]:
    """An intent of ``n`` legs and its orders, as the executor builds them."""
    now = time.monotonic_ns()
    opp_id = random.getrandbits(48)
    legs = tuple(Leg(i % 2, 0, SIDE_BUY if i % 2 == 0 else SIDE_SELL, 65_000.0 + i, 0.001, 1.0, now)
                 for i in range(n))
    opp = Opportunity(opp_id, STRATEGY_CROSS, ACTION_OPEN, 0, legs, 65.0, 3.0, 0.1, now, now, now)
    orders = [TrackedOrder(f"dz{opp_id:x}{'b' if leg.side == SIDE_BUY else 's'}{i}", opp_id, 0, i, leg.venue, 0,
                           leg.side, "0.00100", f"{leg.price:.2f}", "limit_ioc", time.time_ns())
              for i, leg in enumerate(legs)]
    return OrderIntent(opportunity=opp, decided_ns=now), orders


async def one(j: OrderJournal, n_orders: int) -> tuple[float, float, float]:
    """(before send, after send, durable after) in µs for one intent of ``n_orders``."""
    intent, orders = intent_with(n_orders)
    t0 = time.perf_counter_ns()
    j.intent_and_orders(intent.opportunity.id, intent.opportunity.strategy, [intent], orders)
    t1 = time.perf_counter_ns()
    # (the requests are written here)
    j.sync_soon()
    t2 = time.perf_counter_ns()
    await j.synced()
    t3 = time.perf_counter_ns()
    durable = (t3 - t2) / 1000 if j.fsync_policy != "never" else float("nan")
    return (t1 - t0) / 1000, (t2 - t1) / 1000, durable


async def run(n_orders: int, intents: int, directory: Path) -> dict[str, dict[str, list[float]]]:
    journals = {p: OrderJournal(directory / f"{p}-{n_orders}", p) for p in POLICIES}  # type: ignore[arg-type]
    out = {p: {"before": [], "after": [], "durable": []} for p in POLICIES}
    for i in range(intents + 50):  # the first 50 warm up (the files, the worker threads, the caches)
        for policy, j in journals.items():
            before, after, durable = await one(j, n_orders)
            if i >= 50:
                out[policy]["before"].append(before)
                out[policy]["after"].append(after)
                out[policy]["durable"].append(durable)
    for j in journals.values():
        j.close()
    return out


def pct(values: list[float], q: float) -> float:
    if not values or values[0] != values[0]:  # nan: not applicable
        return float("nan")
    return statistics.quantiles(values, n=1000, method="inclusive")[int(q * 10) - 1]


def cell(values: list[float]) -> str:
    p50, p99 = pct(values, 50), pct(values, 99)
    return "—" if p50 != p50 else f"{p50:.1f} / {p99:.1f}"


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--intents", type=int, default=2000)
    ap.add_argument("--dir", type=Path, default=None)
    args = ap.parse_args()
    directory = Path(tempfile.mkdtemp(prefix="journal-bench-", dir=args.dir))
    gc.freeze()  # as the services do after start-up
    try:
        rows = []
        for n in (1, 2, 3):
            results = await run(n, args.intents, directory)
            rows.extend((policy, n, results[policy]) for policy in POLICIES)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    print(f"order journal, µs per intent, P50 / P99 over {args.intents} intents (dir {directory.parent})\n")
    print("| policy | orders | before send: write (+ fsync) | after send: sync_soon | on disk after sync_soon |")
    print("|---|---:|---:|---:|---:|")
    for policy, n, r in rows:
        durable = "0 (synced before send)" if policy == "always" else cell(r["durable"])
        print(f"| {policy} | {n} | {cell(r['before'])} | {cell(r['after'])} | {durable} |")


if __name__ == "__main__":
    asyncio.run(main())
