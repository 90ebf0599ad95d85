"""The simulated exchange: one process serving every configured sim venue's WebSocket and REST API.

One seeded price model feeds every venue. A timer wakes about every millisecond and emits the quotes
that are due at ``quotes_per_second``; each quote updates that venue's book (what orders trade against)
and goes to that venue's subscribers at once. A sim that falls more than a batch behind (a stalled
loop) skips ahead instead of bursting, and counts what it skipped.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Mapping
from types import TracebackType
from typing import Any

from services.sim.book import VenueBook
from services.sim.dialect import Dialect
from services.sim.dialect_binance import BinanceDialect
from services.sim.dialect_mexc import MexcDialect
from services.sim.market import PriceModel
from services.sim.rest import VenueRest
from services.sim.units import SymbolSpec
from services.sim.ws_binance import BinanceStreamServer
from services.sim.ws_common import StreamServer
from services.sim.ws_mexc import MexcStreamServer
from shared.config import Config, SimVenue, Venue
from shared.errors import ConfigError
from shared.venues.common import TopOfBook

log = logging.getLogger(__name__)

TIMER_S = 0.001
MAX_BATCH_S = 0.05  # at most this much of the rate is emitted in one wake-up

Credentials = Mapping[str, tuple[str, str]]  # venue name -> (api key, secret)


class SimulatedVenue:
    """One venue's book, market-data server and REST API."""

    def __init__(self, venue: Venue, sv: SimVenue, cfg: Config, specs: list[SymbolSpec], creds: dict[str, str]):
        self.venue = venue
        self.sim_venue = sv
        dialect: Dialect
        stream: StreamServer
        if venue.kind == "binance":
            dialect, stream = BinanceDialect(), BinanceStreamServer(venue.name, specs)
        else:
            dialect, stream = MexcDialect(), MexcStreamServer(venue.name, specs)
        self.stream = stream
        self.book = VenueBook(
            specs,
            venue.taker_fee,
            cfg.sim.starting_balance_usd,
            commission_in_base_on_buy=dialect.commission_in_base_on_buy,
            status_names=dialect.status_names,
        )
        self.rest = VenueRest(venue, dialect, self.book, creds, sv.latency_ms, self.stats)

    def stats(self) -> dict[str, Any]:
        specs = self.book.specs
        return {
            "venue": self.venue.name,
            "kind": self.venue.kind,
            "quotes": {s.name: n for s, n in zip(specs, self.book.quotes, strict=True)},
            "frames": {s.name: n for s, n in zip(specs, self.stream.frames, strict=True)},
            "dropped": self.stream.dropped,
            "connections": len(self.stream.connections),
            "orders": self.book.orders,
            "fills": self.book.fills,
            "rejects": self.book.rejects,
        }


def credentials_from_env(cfg: Config) -> dict[str, tuple[str, str]]:
    """The key and secret each venue accepts, from the variables its config names (never from files)."""
    out: dict[str, tuple[str, str]] = {}
    for v in cfg.venues:
        key, secret = os.environ.get(v.api_key_env, ""), os.environ.get(v.api_secret_env, "")
        if key and secret:
            out[v.name] = (key, secret)
    return out


class Simulator:
    """Start with ``await sim.start()`` (or ``async with Simulator(cfg, creds) as sim``)."""

    def __init__(self, cfg: Config, credentials: Credentials | None = None, *, emit_quotes: bool = True) -> None:
        """``credentials`` default to the environment; ``emit_quotes=False`` leaves the timer off, so a
        test moves the market itself with ``emit(n)`` and knows exactly what an order will meet."""
        self.cfg = cfg
        self.emit_quotes = emit_quotes
        creds = credentials_from_env(cfg) if credentials is None else dict(credentials)
        by_name = {v.name: v for v in cfg.venues}
        self.specs = [SymbolSpec.of(s) for s in cfg.symbols]
        self.venues: list[SimulatedVenue] = []
        for sv in cfg.sim.venues:
            venue = by_name.get(sv.venue)
            if venue is None:
                raise ConfigError(f"sim.venues: unknown venue {sv.venue!r}")
            key_secret = creds.get(venue.name)
            if key_secret is None:
                log.warning("sim %s: no API key in %s/%s; orders will be refused",
                            venue.name, venue.api_key_env, venue.api_secret_env)
            accepted = {key_secret[0]: key_secret[1]} if key_secret else {}
            self.venues.append(SimulatedVenue(venue, sv, cfg, self.specs, accepted))
        self._by_name = {v.venue.name: v for v in self.venues}
        self.model = PriceModel(cfg.sim, self.specs, [v.sim_venue.spread_bps for v in self.venues])
        self._task: asyncio.Task[None] | None = None
        self.emitted = 0
        self.skipped = 0

    async def start(self) -> None:
        host = self.cfg.sim.host
        try:
            for v in self.venues:
                ws = await v.stream.start(host, v.sim_venue.ws_port)
                rest = await v.rest.start(host, v.sim_venue.rest_port)
                log.info("sim %s (%s): ws://%s:%d rest http://%s:%d", v.venue.name, v.venue.kind, host, ws, host, rest)
        except BaseException:
            await self.stop()
            raise
        if self.venues and self.emit_quotes:
            self._task = asyncio.get_running_loop().create_task(self._emit_loop(), name="sim.emit")
            self._task.add_done_callback(_report_crash)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.wait([self._task])
            self._task = None
        for v in self.venues:
            await v.stream.stop()
            await v.rest.stop()

    async def __aenter__(self) -> Simulator:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    # ----- lookups for tests and tools
    def venue(self, name: str) -> SimulatedVenue:
        return self._by_name[name]

    def ws_url(self, name: str) -> str:
        v = self._by_name[name]
        path = "/stream" if v.venue.kind == "binance" else "/ws"
        return f"ws://{self.cfg.sim.host}:{v.stream.port}{path}"

    def rest_url(self, name: str) -> str:
        return f"http://{self.cfg.sim.host}:{self._by_name[name].rest.port}"

    def top_of_book(self, venue: str, symbol: str) -> TopOfBook | None:
        v = self._by_name[venue]
        s = v.book.index[symbol]
        q = v.book.top(s)
        if q is None:
            return None
        spec = self.specs[s]
        return TopOfBook(
            symbol, float(spec.price(q.bid)), float(spec.qty(q.bid_qty)),
            float(spec.price(q.ask)), float(spec.qty(q.ask_qty)), q.seq,
        )

    def stats(self) -> dict[str, Any]:
        return {"emitted": self.emitted, "skipped": self.skipped, "venues": [v.stats() for v in self.venues]}

    # ----- emission
    def emit(self, n: int) -> None:
        """Produce the next ``n`` quotes: update each venue's book and send to its subscribers."""
        model, venues = self.model, self.venues
        books = [v.book for v in venues]
        streams = [v.stream for v in venues]
        for _ in range(n):
            q = model.next_quote()
            books[q.venue].update(q)
            streams[q.venue].publish(q)
        self.emitted += n

    async def _emit_loop(self) -> None:
        loop = asyncio.get_running_loop()
        rate = self.cfg.sim.quotes_per_second
        max_batch = max(1, int(rate * MAX_BATCH_S))
        start = loop.time()
        due_total = 0
        while True:
            await asyncio.sleep(TIMER_S)  # pacing timer, not synchronization
            target = int((loop.time() - start) * rate)
            due = target - due_total
            due_total = target
            if due > max_batch:
                self.skipped += due - max_batch
                due = max_batch
            if due > 0:
                self.emit(due)


def _report_crash(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("sim emission stopped", exc_info=task.exception())


async def run_sim(cfg: Config, stop: asyncio.Event) -> None:
    async with Simulator(cfg):
        await stop.wait()
