"""Executor actor: every leg of an approved opportunity goes out at once, journaled first, and is driven to
a final state; uneven legs are unwound or hedged within a deadline; every execution ends in one Execution event.

Start-up order matters: the journal is reloaded and every execution it left open is reconciled with the venues
(orders queried, never resent; imbalances unwound) *before* the intent socket is bound, so no new intent can
race a half-known book. The requests of a new intent are written to already-open connections in the same call
that received it; the rest (answers, queries, legging, books) runs in a task per execution.
"""

from __future__ import annotations

import asyncio
import logging
import os
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import zmq

from services.executor.accounting import Books
from services.executor.execution import ExecutionRun
from services.executor.ledger import Ledger
from services.executor.listen_key_stream import ListenKeyStream
from services.executor.order_journal import JournalState, JournalSyncError, OrderJournal
from services.executor.order_state import TrackedOrder, Trade
from services.executor.paper.client import PaperVenueClient
from services.executor.paper.market import PaperMarket
from services.executor.perp_desk import PerpDesk
from services.executor.reconcile import reconcile
from services.executor.republish import booked_executions, encode_event, logged_executions, unpublished
from services.executor.session_books import SessionBooks, resumed
from services.executor.user_stream import UserStream
from services.executor.venue_client import VenueClient
from shared.codec import Codec, intent_codec, market_data_codec
from shared.config import Venue, paper_model
from shared.errors import ProtocolError, VenueError
from shared.messages import (
    ACTION_CLOSE,
    OUTCOME_ABORTED,
    ROLE_LEG,
    ROLE_UNWIND,
    SIDE_BUY,
    STRATEGY_FUNDING,
    Alert,
    Command,
    Execution,
    MarketData,
    OrderIntent,
    Reply,
    VenueState,
)
from shared.money import floor_step_text, price_text, to_wire
from shared.runtime.host import ProcessContext
from shared.runtime.service import Service
from shared.runtime.session import current_session, session_start_ms
from shared.venues.binance.user_stream import ExecutionReport
from shared.venues.common import (
    ANSWER_THROTTLED,
    ORDER_LIMIT_IOC,
    ORDER_MARKET,
    AccountInfo,
    OrderAnswer,
    OrderReport,
    SymbolRules,
    answer_without_order,
)
from shared.venues.kinds import kind_of
from shared.venues.order_template import OrderTemplate

log = logging.getLogger(__name__)

STOP_GRACE_S = 10.0
VENUE_STATE_INTERVAL_S = 1.0
ACCOUNT_REFRESH_S = 30.0
ROLE_LETTER = {0: "l", 1: "u", 2: "h"}


def client_order_id(opportunity_id: int, role: int, leg: int, side: int, attempt: int = 0) -> str:
    """Deterministic per order: a resend of the same order is refused by the venue as a duplicate."""
    side_letter = "b" if side == SIDE_BUY else "s"
    if role == ROLE_LEG:
        return f"dz{opportunity_id:x}{side_letter}{leg}"
    return f"dz{opportunity_id:x}{ROLE_LETTER[role]}{leg}{side_letter}{attempt}"


class Executor(Service):
    def __init__(self, ctx: ProcessContext) -> None:
        super().__init__("executor", ctx)
        self.settings = ctx.cfg.execution
        self.clients: dict[int, VenueClient] = {}
        self.streams: list[UserStream | ListenKeyStream] = []
        self.fill_streams: dict[int, ListenKeyStream] = {}  # venue -> the stream its fills come by (not the trade list)
        configured = self.settings.journal_dir
        self.journal_dir = Path(configured) if configured else Path(ctx.run_dir) / "state" / "orders"
        # Files are created on the first record, named after every existing one: loading at start sees the past.
        self.journal = OrderJournal(self.journal_dir, self.settings.journal_fsync, clock=ctx.clock.time_ns)
        self.balances: dict[int, dict[str, Decimal]] = {}
        self.halted = False
        self.ready = False
        self._intents: Codec[OrderIntent] = intent_codec()
        self._pull: zmq.Socket[bytes] | None = None
        self._fused = False
        self._runs: dict[int, ExecutionRun] = {}
        self._by_cid: dict[str, tuple[ExecutionRun, TrackedOrder]] = {}
        self._jobs: set[asyncio.Task[Any]] = set()
        self.n_intents = self.n_orders = self.n_fills = self.n_rejected = 0
        self.n_refused = self.n_trades_missing = self.n_reconciled = self.n_reports = self.n_kill_cancelled = 0
        self.n_republished = 0  # executions a kill left booked but unpublished, published by the restart
        self.n_trade_lists = 0  # trade-list requests (myTrades): the fallback where no user stream covers an order
        self.n_stream_trades_late = 0  # orders whose fills the stream did not bring in time: read from the list
        self.outcomes: dict[str, int] = {}  # this process's executions (heartbeat counters)
        self.pnl_usd = 0.0  # booked by this process
        self.run_ledger = Ledger()  # every balance move since this process started
        # The run's books across restarts of this process (what the settlement compares with the venues), rebuilt
        # from the journal at start; answers about them wait for that (``books_loaded``).
        self.session = current_session()
        self.books = SessionBooks(self.session)
        self.books_loaded = False
        self.perps: PerpDesk | None = None  # the perpetual venues (margin, funding, carries); None: none trade
        self._booked_before: list[Execution] = []  # this session's executions the journal booked, for the carries
        self._latency: dict[str, list[int]] = {"tick_to_order": [], "decide_to_order": []}
        # Paper trading on real market data: the venues' order transport is the fill model on the engine's books.
        self.paper = (PaperMarket(self.cfg, self.registry, Path(ctx.run_dir) / "state" / "paper", self.session)
                      if paper_model(self.cfg) else None)
        self._feeds_in_process = False

    def link_in_process(self, peers: dict[str, object]) -> None:
        self._fused = "RiskEngine" in peers  # risk calls on_intent directly and listens through local_listeners
        self._feeds_in_process = "Feed" in peers  # paper books: the feeds call ``paper.on_batch`` themselves

    # ----- start and stop
    async def on_start(self) -> None:
        self.journal_dir.mkdir(parents=True, exist_ok=True)
        state = OrderJournal.load(self.journal_dir)
        if state.torn_lines:
            log.warning("order journal: %d torn or unreadable lines skipped", state.torn_lines)
        self._resume_books(state)
        self._republish(state)
        for i, v in enumerate(self.cfg.venues):
            kind = kind_of(v.kind)
            if kind.order_format is None:
                continue
            if kind.perp and (not v.api_key_env or self.paper is not None):  # a funding feed: carries are refused
                log.info("%s: %s: market data only, no perpetual orders", v.name,
                         "paper fills model spot books only" if self.paper is not None else "no api_key_env")
                continue
            timeout_s = self.settings.order_timeout_ms / 1000
            if self.paper is not None:
                paper = self.paper_client(v, timeout_s)
                paper.traded = {a: d for (venue, a), d in self.books.ledger.deltas().items() if venue == i}
                paper.on_account_open = self._paper_account_opened
                self.clients[i] = paper
            else:
                self.clients[i] = VenueClient(v, self.registry, timeout_s, clock=self.clock)
        if self.paper is not None and not self._feeds_in_process:
            self._subscribe_paper_books()
        await asyncio.gather(*(c.start() for c in self.clients.values()))
        if any(c.perp for c in self.clients.values()):
            start_ms = session_start_ms(self.session) or self.clock.time_ns() // 1_000_000
            self.perps = PerpDesk(self.clients, self.registry, self.settings, self.cfg.strategies.usd_assets,
                                  start_ms, self.publish, self.book, self.clock)
            self.perps.replay(self._booked_before)  # the carries as booked before reconciliation books more
            await self.perps.start()
        for i, c in self.clients.items():
            info = await c.account()
            self.balances[i] = {a: free for a, (free, _locked) in info.balances.items()}
            if self.paper is not None:
                continue  # paper orders never reach the venue: it has nothing to report
            if c.venue.ws_api_url:
                stream = UserStream(c, c.venue.ws_api_url, self.on_report, on_gap=self._on_user_stream_gap)
                self.streams.append(stream)
                await stream.start()
            elif c.venue.user_ws_url:  # MEXC: a listen key's private stream; the trade list only while it is down
                lk = ListenKeyStream(c, c.venue.user_ws_url, self.on_report, on_gap=self._on_user_stream_gap)
                self.streams.append(lk)
                self.fill_streams[i] = lk
                await lk.start()
        self.n_reconciled = await reconcile(self, state, self.journal_dir)
        self.ready = True
        for i in self.clients:
            self.publish_venue(i)
        self._spawn(self._venue_heartbeat(), "venue-heartbeat")
        if self.perps is not None:
            self._spawn(self.perps.run_accounts(), "perp-accounts")
            self._spawn(self.perps.run_funding(), "funding")
        if not self._fused:
            pull = self.socket(zmq.PULL)
            pull.bind(self.ctx.endpoints.intents)
            self._pull = pull
            self.watch(pull, self._on_intents)

    @property
    def runs_in_flight(self) -> int:
        """Executions sent and not yet booked."""
        return len(self._runs)

    def paper_client(self, venue: Venue, timeout_s: float) -> PaperVenueClient:
        """A venue's paper transport (``draizer backtest`` gives its own: rules from the recording, no network)."""
        assert self.paper is not None
        return PaperVenueClient(venue, self.registry, timeout_s, self.paper, self.clock)

    def _paper_account_opened(self, venue: int, info: AccountInfo) -> None:
        self.balances[venue] = {a: free for a, (free, _locked) in info.balances.items()}
        if self.ready:
            self.publish_venue(venue)

    def _subscribe_paper_books(self) -> None:
        """The paper books follow the feeds' market data (the single placement's feeds call ``paper.on_batch``)."""
        assert self.paper is not None
        sub = self.socket(zmq.SUB)
        sub.setsockopt(zmq.SUBSCRIBE, b"")
        for i in self.clients:
            sub.connect(self.ctx.endpoints.market_data(self.cfg.venues[i].name))
        codec: Codec[MarketData] = market_data_codec()
        on_batch = self.paper.on_batch
        self.watch(sub, lambda: self.drain(sub, codec, on_batch, "market-data frame (paper books)"))

    def _resume_books(self, state: JournalState) -> None:
        """Before reconciliation books anything: the session's books as the journal has them."""
        if state.books_unreadable:
            log.error("order journal: %d settled executions carry unreadable books; the run's ledger lacks them",
                      state.books_unreadable)
        self.books = resumed(state.books, self.session)
        self.books_loaded = True
        if state.books is not None and state.books.session == self.session:
            self._booked_before = booked_executions(state.carry_events)
        if self.books.seq:
            log.info("session %s: books resumed from the journal: %d executions, pnl %+.4f USD", self.session,
                     self.books.seq, self.books.pnl_usd)

    def _republish(self, state: JournalState) -> None:
        """Publish the Executions a kill lost between their ``done`` record and their publication."""
        if self.event_log is None or not state.booked_events or state.books is None \
                or state.books.session != self.session:
            return
        logged, whole = logged_executions(self.event_log.directory)
        lost = unpublished(state.booked_events, logged, whole)
        for exe in lost:
            self.publish(exe)
        if lost:
            self.n_republished += len(lost)
            log.warning("published %d executions a restart found booked but never published: %s", len(lost),
                        [e.opportunity_id for e in lost][:10])

    async def on_stop(self) -> None:
        if self._pull is not None:
            asyncio.get_running_loop().remove_reader(self._pull.getsockopt(zmq.FD))
        runs = [t for t in self._jobs if t.get_name().startswith("exec-")]
        if runs:
            log.info("waiting for %d executions in flight", len(runs))
            await asyncio.wait(runs, timeout=STOP_GRACE_S)
        for t in self._jobs:
            t.cancel()
        for s in self.streams:
            await s.close()
        for c in self.clients.values():
            await c.close()
        self.journal.close()

    def _spawn(self, coro: Any, name: str = "") -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro, name=name or None)
        self._jobs.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._jobs.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("executor task %s failed", task.get_name(), exc_info=task.exception())

    # ----- intents
    def _on_intents(self) -> None:
        assert self._pull is not None
        self.drain(self._pull, self._intents, self.on_intent, "order intent")

    def on_intent(self, intent: OrderIntent) -> bool:
        """The hot path: orders from the venues' prepared templates, their records in the journal with one
        write, every request written; only then bookkeeping (answers, the execution's task, the group sync)."""
        if intent.opportunity.strategy == STRATEGY_FUNDING:
            sized = self._carry_intent(intent)
            if isinstance(sized, str):
                self.n_refused += 1
                self._abort(intent, sized)
                return False
            intent = sized
        opp = intent.opportunity
        why = self._refusal(intent)
        if why:
            self.n_refused += 1
            self._abort(intent, why)
            return False
        prepared = self._prepare_legs(intent)
        if prepared is None:  # a leg without a template (a venue filter of 0): the general path
            orders = [
                self.new_order(intent, ROLE_LEG, i, leg.venue, leg.symbol, leg.side, leg.qty, leg.price)
                for i, leg in enumerate(opp.legs)
            ]
            futures = self.send(orders, intent)
            sent = journaled = self.clock.monotonic_ns()  # the general path journals inside send(): no separate stamp
        else:
            orders, templates = prepared
            self.journal.intent_and_orders(opp.id, opp.strategy, [intent], orders)
            journaled = self.clock.monotonic_ns()
            clients = self.clients
            if self.journal.failure is not None:  # the write itself (``always``), or a sync, failed just now
                return self._refuse_after_journal(intent, orders, journaled)
            written = [
                clients[o.venue].write_order(t, o.price, o.qty, o.client_order_id)
                for o, t in zip(orders, templates, strict=True)
            ]
            sent = self.clock.monotonic_ns()
            futures = [
                clients[o.venue].track_answer(h, o.client_order_id) if h is not None
                else clients[o.venue].not_sent(o.client_order_id)
                for o, h in zip(orders, written, strict=True)
            ]
            self.journal.sync_soon()  # group commit, after the requests are on the wire
            self.n_orders += len(orders)
        self.n_intents += 1
        self._latency["tick_to_order"].append(sent - opp.tick_ns)
        self._latency["decide_to_order"].append(sent - intent.decided_ns)
        run = ExecutionRun(self, intent, orders, sent)
        run.journaled_ns = journaled
        self.start_run(run, futures)
        return True

    def _carry_intent(self, intent: OrderIntent) -> OrderIntent | str:
        """A carry's CLOSE sized to what the carry holds (never more: its perpetual buy is reduce-only); an OPEN on a
        symbol that already holds one is refused (after a restart the detector may not know it). A reason when
        refused."""
        if self.perps is None:
            return "no perpetual venue takes orders (api_key_env unset)"
        opp = intent.opportunity
        carries = self.perps.carries
        if opp.action == ACTION_CLOSE:
            legs = carries.close_legs(opp)
            if isinstance(legs, str):
                return legs
            return OrderIntent(msgspec.structs.replace(opp, legs=legs), intent.decided_ns)
        if opp.symbol in carries.open:
            return f"a carry is already open on {self.registry.symbol(opp.symbol)}"
        return intent

    def _refuse_after_journal(self, intent: OrderIntent, orders: list[TrackedOrder], journaled: int) -> bool:
        """The journal failed between the refusal check and the write: its records may never reach the disk, so
        none of the legs is sent; the execution settles them as not sent (the journal says so too)."""
        why = f"not sent: the order journal failed ({self.journal.failure})"
        if self.journal.take_failure() is not None:
            self.publish(Alert("executor", "journal", f"order journal sync failed ({self.journal.failure}): new legs "
                               "are refused until a restart", 0, self.clock.time_ns()))
        futures = [self.clients[o.venue].not_sent(o.client_order_id, why) for o in orders]
        run = ExecutionRun(self, intent, orders, journaled)
        run.journaled_ns = journaled
        self.start_run(run, futures)
        return True

    def _prepare_legs(self, intent: OrderIntent) -> tuple[list[TrackedOrder], list[OrderTemplate]] | None:
        """Each leg as a TrackedOrder with its wire texts (exactly ``shared.money``'s, from the template's
        integer ticks and steps) and the template that writes it; None when a leg has no template."""
        opp = intent.opportunity
        order_type = ORDER_MARKET if self.settings.order_type == "market" else ORDER_LIMIT_IOC
        created = self.clock.time_ns()
        orders: list[TrackedOrder] = []
        templates: list[OrderTemplate] = []
        for i, leg in enumerate(opp.legs):
            t = self.clients[leg.venue].template(leg.symbol, leg.side, order_type)
            if t is None:
                return None
            qty = t.qty.text(t.qty.floor_step(leg.qty))  # the venue's step: floored, never rounded up
            px = None if order_type == ORDER_MARKET else t.price.text(t.price.nearest(leg.price))
            orders.append(TrackedOrder(client_order_id(opp.id, ROLE_LEG, i, leg.side), opp.id, ROLE_LEG, i, leg.venue,
                                       leg.symbol, leg.side, qty, px, order_type, created))
            templates.append(t)
        return orders, templates

    def _refusal(self, intent: OrderIntent) -> str:
        if not self.ready:
            return "executor not ready (reconciling)"
        if self.halted:
            return "kill switch"
        if self.journal.failure is not None:  # a record may never reach the disk: no new exposure
            if self.journal.take_failure() is not None:  # the first refusal alerts, once
                self.publish(Alert("executor", "journal", f"order journal sync failed ({self.journal.failure}): "
                                   "new legs are refused until a restart", 0, self.clock.time_ns()))
            return f"order journal failed ({self.journal.failure}); new legs are refused until a restart"
        age_ms = (self.clock.monotonic_ns() - intent.opportunity.detected_ns) / 1e6
        if age_ms > self.cfg.risk.max_opportunity_age_ms:
            # Risk checked the age when it decided; a queue in front of this process can add more. An order
            # priced on a book this old meets a different book: better not to send it.
            return f"opportunity {age_ms:.1f} ms old at send (limit {self.cfg.risk.max_opportunity_age_ms:g} ms)"
        for leg in intent.opportunity.legs:
            if leg.venue not in self.clients:
                return f"venue {self.registry.venue(leg.venue)} has no order API"
        return ""

    def _abort(self, intent: OrderIntent, why: str) -> None:
        """Refused before any order: the Execution still goes out so risk frees the slot."""
        opp = intent.opportunity
        now = self.clock.monotonic_ns()
        log.warning("intent %d refused: %s", opp.id, why)
        self.publish(Execution(opp.id, opp.symbol, -1, -1, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, OUTCOME_ABORTED,
                               opp.tick_ns, opp.detected_ns, intent.decided_ns, now, now, opp.strategy, note=why))

    def new_order(
        self, intent: OrderIntent, role: int, leg: int, venue: int, symbol: int, side: int,
        qty: float | Decimal, price: float | Decimal | None, attempt: int = 0,
    ) -> TrackedOrder:
        rules = self.rules(venue, symbol)
        market = self.settings.order_type == "market" and role == ROLE_LEG
        # A perpetual order shrinks the position when it closes (a CLOSE's legs and their hedges) or reverses an
        # OPEN's excess (an unwind); reduce-only then, so no venue fill can flip the position.
        closing = intent.opportunity.action == ACTION_CLOSE
        reduce_only = self.clients[venue].perp and closing != (role == ROLE_UNWIND)
        qty_text = to_wire(qty) if isinstance(qty, Decimal) else floor_step_text(qty, rules.step)
        if market or price is None:
            px: str | None = None
        else:
            px = to_wire(price) if isinstance(price, Decimal) else price_text(price, rules.tick)
        return TrackedOrder(
            client_order_id=client_order_id(intent.opportunity.id, role, leg, side, attempt),
            opportunity_id=intent.opportunity.id,
            role=role,
            leg=leg,
            venue=venue,
            symbol=symbol,
            side=side,
            qty=qty_text,
            price=px,
            order_type="market" if px is None else "limit_ioc",
            created_ns=self.clock.time_ns(),
            reduce_only=reduce_only,
        )

    def send(
        self, orders: list[TrackedOrder], intent: OrderIntent | None = None
    ) -> list[asyncio.Future[OrderAnswer]]:
        """Journal the orders (and their intent, for new legs) with ONE write, write every request, then ask
        for the group commit. The write puts the records in the page cache before any request leaves (a kill -9
        loses nothing; ``always`` also fsyncs it here); the fsync runs on the journal's thread after the send,
        off the tick→order path; a host crash before it is recovered from the venues (``reconcile.py``).
        After a journal sync failure new legs are refused (not sent: their records may never reach the disk);
        unwinds and hedges still go out, since they reduce risk."""
        if intent is None:
            self.journal.orders(orders)
        else:
            self.journal.intent_and_orders(intent.opportunity.id, intent.opportunity.strategy, [intent], orders)
        failure = self.journal.failure
        futures: list[asyncio.Future[OrderAnswer]] = []
        for o in orders:
            if failure is not None and o.role == ROLE_LEG:
                refused: asyncio.Future[OrderAnswer] = asyncio.get_running_loop().create_future()
                refused.set_result(answer_without_order(ANSWER_THROTTLED, o.client_order_id, 0,
                                                        f"not sent: the order journal failed ({failure})"))
                futures.append(refused)
                continue
            c = self.clients[o.venue]
            # Unwinds and hedges reduce risk: they may use the rate reserve new legs leave free (budget_share).
            futures.append(c.send_order(o.symbol, o.side, o.qty, o.price, o.client_order_id, o.order_type,
                                        rescue=o.role != ROLE_LEG, reduce_only=o.reduce_only))
        self.journal.sync_soon()  # group commit: after the requests are on the wire
        self.n_orders += len(orders)
        if failure is not None and self.journal.take_failure() is not None:
            self.publish(Alert("executor", "journal", f"order journal sync failed ({failure}): new legs are "
                               "refused until a restart", 0, self.clock.time_ns()))
        return futures

    def start_run(
        self, run: ExecutionRun, futures: list[asyncio.Future[OrderAnswer]] | None = None
    ) -> asyncio.Task[Any]:
        opp_id = run.intent.opportunity.id
        self._runs[opp_id] = run
        for o in run.orders:
            self._by_cid[o.client_order_id] = (run, o)
        coro = run.run(futures) if futures is not None else run.finish()
        task = self._spawn(coro, f"exec-{opp_id}")
        task.add_done_callback(lambda _t: self._forget(run))
        return task

    def track(self, run: ExecutionRun, o: TrackedOrder) -> None:
        self._by_cid[o.client_order_id] = (run, o)

    def _forget(self, run: ExecutionRun) -> None:
        self._runs.pop(run.intent.opportunity.id, None)
        for o in run.orders:
            self._by_cid.pop(o.client_order_id, None)

    def rules(self, venue: int, symbol: int) -> SymbolRules:
        return self.clients[venue].rules_for(symbol)

    def log_reject(self, o: TrackedOrder, a: OrderAnswer) -> None:
        log.warning("order %s refused by %s: %s %s", o.client_order_id, self.registry.venue(o.venue),
                    a.error_code, a.error_msg)

    # ----- user stream
    def on_report(self, r: ExecutionReport | OrderReport) -> None:
        """A user-stream report (Binance executionReport; MEXC's orders and deals pushes): the same state machine as
        the REST answers, deduplicated by trade id. A report without a status (a MEXC deal) is a fill only."""
        self.n_reports += 1
        found = self._by_cid.get(r.client_order_id)
        if found is None:
            return  # not an order of a running execution (a reconciled one, or someone else's)
        run, o = found
        changed = o.advance(r.status, r.cum_qty, r.cum_quote, str(r.order_id)) if r.status else False
        if r.trade_id:
            changed = o.add_trade(Trade(r.trade_id, r.last_price, r.last_qty, r.commission,
                                        r.commission_asset or "")) or changed  # a report's fill, as a trade
        if changed:
            self.journal.update(o)
            run.wake(o.client_order_id)

    def stream_covers(self, o: TrackedOrder) -> bool:
        """The venue's user stream has been up since before ``o`` was created: its fills come by the stream."""
        s = self.fill_streams.get(o.venue)
        return s is not None and s.covers(o.created_ns)

    def _on_user_stream_gap(self) -> None:
        """The user stream was away: reports may be lost, so every open order is queried now, not at its next poll."""
        for run, o in list(self._by_cid.values()):
            if not o.final:
                run.wake(o.client_order_id)

    # ----- books
    async def book(self, exe: Execution, books: Books, n_trades: int) -> None:
        """The execution's ``done`` record on disk first, then the books and the Execution event: a ``done`` lost
        after a published Execution would settle, and book, the execution twice after a restart. A sync failure
        (alerted once) still books and publishes: the record is in the page cache, which any restart short of a
        host crash reads back. Cancelled while waiting (a stop), it books and publishes all the same: ``close``
        syncs the record before the process ends. The session's books take the execution with its ``done`` record,
        which carries them, numbered: a restart rebuilds exactly what was booked."""
        booked = self.books.next(exe.opportunity_id, exe.outcome, exe.pnl_usd, books.ledger)
        fields = {**booked.done_fields(self.session), "event": encode_event(exe, self._events_codec.encode)}
        if exe.strategy == STRATEGY_FUNDING and exe.outcome != OUTCOME_ABORTED:
            fields["carry"] = True  # kept through compaction: the carries are rebuilt from these
        self.journal.done(exe.opportunity_id, exe.outcome, fields)
        self.books.add(booked, published=False)
        try:
            await asyncio.shield(self.journal.synced())
        except JournalSyncError as exc:
            if self.journal.take_failure() is not None:
                self.publish(Alert("executor", "journal", f"{exc}: new legs are refused until a restart", 0,
                                   self.clock.time_ns()))
        finally:
            for (venue, asset), delta in books.ledger.deltas().items():
                bal = self.balances.setdefault(venue, {})
                bal[asset] = bal.get(asset, Decimal(0)) + delta
            self.run_ledger.merge(books.ledger)
            self.n_fills += n_trades
            self.outcomes[exe.outcome] = self.outcomes.get(exe.outcome, 0) + 1
            self.pnl_usd += exe.pnl_usd
            self.publish(exe)
            self.books.published(booked.seq)
            if self.perps is not None:
                self.perps.on_booked(exe)
            for venue in {f.venue for f in exe.legs}:  # balances moved, or the rate budget did (a 429 blocks one)
                self.publish_venue(venue)

    def publish_venue(self, venue: int) -> None:
        c = self.clients.get(venue)
        if c is None:
            return
        w1m, wlim, o10, olim10, o1d, olim1d, blocked_ms = c.budget.usage()
        balances = tuple(sorted((a, to_wire(v)) for a, v in self.balances.get(venue, {}).items()))
        session = tuple(sorted((a, to_wire(d)) for (v, a), d in self.books.ledger.deltas().items() if v == venue))
        self.publish(VenueState(venue, self.clock.time_ns(), c.reachable, balances, w1m, wlim, o10, olim10, o1d,
                                olim1d, blocked_ms, sum(1 for _r, o in self._by_cid.values() if o.venue == venue
                                                        and not o.final), session,
                                self.perps.margin(venue) if self.perps is not None else None))

    async def _venue_heartbeat(self) -> None:
        last_refresh = self.clock.monotonic()
        while True:
            await asyncio.sleep(VENUE_STATE_INTERVAL_S)
            if self.clock.monotonic() - last_refresh > ACCOUNT_REFRESH_S and not self._runs:
                last_refresh = self.clock.monotonic()
                await self._refresh_balances()
            for i in self.clients:
                self.publish_venue(i)

    async def _refresh_balances(self) -> None:
        """The venue's word replaces ours when nothing is in flight (deposits, manual trades, fees we missed)."""
        for i, c in self.clients.items():
            try:
                info = await c.account()
            except (OSError, TimeoutError, ConnectionError, VenueError, ProtocolError) as exc:
                log.warning("%s: balance refresh failed (%s)", c.name, exc)
                continue
            if not self._runs:
                self.balances[i] = {a: free for a, (free, _locked) in info.balances.items()}

    # ----- control
    def on_command(self, cmd: Command) -> Reply | None:
        if cmd.cmd == "kill":
            # Halted now; the cancels (one request per venue and symbol) run after the reply, so an operator's
            # kill through risk and the HTTP API is confirmed in milliseconds. The outcome is logged and alerted.
            self.halted = True
            tracked_open = sum(1 for _r, o in self._by_cid.values() if not o.final)
            self._spawn(self._cancel_everything(), "kill")
            return Reply(ok=True, data={"halted": True, "tracked_open": tracked_open, "cancelling": True})
        if cmd.cmd == "resume":
            self.halted = False
            log.warning("kill switch released")
            return Reply(ok=True, data={"halted": False})
        if cmd.cmd == "paper_balances":
            if self.paper is None:
                return Reply(False, "paper fills are the venues' here (paper.fills = \"venue\", or live mode)")
            return Reply(True, data={"venues": self.paper.report(), "marks": self.paper.marks()})
        if cmd.cmd == "orders":
            return self._orders_reply()
        if cmd.cmd == "booked":
            return self._booked_reply(cmd.args)
        if cmd.cmd == "carries":
            return self._carries_reply()
        if cmd.cmd == "book_funding":
            return self._book_funding_now()
        return None

    def _carries_reply(self) -> Reply:
        """The carries (the detector's restart, ``draizer status``): open and recently closed."""
        if not self.ready:  # the journal's carries are replayed and reconciled only by then
            return Reply(ok=False, error="executor starting: carries not known yet")
        if self.perps is None:
            return Reply(ok=True, data={"open": [], "closed": [], "pending": []})
        pending = sorted({self.registry.symbol(r.intent.opportunity.symbol) for r in self._runs.values()
                          if r.intent.opportunity.strategy == STRATEGY_FUNDING})
        return Reply(ok=True, data={**self.perps.carries.snapshot(), "pending": pending})

    async def _book_funding_now(self) -> Reply:
        """The settlement's ask: every funding payment the venues report, booked now."""
        if self.perps is None:
            return Reply(ok=True, data={"booked": 0})
        return Reply(ok=True, data={"booked": await self.perps.poll_funding()})

    def _orders_reply(self) -> Reply:
        """What is open, and the run's books (every lifetime of this process in the session: the settlement's
        view); ``process``: this process's own share."""
        b = self.books
        return Reply(ok=True, data={
            "in_flight": len(self._runs),
            "open": [o.client_order_id for _r, o in self._by_cid.values() if not o.final],
            "session": b.session,
            "executions": b.seq,
            "outcomes": dict(b.outcomes),
            "pnl_usd": b.pnl_usd,
            "deltas": [[self.registry.venue(v), a, to_wire(d)] for (v, a), d in sorted(b.ledger.deltas().items())],
            "process": {"pid": os.getpid(), "intents": self.n_intents, "executions": sum(self.outcomes.values()),
                        "pnl_usd": self.pnl_usd},
        })

    def _booked_reply(self, args: dict[str, Any]) -> Reply:
        """Risk's catch-up: the executions numbered after ``after`` in ``session`` (from the first one when the
        asker followed another session)."""
        if not self.books_loaded:  # numbers before the journal is read would look like a sequence gone back
            return Reply(ok=False, error="executor starting: its books are not loaded yet")
        after = int(args.get("after", 0)) if args.get("session") == self.session else 0
        return Reply(ok=True, data=self.books.since(after))

    async def _cancel_everything(self) -> int:
        """Every open order on every venue and symbol, all venues at once; how many were cancelled."""
        self.publish(Alert("executor", "kill_switch", "kill switch: intake halted, cancelling open orders", 0,
                           self.clock.time_ns()))
        counts = await asyncio.gather(*(self._cancel_venue(v, c) for v, c in self.clients.items()))
        cancelled = sum(n for n, _failed in counts)
        failed = [c.name for c, (_n, bad) in zip(self.clients.values(), counts, strict=True) if bad]
        if failed:
            log.error("kill switch: %d orders cancelled; cancelling FAILED on %s", cancelled, failed)
            self.publish(Alert("executor", "kill_switch", f"kill switch: cancelling failed on {failed}", 0,
                               self.clock.time_ns()))
        else:
            log.warning("kill switch: intake halted, %d orders cancelled", cancelled)
        self.n_kill_cancelled += cancelled
        return cancelled

    async def _cancel_venue(self, venue: int, c: VenueClient) -> tuple[int, bool]:
        """Every open order of every symbol the venue lists, not only the ones we track: nothing may rest."""
        cancelled, failed = 0, False
        for s in self.registry.listed_symbols(venue):
            try:
                if not await c.open_orders(s):
                    continue
                for a in await c.cancel_all(s):
                    cancelled += 1
                    found = self._by_cid.get(a.client_order_id)
                    if found is not None:
                        found[0].apply(found[1], a)
                        found[0].wake(a.client_order_id)
            except (OSError, TimeoutError, ConnectionError, VenueError, ProtocolError) as exc:
                failed = True
                log.error("kill switch: cancelling %s on %s failed (%s)", self.registry.symbol(s), c.name, exc)
        return cancelled, failed

    # ----- stats
    def counters(self) -> dict[str, int]:
        c = {
            "intents": self.n_intents,
            "orders": self.n_orders,
            "fills": self.n_fills,
            "orders_rejected": self.n_rejected,
            "executions": sum(self.outcomes.values()),
            "refused": self.n_refused,
            "reconciled": self.n_reconciled,
            "republished": self.n_republished,
            "trades_missing": self.n_trades_missing,
            "user_reports": self.n_reports,
            "trade_lists": self.n_trade_lists,
            "stream_trades_late": self.n_stream_trades_late,
            "user_stream_malformed": sum(s.malformed for s in self.streams),
            "user_stream_reconnects": sum(s.reconnects for s in self.streams),
            "kill_cancelled": self.n_kill_cancelled,
            "in_flight": len(self._runs),
            "malformed": self.n_malformed,
        }
        if self.perps is not None:
            c.update(self.perps.counters())
        c.update({f"outcome.{k}": v for k, v in self.outcomes.items()})
        return c

    def gauges(self) -> dict[str, float]:
        g = {"pnl_usd": self.pnl_usd, "halted": float(self.halted)}
        if self.perps is not None:
            g["carries_open"] = float(len(self.perps.carries.open))
        return g

    def take_latencies(self) -> dict[str, list[int]]:
        out = {k: v[-512:] for k, v in self._latency.items()}
        self._latency = {k: [] for k in self._latency}
        return out
