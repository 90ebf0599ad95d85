"""The carry book: what a carry holds comes from the executions' exact deltas; a close is sized to it (so a
reduce-only buy never exceeds the short); funding accrues once per payment; a replay rebuilds it all."""

from __future__ import annotations

from decimal import Decimal

import pytest

from services.executor.carry_book import FUNDING_NOTE, OUTCOME_FUNDING, CarryBook, funding_key
from shared.config import default_config_path, load_config
from shared.messages import (
    ACTION_CLOSE,
    ROLE_LEG,
    ROLE_UNWIND,
    SIDE_BUY,
    SIDE_SELL,
    STRATEGY_CROSS,
    STRATEGY_FUNDING,
    AssetDelta,
    Execution,
    Leg,
    LegFill,
    Opportunity,
)
from shared.registry import Registry

BTC = 0


@pytest.fixture(scope="module")
def reg() -> Registry:
    return Registry(load_config(default_config_path()))


def ids(reg: Registry) -> tuple[int, int]:
    return reg.venue_id["binance"], reg.venue_id["binance_perp"]


def execution(opp_id: int, fills: list[LegFill], deltas: list[AssetDelta], *, strategy: int = STRATEGY_FUNDING,
              pnl: float = 1.0, fees: float = 0.5, outcome: str = "filled", note: str = "",
              sell_venue: int = -1) -> Execution:
    return Execution(opp_id, BTC, -1, sell_venue, 0.0, 0.0, 0.0, 0.0, fees, pnl, 0.0, outcome, 0, 0, 0, 0, 0,
                     strategy, tuple(fills), tuple(deltas), note=note)


def fill(venue: int, side: int, qty: str, quote: str, role: int = ROLE_LEG, leg: int = 0) -> LegFill:
    return LegFill(role, leg, venue, BTC, side, "c", qty, qty, quote, "FILLED", 0.0)


def opened(reg: Registry, book: CarryBook, spot_held: str = "0.00999", short: str = "-0.01") -> None:
    spot, perp = ids(reg)
    book.on_execution(execution(7, [fill(spot, SIDE_BUY, "0.01", "970"), fill(perp, SIDE_SELL, "0.01", "971", leg=1)],
                                [AssetDelta(spot, "BTC", spot_held), AssetDelta(spot, "USDT", "-970"),
                                 AssetDelta(perp, "BTC", short), AssetDelta(perp, "USDT", "970.5145")]), 1000)


def close_opp(reg: Registry, qty: float) -> Opportunity:
    spot, perp = ids(reg)
    legs = (Leg(spot, BTC, SIDE_SELL, 96_900.0, qty, 1.0, 0), Leg(perp, BTC, SIDE_BUY, 97_000.0, qty, 1.0, 0))
    return Opportunity(9, STRATEGY_FUNDING, ACTION_CLOSE, BTC, legs, 970.0, 0.0, 0.0, 0, 0, 0)


def test_an_open_holds_its_exact_deltas_and_its_entry_basis(reg: Registry) -> None:
    book = CarryBook(reg, reg.perp_venues.tolist())
    opened(reg, book)
    carry = book.open[BTC]
    assert (carry.carry_id, carry.spot_qty, carry.perp_qty) == (7, Decimal("0.00999"), Decimal("-0.01"))
    assert carry.entry_basis_bps == pytest.approx((97_100 - 97_000) / 97_000 * 1e4)
    assert (carry.fees_usd, carry.pnl_usd, carry.state) == (0.5, 1.0, "open")


def test_a_close_is_sized_to_what_the_carry_holds_never_more(reg: Registry) -> None:
    book = CarryBook(reg, reg.perp_venues.tolist())
    opened(reg, book, spot_held="0.0099912", short="-0.006")  # an OPEN that unwound part of its short
    legs = book.close_legs(close_opp(reg, 0.01))  # the detector asks for the planned 0.01
    assert not isinstance(legs, str)
    by_side = {leg.side: leg.qty for leg in legs}
    assert by_side[SIDE_BUY] == 0.006  # the reduce-only buy: exactly the short, not the plan
    assert by_side[SIDE_SELL] == 0.00999  # the spot held, floored to the step (0.00001)


def test_a_close_without_a_carry_is_refused_with_its_reason(reg: Registry) -> None:
    book = CarryBook(reg, reg.perp_venues.tolist())
    assert book.close_legs(close_opp(reg, 0.01)) == "no open carry on BTCUSDT to close"


def test_funding_accrues_to_the_open_carry_once_per_payment(reg: Registry) -> None:
    book = CarryBook(reg, reg.perp_venues.tolist())
    opened(reg, book)
    _spot, perp = ids(reg)
    key = funding_key(perp, "555")
    payment = execution(1 << 62, [], [AssetDelta(perp, "USDT", "0.1455")], pnl=0.1455, fees=0.0,
                        outcome=OUTCOME_FUNDING, note=FUNDING_NOTE + key, sell_venue=perp)
    book.on_execution(payment, 2000)
    carry = book.open[BTC]
    assert carry.funding_usd == pytest.approx(0.1455)
    assert carry.pnl_usd == pytest.approx(1.1455)
    assert key in book.funding_keys


def test_closing_fills_end_the_carry_with_its_exit_basis(reg: Registry) -> None:
    book = CarryBook(reg, reg.perp_venues.tolist())
    opened(reg, book)
    spot, perp = ids(reg)
    done = book.on_execution(execution(9, [fill(spot, SIDE_SELL, "0.00999", "969"),
                                           fill(perp, SIDE_BUY, "0.01", "970", leg=1)],
                                       [AssetDelta(spot, "BTC", "-0.00999"), AssetDelta(perp, "BTC", "0.01")]), 3000)
    assert done is not None and done.state == "closed" and done.closed_ms == 3000
    assert BTC not in book.open and book.closed[-1] is done
    assert done.exit_basis_bps == pytest.approx((97_000 - 969 / 0.00999) / (969 / 0.00999) * 1e4)


def test_an_unwound_close_leaves_the_carry_open_with_what_is_left(reg: Registry) -> None:
    book = CarryBook(reg, reg.perp_venues.tolist())
    opened(reg, book)
    _spot, perp = ids(reg)
    # The perp buy filled, the spot sell did not, and the unwind re-sold the perp: nothing moved in the end.
    book.on_execution(execution(9, [fill(perp, SIDE_BUY, "0.01", "970", leg=1),
                                    fill(perp, SIDE_SELL, "0.01", "969", role=ROLE_UNWIND, leg=1)],
                                [AssetDelta(perp, "BTC", "0"), AssetDelta(perp, "USDT", "-1")]), 3000)
    carry = book.open[BTC]
    assert (carry.state, carry.spot_qty, carry.perp_qty) == ("open", Decimal("0.00999"), Decimal("-0.01"))


def test_other_strategies_and_missed_opens_move_no_carry(reg: Registry) -> None:
    book = CarryBook(reg, reg.perp_venues.tolist())
    spot, perp = ids(reg)
    assert book.on_execution(execution(1, [fill(spot, SIDE_BUY, "1", "1")], [AssetDelta(spot, "BTC", "1")],
                                       strategy=STRATEGY_CROSS), 0) is None
    missed = execution(2, [fill(spot, SIDE_BUY, "0", "0"), fill(perp, SIDE_SELL, "0", "0", leg=1)], [])
    assert book.on_execution(missed, 0) is None and not book.open


def test_a_replay_of_the_booked_executions_rebuilds_the_same_book(reg: Registry) -> None:
    live = CarryBook(reg, reg.perp_venues.tolist())
    opened(reg, live)
    _spot, perp = ids(reg)
    payment = execution(1 << 62, [], [AssetDelta(perp, "USDT", "0.2")], pnl=0.2, fees=0.0, outcome=OUTCOME_FUNDING,
                        note=FUNDING_NOTE + funding_key(perp, "9"), sell_venue=perp)
    live.on_execution(payment, 0)
    replayed = CarryBook(reg, reg.perp_venues.tolist())
    spot, perp = ids(reg)
    for exe in [execution(7, [fill(spot, SIDE_BUY, "0.01", "970"), fill(perp, SIDE_SELL, "0.01", "971", leg=1)],
                          [AssetDelta(spot, "BTC", "0.00999"), AssetDelta(perp, "BTC", "-0.01")]), payment]:
        replayed.on_execution(exe, 0)
    a, b = live.open[BTC], replayed.open[BTC]
    assert (a.carry_id, a.spot_qty, a.perp_qty, a.funding_usd) == (b.carry_id, b.spot_qty, b.perp_qty, b.funding_usd)
    assert replayed.funding_keys == live.funding_keys
