"""One opportunity's execution, from the legs' first answers to the Execution event.

1. Every order's first answer (the REST response, or a timeout) is applied to its state machine.
2. Each order is driven to a final state: UNKNOWN and open orders are *queried*, never resent; one still open
   after ``order_timeout_ms`` is cancelled. The user stream's reports land on the same state machines and wake
   the waiters. A final order whose answer carried no trades gets them from the user stream when one has covered
   it since its creation (MEXC's deals channel), else, or if they do not come in ``STREAM_TRADES_WAIT_S``, from the
   venue's trade list.
3. Legging: while the legs' fill fractions differ, correcting orders (``legging.py``) go out, journaled first,
   until they balance or ``unwind_deadline_ms`` passes; an imbalance left then is an orphan and raises an alert.
4. The books (``accounting.py``), the OrderUpdates and Fills, the Execution, and the journal's ``done``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from decimal import Decimal
from typing import TYPE_CHECKING

from services.executor.accounting import Books, build_execution, outcome_of
from services.executor.legging import HEDGE, LegPosition, corrections
from services.executor.order_state import TrackedOrder, Trade
from shared.errors import ProtocolError, VenueError
from shared.messages import (
    OUTCOME_ORPHANED,
    ROLE_HEDGE,
    ROLE_LEG,
    ROLE_UNWIND,
    Alert,
    Execution,
    Fill,
    OrderIntent,
    OrderUpdate,
)
from shared.venues.common import ANSWER_OK, ANSWER_REJECTED, ANSWER_THROTTLED, ANSWER_UNKNOWN, OrderAnswer

if TYPE_CHECKING:
    from services.executor.service import Executor

log = logging.getLogger(__name__)

POLL_START_S = 0.05
POLL_MAX_S = 0.5
MAX_CORRECTION_ROUNDS = 12  # each round widens the limit by unwind_slippage_bps; the deadline bounds them all
TRADE_LIST_ATTEMPTS = 5
# A covered order's fills normally follow its status within milliseconds. Short, because the legging waits for
# every leg's trades: a long wait here eats the unwind deadline (a CI run orphaned one execution with 2 s).
STREAM_TRADES_WAIT_S = 0.5


class ExecutionRun:
    def __init__(self, ex: Executor, intent: OrderIntent, orders: list[TrackedOrder], sent_ns: int) -> None:
        self.ex = ex
        self.intent = intent
        self.orders = orders
        self.sent_ns = sent_ns
        self.journaled_ns = 0  # every order record written, just before the first request (0: unknown)
        self.note = ""
        self._wake: dict[str, asyncio.Event] = {o.client_order_id: asyncio.Event() for o in orders}
        # Per order: when its request left (a correction's own send) and when the venue's first answer came (its
        # round trip: ``OrderUpdate.sent_ns``/``ack_ns``; a backtest draws its latency from these).
        self._sent_at: dict[str, int] = {}
        self._acked_at: dict[str, int] = {}

    # ----- wiring
    def wake(self, cid: str) -> None:
        ev = self._wake.get(cid)
        if ev is not None:
            ev.set()

    async def run(self, futures: Sequence[asyncio.Future[OrderAnswer]]) -> Execution:
        await asyncio.gather(*(self._first_answer(o, f) for o, f in zip(self.orders, futures, strict=True)))
        return await self.finish()

    async def finish(self) -> Execution:
        """Steps 2-4; also what a restart runs for an execution the journal left open."""
        await asyncio.gather(*(self._settle(o) for o in list(self.orders)))
        corrected, orphaned = await self._even_out()
        return await self._close(corrected, orphaned)

    # ----- answers and state
    async def _first_answer(self, o: TrackedOrder, fut: asyncio.Future[OrderAnswer]) -> None:
        timeout = self.ex.settings.order_timeout_ms / 1000
        try:
            answer = await asyncio.wait_for(asyncio.shield(fut), timeout)
        except TimeoutError:
            o.mark_unknown(f"no answer within {timeout:.1f}s")
            self.ex.journal.update(o)
            return
        self._acked_at[o.client_order_id] = self.ex.clock.monotonic_ns()
        self.apply(o, answer, first=True)

    def apply(self, o: TrackedOrder, a: OrderAnswer, first: bool = False) -> None:
        if a.kind == ANSWER_OK:
            changed = o.advance(a.status, a.executed_qty, a.cum_quote, a.order_id)
            for t in a.fills or ():
                changed = o.add_trade(t) or changed
        elif a.kind in (ANSWER_REJECTED, ANSWER_THROTTLED) and first:
            # A refused or rate-limited new order was never placed: it cannot fill later.
            o.fail(a.error_code, a.error_msg)
            changed = True
            self.ex.n_rejected += 1
            self.ex.log_reject(o, a)
        elif a.kind == ANSWER_UNKNOWN and first:
            o.mark_unknown(a.error_msg)
            changed = True
        else:
            return
        if changed:
            self.ex.journal.update(o)

    async def _settle(self, o: TrackedOrder) -> None:
        """Query until final; cancel when open too long; then make sure every trade is known."""
        client = self.ex.clients[o.venue]
        clock = self.ex.clock
        started = clock.monotonic()
        cancel_after = self.ex.settings.order_timeout_ms / 1000
        recv_window = client.venue.recv_window_ms / 1000
        wait = POLL_START_S
        cancelled = False
        while not o.final:
            a = await client.query_order(o.symbol, o.client_order_id)
            if a.kind == ANSWER_OK:
                self.apply(o, a)
            elif client.not_found(a) and clock.monotonic() - started > recv_window + 1.0:
                # The venue never got it, and past the request's recvWindow it can no longer arrive: refused.
                o.fail(a.error_code, "never reached the venue")
                self.ex.journal.update(o)
                break
            if o.final:
                break
            if o.status in ("NEW", "PARTIALLY_FILLED") and not cancelled and clock.monotonic() - started > cancel_after:
                c = await client.cancel_order(o.symbol, o.client_order_id)
                cancelled = True
                if c.kind == ANSWER_OK:
                    self.apply(o, c)
                continue
            ev = self._wake.setdefault(o.client_order_id, asyncio.Event())
            ev.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(ev.wait(), wait)  # a user-stream report wakes it early
            wait = min(wait * 2, POLL_MAX_S)
        await self._complete_trades(o)

    async def _complete_trades(self, o: TrackedOrder) -> None:
        client = self.ex.clients[o.venue]
        if o.executed > 0 and not o.trades_complete() and self.ex.stream_covers(o):
            await self._trades_from_stream(o)
        for attempt in range(TRADE_LIST_ATTEMPTS):
            if o.executed <= 0 or o.trades_complete():
                return
            self.ex.n_trade_lists += 1
            try:
                trades = await client.my_trades(o.symbol, o.order_id)
            except (OSError, TimeoutError, ConnectionError, VenueError, ProtocolError) as exc:
                log.warning("trade list for %s on %s failed (%s); retrying", o.client_order_id, client.name, exc)
                trades = []
            changed = False
            for t in trades:
                changed = o.add_trade(t) or changed
            if changed:
                self.ex.journal.update(o)
            if not o.trades_complete():
                await asyncio.sleep(POLL_START_S * (attempt + 1))  # the venue's trade list may lag its order state
        if o.executed > 0 and not o.trades_complete():
            self.ex.n_trades_missing += 1
            log.error("order %s on %s: executed %s but the venue lists trades for only part of it",
                      o.client_order_id, client.name, o.executed)

    async def _trades_from_stream(self, o: TrackedOrder) -> None:
        """Wait for the stream's fills of ``o`` while it stays up; the trade list takes over when it goes down or
        the fills are late (counted and logged: never a silent wait)."""
        deadline = self.ex.clock.monotonic() + STREAM_TRADES_WAIT_S
        ev = self._wake.setdefault(o.client_order_id, asyncio.Event())
        while True:
            ev.clear()
            if o.trades_complete() or not self.ex.stream_covers(o):
                return
            left = deadline - self.ex.clock.monotonic()
            if left <= 0:
                self.ex.n_stream_trades_late += 1
                log.warning("order %s on %s: the user stream brought fills for only part of %s in %.1fs; reading "
                            "the trade list", o.client_order_id, self.ex.clients[o.venue].name, o.executed,
                            STREAM_TRADES_WAIT_S)
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(ev.wait(), min(left, POLL_MAX_S))  # a report wakes it

    # ----- legging
    def positions(self) -> list[LegPosition]:
        out: list[LegPosition] = []
        for i, leg in enumerate(self.intent.opportunity.legs):
            net = Decimal(0)
            for o in self.orders:
                if o.leg != i:
                    continue
                net += o.executed if o.side == leg.side else -o.executed
            plan = next(o for o in self.orders if o.role == ROLE_LEG and o.leg == i)
            rules = self.ex.rules(leg.venue, leg.symbol)
            out.append(LegPosition(leg.venue, leg.symbol, leg.side, Decimal(plan.qty), net,
                                   Decimal(plan.price or repr(leg.price)), rules.step, rules.tick, rules.min_notional))
        return out

    async def _even_out(self) -> tuple[bool, bool]:
        """(corrections were sent, an imbalance outlived the deadline)."""
        s = self.ex.settings
        deadline = self.sent_ns + s.unwind_deadline_ms * 1_000_000
        role = ROLE_HEDGE if s.unwind_mode == HEDGE else ROLE_UNWIND
        corrected = False
        wait = POLL_START_S
        for round_no in range(MAX_CORRECTION_ROUNDS):
            fixes = corrections(self.positions(), s.unwind_mode, s.unwind_slippage_bps * (round_no + 1))
            if not fixes:
                return corrected, False
            if self.ex.clock.monotonic_ns() > deadline:
                break
            corrected = True
            new = [self.ex.new_order(self.intent, role, f.leg, f.venue, f.symbol, f.side, f.qty, f.price, round_no)
                   for f in fixes]
            futures = self.ex.send(new)
            sent = self.ex.clock.monotonic_ns()
            self._sent_at.update((o.client_order_id, sent) for o in new)
            self.orders.extend(new)
            for o in new:
                self._wake.setdefault(o.client_order_id, asyncio.Event())
                self.ex.track(self, o)  # user-stream reports and the kill switch's cancels reach it too
            await asyncio.gather(*(self._first_answer(o, f) for o, f in zip(new, futures, strict=True)))
            await asyncio.gather(*(self._settle(o) for o in new))
            if all(o.executed == 0 for o in new):
                # Nothing placed or filled (a 429, our budget, a book that moved): wait before the next round
                # instead of burning the rounds at once; the deadline still bounds the whole rescue.
                await asyncio.sleep(min(wait, max(0.0, (deadline - self.ex.clock.monotonic_ns()) / 1e9)))
                wait = min(wait * 2, POLL_MAX_S)
        left = corrections(self.positions(), s.unwind_mode, s.unwind_slippage_bps)
        return corrected, bool(left)

    # ----- the end
    async def _close(self, corrected: bool, orphaned: bool) -> Execution:
        ex, opp = self.ex, self.intent.opportunity
        books = Books(ex.registry, ex.cfg.strategies.usd_assets)
        books.mark_legs(opp, self.orders)
        for o in self.orders:
            books.add_order(o)
        role = ROLE_HEDGE if ex.settings.unwind_mode == HEDGE else ROLE_UNWIND
        outcome = OUTCOME_ORPHANED if orphaned else outcome_of(self.orders, corrected, role)
        if orphaned:
            self.note = "imbalance left after the unwind deadline"
            ex.publish(Alert("executor", "orphan", f"opportunity {opp.id}: {self.note}", 0, self.ex.clock.time_ns()))
            log.error("opportunity %d: orphaned position after the unwind deadline", opp.id)
        now = self.ex.clock.monotonic_ns()
        for o in self.orders:
            ex.publish(self._order_update(o, now))
            for t in o.trades.values():
                ex.publish(self._fill(o, t, books, now))
        exe = build_execution(self.intent, self.orders, books, outcome, self.note, self.sent_ns, now,
                              journaled_ns=self.journaled_ns)
        await ex.book(exe, books, sum(len(o.trades) for o in self.orders))  # after its `done` is on disk
        return exe

    def _order_update(self, o: TrackedOrder, now: int) -> OrderUpdate:
        opp = self.intent.opportunity
        return OrderUpdate(
            client_order_id=o.client_order_id,
            opportunity_id=opp.id,
            venue=o.venue,
            symbol=o.symbol,
            side=o.side,
            price=o.price or "",
            qty=o.qty,
            status=o.status,
            filled_qty=float(o.executed),
            avg_price=float(o.cum_quote / o.executed) if o.executed > 0 else 0.0,
            error_code=o.error_code,
            error_msg=o.error_msg,
            sent_ns=self._sent_at.get(o.client_order_id, self.sent_ns),
            ack_ns=self._acked_at.get(o.client_order_id, now),  # no answer at all (unknown): when it was closed
            tick_ns=opp.tick_ns,
        )

    def _fill(self, o: TrackedOrder, t: Trade, books: Books, now: int) -> Fill:
        return Fill(
            client_order_id=o.client_order_id,
            opportunity_id=self.intent.opportunity.id,
            venue=o.venue,
            symbol=o.symbol,
            side=o.side,
            price=float(t.price),
            qty=float(t.qty),
            fee_usd=books.fee_usd(t),
            trade_id=t.trade_id,
            ts_ns=now,
        )

