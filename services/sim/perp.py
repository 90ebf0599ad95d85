"""The simulator's perpetual funding model: pure and seeded.

Per symbol, the funding rate is a mean-reverting random walk around ``funding_rate_mean`` (one step of
std-dev ``funding_rate_vol`` per push interval, clamped to the venues' cap). The mark price is the spot
model's common mid times ``1 + perp_basis_bps/1e4``. Each perp venue quotes the same per-symbol rate plus
its own small fixed offset, so two venues' rates differ as they do in life, and rounds it as it writes it
(Binance 8 decimals, MEXC 6). Funding settles on wall-clock multiples of ``funding_period_s``.
"""

from __future__ import annotations

import random
from typing import NamedTuple

from shared.config import Sim

REVERSION = 0.05  # share of the distance to the mean closed per step
MAX_RATE = 0.003  # both venues cap the rate at ±0.3 % per period
VENUE_OFFSET = 0.000005  # added per perp venue index, so venue rates differ
SEED_SALT = 0x5EED_F00D  # the funding walk draws from its own stream, never the price model's


class FundingPoint(NamedTuple):
    """One venue's funding state for one symbol, as pushed."""

    rate: float  # already rounded to the venue's decimals
    next_funding_ms: int
    mark: float
    index: float
    time_ms: int

    @property
    def rate_text(self) -> str:
        return f"{self.rate:.8f}"

    @property
    def mark_text(self) -> str:
        return f"{self.mark:.8f}"

    @property
    def index_text(self) -> str:
        return f"{self.index:.8f}"


def next_funding_ms(now_ms: int, period_s: int) -> int:
    period_ms = period_s * 1000
    return (now_ms // period_ms + 1) * period_ms


class FundingModel:
    def __init__(self, sim: Sim, n_symbols: int) -> None:
        self._rng = random.Random(sim.seed ^ SEED_SALT)
        self._mean = sim.funding_rate_mean
        self._vol = sim.funding_rate_vol
        self._basis = 1.0 + sim.perp_basis_bps * 1e-4
        self._period_s = sim.funding_period_s
        self.rates = [sim.funding_rate_mean] * n_symbols
        self.pinned: dict[int, float] = {}  # a test's fixed rate per symbol (``pin``): it does not walk
        self.steps = 0

    def step(self) -> None:
        """One push interval: every symbol's rate moves once (a pinned one stays)."""
        rng, mean, vol = self._rng, self._mean, self._vol
        for i, r in enumerate(self.rates):
            r += REVERSION * (mean - r) + vol * rng.gauss(0.0, 1.0)  # drawn even when pinned: the stream stays
            self.rates[i] = min(MAX_RATE, max(-MAX_RATE, self.pinned.get(i, r)))
        self.steps += 1

    def pin(self, symbol: int, rate: float | None) -> None:
        """Hold ``symbol``'s rate at ``rate`` from now on (None: let it walk again from there). A test hook."""
        if rate is None:
            self.pinned.pop(symbol, None)
            return
        self.pinned[symbol] = rate
        self.rates[symbol] = min(MAX_RATE, max(-MAX_RATE, rate))

    def point(self, symbol: int, venue_index: int, decimals: int, mid: float, now_ms: int) -> FundingPoint:
        rate = round(self.rates[symbol] + VENUE_OFFSET * venue_index, decimals)
        rate = min(MAX_RATE, max(-MAX_RATE, rate)) + 0.0  # + 0.0: never a negative zero on the wire
        return FundingPoint(rate, next_funding_ms(now_ms, self._period_s), mid * self._basis, mid, now_ms)
