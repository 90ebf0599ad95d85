"""Venue wire formats, one folder per venue; each kind is declared once (``shared.venues.kinds``).

These lookups are thin: ``market_format(kind)`` is ``kind_of(kind).market_format()``, plus a clear error
for a kind without an order API. Nothing is imported eagerly: ``shared.config`` imports the declarations
through this package, and the formats import ``shared.config``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shared.venues.declaration import DocumentedLimits
from shared.venues.kinds import KINDS, kind_of

if TYPE_CHECKING:
    from shared.venues.common import MarketFormat, OrderFormat

__all__ = ["DocumentedLimits", "documented_limits", "market_format", "order_format"]


def market_format(kind: str) -> MarketFormat:
    """A fresh parser per caller: each holds its own reusable decoder state."""
    return kind_of(kind).market_format()


def _no_order_api(kind: str) -> ValueError:
    trading = ", ".join(name for name, k in KINDS.items() if k.order_format is not None)
    return ValueError(f"no order API for venue kind {kind!r}; orders go to {trading}")


def documented_limits(kind: str) -> DocumentedLimits:
    limits = kind_of(kind).limits
    if limits is None:
        raise _no_order_api(kind)
    return limits


def order_format(kind: str) -> OrderFormat:
    factory = kind_of(kind).order_format
    if factory is None:
        raise _no_order_api(kind)
    return factory()
