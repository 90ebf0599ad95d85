"""The simulated exchange: one process serving every configured sim venue's WebSocket and REST API.

One seeded price model feeds every spot venue. A timer wakes about every millisecond and emits the quotes that
are due at ``quotes_per_second``; each quote is one change of that venue's L2 book (and of its matching book)
and goes to that venue's bookTicker subscribers at once. The same timer ends the depth aggregation intervals
(10/100/1000 ms: pending diffs are pushed), the funding push interval (perp venues push funding and mark
price) and the funding boundaries of ``funding_period_s`` (perp accounts pay or receive funding at the rate
and mark last pushed: ``funding_clock``, ``perp_account``). A sim that falls more than a batch behind (a
stalled loop) skips ahead instead of bursting, and counts what it skipped. Faults are injected at runtime:
market-data faults with ``inject``, order faults (rejects, 5xx after acceptance, rate limiting, slow and
partial fills) with ``inject_order_fault``. Orders walk each venue's L2 book; what they take is one more book
change, so a quote's update id (bookTicker ``u``, MEXC ``version``) is the depth book's id after the quote is
applied.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Mapping
from decimal import Decimal
from types import TracebackType
from typing import Any

from services.sim import faults
from services.sim.faults import Fault, FaultError
from services.sim.funding_clock import FundingClock
from services.sim.market import PriceModel
from services.sim.order_faults import OrderFault
from services.sim.perp import FundingModel
from services.sim.perp_account import account_listing
from services.sim.rate_limits import SimRateLimits
from services.sim.rest_common import SimHooks, now_ms
from services.sim.units import USD_ASSETS, SymbolSpec
from services.sim.venues import PerpVenue, SimulatedVenue, SpotVenue
from shared.config import Config
from shared.errors import ConfigError
from shared.venues.common import TopOfBook
from shared.venues.kinds import kind_of

log = logging.getLogger(__name__)

TIMER_S = 0.001
MAX_BATCH_S = 0.05  # at most this much of the rate is emitted in one wake-up

Credentials = Mapping[str, tuple[str, str]]  # venue name -> (api key, secret)


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

    def __init__(
        self,
        cfg: Config,
        credentials: Credentials | None = None,
        *,
        emit_quotes: bool = True,
        rate_limits: Mapping[str, SimRateLimits] | None = None,
    ) -> None:
        """``credentials`` default to the environment; ``emit_quotes=False`` leaves the timer off, so a
        test moves the market itself with ``emit(n)``, ``flush_depth()`` and ``push_funding()``.
        ``rate_limits``: per venue name, REST limits smaller than the documented ones (tests)."""
        self.cfg = cfg
        self.emit_quotes = emit_quotes
        creds = credentials_from_env(cfg) if credentials is None else dict(credentials)
        by_name = {v.name: v for v in cfg.venues}
        self.specs = SymbolSpec.all_of(cfg.symbols)
        self.funding_model = FundingModel(cfg.sim, len(self.specs))
        self.venues: list[SimulatedVenue] = []
        self.spot: list[SpotVenue] = []
        self.perp: list[PerpVenue] = []
        for sv in cfg.sim.venues:
            venue = by_name.get(sv.venue)
            if venue is None:
                raise ConfigError(f"sim.venues: unknown venue {sv.venue!r}")
            hooks = self._hooks(venue.name)
            v: SimulatedVenue
            key_secret = creds.get(venue.name)
            accepted = {key_secret[0]: key_secret[1]} if key_secret else {}
            if kind_of(venue.kind).perp:
                v = PerpVenue(venue, sv, cfg, self.specs, len(self.perp), self.funding_model, self._mid, hooks,
                              accepted)
                self.perp.append(v)
            else:
                if key_secret is None:
                    log.warning("sim %s: no API key in %s/%s; orders will be refused",
                                venue.name, venue.api_key_env, venue.api_secret_env)
                limits = (rate_limits or {}).get(venue.name)
                v = SpotVenue(venue, sv, cfg, self.specs, accepted, hooks, limits)
                self.spot.append(v)
            self.venues.append(v)
        self._by_name = {v.venue.name: v for v in self.venues}
        self.model = PriceModel(
            cfg.sim, self.specs, [v.sim_venue.spread_bps for v in self.spot], [v.listed for v in self.spot]
        )
        self.funding_clock = FundingClock(cfg.sim.funding_period_s, now_ms())
        self._task: asyncio.Task[None] | None = None
        self.emitted = 0
        self.skipped = 0
        self.funding_ticks = 0

    def _mid(self, symbol: int) -> float:
        return self.model.mid(symbol)

    def _hooks(self, venue: str) -> SimHooks:
        """What the venue's REST port offers besides the venue API: its stats and fault injection."""

        def stats() -> dict[str, Any]:
            return self._by_name[venue].stats()

        def inject(kind: str, symbol: str | None, seconds: float | None) -> None:
            self.inject(venue, kind, symbol=symbol, seconds=seconds)

        def marks() -> dict[str, Decimal]:
            return self.marks(venue)

        return SimHooks(stats, inject, marks)  # only a spot venue's REST serves /sim/marks

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
    def venue(self, name: str) -> Any:
        """The venue called ``name`` (a ``SpotVenue`` or ``PerpVenue``)."""
        return self._by_name[name]

    def ws_url(self, name: str) -> str:
        v = self._by_name[name]
        return f"ws://{self.cfg.sim.host}:{v.stream.port}{v.kind.ws_path}"

    def rest_url(self, name: str) -> str:
        return f"http://{self.cfg.sim.host}:{self._by_name[name].rest.port}"

    def ws_api_url(self, name: str) -> str:
        """The venue's WebSocket API (user data: Binance's) on the venue's WebSocket port."""
        v = self._by_name[name]
        if not isinstance(v, SpotVenue) or v.user_streams is None or v.kind.user_stream is None:
            raise KeyError(f"{name} serves no WebSocket API")
        return f"ws://{self.cfg.sim.host}:{v.stream.port}{v.kind.user_stream.ws_path}"

    def user_ws_url(self, name: str) -> str:
        """The venue's private user-data WebSocket base (MEXC: ``/ws``, a listen key is added), on its WS port."""
        v = self._by_name[name]
        if not isinstance(v, SpotVenue) or v.user_data is None or v.kind.listen_key_stream is None:
            raise KeyError(f"{name} serves no listen-key user stream")
        return f"ws://{self.cfg.sim.host}:{v.stream.port}{v.kind.listen_key_stream.ws_path}"

    def balances(self, venue: str, api_key: str) -> dict[str, Decimal]:
        """Every asset of the account, total (free + locked)."""
        v = self._by_name[venue]
        if not isinstance(v, SpotVenue):
            raise KeyError(f"{venue} is not a spot venue")
        return v.book.balances(api_key)

    def marks(self, venue: str) -> dict[str, Decimal]:
        """USD per asset on ``venue`` now: USD assets 1, others the mid of their USD pair's L2 book (a
        BTC-quoted base through BTC's USD mark). A pair without a two-sided book yet counts at its start
        price, so every traded asset always has a mark."""
        v = self._by_name[venue]
        if not isinstance(v, SpotVenue):
            raise KeyError(f"{venue} is not a spot venue")
        out: dict[str, Decimal] = {}
        specs = [self.specs[i] for i in v.listed]
        for spec in specs:
            if spec.quote in USD_ASSETS:
                out[spec.quote] = Decimal(1)
        # USD pairs first, so a cross pair finds its quote asset's mark
        for spec in sorted(specs, key=lambda sp: sp.quote not in USD_ASSETS):
            if spec.base in out or spec.base in USD_ASSETS:
                continue
            quote_usd = out.get(spec.quote)
            if quote_usd is None:
                continue
            depth = v.depth[v.book.index[spec.name]]
            bid, ask = depth.best("SELL"), depth.best("BUY")
            mid = (spec.price(bid) + spec.price(ask)) / 2 if bid and ask else Decimal(repr(spec.start_price))
            out[spec.base] = mid * quote_usd
        return out

    def _spot(self, venue: str, symbol: str) -> tuple[SpotVenue, int]:
        v = self._by_name[venue]
        if not isinstance(v, SpotVenue):
            raise KeyError(f"{venue} is not a spot venue")
        return v, v.book.index[symbol]

    def top_of_book(self, venue: str, symbol: str) -> TopOfBook | None:
        v, s = self._spot(venue, symbol)
        q = v.book.top(s)
        if q is None:
            return None
        spec = self.specs[s]
        return TopOfBook(
            symbol, float(spec.price(q.bid)), float(spec.qty(q.bid_qty)),
            float(spec.price(q.ask)), float(spec.qty(q.ask_qty)), q.seq,
        )

    def book_levels(self, venue: str, symbol: str) -> tuple[int, list[tuple[str, str]], list[tuple[str, str]]]:
        """(current update id, every bid level best first, every ask level best first) as wire text."""
        v, s = self._spot(venue, symbol)
        book = v.depth[s]
        update_id, bids, asks = book.top()
        return update_id, book.text_levels(bids), book.text_levels(asks)

    def private_ws_url(self, name: str) -> str:
        """The base URL of a perp venue's user-data stream (Binance USD-M: ``.../private``)."""
        v = self._by_name[name]
        path = getattr(v.stream, "private_path", None)
        if not isinstance(v, PerpVenue) or path is None:
            raise KeyError(f"{name} serves no private stream")
        return f"ws://{self.cfg.sim.host}:{v.stream.port}{path}"

    def perp_account(self, venue: str, api_key: str) -> dict[str, Any]:
        """A perp account's orders, open positions, funding payments and wallet (``/sim/perp_account``)."""
        v = self._by_name[venue]
        if not isinstance(v, PerpVenue):
            raise KeyError(f"{venue} is not a perp venue")
        return account_listing(v.book, api_key)

    def settle_funding(self, at_ms: int | None = None) -> int:
        """Settle funding now on every perp venue, as at the boundary ``at_ms`` (default: now). The timer does
        this at each boundary of ``sim.funding_period_s``; a test without the timer calls it (or
        ``settle_due_funding``). Returns how many positions paid."""
        at = now_ms() if at_ms is None else at_ms
        return sum(v.settle_funding(at) for v in self.perp)

    def settle_due_funding(self) -> int:
        """Settle every funding boundary passed since the last call (what the timer runs)."""
        return sum(self.settle_funding(at) for at in self.funding_clock.due(now_ms()))

    def funding(self, venue: str, symbol: str) -> tuple[str, int, str]:
        """(rate as Binance text, next funding time ms, mark price text) as last pushed (or the model's
        current values before the first push). ``symbol``: the configured name or MEXC's BASE_QUOTE."""
        v = self._by_name[venue]
        if not isinstance(v, PerpVenue):
            raise KeyError(f"{venue} is not a perp venue")
        pt = v.point(v.names[symbol])
        return pt.rate_text, pt.next_funding_ms, pt.mark_text

    def stats(self) -> dict[str, Any]:
        return {"emitted": self.emitted, "skipped": self.skipped, "venues": [v.stats() for v in self.venues]}

    # ----- faults
    def inject(self, venue: str, kind: str, *, symbol: str | None = None, seconds: float | None = None) -> None:
        """Inject a fault (see ``faults``) into ``venue``'s connections open now. Raises FaultError for
        an unknown venue, kind or symbol."""
        v = self._by_name.get(venue)
        if v is None:
            raise FaultError(f"unknown venue {venue!r}")
        faults.check(kind, seconds)
        index: int | None = None
        if symbol is not None:
            names = v.names if isinstance(v, PerpVenue) else v.book.index
            if symbol not in names:
                raise FaultError(f"{venue} does not list symbol {symbol!r}")
            index = names[symbol]
        fault = Fault(kind, index, seconds)
        if kind == faults.GAP:
            v.gap(index)
        v.stream.inject(fault)
        log.warning("sim %s: injected %s (symbol %s, seconds %s)", venue, kind, symbol, seconds)

    def skew_clock(self, venue: str, ms: int) -> None:
        """Set a spot venue's clock ``ms`` away from the host's (its time endpoint and timestamp check)."""
        v = self._by_name.get(venue)
        if not isinstance(v, SpotVenue):
            raise FaultError(f"{venue!r} is not a simulated spot venue")
        v.rest.clock_skew_ms = ms

    def inject_order_fault(
        self,
        venue: str,
        kind: str,
        count: int = 1,
        seconds: float | None = None,
        symbol: str | None = None,
        side: str | None = None,
    ) -> None:
        """Arm an order fault (see ``order_faults``) on a spot venue, or on a perp venue whose simulated order API
        takes it (Binance USD-M: ``rate_limit``). Raises FaultError for an unknown venue, kind, symbol or side, a
        missing duration, or a fault the venue's API does not carry."""
        v = self._by_name.get(venue)
        fault = OrderFault(kind, count, seconds, symbol, side)
        if isinstance(v, SpotVenue):
            v.rest.inject_order_fault(fault)
        elif isinstance(v, PerpVenue):
            v.inject_order_fault(fault)
        else:
            raise FaultError(f"unknown venue {venue!r}")

    # ----- emission
    def emit(self, n: int) -> None:
        """Produce the next ``n`` quotes: each changes one venue's books and goes to its subscribers."""
        model, venues = self.model, self.spot
        books = [v.book for v in venues]
        depths = [v.depth for v in venues]
        streams = [v.stream for v in venues]
        for _ in range(n):
            q = model.next_quote()
            depth = depths[q.venue][q.symbol]
            depth.apply(q)
            if depth.update_id != q.seq:  # orders took liquidity: their changes had ids of their own
                q = q._replace(seq=depth.update_id)
            books[q.venue].update(q)
            streams[q.venue].publish(q)
        self.emitted += n

    def flush_depth(self, interval_ms: int | None = None) -> None:
        """End the aggregation interval now (every interval if None): pending diffs and partials go out."""
        for v in self.spot:
            for ms in sorted(set(v.diff_intervals) | set(v.partial_intervals)):
                if interval_ms is None or ms == interval_ms:
                    v.flush(ms)

    def push_funding(self) -> None:
        """One funding push interval: the rates step once and every perp venue pushes."""
        self.funding_model.step()
        self.funding_ticks += 1
        for v in self.perp:
            v.push(self.funding_ticks)

    async def _emit_loop(self) -> None:
        loop = asyncio.get_running_loop()
        rate = self.cfg.sim.quotes_per_second
        max_batch = max(1, int(rate * MAX_BATCH_S))
        start = loop.time()
        due_total = 0
        intervals = sorted({ms for v in self.spot for ms in (*v.diff_intervals, *v.partial_intervals)})
        next_flush = {ms: start + ms / 1000 for ms in intervals}
        funding_s = self.cfg.sim.funding_push_interval_ms / 1000
        next_funding = start + funding_s if self.perp else float("inf")
        while True:
            await asyncio.sleep(TIMER_S)  # pacing timer, not synchronization
            now = loop.time()
            target = int((now - start) * rate) if self.spot else 0
            due = target - due_total
            due_total = target
            if due > max_batch:
                self.skipped += due - max_batch
                due = max_batch
            if due > 0:
                self.emit(due)
            for ms, at in next_flush.items():
                if now >= at:
                    self.flush_depth(ms)
                    # A stalled loop skips the intervals it missed rather than pushing them in a burst.
                    next_flush[ms] = max(at + ms / 1000, now)
            if self.perp and now_ms() >= self.funding_clock.next_ms:
                # Before the next push: a boundary pays at the rate and mark last published for it.
                self.settle_due_funding()
            if now >= next_funding:
                self.push_funding()
                next_funding = max(next_funding + funding_s, now)


def _report_crash(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("sim emission stopped", exc_info=task.exception())


async def run_sim(cfg: Config, stop: asyncio.Event) -> None:
    async with Simulator(cfg):
        await stop.wait()
