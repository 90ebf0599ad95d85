"""The simulator's seeded price model: pure and deterministic (same seed, same quotes, in the same order).

Per symbol, a common mid takes a Gaussian random-walk step with every quote of that symbol. Each venue
sees it through its own AR(1) deviation (stationary std-dev ``venue_noise_bps``) and, now and then, a
dislocation: one venue's quotes for one symbol shifted by ±``dislocation_bps`` for ``dislocation_quotes``
of its quotes. Dislocations are what open cross-venue spreads wider than the fees.

Quotes are emitted round-robin over every (venue, symbol) slot, so each book refreshes at a steady rate.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from typing import NamedTuple

from services.sim.units import USD_ASSETS, SymbolSpec
from shared.config import Sim

AR_COEFF = 0.95  # how much of a venue's deviation survives one of its quotes
QTY_SPREAD = 0.5  # top quantity uniform in [1 - x, 1 + x] times the mean notional
MIN_MID_TICKS = 10  # the walk never takes a mid below this many ticks


class SimQuote(NamedTuple):
    venue: int  # index into the simulated venues
    symbol: int  # index into the configured symbols
    seq: int  # per (venue, symbol), from 1
    bid: int  # price units (see SymbolSpec)
    bid_qty: int  # qty units
    ask: int
    ask_qty: int


class PriceModel:
    def __init__(
        self,
        sim: Sim,
        specs: Sequence[SymbolSpec],
        spreads_bps: Sequence[float],
        venue_symbols: Sequence[Sequence[int]] | None = None,
    ) -> None:
        """``venue_symbols``: per venue, the symbol indices it quotes (None: every symbol everywhere)."""
        self._rng = random.Random(sim.seed)
        self._specs = list(specs)
        self._n_venues = len(spreads_bps)
        self._half_spread = [bps * 0.5e-4 for bps in spreads_bps]
        self._vol = sim.volatility_bps * 1e-4
        self._noise = sim.venue_noise_bps * math.sqrt(1.0 - AR_COEFF * AR_COEFF)
        self._p_disloc = sim.dislocation_probability
        self._disloc_bps = sim.dislocation_bps
        self._disloc_len = sim.dislocation_quotes
        self._qty_lo = sim.top_qty_usd * (1.0 - QTY_SPREAD)
        self._qty_width = sim.top_qty_usd * 2.0 * QTY_SPREAD
        self._price_scale = [10.0**s.price_decimals for s in specs]
        self._qty_scale = [10.0**s.qty_decimals for s in specs]
        self._min_mid = [MIN_MID_TICKS * s.tick / 10.0**s.price_decimals for s in specs]
        self._mid = [s.start_price for s in specs]
        self._quote_usd = [s.quote_usd for s in specs]
        # A cross pair (ETHBTC) whose two assets both have USD pairs follows their ratio instead of walking on its
        # own: mispricings between the three books then come only from venue noise and dislocations, as in life.
        by_name = {s.name: i for i, s in enumerate(specs)}
        self._derived: list[tuple[int, int] | None] = [None] * len(specs)
        for i, spec in enumerate(specs):
            if spec.quote in USD_ASSETS:
                continue
            for usd in USD_ASSETS:
                b, q = by_name.get(spec.base + usd), by_name.get(spec.quote + usd)
                if b is not None and q is not None:
                    self._derived[i] = (b, q)
                    break
        n_slots = self._n_venues * len(specs)
        self._dev_bps = [0.0] * n_slots
        self._disloc_shift = [0.0] * n_slots
        self._disloc_left = [0] * n_slots
        self._seq = [0] * n_slots
        # Symbol-major order: the venues of one symbol follow each other, so they stay comparable.
        listed = [set(range(len(specs)))] * self._n_venues if venue_symbols is None else [set(x) for x in venue_symbols]
        self._slots = [(v, s) for s in range(len(specs)) for v in range(self._n_venues) if s in listed[v]]
        self._next = 0

    @property
    def n_slots(self) -> int:
        return len(self._slots)

    def mid(self, symbol: int) -> float:
        """The common mid of ``symbol`` (before any venue's deviation): what perp mark prices follow."""
        return self._mid[symbol]

    def next_quote(self) -> SimQuote:
        v, s = self._slots[self._next]
        self._next = (self._next + 1) % len(self._slots)
        slot = v * len(self._specs) + s
        rng = self._rng
        spec = self._specs[s]
        scale, qty_scale = self._price_scale[s], self._qty_scale[s]

        shock = rng.gauss(0.0, 1.0)  # drawn for derived pairs too: every quote consumes the same randomness
        derived = self._derived[s]
        if derived is None:
            mid = self._mid[s] * (1.0 + self._vol * shock)
        else:
            mid = self._mid[derived[0]] / self._mid[derived[1]]
        if mid < self._min_mid[s]:
            mid = self._min_mid[s]
        self._mid[s] = mid

        dev = AR_COEFF * self._dev_bps[slot] + self._noise * rng.gauss(0.0, 1.0)
        self._dev_bps[slot] = dev
        shift = self._dislocation(slot, rng)
        venue_mid = mid * (1.0 + (dev + shift) * 1e-4)

        half = self._half_spread[v]
        tick, step = spec.tick, spec.step
        bid = math.floor(venue_mid * (1.0 - half) * scale) // tick * tick
        if bid < tick:
            bid = tick
        ask = -(-math.ceil(venue_mid * (1.0 + half) * scale) // tick) * tick
        if ask <= bid:
            ask = bid + tick

        # Top quantities: a random notional around top_qty_usd at each side's price, whole steps.
        lo, width = self._qty_lo / self._quote_usd[s], self._qty_width / self._quote_usd[s]
        bid_qty = int((lo + width * rng.random()) * scale / bid * qty_scale) // step * step or step
        ask_qty = int((lo + width * rng.random()) * scale / ask * qty_scale) // step * step or step

        seq = self._seq[slot] + 1
        self._seq[slot] = seq
        return SimQuote(v, s, seq, bid, bid_qty, ask, ask_qty)

    def _dislocation(self, slot: int, rng: random.Random) -> float:
        # Both numbers are always drawn: every quote consumes the same randomness, dislocated or not.
        start = rng.random() < self._p_disloc
        up = rng.random() < 0.5
        if self._disloc_left[slot] > 0:
            self._disloc_left[slot] -= 1
            return self._disloc_shift[slot]
        if start:
            self._disloc_shift[slot] = self._disloc_bps if up else -self._disloc_bps
            self._disloc_left[slot] = self._disloc_len - 1
            return self._disloc_shift[slot]
        return 0.0
