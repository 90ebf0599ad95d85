"""The cross-exchange kernel against the plain-Python reference on random books, and hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from services.detector import cross
from tests.detector_kit import NOW, Market, cross_params, reference_cross, run_cross

pytestmark = pytest.mark.unit


def random_side(data: st.DataObject, best: float, direction: int, n: int) -> list[tuple[float, float]]:
    levels, price = [], best
    for _ in range(n):
        levels.append((round(price, 2), data.draw(st.floats(0.01, 5.0))))
        price += direction * data.draw(st.floats(0.01, 0.5))
    return levels


@settings(max_examples=300, deadline=None)
@given(n_venues=st.integers(2, 4), data=st.data())
def test_kernel_matches_reference_on_random_books(n_venues: int, data: st.DataObject) -> None:
    m = Market(n_venues, 2, n_assets=2)
    m.quote_asset[:] = [0, 1]
    m.asset_usd[:] = [1.0, data.draw(st.sampled_from([0.0, 2.5, 40_000.0]))]  # a BTC-quoted symbol too
    for v in range(n_venues):
        m.fee[v] = data.draw(st.sampled_from([0.0, 0.0005, 0.001]))
        for s in range(2):
            mid = data.draw(st.floats(95.0, 105.0))
            half = data.draw(st.floats(0.005, 0.5))
            m.step[v, s] = data.draw(st.sampled_from([0.001, 0.01, 0.1]))
            m.min_notional[v, s] = data.draw(st.sampled_from([0.0, 5.0, 50.0]))
            if data.draw(st.booleans()):
                m.top(v, s, round(mid - half, 2), data.draw(st.floats(0.01, 5.0)), round(mid + half, 2),
                      data.draw(st.floats(0.01, 5.0)), ts=NOW - data.draw(st.integers(0, 2_000_000_000)))
            if data.draw(st.booleans()):
                n = data.draw(st.integers(1, 5))
                m.depth(v, s, random_side(data, round(mid - half, 2), -1, n),
                        random_side(data, round(mid + half, 2), +1, n),
                        ts=NOW - data.draw(st.integers(0, 2_000_000_000)))
    params = cross_params(min_bps=data.draw(st.sampled_from([0.0, 5.0, 20.0])),
                          min_profit=data.draw(st.sampled_from([0.0, 0.05, 1.0])),
                          max_pos=data.draw(st.sampled_from([50.0, 500.0, 1e9])), max_age_ns=1e9)
    rows = run_cross(m, [0, 1], params)
    found = {int(r[cross.OUT_SYMBOL]): r for r in rows}
    for s in range(2):
        ref = reference_cross(m, s, params)
        event("opportunity" if ref is not None else "none")
        if ref is None:
            assert s not in found, f"kernel found {found.get(s)} where the reference found nothing"
            continue
        assert s in found, f"reference found {ref}, kernel nothing"
        r = found[s]
        i, j, qty, profit, buy_px, sell_px = ref
        assert math.isclose(r[cross.OUT_PROFIT], profit, rel_tol=1e-9, abs_tol=1e-9)
        assert math.isclose(r[cross.OUT_QTY], qty, rel_tol=1e-9)
        # Two pairs can tie on profit; the limits must still be the reference's for the pair it chose.
        if (int(r[cross.OUT_BUY_VENUE]), int(r[cross.OUT_SELL_VENUE])) == (i, j):
            assert (r[cross.OUT_BUY_PRICE], r[cross.OUT_SELL_PRICE]) == (buy_px, sell_px)


def two_venues() -> Market:
    m = Market(2, 1)
    m.step[:] = 0.001
    return m


def test_fees_exactly_eating_the_spread_make_no_opportunity() -> None:
    m = two_venues()
    m.fee[:] = [2.0**-10, 0.0]  # 128 · (1 + 2^-10) = 128.125 exactly: the edge is exactly zero
    m.top(0, 0, 127.0, 10.0, 128.0, 10.0)
    m.top(1, 0, 128.125, 10.0, 129.0, 10.0)
    assert len(run_cross(m, [0], cross_params())) == 0
    m.top(1, 0, 128.13, 10.0, 129.0, 10.0)  # one more cent is an opportunity
    assert len(run_cross(m, [0], cross_params())) == 1


def test_a_stale_leg_makes_no_opportunity() -> None:
    m = two_venues()
    m.top(0, 0, 99.0, 1.0, 100.0, 1.0)
    m.top(1, 0, 101.0, 1.0, 102.0, 1.0, ts=NOW - 600_000_000)  # 600 ms old, limit 500 ms
    assert len(run_cross(m, [0], cross_params(max_age_ns=500e6))) == 0
    assert len(run_cross(m, [0], cross_params(max_age_ns=700e6))) == 1


def test_step_rounding_that_removes_the_profit_makes_no_opportunity() -> None:
    m = two_venues()
    m.step[:] = 1.0
    m.top(0, 0, 99.0, 5.0, 100.0, 0.9)  # only 0.9 on offer: rounds down to zero whole units
    m.top(1, 0, 101.0, 5.0, 102.0, 5.0)
    assert len(run_cross(m, [0], cross_params())) == 0
    m.step[:] = 0.1
    m.top(0, 0, 99.0, 5.0, 100.0, 0.95)  # 0.9 after rounding: 0.9 profit, below a 1 USD minimum
    assert len(run_cross(m, [0], cross_params(min_profit=1.0))) == 0
    rows = run_cross(m, [0], cross_params(min_profit=0.5))
    assert math.isclose(rows[0][cross.OUT_QTY], 0.9) and math.isclose(rows[0][cross.OUT_PROFIT], 0.9)


def test_both_legs_trade_the_coarser_of_the_two_venues_steps() -> None:
    m = two_venues()
    m.step[0, 0], m.step[1, 0] = 0.001, 0.01  # the sell venue trades in hundredths only
    m.top(0, 0, 99.0, 5.0, 100.0, 0.0159)  # 0.0159 on offer: 0.015 on the buy venue's step, 0.01 on both
    m.top(1, 0, 101.0, 5.0, 102.0, 5.0)
    [row] = run_cross(m, [0], cross_params(min_profit=0.0))
    assert row[cross.OUT_QTY] == pytest.approx(0.01, rel=1e-12)


def test_the_depth_walk_stops_where_the_marginal_spread_falls_below_the_threshold() -> None:
    m = two_venues()
    m.depth(0, 0, [(99.0, 1.0)], [(100.0, 1.0), (100.5, 1.0), (101.0, 5.0)])
    m.depth(1, 0, [(102.0, 1.5), (101.2, 3.0)], [(103.0, 1.0)])
    # Marginal spreads: 100→102 200 bps, 100.5→102 149 bps, 100.5→101.2 70 bps, 101→101.2 20 bps (< 50: stop).
    [row] = run_cross(m, [0], cross_params(min_bps=50.0))
    assert row[cross.OUT_QTY] == pytest.approx(2.0)
    assert (row[cross.OUT_BUY_PRICE], row[cross.OUT_SELL_PRICE]) == (100.5, 101.2)
    assert row[cross.OUT_PROFIT] == pytest.approx((1.5 * 102 + 0.5 * 101.2) - (100 + 100.5))
    # The position cap stops it earlier: 150 USD buys 1 at 100 and 0.5 at 100.5 (rounded to the step).
    [capped] = run_cross(m, [0], cross_params(min_bps=50.0, max_pos=150.0))
    assert capped[cross.OUT_QTY] == pytest.approx(1.497)
    assert capped[cross.OUT_NOTIONAL] <= 150.0


def test_a_fresher_top_of_book_replaces_the_depth_levels_it_has_passed() -> None:
    m = two_venues()
    m.depth(0, 0, [(99.0, 1.0)], [(100.0, 1.0), (100.5, 1.0)], ts=NOW - 1000)
    m.top(0, 0, 99.0, 1.0, 100.4, 0.5, ts=NOW)  # 100.0 was taken since the depth update
    m.top(1, 0, 102.0, 10.0, 103.0, 10.0)
    [row] = run_cross(m, [0], cross_params())
    assert row[cross.OUT_QTY] == pytest.approx(1.5)  # 0.5 at 100.4, then 1.0 at 100.5: never 100.0
    assert row[cross.OUT_BUY_PRICE] == 100.5 and row[cross.OUT_BUY_TS] == NOW


def test_profit_in_a_non_usd_quote_is_valued_in_usd_and_unknown_value_means_no_opportunity() -> None:
    m = Market(2, 1, n_assets=2)
    m.quote_asset[:] = [1]  # e.g. ETHBTC: quoted in BTC
    m.asset_usd[:] = [1.0, 0.0]
    m.top(0, 0, 0.0349, 10.0, 0.0350, 10.0)
    m.top(1, 0, 0.0352, 10.0, 0.0353, 10.0)
    assert len(run_cross(m, [0], cross_params())) == 0  # BTC's dollar value not seen yet
    m.asset_usd[1] = 50_000.0
    [row] = run_cross(m, [0], cross_params())
    assert row[cross.OUT_PROFIT] == pytest.approx(10.0 * 0.0002 * 50_000.0)
    assert row[cross.OUT_NOTIONAL] == pytest.approx(10.0 * 0.0350 * 50_000.0)


def test_only_touched_symbols_are_evaluated() -> None:
    m = Market(2, 3)
    for s in range(3):
        m.top(0, s, 99.0, 1.0, 100.0, 1.0)
        m.top(1, s, 101.0, 1.0, 102.0, 1.0)
    rows = run_cross(m, [2], cross_params())
    assert [int(r[cross.OUT_SYMBOL]) for r in rows] == [2]
    assert np.all(m.ts > 0)
