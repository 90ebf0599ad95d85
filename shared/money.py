"""Exact prices and quantities for orders.

Detection works in floats; everything that reaches a venue goes through here: the float is read back as
the shortest decimal that round-trips (``repr``), snapped to the venue's tick or step with an explicit
rounding direction, and written as a plain decimal string. A float repr never reaches an exchange.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal

_ROUNDING = {"down": ROUND_FLOOR, "up": ROUND_CEILING, "nearest": ROUND_HALF_EVEN}


def snap(value: float | Decimal, increment: Decimal, rounding: str = "nearest") -> Decimal:
    """``value`` as a whole number of ``increment`` (tick or step), rounded as asked."""
    if increment <= 0:
        raise ValueError(f"increment must be > 0, got {increment}")
    d = value if isinstance(value, Decimal) else Decimal(repr(float(value)))
    units = (d / increment).to_integral_value(rounding=_ROUNDING[rounding])
    return (units * increment).quantize(increment)


def to_wire(value: Decimal) -> str:
    """Plain decimal text (never exponent notation), trailing zeros kept to the increment's precision."""
    return format(value, "f")


def price_text(price: float, tick: Decimal, rounding: str = "nearest") -> str:
    return to_wire(snap(price, tick, rounding))


def qty_text(qty: float, step: Decimal) -> str:
    """Quantities always round down: never trade more than was sized."""
    return to_wire(snap(qty, step, "down"))


# A quantity within this relative distance below a whole step is on that step: float noise, not a smaller size.
STEP_NOISE = 1e-9


def noise_floor(nearest: int, value: float, increment: float) -> int:
    """The whole number of increments not above ``value``, given the nearest one: ``nearest`` unless it lies
    above ``value`` by more than float noise. One formula for ``floor_step_text`` and the order templates'
    ``Increment.floor_step``, so both write the same text."""
    return nearest if nearest * increment <= value * (1.0 + STEP_NOISE) else nearest - 1


def floor_step_text(qty: float, step: Decimal) -> str:
    """A quantity floored to the venue's ``step``: never rounded up, because the venue's step wins over the
    config's and a leg must not trade more than was sized (two legs would differ). Float noise just below a
    step keeps it: ``3 * 0.00001`` is ``3.0000000000000004e-05`` and ``2.1`` may arrive as ``2.0999999999999996``."""
    nearest = int(snap(qty, step, "nearest") / step)
    return to_wire((noise_floor(nearest, float(qty), float(step)) * step).quantize(step))
