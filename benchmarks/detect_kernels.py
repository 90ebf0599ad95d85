"""Nanoseconds per market update for each detection kernel, as the universe grows.

Each kernel is called the way the detector calls it after one update (one touched symbol), on books with
10 depth levels per side: cross-exchange over 2 spot venues at 10 / 100 / 1,000 symbols; triangular at
10 / 1,000 / 10,000 cycles (a symbol universe where each coin sits in a bounded number of cycles, as on a
real venue); funding over 2 spot and 2 perpetual venues at 10 / 100 / 1,000 symbols. Prices carry random
dislocations, so part of the updates find something and walk the books.

Per size: P50/P99 of one call for one update, including Numba dispatch (timed one call at a time, so the
timer's own ~40 ns is included), and the throughput of a tight loop; then the detector's coalesced mode, 64
touched symbols per call (one drain under load), as ns per update. Baseline in the same run: the same kernel
with nothing touched (pure dispatch and argument unboxing), so "kernel − baseline" is the work itself.

    .venv/bin/python benchmarks/detect_kernels.py [--updates 200000] [--cpu 1]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from services.detector import cross, funding, triangular  # noqa: E402
from services.detector.cycles import Cycle, build_table  # noqa: E402

LEVELS = 10
NOW = 10**12


class Books:
    """V venues × S symbols of tops and 10-level depth around random mids with random dislocations."""

    def __init__(self, n_venues: int, n_symbols: int, rng: np.random.Generator, mids: np.ndarray | None = None) -> None:
        shape = (n_venues, n_symbols)
        self.mid = mids if mids is not None else rng.uniform(1.0, 1000.0, n_symbols)
        shift = rng.normal(0.0, 8e-4, shape)  # ±8 bps venue noise: a share of pairs/cycles clears the fees
        venue_mid = self.mid[None, :] * (1.0 + shift)
        self.bid = venue_mid * (1 - 1e-4)
        self.ask = venue_mid * (1 + 1e-4)
        self.bid_qty = rng.uniform(0.5, 5.0, shape)
        self.ask_qty = rng.uniform(0.5, 5.0, shape)
        self.ts = np.full(shape, NOW, dtype=np.int64)
        self.depth_px = np.zeros((*shape, 2, LEVELS))
        self.depth_qty = rng.uniform(0.5, 5.0, (*shape, 2, LEVELS))
        gaps = np.arange(LEVELS) * 1e-4
        self.depth_px[:, :, 0, :] = self.bid[:, :, None] * (1 - gaps)
        self.depth_px[:, :, 1, :] = self.ask[:, :, None] * (1 + gaps)
        self.depth_ts = np.full(shape, NOW - 1, dtype=np.int64)  # tops newer: the merge path is exercised
        self.fee = np.full(n_venues, 0.0005)
        self.step = np.full(shape, 1e-4)
        self.min_notional = np.full(shape, 1.0)
        self.quote_asset = np.zeros(n_symbols, dtype=np.int64)


def measure(call: Callable[[int], int], picks: np.ndarray) -> tuple[float, float, float]:
    """(P50 ns, P99 ns, updates/s) over the picked symbols."""
    samples = np.empty(picks.size, dtype=np.int64)
    clock = time.perf_counter_ns
    for k in range(picks.size):
        t0 = clock()
        call(int(picks[k]))
        samples[k] = clock() - t0
    t0 = clock()
    for k in range(picks.size):
        call(int(picks[k]))
    elapsed = clock() - t0
    return float(np.percentile(samples, 50)), float(np.percentile(samples, 99)), picks.size / (elapsed / 1e9)


def bench_cross(n_symbols: int, updates: int, rng: np.random.Generator) -> dict[str, float]:
    b = Books(2, n_symbols, rng)
    touched = np.zeros(1, dtype=np.int64)
    venues = np.arange(2, dtype=np.int64)
    params = np.zeros(cross.P_COUNT)
    params[cross.P_MIN_SPREAD_BPS], params[cross.P_MAX_POSITION_USD] = 5.0, 2_000.0
    params[cross.P_CAPITAL_USD], params[cross.P_MAX_AGE_NS] = 5_000.0, 1e18
    scratch = (np.zeros((2, 2, LEVELS + 1)), np.zeros((2, 2, LEVELS + 1)), np.zeros((2, 2), dtype=np.int64),
               np.zeros((2, 2), dtype=np.int64))
    out = np.zeros((n_symbols, cross.OUT_COLUMNS))
    asset_usd = np.ones(1)
    args = (venues, b.bid, b.bid_qty, b.ask, b.ask_qty, b.ts, b.depth_px, b.depth_qty, b.depth_ts, b.fee, b.step,
            b.min_notional, b.quote_asset, asset_usd, params, NOW, *scratch, out)
    found = 0

    def call(s: int) -> int:
        nonlocal found
        touched[0] = s
        rows = cross.detect_cross(touched, 1, *args)
        found += rows
        return rows

    def base(s: int) -> int:
        return cross.detect_cross(touched, 0, *args)

    def batch(symbols: np.ndarray) -> int:
        return cross.detect_cross(symbols, symbols.size, *args)

    return _report(call, base, batch, n_symbols, updates, rng, lambda: found)


def universe(n_cycles: int, rng: np.random.Generator) -> tuple[Books, Any, np.ndarray]:
    """Coins each with a USDT pair; cross pairs between coins, each closing two cycles (one per direction).
    Coins = cycles / 4, so every coin's USDT pair sits in ~4 cycles whatever the total."""
    n_coins = max(4, n_cycles // 4)
    n_cross = n_cycles // 2
    coin_px = rng.uniform(1.0, 1000.0, n_coins)
    pairs: list[tuple[int, int]] = []
    seen: set[tuple[int, int]] = set()
    while len(pairs) < n_cross:
        a, c = (int(x) for x in rng.choice(n_coins, 2, replace=False))
        if (a, c) not in seen and (c, a) not in seen:
            seen.add((a, c))
            pairs.append((a, c))
    # symbols: 0..n_coins-1 are COIN/USDT; then COIN_a/COIN_c
    mids = np.concatenate([coin_px, [coin_px[a] / coin_px[c] for a, c in pairs]])
    books = Books(1, mids.size, rng, mids)
    books.quote_asset = np.concatenate([np.zeros(n_coins, dtype=np.int64),
                                        np.array([1 + c for _, c in pairs], dtype=np.int64)])
    cycles = []
    for k, (a, c) in enumerate(pairs):
        x = n_coins + k  # a/c: base a, quote c
        # USDT -> c -> a -> USDT: buy c/USDT, buy a/c, sell a/USDT; and the reverse.
        cycles.append(Cycle(0, (c, x, a), (triangular.LEG_BUY, triangular.LEG_BUY, triangular.LEG_SELL), 0))
        cycles.append(Cycle(0, (a, x, c), (triangular.LEG_BUY, triangular.LEG_SELL, triangular.LEG_SELL), 0))
    table = build_table(cycles, 1, mids.size)
    asset_usd = np.concatenate([[1.0], coin_px])
    return books, table, asset_usd


def bench_triangular(n_cycles: int, updates: int, rng: np.random.Generator) -> dict[str, float]:
    b, t, asset_usd = universe(n_cycles, rng)
    touched = np.zeros(1, dtype=np.int64)
    mark = np.zeros(len(t.cycles), dtype=np.int64)
    epoch = [0]
    params = np.zeros(triangular.P_COUNT)
    params[triangular.P_MIN_PROFIT_BPS], params[triangular.P_MAX_POSITION_USD] = 5.0, 2_000.0
    params[triangular.P_CAPITAL_USD], params[triangular.P_MAX_AGE_NS] = 5_000.0, 1e18
    scratch = (np.zeros((3, LEVELS + 1)), np.zeros((3, LEVELS + 1)), np.zeros(3, dtype=np.int64),
               np.zeros(3, dtype=np.int64))
    out = np.zeros((len(t.cycles), triangular.OUT_COLUMNS))
    venues = np.zeros(1, dtype=np.int64)
    tail = (t.venue, t.symbols, t.sides, t.start, b.bid, b.bid_qty, b.ask, b.ask_qty, b.ts, b.depth_px, b.depth_qty,
            b.depth_ts, b.fee, b.step, b.min_notional, asset_usd, params, NOW, *scratch, out)
    found = 0

    def call(s: int) -> int:
        nonlocal found
        touched[0] = s
        epoch[0] += 1
        rows = triangular.detect_triangular(touched, 1, venues, t.index_start, t.index_cycles, mark, epoch[0], *tail)
        found += rows
        return rows

    def base(s: int) -> int:
        return triangular.detect_triangular(touched, 0, venues, t.index_start, t.index_cycles, mark, 0, *tail)

    def batch(symbols: np.ndarray) -> int:
        epoch[0] += 1
        return triangular.detect_triangular(symbols, symbols.size, venues, t.index_start, t.index_cycles, mark,
                                            epoch[0], *tail)

    per_symbol = np.diff(t.index_start)
    result = _report(call, base, batch, b.bid.shape[1], updates, rng, lambda: found)
    result["cycles"] = len(t.cycles)
    result["cycles_per_update"] = float(per_symbol.mean())
    return result


def bench_funding(n_symbols: int, updates: int, rng: np.random.Generator) -> dict[str, float]:
    b = Books(4, n_symbols, rng)  # venues 0, 1 spot; 2, 3 perpetual
    rate = np.zeros((4, n_symbols))
    rate[2:] = rng.normal(0.0002, 0.0002, (2, n_symbols))
    mark = b.bid.copy()
    mark[2:] = b.ask[0] * (1 + 3e-4)
    funding_ts = np.full((4, n_symbols), NOW, dtype=np.int64)
    next_ms = np.full((4, n_symbols), 8 * 3600 * 1000, dtype=np.int64)
    listed = np.ones((4, n_symbols), dtype=np.bool_)
    params = np.zeros(funding.P_COUNT)
    params[funding.P_MIN_ANNUAL], params[funding.P_HEDGE], params[funding.P_CHECK_NS] = 0.10, 1.0, 0.0
    params[funding.P_HORIZON_H], params[funding.P_PERIOD_H], params[funding.P_CAP_USD] = 720.0, 8.0, 5_000.0
    params[funding.P_MAX_AGE_NS] = 1e18
    state = (np.full(n_symbols, -1, dtype=np.int64), np.full(n_symbols, -1, dtype=np.int64), np.zeros(n_symbols),
             np.zeros(n_symbols, dtype=np.int64), np.zeros(n_symbols, dtype=np.int64))
    touched = np.zeros(1, dtype=np.int64)
    out = np.zeros((n_symbols, funding.OUT_COLUMNS))
    asset_usd = np.ones(1)
    args = (np.array([0, 1]), np.array([2, 3]), listed, b.bid, b.bid_qty, b.ask, b.ask_qty, b.ts, b.depth_px,
            b.depth_qty, b.depth_ts, rate, next_ms, mark, funding_ts, b.fee, b.step, b.min_notional, b.quote_asset,
            asset_usd, params, NOW, 0, *state, np.zeros(LEVELS + 1), np.zeros(LEVELS + 1), out)
    found = 0

    def call(s: int) -> int:
        nonlocal found
        touched[0] = s
        rows = funding.detect_funding(touched, 1, *args)
        found += rows
        state[1][s] = -1  # forget the signal: every update evaluates an entry (the expensive path)
        return rows

    def base(s: int) -> int:
        return funding.detect_funding(touched, 0, *args)

    def batch(symbols: np.ndarray) -> int:
        rows = funding.detect_funding(symbols, symbols.size, *args)
        state[1][:] = -1
        return rows

    return _report(call, base, batch, n_symbols, updates, rng, lambda: found)


BATCH = 64


def _report(call: Callable[[int], int], base: Callable[[int], int], batch: Callable[[np.ndarray], int],
            n_symbols: int, updates: int, rng: np.random.Generator, found: Callable[[], int]) -> dict[str, float]:
    picks = rng.integers(0, n_symbols, updates)
    for s in picks[:2000]:  # compile / load from cache, warm the caches
        call(int(s))
        base(int(s))
    before = found()
    p50, p99, rate = measure(call, picks)
    share = (found() - before) / (2 * updates)
    b50, _b99, _b_rate = measure(base, picks)
    # Coalesced: each call evaluates up to BATCH distinct touched symbols, as one drain does under load.
    per_call = min(BATCH, n_symbols)
    n_drains = max(1, updates // per_call)
    drains = [rng.choice(n_symbols, per_call, replace=False).astype(np.int64) for _ in range(n_drains)]
    batch(drains[0])
    t0 = time.perf_counter_ns()
    for d in drains:
        batch(d)
    batched_ns = (time.perf_counter_ns() - t0) / (len(drains) * per_call)
    return {"p50_ns": p50, "p99_ns": p99, "updates_per_s": rate, "dispatch_p50_ns": b50, "batched_ns": batched_ns,
            "found_share": share}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--updates", type=int, default=200_000)
    p.add_argument("--cpu", type=int, default=1)
    args = p.parse_args()
    if args.cpu >= 0:
        os.sched_setaffinity(0, {args.cpu})
    rng = np.random.default_rng(7)
    print(f"one core (cpu {args.cpu}); {args.updates} updates per size; one touched symbol per call")
    print(f"{'kernel':<12} {'size':>14} {'P50 ns':>8} {'P99 ns':>8} {'updates/s':>11} {'dispatch P50':>13}"
          f" {'work P50':>9} {'coalesced ns/upd':>17} {'found':>7}")
    rows = []
    for n in (10, 100, 1000):
        rows.append(("cross", f"{n} symbols", bench_cross(n, args.updates, rng)))
    for n in (10, 1000, 10_000):
        r = bench_triangular(n, args.updates, rng)
        rows.append(("triangular", f"{r['cycles']:.0f} cycles", r))
    for n in (10, 100, 1000):
        rows.append(("funding", f"{n} symbols", bench_funding(n, args.updates, rng)))
    for kernel, size, r in rows:
        extra = f"  ({r['cycles_per_update']:.1f} cycles/update)" if "cycles_per_update" in r else ""
        print(f"{kernel:<12} {size:>14} {r['p50_ns']:>8.0f} {r['p99_ns']:>8.0f} {r['updates_per_s']:>11,.0f}"
              f" {r['dispatch_p50_ns']:>13.0f} {r['p50_ns'] - r['dispatch_p50_ns']:>9.0f}"
              f" {r['batched_ns']:>17.0f} {r['found_share']:>7.1%}{extra}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
