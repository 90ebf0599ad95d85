from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.money import STEP_NOISE, floor_step_text, price_text, qty_text, snap


def test_quantities_round_down_and_keep_the_step_precision():
    assert qty_text(0.123456789, Decimal("0.00001")) == "0.12345"
    assert qty_text(5.0, Decimal("0.001")) == "5.000"
    assert qty_text(1e-7, Decimal("0.00001")) == "0.00000"


def test_prices_snap_to_tick_without_exponent_notation():
    assert price_text(97000.004, Decimal("0.01")) == "97000.00"
    assert price_text(0.0000123, Decimal("0.0000001")) == "0.0000123"
    assert price_text(1e-7, Decimal("0.0000001")) == "0.0000001"


def test_float_noise_does_not_lose_a_step():
    assert floor_step_text(3 * 0.00001, Decimal("0.00001")) == "0.00003"
    assert floor_step_text(0.1 + 0.2, Decimal("0.1")) == "0.3"
    assert floor_step_text(0.7 * 3, Decimal("0.1")) == "2.1"  # 2.0999999999999996


def test_a_venue_step_coarser_than_the_sized_quantity_floors_never_rounds_up():
    # The detector sized 0.0159 on the config's step 0.0001; the venue trades in 0.01: nearest would send 0.02.
    assert floor_step_text(0.0159, Decimal("0.01")) == "0.01"
    assert floor_step_text(0.00999, Decimal("0.01")) == "0.00"
    assert floor_step_text(1.999999, Decimal("1")) == "1"


@given(units=st.integers(0, 10**9), exp=st.integers(0, 8), frac=st.floats(0.0, 0.999))
def test_floored_text_is_never_above_the_value(units, exp, frac):
    step = Decimal(1).scaleb(-exp)
    value = float((units + Decimal(repr(frac))) * step)
    out = Decimal(floor_step_text(value, step))
    assert out % step == 0
    assert out <= Decimal(repr(value)) * (1 + Decimal(STEP_NOISE)) and out + step > Decimal(repr(value))


def test_non_positive_increment_is_an_error():
    with pytest.raises(ValueError):
        snap(1.0, Decimal(0))


@given(units=st.integers(0, 10**9), exp=st.integers(0, 8))
def test_a_multiple_of_the_step_survives_the_float_round_trip(units, exp):
    step = Decimal(1).scaleb(-exp)
    exact = units * step
    assert Decimal(floor_step_text(float(exact), step)) == exact
