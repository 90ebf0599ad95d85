"""Cross-exchange kernel (Numba): one call evaluates every touched symbol across every spot venue.

For each ordered venue pair (buy on i, sell on j) the kernel walks i's asks and j's bids together, level by
level, while the *marginal* spread net of both taker fees still clears ``min_spread_bps``, capped by the
position and capital limits. The walked size is rounded down to the coarser of the two venues' steps and
re-priced exactly; it must still clear the minimum notional on both venues and ``min_profit_usd``. The pair
with the highest profit wins. One call per drained batch, not per quote: Numba dispatch costs ~140 ns.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from services.detector.ladder import ASKS, BIDS, QTY_EPS, build, floor_step, take

# Columns of the output rows.
OUT_SYMBOL = 0
OUT_BUY_VENUE = 1
OUT_SELL_VENUE = 2
OUT_BUY_PRICE = 3  # the worst ask the size reaches: the buy limit
OUT_SELL_PRICE = 4  # the worst bid the size reaches: the sell limit
OUT_QTY = 5
OUT_SPREAD_BPS = 6  # profit over the buy notional, net of fees
OUT_PROFIT = 7  # USD
OUT_BUY_TS = 8
OUT_SELL_TS = 9
OUT_NOTIONAL = 10  # USD
OUT_COLUMNS = 11

# Parameters, packed in one float64 array so changing them at runtime needs no recompilation.
P_MIN_SPREAD_BPS = 0
P_MIN_PROFIT_USD = 1
P_MAX_POSITION_USD = 2
P_CAPITAL_USD = 3
P_MAX_AGE_NS = 4
P_COUNT = 5


@njit(cache=True, nogil=True)
def walk_pair(
    a_px: np.ndarray,
    a_qty: np.ndarray,
    na: int,
    fee_buy: float,
    b_px: np.ndarray,
    b_qty: np.ndarray,
    nb: int,
    fee_sell: float,
    min_bps: float,
    max_quote: float,
) -> float:
    """How much can be bought from asks ``a`` and sold into bids ``b`` while each marginal unit clears
    ``min_bps`` net of fees and the buy notional stays within ``max_quote`` (quote units)."""
    qty = 0.0
    spent = 0.0
    ia = 0
    ib = 0
    left_a = a_qty[0] if na > 0 else 0.0
    left_b = b_qty[0] if nb > 0 else 0.0
    while ia < na and ib < nb:
        pa = a_px[ia]
        edge = b_px[ib] * (1.0 - fee_sell) - pa * (1.0 + fee_buy)
        if edge <= 0.0 or edge / pa * 1e4 < min_bps:
            break
        q = left_a if left_a < left_b else left_b
        room = max_quote - spent
        if q * pa >= room:
            qty += room / pa
            break
        qty += q
        spent += q * pa
        left_a -= q
        left_b -= q
        if left_a <= QTY_EPS:
            ia += 1
            if ia < na:
                left_a = a_qty[ia]
        if left_b <= QTY_EPS:
            ib += 1
            if ib < nb:
                left_b = b_qty[ib]
    return qty


@njit(cache=True, nogil=True)
def detect_cross(
    touched: np.ndarray,  # int64[n] symbol ids, each at most once
    n_touched: int,
    venues: np.ndarray,  # int64[k] the spot venues to compare
    bid: np.ndarray,  # float64[V, S] top of book
    bid_qty: np.ndarray,
    ask: np.ndarray,
    ask_qty: np.ndarray,
    ts: np.ndarray,  # int64[V, S] receive stamp of the top; 0 = never seen
    depth_px: np.ndarray,  # float64[V, S, 2, L] best levels per side (0 = absent)
    depth_qty: np.ndarray,
    depth_ts: np.ndarray,  # int64[V, S]
    taker_fee: np.ndarray,  # float64[V]
    step: np.ndarray,  # float64[V, S] quantity step per venue
    min_notional: np.ndarray,  # float64[V, S] in quote units
    quote_asset: np.ndarray,  # int64[S] asset id of each symbol's quote currency
    asset_usd: np.ndarray,  # float64[A] USD per unit of each asset; 0 = not known yet
    params: np.ndarray,  # float64[P_COUNT]
    now_ns: int,
    lad_px: np.ndarray,  # float64[V, 2, L + 1] scratch
    lad_qty: np.ndarray,
    lad_n: np.ndarray,  # int64[V, 2] scratch
    lad_ts: np.ndarray,  # int64[V, 2] scratch
    out: np.ndarray,  # float64[n, OUT_COLUMNS]
) -> int:
    """Best buy-venue/sell-venue trade per touched symbol that clears every threshold; returns rows written."""
    min_bps = params[P_MIN_SPREAD_BPS]
    min_profit = params[P_MIN_PROFIT_USD]
    cap_usd = min(params[P_MAX_POSITION_USD], params[P_CAPITAL_USD])
    max_age = params[P_MAX_AGE_NS]
    n_venues = venues.shape[0]
    rows = 0
    for k in range(n_touched):
        s = touched[k]
        usd = asset_usd[quote_asset[s]]
        if usd <= 0.0:
            continue
        for x in range(n_venues):
            v = venues[x]
            n, stamp = build(v, s, ASKS, ask, ask_qty, ts, depth_px, depth_qty, depth_ts, now_ns, max_age,
                             lad_px[v, ASKS], lad_qty[v, ASKS])
            lad_n[v, ASKS] = n
            lad_ts[v, ASKS] = stamp
            n, stamp = build(v, s, BIDS, bid, bid_qty, ts, depth_px, depth_qty, depth_ts, now_ns, max_age,
                             lad_px[v, BIDS], lad_qty[v, BIDS])
            lad_n[v, BIDS] = n
            lad_ts[v, BIDS] = stamp
        best_profit = 0.0
        best_i = -1
        best_j = -1
        best_qty = 0.0
        best_buy = 0.0
        best_sell = 0.0
        best_cost = 0.0
        for x in range(n_venues):
            i = venues[x]
            na = lad_n[i, ASKS]
            if na == 0:
                continue
            fee_i = taker_fee[i]
            # Cheap pre-check on the best levels before any walking: most pairs end here.
            top_cost = lad_px[i, ASKS, 0] * (1.0 + fee_i)
            for y in range(n_venues):
                j = venues[y]
                nb = lad_n[j, BIDS]
                if j == i or nb == 0:
                    continue
                fee_j = taker_fee[j]
                edge = lad_px[j, BIDS, 0] * (1.0 - fee_j) - top_cost
                if edge <= 0.0 or edge / lad_px[i, ASKS, 0] * 1e4 < min_bps:
                    continue
                qty = walk_pair(lad_px[i, ASKS], lad_qty[i, ASKS], na, fee_i, lad_px[j, BIDS], lad_qty[j, BIDS],
                                nb, fee_j, min_bps, cap_usd / usd)
                # Both legs trade the same quantity, so it must sit on both venues' steps: the coarser step
                # (steps are powers of ten in practice, so the coarser is a multiple of the finer).
                st = max(step[i, s], step[j, s])
                qty = floor_step(qty, st)
                if qty <= 0.0:
                    continue
                cost, worst_ask, _ = take(lad_px[i, ASKS], lad_qty[i, ASKS], na, qty)
                proceeds, worst_bid, _ = take(lad_px[j, BIDS], lad_qty[j, BIDS], nb, qty)
                # Limit orders are checked at their limit price: the worst level each leg reaches.
                if qty * worst_ask < min_notional[i, s] or qty * worst_bid < min_notional[j, s]:
                    continue
                profit = (proceeds * (1.0 - fee_j) - cost * (1.0 + fee_i)) * usd
                if profit <= 0.0 or profit < min_profit or profit <= best_profit:
                    continue
                best_profit = profit
                best_i = i
                best_j = j
                best_qty = qty
                best_buy = worst_ask
                best_sell = worst_bid
                best_cost = cost
        if best_i >= 0:
            out[rows, OUT_SYMBOL] = s
            out[rows, OUT_BUY_VENUE] = best_i
            out[rows, OUT_SELL_VENUE] = best_j
            out[rows, OUT_BUY_PRICE] = best_buy
            out[rows, OUT_SELL_PRICE] = best_sell
            out[rows, OUT_QTY] = best_qty
            out[rows, OUT_SPREAD_BPS] = best_profit / (best_cost * usd) * 1e4
            out[rows, OUT_PROFIT] = best_profit
            out[rows, OUT_BUY_TS] = lad_ts[best_i, ASKS]
            out[rows, OUT_SELL_TS] = lad_ts[best_j, BIDS]
            out[rows, OUT_NOTIONAL] = best_cost * usd
            rows += 1
    return rows
