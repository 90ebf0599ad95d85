"""Paper trading's venue side: the engine's local books (from the feeds' market data) and the paper accounts.

One ``PaperMarket`` per executor, shared by its paper venue clients. The books take every ``Quote`` and
``Book`` the feeds publish (in the single placement a direct call from the feed, else the executor's own
subscription to the market-data sockets): a paper fill walks what the engine itself saw.

Accounts are per venue and asset. A run's starting balances are fixed once, at its first start, and kept in
``state/paper/<venue>.json`` with the run's session: ``paper.balances`` where the config states an asset, else
``paper.asset_balance_usd`` worth of it at the first price the engine sees (USD assets one for one). A restart
of the executor within the run takes them back and adds what the executor's books say the run traded there
(the session ledger, rebuilt from the order journal): the paper venue lives in the executor's process, so what
it knew of orders in flight at a kill died with it, exactly as those orders did.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from decimal import ROUND_FLOOR, Decimal
from pathlib import Path

from services.executor.paper.book import PaperBook
from shared.config import Config, venue_symbols
from shared.messages import Book, MarketBatch, Quote
from shared.registry import Registry

log = logging.getLogger(__name__)

BALANCE_QUANTUM = Decimal("1e-8")
PRICE_WAIT_S = 30.0  # how long a first start waits for prices to value the starting balances
PRICE_POLL_S = 0.05


class PaperAccount:
    """One venue's paper balances (no locks: every paper order is decided at once, IOC or MARKET)."""

    def __init__(self, venue: str, assets: list[str]) -> None:
        self.venue = venue
        self.assets = assets
        self.start: dict[str, Decimal] = {}
        self.balances: dict[str, Decimal] = {}

    def free(self, asset: str) -> Decimal:
        return self.balances.get(asset, Decimal(0))

    def move(self, asset: str, delta: Decimal) -> None:
        self.balances[asset] = self.free(asset) + delta


class PaperMarket:
    def __init__(self, cfg: Config, registry: Registry, state_dir: Path, session: str) -> None:
        self.cfg = cfg
        self.registry = registry
        self.state_dir = state_dir
        self.session = session
        self.usd_assets = frozenset(cfg.strategies.usd_assets)
        self.books: dict[tuple[int, int], PaperBook] = {}
        self.accounts: dict[int, PaperAccount] = {}
        for v, venue in enumerate(cfg.venues):
            assets = sorted({a for s in venue_symbols(venue, cfg.symbols) for a in (s.base, s.quote)})
            self.accounts[v] = PaperAccount(venue.name, assets)
        self.n_items = 0

    # ----- market data
    def on_batch(self, batch: MarketBatch) -> None:
        for item in batch.items:
            if type(item) is Quote:
                self.book(item.venue, item.symbol).on_quote(item.bid, item.bid_qty, item.ask, item.ask_qty,
                                                            item.tick_ns)
            elif type(item) is Book:
                self.book(item.venue, item.symbol).on_depth(item.bid_px, item.bid_qty, item.ask_px, item.ask_qty,
                                                            item.tick_ns)
            else:
                continue
            self.n_items += 1

    def book(self, venue: int, symbol: int) -> PaperBook:
        b = self.books.get((venue, symbol))
        if b is None:
            b = self.books[(venue, symbol)] = PaperBook()
        return b

    def usd_price(self, asset: str) -> float:
        """The asset's USD value from any venue's book: directly against a USD asset, or through one other asset
        (ETH through ETHBTC and BTCUSDT); 0.0 while no book prices it."""
        if asset in self.usd_assets:
            return 1.0
        direct = self._mid_against(asset, self.usd_assets)
        if direct:
            return direct
        for s in self.cfg.symbols:
            if s.base == asset and s.quote not in self.usd_assets:
                cross, via = self._mid_of(s.name), self._mid_against(s.quote, self.usd_assets)
                if cross and via:
                    return cross * via
        return 0.0

    def _mid_against(self, asset: str, quotes: frozenset[str]) -> float:
        for s in self.cfg.symbols:
            if s.base == asset and s.quote in quotes:
                mid = self._mid_of(s.name)
                if mid:
                    return mid
        return 0.0

    def _mid_of(self, symbol_name: str) -> float:
        sid = self.registry.symbol_id[symbol_name]
        for (_v, s), book in self.books.items():
            if s == sid:
                mid = book.mid()
                if mid:
                    return mid
        return 0.0

    # ----- accounts
    def _state_file(self, venue: str) -> Path:
        return self.state_dir / f"{venue}.json"

    async def open_account(self, venue: int, traded: dict[str, Decimal], wait_s: float = PRICE_WAIT_S) -> PaperAccount:
        """The venue's account for this run: its starting balances (kept from the run's first start, else made now
        from the config and the first prices) plus ``traded``, what the executor's books say the run moved there."""
        acct = self.accounts[venue]
        if acct.start:
            return acct
        start = self._load_start(acct.venue)
        if start is None:
            start = await self._new_start(acct, wait_s)
            self._save_start(acct.venue, start)
        acct.start = start
        acct.balances = dict(start)
        for asset, delta in traded.items():
            acct.move(asset, delta)
        return acct

    def _load_start(self, venue: str) -> dict[str, Decimal] | None:
        path = self._state_file(venue)
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            log.warning("paper %s: %s unreadable (%s): starting balances made anew", venue, path, exc)
            return None
        if data.get("session") != self.session:
            return None  # another run's: this run starts from the config
        return {a: Decimal(x) for a, x in data["start"].items()}

    def _save_start(self, venue: str, start: dict[str, Decimal]) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        path = self._state_file(venue)
        tmp = path.with_suffix(".tmp")
        body = json.dumps({"session": self.session, "start": {a: format(x, "f") for a, x in start.items()}})
        with open(tmp, "w") as f:
            f.write(body)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)

    async def _new_start(self, acct: PaperAccount, wait_s: float) -> dict[str, Decimal]:
        paper = self.cfg.paper
        usd = Decimal(repr(paper.asset_balance_usd))
        start: dict[str, Decimal] = {}
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_s  # the loop's clock: a backtest's is the recording's
        for asset in acct.assets:
            if asset in paper.balances:
                start[asset] = Decimal(paper.balances[asset])
                continue
            price = self.usd_price(asset)
            while not price and loop.time() < deadline:
                await asyncio.sleep(PRICE_POLL_S)  # the first quotes are on their way: poll with a deadline
                price = self.usd_price(asset)
            if not price:
                log.warning("paper %s: no price for %s within %.0fs: its starting balance is 0 (set "
                            "paper.balances.%s to give one)", acct.venue, asset, wait_s, asset)
                start[asset] = Decimal(0)
                continue
            start[asset] = (usd / Decimal(repr(price))).quantize(BALANCE_QUANTUM, rounding=ROUND_FLOOR)
        log.info("paper %s: starting balances %s", acct.venue, {a: format(x, "f") for a, x in start.items()})
        return start

    def marks(self) -> dict[str, float]:
        """USD per asset of every paper account, from the engine's books now (the settlement values with these)."""
        return {a: self.usd_price(a) for acct in self.accounts.values() if acct.start for a in acct.assets}

    def report(self) -> dict[str, dict[str, dict[str, str]]]:
        """Per venue: the run's starting balances and the balances now, as exact text (the settlement's view)."""
        return {
            a.venue: {"start": {k: format(v, "f") for k, v in a.start.items()},
                      "now": {k: format(v, "f") for k, v in a.balances.items()}}
            for a in self.accounts.values() if a.start
        }
