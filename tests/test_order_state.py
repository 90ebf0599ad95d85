"""One order's state machine: each transition rule of services/executor/order_state.py, and its record."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from services.executor.order_state import (
    CANCELED,
    EXPIRED,
    FILLED,
    FINAL,
    NEW,
    PARTIALLY_FILLED,
    PENDING,
    REJECTED,
    STATUSES,
    UNKNOWN,
    TrackedOrder,
    Trade,
)
from shared.messages import ROLE_LEG, SIDE_BUY

pytestmark = pytest.mark.unit

OPEN_OR_OURS = (PENDING, UNKNOWN, NEW, PARTIALLY_FILLED)


def order(status: str = PENDING, executed: str = "0", cum_quote: str = "0") -> TrackedOrder:
    return TrackedOrder(
        client_order_id="dz-7-0",
        opportunity_id=7,
        role=ROLE_LEG,
        leg=0,
        venue=1,
        symbol=2,
        side=SIDE_BUY,
        qty="0.01000000",
        price="65000.00",
        order_type="LIMIT_IOC",
        created_ns=123,
        status=status,
        executed=D(executed),
        cum_quote=D(cum_quote),
    )


def test_a_new_order_is_pending_and_open() -> None:
    o = order()
    assert o.status == PENDING and o.open and not o.final and o.executed == 0 and o.trades == {}


@pytest.mark.parametrize("start", [PENDING, UNKNOWN])
@pytest.mark.parametrize("to", [NEW, PARTIALLY_FILLED, FILLED, CANCELED, REJECTED, EXPIRED])
def test_pending_and_unknown_move_to_any_venue_state(start: str, to: str) -> None:
    o = order(start)
    executed = "0.005" if to in (PARTIALLY_FILLED, FILLED) else "0"
    assert o.advance(to, D(executed), D(executed) * 65000, "42")
    assert o.status == to and o.order_id == "42"
    assert o.final == (to in FINAL)


ALLOWED_FROM_NEW = {PARTIALLY_FILLED, FILLED, CANCELED, EXPIRED, REJECTED}
ALLOWED_FROM_PARTIAL = {FILLED, CANCELED, EXPIRED}


@pytest.mark.parametrize("to", sorted(ALLOWED_FROM_NEW))
def test_new_moves_to_fills_and_every_final_state(to: str) -> None:
    o = order(NEW)
    assert o.advance(to, D("0.004"), D("260"))
    assert o.status == to


@pytest.mark.parametrize("to", sorted(ALLOWED_FROM_PARTIAL | {PARTIALLY_FILLED}))
def test_partially_filled_moves_on_to_more_fills_or_an_end(to: str) -> None:
    o = order(PARTIALLY_FILLED, "0.002", "130")
    assert o.advance(to, D("0.004"), D("260"))
    assert o.status == to and o.executed == D("0.004")


def test_a_partially_filled_order_cannot_be_rejected() -> None:
    o = order(PARTIALLY_FILLED, "0.002", "130")
    assert not o.advance(REJECTED, D("0.002"), D("130"))
    assert o.status == PARTIALLY_FILLED


@pytest.mark.parametrize("final", sorted(FINAL))
@pytest.mark.parametrize("later", [NEW, PARTIALLY_FILLED, FILLED, CANCELED, EXPIRED, REJECTED, UNKNOWN])
def test_final_states_are_terminal_and_ignore_later_reports(final: str, later: str) -> None:
    o = order(final, "0.004", "260")
    o.order_id = "42"
    assert not o.advance(later, D("0.01"), D("650"), "42")
    assert (o.status, o.executed, o.cum_quote) == (final, D("0.004"), D("260"))
    o.mark_unknown("timeout")
    o.fail(-2010, "insufficient")
    assert o.status == final and o.error_code == 0


def test_a_final_state_still_learns_a_missing_venue_order_id() -> None:
    o = order()
    assert o.advance(FILLED, D("0.01"), D("650"))
    assert o.advance(NEW, D(0), D(0), "42")
    assert o.status == FILLED and o.order_id == "42"


def test_executed_never_decreases_under_a_stale_report() -> None:
    o = order(NEW)
    assert o.advance(PARTIALLY_FILLED, D("0.006"), D("390"))
    assert not o.advance(PARTIALLY_FILLED, D("0.003"), D("195"))  # older trade event arriving late
    assert (o.status, o.executed, o.cum_quote) == (PARTIALLY_FILLED, D("0.006"), D("390"))


def test_a_report_raises_status_and_numbers_together() -> None:
    o = order(NEW)
    assert o.advance(FILLED, D("0.01"), D("650"))
    assert (o.status, o.executed, o.cum_quote) == (FILLED, D("0.01"), D("650"))


def test_a_final_report_with_less_executed_keeps_the_larger_numbers() -> None:
    o = order(PARTIALLY_FILLED, "0.006", "390")
    assert o.advance(EXPIRED, D("0.004"), D("260"))
    assert (o.status, o.executed, o.cum_quote) == (EXPIRED, D("0.006"), D("390"))


def test_stream_filled_before_the_rest_answer_new_ends_filled() -> None:
    o = order()
    assert o.advance(FILLED, D("0.01"), D("650"), "42")  # the user stream was faster
    assert not o.advance(NEW, D(0), D(0), "42")  # then the REST answer
    assert (o.status, o.executed) == (FILLED, D("0.01"))


def test_an_earlier_open_status_keeps_the_later_one_but_takes_larger_numbers() -> None:
    o = order(PARTIALLY_FILLED, "0.002", "130")
    assert o.advance(NEW, D("0.004"), D("260"))
    assert (o.status, o.executed) == (PARTIALLY_FILLED, D("0.004"))
    assert not o.advance(NEW, D("0.004"), D("260"))


def test_an_unknown_order_with_fills_resolved_as_new_is_partially_filled() -> None:
    o = order(PARTIALLY_FILLED, "0.002", "130")
    o.mark_unknown("cancel timed out")
    assert o.status == UNKNOWN and o.error_msg == "cancel timed out" and o.open
    assert o.advance(NEW, D(0), D(0))
    assert (o.status, o.executed) == (PARTIALLY_FILLED, D("0.002"))


@pytest.mark.parametrize("start", OPEN_OR_OURS)
def test_mark_unknown_applies_to_pending_and_open_orders(start: str) -> None:
    o = order(start)
    o.mark_unknown("HTTP 503")
    assert o.status == UNKNOWN


@pytest.mark.parametrize("start", [PENDING, UNKNOWN])
def test_fail_rejects_a_pending_or_unknown_order(start: str) -> None:
    o = order(start)
    o.fail(-2010, "Account has insufficient balance for requested action.")
    assert (o.status, o.error_code) == (REJECTED, -2010) and o.final


@pytest.mark.parametrize("start", [NEW, PARTIALLY_FILLED])
def test_fail_does_not_touch_an_order_the_venue_accepted(start: str) -> None:
    o = order(start)
    o.fail(-2010, "late error")
    assert o.status == start and o.error_code == 0


def test_venue_aliases_map_and_unknown_statuses_raise() -> None:
    o = order(PARTIALLY_FILLED, "0.002", "130")
    assert o.advance("PARTIALLY_CANCELED", D("0.002"), D("130"))  # MEXC
    assert o.status == CANCELED
    with pytest.raises(ValueError, match="PENDING_NEW"):
        order().advance("PENDING_NEW", D(0), D(0))
    with pytest.raises(ValueError):
        order().advance(PENDING, D(0), D(0))


def test_the_same_trade_from_two_channels_counts_once() -> None:
    o = order()
    rest = Trade("9001", D("65000.00"), D("0.00400000"), D("0.00000400"), "BTC")
    stream = Trade("9001", D("65000.00"), D("0.004"), D("0.000004"), "BTC")
    assert o.add_trade(rest)
    assert not o.add_trade(stream)
    assert list(o.trades) == ["9001"]


def test_trades_complete_when_they_sum_to_executed() -> None:
    o = order()
    o.advance(FILLED, D("0.01"), D("650.01"))
    assert not o.trades_complete()
    o.add_trade(Trade("1", D("65000.00"), D("0.006"), D("0.39"), "USDT"))
    assert not o.trades_complete()
    o.add_trade(Trade("2", D("65001.00"), D("0.004"), D("0.26"), "USDT"))
    assert o.trades_complete()
    assert order().trades_complete()  # nothing executed, no trades


def test_record_round_trip_keeps_exact_decimals_and_trades() -> None:
    o = order()
    o.advance(PARTIALLY_FILLED, D("0.00600000"), D("390.00600000"), "42")
    o.add_trade(Trade("1", D("65001.00"), D("0.00600000"), D("0.00000600"), "BTC"))
    o.mark_unknown("timeout")
    back = TrackedOrder.from_record(o.to_record())
    assert back == o
    assert str(back.executed) == "0.00600000" and back.price == "65000.00"
    market = order()
    market.price = None
    assert TrackedOrder.from_record(market.to_record()).price is None


def test_every_status_round_trips_and_garbage_does_not() -> None:
    for status in STATUSES:
        assert TrackedOrder.from_record(order(status).to_record()).status == status
    bad = order().to_record()
    bad["status"] = "WHATEVER"
    with pytest.raises(ValueError):
        TrackedOrder.from_record(bad)
