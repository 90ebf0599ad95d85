"""Venue and symbol ids: small integers so the detector indexes numpy arrays directly.

Ids are positions in the config's ``venues`` and ``symbols`` lists, so every process that loads the same
config agrees on them without talking. Names travel only at the edges (feeds, REST, sinks).
"""

from __future__ import annotations

from decimal import Decimal

import numpy as np

from shared.config import Config, venue_symbols
from shared.venues.kinds import kind_of


class Registry:
    def __init__(self, cfg: Config) -> None:
        self.venue_names: tuple[str, ...] = tuple(v.name for v in cfg.venues)
        self.symbol_names: tuple[str, ...] = tuple(s.name for s in cfg.symbols)
        self.venue_id: dict[str, int] = {n: i for i, n in enumerate(self.venue_names)}
        self.symbol_id: dict[str, int] = {n: i for i, n in enumerate(self.symbol_names)}
        self.venues = cfg.venues
        self.symbols = cfg.symbols
        n_v, n_s = len(self.venue_names), len(self.symbol_names)
        # Filters per venue and symbol: the same for every venue today, per-venue once exchangeInfo is read.
        self.tick = [[Decimal(s.tick_size) for s in cfg.symbols] for _ in range(n_v)]
        self.step = [[Decimal(s.step_size) for s in cfg.symbols] for _ in range(n_v)]
        self.min_notional = [[Decimal(s.min_notional) for s in cfg.symbols] for _ in range(n_v)]
        # Decimal places of each step: quantities leave the detector rounded to them (0.589, not 0.5890000000000001).
        self.step_decimals = [[max(0, -int(d.as_tuple().exponent)) for d in row] for row in self.step]
        self.step_array = np.array([[float(x) for x in row] for row in self.step], dtype=np.float64)
        self.min_notional_array = np.array(
            [[float(x) for x in row] for row in self.min_notional], dtype=np.float64
        )
        self.taker_fee = np.array([v.taker_fee for v in cfg.venues], dtype=np.float64)
        assert self.step_array.shape == (n_v, n_s)
        # Currencies: the detector values every quote asset in USD (a BTC-quoted profit is worth BTC's price).
        self.assets: tuple[str, ...] = tuple(dict.fromkeys(a for s in cfg.symbols for a in (s.base, s.quote)))
        self.asset_id: dict[str, int] = {a: i for i, a in enumerate(self.assets)}
        self.base_asset = np.array([self.asset_id[s.base] for s in cfg.symbols], dtype=np.int64)
        self.quote_asset = np.array([self.asset_id[s.quote] for s in cfg.symbols], dtype=np.int64)
        usd = set(cfg.strategies.usd_assets)
        self.is_usd_asset = np.array([a in usd for a in self.assets], dtype=np.bool_)
        # Which venue lists which symbol, and which venues are spot (tradable books) or perpetual (funding).
        self.listed = np.zeros((n_v, n_s), dtype=np.bool_)
        for v, venue in enumerate(cfg.venues):
            for sym in venue_symbols(venue, cfg.symbols):
                self.listed[v, self.symbol_id[sym.name]] = True
        self.spot_venues = np.array([i for i, v in enumerate(cfg.venues) if kind_of(v.kind).spot], dtype=np.int64)
        self.perp_venues = np.array([i for i, v in enumerate(cfg.venues) if kind_of(v.kind).perp], dtype=np.int64)

    @property
    def n_venues(self) -> int:
        return len(self.venue_names)

    @property
    def n_symbols(self) -> int:
        return len(self.symbol_names)

    def venue(self, venue_id: int) -> str:
        return self.venue_names[venue_id]

    def symbol(self, symbol_id: int) -> str:
        return self.symbol_names[symbol_id]

    def listed_symbols(self, venue_id: int) -> list[int]:
        """Symbol ids the venue lists (in config order)."""
        return [int(s) for s in np.flatnonzero(self.listed[venue_id])]
