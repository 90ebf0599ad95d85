"""Exact balance moves per venue and asset: the truth an execution's PnL is computed from.

Every fill moves two or three balances, booked as the venues (and the simulator's ``services/sim/book.py``
``_fill``) book them: a BUY adds ``qty`` base and takes ``qty * price`` quote, a SELL the reverse, and the
commission is taken from whatever asset the venue charged it in (the base on MEXC buys, the quote otherwise,
or a third asset such as BNB). Decimal arithmetic in a context that traps inexact results: a delta is never
rounded, and if it ever would be, that is an error rather than a silent cent.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from decimal import Context, Decimal, Inexact, InvalidOperation, Overflow

from services.executor.order_state import Trade
from shared.messages import SIDE_BUY, SIDE_SELL, AssetDelta

# 80 digits hold any product of two venue decimals (prices and quantities carry at most ~20 each).
EXACT = Context(prec=80, traps=[Inexact, InvalidOperation, Overflow])
ZERO = Decimal(0)

DeltaRecord = tuple[int, str, str]  # (venue, asset, delta as decimal text)


def decimal_text(d: Decimal) -> str:
    """Plain decimal text without exponent or trailing zeros: ``650``, ``-0.00001``."""
    if d == 0:
        return "0"
    return format(d.normalize(EXACT), "f")


class Ledger:
    def __init__(self) -> None:
        self._d: dict[tuple[int, str], Decimal] = {}

    def add(self, venue: int, asset: str, amount: Decimal) -> None:
        """Move one balance by ``amount`` (positive: received)."""
        if not asset:
            raise ValueError("asset name is empty")
        key = (venue, asset)
        self._d[key] = EXACT.add(self._d.get(key, ZERO), amount)

    def add_trade(self, venue: int, base: str, quote: str, side: int, t: Trade) -> None:
        # Every operation goes through EXACT: even unary minus rounds in the default 28-digit context.
        notional = EXACT.multiply(t.qty, t.price)
        if side == SIDE_BUY:
            self.add(venue, base, t.qty)
            self.add(venue, quote, EXACT.minus(notional))
        elif side == SIDE_SELL:
            self.add(venue, base, EXACT.minus(t.qty))
            self.add(venue, quote, notional)
        else:
            raise ValueError(f"side {side}: SIDE_BUY or SIDE_SELL")
        if t.commission:
            if not t.commission_asset:
                raise ValueError(f"trade {t.trade_id}: commission {t.commission} without an asset")
            self.add(venue, t.commission_asset, EXACT.minus(t.commission))

    def deltas(self) -> dict[tuple[int, str], Decimal]:
        """(venue, asset) -> net move; assets that netted to zero are left out."""
        return {k: v for k, v in self._d.items() if v != 0}

    def value_usd(self, marks: Callable[[int, str], float | None]) -> float:
        """The moves valued at ``marks(venue, asset)`` USD per unit; KeyError naming the asset if one is missing."""
        total = 0.0
        for (venue, asset), delta in sorted(self.deltas().items()):
            mark = marks(venue, asset)
            if mark is None:
                raise KeyError(f"no USD mark for {asset} on venue {venue}")
            total += float(delta) * mark
        return total

    def merge(self, other: Ledger) -> None:
        for (venue, asset), delta in other._d.items():
            self.add(venue, asset, delta)

    def to_records(self) -> list[DeltaRecord]:
        """Non-zero moves as (venue, asset, decimal text), sorted: for persistence and ``Execution.deltas``."""
        return [(venue, asset, decimal_text(d)) for (venue, asset), d in sorted(self.deltas().items())]

    def to_asset_deltas(self) -> tuple[AssetDelta, ...]:
        return tuple(AssetDelta(venue, asset, delta) for venue, asset, delta in self.to_records())

    @classmethod
    def from_records(cls, records: Iterable[DeltaRecord | list[object] | AssetDelta]) -> Ledger:
        """Inverse of ``to_records``; also takes ``AssetDelta`` and JSON-decoded lists."""
        ledger = cls()
        for r in records:
            if isinstance(r, AssetDelta):
                venue, asset, delta = r.venue, r.asset, r.delta
            else:
                venue, asset, delta = r
            ledger.add(int(venue), str(asset), Decimal(str(delta)))
        return ledger

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Ledger) and self.deltas() == other.deltas()

    def __repr__(self) -> str:
        return f"Ledger({self.to_records()!r})"
