"""Funding-rate kernel (Numba): spot–perpetual carry, entered when it pays and closed when it stops paying.

A positive funding rate is paid by perpetual longs to shorts each period. Long spot plus short perpetual
collects it with no price exposure. Over the strategy's horizon (``horizon_hours``) one unit of notional earns

    net = rate · horizon/period + basis − round-trip fees

where basis = (perp price − spot buy price) / spot buy price is locked in at entry (the two converge), and
the fees are both legs' taker fees in and out. ``net`` annualised must clear ``min_funding_rate``. Without
hedging the position is the perpetual short alone: no basis, only its own fees.

Only the positive carry is taken: the reverse (short spot) needs margin borrowing, which draizer does not do.
A symbol holds at most one carry signal (its best spot venue × perpetual venue). CLOSE follows when the rate
flips to ≤ 0, or once the settlement the entry was made for has passed and the rate alone no longer clears
the threshold. This is the detector's signal state: whether a position exists is the executor's business.
Evaluation per symbol is throttled to ``check_interval_sec``: carry moves with the funding pushes (once a
second), not with every spot quote.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from services.detector.ladder import ASKS, BIDS, build, floor_step, qty_for_quote, take

HOURS_PER_YEAR = 8760.0

OUT_SYMBOL = 0
OUT_ACTION = 1  # 0 open, 1 close (shared.messages.ACTION_*)
OUT_SPOT_VENUE = 2
OUT_PERP_VENUE = 3
OUT_QTY = 4
OUT_SPOT_PRICE = 5  # buy limit (open) / sell limit (close): the worst spot level the size reaches
OUT_PERP_PRICE = 6  # mark price, or the spot mid where the venue pushes none
OUT_ANNUAL_BPS = 7  # net carry, annualised, in bps
OUT_PROFIT = 8  # USD expected over the horizon (open); 0 for close
OUT_NOTIONAL = 9  # USD
OUT_SPOT_TS = 10
OUT_PERP_TS = 11
OUT_RATE = 12  # the funding rate per period that decided it
OUT_COLUMNS = 13

P_MIN_ANNUAL = 0
P_HEDGE = 1  # 1.0 hedged, 0.0 perpetual alone
P_CHECK_NS = 2
P_HORIZON_H = 3
P_PERIOD_H = 4
P_CAP_USD = 5  # min(max_position_usd, capital · allocation)
P_MAX_AGE_NS = 6
P_MIN_PROFIT_USD = 7
P_COUNT = 8

ACTION_OPEN = 0
ACTION_CLOSE = 1


@njit(cache=True, nogil=True)
def annualised_net(rate: float, basis: float, fees: float, horizon_h: float, period_h: float) -> float:
    """Net carry per unit of notional over the horizon, as a yearly rate."""
    return (rate * horizon_h / period_h + basis - fees) * HOURS_PER_YEAR / horizon_h


@njit(cache=True, nogil=True)
def _spot_mid(spot_venues: np.ndarray, s: int, bid: np.ndarray, ask: np.ndarray, ts: np.ndarray, now_ns: int,
              max_age: float) -> float:
    """A price for a perpetual whose venue pushes no mark: the first fresh spot mid (0 if none)."""
    for x in range(spot_venues.shape[0]):
        v = spot_venues[x]
        if ts[v, s] > 0 and now_ns - ts[v, s] <= max_age and bid[v, s] > 0.0 and ask[v, s] > 0.0:
            return (bid[v, s] + ask[v, s]) * 0.5
    return 0.0


@njit(cache=True, nogil=True)
def detect_funding(
    touched: np.ndarray,  # int64[n] symbol ids
    n_touched: int,
    spot_venues: np.ndarray,  # int64[k]
    perp_venues: np.ndarray,  # int64[m]
    listed: np.ndarray,  # bool[V, S]
    bid: np.ndarray,
    bid_qty: np.ndarray,
    ask: np.ndarray,
    ask_qty: np.ndarray,
    ts: np.ndarray,
    depth_px: np.ndarray,
    depth_qty: np.ndarray,
    depth_ts: np.ndarray,
    rate: np.ndarray,  # float64[V, S] funding rate per period
    next_ms: np.ndarray,  # int64[V, S] next settlement (venue wall clock)
    mark: np.ndarray,  # float64[V, S] 0 = the venue pushes none
    funding_ts: np.ndarray,  # int64[V, S] receive stamp of the funding push
    taker_fee: np.ndarray,
    step: np.ndarray,
    min_notional: np.ndarray,
    quote_asset: np.ndarray,  # int64[S]
    asset_usd: np.ndarray,  # float64[A] USD per unit; 0 = not known yet
    params: np.ndarray,
    now_ns: int,
    venue_now_ms: int,  # the venues' clock: the latest funding event time seen
    open_spot: np.ndarray,  # int64[S] state: spot venue of the open carry (-1: none; hedge off: -2)
    open_perp: np.ndarray,  # int64[S] perp venue of the open carry (-1: none)
    open_qty: np.ndarray,  # float64[S]
    open_settle_ms: np.ndarray,  # int64[S] the settlement the entry was made for
    last_eval_ns: np.ndarray,  # int64[S]
    lad_px: np.ndarray,  # float64[L + 1] scratch
    lad_qty: np.ndarray,
    out: np.ndarray,  # float64[n, OUT_COLUMNS]
) -> int:
    min_annual = params[P_MIN_ANNUAL]
    hedged = params[P_HEDGE] > 0.5
    horizon_h = params[P_HORIZON_H]
    period_h = params[P_PERIOD_H]
    max_age = params[P_MAX_AGE_NS]
    rows = 0
    for k in range(n_touched):
        s = touched[k]
        if last_eval_ns[s] > 0 and now_ns - last_eval_ns[s] < params[P_CHECK_NS]:
            continue
        usd = asset_usd[quote_asset[s]]
        if usd <= 0.0:
            continue
        last_eval_ns[s] = now_ns
        p_open = open_perp[s]
        if p_open >= 0:
            if funding_ts[p_open, s] == 0 or now_ns - funding_ts[p_open, s] > max_age:
                continue  # never decide on a stale rate
            r = rate[p_open, s]
            i = open_spot[s]
            spot_px = 0.0
            spot_stamp = 0
            if i >= 0:
                n, spot_stamp = build(i, s, BIDS, bid, bid_qty, ts, depth_px, depth_qty, depth_ts, now_ns, max_age,
                                      lad_px, lad_qty)
                if n == 0:
                    continue  # the spot leg cannot be priced: wait for a fresh book
                _, spot_px, _ = take(lad_px, lad_qty, n, open_qty[s])
            gross = annualised_net(r, 0.0, 0.0, horizon_h, period_h)
            settled = venue_now_ms >= open_settle_ms[s]
            if r <= 0.0 or (settled and gross < min_annual):
                perp_px = mark[p_open, s]
                if perp_px <= 0.0:
                    perp_px = spot_px if spot_px > 0.0 else _spot_mid(spot_venues, s, bid, ask, ts, now_ns, max_age)
                out[rows, OUT_SYMBOL] = s
                out[rows, OUT_ACTION] = ACTION_CLOSE
                out[rows, OUT_SPOT_VENUE] = i
                out[rows, OUT_PERP_VENUE] = p_open
                out[rows, OUT_QTY] = open_qty[s]
                out[rows, OUT_SPOT_PRICE] = spot_px
                out[rows, OUT_PERP_PRICE] = perp_px
                out[rows, OUT_ANNUAL_BPS] = gross * 1e4
                out[rows, OUT_PROFIT] = 0.0
                out[rows, OUT_NOTIONAL] = open_qty[s] * perp_px * usd
                out[rows, OUT_SPOT_TS] = spot_stamp
                out[rows, OUT_PERP_TS] = funding_ts[p_open, s]
                out[rows, OUT_RATE] = r
                rows += 1
                open_perp[s] = -1
                open_spot[s] = -1
            continue
        best_annual = -1e300
        best_i = -1
        best_p = -1
        best_qty = 0.0
        best_spot = 0.0
        best_perp = 0.0
        best_profit = 0.0
        best_cost = 0.0
        best_stamp = 0
        for y in range(perp_venues.shape[0]):
            p = perp_venues[y]
            if not listed[p, s] or funding_ts[p, s] == 0 or now_ns - funding_ts[p, s] > max_age:
                continue
            r = rate[p, s]
            if r <= 0.0:
                continue
            for x in range(spot_venues.shape[0]):
                i = spot_venues[x]
                if not listed[i, s]:
                    continue
                n, stamp = build(i, s, ASKS, ask, ask_qty, ts, depth_px, depth_qty, depth_ts, now_ns, max_age,
                                 lad_px, lad_qty)
                if n == 0:
                    continue
                perp_px = mark[p, s]
                if perp_px <= 0.0:
                    perp_px = (ask[i, s] + bid[i, s]) * 0.5 if bid[i, s] > 0.0 else lad_px[0]
                st = max(step[i, s], step[p, s])
                if hedged:
                    qty = floor_step(qty_for_quote(lad_px, lad_qty, n, params[P_CAP_USD] / usd), st)
                    cost, worst, filled = take(lad_px, lad_qty, n, qty)
                    if qty <= 0.0 or filled < qty * (1.0 - 1e-9) or qty * worst < min_notional[i, s]:
                        continue
                    basis = (perp_px - cost / qty) / (cost / qty)
                    fees = 2.0 * (taker_fee[i] + taker_fee[p])
                else:
                    qty = floor_step(params[P_CAP_USD] / usd / perp_px, step[p, s])
                    worst = lad_px[0]
                    cost = qty * perp_px
                    if qty <= 0.0 or cost < min_notional[p, s]:
                        continue
                    basis = 0.0
                    fees = 2.0 * taker_fee[p]
                annual = annualised_net(r, basis, fees, horizon_h, period_h)
                if annual < min_annual or annual <= best_annual:
                    continue
                profit = annual * horizon_h / HOURS_PER_YEAR * cost * usd
                if profit < params[P_MIN_PROFIT_USD]:
                    continue
                best_annual = annual
                best_i = i
                best_p = p
                best_qty = qty
                best_spot = worst
                best_perp = perp_px
                best_profit = profit
                best_cost = cost
                best_stamp = stamp
        if best_p < 0:
            continue
        out[rows, OUT_SYMBOL] = s
        out[rows, OUT_ACTION] = ACTION_OPEN
        out[rows, OUT_SPOT_VENUE] = best_i if hedged else -1
        out[rows, OUT_PERP_VENUE] = best_p
        out[rows, OUT_QTY] = best_qty
        out[rows, OUT_SPOT_PRICE] = best_spot
        out[rows, OUT_PERP_PRICE] = best_perp
        out[rows, OUT_ANNUAL_BPS] = best_annual * 1e4
        out[rows, OUT_PROFIT] = best_profit
        out[rows, OUT_NOTIONAL] = best_cost * usd
        out[rows, OUT_SPOT_TS] = best_stamp
        out[rows, OUT_PERP_TS] = funding_ts[best_p, s]
        out[rows, OUT_RATE] = rate[best_p, s]
        rows += 1
        open_spot[s] = best_i if hedged else -2
        open_perp[s] = best_p
        open_qty[s] = best_qty
        open_settle_ms[s] = next_ms[best_p, s]
    return rows
