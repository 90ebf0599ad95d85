"""The exact asset ledger: fills and commissions booked per venue and asset as the venues book them."""

from __future__ import annotations

import math
from decimal import Decimal as D

import msgspec
import pytest

from services.executor.ledger import Ledger, decimal_text
from services.executor.order_state import Trade
from shared.messages import SIDE_BUY, SIDE_SELL, AssetDelta

pytestmark = pytest.mark.unit

BINANCE, MEXC = 0, 1


def session() -> Ledger:
    """A cross trade BTCUSDT (buy Binance, sell MEXC) and an ETHBTC round (buy MEXC, sell Binance)."""
    ledger = Ledger()
    # Binance buy: 0.1% commission in the quote.
    t1 = Trade("1", D("65000.10"), D("0.01500000"), D("0.97500150"), "USDT")
    ledger.add_trade(BINANCE, "BTC", "USDT", SIDE_BUY, t1)
    # MEXC sell: 0.05% commission in the quote.
    ledger.add_trade(MEXC, "BTC", "USDT", SIDE_SELL, Trade("2", D("65100.00"), D("0.015"), D("0.48825"), "USDT"))
    # MEXC buy: commission in the base.
    ledger.add_trade(MEXC, "ETH", "BTC", SIDE_BUY, Trade("3", D("0.05123"), D("0.2000"), D("0.0001"), "ETH"))
    # Binance sell paid in BNB: a third asset moves.
    ledger.add_trade(BINANCE, "ETH", "BTC", SIDE_SELL, Trade("4", D("0.05130"), D("0.2"), D("0.00002"), "BNB"))
    return ledger


def test_trades_on_two_venues_match_hand_computed_deltas_exactly() -> None:
    assert session().deltas() == {
        (BINANCE, "BTC"): D("0.02526"),  # +0.015 bought, +0.2 x 0.05130 from the ETH sale
        (BINANCE, "USDT"): D("-975.9765015"),  # -0.015 x 65000.10, -0.9750015 commission
        (BINANCE, "ETH"): D("-0.2"),
        (BINANCE, "BNB"): D("-0.00002"),
        (MEXC, "BTC"): D("-0.025246"),  # -0.015 sold, -0.2 x 0.05123 paid for ETH
        (MEXC, "USDT"): D("976.01175"),  # +0.015 x 65100, -0.48825 commission
        (MEXC, "ETH"): D("0.1999"),  # +0.2 bought, -0.0001 commission in the base
    }


def test_a_buy_with_commission_in_the_base_books_what_the_account_receives() -> None:
    ledger = Ledger()
    ledger.add_trade(MEXC, "BTC", "USDT", SIDE_BUY, Trade("1", D("65000"), D("0.01"), D("0.000005"), "BTC"))
    assert ledger.deltas() == {(MEXC, "BTC"): D("0.009995"), (MEXC, "USDT"): D("-650")}


def test_moves_that_net_to_zero_are_left_out() -> None:
    ledger = Ledger()
    ledger.add_trade(BINANCE, "BTC", "USDT", SIDE_BUY, Trade("1", D("100.5"), D("2"), D(0), ""))
    ledger.add_trade(BINANCE, "BTC", "USDT", SIDE_SELL, Trade("2", D("100.5"), D("2.000"), D(0), ""))
    assert ledger.deltas() == {}
    assert ledger.to_records() == []


def test_no_rounding_even_far_past_the_default_decimal_precision() -> None:
    ledger = Ledger()
    t = Trade("1", D("123456789.12345678"), D("98765432.87654321"), D("0.00000001"), "USDT")
    ledger.add_trade(BINANCE, "X", "USDT", SIDE_BUY, t)
    units = 12345678912345678 * 9876543287654321 + 10**8  # the notional plus commission, in 1e-16 units
    usdt = ledger.deltas()[(BINANCE, "USDT")]
    assert usdt == D((1, tuple(int(c) for c in str(units)), -16))  # sign, digits, exponent: built exactly
    assert usdt != -(D("123456789.12345678") * D("98765432.87654321")) - D("0.00000001")  # 28 digits: rounded


def test_a_commission_without_its_asset_or_a_bad_side_is_an_error() -> None:
    with pytest.raises(ValueError, match="without an asset"):
        Ledger().add_trade(BINANCE, "BTC", "USDT", SIDE_BUY, Trade("7", D("1"), D("1"), D("0.001"), ""))
    with pytest.raises(ValueError, match="side"):
        Ledger().add_trade(BINANCE, "BTC", "USDT", 5, Trade("7", D("1"), D("1"), D(0), ""))


def test_records_round_trip_as_exact_text_through_json_and_asset_deltas() -> None:
    ledger = session()
    records = ledger.to_records()
    assert records[0] == (BINANCE, "BNB", "-0.00002")
    assert (BINANCE, "USDT", "-975.9765015") in records and (MEXC, "USDT", "976.01175") in records
    assert all("E" not in delta and "e" not in delta for _, _, delta in records)
    assert Ledger.from_records(records) == ledger
    wire = msgspec.json.decode(msgspec.json.encode(records))  # lists after JSON, as persisted
    assert Ledger.from_records(wire).deltas() == ledger.deltas()
    deltas = ledger.to_asset_deltas()
    assert deltas[0] == AssetDelta(BINANCE, "BNB", "-0.00002")
    assert Ledger.from_records(deltas) == ledger


def test_decimal_text_is_plain() -> None:
    assert decimal_text(D("650.0000000000")) == "650"
    assert decimal_text(D("-1E-8")) == "-0.00000001"
    assert decimal_text(D("0E-8")) == "0"
    assert decimal_text(D("1.2300E+3")) == "1230"


def test_merge_adds_another_ledger() -> None:
    a, b = Ledger(), Ledger()
    a.add_trade(BINANCE, "BTC", "USDT", SIDE_BUY, Trade("1", D("100"), D("1"), D("0.1"), "USDT"))
    b.add_trade(BINANCE, "BTC", "USDT", SIDE_SELL, Trade("2", D("101"), D("1"), D("0.101"), "USDT"))
    b.add(MEXC, "USDT", D("5"))
    a.merge(b)
    assert a.deltas() == {(BINANCE, "USDT"): D("0.799"), (MEXC, "USDT"): D("5")}


def test_value_with_marks_and_a_missing_mark_names_the_asset() -> None:
    marks = {(BINANCE, "BTC"): 65000.0, (BINANCE, "USDT"): 1.0, (BINANCE, "ETH"): 3300.0, (BINANCE, "BNB"): 600.0,
             (MEXC, "BTC"): 65050.0, (MEXC, "USDT"): 1.0, (MEXC, "ETH"): 3310.0}
    value = session().value_usd(lambda venue, asset: marks.get((venue, asset)))
    expected = (0.02526 * 65000 - 975.9765015 - 0.2 * 3300 - 0.00002 * 600
                - 0.025246 * 65050 + 976.01175 + 0.1999 * 3310)
    assert math.isclose(value, expected, rel_tol=1e-12)
    del marks[(BINANCE, "BNB")]
    with pytest.raises(KeyError, match="BNB on venue 0"):
        session().value_usd(lambda venue, asset: marks.get((venue, asset)))


def test_an_empty_ledger_is_worth_nothing_and_needs_no_marks() -> None:
    def no_marks(venue: int, asset: str) -> float | None:
        return None

    assert Ledger().value_usd(no_marks) == 0.0
