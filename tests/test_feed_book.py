"""Local books and the feed handler, without sockets: the documented sequence rules and input accounting."""

from __future__ import annotations

import json
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from services.feed.book import APPLIED, BUFFERED, DUPLICATE, GAP, STALE_SNAPSHOT, BookSync
from services.feed.handler import FeedHandler
from shared.config import FeedSettings
from shared.messages import Book, Quote
from shared.venues import market_format
from shared.venues.common import DepthDiff, DepthSnapshot


class ReferenceVenue:
    """A venue's book as a plain dict with update ids, and its diff stream (one diff per change here)."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.bids: dict[float, float] = {100.0 - i: 1.0 + i for i in range(1, 6)}
        self.asks: dict[float, float] = {100.0 + i: 1.0 + i for i in range(1, 6)}
        self.id = 10

    def change(self) -> DepthDiff:
        """One update: a few levels set or removed (never crossing), id + 1."""
        self.id += 1
        bids, asks = [], []
        for _ in range(self.rng.randint(1, 3)):
            if self.rng.random() < 0.5:
                p = 100.0 - self.rng.randint(1, 8)
                q = 0.0 if self.rng.random() < 0.3 else float(self.rng.randint(1, 9))
                bids.append((p, q))
                self._set(self.bids, p, q)
            else:
                p = 100.0 + self.rng.randint(1, 8)
                q = 0.0 if self.rng.random() < 0.3 else float(self.rng.randint(1, 9))
                asks.append((p, q))
                self._set(self.asks, p, q)
        return DepthDiff("BTCUSDT", self.id, self.id, bids, asks)

    @staticmethod
    def _set(side: dict[float, float], p: float, q: float) -> None:
        if q:
            side[p] = q
        else:
            side.pop(p, None)

    def snapshot(self) -> DepthSnapshot:
        return DepthSnapshot(
            "BTCUSDT", self.id, sorted(self.bids.items(), reverse=True), sorted(self.asks.items())
        )

    def levels(self) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
        return sorted(self.bids.items(), reverse=True), sorted(self.asks.items())


def merge(diffs: list[DepthDiff]) -> DepthDiff:
    """What a 100 ms push of several changes looks like: one diff over the id range, final quantities."""
    bids: dict[float, float] = {}
    asks: dict[float, float] = {}
    for d in diffs:
        bids.update(d.bids)
        asks.update(d.asks)
    return DepthDiff("BTCUSDT", diffs[0].first_id, diffs[-1].last_id, list(bids.items()), list(asks.items()))


@settings(deadline=None, max_examples=60)
@given(seed=st.integers(0, 2**32), before=st.integers(0, 20), after=st.integers(1, 60), push=st.integers(1, 5))
def test_snapshot_and_buffered_diffs_rebuild_the_venue_book(seed: int, before: int, after: int, push: int) -> None:
    venue = ReferenceVenue(random.Random(seed))
    sync = BookSync()
    stream: list[DepthDiff] = []
    for _ in range(before):
        stream.append(venue.change())
    # the stream opens; diffs are buffered until the snapshot comes
    pending: list[DepthDiff] = [venue.change() for _ in range(push)]
    assert sync.on_diff(merge(pending)) == BUFFERED
    snap = venue.snapshot()
    for _ in range(after // push):
        batch = [venue.change() for _ in range(push)]
        d = merge(batch)
        if sync.live:
            assert sync.on_diff(d) == APPLIED
        else:
            sync.on_diff(d)
        if not sync.live:
            assert sync.on_snapshot(snap) == APPLIED
    if not sync.live:
        assert sync.on_snapshot(snap) == APPLIED
    assert sync.book.levels() == venue.levels()
    assert sync.last_id == venue.id


def test_gap_discards_the_book_and_a_new_snapshot_repairs_it() -> None:
    venue = ReferenceVenue(random.Random(1))
    sync = BookSync()
    assert sync.on_snapshot(venue.snapshot()) == APPLIED
    assert sync.on_diff(venue.change()) == APPLIED
    venue.change()  # lost on the way
    after_gap = venue.change()
    assert sync.on_diff(after_gap) == GAP
    assert not sync.live and sync.buffer == [after_gap]
    assert sync.on_diff(after_gap) == BUFFERED  # a duplicate while waiting is harmless
    snap = venue.snapshot()
    assert sync.on_snapshot(snap) == APPLIED
    assert sync.book.levels() == venue.levels()


def test_duplicates_from_an_overlapping_connection_are_ignored() -> None:
    venue = ReferenceVenue(random.Random(2))
    sync = BookSync()
    sync.on_snapshot(venue.snapshot())
    diffs = [venue.change() for _ in range(5)]
    for d in diffs:
        assert sync.on_diff(d) == APPLIED
    for d in diffs:  # the second connection of a roll delivers them again
        assert sync.on_diff(d) == DUPLICATE
    assert sync.book.levels() == venue.levels()


def test_a_snapshot_older_than_the_buffer_is_refused() -> None:
    venue = ReferenceVenue(random.Random(3))
    old = venue.snapshot()
    venue.change()
    sync = BookSync()
    sync.on_diff(venue.change())  # first buffered: id old+2, so old+1 is missing from both
    assert sync.on_snapshot(old) == STALE_SNAPSHOT
    assert not sync.live


# ----- the handler: counting every kind of bad input
TICKER = '{{"stream":"btcusdt@bookTicker","data":{{"u":{u},"s":"{s}","b":"1.5","B":"2","a":"1.6","A":"3"}}}}'


def handler(settings: FeedSettings | None = None) -> tuple[FeedHandler, list[str]]:
    requested: list[str] = []
    h = FeedHandler(0, "feed.binance", market_format("binance"), {"BTCUSDT": 0, "ETHUSDT": 1},
                    settings or FeedSettings(), requested.append)
    return h, requested


frames = st.lists(
    st.one_of(
        st.tuples(st.just("ticker"), st.integers(1, 40), st.sampled_from(["BTCUSDT", "ETHUSDT", "DOGEUSDT"])),
        st.tuples(st.just("garbage"), st.binary(max_size=40), st.just("")),
    ),
    max_size=80,
)


@settings(deadline=None, max_examples=200)
@given(frames=frames)
def test_random_frames_never_crash_and_every_one_is_counted(frames: list[tuple[str, object, str]]) -> None:
    h, _ = handler()
    expected = {"quotes": 0, "duplicates": 0, "out_of_order": 0, "unknown_symbol": 0}
    last: dict[str, int] = {}
    n_garbage = 0
    for kind, value, symbol in frames:
        if kind == "garbage":
            payload = b"\x00garbage" + value  # type: ignore[operator]
            n_garbage += 1
        else:
            u = value
            payload = TICKER.format(u=u, s=symbol).encode()
            if symbol == "DOGEUSDT":
                expected["unknown_symbol"] += 1
            elif u == last.get(symbol, 0):  # type: ignore[comparison-overlap]
                expected["duplicates"] += 1
            elif u < last.get(symbol, 0):  # type: ignore[operator]
                expected["out_of_order"] += 1
            else:
                expected["quotes"] += 1
                last[symbol] = u  # type: ignore[assignment]
        h.on_frame(payload, False, 1)
    c = h.counters()
    assert {k: c[k] for k in expected} == expected
    assert c["malformed"] == n_garbage
    assert c["frames"] == len(frames)
    out = h.take()
    assert len(out) == expected["quotes"] and all(isinstance(q, Quote) for q in out)


def depth_frame(first: int, last: int, bids: list[list[str]], asks: list[list[str]]) -> bytes:
    data = {"e": "depthUpdate", "E": 1, "s": "BTCUSDT", "U": first, "u": last, "b": bids, "a": asks}
    return json.dumps({"stream": "btcusdt@depth@100ms", "data": data}).encode()


def test_handler_asks_for_a_snapshot_once_diffs_buffer_and_publishes_books() -> None:
    h, requested = handler(FeedSettings(book_ticker=False, depth_levels=2))
    h.on_frame(depth_frame(11, 12, [["99", "1"]], []), False, 5)
    assert requested == ["BTCUSDT"]
    snapshot = b'{"lastUpdateId":11,"bids":[["99","4"],["98","2"],["97","1"]],"asks":[["101","3"]]}'
    h.on_snapshot("BTCUSDT", snapshot, 6)
    out = h.take()
    assert out == [
        Book(0, 0, 12, [99.0, 98.0], [1.0, 2.0], [101.0], [3.0], 6),
        Quote(0, 0, 99.0, 1.0, 101.0, 3.0, 12, 6),  # no bookTicker stream: quotes come from the book
    ]
    h.on_frame(depth_frame(14, 14, [], []), False, 7)  # 13 never came
    c = h.counters()
    assert c["gaps"] == 1 and c["resyncs"] == 1 and requested == ["BTCUSDT", "BTCUSDT"]
    assert h.book_levels("BTCUSDT") is None
