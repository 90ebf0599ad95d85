"""The engine's own view of one venue's book, as the paper fill model walks it.

Fed by the same market data the detector trades on (``Quote``: the top of book; ``Book``: the top N levels per
side), so a paper fill sees exactly what the engine saw. Liquidity a paper order took stays taken until the
venue updates that level: a level remembers the quantity the venue last stated and how much paper orders took
from it; a new quantity from the venue at that price (or the level going away) ends the debt. The book the venue
sent is never modified, so a later update that states the same quantity still shows the taken part missing,
which is what a real venue would show had our order reached it.

Prices and quantities stay floats here, as the feeds parse them; the fill model turns them into exact decimals
on the venue's tick and step.
"""

from __future__ import annotations

from bisect import insort
from typing import NamedTuple

from shared.messages import SIDE_BUY, SIDE_SELL


class Take(NamedTuple):
    price: float
    qty: float


class _Side:
    """One side's levels (price -> quantity as the venue stated it) and what paper orders took from them."""

    __slots__ = ("descending", "keys", "qty", "taken")

    def __init__(self, descending: bool) -> None:
        self.descending = descending
        self.keys: list[float] = []  # best first: ascending for asks, negated prices for bids
        self.qty: dict[float, float] = {}
        self.taken: dict[float, tuple[float, float]] = {}  # price -> (the venue's qty when taken, qty taken)

    def replace(self, prices: list[float], qtys: list[float]) -> None:
        """A depth snapshot of the top levels: it states every level it carries."""
        self.qty = {p: q for p, q in zip(prices, qtys, strict=True) if q > 0.0}
        sign = -1.0 if self.descending else 1.0
        self.keys = sorted(sign * p for p in self.qty)

    def top(self, price: float, qty: float) -> None:
        """A best-price update: levels better than it are gone, the level itself has the new quantity."""
        sign = -1.0 if self.descending else 1.0
        key = sign * price
        while self.keys and self.keys[0] < key:
            del self.qty[sign * self.keys.pop(0)]
        if qty <= 0.0:
            if price in self.qty:
                del self.qty[price]
                self.keys.remove(key)
            return
        if price not in self.qty:
            insort(self.keys, key)
        self.qty[price] = qty

    def available(self, price: float) -> float:
        """What is left at a level after paper takes the venue has not yet overwritten."""
        stated = self.qty.get(price, 0.0)
        debt = self.taken.get(price)
        if debt is None:
            return stated
        if debt[0] != stated:  # the venue updated the level since: its word replaces our debt
            del self.taken[price]
            return stated
        return max(stated - debt[1], 0.0)

    def walk(self, limit: float | None, qty: float) -> list[Take]:
        """Best level first while the level crosses ``limit`` (None: any price), until the levels hold ``qty``:
        each level with all it has left (the caller takes what it needs, exactly, in decimals)."""
        sign = -1.0 if self.descending else 1.0
        out: list[Take] = []
        left = qty
        for key in self.keys:
            if left <= 0.0:
                break
            price = sign * key
            if limit is not None and (price > limit if not self.descending else price < limit):
                break
            avail = self.available(price)
            if avail <= 0.0:
                continue
            out.append(Take(price, avail))
            left -= avail
        return out

    def take(self, takes: list[Take]) -> None:
        for t in takes:
            stated = self.qty.get(t.price, 0.0)
            debt = self.taken.get(t.price)
            already = debt[1] if debt is not None and debt[0] == stated else 0.0
            self.taken[t.price] = (stated, already + t.qty)


class PaperBook:
    """One (venue, symbol): bids and asks as the feed last stated them, plus what paper orders took."""

    __slots__ = ("asks", "bids", "updated_ns")

    def __init__(self) -> None:
        self.bids = _Side(descending=True)
        self.asks = _Side(descending=False)
        self.updated_ns = 0

    def on_quote(self, bid: float, bid_qty: float, ask: float, ask_qty: float, tick_ns: int) -> None:
        if bid > 0.0:
            self.bids.top(bid, bid_qty)
        if ask > 0.0:
            self.asks.top(ask, ask_qty)
        self.updated_ns = tick_ns

    def on_depth(self, bid_px: list[float], bid_qty: list[float], ask_px: list[float], ask_qty: list[float],
                 tick_ns: int) -> None:
        self.bids.replace(bid_px, bid_qty)
        self.asks.replace(ask_px, ask_qty)
        self.updated_ns = tick_ns

    def side_for(self, taker_side: int) -> _Side:
        """The side a taker order walks: a buy takes asks, a sell takes bids."""
        return self.asks if taker_side == SIDE_BUY else self.bids

    def best(self, side: int) -> float:
        """The best price on the book's ``side`` (SIDE_BUY: the bid), 0.0 when empty."""
        s = self.bids if side == SIDE_BUY else self.asks
        return abs(s.keys[0]) if s.keys else 0.0

    def mid(self) -> float:
        bid, ask = self.best(SIDE_BUY), self.best(SIDE_SELL)
        return (bid + ask) / 2.0 if bid > 0.0 and ask > 0.0 else 0.0
