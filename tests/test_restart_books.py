"""The executor's books for the run survive restarts of its process: rebuilt from the order journal's ``done``
records (each carries its execution's numbered books), through compaction (a ``books`` checkpoint), exactly.

Unit tests on the journal, then the real executor against the still simulator: restarted in the same run (a clean
stop, and a kill -9 mid-execution), its ``orders`` answer — what the settlement compares — equals the simulator's
balance changes since the start, asset by asset, and its booked PnL the sum of every Execution it published.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import zmq

from services.executor.ledger import Ledger
from services.executor.order_journal import OrderJournal, journal_files
from services.executor.session_books import Booked, SessionBooks, resumed
from services.risk.catchup import CatchUp, ListingError
from services.risk.rules import RiskBook
from services.risk.service import RiskEngine, state_path
from services.risk.state import RiskState, StateStore, encode_state, utc_day
from services.sim.app import Simulator
from shared.codec import event_codec, intent_codec
from shared.config import Risk
from shared.messages import (
    OUTCOME_ABORTED,
    TOPIC_EXECUTION,
    TOPIC_VENUE,
    AssetDelta,
    Command,
    Execution,
    OrderIntent,
    VenueState,
)
from shared.runtime.control_client import ControlError, request
from shared.runtime.endpoints import Endpoints
from shared.runtime.host import ProcessContext
from shared.runtime.session import SESSION_ENV, current_session
from tests.conftest import eventually_async, make_config_dict, write_config
from tests.executor_kit import Intents, executor_on, rig_config, still_sim, to_config
from tests.sim_kit import CREDS
from tests.test_executor_durability import _kill_9, _stop
from tests.test_executor_restart import _fresh, _try_send, start_executor
from tests.test_risk_rules import REG, WALL, execution

VENUES = ("binance", "mexc")


# ----------------------------------------------------------------- the journal


def _ledger(*moves: tuple[int, str, str]) -> Ledger:
    ledger = Ledger()
    for venue, asset, amount in moves:
        ledger.add(venue, asset, Decimal(amount))
    return ledger


def _book(j: OrderJournal, books: SessionBooks, opp: int, outcome: str, pnl: float, ledger: Ledger) -> Booked:
    """What ``Executor.book`` does: number the execution, write its ``done`` with its books, add it."""
    booked = books.next(opp, outcome, pnl, ledger)
    j.done(opp, outcome, booked.done_fields(books.session))
    books.add(booked)
    return booked


def _same(a: SessionBooks | None, b: SessionBooks) -> None:
    assert a is not None
    assert (a.session, a.seq, a.pnl_usd, a.outcomes, a.ledger) == (b.session, b.seq, b.pnl_usd, b.outcomes, b.ledger)
    assert list(a.recent) == list(b.recent)


def _three(j: OrderJournal, books: SessionBooks, first_opp: int = 1) -> None:
    # Decimals no float could hold, PnL floats whose sum depends on every bit: the rebuild must be exact.
    _book(j, books, first_opp, "filled", 0.1, _ledger((0, "BTC", "0.00012345678901234567"), (0, "USDT", "-12.3456")))
    _book(j, books, first_opp + 1, "unwound", -0.2, _ledger((1, "BTC", "-0.0001"), (1, "USDT", "9.87654321")))
    _book(j, books, first_opp + 2, "filled", 0.30000000000000004, _ledger((0, "BNB", "-0.00000001")))


def test_done_records_rebuild_the_sessions_books_exactly(tmp_path: Path) -> None:
    j = OrderJournal(tmp_path, "never")
    books = SessionBooks("run-a")
    _three(j, books)
    j.done(99, "unreadable")  # settled without books (reconciliation found no orders): not part of them
    j.close()
    state = OrderJournal.load(tmp_path)
    _same(state.books, books)
    assert state.books is not None and state.books.seq == 3 and state.books.outcomes == {"filled": 2, "unwound": 1}
    assert state.books.ledger.deltas()[(0, "BTC")] == Decimal("0.00012345678901234567")
    assert state.books.pnl_usd == 0.1 + -0.2 + 0.30000000000000004
    assert set(state.settled) == {1, 2, 3, 99} and state.torn_lines == 0 and state.books_unreadable == 0


def test_compaction_keeps_the_books_in_a_checkpoint_and_later_records_add_to_it(tmp_path: Path) -> None:
    j = OrderJournal(tmp_path, "never")
    books = SessionBooks("run-a")
    _three(j, books)
    OrderJournal.compact(tmp_path, OrderJournal.load(tmp_path))
    compacted = OrderJournal.load(tmp_path)
    _same(compacted.books, books)  # the `done` records lost their books; the checkpoint holds them
    _book(j, books, 4, "partial", 1.5, _ledger((0, "USDT", "1.5")))  # the writer notices its file is gone
    j.close()
    _same(OrderJournal.load(tmp_path).books, books)
    OrderJournal.compact(tmp_path, OrderJournal.load(tmp_path))  # a second restart in a row
    again = OrderJournal.load(tmp_path)
    _same(again.books, books)
    assert again.books is not None and [b[0] for b in again.books.since(1)["executions"]] == [2, 3, 4]


def test_a_compacted_file_beside_the_files_it_replaces_counts_nothing_twice(tmp_path: Path) -> None:
    """A crash between compaction's rename and its unlinking leaves both: the checkpoint replaces what the older
    files summed, it never adds to it."""
    j = OrderJournal(tmp_path, "never")
    books = SessionBooks("run-a")
    _three(j, books)
    j.close()
    old = {p: p.read_bytes() for p in journal_files(tmp_path)}
    OrderJournal.compact(tmp_path, OrderJournal.load(tmp_path))
    for p, data in old.items():
        p.write_bytes(data)
    assert len(journal_files(tmp_path)) == 2
    _same(OrderJournal.load(tmp_path).books, books)


def test_unreadable_books_are_counted_and_the_execution_still_settled(tmp_path: Path) -> None:
    """Treating the record as torn would reopen the execution: reconciled, and booked, a second time."""
    j = OrderJournal(tmp_path, "never")
    books = SessionBooks("run-a")
    _book(j, books, 1, "filled", 0.5, _ledger((0, "USDT", "0.5")))
    j.done(2, "filled", {"session": "run-a", "seq": 2, "pnl_usd": 1.0, "deltas": [[0, "USDT", "NaN"]]})
    j.close()
    state = OrderJournal.load(tmp_path)
    assert state.books_unreadable == 1 and state.torn_lines == 0 and 2 in state.settled
    _same(state.books, books)


def test_a_later_run_starts_from_zero_and_a_start_continues_only_its_own(tmp_path: Path) -> None:
    j = OrderJournal(tmp_path, "never")
    _three(j, SessionBooks("run-a"))
    OrderJournal.compact(tmp_path, OrderJournal.load(tmp_path))  # run-a's checkpoint ...
    later = SessionBooks("run-b")
    _book(j, later, 10, "filled", 2.0, _ledger((1, "ETH", "0.5")))  # ... then run-b's first execution
    j.close()
    state = OrderJournal.load(tmp_path)
    _same(state.books, later)
    assert resumed(state.books, "run-b") is state.books
    fresh = resumed(state.books, "run-c")
    assert (fresh.session, fresh.seq, fresh.pnl_usd, fresh.ledger.deltas()) == ("run-c", 0, 0.0, {})


def test_the_list_shows_published_executions_after_a_number() -> None:
    books = SessionBooks("run-a")
    for i in range(1, 6):
        books.add(books.next(100 + i, "filled", float(i), _ledger((0, "USDT", str(i)))), published=i != 4)
    listed = books.since(1)
    assert (listed["session"], listed["seq"], listed["first"]) == ("run-a", 3, 1)  # #4 is not out yet: #5 waits
    assert [Booked.from_wire(x).opportunity_id for x in listed["executions"]] == [102, 103]
    books.published(4)
    assert [x[0] for x in books.since(3)["executions"]] == [4, 5] and books.since(3)["seq"] == 5
    assert [x[0] for x in books.since(0, limit=2)["executions"]] == [1, 2]


def test_the_session_is_the_parent_process_unless_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(SESSION_ENV, raising=False)
    child = subprocess.run([sys.executable, "-c", "from shared.runtime.session import current_session as s;"
                            "print(s())"], capture_output=True, text=True, check=True, timeout=60,
                           cwd=Path(__file__).resolve().parents[1])
    ours = current_session()
    theirs = child.stdout.strip()
    assert theirs.split(":")[1] == str(os.getpid()) and theirs != ours  # its parent is this process
    assert ours.split(":")[1] == str(os.getppid()) and ours == current_session()  # stable for a process's life
    monkeypatch.setenv(SESSION_ENV, "named")
    assert current_session() == "named"


# ----------------------------------------------------------------- the real executor


def balances(sim: Simulator) -> dict[tuple[str, str], Decimal]:
    return {(v, a): q for v in VENUES for a, q in sim.balances(v, CREDS[v][0]).items()}


def moved(before: dict[tuple[str, str], Decimal], after: dict[tuple[str, str], Decimal]) -> dict[tuple[str, str],
                                                                                                 Decimal]:
    return {k: after[k] - before.get(k, Decimal(0)) for k in after if after[k] != before.get(k, Decimal(0))}


def ledger_of(orders: dict[str, Any]) -> dict[tuple[str, str], Decimal]:
    """The ``orders`` answer's ledger, as the settlement reads it."""
    return {(v, a): Decimal(d) for v, a, d in orders["deltas"]}


async def test_a_restart_in_the_same_run_continues_the_ledger_and_a_new_run_starts_from_zero(
    run_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SESSION_ENV, "run-1")
    async with still_sim(run_dir) as sim:
        start = balances(sim)
        published: list[Execution] = []
        async with executor_on(sim, run_dir) as rig:
            published += [await rig.run(rig.cross()), await rig.run(rig.cross(buy="mexc", sell="binance"))]
        async with executor_on(sim, run_dir) as rig:  # its process's own ledger starts empty; the run's does not
            published.append(await rig.run(rig.cross(qty="0.03")))
            reply = rig.ex.on_command(Command("orders"))
            assert reply is not None
            orders = reply.data
            assert ledger_of(orders) == moved(start, balances(sim))  # the settlement's check, exactly
            assert orders["executions"] == 3 and sum(orders["outcomes"].values()) == 3
            assert orders["pnl_usd"] == sum(e.pnl_usd for e in published)
            assert orders["process"]["executions"] == 1 and orders["session"] == "run-1"
        monkeypatch.setenv(SESSION_ENV, "run-2")
        async with executor_on(sim, run_dir) as rig:
            reply = rig.ex.on_command(Command("orders"))
            assert reply is not None
            assert (reply.data["executions"], reply.data["pnl_usd"], reply.data["deltas"]) == (0, 0.0, [])


class _Wire:
    """The executor process's sockets, from the test's side. Its events are read only once a VenueState (sent every
    second) shows the subscription joined: an event published before that is gone (PUB/SUB's slow joiner)."""

    def __init__(self, run_dir: Path, cfg: Any) -> None:
        endpoints = Endpoints(cfg, run_dir)
        self.ctx = zmq.Context()
        self.sub = self.ctx.socket(zmq.SUB)
        for topic in (TOPIC_EXECUTION, TOPIC_VENUE):
            self.sub.setsockopt(zmq.SUBSCRIBE, topic)
        self.sub.linger = 0
        self.sub.connect(endpoints.events("executor"))
        self.push = self.ctx.socket(zmq.PUSH)
        self.push.linger = 0
        self.push.setsockopt(zmq.IMMEDIATE, 1)  # queue only once the executor has bound (after reconciling)
        self.push.connect(endpoints.intents)
        self.control = endpoints.control("executor")
        self.executions: dict[int, Execution] = {}
        self.codec = event_codec()

    def heard(self) -> bool:
        """Drain the events; whether a VenueState was among them (the subscription is joined)."""
        venue = False
        while True:
            try:
                _topic, payload = self.sub.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return venue
            ev = self.codec.decode(payload)
            if isinstance(ev, Execution):
                self.executions[ev.opportunity_id] = ev
            venue = venue or isinstance(ev, VenueState)

    async def joined(self) -> None:
        self.heard()  # what an earlier process said does not count
        await eventually_async(self.heard, 30, "the executor's events reaching the test")

    async def run(self, intent: OrderIntent) -> Execution:
        opp_id = intent.opportunity.id
        await eventually_async(lambda: _try_send(self.push, intent_codec().encode(_fresh(intent))), 30,
                               "intent accepted by the executor socket")
        return await eventually_async(lambda: self.execution(opp_id), 60, f"execution {opp_id}")

    def execution(self, opp_id: int) -> Execution | None:
        self.heard()
        return self.executions.get(opp_id)

    async def orders(self) -> dict[str, Any]:
        return dict((await asyncio.to_thread(request, self.control, "orders", None, 10.0)).data)

    def close(self) -> None:
        self.sub.close()
        self.push.close()
        self.ctx.term()


async def test_kill_9_of_the_executor_process_mid_execution_keeps_the_runs_ledger_exact(run_dir: Path) -> None:
    """The real process: one execution booked, a second one's legs resting when it dies. The restarted process
    finishes that one and books a third; its ledger for the run is the venues' balance change since the start."""
    async with still_sim(run_dir) as sim:
        data = rig_config(run_dir, sim, order_timeout_ms=10_000, unwind_deadline_ms=4000)
        data["risk"]["max_opportunity_age_ms"] = 10_000.0  # a busy box must not age an intent out on its way in
        cfg = write_config(run_dir / "executor.toml", data)
        wire = _Wire(run_dir, cfg)
        rig = Intents(sim, to_config(data))
        start = balances(sim)
        proc = start_executor(run_dir / "executor.toml")
        try:
            await wire.joined()
            first = await wire.run(rig.cross())
            for venue in VENUES:
                sim.inject_order_fault(venue, "slow", count=1, seconds=3.0)
            cut = rig.cross(buy="mexc", sell="binance")
            await eventually_async(lambda: _try_send(wire.push, intent_codec().encode(_fresh(cut))), 30, "the intent")
            for venue in VENUES:
                await eventually_async(lambda v=venue: sim.venue(v).book.open_orders(CREDS[v][0]), 30,
                                       f"the {venue} leg resting")
            await _kill_9(proc)

            proc = start_executor(run_dir / "executor.toml")
            # The cut one is finished by the restart's reconciliation (its Execution may go out before the test's
            # subscription rejoins: the executor's own answer says when it is booked).
            await _until_orders(wire, lambda o: o["executions"] == 2, "the execution the kill cut, booked again")
            await wire.joined()
            last = await wire.run(rig.cross(qty="0.03"))
            orders = await wire.orders()
            assert ledger_of(orders) == moved(start, balances(sim))
            assert orders["executions"] == 3 and orders["process"]["executions"] == 2  # the cut one, the new one
            listed = [Booked.from_wire(x) for x in
                      (await asyncio.to_thread(request, wire.control, "booked", {"after": 0}, 10.0)).data["executions"]]
            assert [b.opportunity_id for b in listed] == [first.opportunity_id, cut.opportunity.id, last.opportunity_id]
            assert (listed[0].pnl_usd, listed[2].pnl_usd) == (first.pnl_usd, last.pnl_usd)  # as published
            assert orders["pnl_usd"] == listed[0].pnl_usd + listed[1].pnl_usd + listed[2].pnl_usd
        finally:
            if proc.poll() is None:
                await _stop(proc, run_dir)
            wire.close()


async def _until_orders(wire: _Wire, check: Any, what: str, timeout: float = 60.0) -> dict[str, Any]:
    """Ask the executor's control socket until its ``orders`` answer passes ``check`` (a deadline, no sleep as sync)."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = dict((await asyncio.to_thread(request, wire.control, "orders", None, 2.0)).data)
        except ControlError as exc:  # restarting: its control socket is not bound yet
            last = exc
        if isinstance(last, dict) and check(last):
            return last
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}: last={last!r}")


# ----------------------------------------------------------------- risk's catch-up, without sockets


def _listing(session: str, booked: list[Booked], first: int = 1, after: int = 0) -> dict[str, Any]:
    return {"session": session, "seq": booked[-1].seq if booked else 0, "first": first,
            "executions": [b.to_wire() for b in booked if b.seq > after]}


def _numbered(*pnls: float, first_opp: int = 1) -> list[Booked]:
    return [Booked(i + 1, first_opp + i, "filled", p, ((0, "USDT", str(p)),)) for i, p in enumerate(pnls)]


def test_risk_books_each_execution_once_whichever_way_it_comes_first() -> None:

    book = RiskBook(Risk(), REG)
    c = CatchUp(book)
    listed = _numbered(1.0, 2.0, 4.0)
    def usdt(amount: str) -> tuple[AssetDelta, ...]:
        return (AssetDelta(0, "USDT", amount),)

    assert c.published(execution(1, 1.0, deltas=usdt("1.0")), WALL) == []  # heard: in `ahead` till listed
    assert c.published(execution(77, 0.0, OUTCOME_ABORTED), WALL) == []  # refused before any order: not numbered
    assert book.state.ahead == {1: WALL // 10**6}
    alerts, more = c.listed(_listing("run-1", listed[:2]), WALL)  # #2 was lost
    assert (alerts, more, book.state.executor_seq, book.state.ahead) == ([], False, 2, {})
    assert book.session_pnl_usd == 3.0 and c.n_caught_up == 1
    c.listed(_listing("run-1", listed), WALL)  # #3 listed before its publication is read ...
    assert c.published(execution(3, 4.0, deltas=usdt("4.0")), WALL) is None  # ... which is then dropped
    assert (book.session_pnl_usd, c.n_caught_up, c.n_duplicates) == (7.0, 2, 1)
    c.listed(_listing("run-1", listed, after=3), WALL)  # asked again: nothing new
    assert book.session_pnl_usd == 7.0 and book.state.positions == {"binance": {"USDT": Decimal("7.0")}}


def test_risk_follows_a_new_run_a_numbering_gone_back_and_a_list_that_no_longer_reaches() -> None:

    book = RiskBook(Risk(), REG)
    c = CatchUp(book)
    c.listed(_listing("run-1", _numbered(1.0, 1.0)), WALL)
    c.listed(_listing("run-2", _numbered(0.5, first_opp=10)), WALL)  # the next run numbers from #1 again
    assert (book.state.executor_session, book.state.executor_seq, book.session_pnl_usd) == ("run-2", 1, 2.5)
    c.listed(_listing("run-2", []), WALL)  # its journal lost records: follow it from where it is
    assert book.state.executor_seq == 0
    far = _numbered(1.0, 1.0, 1.0, 1.0, first_opp=20)[2:]  # #3 and #4 only: #1 and #2 are beyond its list
    c.listed(_listing("run-2", far, first=3), WALL)
    assert (book.state.executor_seq, c.n_unlisted, book.session_pnl_usd) == (4, 2, 4.5)
    with pytest.raises(ListingError):
        c.listed({"intake": "open"}, WALL)  # not an executor that numbers its executions
    assert book.state.executor_seq == 4


async def test_executions_heard_before_risk_has_read_its_state_never_overwrite_it(
    run_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In one process (fused, single) the executor starts first and its reconciliation publishes what a kill cut
    short, before risk has read its state: booked into a blank state and written, that replaced the file (the
    run's and the day's PnL, positions, breakers) with the blank one's."""
    monkeypatch.setenv(SESSION_ENV, "run-1")
    cfg = write_config(run_dir / "risk.toml", make_config_dict(run_dir))
    store = StateStore(state_path(cfg, run_dir))
    before = RiskState(day=utc_day(time.time_ns()), daily_pnl_usd=-10.0, session="run-1", session_pnl_usd=-10.0,
                       positions={"binance": {"USDT": Decimal("-10")}})
    store.write(encode_state(before, REG.venue_names, REG.symbol_names, 0), 1)
    on_disk = store.path.read_bytes()
    risk = RiskEngine(ProcessContext(cfg, run_dir))
    risk._on_local_event(execution(5, -7.5, deltas=(AssetDelta(0, "USDT", "-7.5"),)))  # the executor's, early
    assert store.path.read_bytes() == on_disk
    await risk.start()
    try:
        status = risk.book.status(time.time_ns())
        assert (status["daily_pnl_usd"], status["session_pnl_usd"]) == (-17.5, -17.5)
        assert status["positions"] == {"binance": {"USDT": "-17.5"}} and 5 in risk.book.state.ahead
    finally:
        await risk.stop()
        risk.close()
