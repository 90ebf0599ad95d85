"""The order journal's durability contract, end to end against the real simulator:

- the hot path only *writes* (page cache) before the requests; the fsync follows the send (``batch``), or
  precedes it (``always``); the Execution is published only once its ``done`` record is on disk;
- a failing fdatasync raises one alert and stops new legs;
- kill -9 of the executor process right after it wrote an intent's orders: nothing is sent twice after the
  restart, both legs are found, and the books agree with the venue;
- a host crash between the send and the fsync (the journal's unsynced tail dropped): the restart finds the orders
  at the venue by their client ids and books them, so the executor's ledger moves exactly as the venue's
  balances did.
"""

from __future__ import annotations

import asyncio
import errno
import os
import signal
import subprocess
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import zmq

from services.executor.order_journal import OrderJournal, journal_files
from services.executor.reconcile import RECOVERED_NOTE
from services.sim.app import Simulator
from shared.codec import intent_codec
from shared.messages import (
    OUTCOME_ABORTED,
    OUTCOME_FILLED,
    OUTCOME_REJECTED,
    OUTCOME_UNWOUND,
    ROLE_LEG,
    ROLE_UNWIND,
    TOPIC_EXECUTION,
    Alert,
    Execution,
    OrderIntent,
)
from shared.runtime.endpoints import Endpoints
from tests.conftest import eventually_async, write_config
from tests.executor_kit import Intents, Rig, executor_on, rig_config, sim_orders, still_sim, to_config
from tests.sim_kit import CREDS
from tests.test_executor_faults import assert_no_orphan, assert_sent_once
from tests.test_executor_restart import _fresh, _receive_execution, _try_send, start_executor

VENUES = ("binance", "mexc")


def balances(sim: Simulator) -> dict[tuple[str, str], Decimal]:
    return {(v, a): q for v in VENUES for a, q in sim.balances(v, CREDS[v][0]).items()}


def moved(before: dict[tuple[str, str], Decimal], after: dict[tuple[str, str], Decimal]) -> dict[tuple[str, str],
                                                                                                 Decimal]:
    """What the venue's balances did, per (venue, asset), zero moves left out."""
    return {k: after[k] - before.get(k, Decimal(0)) for k in after if after[k] != before.get(k, Decimal(0))}


def deltas_of(rig: Intents, exe: Execution) -> dict[tuple[str, str], Decimal]:
    return {(rig.reg.venue(d.venue), d.asset): Decimal(d.delta) for d in exe.deltas if Decimal(d.delta) != 0}


def ledger_of(rig: Rig) -> dict[tuple[str, str], Decimal]:
    return {(rig.reg.venue(v), a): d for (v, a), d in rig.ex.run_ledger.deltas().items() if d != 0}


# ----------------------------------------------------------------- the hot path and the done record


@pytest.mark.parametrize(("policy", "syncs_before_send"), [("batch", 0), ("always", 1)])
async def test_the_fsync_follows_the_send_and_the_execution_waits_for_its_done(
    run_dir: Path, policy: str, syncs_before_send: int
) -> None:
    async with still_sim(run_dir) as sim, executor_on(sim, run_dir, journal_fsync=policy) as rig:
        j = rig.ex.journal
        at_publish: list[tuple[int, int]] = []
        rig.ex.local_listeners.append(
            lambda e: at_publish.append((j.records_written, j.records_synced)) if isinstance(e, Execution) else None)
        fsyncs, written = j.fsyncs, j.records_written
        sent = sum(c.n_orders for c in rig.ex.clients.values())
        intent = rig.cross()
        assert rig.ex.on_intent(intent)
        # on_intent returned with both requests written and the intent and both orders journaled ...
        assert sum(c.n_orders for c in rig.ex.clients.values()) == sent + 2
        assert j.records_written == written + 3
        # ... synced before the send only under `always`; under `batch` the group commit follows it
        assert j.fsyncs == fsyncs + syncs_before_send
        await eventually_async(lambda: j.fsyncs > fsyncs, 5, "the group commit")
        exe = await eventually_async(lambda: rig.execution(intent.opportunity.id), 20, "execution")
        assert exe.outcome == OUTCOME_FILLED
        records, synced = at_publish[-1]
        assert synced == records  # published only once the done record (and all before it) was on disk


async def test_a_failing_journal_sync_alerts_once_and_stops_new_legs(run_dir: Path) -> None:
    def eio(fd: int) -> None:
        raise OSError(errno.EIO, "Input/output error")

    async with still_sim(run_dir) as sim, executor_on(sim, run_dir) as rig:
        rig.ex.journal.fdatasync = eio
        first = await rig.run(rig.cross())  # sent before the failure was known: it trades and books as usual
        assert first.outcome == OUTCOME_FILLED and rig.ex.journal.sync_errors >= 1
        orders = {v: set(sim_orders(sim, v)) for v in VENUES}
        refused = rig.cross()
        assert not rig.ex.on_intent(refused)  # refused before any order: its records might never reach the disk
        second = await eventually_async(lambda: rig.execution(refused.opportunity.id), 20, "the aborted execution")
        assert second.outcome == OUTCOME_ABORTED and "journal" in second.note
        assert {v: set(sim_orders(sim, v)) for v in VENUES} == orders  # nothing of it reached a venue
        alerts = [e for e in rig.events if isinstance(e, Alert) and e.kind == "journal"]
        assert len(alerts) == 1 and "Input/output error" in alerts[0].message


async def test_under_always_a_sync_failing_on_the_intents_own_write_sends_no_leg(run_dir: Path) -> None:
    """``always`` syncs inside the journal write itself: when that sync fails, the records may never reach the disk,
    so none of the legs may be sent (the refusal check ran before the write and saw no failure yet)."""
    def eio(fd: int) -> None:
        raise OSError(errno.EIO, "Input/output error")

    async with still_sim(run_dir) as sim, executor_on(sim, run_dir, journal_fsync="always") as rig:
        rig.ex.journal.fdatasync = eio
        before = {v: set(sim_orders(sim, v)) for v in VENUES}
        intent = rig.cross()
        assert rig.ex.on_intent(intent)
        exe = await eventually_async(lambda: rig.execution(intent.opportunity.id), 20, "the execution")
        assert exe.outcome == OUTCOME_REJECTED and [f.status for f in exe.legs] == ["REJECTED", "REJECTED"]
        assert {v: set(sim_orders(sim, v)) for v in VENUES} == before  # nothing reached a venue
        assert len([e for e in rig.events if isinstance(e, Alert) and e.kind == "journal"]) == 1


# ----------------------------------------------------------------- kill -9 of the process


class _Wire:
    """The executor process's sockets, from the test's side."""

    def __init__(self, run_dir: Path, cfg: Any) -> None:
        endpoints = Endpoints(cfg, run_dir)
        self.ctx = zmq.Context()
        self.sub = self.ctx.socket(zmq.SUB)
        self.sub.setsockopt(zmq.SUBSCRIBE, TOPIC_EXECUTION)
        self.sub.linger = 0
        self.sub.connect(endpoints.events("executor"))
        self.push = self.ctx.socket(zmq.PUSH)
        self.push.linger = 0
        self.push.setsockopt(zmq.IMMEDIATE, 1)  # queue only once the executor has bound
        self.push.connect(endpoints.intents)

    async def send(self, intent: OrderIntent) -> None:
        await eventually_async(lambda: _try_send(self.push, intent_codec().encode(_fresh(intent))), 30,
                               "intent accepted by the executor socket")

    def close(self) -> None:
        self.sub.close()
        self.push.close()
        self.ctx.term()


async def _stop(proc: subprocess.Popen[bytes], run_dir: Path) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        code = await asyncio.to_thread(proc.wait, 20)
    except subprocess.TimeoutExpired:
        proc.kill()
        await asyncio.to_thread(proc.wait, 10)
        raise AssertionError("executor ignored SIGTERM: " + (run_dir / "executor.log").read_text()[-3000:]) from None
    assert code == 0, (run_dir / "executor.log").read_text()[-3000:]


async def _kill_9(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGKILL)
    await asyncio.to_thread(proc.wait, 10)  # the sim runs on this loop: never block it


def _resting(sim: Simulator, venue: str) -> list[Any]:
    return sim.venue(venue).book.open_orders(CREDS[venue][0])


async def test_kill_9_right_after_the_orders_are_written_then_restart(run_dir: Path) -> None:
    """Both legs held by the venues when the process dies; they fill while it is dead. The restart finds both in
    the journal (a kill -9 never loses a write), queries them, sends nothing again, books what the venues did."""
    async with still_sim(run_dir) as sim:
        data = rig_config(run_dir, sim, order_timeout_ms=10_000, unwind_deadline_ms=4000)
        cfg = write_config(run_dir / "executor.toml", data)
        wire = _Wire(run_dir, cfg)
        rig = Intents(sim, to_config(data))
        proc = start_executor(run_dir / "executor.toml")
        try:
            for venue in VENUES:
                sim.inject_order_fault(venue, "slow", count=1, seconds=3.0)
            intent = rig.cross()
            opp_id = intent.opportunity.id
            before = balances(sim)
            await wire.send(intent)
            for venue in VENUES:
                await eventually_async(lambda v=venue: _resting(sim, v), 30, f"the {venue} leg resting")
            await _kill_9(proc)
            state = OrderJournal.load(run_dir / "state" / "orders")
            assert opp_id in state.open_executions
            legs_sent = {v: set(sim_orders(sim, v)) for v in VENUES}
            assert set(state.orders) == legs_sent["binance"] | legs_sent["mexc"]  # both, journaled before sent

            proc = start_executor(run_dir / "executor.toml")
            exe = await eventually_async(lambda: _receive_execution(wire.sub, opp_id), 60, "the execution")
            assert exe.note == "reconciled after a restart" and exe.outcome == OUTCOME_FILLED
            assert {f.client_order_id for f in exe.legs} == legs_sent["binance"] | legs_sent["mexc"]
            assert {v: set(sim_orders(sim, v)) for v in VENUES} == legs_sent  # nothing sent twice
            assert deltas_of(rig, exe) == moved(before, balances(sim))  # the books are the venue's, exactly
            assert 0 <= exe.done_ns - exe.sent_ns < 60 * 10**9  # monotonic stamps of this process
            await eventually_async(lambda: not OrderJournal.load(run_dir / "state" / "orders").open_executions,
                                   10, "the journal closed")
        finally:
            await _stop(proc, run_dir)
            wire.close()


# ----------------------------------------------------------------- a host crash between send and fsync


def _drop_unsynced_tail(journal_dir: Path, synced: dict[Path, int]) -> None:
    """What the disk holds after a host crash that lost every page written since ``synced`` was taken: files
    created since are gone (their directory entries too), the others end where their last sync left them."""
    for path in journal_files(journal_dir):
        if path not in synced:
            path.unlink()
        else:
            os.truncate(path, synced[path])


async def _synced_files(rig: Rig) -> dict[Path, int]:
    """Every journal file and its size once everything written so far is on disk (the state a host crash
    right after the next send, before its fsync, leaves)."""
    j = rig.ex.journal
    await j.synced()
    files = {p: p.stat().st_size for p in journal_files(rig.ex.journal_dir)}
    path, size = j.synced_position
    assert path is None or files[path] == size  # the journal's own account of what is on disk
    return files


async def _first_life_then_crash(run_dir: Path, sim: Simulator, make: Any, faults: list[dict[str, Any]]
                                 ) -> tuple[OrderIntent, dict[tuple[str, str], Decimal]]:
    """One executor runs the intent to its end; then the host "crashes": the journal loses all it wrote since
    the intent arrived. Returns the intent and the venue balances before it."""
    async with executor_on(sim, run_dir) as rig:
        await rig.run(rig.cross())  # an earlier execution, settled and on disk: the restart must not rebook it
        synced = await _synced_files(rig)
        before = balances(sim)
        for f in faults:
            sim.inject_order_fault(**f)
        intent = make(rig)
        exe = await rig.run(intent)
        assert exe.outcome in (OUTCOME_FILLED, OUTCOME_UNWOUND)
    _drop_unsynced_tail(run_dir / "state" / "orders", synced)
    state = OrderJournal.load(run_dir / "state" / "orders")
    assert intent.opportunity.id not in state.open_executions and not state.orders  # the journal lost it all
    assert intent.opportunity.id not in state.settled
    return intent, before


async def test_a_host_crash_after_the_send_is_recovered_from_the_venue(run_dir: Path) -> None:
    async with still_sim(run_dir) as sim:
        intent, before = await _first_life_then_crash(run_dir, sim, lambda rig: rig.cross(), [])
        sent = {v: set(sim_orders(sim, v)) for v in VENUES}
        async with executor_on(sim, run_dir) as rig:
            exe = rig.execution(intent.opportunity.id)  # settled before the executor took any intent
            assert exe is not None, rig.events
            assert exe.note == RECOVERED_NOTE and exe.outcome == OUTCOME_FILLED
            assert len(rig.executions()) == 1  # the earlier, settled execution is not booked again
            assert sorted(f.role for f in exe.legs) == [ROLE_LEG, ROLE_LEG]
            assert deltas_of(rig, exe) == moved(before, balances(sim))
            assert ledger_of(rig) == moved(before, balances(sim))  # the executor's whole ledger since the restart
            assert {v: set(sim_orders(sim, v)) for v in VENUES} == sent  # found by client id, nothing resent
            assert_sent_once(rig, exe)
            state = OrderJournal.load(rig.ex.journal_dir)
            assert not state.open_executions and intent.opportunity.id in state.settled
            assert rig.ex.on_intent(rig.cross())  # and it trades on


async def test_a_host_crash_after_an_unwind_books_the_unwind_too(run_dir: Path) -> None:
    """The mexc leg was refused, the binance leg filled and was unwound, and the journal lost all of it: the
    venue holds the leg and its unwind (the refused leg never existed there). The plan cannot be rebuilt whole,
    so nothing is evened out again; the unwind is booked with its leg and no orphan is reported."""
    async with still_sim(run_dir) as sim:
        faults = [{"venue": "mexc", "kind": "reject", "count": 1}]
        intent, before = await _first_life_then_crash(run_dir, sim, lambda rig: rig.cross(), faults)
        sent = {v: set(sim_orders(sim, v)) for v in VENUES}
        async with executor_on(sim, run_dir) as rig:
            exe = rig.execution(intent.opportunity.id)
            assert exe is not None, rig.events
            assert exe.note == RECOVERED_NOTE and exe.outcome == OUTCOME_UNWOUND
            assert sorted((f.role, rig.reg.venue(f.venue)) for f in exe.legs) == [(ROLE_LEG, "binance"),
                                                                                  (ROLE_UNWIND, "binance")]
            assert deltas_of(rig, exe) == moved(before, balances(sim))
            assert ledger_of(rig) == moved(before, balances(sim))
            assert {v: set(sim_orders(sim, v)) for v in VENUES} == sent  # no second unwind
            assert_no_orphan(rig, exe)
            assert [e for e in rig.events if isinstance(e, Alert) and e.kind == "recovery"]


async def test_a_host_crash_with_a_leg_still_open_at_the_venue(run_dir: Path) -> None:
    """The real process, killed while the mexc leg rests; the journal's file of that life never reached the
    disk. The restart finds both legs at the venues, finishes the open one and evens the execution out."""
    async with still_sim(run_dir) as sim:
        data = rig_config(run_dir, sim, order_timeout_ms=1000, unwind_deadline_ms=4000)
        cfg = write_config(run_dir / "executor.toml", data)
        wire = _Wire(run_dir, cfg)
        rig = Intents(sim, to_config(data))
        journal_dir = run_dir / "state" / "orders"
        proc = start_executor(run_dir / "executor.toml")
        try:
            sim.inject_order_fault("mexc", "slow", count=1, seconds=6.0)
            intent = rig.cross()
            opp_id = intent.opportunity.id
            before = balances(sim)
            await wire.send(intent)
            await eventually_async(lambda: _resting(sim, "mexc"), 30, "the mexc leg resting")
            await _kill_9(proc)
            # The compacted file of the start was fsynced; everything the writer wrote after it is lost.
            for path in journal_files(journal_dir):
                if not path.read_bytes().startswith(b'{"t":"last"'):
                    path.unlink()
            assert opp_id not in OrderJournal.load(journal_dir).open_executions
            sent = {v: set(sim_orders(sim, v)) for v in VENUES}
            legs = {c for v in VENUES for c in sent[v] if c.startswith(f"dz{opp_id:x}")}

            proc = start_executor(run_dir / "executor.toml")
            exe = await eventually_async(lambda: _receive_execution(wire.sub, opp_id), 60, "the execution")
            assert exe.note == RECOVERED_NOTE and exe.outcome in (OUTCOME_FILLED, OUTCOME_UNWOUND)
            assert {f.client_order_id for f in exe.legs if f.role == ROLE_LEG} == legs
            after = {v: set(sim_orders(sim, v)) for v in VENUES}
            assert {c for v in VENUES for c in after[v] - sent[v]} <= {f.client_order_id for f in exe.legs
                                                                       if f.role != ROLE_LEG}  # only corrections
            assert deltas_of(rig, exe) == moved(before, balances(sim))
            signed = sum((Decimal(f.filled_qty) * (1 if f.side == 0 else -1) for f in exe.legs), Decimal(0))
            assert abs(signed) < rig.reg.step[0][exe.symbol]  # even: nothing orphaned
            await eventually_async(lambda: not _resting(sim, "mexc"), 10, "nothing rests")
        finally:
            await _stop(proc, run_dir)
            wire.close()
