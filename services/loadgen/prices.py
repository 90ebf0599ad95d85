"""The load source's price process: seeded, computed at once with numpy, and periodic.

The ideas are the simulator's (``services/sim/market.py``): per symbol a common mid takes a Gaussian
random-walk step every round; each venue sees it through its own AR(1) deviation and, now and then, a
*dislocation* (one venue's quotes of one symbol shifted by ±``dislocation_bps`` for ``dislocation_quotes``
of its quotes), which is what opens cross-venue spreads wider than the fees. Cross pairs (ETHBTC) follow
the ratio of their assets' USD mids, so triangles only open through noise and dislocations, as in life.

What differs, because the tape is replayed in a loop: the walk is a *bridge* (it ends where it started, so
the wrap from the last round to the first is one ordinary step, not a jump of the whole market that would
look like an opportunity), and no dislocation spans the wrap. Quantities are sized for the detector: a
notional around ``top_qty_usd`` (a few thousand dollars), whole steps.

Quotes are ordered in rounds, round-robin over every (venue, symbol) *slot*, symbol-major (the venues of
one symbol follow each other, so they stay comparable): quote ``g`` is round ``g // n_slots`` of slot
``g % n_slots``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from services.sim.units import USD_ASSETS, SymbolSpec
from shared.config import Config, Sim, venue_symbols
from shared.venues.kinds import kind_of

AR_COEFF = 0.95  # how much of a venue's deviation survives one of its quotes (as the simulator)
QTY_SPREAD = 0.5  # top notional uniform in [1 - x, 1 + x] times top_qty_usd
MIN_MID_TICKS = 10  # a mid never goes below this many ticks
TOP_QTY_USD = 4_000.0  # mean notional at the top of book: a few thousand dollars, as the brief of a bench
DEFAULT_SPREAD_BPS = 2.0


@dataclass(frozen=True)
class SpotVenueInfo:
    """One spot venue of the config, as the tape sees it."""

    index: int  # among the spot venues
    name: str
    kind: str
    listed: tuple[int, ...]  # symbol indices (into cfg.symbols) this venue quotes
    spread_bps: float


@dataclass(frozen=True)
class TapePrices:
    """Every quote of the tape in integer units (``SymbolSpec``), in global order."""

    specs: list[SymbolSpec]
    venues: list[SpotVenueInfo]
    slots: list[tuple[int, int]]  # (spot venue index, symbol index) in round order
    rounds: int
    venue: np.ndarray  # int64 per quote: spot venue index
    symbol: np.ndarray  # int64 per quote: symbol index
    bid: np.ndarray  # int64 price units
    bid_qty: np.ndarray  # int64 qty units
    ask: np.ndarray
    ask_qty: np.ndarray
    shift_bps: np.ndarray  # float64: the dislocation in force on this quote (0 most of the time)
    mids: np.ndarray  # float64 (n_symbols, rounds): the common mid of each symbol in each round

    @property
    def n_slots(self) -> int:
        return len(self.slots)

    def __len__(self) -> int:
        return int(self.venue.shape[0])


def spot_venues(cfg: Config) -> list[SpotVenueInfo]:
    """The config's spot venues in config order, with the symbols each quotes and its sim spread."""
    spreads = {sv.venue: sv.spread_bps for sv in cfg.sim.venues}
    index = {s.name: i for i, s in enumerate(cfg.symbols)}
    out: list[SpotVenueInfo] = []
    for v in cfg.venues:
        if kind_of(v.kind).spot:
            listed = tuple(sorted(index[s.name] for s in venue_symbols(v, cfg.symbols)))
            out.append(SpotVenueInfo(len(out), v.name, v.kind, listed, spreads.get(v.name, DEFAULT_SPREAD_BPS)))
    return out


def _derived_pairs(specs: Sequence[SymbolSpec]) -> list[tuple[int, int] | None]:
    """For a cross pair whose two assets both have USD pairs: (base USD pair, quote USD pair)."""
    by_name = {s.name: i for i, s in enumerate(specs)}
    out: list[tuple[int, int] | None] = [None] * len(specs)
    for i, spec in enumerate(specs):
        if spec.quote in USD_ASSETS:
            continue
        for usd in USD_ASSETS:
            b, q = by_name.get(spec.base + usd), by_name.get(spec.quote + usd)
            if b is not None and q is not None:
                out[i] = (b, q)
                break
    return out


def _common_mids(sim: Sim, specs: Sequence[SymbolSpec], rounds: int, rng: np.random.Generator) -> np.ndarray:
    """(n_symbols, rounds) mids: a bridged log random walk per symbol, cross pairs as ratios."""
    n = len(specs)
    steps = rng.standard_normal((n, rounds)) * (sim.volatility_bps * 1e-4)
    walk = np.cumsum(steps, axis=1)
    # Bridge: subtract a straight line so the last round is back at the start price.
    walk -= np.arange(1, rounds + 1, dtype=np.float64)[None, :] / rounds * walk[:, -1:]
    start = np.array([s.start_price for s in specs], dtype=np.float64)
    mids = start[:, None] * np.exp(walk)
    for i, pair in enumerate(_derived_pairs(specs)):
        if pair is not None:
            mids[i] = mids[pair[0]] / mids[pair[1]]
    floor = np.array([MIN_MID_TICKS * s.tick / 10.0**s.price_decimals for s in specs])
    return np.maximum(mids, floor[:, None])


def _deviations(sim: Sim, n_slots: int, rounds: int, rng: np.random.Generator) -> np.ndarray:
    """(n_slots, rounds) AR(1) deviations in bps, stationary std-dev ``venue_noise_bps``."""
    innov = sim.venue_noise_bps * math.sqrt(1.0 - AR_COEFF * AR_COEFF)
    noise = rng.standard_normal((n_slots, rounds)) * innov
    dev = np.empty((n_slots, rounds))
    dev[:, 0] = rng.standard_normal(n_slots) * sim.venue_noise_bps
    for r in range(1, rounds):
        dev[:, r] = AR_COEFF * dev[:, r - 1] + noise[:, r]
    return dev


def _dislocations(sim: Sim, probability: float, n_slots: int, rounds: int, rng: np.random.Generator) -> np.ndarray:
    """(n_slots, rounds) shifts in bps: each quote starts one with ``probability`` unless one is running;
    none starts where it would run past the end of the tape."""
    length = sim.dislocation_quotes
    starts = rng.random((n_slots, rounds)) < probability
    signs = np.where(rng.random((n_slots, rounds)) < 0.5, 1.0, -1.0) * sim.dislocation_bps
    out = np.zeros((n_slots, rounds))
    for slot in range(n_slots):
        row = starts[slot]
        r = 0
        last_start = rounds - length
        while r <= last_start:
            hit = np.flatnonzero(row[r : last_start + 1])
            if hit.size == 0:
                break
            r += int(hit[0])
            out[slot, r : r + length] = signs[slot, r]
            r += length
    return out


def generate(cfg: Config, n_quotes: int, *, seed: int | None = None, dislocation_probability: float | None = None,
             top_qty_usd: float = TOP_QTY_USD) -> TapePrices:
    """At least ``n_quotes`` quotes (whole rounds) for every spot venue's listed symbols; the same arguments
    always give the same tape."""
    sim = cfg.sim
    p = sim.dislocation_probability if dislocation_probability is None else dislocation_probability
    specs = SymbolSpec.all_of(cfg.symbols)
    venues = spot_venues(cfg)
    if not venues:
        raise ValueError("the config has no spot venue (kinds binance, mexc) to replay")
    listed = [set(v.listed) for v in venues]
    slots = [(v.index, s) for s in range(len(specs)) for v in venues if s in listed[v.index]]
    if not slots:
        raise ValueError("no spot venue lists any configured symbol")
    rounds = max(2 * sim.dislocation_quotes + 2, -(-n_quotes // len(slots)))
    rng = np.random.default_rng(sim.seed if seed is None else seed)

    mids = _common_mids(sim, specs, rounds, rng)
    dev = _deviations(sim, len(slots), rounds, rng)
    shift = _dislocations(sim, p, len(slots), rounds, rng)

    slot_venue = np.array([v for v, _ in slots], dtype=np.int64)
    slot_symbol = np.array([s for _, s in slots], dtype=np.int64)
    scale = np.array([10.0**s.price_decimals for s in specs])[slot_symbol][:, None]
    qty_scale = np.array([10.0**s.qty_decimals for s in specs])[slot_symbol][:, None]
    tick = np.array([s.tick for s in specs], dtype=np.int64)[slot_symbol][:, None]
    step = np.array([s.step for s in specs], dtype=np.int64)[slot_symbol][:, None]
    quote_usd = np.array([s.quote_usd for s in specs])[slot_symbol][:, None]
    half = np.array([v.spread_bps * 0.5e-4 for v in venues])[slot_venue][:, None]

    venue_mid = mids[slot_symbol] * (1.0 + (dev + shift) * 1e-4)
    bid = np.floor(venue_mid * (1.0 - half) * scale).astype(np.int64) // tick * tick
    bid = np.maximum(bid, tick)
    ask = -(-np.ceil(venue_mid * (1.0 + half) * scale).astype(np.int64) // tick) * tick
    ask = np.maximum(ask, bid + tick)

    lo, width = top_qty_usd * (1.0 - QTY_SPREAD), top_qty_usd * 2.0 * QTY_SPREAD
    shape = (len(slots), rounds)

    def qty(price: np.ndarray) -> np.ndarray:
        notional = (lo + width * rng.random(shape)) / quote_usd  # in the quote asset
        units = np.floor(notional * scale / price * qty_scale).astype(np.int64) // step * step
        return np.maximum(units, step)

    bid_qty, ask_qty = qty(bid), qty(ask)

    def flat(a: np.ndarray) -> np.ndarray:  # (slot, round) -> global order (round-major)
        return np.ascontiguousarray(a.T).reshape(-1)

    return TapePrices(
        specs=specs, venues=venues, slots=slots, rounds=rounds,
        venue=np.tile(slot_venue, rounds), symbol=np.tile(slot_symbol, rounds),
        bid=flat(bid), bid_qty=flat(bid_qty), ask=flat(ask), ask_qty=flat(ask_qty),
        shift_bps=flat(shift), mids=mids,
    )
