"""Start-up reconciliation: the journal and the venues agree before any new intent.

Durability contract (see ``order_journal.py``): an order's record reaches the page cache with one ``write()``
before its request is sent, so a kill -9 at any point loses nothing; the fsync is group-committed right after
the send, so a host crash between the send and that fsync may lose the journal's tail while the orders exist
at the venue. This module closes both gaps, in this order:

1. **Orders the journal does not know** (a host crash lost their records). For every venue and listed symbol
   the venue's ``allOrders`` since the latest record that survived (``JournalState.last_ts_ns``; the compaction
   at every start stamps that start) minus
   ``execution.recover_margin_s``, never further back than ``execution.recover_lookback_s`` (sliced into the
   24-hour spans Binance allows, paged by time), plus its open orders. Every ``dz`` client id (deterministic:
   ``client_order_id()`` in ``service.py``) the journal neither holds nor settled is rebuilt from the venue's
   answer (venue, symbol, side, quantity, price, status, executed), grouped by the opportunity id its client
   id carries, journaled (and synced) at once, and booked below like any open execution, with the note
   "recovered from the venue after a host crash". A journal that never started (no record at all) skips this.
   This comes *first*: a correction whose record was lost must be part of its execution before that execution's
   legs are evened out again, or the unwind would be sent twice.
2. **Executions the journal left open** (and those just recovered): every order that is not final is *queried*
   by its client order id. An order the venue does not know and that can no longer arrive (its recvWindow has
   passed) was never placed: it is marked refused. Nothing is resent. The execution then runs the normal path
   (trades from ``myTrades``, legging, books), so an imbalance the crash left is unwound now — when the plan is
   complete: an intent rebuilt from the venue is complete only with every leg's order found and a known shape
   (two legs on two venues: cross; three on one: triangular). An incomplete plan is booked as the venue has it,
   never guessed at: a position it leaves is reported as an orphan (alert; risk halts until an operator
   resumes). The unwind deadline counts from this restart. Each Execution goes out once.
3. Every venue's open orders are checked: one of ours that still nobody can explain is cancelled.
4. The journal is compacted to what is still open, plus the ids of recently settled executions (so a later
   recovery never books their orders again) and this start's time.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable, Iterable
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple, TypeVar

import msgspec

from services.executor.execution import ExecutionRun
from services.executor.order_journal import NO_STRATEGY, OrderJournal
from services.executor.order_state import TrackedOrder
from shared.errors import ProtocolError, VenueError
from shared.messages import (
    ACTION_OPEN,
    ROLE_HEDGE,
    ROLE_LEG,
    ROLE_UNWIND,
    SIDE_BUY,
    SIDE_SELL,
    STRATEGY_CROSS,
    STRATEGY_TRIANGULAR,
    Alert,
    Leg,
    Opportunity,
    OrderIntent,
)
from shared.money import to_wire
from shared.venues.common import ORDER_LIMIT_IOC, ORDER_MARKET
from shared.venues.spot_rest import ALL_ORDERS_MAX_LIMIT, ALL_ORDERS_MAX_SPAN_MS, VenueOrder

if TYPE_CHECKING:
    from services.executor.order_journal import JournalState
    from services.executor.service import Executor
    from services.executor.venue_client import VenueClient

log = logging.getLogger(__name__)

OUR_PREFIX = "dz"
RECONCILED_NOTE = "reconciled after a restart"
RECOVERED_NOTE = "recovered from the venue after a host crash"
WINDOW_END_SLACK_NS = 5 * 10**9  # nothing is sent while this runs: the end only absorbs the clock offset's error
MAX_PAGES = 50  # per 24-hour span: 50 000 orders of one symbol in a day is far beyond what draizer sends
LIST_ATTEMPTS = 3
_LEG_ID = re.compile(r"dz([0-9a-f]+)([bs])(\d+)")
_FIX_ID = re.compile(r"dz([0-9a-f]+)([uh])(\d+)([bs])(\d+)")
_FIX_ROLE = {"u": ROLE_UNWIND, "h": ROLE_HEDGE}

Errors = (OSError, TimeoutError, ConnectionError, VenueError, ProtocolError)
T = TypeVar("T")


class OrderIdentity(NamedTuple):
    """What a client order id of ours says (``client_order_id()`` in ``service.py``)."""

    opportunity_id: int
    role: int
    leg: int
    side: int
    attempt: int


def parse_client_order_id(cid: str) -> OrderIdentity | None:
    """``dz{opp:x}{b|s}{leg}`` (a leg) or ``dz{opp:x}{u|h}{leg}{b|s}{attempt}`` (a correction); None for
    anything else. The side letter is the last non-digit, so a hex ``b`` in the id is never mistaken for it."""
    m = _LEG_ID.fullmatch(cid)
    if m:
        side = SIDE_BUY if m.group(2) == "b" else SIDE_SELL
        return OrderIdentity(int(m.group(1), 16), ROLE_LEG, int(m.group(3)), side, 0)
    m = _FIX_ID.fullmatch(cid)
    if m:
        side = SIDE_BUY if m.group(4) == "b" else SIDE_SELL
        return OrderIdentity(int(m.group(1), 16), _FIX_ROLE[m.group(2)], int(m.group(3)), side, int(m.group(5)))
    return None


class _FinishRun(ExecutionRun):
    """An execution finished after a restart. Legging compares every planned leg's fill: without an order for
    each (records a host crash took, a leg the venue never held), evening out would be a guess with money, so
    an incomplete plan is booked as it stands and any fill is reported as an orphaned position."""

    def __init__(self, ex: Executor, intent: OrderIntent, orders: list[TrackedOrder], *, complete: bool) -> None:
        super().__init__(ex, intent, orders, ex.clock.monotonic_ns())  # the unwind deadline counts from the restart
        self.complete = complete

    async def _even_out(self) -> tuple[bool, bool]:
        if self.complete:
            return await super()._even_out()
        # (corrections were sent before the crash, a leg holds a position nobody can say is hedged)
        return any(o.role != ROLE_LEG for o in self.orders), any(self._net_left(leg) for leg in self._legs())

    def _legs(self) -> set[int]:
        return {o.leg for o in self.orders}

    def _net_left(self, leg: int) -> bool:
        """The orders of one leg do not net to less than a step (corrections count against the leg's side)."""
        orders = [o for o in self.orders if o.leg == leg]
        first = next((o for o in orders if o.role == ROLE_LEG), orders[0])
        net = sum((o.executed if o.side == first.side else -o.executed for o in orders), Decimal(0))
        return abs(net) >= self.ex.rules(first.venue, first.symbol).step


async def reconcile(ex: Executor, state: JournalState, journal_dir: Path) -> int:
    """Recover what the journal lost, settle every open execution; how many executions were finished."""
    recovered = await recover_orders(ex, state)
    runs = await _runs(ex, state, recovered)
    if runs:
        log.warning("journal: %d executions were open at the last stop (%d recovered from the venues); "
                    "reconciling with the venues", len(runs), len(recovered))
    timeout = ex.settings.reconcile_timeout_s
    pending = [ex.start_run(run) for run in runs]
    if pending:
        _done, not_done = await asyncio.wait(pending, timeout=timeout)
        if not_done:
            log.error("reconciliation: %d executions not settled within %.0fs; still running", len(not_done), timeout)
    known = set(state.orders) | {o.client_order_id for orders in recovered.values() for o in orders}
    await _cancel_unexplained(ex, known)
    # Compacted with this start as its latest time: every order created before now is known or was recovered,
    # so a later host crash is looked for from here on (an idle journal's last record may be days old).
    loaded = OrderJournal.load(journal_dir)
    OrderJournal.compact(journal_dir, loaded._replace(last_ts_ns=max(loaded.last_ts_ns, ex.clock.time_ns())))
    return len(runs)


# ----------------------------------------------------------------- 1. orders the journal lost


def recovery_window(ex: Executor, state: JournalState, now_ns: int) -> tuple[int, int] | None:
    """[start, end] in ns of our wall clock in which a lost order can have been created; None: nothing to do."""
    if state.last_ts_ns == 0 and state.last_opportunity_id == 0:
        return None  # an empty journal: this executor never ran here, nothing can be lost
    margin = int(ex.settings.recover_margin_s * 1e9)
    lookback = int(ex.settings.recover_lookback_s * 1e9)
    start = min(state.last_ts_ns - margin, now_ns - margin)  # a record from the future: the clock went back
    return max(start, now_ns - lookback), now_ns + WINDOW_END_SLACK_NS


async def recover_orders(ex: Executor, state: JournalState) -> dict[int, list[TrackedOrder]]:
    """Orders of ours at the venues that the journal neither holds nor settled, rebuilt, by opportunity id."""
    window = recovery_window(ex, state, ex.clock.time_ns())
    if window is None:
        return {}
    found: dict[str, TrackedOrder] = {}
    for venue, client in ex.clients.items():
        if client.perp:
            # No order-history listing is wired for the perpetual formats yet: an order of a carry that a host
            # crash took from the journal is not rebuilt here. Its position is still the venue's (read at start
            # and compared by the settlement); an operator hears of the gap.
            log.warning("%s: orders a host crash took from the journal are not looked for on perpetual venues; "
                        "compare the positions with the carries", client.name)
            continue
        for s in ex.registry.listed_symbols(venue):
            listed = await _listed_orders(ex, client, s, window)
            for vo in listed:
                ident = parse_client_order_id(vo.client_order_id)
                if ident is None or vo.client_order_id in state.orders or ident.opportunity_id in state.settled:
                    continue
                found.setdefault(vo.client_order_id, _rebuild(client, venue, s, vo, ident))
    by_opp: dict[int, list[TrackedOrder]] = {}
    for o in found.values():
        by_opp.setdefault(o.opportunity_id, []).append(o)
    if by_opp:
        log.warning("journal: %d orders of %d executions exist at the venues but not in the journal (a host crash "
                    "lost its tail); recovering them: %s", len(found), len(by_opp), sorted(found))
    return by_opp


async def _listed_orders(ex: Executor, client: VenueClient, symbol: int, window: tuple[int, int]) -> list[VenueOrder]:
    """The venue's orders of one symbol in the window, plus open ones from before it; [] (and an alert) when the
    venue cannot say: recovery is then incomplete for it, which an operator must know."""
    try:
        orders = await _orders_in(client, symbol, window)
        listed = {o.client_order_id for o in orders}
        open_ids = {a.client_order_id for a in await _retry(lambda: client.open_orders(symbol))}
        older = {c for c in open_ids if c.startswith(OUR_PREFIX) and c not in listed}
        if older:  # open, yet created before the window: the venue's most recent orders hold them
            recent, _bad = await _retry(lambda: client.all_orders(symbol))
            orders.extend(o for o in recent if o.client_order_id in older)
        return orders
    except Errors as exc:
        name = ex.registry.symbol(symbol)
        log.error("recovery: the orders of %s on %s are unavailable (%s); orders a host crash took from the "
                  "journal there are not booked", name, client.name, exc)
        ex.publish(Alert("executor", "recovery", f"recovery incomplete: {name} on {client.name} unavailable "
                         f"({exc})", 0, ex.clock.time_ns()))
        return []


async def _orders_in(client: VenueClient, symbol: int, window: tuple[int, int]) -> list[VenueOrder]:
    """``allOrders`` over the window in venue time, in spans of at most 24 h, each paged by creation time."""
    offset = client.clock_offset_ms
    start, end = window[0] // 1_000_000 + offset, window[1] // 1_000_000 + offset
    out: dict[str, VenueOrder] = {}
    while start <= end:
        span_end = min(end, start + ALL_ORDERS_MAX_SPAN_MS - 1)
        await _page(client, symbol, start, span_end, out)
        start = span_end + 1
    return sorted(out.values(), key=lambda o: (o.time_ms, o.order_id))


async def _page(client: VenueClient, symbol: int, start: int, end: int, out: dict[str, VenueOrder]) -> None:
    for _ in range(MAX_PAGES):
        page, unreadable = await _retry(lambda s0=start: client.all_orders(symbol, s0, end, ALL_ORDERS_MAX_LIMIT))
        for cid in unreadable:
            log.error("recovery: %s listed an order it did not describe readably: %s", client.name, cid)
        for o in page:
            out[o.client_order_id] = o
        if len(page) + len(unreadable) < ALL_ORDERS_MAX_LIMIT:
            return
        # A full page: go on from its newest order (inclusive, deduplicated by client id), always forward.
        start = max(start + 1, max((o.time_ms for o in page), default=start))
    log.error("recovery: more than %d pages of orders on %s; the rest of the window is not listed",
              MAX_PAGES, client.name)


async def _retry(call: Callable[[], Awaitable[T]]) -> T:
    """A listing call, retried on a transient failure (no answer, 5xx, 429) with a short backoff."""
    wait = 0.2
    for attempt in range(LIST_ATTEMPTS):
        try:
            return await call()
        except (OSError, TimeoutError, ConnectionError, ProtocolError) as exc:
            if attempt == LIST_ATTEMPTS - 1:
                raise
            log.warning("recovery: listing failed (%s); retrying", exc)
        except VenueError as exc:
            if attempt == LIST_ATTEMPTS - 1 or not (exc.http_status >= 500 or exc.http_status in (429, 418)):
                raise
            log.warning("recovery: listing refused (%s); retrying", exc)
        await asyncio.sleep(wait)  # backoff between attempts
        wait *= 2
    raise AssertionError("unreachable")


def _rebuild(client: VenueClient, venue: int, symbol: int, vo: VenueOrder, ident: OrderIdentity) -> TrackedOrder:
    """The order as the lost ``order`` record would have had it, advanced to the venue's state."""
    side = SIDE_BUY if vo.side == "BUY" else SIDE_SELL
    if side != ident.side:
        log.error("recovery: %s is a %s at %s, its client id says otherwise; the venue's side is used",
                  vo.client_order_id, vo.side, client.name)
    market = vo.order_type == "MARKET"
    o = TrackedOrder(
        client_order_id=vo.client_order_id, opportunity_id=ident.opportunity_id, role=ident.role, leg=ident.leg,
        venue=venue, symbol=symbol, side=side, qty=to_wire(vo.orig_qty.normalize()),
        price=None if market else to_wire(vo.price.normalize()), order_type=ORDER_MARKET if market else ORDER_LIMIT_IOC,
        created_ns=(vo.time_ms - client.clock_offset_ms) * 1_000_000,
    )
    o.advance(vo.status, vo.executed_qty, vo.cum_quote, vo.order_id)
    return o


# ----------------------------------------------------------------- 2. executions to finish


async def _runs(ex: Executor, state: JournalState, recovered: dict[int, list[TrackedOrder]]) -> list[ExecutionRun]:
    """One run per open or recovered execution; the recovered orders journaled (and synced) first."""
    runs: list[ExecutionRun] = []
    for opp_id in sorted(set(state.open_executions) | set(recovered)):
        found = recovered.get(opp_id, [])
        orders = [o for o in state.orders.values() if o.opportunity_id == opp_id] + found
        record = state.open_executions.get(opp_id)
        intent = _intent_of(record) if record is not None else None
        if not orders:
            log.error("journal: execution %d has no orders, here or at the venues; its intent: %s", opp_id, record)
            ex.journal.done(opp_id, "unreadable")
            continue
        if intent is None:
            intent, shaped = _rebuilt_intent(ex, opp_id, orders)
            if found:
                ex.journal.intent_and_orders(opp_id, intent.opportunity.strategy, [intent], found)
        else:
            shaped = True
            ex.journal.orders(found)
        complete = shaped and _complete(intent, orders)
        if not complete:
            _alert_incomplete(ex, opp_id, orders)
        run = _FinishRun(ex, intent, orders, complete=complete)
        run.note = RECOVERED_NOTE if found else RECONCILED_NOTE
        runs.append(run)
    await ex.journal.synced()  # the recovered orders are on disk before anything is done about them
    return runs


def _intent_of(record: dict[str, object]) -> OrderIntent | None:
    legs = record.get("legs")
    if not isinstance(legs, list) or not legs:
        return None
    try:
        return msgspec.convert(legs[0], OrderIntent)
    except (msgspec.ValidationError, TypeError):
        return None


def _complete(intent: OrderIntent, orders: list[TrackedOrder]) -> bool:
    """Every planned leg has its order, and every order belongs to a planned leg: legging can compare them."""
    n = len(intent.opportunity.legs)
    have = {o.leg for o in orders if o.role == ROLE_LEG}
    return have == set(range(n)) and all(0 <= o.leg < n for o in orders)


def _rebuilt_intent(ex: Executor, opp_id: int, orders: list[TrackedOrder]) -> tuple[OrderIntent, bool]:
    """The plan, from the orders (its intent record was lost with them); whether it has a known shape."""
    legs = sorted((o for o in orders if o.role == ROLE_LEG), key=lambda o: o.leg)
    strategy = _shape(legs)
    plan = legs or sorted(orders, key=lambda o: (o.leg, o.role, o.client_order_id))
    usd = frozenset(ex.cfg.strategies.usd_assets)
    now = ex.clock.monotonic_ns()
    msg_legs = tuple(
        Leg(o.venue, o.symbol, o.side, float(_price(o)), float(Decimal(o.qty)),
            _quote_usd(ex, ex.registry.symbols[o.symbol].quote, orders, usd), now)
        for o in plan
    )
    opp = Opportunity(opp_id, NO_STRATEGY if strategy is None else strategy, ACTION_OPEN, plan[0].symbol, msg_legs,
                      0.0, 0.0, 0.0, now, now, now)
    return OrderIntent(opportunity=opp, decided_ns=now), strategy is not None


def _shape(legs: list[TrackedOrder]) -> int | None:
    """Which strategy such legs come from: two on two venues in one symbol, opposite sides (cross), or three on
    one venue (triangular); None for anything else (a leg is missing)."""
    if len(legs) == 2:
        a, b = legs
        if a.venue != b.venue and a.symbol == b.symbol and a.side != b.side:
            return STRATEGY_CROSS
    if len(legs) == 3 and len({o.venue for o in legs}) == 1:
        return STRATEGY_TRIANGULAR
    return None


def _price(o: TrackedOrder) -> Decimal:
    if o.price is not None:
        return Decimal(o.price)
    return o.cum_quote / o.executed if o.executed > 0 else Decimal(0)


def _quote_usd(ex: Executor, asset: str, orders: Iterable[TrackedOrder], usd: frozenset[str]) -> float:
    """USD per unit of a quote asset, from the orders themselves (a triangle's BTCUSDT leg prices its BTC)."""
    if asset in usd:
        return 1.0
    for o in orders:
        sym = ex.registry.symbols[o.symbol]
        if sym.base == asset and sym.quote in usd:
            return float(_price(o))
    log.warning("recovery: no USD value for %s among the recovered orders; its PnL is valued at 0", asset)
    return 0.0


def _alert_incomplete(ex: Executor, opp_id: int, orders: list[TrackedOrder]) -> None:
    legs = sorted((o.client_order_id for o in orders), key=str)
    msg = (f"opportunity {opp_id}: the plan is incomplete after a restart (orders found: {legs}); booked as the "
           "venues have it, nothing evened out")
    log.error(msg)
    ex.publish(Alert("executor", "recovery", msg, 0, ex.clock.time_ns()))


# ----------------------------------------------------------------- 3. nobody's orders


async def _cancel_unexplained(ex: Executor, known: set[str]) -> None:
    for venue, client in ex.clients.items():
        for s in ex.registry.listed_symbols(venue):
            try:
                answers = await client.open_orders(s)
            except Errors as exc:
                log.error("reconciliation: open orders of %s on %s unavailable (%s)", ex.registry.symbol(s),
                          client.name, exc)
                continue
            for a in answers:
                if a.client_order_id.startswith(OUR_PREFIX) and a.client_order_id not in known:
                    log.error("reconciliation: open order %s on %s is not in the journal; cancelling it",
                              a.client_order_id, client.name)
                    await client.cancel_order(s, a.client_order_id)
