"""Prices and quantities as whole numbers of the symbol's smallest decimal unit.

The simulator keeps its book in integers (``97000.01`` with tick ``0.01`` is ``9700001``), so matching
compares exact values and wire text is produced without float formatting.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from typing import NamedTuple

from shared.config import Symbol

USD_ASSETS = ("USDT", "USDC", "FDUSD", "USD")  # quote assets worth one dollar in the simulator


def decimals_of(text: str) -> int:
    """How many digits follow the point in a plain decimal string (``"0.010"`` has 3)."""
    _, _, frac = text.partition(".")
    return len(frac)


def units_text(n: int, decimals: int) -> str:
    """``units_text(9700001, 2) == "97000.01"``: exact, always with ``decimals`` digits after the point."""
    if decimals == 0:
        return str(n)
    s = str(n)
    if len(s) <= decimals:
        s = "0" * (decimals - len(s) + 1) + s
    return f"{s[:-decimals]}.{s[-decimals:]}"


def parse_decimal(text: str) -> Decimal | None:
    """A plain, finite, non-negative decimal as sent by a client; None for anything else."""
    try:
        d = Decimal(text)
    except InvalidOperation:
        return None
    if not d.is_finite() or d < 0 or "e" in text.lower():
        return None
    return d


def to_units(value: Decimal, decimals: int) -> int | None:
    """``value`` in units of 10^-decimals, or None if it has more precision than that."""
    scaled = value.scaleb(decimals)
    if scaled != scaled.to_integral_value():
        return None
    return int(scaled)


class SymbolSpec(NamedTuple):
    """One configured symbol in integer units: price units of 10^-price_decimals, qty of 10^-qty_decimals."""

    name: str
    base: str
    quote: str
    price_decimals: int
    tick: int  # tick size in price units
    qty_decimals: int
    step: int  # step size in qty units
    min_notional: Decimal
    start_price: float
    tick_text: str
    step_text: str
    quote_usd: float = 1.0  # USD per unit of the quote asset at start: sizes books in dollars for BTC pairs too

    @classmethod
    def of(cls, s: Symbol, quote_usd: float = 1.0) -> SymbolSpec:
        pd, qd = decimals_of(s.tick_size), decimals_of(s.step_size)
        tick = to_units(Decimal(s.tick_size), pd)
        step = to_units(Decimal(s.step_size), qd)
        assert tick is not None and step is not None  # exact by construction of the decimals
        return cls(
            s.name, s.base, s.quote, pd, tick, qd, step, Decimal(s.min_notional), s.start_price,
            s.tick_size, s.step_size, quote_usd,
        )

    @classmethod
    def all_of(cls, symbols: Sequence[Symbol]) -> list[SymbolSpec]:
        """Specs for every symbol, each quote asset valued through its USD pair's start price."""
        start = {s.name: s.start_price for s in symbols}

        def quote_usd(s: Symbol) -> float:
            if s.quote in USD_ASSETS:
                return 1.0
            for usd in USD_ASSETS:
                if s.quote + usd in start:
                    return start[s.quote + usd]
            return 1.0

        return [cls.of(s, quote_usd(s)) for s in symbols]

    def price_text(self, n: int) -> str:
        return units_text(n, self.price_decimals)

    def qty_text(self, n: int) -> str:
        return units_text(n, self.qty_decimals)

    def price(self, n: int) -> Decimal:
        return Decimal(n).scaleb(-self.price_decimals)

    def qty(self, n: int) -> Decimal:
        return Decimal(n).scaleb(-self.qty_decimals)
