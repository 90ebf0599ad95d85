"""Legging corrections: which orders even out unevenly filled legs, hand-computed."""

from __future__ import annotations

from decimal import Decimal as D

from services.executor.legging import HEDGE, UNWIND, LegPosition, corrections, through
from shared.messages import SIDE_BUY, SIDE_SELL


def leg(side: int, planned: str, filled: str, price: str = "100.00", venue: int = 0) -> LegPosition:
    return LegPosition(venue, 0, side, D(planned), D(filled), D(price), D("0.001"), D("0.01"), D("5"))


def test_balanced_legs_need_nothing_at_any_common_fraction() -> None:
    assert corrections([leg(SIDE_BUY, "1", "1"), leg(SIDE_SELL, "1", "1", venue=1)], UNWIND, 30) == []
    assert corrections([leg(SIDE_BUY, "1", "0.4"), leg(SIDE_SELL, "1", "0.4", venue=1)], UNWIND, 30) == []
    assert corrections([leg(SIDE_BUY, "1", "0"), leg(SIDE_SELL, "1", "0", venue=1)], HEDGE, 30) == []


def test_unwind_sells_back_what_was_bought_beyond_the_sold_leg() -> None:
    fixes = corrections([leg(SIDE_BUY, "1", "1"), leg(SIDE_SELL, "1", "0.25", venue=1)], UNWIND, 30)
    assert len(fixes) == 1
    f = fixes[0]
    assert (f.leg, f.venue, f.side, f.qty) == (0, 0, SIDE_SELL, D("0.750"))
    assert f.price == D("99.70")  # 30 bps through 100.00, rounded down for a sell


def test_hedge_completes_the_short_leg_with_a_wider_limit() -> None:
    fixes = corrections([leg(SIDE_BUY, "1", "1"), leg(SIDE_SELL, "1", "0.25", "101.00", venue=1)], HEDGE, 30)
    assert [(f.leg, f.venue, f.side, f.qty, f.price) for f in fixes] == [(1, 1, SIDE_SELL, D("0.750"), D("100.69"))]


def test_less_than_a_step_or_below_min_notional_is_residual_not_an_order() -> None:
    assert corrections([leg(SIDE_BUY, "1", "1"), leg(SIDE_SELL, "1", "0.9995", venue=1)], UNWIND, 30) == []
    # 0.04 x 99.70 = 3.99 < 5 min notional: the venue would refuse it
    assert corrections([leg(SIDE_BUY, "1", "1"), leg(SIDE_SELL, "1", "0.96", venue=1)], UNWIND, 30) == []


def test_triangle_unwinds_every_leg_down_to_the_least_filled() -> None:
    legs = [leg(SIDE_BUY, "2", "2"), leg(SIDE_BUY, "4", "1"), leg(SIDE_SELL, "8", "8")]
    fixes = corrections(legs, UNWIND, 10)
    assert [(f.leg, f.side, f.qty) for f in fixes] == [(0, SIDE_SELL, D("1.500")), (2, SIDE_BUY, D("6.000"))]


def test_through_rounds_away_from_the_book_so_rounding_never_weakens_the_limit() -> None:
    assert through(D("100.00"), SIDE_BUY, D("0.00001"), D("0.01")) == D("100.01")
    assert through(D("100.00"), SIDE_SELL, D("0.00001"), D("0.01")) == D("99.99")
