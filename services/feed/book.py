"""A venue's order book for one symbol, kept exactly from a REST snapshot and the diff stream.

``BookSync`` follows the venues' documented procedure (Binance ``U``/``u``, MEXC ``fromVersion``/
``toVersion``, same rules): buffer diffs until a snapshot arrives; a snapshot older than the first
buffered diff is refused (ask again); buffered diffs up to the snapshot are dropped; afterwards a diff that
ends at or before the book's id is a duplicate, one that starts after id + 1 is a gap (discard the book,
start over). Quantities are absolute; 0 removes a level.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from typing import NamedTuple

from shared.venues.common import DepthDiff, DepthSnapshot, Levels

WAITING = "waiting"  # buffering diffs until a snapshot arrives
LIVE = "live"

# What one input did to the book.
APPLIED = "applied"
BUFFERED = "buffered"
DUPLICATE = "duplicate"  # already in the book (an overlap or a resend): ignored
GAP = "gap"  # updates were lost: the book was discarded and needs a new snapshot
STALE_SNAPSHOT = "stale_snapshot"  # the snapshot is older than the buffered diffs: ask again
IGNORED = "ignored"  # a snapshot that arrived when the book was already live
CROSSED = "crossed"  # the book crossed after an update: it cannot be right, start over


class Top(NamedTuple):
    bid_px: list[float]
    bid_qty: list[float]
    ask_px: list[float]
    ask_qty: list[float]


class _Side:
    """Price levels of one side: a dict for quantities, a plain sorted key list for order.

    Bids are keyed by the negated price, so both sides sort best first. Inserting into a list of a
    thousand floats is one small memmove; reading the top N is a slice — cheaper than any tree here.
    """

    __slots__ = ("keys", "qty")

    def __init__(self, levels: Levels = ()) -> None:  # type: ignore[assignment]
        self.qty: dict[float, float] = {k: q for k, q in levels if q > 0.0}
        self.keys: list[float] = sorted(self.qty)

    def set(self, key: float, q: float) -> None:
        qty = self.qty
        if q > 0.0:
            if key not in qty:
                insort(self.keys, key)
            qty[key] = q
        elif key in qty:
            del qty[key]
            del self.keys[bisect_left(self.keys, key)]

    def top(self, n: int) -> tuple[list[float], list[float]]:
        keys = self.keys[:n]
        qty = self.qty
        return keys, [qty[k] for k in keys]

    def best(self) -> float | None:
        return self.keys[0] if self.keys else None

    def items(self) -> list[tuple[float, float]]:
        qty = self.qty
        return [(k, qty[k]) for k in self.keys]


class LocalBook:
    __slots__ = ("asks", "bids")

    def __init__(self) -> None:
        self.bids = _Side()
        self.asks = _Side()

    def load(self, bids: Levels, asks: Levels) -> None:
        self.bids = _Side([(-p, q) for p, q in bids])
        self.asks = _Side(asks)

    def apply(self, bids: Levels, asks: Levels) -> None:
        set_bid = self.bids.set
        for p, q in bids:
            set_bid(-p, q)
        set_ask = self.asks.set
        for p, q in asks:
            set_ask(p, q)

    def crossed(self) -> bool:
        bid, ask = self.bids.best(), self.asks.best()
        return bid is not None and ask is not None and -bid >= ask

    def top(self, n: int) -> Top:
        bid_keys, bid_qty = self.bids.top(n)
        ask_px, ask_qty = self.asks.top(n)
        return Top([-k for k in bid_keys], bid_qty, ask_px, ask_qty)

    def levels(self) -> tuple[Levels, Levels]:
        """Every level, best first: (bids, asks)."""
        return [(-k, q) for k, q in self.bids.items()], self.asks.items()


class BookSync:
    """One symbol's book and where it stands in the snapshot/diff procedure."""

    __slots__ = ("book", "buffer", "last_id", "max_buffer", "overflowed", "state")

    def __init__(self, max_buffer: int = 10_000) -> None:
        self.book = LocalBook()
        self.state = WAITING
        self.last_id = 0
        self.buffer: list[DepthDiff] = []
        self.max_buffer = max_buffer
        self.overflowed = 0

    @property
    def live(self) -> bool:
        return self.state == LIVE

    def reset(self) -> None:
        self.book = LocalBook()
        self.state = WAITING
        self.last_id = 0
        self.buffer = []

    def on_diff(self, d: DepthDiff) -> str:
        if self.state == WAITING:
            if len(self.buffer) >= self.max_buffer:
                # The snapshot is late: the oldest diffs could only matter to a snapshot older than them.
                del self.buffer[0]
                self.overflowed += 1
            self.buffer.append(d)
            return BUFFERED
        return self._apply(d)

    def on_snapshot(self, snap: DepthSnapshot) -> str:
        if self.state == LIVE:
            return IGNORED
        if self.buffer and snap.last_id < self.buffer[0].first_id - 1:
            # Diffs between the snapshot and the first buffered one were never seen: ask again.
            return STALE_SNAPSHOT
        self.book.load(snap.bids, snap.asks)
        self.last_id = snap.last_id
        self.state = LIVE
        pending, self.buffer = self.buffer, []
        for i, d in enumerate(pending):
            result = self._apply(d)
            if result == GAP:
                self.buffer.extend(pending[i + 1 :])
                return result
            if result == CROSSED:
                return result
        if self.book.crossed():
            self.reset()
            return CROSSED
        return APPLIED

    def _apply(self, d: DepthDiff) -> str:
        if d.last_id <= self.last_id:
            return DUPLICATE
        if d.first_id > self.last_id + 1:
            self.reset()
            self.buffer.append(d)  # it is good data after the gap: the new snapshot will need it
            return GAP
        self.book.apply(d.bids, d.asks)
        self.last_id = d.last_id
        if self.book.crossed():
            self.reset()
            return CROSSED
        return APPLIED
