"""The triangular kernel against the plain-Python reference, hand-computed cycles, and cycle discovery."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from services.detector import triangular as tri
from services.detector.cycles import Cycle, build_table, cycle_table, discover
from shared.config import parse_config
from shared.registry import Registry
from tests.detector_kit import NOW, Market, reference_cycle, tri_params

pytestmark = pytest.mark.unit

BUY, SELL = tri.LEG_BUY, tri.LEG_SELL
# Symbols 0 BTCUSDT, 1 ETHBTC, 2 ETHUSDT; assets 0 USDT, 1 BTC, 2 ETH.
FORWARD = ([0, 1, 2], [BUY, BUY, SELL])  # USDT → BTC → ETH → USDT
BACKWARD = ([2, 1, 0], [BUY, SELL, SELL])  # USDT → ETH → BTC → USDT


def market() -> Market:
    m = Market(1, 3, n_assets=3)
    m.base_asset[:] = [1, 2, 2]
    m.quote_asset[:] = [0, 1, 0]
    m.step[0] = [1e-5, 1e-4, 1e-4]
    return m


def run(m: Market, cycles: list[tuple[list[int], list[int]]], params: np.ndarray, touched: list[int]) -> np.ndarray:
    table = build_table(
        [_cycle(symbols, sides) for symbols, sides in cycles], m.n_venues, m.n_symbols
    )
    out = np.zeros((max(1, len(table.cycles)), tri.OUT_COLUMNS))
    levels = m.levels + 1
    rows = tri.detect_triangular(
        np.array(touched, dtype=np.int64), len(touched), np.zeros(1, dtype=np.int64), table.index_start,
        table.index_cycles, np.zeros(max(1, len(table.cycles)), dtype=np.int64), 1, table.venue, table.symbols,
        table.sides, table.start, m.bid, m.bid_qty, m.ask, m.ask_qty, m.ts, m.depth_px, m.depth_qty, m.depth_ts,
        m.fee, m.step, m.min_notional, m.asset_usd, params, NOW, np.zeros((3, levels)), np.zeros((3, levels)),
        np.zeros(3, dtype=np.int64), np.zeros(3, dtype=np.int64), out,
    )
    return out[:rows]


def _cycle(symbols: list[int], sides: list[int]) -> Cycle:
    return Cycle(0, (symbols[0], symbols[1], symbols[2]), (sides[0], sides[1], sides[2]), 0)


def legs(row: np.ndarray) -> list[tuple[float, float]]:
    return [(row[tri.OUT_LEG0 + 3 * k], row[tri.OUT_LEG0 + 3 * k + 1]) for k in range(3)]


@settings(max_examples=250, deadline=None)
@given(data=st.data())
def test_kernel_matches_reference_on_random_books(data: st.DataObject) -> None:
    m = market()
    m.fee[0] = data.draw(st.sampled_from([0.0, 0.0005, 0.001]))
    btc = data.draw(st.floats(40_000, 60_000))
    eth_btc = data.draw(st.floats(0.03, 0.04))
    mispricing = data.draw(st.floats(-0.01, 0.01))
    mids = [btc, eth_btc, btc * eth_btc * (1 + mispricing)]
    ticks = [0.01, 1e-6, 0.01]
    for s in range(3):
        spread = data.draw(st.floats(0.0, 0.0005)) * mids[s]
        bid = math.floor((mids[s] - spread) / ticks[s]) * ticks[s]
        ask = math.ceil((mids[s] + spread) / ticks[s]) * ticks[s] + ticks[s]
        n = data.draw(st.integers(1, 4))
        qty = st.floats(0.001, 3.0) if s == 0 else st.floats(0.01, 30.0)
        gap = [data.draw(st.integers(1, 50)) * ticks[s] for _ in range(n)]
        m.depth(0, s, [(bid - sum(gap[:i]), data.draw(qty)) for i in range(n)],
                [(ask + sum(gap[:i]), data.draw(qty)) for i in range(n)],
                ts=NOW - data.draw(st.integers(0, 1_500_000_000)))
        m.min_notional[0, s] = data.draw(st.sampled_from([0.0, 10.0])) * (1e-5 if s == 1 else 1.0)
    params = tri_params(min_bps=data.draw(st.sampled_from([0.0, 5.0, 30.0])),
                        max_pos=data.draw(st.sampled_from([1_000.0, 50_000.0, 1e9])), max_age_ns=1e9)
    rows = run(m, [FORWARD, BACKWARD], params, [0])
    found = {int(r[tri.OUT_CYCLE]): r for r in rows}
    for c, (symbols, sides) in enumerate([FORWARD, BACKWARD]):
        ref = reference_cycle(m, 0, symbols, sides, 0, params)
        event("opportunity" if ref else "none")
        if ref is None:
            assert c not in found, f"kernel found {found.get(c)}, the reference nothing"
            continue
        assert c in found, f"reference found {ref}, the kernel nothing"
        profit, bps, ref_legs = ref
        assert found[c][tri.OUT_PROFIT] == pytest.approx(profit, rel=1e-6)
        assert found[c][tri.OUT_BPS] == pytest.approx(bps, rel=1e-6)
        for (px, q), (ref_px, ref_q) in zip(legs(found[c]), ref_legs, strict=True):
            assert px == ref_px and q == pytest.approx(ref_q, rel=1e-9)


def quoted(m: Market, prices: list[tuple[float, float]], qty: float = 100.0, ts: int = NOW) -> None:
    for s, (bid, ask) in enumerate(prices):
        m.top(0, s, bid, qty, ask, qty, ts=ts)


def test_fees_exactly_eating_the_cycle_return_make_no_opportunity() -> None:
    m = market()
    m.step[0] = 1e-12
    m.fee[0] = 0.0
    # USDT→BTC at 50_000, BTC→ETH at 0.0625 (2^-4), ETH→USDT at 3125: exactly break-even before fees.
    quoted(m, [(49_999.0, 50_000.0), (0.0624, 0.0625), (3_125.0, 3_126.0)])
    assert len(run(m, [FORWARD], tri_params(), [0])) == 0
    quoted(m, [(49_999.0, 50_000.0), (0.0624, 0.0625), (3_131.25, 3_132.0)])  # +20 bps before fees
    assert len(run(m, [FORWARD], tri_params(), [0])) == 1
    m.fee[0] = 0.001  # three legs of 10 bps eat more than the 20 bps
    assert len(run(m, [FORWARD], tri_params(), [0])) == 0


def test_a_stale_leg_makes_no_cycle() -> None:
    m = market()
    quoted(m, [(49_999.0, 50_000.0), (0.0624, 0.0625), (3_200.0, 3_201.0)])
    m.ts[0, 1] = NOW - 700_000_000
    assert len(run(m, [FORWARD], tri_params(max_age_ns=500e6), [0])) == 0
    assert len(run(m, [FORWARD], tri_params(max_age_ns=800e6), [0])) == 1


def test_step_rounding_that_loses_the_profit_makes_no_cycle() -> None:
    m = market()
    m.step[0] = [1e-5, 1.0, 1e-4]  # ETHBTC only in whole ETH: the capped size buys less than one
    quoted(m, [(49_999.0, 50_000.0), (0.0624, 0.0625), (3_200.0, 3_201.0)])
    assert len(run(m, [FORWARD], tri_params(max_pos=2_000.0), [0])) == 0
    m.step[0, 1] = 1e-4
    assert len(run(m, [FORWARD], tri_params(max_pos=2_000.0), [0])) == 1


def test_the_walk_stops_at_the_level_where_the_marginal_return_falls_below_the_threshold() -> None:
    m = market()
    m.step[0] = 1e-12
    m.depth(0, 0, [(49_999.0, 10.0)], [(50_000.0, 10.0)])
    m.depth(0, 1, [(0.0624, 100.0)], [(0.0625, 100.0)])
    # ETHUSDT bids: 3200 (+240 bps) for 1 ETH, then 3130 (+16 bps), then 3120 (-16 bps).
    m.depth(0, 2, [(3_200.0, 1.0), (3_130.0, 1.0), (3_120.0, 5.0)], [(3_210.0, 10.0)])
    [row] = run(m, [FORWARD], tri_params(min_bps=10.0), [2])
    (btc_px, btc_qty), (eth_btc_px, eth_qty), (eth_px, eth_sold) = legs(row)
    assert eth_sold == pytest.approx(2.0) and eth_px == 3_130.0  # both good levels, not the third
    assert eth_btc_px == 0.0625 and btc_px == 50_000.0
    assert eth_qty == pytest.approx(2.0)
    assert btc_qty == pytest.approx(0.125)
    [row] = run(m, [FORWARD], tri_params(min_bps=100.0), [2])
    assert legs(row)[2] == (3_200.0, pytest.approx(1.0))


def test_an_update_evaluates_only_the_cycles_through_its_symbol() -> None:
    m = Market(1, 5, n_assets=4)
    m.step[:] = 1e-6
    # Cycle A uses symbols 0, 1, 2; cycle B uses 3, 4 and 2 (shared). Both profitable.
    for s in range(5):
        m.top(0, s, 1.0, 1_000.0, 1.0, 1_000.0)
    m.bid[0, 2] = 1.1  # selling into symbol 2 pays in both cycles
    cycles = [([0, 1, 2], [BUY, BUY, SELL]), ([3, 4, 2], [BUY, BUY, SELL])]
    assert {int(r[tri.OUT_CYCLE]) for r in run(m, cycles, tri_params(), [0])} == {0}
    assert {int(r[tri.OUT_CYCLE]) for r in run(m, cycles, tri_params(), [4])} == {1}
    assert {int(r[tri.OUT_CYCLE]) for r in run(m, cycles, tri_params(), [2, 0, 1])} == {0, 1}  # each once


KNOWN = """
[[venues]]
name = "x"
kind = "binance"
ws_url = "ws://127.0.0.1:1/stream"
rest_url = "http://127.0.0.1:2"
api_key_env = "K"
api_secret_env = "S"
[[venues]]
name = "y"
kind = "mexc"
ws_url = "ws://127.0.0.1:3/ws"
rest_url = "http://127.0.0.1:4"
api_key_env = "K"
api_secret_env = "S"
symbols = ["BTCUSDT", "ETHUSDT", "ETHBTC", "XRPUSDT"]
""" + "".join(
    f'[[symbols]]\nname = "{b}{q}"\nbase = "{b}"\nquote = "{q}"\ntick_size = "0.01"\nstep_size = "0.001"\n'
    for b, q in [("BTC", "USDT"), ("ETH", "USDT"), ("ETH", "BTC"), ("SOL", "USDT"), ("SOL", "BTC"),
                 ("SOL", "ETH"), ("XRP", "USDT")]
)


def test_discovery_finds_every_triangle_in_both_directions_per_venue() -> None:
    cfg = parse_config(KNOWN)
    reg = Registry(cfg)
    cycles = discover(reg, [0, 1])
    on_x = [c for c in cycles if c.venue == 0]
    on_y = [c for c in cycles if c.venue == 1]
    triangles = {frozenset(reg.assets[a] for s in c.symbols for a in (reg.base_asset[s], reg.quote_asset[s]))
                 for c in on_x}
    assert triangles == {frozenset(t) for t in (("USDT", "BTC", "ETH"), ("USDT", "BTC", "SOL"),
                                                  ("USDT", "ETH", "SOL"), ("BTC", "ETH", "SOL"))}
    assert len(on_x) == 8 and len(on_y) == 2  # y lists no SOL pairs: only USDT-BTC-ETH
    described = {c.describe(reg) for c in on_y}
    assert described == {"y: USDT: buy BTCUSDT → buy ETHBTC → sell ETHUSDT",
                         "y: USDT: buy ETHUSDT → sell ETHBTC → sell BTCUSDT"}
    for c in on_x:  # every cycle with a USD currency starts there; each leg spends what the last one got
        names = [reg.assets[a] for s in c.symbols for a in (reg.base_asset[s], reg.quote_asset[s])]
        if "USDT" in names:
            assert reg.assets[c.start_asset] == "USDT"
        holding = c.start_asset
        for s, side in zip(c.symbols, c.sides, strict=True):
            spend, get = ((reg.quote_asset[s], reg.base_asset[s]) if side == BUY
                          else (reg.base_asset[s], reg.quote_asset[s]))
            assert spend == holding
            holding = get
        assert holding == c.start_asset
    table = cycle_table(cfg, reg)
    assert len(table.cycles) == 10
    btcusdt = reg.symbol_id["BTCUSDT"]
    through = table.index_cycles[table.index_start[btcusdt]: table.index_start[btcusdt + 1]]
    assert len(through) == 4  # on venue x: USDT-BTC-ETH and USDT-BTC-SOL, two directions each


def test_configured_cycles_must_be_triangles() -> None:
    from shared.errors import ConfigError

    text = KNOWN + '[strategies.triangular]\ncycles = [["BTCUSDT", "ETHUSDT", "XRPUSDT"]]\n'
    with pytest.raises(ConfigError, match=r"strategies.triangular.cycles\[0\]"):
        parse_config(text)
    ok = KNOWN + '[strategies.triangular]\ndiscover = false\ncycles = [["BTCUSDT", "ETHBTC", "ETHUSDT"]]\n'
    cfg = parse_config(ok)
    assert len(cycle_table(cfg, Registry(cfg)).cycles) == 4  # two venues × two directions
