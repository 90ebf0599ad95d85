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


def step_multiple_text(qty: float, step: Decimal) -> str:
    """A quantity the detector already floored to ``step``: snap to the nearest step to undo float noise
    (``3 * 0.00001`` is ``3.0000000000000004e-05``; flooring that again could lose a whole step)."""
    return to_wire(snap(qty, step, "nearest"))
