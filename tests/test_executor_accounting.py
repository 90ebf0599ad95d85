"""Execution outcome and PnL from two legs; fees never booked as zero when the venue did not report them."""

from __future__ import annotations

import math

from services.executor.accounting import LegResult, settle_execution
from services.executor.service import with_estimated_fee
from shared.messages import ACTION_OPEN, SIDE_BUY, SIDE_SELL, STRATEGY_CROSS, Leg, Opportunity, OrderIntent
from shared.venues.common import OrderResult


def result(filled: float, avg: float, fee: float, status: str = "FILLED") -> OrderResult:
    fills = [(avg, filled, fee, "t1")] if filled else []
    return OrderResult(True, status, "1", "c", filled, avg, fee, fills, 0, "", False)


def intent(qty: float = 2.0) -> OrderIntent:
    legs = (Leg(0, 0, SIDE_BUY, 100.0, qty, 1.0, 1), Leg(1, 0, SIDE_SELL, 101.0, qty, 1.0, 1))
    opp = Opportunity(7, STRATEGY_CROSS, ACTION_OPEN, 0, legs, 100.0 * qty, 50.0, 1.0, 1, 2, 3)
    return OrderIntent(opportunity=opp, decided_ns=4)


def test_both_legs_filled_book_the_spread_minus_fees() -> None:
    legs = [LegResult(SIDE_BUY, result(2, 100, 0.2)), LegResult(SIDE_SELL, result(2, 101, 0.1))]
    exe = settle_execution(intent(), legs, 5, 6)
    assert exe.outcome == "filled"
    assert math.isclose(exe.pnl_usd, 2 * 1.0 - 0.3)


def test_unequal_fills_are_imbalanced_and_only_the_matched_part_is_profit() -> None:
    legs = [LegResult(SIDE_BUY, result(2, 100, 0.0)), LegResult(SIDE_SELL, result(1, 101, 0.0))]
    exe = settle_execution(intent(), legs, 5, 6)
    assert exe.outcome == "imbalanced"
    assert math.isclose(exe.pnl_usd, 1.0)


def test_an_unknown_leg_fails_the_execution() -> None:
    exe = settle_execution(intent(), [LegResult(SIDE_BUY, result(2, 100, 0.0)),
                                      LegResult(SIDE_SELL, result(0, 0, 0.0, status="UNKNOWN"))], 5, 6)
    assert exe.outcome == "failed"


def test_missing_venue_fee_is_estimated_from_the_configured_taker_rate() -> None:
    est = with_estimated_fee(result(2, 100, 0.0), 0.0005)
    assert math.isclose(est.fee_usd, 0.1) and math.isclose(est.fills[0][2], 0.1)
    reported = with_estimated_fee(result(2, 100, 0.3), 0.0005)
    assert reported.fee_usd == 0.3


def test_a_btc_quoted_pair_books_pnl_and_fees_in_usd_at_the_quote_assets_value() -> None:
    usd_per_btc = 50_000.0
    legs = (Leg(0, 0, SIDE_BUY, 0.0350, 2.0, usd_per_btc, 1), Leg(1, 0, SIDE_SELL, 0.0351, 2.0, usd_per_btc, 1))
    opp = Opportunity(8, STRATEGY_CROSS, ACTION_OPEN, 0, legs, 3_500.0, 28.0, 10.0, 1, 2, 3)
    fills = [LegResult(SIDE_BUY, result(2, 0.0350, 0.00007)), LegResult(SIDE_SELL, result(2, 0.0351, 0.00007))]
    exe = settle_execution(OrderIntent(opportunity=opp, decided_ns=4), fills, 5, 6)
    assert math.isclose(exe.fees_usd, 0.00014 * usd_per_btc)
    assert math.isclose(exe.pnl_usd, (2 * 0.0001 - 0.00014) * usd_per_btc)
    assert math.isclose(exe.notional_usd, 2 * 0.0350 * usd_per_btc)
