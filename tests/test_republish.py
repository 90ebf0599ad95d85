"""An execution booked (its ``done`` record on disk) but killed before its Execution was published is published by
the restart: without it the bridge would never store the execution (the chaos test's `executions not in the
journal`). ``services/executor/republish.py``."""

from __future__ import annotations

import base64
from pathlib import Path

import msgspec
import pytest

from services.executor.order_journal import OrderJournal
from services.executor.republish import logged_executions, unpublished
from services.executor.session_books import SessionBooks
from shared.codec import event_codec
from shared.messages import TOPIC_EXECUTION, TOPIC_VENUE, Execution
from shared.runtime.event_log import EventLog, log_dir, scan, segments
from shared.runtime.session import SESSION_ENV
from tests.executor_kit import executor_on, still_sim
from tests.test_restart_books import _ledger
from tests.test_risk_rules import execution

CODEC = event_codec()


def _b64(exe: Execution) -> str:
    return base64.b64encode(CODEC.encode(exe)).decode()


def _booked(*opps: int) -> list[tuple[int, int, str]]:
    return [(k + 1, opp, _b64(execution(opp))) for k, opp in enumerate(opps)]


def test_the_done_record_carries_the_event_and_a_replay_keeps_the_latest_sessions(tmp_path: Path) -> None:
    j = OrderJournal(tmp_path, "never")
    old, books = SessionBooks("run-a"), SessionBooks("run-b")
    for b, opp in ((old, 1), (books, 2), (books, 3)):
        booked = b.next(opp, "filled", 0.5, _ledger((0, "USDT", "1")))
        j.done(opp, "filled", {**booked.done_fields(b.session), "event": _b64(execution(opp))})
        b.add(booked)
    j.close()
    state = OrderJournal.load(tmp_path)
    assert [(seq, opp) for seq, opp, _ in state.booked_events] == [(1, 2), (2, 3)]  # run-a's is not run-b's
    decoded = msgspec.msgpack.decode(base64.b64decode(state.booked_events[1][2]), type=Execution)
    assert decoded == execution(3)


def test_a_never_pruned_log_lacks_exactly_the_unpublished() -> None:
    booked = _booked(10, 11, 12, 13)
    # 12 was booked before 13 but published after it: the kill came between; absent from a whole log = lost
    lost = unpublished(booked, logged={10, 11, 13}, whole=True)
    assert [e.opportunity_id for e in lost] == [12]
    assert [e.opportunity_id for e in unpublished(booked, logged=set(), whole=True)] == [10, 11, 12, 13]
    assert unpublished(booked, logged={10, 11, 12, 13}, whole=True) == []


def test_a_pruned_log_counts_only_what_follows_its_first_logged_execution(caplog: pytest.LogCaptureFixture) -> None:
    booked = _booked(10, 11, 12, 13)
    # 10 is not in the log: pruned with the segment that held it (the bridge has it), not lost
    assert [e.opportunity_id for e in unpublished(booked, logged={11}, whole=False)] == [12, 13]
    assert unpublished(booked, logged=set(), whole=False) == []
    assert "cannot tell" in caplog.text


def test_an_unreadable_event_is_logged_and_the_others_still_published(caplog: pytest.LogCaptureFixture) -> None:
    booked = [*_booked(10), (2, 11, "not base64!"), (3, 12, base64.b64encode(b"\xc1").decode())]
    assert [e.opportunity_id for e in unpublished(booked, logged=set(), whole=True)] == [10]
    assert caplog.text.count("unreadable") == 2


def test_logged_executions_reads_every_segment_and_tells_a_pruned_log(tmp_path: Path) -> None:
    d = tmp_path / "executor"
    ev = EventLog(d, segment_bytes=200)
    ev.open()
    for opp in (1, 2, 3):
        ev.append([(TOPIC_EXECUTION, CODEC.encode(execution(opp))), (TOPIC_VENUE, b"\x90")])
    ev.close()
    assert len(segments(d)) > 1
    assert logged_executions(d) == ({1, 2, 3}, True)
    segments(d)[0][1].unlink()
    ids, whole = logged_executions(d)
    assert not whole and ids < {1, 2, 3}


def _drop_executions(directory: Path) -> int:
    """What a kill between ``done`` and the publication leaves: the event log without the Execution records."""
    dropped = 0
    for _first, path in segments(directory):
        data, kept, start = path.read_bytes(), bytearray(), 0
        for end, _seq, topic, _payload in scan(data):
            if topic == TOPIC_EXECUTION:
                dropped += 1
            else:
                kept += data[start:end]
            start = end
        path.write_bytes(bytes(kept))
    return dropped


async def test_a_restart_publishes_the_execution_a_kill_left_unpublished(
    run_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SESSION_ENV, "run-1")
    async with still_sim(run_dir) as sim:
        async with executor_on(sim, run_dir) as rig:
            first = await rig.run(rig.cross())
            second = await rig.run(rig.cross(buy="mexc", sell="binance"))
            events = log_dir(run_dir, rig.ex.name)
        assert _drop_executions(events) == 2
        assert logged_executions(events)[0] == set()
        async with executor_on(sim, run_dir) as rig:
            assert rig.ex.counters()["republished"] == 2
            rig.ex.flush_events()
            again = logged_executions(events)[0]
            assert again == {first.opportunity_id, second.opportunity_id}
        async with executor_on(sim, run_dir) as rig:  # published now: never twice
            assert rig.ex.counters()["republished"] == 0
