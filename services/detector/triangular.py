"""Triangular kernel (Numba): three legs on one venue around a currency triangle.

A cycle is three (symbol, side) legs, each spending the currency the previous one bought: e.g. on one venue
USDT→BTC (buy BTCUSDT), BTC→ETH (buy ETHBTC), ETH→USDT (sell ETHUSDT). Per unit of input a buy leg yields
``(1−fee)/ask`` and a sell leg ``bid·(1−fee)``; the cycle pays when their product exceeds one.

Sizing walks all three books at once: within the current level of every leg the rates are constant, so
the start amount can grow until some leg's level is used up (converted back through the earlier legs'
rates), then that leg moves to its next level. The walk stops when the *marginal* cycle return falls below
``min_profit_bps`` or the position cap is reached. The amount is then pushed through the legs again exactly,
each leg's quantity rounded down to its step and spending only what the previous leg delivered; what
rounding leaves behind in the middle currencies is not counted as profit.

Only the cycles through a touched symbol are evaluated, each at most once per drain (``mark``/``epoch``).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from services.detector.ladder import ASKS, BIDS, QTY_EPS, best_price, build, floor_step, qty_for_quote, take

LEG_BUY = 0  # spend the quote currency, receive the base
LEG_SELL = 1  # spend the base, receive the quote

OUT_CYCLE = 0
OUT_BPS = 1  # net return of the rounded cycle on what its first leg spends
OUT_PROFIT = 2  # USD
OUT_NOTIONAL = 3  # USD spent by the first leg
OUT_LEG0 = 4  # then per leg: price (the limit: worst level reached), qty, quote stamp
LEG_COLUMNS = 3
OUT_COLUMNS = OUT_LEG0 + 3 * LEG_COLUMNS

P_MIN_PROFIT_BPS = 0
P_MIN_PROFIT_USD = 1
P_MAX_POSITION_USD = 2
P_CAPITAL_USD = 3
P_MAX_AGE_NS = 4
P_COUNT = 5


@njit(cache=True, nogil=True)
def _rate(side: int, px: float, fee: float) -> float:
    return (1.0 - fee) / px if side == LEG_BUY else px * (1.0 - fee)


@njit(cache=True, nogil=True)
def _capacity(side: int, px: float, qty: float) -> float:
    """A level's size in the leg's input currency."""
    return qty * px if side == LEG_BUY else qty


@njit(cache=True, nogil=True)
def walk_cycle(
    sides: np.ndarray,  # int64[3]
    px: np.ndarray,  # float64[3, L + 1]
    qty: np.ndarray,
    n: np.ndarray,  # int64[3]
    fee: float,
    min_bps: float,
    max_start: float,
) -> float:
    """The start amount the cycle can take while each marginal unit returns at least ``min_bps``."""
    level = np.zeros(3, dtype=np.int64)
    left = np.empty(3, dtype=np.float64)
    for k in range(3):
        left[k] = _capacity(sides[k], px[k, 0], qty[k, 0])
    start = 0.0
    while True:
        r0 = _rate(sides[0], px[0, level[0]], fee)
        r1 = _rate(sides[1], px[1, level[1]], fee)
        r2 = _rate(sides[2], px[2, level[2]], fee)
        if (r0 * r1 * r2 - 1.0) * 1e4 < min_bps:
            break
        # The start amount that empties each leg's current level, converted back through the earlier legs.
        x = left[0]
        x1 = left[1] / r0
        x2 = left[2] / (r0 * r1)
        if x1 < x:
            x = x1
        if x2 < x:
            x = x2
        room = max_start - start
        if x >= room:
            start = max_start
            break
        start += x
        left[0] -= x
        left[1] -= x * r0
        left[2] -= x * r0 * r1
        exhausted = False
        for k in range(3):
            if left[k] <= QTY_EPS * max(1.0, _capacity(sides[k], px[k, level[k]], qty[k, level[k]])):
                level[k] += 1
                if level[k] >= n[k]:
                    exhausted = True
                    break
                left[k] = _capacity(sides[k], px[k, level[k]], qty[k, level[k]])
        if exhausted:
            break
    return start


@njit(cache=True, nogil=True)
def evaluate_cycle(
    c: int,
    cyc_venue: np.ndarray,
    cyc_sym: np.ndarray,
    cyc_side: np.ndarray,
    cyc_start: np.ndarray,
    bid: np.ndarray,
    bid_qty: np.ndarray,
    ask: np.ndarray,
    ask_qty: np.ndarray,
    ts: np.ndarray,
    depth_px: np.ndarray,
    depth_qty: np.ndarray,
    depth_ts: np.ndarray,
    taker_fee: np.ndarray,
    step: np.ndarray,
    min_notional: np.ndarray,
    asset_usd: np.ndarray,
    params: np.ndarray,
    now_ns: int,
    lad_px: np.ndarray,  # float64[3, L + 1] scratch
    lad_qty: np.ndarray,
    lad_n: np.ndarray,  # int64[3] scratch
    lad_ts: np.ndarray,  # int64[3] scratch
    out_row: np.ndarray,  # float64[OUT_COLUMNS]
) -> bool:
    v = cyc_venue[c]
    start_usd = asset_usd[cyc_start[c]]
    if start_usd <= 0.0:
        return False
    max_age = params[P_MAX_AGE_NS]
    fee = taker_fee[v]
    min_bps = params[P_MIN_PROFIT_BPS]
    # Cheap test on the best levels first, before any ladder is built: most cycles are not profitable and end
    # here. It is exact: a ladder's first level is the price best_price returns.
    r = 1.0
    for k in range(3):
        s = cyc_sym[c, k]
        if cyc_side[c, k] == LEG_BUY:
            px = best_price(v, s, ASKS, ask, ask_qty, ts, depth_px, depth_qty, depth_ts, now_ns, max_age)
        else:
            px = best_price(v, s, BIDS, bid, bid_qty, ts, depth_px, depth_qty, depth_ts, now_ns, max_age)
        if px <= 0.0:
            return False
        r *= _rate(cyc_side[c, k], px, fee)
    if (r - 1.0) * 1e4 < min_bps:
        return False
    for k in range(3):
        s = cyc_sym[c, k]
        if cyc_side[c, k] == LEG_BUY:
            nk, stamp = build(v, s, ASKS, ask, ask_qty, ts, depth_px, depth_qty, depth_ts, now_ns, max_age,
                              lad_px[k], lad_qty[k])
        else:
            nk, stamp = build(v, s, BIDS, bid, bid_qty, ts, depth_px, depth_qty, depth_ts, now_ns, max_age,
                              lad_px[k], lad_qty[k])
        if nk == 0:
            return False
        lad_n[k] = nk
        lad_ts[k] = stamp
    cap_usd = min(params[P_MAX_POSITION_USD], params[P_CAPITAL_USD])
    amount = walk_cycle(cyc_side[c], lad_px, lad_qty, lad_n, fee, min_bps, cap_usd / start_usd)
    spent = 0.0
    for k in range(3):
        s = cyc_sym[c, k]
        if cyc_side[c, k] == LEG_BUY:
            q = floor_step(qty_for_quote(lad_px[k], lad_qty[k], lad_n[k], amount), step[v, s])
            cost, worst, filled = take(lad_px[k], lad_qty[k], lad_n[k], q)
            leg_in = cost
            amount = q * (1.0 - fee)
        else:
            q = floor_step(amount, step[v, s])
            proceeds, worst, filled = take(lad_px[k], lad_qty[k], lad_n[k], q)
            leg_in = q
            amount = proceeds * (1.0 - fee)
        if q <= 0.0 or filled < q - QTY_EPS * max(1.0, q) or q * worst < min_notional[v, s]:
            return False
        if k == 0:
            spent = leg_in
        base = OUT_LEG0 + k * LEG_COLUMNS
        out_row[base] = worst
        out_row[base + 1] = q
        out_row[base + 2] = lad_ts[k]
    profit = amount - spent
    if profit <= 0.0:
        return False
    bps = profit / spent * 1e4
    profit_usd = profit * start_usd
    if bps < min_bps or profit_usd < params[P_MIN_PROFIT_USD]:
        return False
    out_row[OUT_CYCLE] = c
    out_row[OUT_BPS] = bps
    out_row[OUT_PROFIT] = profit_usd
    out_row[OUT_NOTIONAL] = spent * start_usd
    return True


@njit(cache=True, nogil=True)
def detect_triangular(
    touched: np.ndarray,  # int64[n] symbol ids
    n_touched: int,
    venues: np.ndarray,  # int64[k] spot venues
    index_start: np.ndarray,  # int64[V * S + 1]: cycles through (v, s) are index_cycles[start[v*S+s]:start[v*S+s+1]]
    index_cycles: np.ndarray,  # int64[...]
    mark: np.ndarray,  # int64[C]: the epoch a cycle was last evaluated in
    epoch: int,
    cyc_venue: np.ndarray,  # int64[C]
    cyc_sym: np.ndarray,  # int64[C, 3]
    cyc_side: np.ndarray,  # int64[C, 3]
    cyc_start: np.ndarray,  # int64[C] asset the cycle starts and ends in
    bid: np.ndarray,
    bid_qty: np.ndarray,
    ask: np.ndarray,
    ask_qty: np.ndarray,
    ts: np.ndarray,
    depth_px: np.ndarray,
    depth_qty: np.ndarray,
    depth_ts: np.ndarray,
    taker_fee: np.ndarray,
    step: np.ndarray,
    min_notional: np.ndarray,
    asset_usd: np.ndarray,  # float64[A] USD per unit of each asset; 0 = not known yet
    params: np.ndarray,
    now_ns: int,
    lad_px: np.ndarray,
    lad_qty: np.ndarray,
    lad_n: np.ndarray,
    lad_ts: np.ndarray,
    out: np.ndarray,  # float64[max rows, OUT_COLUMNS]
) -> int:
    """Every profitable cycle through the touched symbols (each cycle once); returns rows written."""
    n_symbols = bid.shape[1]
    max_rows = out.shape[0]
    rows = 0
    for k in range(n_touched):
        s = touched[k]
        for x in range(venues.shape[0]):
            cell = venues[x] * n_symbols + s
            for m in range(index_start[cell], index_start[cell + 1]):
                c = index_cycles[m]
                if mark[c] == epoch:
                    continue
                mark[c] = epoch
                if rows < max_rows and evaluate_cycle(
                    c, cyc_venue, cyc_sym, cyc_side, cyc_start, bid, bid_qty, ask, ask_qty, ts, depth_px,
                    depth_qty, depth_ts, taker_fee, step, min_notional, asset_usd, params, now_ns, lad_px,
                    lad_qty, lad_n, lad_ts, out[rows],
                ):
                    rows += 1
    return rows
