"""The feed against the simulated venues over real sockets: exact books, funding, every fault recovered.

The sim's timer is off: a driver task moves the market and pushes depth, so a test can stop the market,
let the last pushes arrive, and compare the feed's whole local book with the simulator's, level by level
and update id by update id.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
import zmq

from services.feed.service import Feed
from services.sim.app import Simulator
from shared.codec import market_data_codec
from shared.config import Config, parse_config
from shared.messages import Book, Funding, Quote
from shared.runtime.host import ProcessContext
from tests.conftest import eventually_async, make_config_dict
from tests.sim_kit import CREDS

SYMBOLS = 6
RECOVER_S = 5.0  # the bound for every fault


def configs(run_dir: Path, **feed: Any) -> dict[str, Any]:
    data = make_config_dict(run_dir)
    data["symbols"] = data["symbols"][:SYMBOLS]
    for sv in data["sim"]["venues"]:
        sv["ws_port"] = sv["rest_port"] = 0
    settings = {"stale_after_s": 1.5, "pong_timeout_s": 0.75, **feed}
    for v in data["venues"]:
        v["feed"] = dict(settings)
    return data


def feed_config(data: dict[str, Any], sim: Simulator) -> Config:
    for v in data["venues"]:
        v["ws_url"] = sim.ws_url(v["name"])
        v["rest_url"] = sim.rest_url(v["name"])
    return parse_config(msgspec.toml.encode(data))


class Driver:
    """Moves the simulated market: a few quotes every few ms, depth pushed every 20 ms."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self.sim.flush_depth()

    async def _run(self) -> None:
        n = 0
        while True:
            self.sim.emit(4)
            n += 1
            if n % 4 == 0:
                self.sim.flush_depth()
            if n % 50 == 0:
                self.sim.push_funding()
            await asyncio.sleep(0.005)  # market pacing


@contextlib.asynccontextmanager
async def market(
    run_dir: Path, per_venue: dict[str, dict[str, Any]] | None = None, **feed: Any
) -> AsyncIterator[tuple[Simulator, dict[str, Any], Driver]]:
    data = configs(run_dir, **feed)
    for v in data["venues"]:
        v["feed"].update((per_venue or {}).get(v["name"], {}))
    sim = Simulator(parse_config(msgspec.toml.encode(data)), CREDS, emit_quotes=False)
    await sim.start()
    driver = Driver(sim)
    driver.start()
    try:
        yield sim, data, driver
    finally:
        await driver.stop()
        await sim.stop()


@contextlib.asynccontextmanager
async def running_feed(cfg: Config, venue: str) -> AsyncIterator[tuple[Feed, list[Any]]]:
    ctx = ProcessContext(cfg, Path(cfg.runtime.run_dir))
    feed = Feed(ctx, venue)
    sub = ctx.zmq.socket(zmq.SUB)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    sub.linger = 0
    sub.connect(ctx.endpoints.market_data(venue))
    received: list[Any] = []
    codec = market_data_codec()

    async def collect() -> None:
        while True:
            while True:
                try:
                    _topic, payload = sub.recv_multipart(zmq.NOBLOCK)
                except zmq.Again:
                    break
                received.extend(codec.decode(payload).items)
            await asyncio.sleep(0.01)  # polling the test's subscriber

    collector = asyncio.get_running_loop().create_task(collect())
    await feed.start()
    try:
        yield feed, received
    finally:
        collector.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await collector
        await feed.stop()
        feed.close()
        sub.close(0)


def books_match(feed: Feed, sim: Simulator, venue: str) -> bool:
    for wire in feed.wire_symbols:
        ours = feed.handler.book_levels(wire)
        if ours is None:
            return False
        uid, bids, asks = sim.book_levels(venue, wire)
        theirs = (uid, [(float(p), float(q)) for p, q in bids], [(float(p), float(q)) for p, q in asks])
        if ours != theirs:
            return False
    return True


async def settle_and_compare(feed: Feed, sim: Simulator, driver: Driver, venue: str) -> None:
    await driver.stop()
    await eventually_async(lambda: books_match(feed, sim, venue), RECOVER_S * 2, f"{venue} books equal the sim's")


async def recovered(feed: Feed, what: str, check: Any) -> float:
    """Seconds until ``check`` holds and every book is live on data received after ``check`` first held (a
    book that merely has not heard of its loss yet does not count: a fault may act seconds after it is
    injected, and a diff lost in a reconnect only shows as a gap when the next one arrives); fails beyond
    RECOVER_S."""
    t0 = time.monotonic()
    depth_rx = feed.handler.last_rx["depth"]
    noticed_ns = 0

    def done() -> bool:
        nonlocal noticed_ns
        if not noticed_ns:
            if not check():
                return False
            noticed_ns = time.monotonic_ns()
        fresh = all(depth_rx.get(s, 0) > noticed_ns for s in feed.wire_symbols)
        live = feed.handler.books_live() == len(feed.wire_symbols)
        return fresh and live and not feed.stale_channels()

    await eventually_async(done, RECOVER_S, what)
    return time.monotonic() - t0


@pytest.mark.parametrize("venue", ["binance", "mexc"])
async def test_books_equal_the_venue_in_steady_state(run_dir: Path, venue: str) -> None:
    async with market(run_dir) as (sim, data, driver), running_feed(feed_config(data, sim), venue) as (feed, out):
        await eventually_async(lambda: feed.handler.books_live() == SYMBOLS, 10, "all books live")
        await eventually_async(lambda: feed.counters()["books"] > 200, 10, "book updates")
        c = feed.counters()
        assert c["gaps"] == 0 and c["malformed"] == 0 and c["resyncs"] == 0
        assert feed.stale_channels() == []
        await settle_and_compare(feed, sim, driver, venue)
        kinds = {type(x) for x in out}
        assert kinds == {Quote, Book}
        last_book = [x for x in out if isinstance(x, Book)][-1]
        assert len(last_book.bid_px) == data["venues"][0]["feed"].get("depth_levels", 10)
        assert last_book.bid_px == sorted(last_book.bid_px, reverse=True) and last_book.bid_px[0] < last_book.ask_px[0]


@pytest.mark.parametrize("venue", ["binance_perp", "mexc_perp"])
async def test_funding_feeds_deliver_each_perp_symbol(run_dir: Path, venue: str) -> None:
    async with market(run_dir) as (sim, data, _driver), running_feed(feed_config(data, sim), venue) as (feed, out):
        await eventually_async(lambda: len(feed.handler.funding_latest) == SYMBOLS, 10, "funding for every symbol")
        await eventually_async(lambda: any(isinstance(x, Funding) for x in out), 10, "funding published")
        fundings = [x for x in out if isinstance(x, Funding)]
        # The next settlement is after the push that announced it (not after "now": the simulator's periods are
        # short, and one can pass between the push and this check).
        assert fundings and all(-0.01 < f.rate < 0.01 and f.next_funding_ms > f.event_ms > 0 for f in fundings)
        wire, sid = next(iter(feed.wire_symbols.items()))
        rate_text, next_ms, _mark = sim.funding(venue, "BTCUSDT")
        assert feed.handler.funding_latest[feed.wire_symbols[wire]][1] == next_ms
        assert abs(feed.handler.funding_latest[sid][0] - float(rate_text)) < 1e-7
        assert feed.counters()["malformed"] == 0


FAULTS = [
    ("drop", {}, lambda c0, c: c["connects"] > c0["connects"]),
    ("stall", {"seconds": 30.0}, lambda c0, c: c["stalls"] > c0["stalls"]),
    ("gap", {}, lambda c0, c: c["gaps"] > c0["gaps"]),
    ("malformed", {}, lambda c0, c: c["malformed"] > c0["malformed"]),
    ("shutdown", {"seconds": 3.0}, lambda c0, c: c["connects"] > c0["connects"]),
    ("ping_silence", {"seconds": 30.0}, lambda c0, c: c["connects"] > c0["connects"]),
    ("slow_consumer", {"seconds": 0.5}, lambda c0, c: c["gaps"] > c0["gaps"]),
]


@pytest.mark.parametrize("venue", ["binance", "mexc"])
@pytest.mark.parametrize(("fault", "args", "noticed"), FAULTS, ids=[f[0] for f in FAULTS])
async def test_each_fault_recovers_and_books_equal_the_venue(
    run_dir: Path, venue: str, fault: str, args: dict[str, Any], noticed: Any
) -> None:
    async with market(run_dir) as (sim, data, driver), running_feed(feed_config(data, sim), venue) as (feed, _):
        await eventually_async(lambda: feed.handler.books_live() == SYMBOLS, 10, "all books live")
        before = feed.counters()
        sim.inject(venue, fault, **args)
        took = await recovered(feed, f"recovery from {fault}", lambda: noticed(before, feed.counters()))
        assert took < RECOVER_S
        await settle_and_compare(feed, sim, driver, venue)


@pytest.mark.parametrize("venue", ["binance", "mexc"])
async def test_connections_roll_over_before_their_lifetime_without_losing_an_update(
    run_dir: Path, venue: str
) -> None:
    async with market(run_dir, connection_max_age_s=1.5) as (sim, data, driver), \
            running_feed(feed_config(data, sim), venue) as (feed, _):
        await eventually_async(lambda: feed.counters()["rolls"] >= 3, 20, "three rollovers")
        c = feed.counters()
        assert c["gaps"] == 0 and c["resyncs"] == 0 and c["duplicates"] > 0  # overlap seen, nothing lost
        await settle_and_compare(feed, sim, driver, venue)


async def test_binance_control_messages_respect_five_per_second(run_dir: Path) -> None:
    """A burst of control messages leaves paced, so the venue's 5 messages/s cut never trips."""
    async with market(run_dir) as (sim, data, _driver), \
            running_feed(feed_config(data, sim), "binance") as (feed, _):
        await eventually_async(lambda: feed.handler.books_live() == SYMBOLS, 10, "all books live")
        shard = feed.shards[0]
        conn = shard.active
        assert conn is not None
        before = feed.counters()
        t0 = time.monotonic()
        for ch in shard.channels[:12]:
            conn.send_control(feed.fmt.subscribe_frames([ch])[0])  # resubscribing is harmless
        await eventually_async(lambda: feed.counters()["control_sent"] - before["control_sent"] >= 12, 10, "sent")
        assert time.monotonic() - t0 >= 11 / feed.venue.feed.control_messages_per_s * 0.95
        binance = next(v for v in sim.stats()["venues"] if v["venue"] == "binance")
        assert binance["rate_disconnects"] == 0
        assert feed.counters()["connects"] == before["connects"] and conn.alive


async def test_binance_partial_depth_books_equal_the_venue_top(run_dir: Path) -> None:
    """``depth = "partial"``: no snapshot, no diff chain; each push is the top N, published as it is."""
    partial = {"binance": {"depth": "partial", "depth_levels": 5}}
    async with market(run_dir, partial) as (sim, data, driver), \
            running_feed(feed_config(data, sim), "binance") as (feed, out):
        await eventually_async(lambda: feed.handler.books_live() == SYMBOLS, 10, "a partial book per symbol")
        await driver.stop()
        # after the last push, each symbol's newest Book is the sim's top 5
        def tops_match() -> bool:
            latest = {b.symbol: b for b in out if isinstance(b, Book)}
            for wire, sid in feed.wire_symbols.items():
                uid, bids, asks = sim.book_levels("binance", wire)
                b = latest.get(sid)
                if b is None or b.seq != uid:
                    return False
                if (b.bid_px, b.bid_qty) != ([float(p) for p, _ in bids[:5]], [float(q) for _, q in bids[:5]]):
                    return False
                if (b.ask_px, b.ask_qty) != ([float(p) for p, _ in asks[:5]], [float(q) for _, q in asks[:5]]):
                    return False
            return True

        await eventually_async(tops_match, 10, "partial books equal the sim's top 5")
        assert feed.counters()["snapshot_requests"] == 0
