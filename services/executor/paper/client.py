"""A paper venue: the executor's ``VenueClient`` with the order transport replaced by the fill model.

Everything else is the venue's own: the clock, the symbols' rules (tick, step, minimum quantity and notional
from the public exchangeInfo, no key needed) and the rate budget, which paper orders spend as real ones would.
An order reaches the venue ``paper_latency_ms`` after it is sent: it is decided then on the engine's local book
as it stands (``matching.py``), its fills move the paper account, and the answer (the venue's FULL answer,
fills included) arrives as long again after that. Queries see the order once it has reached the venue; paper
orders never rest, so there is nothing open to list or cancel. The executor, its journal, legging, risk and the
settlement run exactly as in live mode; only this transport differs.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from decimal import Decimal

from services.executor.paper.market import PaperAccount, PaperMarket
from services.executor.paper.matching import FILTER, Fee, PaperOrder, match
from services.executor.venue_client import VenueClient
from shared.config import Venue
from shared.messages import SIDE_BUY
from shared.registry import Registry
from shared.runtime.clock import SYSTEM_CLOCK, Clock
from shared.venues.common import (
    ANSWER_OK,
    ANSWER_REJECTED,
    ANSWER_THROTTLED,
    ANSWER_UNKNOWN,
    ORDER_LIMIT_IOC,
    AccountInfo,
    OrderAnswer,
    TradeFill,
    answer_without_order,
)
from shared.venues.kinds import kind_of
from shared.venues.spot_rest import ALL_ORDERS_MAX_LIMIT, VenueOrder

log = logging.getLogger(__name__)

# The venues' own codes for a refused order (Binance: -1013 filter failure, -2010 insufficient balance;
# MEXC: 30002 below the minimum, 10101 insufficient balance).
REFUSAL_CODES = {"binance": {FILTER: -1013, "": -2010}, "mexc": {FILTER: 30002, "": 10101}}


class _Placed:
    __slots__ = ("answer", "fills", "symbol")

    def __init__(self, symbol: int) -> None:
        self.symbol = symbol
        self.answer: OrderAnswer | None = None  # None: still on its way to the venue
        self.fills: tuple[TradeFill, ...] = ()


class PaperVenueClient(VenueClient):
    def __init__(self, venue: Venue, registry: Registry, timeout_s: float, market: PaperMarket,
                 clock: Clock = SYSTEM_CLOCK) -> None:
        super().__init__(venue, registry, timeout_s, keys_required=False, clock=clock)
        self.market = market
        self.latency_s = venue.paper_latency_ms / 1000.0
        self.fee = Fee(self.taker_fee, kind_of(venue.kind).commission_in_base_on_buy)
        self.codes = REFUSAL_CODES.get(venue.kind, REFUSAL_CODES["binance"])
        self.traded: dict[str, Decimal] = {}  # what the executor's books say the run moved here (set before start)
        self.acct: PaperAccount | None = None
        self._opening: asyncio.Task[None] | None = None
        self.on_account_open: Callable[[int, AccountInfo], None] | None = None
        self._orders: dict[str, _Placed] = {}
        self._pending: set[asyncio.TimerHandle] = set()
        self._inflight: dict[str, asyncio.Future[OrderAnswer]] = {}  # sent, answer not yet back
        self._trade_seq = 0
        self.n_paper_fills = self.n_paper_refused = 0

    def __repr__(self) -> str:
        return f"PaperVenueClient({self.name!r}, {self.kind})"

    def _build_templates(self) -> None:
        self.templates = {}  # paper orders take ``send_order``: nothing is written to a socket

    async def account(self) -> AccountInfo:
        """The paper balances; empty until the account is open. Opening values the starting balances at the first
        prices the feeds bring, which in the single placement start after the executor: it runs in the background
        and ``on_account_open`` tells the executor when the balances are there (nothing trades before)."""
        if self.acct is None:
            if self._opening is None:
                self._opening = asyncio.get_running_loop().create_task(self._open(), name=f"paper.{self.name}")
            return AccountInfo({}, self.maker_fee, self.taker_fee)
        return self._info(self.acct)

    def _info(self, acct: PaperAccount) -> AccountInfo:
        return AccountInfo({a: (x, Decimal(0)) for a, x in acct.balances.items()}, self.maker_fee, self.taker_fee)

    async def _open(self) -> None:
        acct = await self.market.open_account(self.venue_id, self.traded)
        self.acct = acct
        if self.on_account_open is not None:
            self.on_account_open(self.venue_id, self._info(acct))

    async def close(self) -> None:
        self.closing = True
        if self._opening is not None and not self._opening.done():
            self._opening.cancel()
        for handle in self._pending:
            handle.cancel()
        self._pending.clear()
        for cid, done in self._inflight.items():  # as a lost connection: the order's fate is unknown
            _resolve(done, answer_without_order(ANSWER_UNKNOWN, cid, 0, f"{self.name}: client closed"))
        self._inflight.clear()
        await super().close()

    # ----- orders
    def send_order(
        self, symbol: int, side: int, qty: str, price: str | None, client_order_id: str,
        order_type: str = ORDER_LIMIT_IOC, *, rescue: bool = False, reduce_only: bool = False,
    ) -> asyncio.Future[OrderAnswer]:
        loop = asyncio.get_running_loop()
        done: asyncio.Future[OrderAnswer] = loop.create_future()
        weight = self.fmt.weights.new_order
        if self.closing or not self.budget.can_send(1, weight, rescue=rescue):
            done.set_result(answer_without_order(ANSWER_THROTTLED, client_order_id, 0,
                                                 "client closing" if self.closing else self._refusal()))
            return done
        self.budget.note_sent(1, weight)
        self.n_orders += 1
        self.n_requests += 1
        order = PaperOrder(side, order_type, Decimal(price) if price is not None else None, Decimal(qty))
        self._inflight[client_order_id] = done
        done.add_done_callback(lambda _f: self._inflight.pop(client_order_id, None))
        self._later(self.outbound_s(client_order_id), self._arrive, symbol, order, client_order_id, done)
        return done

    def _later(self, delay_s: float, fn: object, *args: object) -> None:
        loop = asyncio.get_running_loop()
        handle: asyncio.TimerHandle

        def run() -> None:
            self._pending.discard(handle)
            fn(*args)  # type: ignore[operator]

        handle = loop.call_later(delay_s, run)
        self._pending.add(handle)

    def one_way_s(self) -> float:
        """How long a request (or its answer) travels: the config's constant here; a backtest may draw it."""
        return self.latency_s

    def outbound_s(self, client_order_id: str) -> float:
        """From ``send_order`` to the venue deciding the order (a backtest adds the engine's own time before the
        request leaves, which a live engine spends before ``send_order`` returns)."""
        return self.one_way_s()

    def _arrive(self, symbol: int, order: PaperOrder, cid: str, done: asyncio.Future[OrderAnswer]) -> None:
        """The order reaches the venue: decided on the book as it stands now; the answer travels back."""
        if cid in self._orders:  # the venue refuses a reused client order id
            answer = answer_without_order(ANSWER_REJECTED, cid, self.codes[""], "Duplicate order sent.", 400)
        else:
            answer = self._decide(symbol, order, cid)
        self._later(self.one_way_s(), _resolve, done, answer)

    def _decide(self, symbol: int, order: PaperOrder, cid: str) -> OrderAnswer:
        placed = self._orders[cid] = _Placed(symbol)
        acct = self.acct
        rules = self.rules.get(symbol)
        if acct is None or rules is None:
            why = "Invalid symbol." if rules is None else "paper account not open yet (waiting for first prices)"
            answer = answer_without_order(ANSWER_REJECTED, cid, self.codes[""], why, 400)
            placed.answer = answer
            return answer
        spec = self.registry.symbols[symbol]
        book = self.market.book(self.venue_id, symbol)
        m = match(book, order, rules, self.fee, spec.base, spec.quote, acct.free, self._next_trade_id)
        if m.refused:
            self.n_paper_refused += 1
            answer = answer_without_order(ANSWER_REJECTED, cid, self.codes[m.refused if m.refused == FILTER else ""],
                                          m.detail, 400)
            placed.answer = answer
            return answer
        book.side_for(order.side).take(list(m.takes))
        for f in m.fills:
            notional = f.price * f.qty
            if order.side == SIDE_BUY:
                acct.move(spec.base, f.qty - (f.commission if f.commission_asset == spec.base else 0))
                acct.move(spec.quote, -notional - (f.commission if f.commission_asset == spec.quote else 0))
            else:
                acct.move(spec.base, -f.qty)
                acct.move(spec.quote, notional - f.commission)
        self.n_paper_fills += len(m.fills)
        answer = OrderAnswer(ANSWER_OK, m.status, m.status, f"paper{len(self._orders)}", cid, m.executed, m.cum_quote,
                             m.fills, 0, "", 200, 0.0)
        placed.answer, placed.fills = answer, m.fills
        return answer

    def _next_trade_id(self) -> str:
        self._trade_seq += 1
        return f"{self.name}-{self._trade_seq}"

    async def query_order(self, symbol: int, client_order_id: str) -> OrderAnswer:
        await asyncio.sleep(2 * self.latency_s)  # a round trip, as any request
        placed = self._orders.get(client_order_id)
        if placed is None or placed.answer is None:  # not (yet) at the venue
            return self._not_found(client_order_id)
        return placed.answer._replace(fills=None)  # a query answer carries no per-fill data

    async def cancel_order(self, symbol: int, client_order_id: str) -> OrderAnswer:
        await asyncio.sleep(2 * self.latency_s)
        return self._not_found(client_order_id)  # IOC and MARKET orders are final when they arrive: nothing open

    def _not_found(self, cid: str) -> OrderAnswer:
        code = min(self.fmt.not_found_codes) if self.fmt.not_found_codes else -2013
        return answer_without_order(ANSWER_REJECTED, cid, code, "Order does not exist.", 400, new_order=False)

    async def open_orders(self, symbol: int | None = None) -> list[OrderAnswer]:
        return []

    async def cancel_all(self, symbol: int) -> list[OrderAnswer]:
        return []

    async def my_trades(self, symbol: int, order_id: str | None) -> list[TradeFill]:
        await asyncio.sleep(2 * self.latency_s)
        return [f for p in self._orders.values() if p.symbol == symbol and p.answer is not None
                and (order_id is None or p.answer.order_id == order_id) for f in p.fills]

    async def all_orders(
        self, symbol: int, start_ms: int | None = None, end_ms: int | None = None, limit: int = ALL_ORDERS_MAX_LIMIT,
    ) -> tuple[list[VenueOrder], list[str]]:
        return [], []  # what the paper venue knew died with the process that ran it, as its orders did

    def counters(self) -> dict[str, int]:
        return {**super().counters(), "paper_fills": self.n_paper_fills, "paper_refused": self.n_paper_refused}


def _resolve(done: asyncio.Future[OrderAnswer], answer: OrderAnswer) -> None:
    if not done.done():
        done.set_result(answer)

