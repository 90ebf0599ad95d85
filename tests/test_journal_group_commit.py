"""The order journal's group commit: writes reach the page cache on the hot path, one fdatasync on the journal's
own thread after the send covers them, coalescing, close and rotation while a sync is under way, a failing
fdatasync, the policies' promises, one write per intent (a kill -9 never splits it), the settled ids a restart
must not book again, and the client ids a restart parses back.

The fdatasync the journal calls is the real one; a test that needs the moment *during* a sync wraps it in a gate
(``Gate``) that holds it until the test lets it go, and a failing disk is an OSError(EIO) in its place."""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import random
import signal
import subprocess
import sys
import textwrap
import threading
from decimal import Decimal
from pathlib import Path

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.executor.order_journal import (
    SETTLED_OUTCOME,
    JournalSyncError,
    OrderJournal,
    _new_order_line,
    _order_line,
    journal_files,
)
from services.executor.order_state import TrackedOrder
from services.executor.reconcile import OrderIdentity, parse_client_order_id
from services.executor.service import client_order_id
from shared.messages import ROLE_HEDGE, ROLE_LEG, ROLE_UNWIND, SIDE_BUY, SIDE_SELL, STRATEGY_CROSS
from shared.venues.common import TradeFill
from tests.test_order_journal import confirmations, legs, tracked

REPO = Path(__file__).resolve().parents[1]
WAIT_S = 10.0


class Gate:
    """The real fdatasync, held until ``release`` is set; remembers which file each call synced."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.calls: list[str] = []

    def __call__(self, fd: int) -> None:
        self.calls.append(os.readlink(f"/proc/self/fd/{fd}"))
        self.entered.set()
        assert self.release.wait(WAIT_S), "the test never released the sync"
        os.fdatasync(fd)


def open_files(directory: Path) -> list[str]:
    """Files of ``directory`` this process holds open."""
    out = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except FileNotFoundError:
            continue
        if target.startswith(str(directory)):
            out.append(target)
    return out


async def entered(gate: Gate) -> None:
    assert await asyncio.to_thread(gate.entered.wait, WAIT_S), "no sync started"


async def test_records_written_before_sync_soon_are_on_disk_when_synced_returns(tmp_path: Path) -> None:
    j = OrderJournal(tmp_path, "batch")
    j.intent_and_orders(1, STRATEGY_CROSS, legs(1), [tracked(1, 0), tracked(1, 1, SIDE_SELL)])
    assert (j.records_written, j.fsyncs, j.records_synced) == (3, 0, 0)  # the write path syncs nothing
    j.sync_soon()
    await asyncio.wait_for(j.synced(), WAIT_S)
    assert (j.fsyncs, j.records_synced) == (1, 3)
    assert j.path is not None and j.synced_position == (j.path, j.path.stat().st_size)
    await asyncio.wait_for(j.synced(), WAIT_S)  # nothing new: returns without another sync
    assert j.fsyncs == 1
    j.close()
    state = OrderJournal.load(tmp_path)
    assert set(state.orders) == {"dz-1-0-0", "dz-1-1-0"} and state.open_executions[1]["legs"] == legs(1)


async def test_requests_during_one_sync_are_covered_by_exactly_one_more(tmp_path: Path) -> None:
    gate = Gate()
    j = OrderJournal(tmp_path, "batch", fdatasync=gate)
    j.order(tracked(1, 0))
    j.sync_soon()
    await entered(gate)
    for opp in range(2, 52):  # 50 sends while the first sync runs
        j.order(tracked(opp, 0))
        j.sync_soon()
    waiter = asyncio.ensure_future(j.synced())
    gate.release.set()
    await asyncio.wait_for(waiter, WAIT_S)
    assert (j.fsyncs, len(gate.calls), j.records_synced) == (2, 2, 51)
    j.close()


async def test_close_during_a_sync_waits_for_it_then_syncs_and_closes_everything(tmp_path: Path) -> None:
    gate = Gate()
    j = OrderJournal(tmp_path, "batch", fdatasync=gate)
    j.order(tracked(1, 0))
    j.sync_soon()
    await entered(gate)
    j.order(tracked(2, 0))  # written after the running sync began: not covered by it
    waiter = asyncio.ensure_future(j.synced())
    await asyncio.sleep(0)  # let the waiter register
    closer = threading.Thread(target=j.close)
    closer.start()
    closer.join(0.3)
    assert closer.is_alive(), "close returned while a sync was under way"
    gate.release.set()
    closer.join(WAIT_S)
    assert not closer.is_alive()
    await asyncio.wait_for(waiter, WAIT_S)
    assert (j.records_synced, j.path) == (2, None)
    assert open_files(tmp_path) == []
    j.order(tracked(3, 0))  # written after close: a new file
    j.close()
    assert len(journal_files(tmp_path)) == 2
    assert set(OrderJournal.load(tmp_path).orders) == {"dz-1-0-0", "dz-2-0-0", "dz-3-0-0"}


async def test_a_file_rotated_away_during_a_sync_is_synced_and_closed_before_the_new_one_counts(
    tmp_path: Path,
) -> None:
    gate = Gate()
    j = OrderJournal(tmp_path, "batch", max_bytes=1_000, fdatasync=gate)
    j.order(tracked(1, 0))
    first = j.path
    j.sync_soon()
    await entered(gate)
    opp = 1
    while j.path == first:  # rotate while the old file's sync is under way
        opp += 1
        j.order(tracked(opp, 0))
    second = j.path
    assert first is not None and second is not None
    waiter = asyncio.ensure_future(j.synced())
    gate.release.set()
    await asyncio.wait_for(waiter, WAIT_S)
    assert gate.calls == [str(first), str(first), str(second)]  # the old file again (its tail), then the new
    assert j.synced_position == (second, second.stat().st_size) and j.records_synced == opp
    assert open_files(tmp_path) == [str(second)]
    j.close()
    assert len(OrderJournal.load(tmp_path).orders) == opp


async def test_a_failed_fdatasync_is_counted_logged_once_and_sticky(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    def eio(fd: int) -> None:
        raise OSError(errno.EIO, "Input/output error")

    j = OrderJournal(tmp_path, "batch", fdatasync=eio)
    j.order(tracked(1, 0))
    j.sync_soon()
    with pytest.raises(JournalSyncError) as raised:
        await asyncio.wait_for(j.synced(), WAIT_S)
    assert raised.value.cause.errno == errno.EIO
    assert j.failure is not None and j.failure.errno == errno.EIO
    assert (j.sync_errors, j.fsyncs, j.records_synced) == (1, 0, 0)
    j.order(tracked(2, 0))  # still written (the page cache has it) ...
    j.sync_soon()  # ... but durability is never claimed again
    with pytest.raises(JournalSyncError):
        await j.synced()
    with pytest.raises(JournalSyncError):
        j.commit()
    assert j.take_failure() is j.failure and j.take_failure() is None  # one alert
    failures = [r for r in caplog.records if r.levelno == logging.ERROR and "fdatasync failed" in r.getMessage()]
    assert len(failures) == 1 and str(j.path) in failures[0].getMessage()
    j.close()
    assert set(OrderJournal.load(tmp_path).orders) == {"dz-1-0-0", "dz-2-0-0"}


@pytest.mark.parametrize(("policy", "after_write", "after_group_sync"),
                         [("always", 1, 2), ("batch", 0, 1), ("never", 0, 0)])
async def test_what_each_policy_syncs(tmp_path: Path, policy: str, after_write: int, after_group_sync: int) -> None:
    """always: before the call returns (before the send); batch: only by the group commit after the send;
    never: not at all (synced() returns at once)."""
    j = OrderJournal(tmp_path, policy)  # type: ignore[arg-type]
    j.intent_and_orders(1, STRATEGY_CROSS, legs(1), [tracked(1, 0), tracked(1, 1, SIDE_SELL)])
    assert j.fsyncs == after_write
    j.update(tracked(1, 0))  # updates are never synced on their own; the group commit carries them
    assert j.fsyncs == after_write
    j.sync_soon()
    await asyncio.wait_for(j.synced(), WAIT_S)
    assert j.fsyncs == after_group_sync
    j.close()


def test_intent_and_orders_writes_what_intent_and_order_write(tmp_path: Path) -> None:
    """One write instead of three, the same records: old journals and new ones load alike."""
    orders = [tracked(7, 0), tracked(7, 1, SIDE_SELL)]
    a = OrderJournal(tmp_path / "a", "never", clock=lambda: 5)
    a.intent(7, STRATEGY_CROSS, legs(7))
    for o in orders:
        a.order(o)
    a.close()
    b = OrderJournal(tmp_path / "b", "never", clock=lambda: 5)
    b.intent_and_orders(7, STRATEGY_CROSS, legs(7), orders)
    b.close()
    assert [p.read_bytes() for p in journal_files(tmp_path / "a")] == [p.read_bytes()
                                                                     for p in journal_files(tmp_path / "b")]


def test_settled_executions_survive_compaction_and_the_latest_time_is_kept(tmp_path: Path) -> None:
    clock = [1_000]
    j = OrderJournal(tmp_path, "batch", clock=lambda: clock[0])
    for opp in (1, 2, 3):
        clock[0] += 10
        j.intent_and_orders(opp, STRATEGY_CROSS, legs(opp), [tracked(opp, 0)])
        if opp != 2:
            j.done(opp, "filled")
    j.close()
    state = OrderJournal.load(tmp_path)
    assert dict(state.settled) == {1: 1_010, 3: 1_030} and state.last_ts_ns == 1_030
    OrderJournal.compact(tmp_path, state, now_ns=1_030)
    assert OrderJournal.load(tmp_path) == state
    text = journal_files(tmp_path)[0].read_text()
    assert text.count(SETTLED_OUTCOME) == 2
    # settled ids older than the retention are dropped at the next compaction
    OrderJournal.compact(tmp_path, state, now_ns=10**18)
    assert dict(OrderJournal.load(tmp_path).settled) == {}


def test_a_journal_written_before_last_had_a_time_loads(tmp_path: Path) -> None:
    (tmp_path / "orders-20260101-000000.jsonl").write_text('{"t": "last", "opportunity_id": 41}\n')
    state = OrderJournal.load(tmp_path)
    assert (state.last_opportunity_id, state.last_ts_ns, state.torn_lines) == (41, 0, 0)


CHILD = textwrap.dedent(
    """
    import sys
    from pathlib import Path

    from services.executor.order_journal import OrderJournal
    from services.executor.order_state import TrackedOrder

    j = OrderJournal(Path(sys.argv[1]), "batch")
    opp = 0
    while True:
        opp += 1
        orders = [TrackedOrder(f"k-{opp}-{leg}", opp, 0, leg, 0, 1, 0, "0.01", "100.00", "limit_ioc", opp)
                  for leg in range(3)]
        j.intent_and_orders(opp, 1, [{"venue": 0}], orders)
        j.sync_soon()
        print(opp, flush=True)
    """
)


def test_kill_9_never_splits_an_intent_from_its_orders(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(tmp_path)], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        confirmed = confirmations(proc, 300)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
        assert proc.stdout is not None and proc.stderr is not None
        proc.stdout.close()
        proc.stderr.close()
    state = OrderJournal.load(tmp_path)
    # Linux stops a write() between pages when a fatal signal arrives, so the write in flight at the kill may
    # leave a prefix of its batch: at most one torn line, and only in the last opportunity, which nothing had
    # confirmed (its requests are sent only after the write returns, so none of them left the process).
    assert state.torn_lines <= 1
    assert set(range(1, confirmed[-1] + 1)) <= set(state.open_executions)
    in_flight = max(state.open_executions)
    for opp in state.open_executions:  # all three orders with their intent, or (not written yet) nothing
        complete = {f"k-{opp}-{leg}" for leg in range(3)} <= set(state.orders)
        assert complete or (opp == in_flight and opp > confirmed[-1]), (opp, confirmed[-1], state.torn_lines)


def test_client_order_ids_parse_back_to_what_made_them() -> None:
    rng = random.Random(7)
    ids = [0xB, 0xBB, 0x1AB, 0xBEEF, *(rng.getrandbits(48) for _ in range(200))]  # hex `b`s next to the side letter
    for opp in ids:
        for leg in (0, 1, 2, 12):
            for side in (SIDE_BUY, SIDE_SELL):
                assert parse_client_order_id(client_order_id(opp, ROLE_LEG, leg, side)) == OrderIdentity(
                    opp, ROLE_LEG, leg, side, 0)
                for role in (ROLE_UNWIND, ROLE_HEDGE):
                    for attempt in (0, 3, 11):
                        cid = client_order_id(opp, role, leg, side, attempt)
                        assert parse_client_order_id(cid) == OrderIdentity(opp, role, leg, side, attempt), cid
    for other in ("dz", "dzxyz", "dz1b", "t123", "dz1abq0", "DZ1b0", "dz1ab0x"):
        assert parse_client_order_id(other) is None, other


# ----------------------------------------------------------------- the hot path's record


@settings(max_examples=300, deadline=None)
@given(
    cid=st.text(alphabet="abcdef0123456789", min_size=1, max_size=20).map(lambda x: "dz" + x),
    opp=st.integers(min_value=0, max_value=2**63 - 1),
    role=st.integers(min_value=0, max_value=2),
    leg=st.integers(min_value=0, max_value=2),
    venue=st.integers(min_value=0, max_value=9),
    symbol=st.integers(min_value=0, max_value=999),
    side=st.integers(min_value=0, max_value=1),
    qty=st.decimals(min_value=0, max_value=10**9, places=8, allow_nan=False).map(lambda d: format(d, "f")),
    price=st.one_of(st.none(), st.decimals(min_value=0, max_value=10**7, places=5, allow_nan=False)
                    .map(lambda d: format(d, "f"))),
    order_type=st.sampled_from(["limit_ioc", "market"]),
    created=st.integers(min_value=0, max_value=2**63 - 1),
    odd=st.sampled_from(["", "quote", "status", "trade"]),
)
def test_the_new_order_record_is_the_encoders_bytes(cid: str, opp: int, role: int, leg: int, venue: int, symbol: int,
                                                    side: int, qty: str, price: str | None, order_type: str,
                                                    created: int, odd: str) -> None:
    """The hot path formats a fresh order's record by hand; it must be the generic encoder's bytes exactly, and
    anything the format cannot express (a quote in a field, another state, a trade) must take the encoder."""
    o = TrackedOrder(cid + ('"' if odd == "quote" else ""), opp, role, leg, venue, symbol, side, qty, price,
                     order_type, created)
    if odd == "status":
        o.status = "NEW"
    if odd == "trade":
        o.add_trade(TradeFill("7", Decimal("1.5"), Decimal("0.1"), Decimal("0.0001"), "BNB"))
    assert _new_order_line(o) == _order_line("order", o)
    assert msgspec.json.decode(_new_order_line(o))["order"] == o.to_record()


async def test_a_sync_that_raises_something_else_fails_the_round_instead_of_killing_the_worker(tmp_path: Path) -> None:
    """Anything raised in a sync (not only OSError) is a failed sync: the waiters are told, close() does not hang."""
    def broken(fd: int) -> None:
        raise ValueError("not a file descriptor this time")

    j = OrderJournal(tmp_path, "batch", fdatasync=broken)
    j.order(tracked(1, 0))
    j.sync_soon()
    with pytest.raises(JournalSyncError, match="ValueError"):
        await asyncio.wait_for(j.synced(), WAIT_S)
    await asyncio.wait_for(asyncio.to_thread(j.close), WAIT_S)  # the worker is alive and idle, not dead mid-round
