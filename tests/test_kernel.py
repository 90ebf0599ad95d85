"""The cross-exchange kernel against a plain-Python reference, on random books and hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from services.detector import kernel as k

NOW = 10_000_000_000


def reference(sym, bid, bq, ask, aq, ts, fee, step, min_notional, params, now):
    """Straightforward re-statement of the rules: best net profit over every ordered venue pair."""
    best = None
    n = bid.shape[0]
    for i in range(n):
        for j in range(n):
            if i == j:
                continue
            fresh = all(ts[v, sym] != 0 and now - ts[v, sym] <= params[k.P_MAX_AGE_NS] for v in (i, j))
            if not fresh or ask[i, sym] <= 0 or bid[j, sym] <= 0 or aq[i, sym] <= 0 or bq[j, sym] <= 0:
                continue
            edge = bid[j, sym] * (1 - fee[j]) - ask[i, sym] * (1 + fee[i])
            if edge <= 0:
                continue
            bps = edge / ask[i, sym] * 1e4
            if bps < params[k.P_MIN_SPREAD_BPS]:
                continue
            qty = min(aq[i, sym], bq[j, sym], params[k.P_MAX_POSITION_USD] / ask[i, sym],
                      params[k.P_CAPITAL_USD] / ask[i, sym])
            s = max(step[i, sym], step[j, sym])
            qty = math.floor(qty / s + 1e-9) * s
            if qty <= 0 or qty * ask[i, sym] < min_notional[i, sym] or qty * bid[j, sym] < min_notional[j, sym]:
                continue
            profit = edge * qty
            if profit < params[k.P_MIN_PROFIT_USD]:
                continue
            if best is None or profit > best[3]:
                best = (i, j, qty, profit, bps)
    return best


def run_kernel(sym_list, bid, bq, ask, aq, ts, fee, step, mn, params, now=NOW):
    touched = np.array(sym_list, dtype=np.int64)
    out = np.zeros((len(sym_list), k.OUT_COLUMNS))
    rows = k.detect_cross(touched, len(sym_list), bid, bq, ask, aq, ts, fee, step, mn, params, now, out)
    return out[:rows]


def make_params(min_bps=0.0, min_profit=0.0, max_pos=1e9, capital=1e9, max_age_ns=1e9):
    p = np.zeros(k.P_COUNT)
    p[k.P_MIN_SPREAD_BPS], p[k.P_MIN_PROFIT_USD] = min_bps, min_profit
    p[k.P_MAX_POSITION_USD], p[k.P_CAPITAL_USD], p[k.P_MAX_AGE_NS] = max_pos, capital, max_age_ns
    return p


def book(n_venues=2, n_symbols=1):
    shape = (n_venues, n_symbols)
    return (np.zeros(shape), np.zeros(shape), np.zeros(shape), np.zeros(shape),
            np.full(shape, NOW, dtype=np.int64))


@settings(max_examples=300, deadline=None)
@given(
    n_venues=st.integers(2, 4),
    data=st.data(),
)
def test_kernel_matches_reference_on_random_books(n_venues, data):
    prices = st.floats(90.0, 110.0)
    qtys = st.floats(0.0, 50.0)
    bid, bq, ask, aq, ts = book(n_venues, 3)
    for v in range(n_venues):
        for s in range(3):
            mid = data.draw(prices)
            half = data.draw(st.floats(0.0, 1.0))
            bid[v, s], ask[v, s] = mid - half, mid + half
            bq[v, s], aq[v, s] = data.draw(qtys), data.draw(qtys)
            ts[v, s] = data.draw(st.sampled_from([0, NOW - 2_000_000_000, NOW - 1000, NOW]))
    fee = np.array([data.draw(st.sampled_from([0.0, 0.0005, 0.001])) for _ in range(n_venues)])
    step = np.array([[data.draw(st.sampled_from([0.001, 0.01, 0.1]))] * 3 for _ in range(n_venues)])
    mn = np.full((n_venues, 3), 5.0)
    params = make_params(min_bps=data.draw(st.floats(0, 20)), min_profit=data.draw(st.floats(0, 5)),
                         max_pos=data.draw(st.floats(100, 5000)), capital=data.draw(st.floats(100, 5000)))
    out = run_kernel([0, 1, 2], bid, bq, ask, aq, ts, fee, step, mn, params)
    got = {int(r[k.OUT_SYMBOL]): r for r in out}
    for s in range(3):
        ref = reference(s, bid, bq, ask, aq, ts, fee, step, mn, params, NOW)
        if ref is None:
            assert s not in got
            continue
        r = got[s]
        assert (int(r[k.OUT_BUY_VENUE]), int(r[k.OUT_SELL_VENUE])) == (ref[0], ref[1])
        assert math.isclose(r[k.OUT_QTY], ref[2], rel_tol=1e-12)
        assert math.isclose(r[k.OUT_PROFIT], ref[3], rel_tol=1e-9)


def test_fees_exactly_eating_the_spread_give_nothing():
    bid, bq, ask, aq, ts = book()
    ask[0, 0], aq[0, 0] = 100.0, 10.0
    # Selling at 100.2 with 0.1% on each side: 100.2*0.999 = 100.0998 < 100*1.001 = 100.1
    bid[1, 0], bq[1, 0] = 100.2, 10.0
    fee = np.array([0.001, 0.001])
    out = run_kernel([0], bid, bq, ask, aq, ts, fee, np.full((2, 1), 0.01), np.zeros((2, 1)), make_params())
    assert len(out) == 0
    bid[1, 0] = 100.3  # now 100.3*0.999 = 100.1997 > 100.1: a 0.0997 edge per unit
    out = run_kernel([0], bid, bq, ask, aq, ts, fee, np.full((2, 1), 0.01), np.zeros((2, 1)), make_params())
    assert len(out) == 1
    assert math.isclose(out[0][k.OUT_PROFIT], 0.0997 * 10, rel_tol=1e-9)
    assert (out[0][k.OUT_BUY_VENUE], out[0][k.OUT_SELL_VENUE]) == (0, 1)


def test_stale_leg_gives_nothing():
    bid, bq, ask, aq, ts = book()
    ask[0, 0], aq[0, 0], bid[1, 0], bq[1, 0] = 100.0, 1.0, 101.0, 1.0
    ts[1, 0] = NOW - 600_000_000  # 600 ms old, limit 500 ms
    params = make_params(max_age_ns=500_000_000)
    fee = np.zeros(2)
    assert len(run_kernel([0], bid, bq, ask, aq, ts, fee, np.full((2, 1), 0.01), np.zeros((2, 1)), params)) == 0
    ts[1, 0] = NOW - 400_000_000
    assert len(run_kernel([0], bid, bq, ask, aq, ts, fee, np.full((2, 1), 0.01), np.zeros((2, 1)), params)) == 1


def test_step_rounding_can_make_the_trade_too_small():
    bid, bq, ask, aq, ts = book()
    ask[0, 0], aq[0, 0], bid[1, 0], bq[1, 0] = 100.0, 0.9, 100.5, 5.0  # only 0.9 available
    step = np.full((2, 1), 1.0)  # whole units only: 0.9 floors to 0
    out = run_kernel([0], bid, bq, ask, aq, ts, np.zeros(2), step, np.zeros((2, 1)), make_params())
    assert len(out) == 0
    step[:] = 0.1
    out = run_kernel([0], bid, bq, ask, aq, ts, np.zeros(2), step, np.zeros((2, 1)), make_params())
    assert math.isclose(out[0][k.OUT_QTY], 0.9)


def test_size_is_capped_by_position_and_capital():
    bid, bq, ask, aq, ts = book()
    ask[0, 0], aq[0, 0], bid[1, 0], bq[1, 0] = 100.0, 1000.0, 101.0, 1000.0
    out = run_kernel([0], bid, bq, ask, aq, ts, np.zeros(2), np.full((2, 1), 0.01), np.zeros((2, 1)),
                     make_params(max_pos=2500.0, capital=1e9))
    assert math.isclose(out[0][k.OUT_QTY], 25.0)
    out = run_kernel([0], bid, bq, ask, aq, ts, np.zeros(2), np.full((2, 1), 0.01), np.zeros((2, 1)),
                     make_params(max_pos=2500.0, capital=1234.0))
    assert math.isclose(out[0][k.OUT_QTY], 12.34)


def test_only_touched_symbols_are_evaluated():
    bid, bq, ask, aq, ts = book(2, 2)
    for s in range(2):
        ask[0, s], aq[0, s], bid[1, s], bq[1, s] = 100.0, 1.0, 101.0, 1.0
    out = run_kernel([1], bid, bq, ask, aq, ts, np.zeros(2), np.full((2, 2), 0.01), np.zeros((2, 2)), make_params())
    assert [int(r[k.OUT_SYMBOL]) for r in out] == [1]
