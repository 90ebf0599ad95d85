"""The carry's perpetual leg is a protected IOC: its limit goes ``perp_slippage_bps`` through the price the carry
was valued at (the mark, or MEXC's spot mid), onto the tick and further that way, so it crosses the perpetual's
spread instead of resting on the wrong side of it and expiring (a sell at the mark never meets the bid below it)."""

from __future__ import annotations

import numpy as np
import pytest

from services.detector.found import LegMaker
from shared.config import default_config_path, load_config
from shared.messages import SIDE_BUY, SIDE_SELL
from shared.registry import Registry


@pytest.fixture(scope="module")
def legs() -> LegMaker:
    reg = Registry(load_config(default_config_path()))
    return LegMaker(reg, np.ones(len(reg.assets)), perp_slippage_bps=10.0)


def test_a_perp_sell_goes_below_and_a_buy_above_onto_the_tick(legs: LegMaker) -> None:
    reg = legs.registry
    v, s = reg.venue_id["binance_perp"], reg.symbol_id["BTCUSDT"]  # tick 0.01
    assert legs.perp_limit(v, s, SIDE_SELL, 97_000.0) == pytest.approx(96_903.0)
    assert legs.perp_limit(v, s, SIDE_BUY, 97_000.0) == pytest.approx(97_097.0)
    assert legs.perp_limit(v, s, SIDE_SELL, 97_000.005) == pytest.approx(96_903.0)  # floored: never less aggressive
    assert legs.perp_limit(v, s, SIDE_BUY, 96_999.995) == pytest.approx(97_097.0)  # ceiled


def test_no_slippage_leaves_a_price_on_the_tick_as_it_is() -> None:
    reg = Registry(load_config(default_config_path()))
    flat = LegMaker(reg, np.ones(len(reg.assets)))
    v, s = reg.venue_id["mexc_perp"], reg.symbol_id["BTCUSDT"]
    assert flat.perp_limit(v, s, SIDE_SELL, 97_000.0) == 97_000.0
    assert flat.perp_limit(v, s, SIDE_BUY, 97_000.0) == 97_000.0
