"""The packed entry (one Numba call per drain over arena buffers) finds exactly what the kernels find when each
is called on its own with ordinary arrays, on random markets with dislocations."""

from __future__ import annotations

import numpy as np
import pytest

from services.detector import cross, funding, triangular
from services.detector.arena import Arena
from services.detector.cycles import cycle_table
from services.detector.entry import ENABLE_CROSS, ENABLE_FUNDING, ENABLE_TRIANGULAR, DetectorArrays, evaluate
from services.detector.params import StrategyParams
from services.detector.valuation import update_asset_usd
from shared.config import default_config_path, load_config
from shared.registry import Registry

CFG = load_config(default_config_path())
REG = Registry(CFG)
LEVELS = 5
NOW = 10**15


def test_arena_views_share_one_buffer_and_the_layout_describes_them() -> None:
    a = Arena(3, np.float64)
    k0, k1 = a.add(2, 3), a.add(4)
    first, second = a.allocate()
    first[1, 2] = 7.0
    second[3] = 9.0
    assert (k0, k1) == (0, 1)
    assert a.buffer[5] == 7.0 and a.buffer[9] == 9.0
    assert a.layout_rows().tolist() == [[3, 0, 2, 3, 1, 1], [3, 6, 4, 1, 1, 1]]
    with pytest.raises(ValueError, match="1 to 4"):
        a.add(1, 2, 3, 4, 5)


def _market(rng: np.random.Generator) -> DetectorArrays:
    a = DetectorArrays(REG, LEVELS)
    a.set_cycles(cycle_table(CFG, REG))
    params = StrategyParams(CFG.strategies, CFG.capital)
    a.p_cross[:], a.p_tri[:], a.p_fund[:] = params.cross, params.triangular, params.funding
    for v in REG.spot_venues:
        for s in range(REG.n_symbols):
            if not REG.listed[v, s]:
                continue
            mid = CFG.symbols[s].start_price * (1 + rng.normal(0, 0.002))
            if rng.random() < 0.2:  # a dislocation
                mid *= 1 + rng.choice([-1, 1]) * 0.004
            a.bid[v, s], a.ask[v, s] = mid * 0.9999, mid * 1.0001
            a.bid_qty[v, s], a.ask_qty[v, s] = rng.uniform(0.1, 50), rng.uniform(0.1, 50)
            a.ts[v, s] = NOW - int(rng.integers(0, 10**6))
            for side, sign in ((0, -1), (1, 1)):
                a.depth_px[v, s, side] = mid * (1 + sign * 0.0002 * np.arange(1, LEVELS + 1))
                a.depth_qty[v, s, side] = rng.uniform(0.1, 50, LEVELS)
            a.depth_ts[v, s] = NOW - int(rng.integers(0, 2 * 10**6))
    for v in REG.perp_venues:
        for s in range(REG.n_symbols):
            if REG.listed[v, s]:
                a.funding_rate[v, s] = rng.uniform(-0.0005, 0.001)
                a.funding_next_ms[v, s] = 10**12
                a.funding_ts[v, s] = NOW - 10**6
    return a


def _direct(a: DetectorArrays, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The same evaluation through the kernels' own entry points, on copies of the arrays."""
    c = {name: np.array(getattr(a, name)) for name in dir(a) if isinstance(getattr(a, name), np.ndarray)}
    t = cycle_table(CFG, REG)
    listed, is_usd = REG.listed, REG.is_usd_asset
    update_asset_usd(c["touched"], n, REG.spot_venues, c["bid"], c["ask"], c["ts"], REG.base_asset, REG.quote_asset,
                     is_usd, c["asset_usd"])
    cross_out = np.zeros_like(c["cross_out"])
    rows = cross.detect_cross(c["touched"], n, REG.spot_venues, c["bid"], c["bid_qty"], c["ask"], c["ask_qty"],
                              c["ts"], c["depth_px"], c["depth_qty"], c["depth_ts"], REG.taker_fee, REG.step_array,
                              REG.min_notional_array, REG.quote_asset, c["asset_usd"], c["p_cross"], NOW,
                              c["cross_lad_px"], c["cross_lad_qty"], c["cross_lad_n"], c["cross_lad_ts"], cross_out)
    tri_out = np.zeros_like(c["tri_out"])
    tri_rows = triangular.detect_triangular(
        c["touched"], n, REG.spot_venues, t.index_start, t.index_cycles, np.zeros(max(1, len(t.cycles)), np.int64),
        1, t.venue, t.symbols, t.sides, t.start, c["bid"], c["bid_qty"], c["ask"], c["ask_qty"], c["ts"],
        c["depth_px"], c["depth_qty"], c["depth_ts"], REG.taker_fee, REG.step_array, REG.min_notional_array,
        c["asset_usd"], c["p_tri"], NOW, c["tri_lad_px"], c["tri_lad_qty"], c["tri_lad_n"], c["tri_lad_ts"], tri_out)
    fund_out = np.zeros_like(c["funding_out"])
    fund_rows = funding.detect_funding(
        c["touched"], n, REG.spot_venues, REG.perp_venues, listed, c["bid"], c["bid_qty"], c["ask"], c["ask_qty"],
        c["ts"], c["depth_px"], c["depth_qty"], c["depth_ts"], c["funding_rate"], c["funding_next_ms"], c["mark"],
        c["funding_ts"], REG.taker_fee, REG.step_array, REG.min_notional_array, REG.quote_asset, c["asset_usd"],
        c["p_fund"], NOW, 10**12 - 10**7, c["open_spot"], c["open_perp"], c["open_qty"], c["open_settle_ms"],
        c["last_funding_eval"], c["fund_lad_px"], c["fund_lad_qty"], fund_out)
    return cross_out[:rows], tri_out[:tri_rows], fund_out[:fund_rows]


@pytest.mark.parametrize("seed", range(12))
def test_the_packed_entry_finds_what_the_kernels_find(seed: int) -> None:
    rng = np.random.default_rng(seed)
    a = _market(rng)
    symbols = rng.permutation(REG.n_symbols)[: int(rng.integers(1, REG.n_symbols + 1))]
    a.touched[: len(symbols)] = symbols
    want_cross, want_tri, want_fund = _direct(a, len(symbols))
    n_cross, n_tri, n_fund = evaluate(a.f.buffer, a.i.buffer, a.ci.buffer, a.cf.buffer, a.layout, len(symbols), NOW,
                                      10**12 - 10**7, 1, ENABLE_CROSS | ENABLE_TRIANGULAR | ENABLE_FUNDING)
    np.testing.assert_array_equal(a.cross_out[:n_cross], want_cross)
    np.testing.assert_array_equal(a.tri_out[:n_tri], want_tri)
    np.testing.assert_array_equal(a.funding_out[:n_fund], want_fund)


def test_the_seeds_exercise_every_strategy() -> None:
    """The equality test above is only worth something if the markets it draws make each strategy find things."""
    found = [0, 0, 0]
    for seed in range(12):
        rng = np.random.default_rng(seed)
        a = _market(rng)
        symbols = rng.permutation(REG.n_symbols)[: int(rng.integers(1, REG.n_symbols + 1))]
        a.touched[: len(symbols)] = symbols
        rows = evaluate(a.f.buffer, a.i.buffer, a.ci.buffer, a.cf.buffer, a.layout, len(symbols), NOW,
                        10**12 - 10**7, 1, ENABLE_CROSS | ENABLE_TRIANGULAR | ENABLE_FUNDING)
        found = [x + y for x, y in zip(found, rows, strict=True)]
    assert all(x > 0 for x in found), found


def test_a_disabled_strategy_is_not_evaluated() -> None:
    def rows(enabled: int) -> tuple[int, int, int]:
        a = _market(np.random.default_rng(3))
        a.touched[: REG.n_symbols] = np.arange(REG.n_symbols)
        return evaluate(a.f.buffer, a.i.buffer, a.ci.buffer, a.cf.buffer, a.layout, REG.n_symbols, NOW,
                        10**12 - 10**7, 1, enabled)

    everything = rows(ENABLE_CROSS | ENABLE_TRIANGULAR | ENABLE_FUNDING)
    assert everything[0] > 0 and everything[2] > 0, everything  # this market has cross and funding signals
    assert rows(ENABLE_TRIANGULAR) == (0, everything[1], 0)
