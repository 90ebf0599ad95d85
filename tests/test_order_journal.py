"""The order journal: replay of intents/orders/updates/done, torn lines, rotation, fsync policy, compaction,
and recovery after a real ``kill -9`` of a process writing it."""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import textwrap
import time
from decimal import Decimal as D
from pathlib import Path

import msgspec
import pytest

from services.executor.order_journal import (
    COMPACT_TMP,
    NO_STRATEGY,
    JournalState,
    OrderJournal,
    journal_files,
)
from services.executor.order_state import CANCELED, FILLED, NEW, PARTIALLY_FILLED, PENDING, TrackedOrder, Trade
from shared.messages import ROLE_LEG, ROLE_UNWIND, SIDE_BUY, SIDE_SELL, STRATEGY_CROSS

REPO = Path(__file__).resolve().parents[1]
DAY_NS = 86_400 * 10**9
T0 = 1_767_225_600 * 10**9 - 5 * 10**9  # 2025-12-31T23:59:55Z


def tracked(opp: int, leg: int, side: int = SIDE_BUY, role: int = ROLE_LEG) -> TrackedOrder:
    return TrackedOrder(f"dz-{opp}-{leg}-{role}", opp, role, leg, leg, 3, side, "0.01000000", "65000.00",
                        "LIMIT_IOC", 1_000 + opp)


def legs(opp: int) -> list[dict[str, object]]:
    return [{"venue": 0, "symbol": 3, "side": SIDE_BUY, "price": "65000.00", "qty": "0.01000000", "n": opp},
            {"venue": 1, "symbol": 3, "side": SIDE_SELL, "price": "65100.00", "qty": "0.01000000", "n": opp}]


def write_execution(j: OrderJournal, opp: int, *, settle: bool) -> tuple[TrackedOrder, TrackedOrder]:
    """One cross execution: the plan, two orders journaled before sending, their answers, maybe settled."""
    j.intent(opp, STRATEGY_CROSS, legs(opp))
    buy, sell = tracked(opp, 0, SIDE_BUY), tracked(opp, 1, SIDE_SELL)
    j.order(buy)
    j.order(sell)
    j.commit()
    buy.advance(FILLED, D("0.01"), D("650"), f"{opp}01")
    buy.add_trade(Trade(f"t{opp}", D("65000.00"), D("0.01"), D("0.65"), "USDT"))
    j.update(buy)
    sell.advance(PARTIALLY_FILLED, D("0.004"), D("260.4"), f"{opp}02")
    j.update(sell)
    if settle:
        j.done(opp, "unwound")
    j.commit()
    return buy, sell


def test_replay_keeps_open_executions_with_the_last_state_of_their_orders(tmp_path: Path) -> None:
    j = OrderJournal(tmp_path, "always")
    write_execution(j, 5, settle=True)
    buy, sell = write_execution(j, 6, settle=False)
    j.close()
    state = OrderJournal.load(tmp_path)
    assert set(state.open_executions) == {6}
    intent = state.open_executions[6]
    assert (intent["opportunity_id"], intent["strategy"], intent["legs"]) == (6, STRATEGY_CROSS, legs(6))
    assert state.orders == {buy.client_order_id: buy, sell.client_order_id: sell}
    assert state.orders[buy.client_order_id].trades["t6"].commission == D("0.65")
    assert state.orders[sell.client_order_id].status == PARTIALLY_FILLED
    assert (state.torn_lines, state.last_opportunity_id) == (0, 6)


def test_an_empty_or_missing_directory_loads_as_nothing(tmp_path: Path) -> None:
    assert OrderJournal.load(tmp_path / "nope") == JournalState({}, {}, 0, 0)
    OrderJournal(tmp_path, "always").close()  # opening alone writes no file
    assert journal_files(tmp_path) == []


def test_done_drops_the_execution_and_late_final_reports_stay_history(tmp_path: Path) -> None:
    j = OrderJournal(tmp_path, "never")
    buy, _ = write_execution(j, 9, settle=True)
    j.update(buy)  # a late (final) report written after settling: replaying it must not reopen anything
    j.close()
    state = OrderJournal.load(tmp_path)
    assert (state.open_executions, state.orders, state.last_opportunity_id) == ({}, {}, 9)


def test_an_order_still_open_after_done_is_never_forgotten(tmp_path: Path) -> None:
    j = OrderJournal(tmp_path, "never")
    write_execution(j, 9, settle=True)
    late = tracked(9, 0, SIDE_SELL, ROLE_UNWIND)
    j.order(late)  # a caller bug or a race: an order that may be live must still be reconciled
    j.close()
    state = OrderJournal.load(tmp_path)
    assert list(state.orders) == [late.client_order_id]
    assert state.open_executions[9]["strategy"] == NO_STRATEGY and state.open_executions[9]["legs"] == []


def test_an_order_without_its_intent_gets_a_placeholder_execution(tmp_path: Path) -> None:
    j = OrderJournal(tmp_path, "always")
    o = tracked(12, 0)
    j.order(o)
    j.close()
    state = OrderJournal.load(tmp_path)
    assert state.orders[o.client_order_id].status == PENDING
    assert state.open_executions == {12: {"opportunity_id": 12, "strategy": NO_STRATEGY, "legs": [], "ts_ns": 0}}


def test_torn_tail_and_garbage_lines_are_skipped_and_counted(tmp_path: Path) -> None:
    j = OrderJournal(tmp_path, "always")
    buy, sell = write_execution(j, 1, settle=False)
    path = j.path
    j.close()
    assert path is not None
    good = path.read_bytes()
    later = tracked(2, 0)
    full = msgspec.json.encode({"t": "order", "order": later.to_record()})
    # garbage in the middle, a record of an unknown kind, a bad decimal, zeros, and a torn last line
    bad_decimal = later.to_record() | {"executed": "1.2.3"}
    lines = good.split(b"\n")
    assert len(lines) == 6 and lines[-1] == b""  # 5 records
    bad = [b"not json at all", b'{"t": "mystery"}', msgspec.json.encode({"t": "update", "order": bad_decimal}),
           b"\x00\x00\x00\x00", b"[1, 2]"]
    path.write_bytes(b"\n".join(lines[:3] + bad + lines[3:]) + full[: len(full) // 2])
    state = OrderJournal.load(tmp_path)
    assert state.torn_lines == 6
    assert later.client_order_id not in state.orders
    assert state.orders[buy.client_order_id].status == FILLED
    assert state.orders[sell.client_order_id].status == PARTIALLY_FILLED


def test_a_complete_last_record_without_its_newline_counts(tmp_path: Path) -> None:
    j = OrderJournal(tmp_path, "always")
    o = tracked(3, 0)
    j.intent(3, STRATEGY_CROSS, legs(3))
    j.order(o)
    path = j.path
    j.close()
    assert path is not None
    path.write_bytes(path.read_bytes().rstrip(b"\n"))
    assert list(OrderJournal.load(tmp_path).orders) == [o.client_order_id]


def test_files_rotate_by_size_and_day_and_replay_in_name_order(tmp_path: Path) -> None:
    clock = [T0]
    j = OrderJournal(tmp_path, "batch", max_bytes=2_000, clock=lambda: clock[0])
    for opp in range(1, 5):
        write_execution(j, opp, settle=opp % 2 == 0)
    clock[0] = T0 + 10 * 10**9  # past UTC midnight
    buy, _ = write_execution(j, 5, settle=False)
    j.close()
    files = journal_files(tmp_path)
    assert len(files) >= 4 and j.files_opened == len(files)
    assert all(f.stat().st_size <= 2_000 for f in files[:-1])
    assert files[0].name.startswith("orders-20251231-") and files[-1].name.startswith("orders-20260101-")
    state = OrderJournal.load(tmp_path)
    assert sorted(state.open_executions) == [1, 3, 5]
    assert state.orders[buy.client_order_id] == buy


def test_a_new_writer_never_appends_to_old_files_and_sorts_after_them(tmp_path: Path) -> None:
    j = OrderJournal(tmp_path, "always", clock=lambda: T0 + DAY_NS)
    write_execution(j, 1, settle=False)
    j.close()
    first = journal_files(tmp_path)
    size = first[0].stat().st_size
    back = OrderJournal(tmp_path, "always", clock=lambda: T0)  # the clock went back a day
    write_execution(back, 2, settle=False)
    back.close()
    files = journal_files(tmp_path)
    assert files[0] == first[0] and first[0].stat().st_size == size and len(files) == 2
    assert files[1].name > files[0].name
    assert sorted(OrderJournal.load(tmp_path).open_executions) == [1, 2]


@pytest.mark.parametrize(("policy", "expected"), [("always", 7), ("batch", 4), ("never", 0)])
def test_fsync_policy(tmp_path: Path, policy: str, expected: int) -> None:
    j = OrderJournal(tmp_path, policy)  # type: ignore[arg-type]
    write_execution(j, 1, settle=False)  # 5 records, 2 commits
    write_execution(j, 2, settle=True)  # 6 records, 2 commits
    assert j.records_written == 11
    # always: one per intent, order and done record (updates are re-learned from the venue, never synced alone);
    # batch: one per commit; never: none
    assert j.fsyncs == expected
    j.commit()  # nothing new: batch has nothing to sync
    assert j.fsyncs == expected
    j.close()


def test_an_unencodable_record_raises_before_anything_is_written(tmp_path: Path) -> None:
    j = OrderJournal(tmp_path, "always")
    with pytest.raises(TypeError):
        j.intent(1, STRATEGY_CROSS, [{"venue": object()}])
    assert j.records_written == 0 and journal_files(tmp_path) == []


def test_compaction_keeps_only_open_executions_in_one_file(tmp_path: Path) -> None:
    j = OrderJournal(tmp_path, "always", max_bytes=1_500)
    for opp in range(1, 8):
        write_execution(j, opp, settle=opp != 4)
    j.close()
    assert len(journal_files(tmp_path)) > 2
    state = OrderJournal.load(tmp_path)
    path = OrderJournal.compact(tmp_path, state)
    assert journal_files(tmp_path) == [path]
    again = OrderJournal.load(tmp_path)
    assert again == state and list(again.open_executions) == [4] and again.last_opportunity_id == 7
    assert not (tmp_path / COMPACT_TMP).exists()


def test_compaction_under_a_live_writer_moves_it_to_a_new_file(tmp_path: Path) -> None:
    j = OrderJournal(tmp_path, "always")
    _, sell = write_execution(j, 1, settle=False)
    state = OrderJournal.load(tmp_path)
    resolved = state.orders[sell.client_order_id]
    resolved.advance(CANCELED, D("0.004"), D("260.4"))  # reconciliation resolved it in the loaded state ...
    j.update(resolved)  # ... and journaled it before compacting that state
    compacted = OrderJournal.compact(tmp_path, state)
    write_execution(j, 2, settle=False)  # the writer's file was removed: it must open a new one
    j.close()
    files = journal_files(tmp_path)
    assert files[0] == compacted and len(files) == 2
    again = OrderJournal.load(tmp_path)
    assert sorted(again.open_executions) == [1, 2] and again.orders[sell.client_order_id].status == CANCELED


def test_a_crash_during_compaction_loses_nothing(tmp_path: Path) -> None:
    j = OrderJournal(tmp_path, "always")
    write_execution(j, 1, settle=True)
    write_execution(j, 2, settle=False)
    j.close()
    state = OrderJournal.load(tmp_path)
    saved = {p.name: p.read_bytes() for p in journal_files(tmp_path)}
    (tmp_path / COMPACT_TMP).write_bytes(b'{"t": "last", "opport')  # crashed while writing the new file
    assert OrderJournal.load(tmp_path) == state
    # crashed after the rename, before removing the old files: old + new replay to the same state
    new = OrderJournal.compact(tmp_path, state)
    for name, data in saved.items():
        (tmp_path / name).write_bytes(data)
    assert journal_files(tmp_path)[-1] == new and len(journal_files(tmp_path)) == 2
    assert OrderJournal.load(tmp_path) == state


# ------------------------------------------------------------ kill -9

CHILD = textwrap.dedent(
    """
    import sys
    from decimal import Decimal
    from pathlib import Path

    from services.executor.order_journal import OrderJournal
    from services.executor.order_state import TrackedOrder

    j = OrderJournal(Path(sys.argv[1]), "always")
    opp = 0
    while True:
        opp += 1
        j.intent(opp, 0, [{"venue": 0, "qty": "0.01"}])
        o = TrackedOrder(f"k-{opp}", opp, 0, 0, 0, 1, 0, "0.01", "100.00", "LIMIT_IOC", opp)
        j.order(o)
        o.advance("FILLED", Decimal("0.01"), Decimal("1.0000"), str(opp))
        j.update(o)
        if opp % 3 == 0:
            j.done(opp, "filled")
        print(opp, flush=True)  # every record of this execution has been fsynced
    """
)


def confirmations(proc: subprocess.Popen[bytes], wanted: int, timeout: float = 30.0) -> list[int]:
    """Read the child's confirmed ids until ``wanted`` of them arrived (a deadline, not a sleep)."""
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    sel = selectors.DefaultSelector()
    sel.register(fd, selectors.EVENT_READ)
    buf = b""
    deadline = time.monotonic() + timeout
    newline = b"\n"
    while buf.count(newline) < wanted:
        assert time.monotonic() < deadline, f"child confirmed only {buf.count(newline)} records"
        if sel.select(timeout=0.5):
            chunk = os.read(fd, 65536)
            assert chunk, f"child exited: {proc.wait()} {proc.stderr.read() if proc.stderr else b''!r}"
            buf += chunk
    sel.close()
    return [int(x) for x in buf.split(b"\n")[:-1]]


@pytest.mark.parametrize("wanted", [1, 57, 400])
def test_kill_9_at_any_point_loses_no_record_written_before_fsync_returned(tmp_path: Path, wanted: int) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(tmp_path)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:
        confirmed = confirmations(proc, wanted)
        os.kill(proc.pid, signal.SIGKILL)  # mid-loop: whatever record the child was writing
    finally:
        proc.kill()
        proc.wait()
        assert proc.stdout is not None and proc.stderr is not None
        proc.stdout.close()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    state = OrderJournal.load(tmp_path)
    assert state.torn_lines == 0  # a killed process never tears a write(): only a crashed host could
    last = confirmed[-1]
    assert confirmed == list(range(1, last + 1))
    assert state.last_opportunity_id >= last
    for opp in confirmed:
        if opp % 3 == 0:
            assert opp not in state.open_executions
        else:
            assert state.open_executions[opp]["legs"] == [{"venue": 0, "qty": "0.01"}]
            o = state.orders[f"k-{opp}"]
            assert (o.status, o.executed, o.order_id) == (FILLED, D("0.01"), str(opp))
    # anything past the last confirmation is a prefix of the next execution, never a corrupt one
    for opp in range(last + 1, state.last_opportunity_id + 1):
        assert opp in state.open_executions
        o = state.orders.get(f"k-{opp}")
        assert o is None or o.status in (PENDING, FILLED)
    assert NEW not in {o.status for o in state.orders.values()}
