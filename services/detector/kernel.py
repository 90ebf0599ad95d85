"""Cross-exchange detection kernel (Numba): one call evaluates every touched symbol.

One call per drained batch, not per quote: Numba's dispatch costs ~140 ns, so the kernel loops over the
touched symbols itself. The price cache is [venue × symbol] float64/int64 arrays owned by the detector.
"""

from __future__ import annotations

import numpy as np
from numba import njit

# Columns of the output rows.
OUT_SYMBOL = 0
OUT_BUY_VENUE = 1
OUT_SELL_VENUE = 2
OUT_BUY_PRICE = 3
OUT_SELL_PRICE = 4
OUT_QTY = 5
OUT_SPREAD_BPS = 6
OUT_PROFIT = 7
OUT_BUY_TS = 8
OUT_SELL_TS = 9
OUT_COLUMNS = 10

# Parameters, packed in one float64 array so changing them at runtime needs no recompilation.
P_MIN_SPREAD_BPS = 0
P_MIN_PROFIT_USD = 1
P_MAX_POSITION_USD = 2
P_CAPITAL_USD = 3
P_MAX_AGE_NS = 4
P_COUNT = 5


@njit(cache=True, nogil=True)
def detect_cross(
    touched: np.ndarray,  # int64[n] symbol ids, each at most once
    n_touched: int,
    bid: np.ndarray,  # float64[V, S]
    bid_qty: np.ndarray,
    ask: np.ndarray,
    ask_qty: np.ndarray,
    ts: np.ndarray,  # int64[V, S] receive stamp of the cached quote; 0 = never seen
    taker_fee: np.ndarray,  # float64[V]
    step: np.ndarray,  # float64[V, S] quantity step per venue
    min_notional: np.ndarray,  # float64[V, S]
    params: np.ndarray,  # float64[P_COUNT]
    now_ns: int,
    out: np.ndarray,  # float64[n, OUT_COLUMNS]
) -> int:
    """Best buy-venue/sell-venue pair per touched symbol that clears every threshold; returns rows written.

    The edge of buying on i and selling on j is ``bid_j·(1−f_j) − ask_i·(1+f_i)`` per unit: fees differ
    per venue, so every ordered pair is compared rather than just min-ask against max-bid.
    """
    n_venues = bid.shape[0]
    min_spread = params[P_MIN_SPREAD_BPS]
    min_profit = params[P_MIN_PROFIT_USD]
    max_position = params[P_MAX_POSITION_USD]
    capital = params[P_CAPITAL_USD]
    max_age = params[P_MAX_AGE_NS]
    rows = 0
    for k in range(n_touched):
        s = touched[k]
        best_profit = 0.0
        best_i = -1
        best_j = -1
        best_qty = 0.0
        best_bps = 0.0
        for i in range(n_venues):
            a = ask[i, s]
            if ts[i, s] == 0 or now_ns - ts[i, s] > max_age or a <= 0.0 or ask_qty[i, s] <= 0.0:
                continue
            cost = a * (1.0 + taker_fee[i])
            for j in range(n_venues):
                if j == i:
                    continue
                b = bid[j, s]
                if ts[j, s] == 0 or now_ns - ts[j, s] > max_age or b <= 0.0 or bid_qty[j, s] <= 0.0:
                    continue
                edge = b * (1.0 - taker_fee[j]) - cost
                if edge <= 0.0:
                    continue
                bps = edge / a * 1e4
                if bps < min_spread:
                    continue
                qty = min(ask_qty[i, s], bid_qty[j, s], max_position / a, capital / a)
                # Both legs trade the same quantity, so it must sit on both venues' steps: the coarser
                # step (steps are powers of ten in practice, so the coarser is a multiple of the finer).
                st = max(step[i, s], step[j, s])
                qty = np.floor(qty / st + 1e-9) * st
                if qty <= 0.0:
                    continue
                if qty * a < min_notional[i, s] or qty * b < min_notional[j, s]:
                    continue
                profit = edge * qty
                if profit < min_profit or profit <= best_profit:
                    continue
                best_profit = profit
                best_i = i
                best_j = j
                best_qty = qty
                best_bps = bps
        if best_i >= 0:
            out[rows, OUT_SYMBOL] = s
            out[rows, OUT_BUY_VENUE] = best_i
            out[rows, OUT_SELL_VENUE] = best_j
            out[rows, OUT_BUY_PRICE] = ask[best_i, s]
            out[rows, OUT_SELL_PRICE] = bid[best_j, s]
            out[rows, OUT_QTY] = best_qty
            out[rows, OUT_SPREAD_BPS] = best_bps
            out[rows, OUT_PROFIT] = best_profit
            out[rows, OUT_BUY_TS] = ts[best_i, s]
            out[rows, OUT_SELL_TS] = ts[best_j, s]
            rows += 1
    return rows


def warm_up() -> None:
    """Compile (or load from cache) before the first quote, so no quote pays for compilation."""
    one = np.zeros((2, 1), dtype=np.float64)
    detect_cross(
        np.zeros(1, dtype=np.int64),
        1,
        one,
        one,
        one,
        one,
        np.zeros((2, 1), dtype=np.int64),
        np.zeros(2, dtype=np.float64),
        np.ones((2, 1), dtype=np.float64),
        one,
        np.zeros(P_COUNT, dtype=np.float64),
        0,
        np.zeros((1, OUT_COLUMNS), dtype=np.float64),
    )
