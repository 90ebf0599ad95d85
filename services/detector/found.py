"""Kernel output rows as opportunity legs: ids to ``Leg``s, step-exact quantities, quote assets in USD."""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from services.detector import cross, funding, triangular
from services.detector.cycles import CycleTable
from shared.messages import (
    ACTION_CLOSE,
    ACTION_OPEN,
    SIDE_BUY,
    SIDE_SELL,
    STRATEGY_CROSS,
    STRATEGY_FUNDING,
    STRATEGY_TRIANGULAR,
    Leg,
)
from shared.registry import Registry


class Found(NamedTuple):
    """An opportunity before it gets its id and detection stamp."""

    strategy: int
    action: int
    symbol: int
    legs: tuple[Leg, ...]
    notional_usd: float
    spread_bps: float
    profit_usd: float
    trigger_symbols: tuple[int, ...]  # whose latest update stamps it (the newest of them)


class LegMaker:
    def __init__(self, registry: Registry, asset_usd: np.ndarray, perp_slippage_bps: float = 0.0) -> None:
        self.registry = registry
        self.asset_usd = asset_usd  # the detector's live valuation, read at emission time
        self.perp_slippage = perp_slippage_bps / 10_000

    def perp_limit(self, v: int, s: int, side: int, price: float) -> float:
        """``price`` moved ``perp_slippage`` through the touch and onto the tick, rounded further that way."""
        tick = float(self.registry.tick[v][s])
        if side == SIDE_BUY:
            return math.ceil(price * (1 + self.perp_slippage) / tick - 1e-9) * tick
        return math.floor(price * (1 - self.perp_slippage) / tick + 1e-9) * tick

    def qty(self, v: int, s: int, qty: float) -> float:
        """The kernel's step multiple without binary noise; the executor still formats it exactly."""
        return round(qty, self.registry.step_decimals[v][s])

    def quote_usd(self, s: int) -> float:
        return float(self.asset_usd[self.registry.quote_asset[s]])

    def cross(self, row: np.ndarray) -> Found:
        s = int(row[cross.OUT_SYMBOL])
        buy, sell = int(row[cross.OUT_BUY_VENUE]), int(row[cross.OUT_SELL_VENUE])
        qty = self.qty(buy, s, float(row[cross.OUT_QTY]))
        usd = self.quote_usd(s)
        legs = (
            Leg(buy, s, SIDE_BUY, float(row[cross.OUT_BUY_PRICE]), qty, usd, int(row[cross.OUT_BUY_TS])),
            Leg(sell, s, SIDE_SELL, float(row[cross.OUT_SELL_PRICE]), qty, usd, int(row[cross.OUT_SELL_TS])),
        )
        return Found(STRATEGY_CROSS, ACTION_OPEN, s, legs, float(row[cross.OUT_NOTIONAL]),
                     float(row[cross.OUT_SPREAD_BPS]), float(row[cross.OUT_PROFIT]), (s,))

    def triangular(self, row: np.ndarray, t: CycleTable) -> Found:
        c = int(row[triangular.OUT_CYCLE])
        v = int(t.venue[c])
        symbols = tuple(int(x) for x in t.symbols[c])
        legs = []
        for k, s in enumerate(symbols):
            base = triangular.OUT_LEG0 + k * triangular.LEG_COLUMNS
            side = SIDE_BUY if t.sides[c, k] == triangular.LEG_BUY else SIDE_SELL
            legs.append(Leg(v, s, side, float(row[base]), self.qty(v, s, float(row[base + 1])), self.quote_usd(s),
                            int(row[base + 2])))
        return Found(STRATEGY_TRIANGULAR, ACTION_OPEN, symbols[0], tuple(legs), float(row[triangular.OUT_NOTIONAL]),
                     float(row[triangular.OUT_BPS]), float(row[triangular.OUT_PROFIT]), symbols)

    def funding(self, row: np.ndarray) -> Found:
        s = int(row[funding.OUT_SYMBOL])
        action = ACTION_OPEN if row[funding.OUT_ACTION] == funding.ACTION_OPEN else ACTION_CLOSE
        spot = int(row[funding.OUT_SPOT_VENUE])
        perp = int(row[funding.OUT_PERP_VENUE])
        qty = self.qty(perp, s, float(row[funding.OUT_QTY]))
        usd = self.quote_usd(s)
        perp_side = SIDE_SELL if action == ACTION_OPEN else SIDE_BUY
        perp_leg = Leg(perp, s, perp_side, self.perp_limit(perp, s, perp_side, float(row[funding.OUT_PERP_PRICE])),
                       qty, usd, int(row[funding.OUT_PERP_TS]))
        legs: tuple[Leg, ...] = (perp_leg,)
        if spot >= 0:
            spot_leg = Leg(spot, s, SIDE_BUY if action == ACTION_OPEN else SIDE_SELL,
                           float(row[funding.OUT_SPOT_PRICE]), qty, usd, int(row[funding.OUT_SPOT_TS]))
            legs = (spot_leg, perp_leg)
        return Found(STRATEGY_FUNDING, action, s, legs, float(row[funding.OUT_NOTIONAL]),
                     float(row[funding.OUT_ANNUAL_BPS]), float(row[funding.OUT_PROFIT]), (s,))
