"""Triangular cycles: found in the symbol registry or named in the config, and indexed by the symbols they use.

Symbols are edges between currencies; a cycle is a triangle of three currencies joined by three symbols
listed on the same spot venue. Each triangle gives two cycles (one per direction), both starting and ending
in the same currency: a USD asset where the triangle has one (profit is then in dollars directly), else the
first currency in registry order.

The index maps (venue, symbol) to the cycles using that symbol, so an update evaluates only those.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from typing import NamedTuple

import numpy as np

from services.detector.triangular import LEG_BUY, LEG_SELL
from shared.config import Config
from shared.registry import Registry


class Cycle(NamedTuple):
    venue: int
    symbols: tuple[int, int, int]
    sides: tuple[int, int, int]  # LEG_BUY / LEG_SELL per leg
    start_asset: int

    def describe(self, reg: Registry) -> str:
        legs = " → ".join(
            f"{'buy' if side == LEG_BUY else 'sell'} {reg.symbol(s)}"
            for s, side in zip(self.symbols, self.sides, strict=True)
        )
        return f"{reg.venue(self.venue)}: {reg.assets[self.start_asset]}: {legs}"


class CycleTable(NamedTuple):
    """Cycles as arrays for the kernel, plus the (venue, symbol) index."""

    cycles: tuple[Cycle, ...]
    venue: np.ndarray  # int64[C]
    symbols: np.ndarray  # int64[C, 3]
    sides: np.ndarray  # int64[C, 3]
    start: np.ndarray  # int64[C]
    index_start: np.ndarray  # int64[V * S + 1]
    index_cycles: np.ndarray  # int64[sum of cycle lengths]


def _legs(order: Sequence[int], pairs: dict[frozenset[int], int], reg: Registry) -> tuple[list[int], list[int]]:
    """The symbols and sides that convert order[0] → order[1] → order[2] → order[0]."""
    symbols: list[int] = []
    sides: list[int] = []
    for k in range(3):
        spend, get = order[k], order[(k + 1) % 3]
        s = pairs[frozenset((spend, get))]
        symbols.append(s)
        sides.append(LEG_BUY if int(reg.base_asset[s]) == get else LEG_SELL)
    return symbols, sides


def _start_order(triangle: Iterable[int], reg: Registry) -> list[int]:
    ordered = sorted(triangle)
    usd = [a for a in ordered if reg.is_usd_asset[a]]
    first = usd[0] if usd else ordered[0]
    return [first, *[a for a in ordered if a != first]]


def cycles_for_triangle(venue: int, triangle: Iterable[int], pairs: dict[frozenset[int], int],
                        reg: Registry) -> list[Cycle]:
    a, b, c = _start_order(triangle, reg)
    out = []
    for order in ((a, b, c), (a, c, b)):
        symbols, sides = _legs(order, pairs, reg)
        out.append(Cycle(venue, (symbols[0], symbols[1], symbols[2]), (sides[0], sides[1], sides[2]), a))
    return out


def discover(reg: Registry, venues: Sequence[int]) -> list[Cycle]:
    """Every currency triangle among the symbols each venue lists, both directions."""
    found: list[Cycle] = []
    for v in venues:
        pairs: dict[frozenset[int], int] = {}
        for s in range(reg.n_symbols):
            if reg.listed[v, s]:
                pairs[frozenset((int(reg.base_asset[s]), int(reg.quote_asset[s])))] = s
        neighbours: dict[int, set[int]] = {}
        for edge in pairs:
            x, y = tuple(edge)
            neighbours.setdefault(x, set()).add(y)
            neighbours.setdefault(y, set()).add(x)
        triangles: set[frozenset[int]] = set()
        for x, ys in neighbours.items():
            for y, z in itertools.combinations(sorted(ys), 2):
                if z in neighbours.get(y, ()):
                    triangles.add(frozenset((x, y, z)))
        for tri in sorted(triangles, key=sorted):
            found.extend(cycles_for_triangle(v, tri, pairs, reg))
    return found


def configured(cfg: Config, reg: Registry, venues: Sequence[int]) -> list[Cycle]:
    """The config's explicit cycles (both directions) on every venue that lists all three symbols."""
    found: list[Cycle] = []
    for names in cfg.strategies.triangular.cycles:
        ids = [reg.symbol_id[n] for n in names]
        pairs = {frozenset((int(reg.base_asset[s]), int(reg.quote_asset[s]))): s for s in ids}
        triangle = set().union(*pairs)
        for v in venues:
            if all(reg.listed[v, s] for s in ids):
                found.extend(cycles_for_triangle(v, triangle, pairs, reg))
    return found


def build_table(cycles: Sequence[Cycle], n_venues: int, n_symbols: int) -> CycleTable:
    unique = tuple(dict.fromkeys(cycles))
    n = len(unique)
    venue = np.array([c.venue for c in unique], dtype=np.int64).reshape(n)
    symbols = np.array([c.symbols for c in unique], dtype=np.int64).reshape(n, 3)
    sides = np.array([c.sides for c in unique], dtype=np.int64).reshape(n, 3)
    start = np.array([c.start_asset for c in unique], dtype=np.int64).reshape(n)
    cells: list[list[int]] = [[] for _ in range(n_venues * n_symbols)]
    for i, c in enumerate(unique):
        for s in set(c.symbols):
            cells[c.venue * n_symbols + s].append(i)
    index_start = np.zeros(n_venues * n_symbols + 1, dtype=np.int64)
    index_start[1:] = np.cumsum([len(cell) for cell in cells])
    flat = [i for cell in cells for i in cell]
    index_cycles = np.array(flat, dtype=np.int64).reshape(len(flat))
    return CycleTable(unique, venue, symbols, sides, start, index_start, index_cycles)


def cycle_table(cfg: Config, reg: Registry) -> CycleTable:
    venues = [int(v) for v in reg.spot_venues]
    found = configured(cfg, reg, venues)
    if cfg.strategies.triangular.discover:
        found += discover(reg, venues)
    return build_table(found, reg.n_venues, reg.n_symbols)
