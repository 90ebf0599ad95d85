from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.money import price_text, qty_text, snap, step_multiple_text


def test_quantities_round_down_and_keep_the_step_precision():
    assert qty_text(0.123456789, Decimal("0.00001")) == "0.12345"
    assert qty_text(5.0, Decimal("0.001")) == "5.000"
    assert qty_text(1e-7, Decimal("0.00001")) == "0.00000"


def test_prices_snap_to_tick_without_exponent_notation():
    assert price_text(97000.004, Decimal("0.01")) == "97000.00"
    assert price_text(0.0000123, Decimal("0.0000001")) == "0.0000123"
    assert price_text(1e-7, Decimal("0.0000001")) == "0.0000001"


def test_float_noise_does_not_lose_a_step():
    assert step_multiple_text(3 * 0.00001, Decimal("0.00001")) == "0.00003"
    assert step_multiple_text(0.1 + 0.2, Decimal("0.1")) == "0.3"


def test_non_positive_increment_is_an_error():
    with pytest.raises(ValueError):
        snap(1.0, Decimal(0))


@given(units=st.integers(0, 10**9), exp=st.integers(0, 8))
def test_a_multiple_of_the_step_survives_the_float_round_trip(units, exp):
    step = Decimal(1).scaleb(-exp)
    exact = units * step
    assert Decimal(step_multiple_text(float(exact), step)) == exact
