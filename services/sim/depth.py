"""One simulated L2 order book per (spot venue, symbol): pure, seeded, integer units.

Every model quote is one book change event: the update id advances by exactly one, the best bid and ask
levels take the quote's price and quantity, levels that would now cross are removed, and each side is
refilled (or trimmed) to ``depth_levels`` levels. Deeper levels sit 1..2*``level_gap_ticks`` ticks apart
with random quantities; now and then one of them changes size.

Every level change is recorded, with the level's final quantity (0: removed), in one pending diff per
aggregation interval. A push takes the pending diff: ``first`` is the id after the previous push, ``last``
the current id, so consecutive pushes chain (first == previous last + 1) whatever the interval, and a
client that applies them to a snapshot ends with this book exactly.

A taker order walks the opposite side best first (``walk``); what it takes (``take``) is one more book
change event: the update id advances, the levels shrink or go, and the change is recorded like any other, so
the next diff shows the taken liquidity and a client's local book still equals this one. The next quote
resets the best levels as usual.
"""

from __future__ import annotations

import random
from bisect import bisect_left
from collections.abc import Sequence
from typing import NamedTuple

from services.sim.market import QTY_SPREAD, SimQuote
from services.sim.units import SymbolSpec

RESIZE_PROBABILITY = 0.25  # per quote: one deeper level changes its quantity

Level = tuple[int, int]  # (price units, qty units)


class DepthDiff(NamedTuple):
    first: int  # first update id covered (Binance U, MEXC fromVersion)
    last: int  # last update id covered (Binance u, MEXC toVersion)
    bids: list[Level]  # best first; qty 0 removes the level
    asks: list[Level]


class _Side:
    """One side as keys ``sign * price`` ascending, so index 0 is the best level on both sides."""

    __slots__ = ("keys", "pending", "qty", "sign")

    def __init__(self, sign: int, n_intervals: int) -> None:
        self.sign = sign  # -1: bids (best = highest price), +1: asks
        self.keys: list[int] = []
        self.qty: dict[int, int] = {}  # price -> qty
        self.pending: list[dict[int, int]] = [{} for _ in range(n_intervals)]  # per interval: price -> final qty

    def record(self, price: int, qty: int) -> None:
        for p in self.pending:
            p[price] = qty

    def levels(self, n: int | None = None) -> list[Level]:
        sign, qty = self.sign, self.qty
        keys = self.keys if n is None else self.keys[:n]
        return [(sign * k, qty[sign * k]) for k in keys]


class DepthBook:
    def __init__(
        self,
        spec: SymbolSpec,
        *,
        levels: int,
        gap_ticks: int,
        top_qty_usd: float,
        intervals: Sequence[int],
        rng: random.Random,
    ) -> None:
        """``intervals``: the aggregation intervals (ms) that keep their own pending diff."""
        self.spec = spec
        self.update_id = 0
        self.intervals = tuple(intervals)
        self.bids = _Side(-1, len(intervals))
        self.asks = _Side(1, len(intervals))
        self._levels = levels
        self._max_gap = 2 * gap_ticks
        self._rng = rng
        self._pushed = [0] * len(intervals)  # per interval: the last id a push covered
        self._scale = 10.0**spec.price_decimals
        self._qty_scale = 10.0**spec.qty_decimals
        self._qty_lo = top_qty_usd * (1.0 - QTY_SPREAD)
        self._qty_width = top_qty_usd * 2.0 * QTY_SPREAD

    # ----- changes
    def apply(self, q: SimQuote) -> None:
        """One change event: the quote's best levels, crossing levels out, sides refilled."""
        self.update_id += 1
        self._set_best(self.bids, q.bid, q.bid_qty)
        self._set_best(self.asks, q.ask, q.ask_qty)
        self._refill(self.bids)
        self._refill(self.asks)
        rng = self._rng
        if rng.random() < RESIZE_PROBABILITY:
            side = self.bids if rng.random() < 0.5 else self.asks
            n = len(side.keys)
            if n > 1:
                k = side.keys[1 + int(rng.random() * (n - 1))]
                price = side.sign * k
                qty = self._random_qty(price)
                if side.qty[price] != qty:
                    side.qty[price] = qty
                    side.record(price, qty)

    def _set_best(self, side: _Side, price: int, qty: int) -> None:
        # Setting both sides' best removes everything better on each side; since bid < ask, this is
        # also every level the other side's new best would cross.
        sign, keys, book = side.sign, side.keys, side.qty
        k = sign * price
        i = bisect_left(keys, k)
        if i:
            for old in keys[:i]:
                p = sign * old
                del book[p]
                side.record(p, 0)
            del keys[:i]
        if keys and keys[0] == k:
            if book[price] != qty:
                book[price] = qty
                side.record(price, qty)
        else:
            keys.insert(0, k)
            book[price] = qty
            side.record(price, qty)
            self._fill_behind_best(side)

    def _fill_behind_best(self, side: _Side) -> None:
        """A best that jumped away from the book leaves a hole behind it; makers fill it, so deeper levels keep
        their 1..max_gap tick spacing (at most ``levels`` new ones: ``_refill`` trims the old tail)."""
        sign, keys, book = side.sign, side.keys, side.qty
        tick, rng, max_gap = self.spec.tick, self._rng, self._max_gap
        i = 0
        while i + 1 < len(keys) and i < self._levels and keys[i + 1] - keys[i] > tick * max_gap:
            k = keys[i] + tick * (1 + int(rng.random() * max_gap))
            keys.insert(i + 1, k)
            price = sign * k
            qty = self._random_qty(price)
            book[price] = qty
            side.record(price, qty)
            i += 1

    def _refill(self, side: _Side) -> None:
        sign, keys, book, n = side.sign, side.keys, side.qty, self._levels
        while len(keys) > n:
            p = sign * keys.pop()
            del book[p]
            side.record(p, 0)
        tick, rng, max_gap = self.spec.tick, self._rng, self._max_gap
        while len(keys) < n:
            k = keys[-1] + tick * (1 + int(rng.random() * max_gap))
            price = sign * k
            if price <= 0:
                break  # bids stop at the lowest positive price
            keys.append(k)
            qty = self._random_qty(price)
            book[price] = qty
            side.record(price, qty)

    def _random_qty(self, price: int) -> int:
        step = self.spec.step
        notional = self._qty_lo + self._qty_width * self._rng.random()
        return int(notional / self.spec.quote_usd * self._scale / price * self._qty_scale) // step * step or step

    # ----- taker trades
    def best(self, taker_side: str) -> int:
        """The best price a taker on ``taker_side`` (BUY takes asks) meets; 0 when that side is empty."""
        side = self.asks if taker_side == "BUY" else self.bids
        return side.sign * side.keys[0] if side.keys else 0

    def walk(self, taker_side: str, limit: int | None, qty: int) -> list[Level]:
        """(price, quantity) a taker order of ``qty`` would take, level by level, best first, while the level
        crosses ``limit`` (None: any price, a MARKET order). Changes nothing."""
        side = self.asks if taker_side == "BUY" else self.bids
        sign, book = side.sign, side.qty
        out: list[Level] = []
        left = qty
        for k in side.keys:
            if left <= 0:
                break
            price = sign * k
            if limit is not None and sign * limit < k:  # asks: price > limit; bids: price < limit
                break
            taken = min(left, book[price])
            out.append((price, taken))
            left -= taken
        return out

    def take(self, taker_side: str, taken: Sequence[Level]) -> None:
        """Remove what ``walk`` found (a best-first prefix of the side): one book change event."""
        if not taken:
            return
        side = self.asks if taker_side == "BUY" else self.bids
        self.update_id += 1
        book = side.qty
        gone = 0
        for price, qty in taken:
            left = book[price] - qty
            if left > 0:
                book[price] = left
            else:
                del book[price]
                gone += 1
            side.record(price, max(left, 0))
        del side.keys[:gone]  # emptied levels are the best ones: the walk took them in order

    # ----- pushes
    def take_diff(self, interval: int) -> DepthDiff | None:
        """Everything changed since this interval's previous push, or None when nothing did (the ids
        of change-free quotes then stay in the next diff's range, so the chain has no hole)."""
        i = self.intervals.index(interval)
        pb, pa = self.bids.pending[i], self.asks.pending[i]
        if not pb and not pa:
            return None
        first = self._pushed[i] + 1
        self._pushed[i] = self.update_id
        bids = sorted(pb.items(), reverse=True)
        asks = sorted(pa.items())
        pb.clear()
        pa.clear()
        return DepthDiff(first, self.update_id, bids, asks)

    def skip_diff(self, interval: int) -> bool:
        """Drop the pending diff unsent (a lost push, or nobody listening); True if there was one."""
        i = self.intervals.index(interval)
        pb, pa = self.bids.pending[i], self.asks.pending[i]
        if not pb and not pa:
            return False
        self._pushed[i] = self.update_id
        pb.clear()
        pa.clear()
        return True

    # ----- reads
    def top(self, n: int | None = None) -> tuple[int, list[Level], list[Level]]:
        """(update id, best ``n`` bids, best ``n`` asks); ``n=None`` for every level."""
        return self.update_id, self.bids.levels(n), self.asks.levels(n)

    def text_levels(self, levels: Sequence[Level]) -> list[tuple[str, str]]:
        spec = self.spec
        return [(spec.price_text(p), spec.qty_text(q)) for p, q in levels]
