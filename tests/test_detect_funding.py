"""The funding-rate kernel: entry by annualised net carry, sizing, hedge on/off, exits, staleness, throttle."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.detector import funding as fk
from tests.detector_kit import LEVELS, NOW, Market, fill, floor_step, funding_params

pytestmark = pytest.mark.unit

SPOT, PERP = 0, 1
HOUR_MS = 3_600_000


@dataclass
class Carry:
    """One spot venue (0) and one perpetual venue (1) for one symbol, with the kernel's state arrays."""

    m: Market = field(default_factory=lambda: Market(2, 1))
    rate: np.ndarray = field(default_factory=lambda: np.zeros((2, 1)))
    next_ms: np.ndarray = field(default_factory=lambda: np.zeros((2, 1), dtype=np.int64))
    mark: np.ndarray = field(default_factory=lambda: np.zeros((2, 1)))
    funding_ts: np.ndarray = field(default_factory=lambda: np.zeros((2, 1), dtype=np.int64))
    open_spot: np.ndarray = field(default_factory=lambda: np.full(1, -1, dtype=np.int64))
    open_perp: np.ndarray = field(default_factory=lambda: np.full(1, -1, dtype=np.int64))
    open_qty: np.ndarray = field(default_factory=lambda: np.zeros(1))
    open_settle: np.ndarray = field(default_factory=lambda: np.zeros(1, dtype=np.int64))
    last_eval: np.ndarray = field(default_factory=lambda: np.zeros(1, dtype=np.int64))

    def __post_init__(self) -> None:
        self.m.step[:] = 0.001
        self.m.fee[:] = [0.001, 0.0005]
        self.m.top(SPOT, 0, 99.99, 1_000.0, 100.0, 1_000.0)

    def push(self, rate: float, mark: float = 100.1, ts: int = NOW, next_ms: int = 8 * HOUR_MS) -> None:
        self.rate[PERP, 0], self.mark[PERP, 0], self.funding_ts[PERP, 0] = rate, mark, ts
        self.next_ms[PERP, 0] = next_ms

    def run(self, params: np.ndarray, now: int = NOW, venue_now_ms: int = 0) -> np.ndarray:
        m = self.m
        listed = np.ones((2, 1), dtype=np.bool_)
        out = np.zeros((1, fk.OUT_COLUMNS))
        rows = fk.detect_funding(
            np.zeros(1, dtype=np.int64), 1, np.array([SPOT]), np.array([PERP]), listed, m.bid, m.bid_qty, m.ask,
            m.ask_qty, m.ts, m.depth_px, m.depth_qty, m.depth_ts, self.rate, self.next_ms, self.mark,
            self.funding_ts, m.fee, m.step, m.min_notional, m.quote_asset, m.asset_usd, params, now, venue_now_ms,
            self.open_spot, self.open_perp, self.open_qty, self.open_settle, self.last_eval, np.zeros(LEVELS + 1),
            np.zeros(LEVELS + 1), out,
        )
        return out[:rows]


def expected_annual(rate: float, basis: float, fees: float, horizon_h: float = 720.0, period_h: float = 8.0) -> float:
    return (rate * horizon_h / period_h + basis - fees) * 8760.0 / horizon_h


def test_a_rate_that_clears_the_threshold_after_fees_and_basis_opens_a_hedged_carry() -> None:
    c = Carry()
    c.push(rate=0.0002)  # 0.02 % per 8 h
    [row] = c.run(funding_params(min_annual=0.10, cap_usd=10_000.0))
    qty = floor_step(10_000.0 / 100.0, 0.001)
    basis = (100.1 - 100.0) / 100.0
    annual = expected_annual(0.0002, basis, 2 * (0.001 + 0.0005))
    assert row[fk.OUT_ACTION] == fk.ACTION_OPEN
    assert (row[fk.OUT_SPOT_VENUE], row[fk.OUT_PERP_VENUE]) == (SPOT, PERP)
    assert row[fk.OUT_QTY] == pytest.approx(qty)
    assert row[fk.OUT_ANNUAL_BPS] == pytest.approx(annual * 1e4)
    assert row[fk.OUT_PROFIT] == pytest.approx(annual * 720 / 8760 * qty * 100.0)
    assert (row[fk.OUT_SPOT_PRICE], row[fk.OUT_PERP_PRICE]) == (100.0, 100.1)
    assert len(c.run(funding_params())) == 0  # open already: no second entry


def test_fees_and_basis_that_eat_the_carry_make_no_entry() -> None:
    c = Carry()
    # 0.01 % per period over 90 periods is 0.9 %; 0.3 % fees and a -0.7 % basis leave -0.1 %.
    c.push(rate=0.0001, mark=99.3)
    assert len(c.run(funding_params(min_annual=0.0))) == 0
    c.push(rate=0.0001, mark=100.0)
    assert len(c.run(funding_params(min_annual=0.0))) == 1


def test_negative_rates_stale_funding_and_stale_spot_make_no_entry() -> None:
    c = Carry()
    c.push(rate=-0.001)
    assert len(c.run(funding_params(min_annual=0.0))) == 0
    c.push(rate=0.001, ts=NOW - 2_000_000_000)
    assert len(c.run(funding_params(min_annual=0.0, max_age_ns=1e9))) == 0
    c.push(rate=0.001)
    c.m.ts[SPOT, 0] = NOW - 2_000_000_000
    assert len(c.run(funding_params(min_annual=0.0, max_age_ns=1e9))) == 0


def test_without_hedging_the_signal_is_the_perpetual_alone_with_its_own_fees_only() -> None:
    c = Carry()
    c.push(rate=0.0001, mark=99.0)  # a basis this bad would stop a hedged entry
    [row] = c.run(funding_params(min_annual=0.0, hedge=False))
    assert row[fk.OUT_SPOT_VENUE] == -1
    assert row[fk.OUT_ANNUAL_BPS] == pytest.approx(expected_annual(0.0001, 0.0, 2 * 0.0005) * 1e4)
    assert row[fk.OUT_QTY] == pytest.approx(floor_step(10_000.0 / 99.0, 0.001))


def test_the_carry_closes_when_the_rate_flips_and_when_its_settlement_passed_without_paying_enough() -> None:
    c = Carry()
    c.push(rate=0.0003)
    [opened] = c.run(funding_params(min_annual=0.10))
    c.push(rate=-0.00001)
    [closed] = c.run(funding_params(min_annual=0.10))
    assert closed[fk.OUT_ACTION] == fk.ACTION_CLOSE and closed[fk.OUT_QTY] == opened[fk.OUT_QTY]
    assert closed[fk.OUT_SPOT_PRICE] == 99.99  # the spot leg sells into the bid
    # Reopen; a weak but positive rate keeps it until the settlement it was entered for has passed.
    c.push(rate=0.0003, next_ms=8 * HOUR_MS)
    assert len(c.run(funding_params(min_annual=0.10), venue_now_ms=HOUR_MS)) == 1
    c.push(rate=0.00005)  # 5.5 % a year gross: below 10 %
    assert len(c.run(funding_params(min_annual=0.10), venue_now_ms=2 * HOUR_MS)) == 0
    [late] = c.run(funding_params(min_annual=0.10), venue_now_ms=8 * HOUR_MS)
    assert late[fk.OUT_ACTION] == fk.ACTION_CLOSE


def test_evaluation_is_throttled_to_the_check_interval() -> None:
    c = Carry()
    c.push(rate=0.0003)
    params = funding_params(min_annual=0.10, check_ns=1e9)
    assert len(c.run(params, now=NOW)) == 1
    c.push(rate=-0.0003, ts=NOW + 500_000_000)
    assert len(c.run(params, now=NOW + 500_000_000)) == 0  # inside the interval: not looked at
    assert len(c.run(params, now=NOW + 1_000_000_000)) == 1


def test_the_spot_leg_is_sized_by_walking_depth_up_to_the_cap() -> None:
    c = Carry()
    c.m.depth(SPOT, 0, [(99.99, 10.0)], [(100.0, 10.0), (100.5, 20.0), (101.0, 100.0)])
    c.push(rate=0.0005)
    [row] = c.run(funding_params(min_annual=0.0, cap_usd=4_000.0))
    qty = row[fk.OUT_QTY]
    cost, worst, _ = fill([(100.0, 10.0), (100.5, 20.0), (101.0, 100.0)], qty)
    assert cost <= 4_000.0 and worst == 101.0 and 10.0 + 20.0 < qty < 10.0 + 20.0 + 100.0
    assert row[fk.OUT_SPOT_PRICE] == 101.0
    basis = (100.1 - cost / qty) / (cost / qty)
    assert row[fk.OUT_ANNUAL_BPS] == pytest.approx(expected_annual(0.0005, basis, 0.003) * 1e4)


@settings(max_examples=200, deadline=None)
@given(rate=st.floats(-0.003, 0.003), mark=st.floats(95.0, 105.0), fee=st.sampled_from([0.0, 0.0005, 0.001]),
       min_annual=st.sampled_from([0.0, 0.05, 0.2]), horizon=st.sampled_from([24.0, 720.0]))
def test_entry_decision_matches_the_formula(rate: float, mark: float, fee: float, min_annual: float,
                                            horizon: float) -> None:
    c = Carry()
    c.m.fee[:] = fee
    c.push(rate=rate, mark=mark)
    rows = c.run(funding_params(min_annual=min_annual, horizon_h=horizon))
    annual = expected_annual(rate, (mark - 100.0) / 100.0, 4 * fee, horizon_h=horizon)
    should = rate > 0 and annual >= min_annual
    if abs(annual - min_annual) > 1e-9:
        assert bool(len(rows)) == should
    if rows.size:
        assert rows[0][fk.OUT_ANNUAL_BPS] == pytest.approx(annual * 1e4, rel=1e-9, abs=1e-6)
