"""What a feed does with its input, without sockets: parse, drop duplicates, keep books, batch outputs.

The live feed, ``draizer replay`` and the benchmark all drive this one class with the same calls
(``on_frame``, ``on_snapshot``), so a recorded session replays through exactly the code that ran live.
Outputs collect in ``pending`` until ``take`` hands them to the publisher as one batch.

Every input is accounted for: each bad or redundant input is counted by kind and logged once with its
context; the handler never raises on venue input.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

from services.feed.book import APPLIED, BUFFERED, CROSSED, DUPLICATE, GAP, IGNORED, STALE_SNAPSHOT, BookSync
from shared.config import FeedSettings
from shared.errors import ProtocolError
from shared.messages import Book, Funding, MarketItem, Quote
from shared.venues.common import (
    CHANNEL_DEPTH,
    CHANNEL_FUNDING,
    CHANNEL_TICKER,
    NOTICE_SHUTDOWN,
    DepthDiff,
    DepthSnapshot,
    FundingUpdate,
    MarketFormat,
    TopOfBook,
)

log = logging.getLogger(__name__)

# What one frame was, for the connection that received it.
FRAME_DATA = 0
FRAME_CONTROL = 1
FRAME_BAD = 2
FRAME_SHUTDOWN = 3
FRAME_PONG = 4

COUNTER_NAMES = (
    "frames", "quotes", "books", "funding", "control_frames", "malformed", "unknown_symbol",
    "duplicates", "out_of_order", "gaps", "crossed", "resyncs", "snapshots", "stale_snapshots",
    "bad_snapshots", "buffer_overflow",
)


class FeedHandler:
    def __init__(
        self,
        venue_id: int,
        venue_name: str,
        fmt: MarketFormat,
        symbol_ids: Mapping[str, int],  # venue's wire symbol -> registry symbol id
        settings: FeedSettings,
        request_snapshot: Callable[[str], None],
    ) -> None:
        self.venue_id = venue_id
        self.name = venue_name
        self.fmt = fmt
        self.symbol_ids = dict(symbol_ids)
        self.settings = settings
        self.request_snapshot = request_snapshot
        self.depth_levels = settings.depth_levels
        self.quotes_from_book = not settings.book_ticker
        self.diff_books = settings.depth == "diff" and fmt.snapshots
        self.pending: list[MarketItem] = []
        self.counts = dict.fromkeys(COUNTER_NAMES, 0)
        self.last_seq: dict[str, int] = {}  # ticker update id per wire symbol
        self.last_funding_ms: dict[str, int] = {}
        self.syncs: dict[str, BookSync] = {s: BookSync() for s in self.symbol_ids} if self.diff_books else {}
        self.partial_ids: dict[str, int] = {}
        # When each channel kind last carried data for a symbol (monotonic ns): the staleness watchdog reads it.
        self.last_rx: dict[str, dict[str, int]] = {
            CHANNEL_TICKER: {}, CHANNEL_DEPTH: {}, CHANNEL_FUNDING: {}
        }
        self.latest: dict[int, tuple[float, float]] = {}  # symbol id -> (bid, ask)
        self.funding_latest: dict[int, tuple[float, int]] = {}  # symbol id -> (rate, next funding ms)
        self._logged: set[str] = set()

    # ----- input
    def on_frame(self, payload: bytes, binary: bool, tick_ns: int) -> int:
        """One WebSocket text or binary frame; returns what it was (``FRAME_*``) for the connection."""
        c = self.counts
        c["frames"] += 1
        try:
            event = self.fmt.parse(payload, binary)
        except ProtocolError as exc:
            c["malformed"] += 1
            self._log_once("malformed", "malformed frame (%s): %r", exc, payload[:160])
            return FRAME_BAD
        if event is None:
            c["control_frames"] += 1
            return FRAME_CONTROL
        kind = type(event)
        if kind is TopOfBook:
            self._on_top(event, tick_ns)  # type: ignore[arg-type]
        elif kind is DepthDiff:
            self._on_diff(event, tick_ns)  # type: ignore[arg-type]
        elif kind is DepthSnapshot:
            self._on_partial(event, tick_ns)  # type: ignore[arg-type]
        elif kind is FundingUpdate:
            self._on_funding(event, tick_ns)  # type: ignore[arg-type]
        else:
            c["control_frames"] += 1
            return FRAME_SHUTDOWN if event.kind == NOTICE_SHUTDOWN else FRAME_PONG  # type: ignore[union-attr]
        return FRAME_DATA

    def on_snapshot(self, symbol: str, body: bytes, tick_ns: int) -> None:
        """The REST depth snapshot's body for ``symbol``."""
        sync = self.syncs.get(symbol)
        if sync is None:
            return
        try:
            snap = self.fmt.parse_snapshot(symbol, body)
        except ProtocolError as exc:
            self.counts["bad_snapshots"] += 1
            self._log_once(f"snapshot:{symbol}", "unreadable depth snapshot (%s); asking again", exc)
            self.request_snapshot(symbol)
            return
        self.counts["snapshots"] += 1
        outcome = sync.on_snapshot(snap)
        if outcome == IGNORED:
            return
        if outcome == STALE_SNAPSHOT:
            self.counts["stale_snapshots"] += 1
            self.request_snapshot(symbol)
            return
        if outcome in (GAP, CROSSED):
            self._resync(symbol, outcome, snap.last_id)
            if outcome == GAP:
                self.request_snapshot(symbol)
            return
        self._publish_book(symbol, sync, tick_ns)

    # ----- per event kind
    def _symbol_id(self, symbol: str) -> int | None:
        sid = self.symbol_ids.get(symbol)
        if sid is None:
            self.counts["unknown_symbol"] += 1
            self._log_once(f"unknown:{symbol}", "update for unconfigured symbol %s", symbol)
        return sid

    def _on_top(self, t: TopOfBook, tick_ns: int) -> None:
        sid = self._symbol_id(t.symbol)
        if sid is None:
            return
        self.last_rx[CHANNEL_TICKER][t.symbol] = tick_ns
        last = self.last_seq.get(t.symbol, 0)
        if t.seq and t.seq <= last:
            # Overlapping connections (a roll) deliver the same update twice; older ones are out of order.
            self.counts["duplicates" if t.seq == last else "out_of_order"] += 1
            return
        self.last_seq[t.symbol] = t.seq
        self.pending.append(Quote(self.venue_id, sid, t.bid, t.bid_qty, t.ask, t.ask_qty, t.seq, tick_ns))
        self.latest[sid] = (t.bid, t.ask)
        self.counts["quotes"] += 1

    def _on_diff(self, d: DepthDiff, tick_ns: int) -> None:
        sync = self.syncs.get(d.symbol)
        if sync is None:
            self._symbol_id(d.symbol)  # counts it as unknown
            return
        self.last_rx[CHANNEL_DEPTH][d.symbol] = tick_ns
        outcome = sync.on_diff(d)
        if outcome == BUFFERED:
            if len(sync.buffer) == 1:
                # The stream is open and buffering: a snapshot taken now overlaps what is buffered.
                self.request_snapshot(d.symbol)
        elif outcome == APPLIED:
            self._publish_book(d.symbol, sync, tick_ns)
        elif outcome == DUPLICATE:
            self.counts["duplicates"] += 1
        elif outcome in (GAP, CROSSED):
            self._resync(d.symbol, outcome, d.first_id)
            if outcome == GAP:
                self.request_snapshot(d.symbol)  # the diff after the gap is buffered already

    def _on_partial(self, snap: DepthSnapshot, tick_ns: int) -> None:
        sid = self._symbol_id(snap.symbol)
        if sid is None:
            return
        self.last_rx[CHANNEL_DEPTH][snap.symbol] = tick_ns
        last = self.partial_ids.get(snap.symbol, 0)
        if snap.last_id <= last:
            self.counts["duplicates" if snap.last_id == last else "out_of_order"] += 1
            return
        self.partial_ids[snap.symbol] = snap.last_id
        n = self.depth_levels
        bids, asks = snap.bids[:n], snap.asks[:n]
        self.pending.append(Book(
            self.venue_id, sid, snap.last_id,
            [p for p, _ in bids], [q for _, q in bids], [p for p, _ in asks], [q for _, q in asks], tick_ns,
        ))
        self.counts["books"] += 1
        if self.quotes_from_book and bids and asks:
            self._quote_from(sid, snap.last_id, bids[0], asks[0], tick_ns)

    def _on_funding(self, f: FundingUpdate, tick_ns: int) -> None:
        sid = self._symbol_id(f.symbol)
        if sid is None:
            return
        self.last_rx[CHANNEL_FUNDING][f.symbol] = tick_ns
        last = self.last_funding_ms.get(f.symbol, 0)
        if f.event_ms and f.event_ms <= last:
            self.counts["duplicates" if f.event_ms == last else "out_of_order"] += 1
            return
        self.last_funding_ms[f.symbol] = f.event_ms
        self.pending.append(Funding(
            self.venue_id, sid, f.rate, f.next_funding_ms, f.mark_price, f.event_ms, tick_ns
        ))
        self.funding_latest[sid] = (f.rate, f.next_funding_ms)
        self.counts["funding"] += 1

    # ----- books
    def _publish_book(self, symbol: str, sync: BookSync, tick_ns: int) -> None:
        sid = self.symbol_ids[symbol]
        top = sync.book.top(self.depth_levels)
        self.pending.append(Book(
            self.venue_id, sid, sync.last_id, top.bid_px, top.bid_qty, top.ask_px, top.ask_qty, tick_ns
        ))
        self.counts["books"] += 1
        if self.quotes_from_book and top.bid_px and top.ask_px:
            self._quote_from(
                sid, sync.last_id, (top.bid_px[0], top.bid_qty[0]), (top.ask_px[0], top.ask_qty[0]), tick_ns
            )

    def _quote_from(
        self, sid: int, seq: int, bid: tuple[float, float], ask: tuple[float, float], tick_ns: int
    ) -> None:
        self.pending.append(Quote(self.venue_id, sid, bid[0], bid[1], ask[0], ask[1], seq, tick_ns))
        self.latest[sid] = (bid[0], ask[0])
        self.counts["quotes"] += 1

    def _resync(self, symbol: str, why: str, at_id: int) -> None:
        self.counts["gaps" if why == GAP else "crossed"] += 1
        self.counts["resyncs"] += 1
        self._log_once(f"{why}:{symbol}", "%s book %s at update %d: discarded, re-snapshotting", symbol, why, at_id)

    def resync(self, symbol: str) -> None:
        """Start a book over (the watchdog found its stream silent)."""
        sync = self.syncs.get(symbol)
        if sync is not None and sync.live:
            sync.reset()
            self.counts["resyncs"] += 1

    # ----- output
    def counters(self) -> dict[str, int]:
        self.counts["buffer_overflow"] = sum(s.overflowed for s in self.syncs.values())
        return dict(self.counts)

    def take(self) -> list[MarketItem]:
        out, self.pending = self.pending, []
        return out

    def books_live(self) -> int:
        if self.syncs:
            return sum(1 for s in self.syncs.values() if s.live)
        return len(self.partial_ids)

    def book_levels(self, symbol: str) -> tuple[int, list[tuple[float, float]], list[tuple[float, float]]] | None:
        """(update id, every bid, every ask) of a live diff book; None while it syncs."""
        sync = self.syncs.get(symbol)
        if sync is None or not sync.live:
            return None
        bids, asks = sync.book.levels()
        return sync.last_id, bids, asks

    def _log_once(self, key: str, fmt: str, *args: object) -> None:
        if key not in self._logged:
            self._logged.add(key)
            log.warning("%s: " + fmt + " (further ones only counted)", self.name, *args)
