"""Every venue kind draizer speaks, by the name a venue's config gives as ``kind``.

Adding a venue is its folder under ``shared/venues/`` (its formats and its ``kind.py`` declaration) and one
entry below; nothing else chooses between venues by name. Look a kind up once, at start-up.
"""

from __future__ import annotations

from shared.venues.binance.kind import BINANCE, BINANCE_USDM
from shared.venues.declaration import VenueKind
from shared.venues.mexc.kind import MEXC, MEXC_CONTRACT

KINDS: dict[str, VenueKind] = {k.name: k for k in (BINANCE, MEXC, BINANCE_USDM, MEXC_CONTRACT)}
KIND_NAMES: tuple[str, ...] = tuple(KINDS)


def kind_of(name: str) -> VenueKind:
    """The declaration of kind ``name``; ValueError naming the known kinds for any other."""
    kind = KINDS.get(name)
    if kind is None:
        raise ValueError(f"unknown venue kind {name!r}; known kinds: {', '.join(KIND_NAMES)}")
    return kind
