"""The executor's perpetual venues: their setup, their margin accounts for risk, funding income, the carries.

- At start every perpetual venue gets its leverage and margin type on every traded symbol (a refusal stops the
  start: trading a perpetual at a leverage nobody chose is worse than not trading it).
- Every ``perp_account_s`` the margin account and positions are read and kept for the ``VenueState`` risk reads
  (its leverage, margin and liquidation rules); after an execution that touched the venue too.
- Every ``funding_poll_s`` the venue's funding income since the session began is read; each payment not booked
  yet is booked once, as its own execution (outcome ``funding``, the payment's USDT on the perpetual venue), so
  the journal, the session's books, risk's PnL and the settlement all count it with the trades. The payment's id
  keys it: a restart replays the booked ones first and books only what is new.
- ``CarryBook`` (``carry_book.py``) follows each carry's life from the booked executions; this publishes a
  ``CarryPosition`` whenever one changes.

The executor hands in what this needs, narrowly: its perpetual clients, the registry, the settings, ``publish``
and ``book`` (the executor's booking path, journal first).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Awaitable, Callable, Iterable

from services.executor.accounting import Books
from services.executor.carry_book import FUNDING_NOTE, OUTCOME_FUNDING, CarryBook, funding_key
from services.executor.venue_client import VenueClient
from shared.config import ExecutionSettings
from shared.errors import ProtocolError, VenueError
from shared.messages import (
    STRATEGY_FUNDING,
    AssetDelta,
    Event,
    Execution,
    FundingPayment,
    PerpMargin,
    PerpPositionState,
)
from shared.registry import Registry
from shared.runtime.clock import SYSTEM_CLOCK, Clock
from shared.venues.perp import FundingPaymentInfo, PerpAccountInfo

log = logging.getLogger(__name__)

FUNDING_ID_BASE = 1 << 62  # funding bookings' ids: above every detector id ((24 random bits << 32) | counter)

Book = Callable[[Execution, Books, int], Awaitable[None]]


def funding_id(venue: int, payment_id: str) -> int:
    """A stable execution id for one payment: the same payment gets the same id after any restart."""
    digest = hashlib.blake2b(f"{venue}:{payment_id}".encode(), digest_size=7).digest()
    return FUNDING_ID_BASE | int.from_bytes(digest, "big")


class PerpDesk:
    def __init__(
        self, clients: dict[int, VenueClient], registry: Registry, settings: ExecutionSettings,
        usd_assets: Iterable[str], session_start_ms: int, publish: Callable[[Event], None], book: Book,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.clock = clock
        self.clients = {v: c for v, c in clients.items() if c.perp}
        self.registry = registry
        self.settings = settings
        self.usd_assets = tuple(usd_assets)
        self.session_start_ms = session_start_ms  # funding before the session is not this run's
        self.publish = publish
        self.book = book
        self.carries = CarryBook(registry, registry.perp_venues.tolist())
        self.margins: dict[int, PerpMargin] = {}
        self.n_funding = 0
        self.n_account_errors = 0
        # Positions and payments name the venue's wire symbol: BTCUSDT (Binance), BTC_USDT (MEXC contract).
        self._symbol_of: dict[tuple[int, str], int] = {}
        for v in self.clients:
            for s in registry.listed_symbols(v):
                sym = registry.symbols[s]
                for name in (registry.symbol(s), f"{sym.base}_{sym.quote}"):
                    self._symbol_of[(v, name)] = s
        self._refreshes: set[asyncio.Task[None]] = set()
        self._booking = asyncio.Lock()  # one funding poll books at a time (the loop and an operator's ask)

    # ----- start
    async def start(self) -> None:
        isolated = self.settings.perp_margin == "isolated"
        for c in self.clients.values():
            await c.setup_perp(self.settings.perp_leverage, isolated)
            log.info("%s: leverage %dx, %s margin on %d symbols", c.name, self.settings.perp_leverage,
                     self.settings.perp_margin, len(c.symbol_ids))
        await asyncio.gather(*(self.refresh(v) for v in self.clients))

    def replay(self, booked: Iterable[Execution]) -> None:
        """The carries and booked payments as the journal's booked executions leave them (before trading)."""
        for exe in booked:
            self.carries.on_execution(exe, 0)
        if self.carries.open:
            log.info("carries resumed from the journal: %s",
                     [c.record(self.registry) for c in self.carries.open.values()])

    # ----- margin accounts
    async def refresh(self, venue: int) -> None:
        c = self.clients[venue]
        try:
            info = await c.perp_account()
        except (OSError, TimeoutError, ConnectionError, VenueError, ProtocolError) as exc:
            self.n_account_errors += 1
            log.warning("%s: margin account read failed (%s)", c.name, exc)
            return
        self.margins[venue] = self._margin(venue, info)

    def _margin(self, venue: int, info: PerpAccountInfo) -> PerpMargin:
        positions = []
        for p in info.positions:
            s = self._symbol_of.get((venue, p.symbol))
            if s is None or not p.size:
                continue  # a symbol draizer does not trade here
            positions.append(PerpPositionState(s, format(p.size, "f"), float(p.entry_price), float(p.mark_price),
                                               float(p.liquidation_price), p.leverage, float(p.margin)))
        leverage = tuple((s, self.settings.perp_leverage) for s in self.clients[venue].symbol_ids)
        return PerpMargin(float(info.wallet), float(info.margin_balance), float(info.available),
                          float(info.maint_margin), leverage, tuple(positions))

    async def run_accounts(self) -> None:
        while True:
            await asyncio.sleep(self.settings.perp_account_s)
            await asyncio.gather(*(self.refresh(v) for v in self.clients))

    # ----- funding
    async def run_funding(self) -> None:
        while True:
            await asyncio.sleep(self.settings.funding_poll_s)
            await self.poll_funding()

    async def poll_funding(self) -> int:
        """Book every payment not booked yet; how many were booked."""
        async with self._booking:
            booked = 0
            for v, c in self.clients.items():
                try:
                    payments = await c.funding_income(self.session_start_ms)
                except (OSError, TimeoutError, ConnectionError, VenueError, ProtocolError) as exc:
                    log.warning("%s: funding income read failed (%s); next poll retries", c.name, exc)
                    continue
                known = self.carries.funding_keys
                for p in payments:
                    if p.time_ms >= self.session_start_ms and funding_key(v, p.payment_id) not in known:
                        await self._book_payment(v, p)
                        booked += 1
            return booked

    async def _book_payment(self, venue: int, p: FundingPaymentInfo) -> None:
        symbol = self._symbol_of.get((venue, p.symbol))
        if symbol is None:
            log.warning("%s: funding payment %s on %s, a symbol draizer does not trade: booked without a symbol",
                        self.registry.venue(venue), p.payment_id, p.symbol)
            symbol = 0
        asset = self.clients[venue].fmt.quote_asset  # type: ignore[attr-defined]  # a PerpOrderFormat's margin asset
        usd = float(p.amount) if asset in self.usd_assets else 0.0
        books = Books(self.registry, self.usd_assets)
        books.ledger.add(venue, asset, p.amount)
        key = funding_key(venue, p.payment_id)
        carry_id = self.carries.carry_of(venue, symbol)
        now = self.clock.monotonic_ns()
        exe = Execution(funding_id(venue, p.payment_id), symbol, -1, venue, 0.0, 0.0, 0.0, 0.0, 0.0, usd, 0.0,
                        OUTCOME_FUNDING, now, now, now, now, now, STRATEGY_FUNDING, (),
                        (AssetDelta(venue, asset, format(p.amount, "f")),), note=FUNDING_NOTE + key)
        self.carries.funding_keys.add(key)  # before the await: a second poll cannot book it again
        await self.book(exe, books, 0)  # journal first, then the books, then the Execution (and on_booked below)
        self.n_funding += 1
        self.publish(FundingPayment(venue, symbol, p.payment_id, format(p.amount, "f"), asset, usd, p.time_ms,
                                    carry_id, self.clock.time_ns()))
        log.info("funding %s %s on %s: %s %s (carry %d)", p.payment_id, p.symbol, self.registry.venue(venue),
                 p.amount, asset, carry_id)

    # ----- the carries
    def on_booked(self, exe: Execution) -> None:
        """Every booked execution passes here: a carry that changed is published."""
        carry = self.carries.on_execution(exe, self.clock.time_ns() // 1_000_000)
        if carry is not None:
            self.publish(carry.event(self.clock.time_ns()))
            if exe.outcome != OUTCOME_FUNDING:
                for v in {f.venue for f in exe.legs} & self.clients.keys():
                    task = asyncio.get_running_loop().create_task(self.refresh(v))
                    self._refreshes.add(task)  # held until done: a task nobody references may be collected
                    task.add_done_callback(self._refreshes.discard)

    def margin(self, venue: int) -> PerpMargin | None:
        return self.margins.get(venue)

    def counters(self) -> dict[str, int]:
        """Cumulative counts only (they never go back: a heartbeat's counters); the open carries are a gauge."""
        return {"funding_payments": self.n_funding, "perp_account_errors": self.n_account_errors}
