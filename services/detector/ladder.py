"""Book ladders for the kernels (Numba): one side of one venue's book as price/quantity levels, best first.

The detector holds two views of a book: the top from the bookTicker stream (``Quote``) and the best N levels
from the local L2 book (``Book``). They update independently, so a ladder merges them by freshness:

- the depth book is newer than the top (or there is no top): its levels as they are;
- the top is newer: the top first, then the depth levels strictly behind it (levels the top has already
  passed were traded through or cancelled since the depth update);
- anything older than ``max_age_ns`` is not used at all: a stale top makes no ladder, stale depth leaves
  the top alone.

The ladder's stamp is the receive time of its first level's source: that is the quote age an opportunity
reports and the one the age limit applies to.
"""

from __future__ import annotations

import numpy as np
from numba import njit

BIDS = 0  # the side we sell into
ASKS = 1  # the side we buy from
QTY_EPS = 1e-12
ROUND_SLACK = 1e-9  # floor(x / step) must not lose a whole step to binary float noise (0.3 / 0.1 = 2.9999…)


@njit(cache=True, nogil=True)
def build(
    v: int,
    s: int,
    side: int,
    top_px: np.ndarray,  # float64[V, S]: bid or ask, matching ``side``
    top_qty: np.ndarray,
    ts: np.ndarray,  # int64[V, S]
    depth_px: np.ndarray,  # float64[V, S, 2, L]
    depth_qty: np.ndarray,
    depth_ts: np.ndarray,  # int64[V, S]
    now_ns: int,
    max_age_ns: float,
    out_px: np.ndarray,  # float64[L + 1] scratch
    out_qty: np.ndarray,
) -> tuple[int, int]:
    """Fill ``out_*`` with the side's levels; returns (number of levels, stamp). (0, 0): no usable book."""
    qts = ts[v, s]
    dts = depth_ts[v, s]
    top_ok = qts > 0 and now_ns - qts <= max_age_ns and top_px[v, s] > 0.0 and top_qty[v, s] > 0.0
    depth_ok = dts > 0 and now_ns - dts <= max_age_ns and depth_qty[v, s, side, 0] > 0.0
    levels = depth_px.shape[3]
    n = 0
    if depth_ok and (not top_ok or dts >= qts):
        for level in range(levels):
            q = depth_qty[v, s, side, level]
            if q <= 0.0:
                break
            out_px[n] = depth_px[v, s, side, level]
            out_qty[n] = q
            n += 1
        return n, dts
    if not top_ok:
        return 0, 0
    top = top_px[v, s]
    out_px[0] = top
    out_qty[0] = top_qty[v, s]
    n = 1
    if depth_ok:
        for level in range(levels):
            q = depth_qty[v, s, side, level]
            if q <= 0.0:
                break
            p = depth_px[v, s, side, level]
            if (side == ASKS and p > top) or (side == BIDS and p < top):
                out_px[n] = p
                out_qty[n] = q
                n += 1
    return n, qts


@njit(cache=True, nogil=True)
def best_price(
    v: int,
    s: int,
    side: int,
    top_px: np.ndarray,
    top_qty: np.ndarray,
    ts: np.ndarray,
    depth_px: np.ndarray,
    depth_qty: np.ndarray,
    depth_ts: np.ndarray,
    now_ns: int,
    max_age_ns: float,
) -> float:
    """The price ``build`` would put first, without building the ladder (0.0: no usable book). Kernels that
    reject most candidates on the best levels alone test these first and build ladders only for survivors."""
    qts = ts[v, s]
    dts = depth_ts[v, s]
    top_ok = qts > 0 and now_ns - qts <= max_age_ns and top_px[v, s] > 0.0 and top_qty[v, s] > 0.0
    depth_ok = dts > 0 and now_ns - dts <= max_age_ns and depth_qty[v, s, side, 0] > 0.0
    if depth_ok and (not top_ok or dts >= qts):
        return depth_px[v, s, side, 0]
    if top_ok:
        return top_px[v, s]
    return 0.0


@njit(cache=True, nogil=True)
def take(px: np.ndarray, qty: np.ndarray, n: int, want: float) -> tuple[float, float, float]:
    """Walk ``want`` base units through the levels: (quote amount, worst price reached, base filled)."""
    left = want
    amount = 0.0
    worst = 0.0
    for level in range(n):
        if left <= QTY_EPS:
            break
        q = qty[level] if qty[level] < left else left
        amount += q * px[level]
        worst = px[level]
        left -= q
    return amount, worst, want - left


@njit(cache=True, nogil=True)
def qty_for_quote(px: np.ndarray, qty: np.ndarray, n: int, budget: float) -> float:
    """The most base units ``budget`` quote units buy walking the levels (before step rounding)."""
    left = budget
    got = 0.0
    for level in range(n):
        if left <= 0.0:
            break
        cost = qty[level] * px[level]
        if cost <= left:
            got += qty[level]
            left -= cost
        else:
            got += left / px[level]
            left = 0.0
    return got


@njit(cache=True, nogil=True)
def floor_step(x: float, step: float) -> float:
    return np.floor(x / step + ROUND_SLACK) * step
