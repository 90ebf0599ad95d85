"""A service's numbered event log: numbering across lifetimes, torn tails, roll-over and pruning by the bridge's
acknowledgement, a refusing disk; and the bridge's sequencer that fills gaps in the live stream from it."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from services.bridge.catchup import NO_END, Sequencer
from services.bridge.checkpoint import Checkpoint, checkpoint_path, for_session, load, save
from services.bridge.state import Totals
from shared.runtime.event_log import EventLog, log_dir, read_epoch, read_range, segments, write_acked


def _events(n: int, start: int = 0, topic: bytes = b"ev.x") -> list[tuple[bytes, bytes]]:
    return [(topic, f"payload-{i}".encode()) for i in range(start, start + n)]


def test_numbers_continue_across_lifetimes_and_a_torn_tail_is_cut_off(tmp_path: Path) -> None:
    first = EventLog(tmp_path)
    first.open()
    assert first.append(_events(3)) == 1
    assert first.append([(b"ev.stats", b"s1"), (b"ev.x", b"payload-3")]) == 4
    epoch = first.epoch
    first.close()
    (_, path), = segments(tmp_path)
    with open(path, "ab") as f:  # a record the crash tore in half
        f.write(b"\x40\x00\x00\x00garbage")
    second = EventLog(tmp_path)
    second.open()
    assert second.next_seq == 6 and second.epoch == epoch == read_epoch(tmp_path)
    assert second.last_record[b"ev.stats"] == b"s1"
    assert second.append(_events(1, start=5)) == 6
    got = list(read_range(tmp_path, 1, NO_END))
    assert [seq for seq, _, _ in got] == [1, 2, 3, 4, 5, 6]
    assert got[3][1:] == (b"ev.stats", b"s1") and got[5][2] == b"payload-5"
    assert [seq for seq, _, _ in read_range(tmp_path, 3, 4)] == [3, 4]
    second.close()


def test_a_new_log_has_a_new_epoch(tmp_path: Path) -> None:
    a, b = EventLog(tmp_path / "a"), EventLog(tmp_path / "b")
    a.open()
    b.open()
    assert a.epoch and b.epoch and a.epoch != b.epoch


def test_segments_roll_and_only_acknowledged_ones_are_deleted(tmp_path: Path) -> None:
    ev = EventLog(tmp_path, segment_bytes=200)
    ev.open()
    for k in range(20):
        ev.append(_events(2, start=2 * k))
    assert len(segments(tmp_path)) > 3
    assert [s for s, _, _ in read_range(tmp_path, 1, NO_END)] == list(range(1, 41))
    write_acked(tmp_path, 25)
    ev.append(_events(10, start=40))  # over a segment's size: a roll-over, which prunes
    firsts = [first for first, _ in segments(tmp_path)]
    # Every number after the acknowledgement is still there; whole segments before it are gone.
    assert [s for s, _, _ in read_range(tmp_path, 26, NO_END)] == list(range(26, 51))
    assert firsts[0] <= 26 and firsts[0] > 1
    assert ev.n_evicted == 0


def test_past_the_retention_cap_the_oldest_segments_go_counted(tmp_path: Path) -> None:
    ev = EventLog(tmp_path, segment_bytes=200, retain_bytes=600)
    ev.open()
    for k in range(40):
        ev.append(_events(2, start=2 * k))
    assert ev.n_evicted > 0
    assert sum(p.stat().st_size for _, p in segments(tmp_path)) <= 600 + 2 * 200
    assert [s for s, _, _ in read_range(tmp_path, 1, NO_END)][-1] == 80


def test_a_refused_write_is_counted_and_leaves_no_partial_record(tmp_path: Path) -> None:
    refuse = {"on": False}

    def disk(fd: int, data: bytes) -> int:
        if refuse["on"]:
            os.write(fd, data[: len(data) // 2])  # a nearly full disk takes part, then refuses
            raise OSError(errno.ENOSPC, "No space left on device")
        return os.write(fd, data)

    ev = EventLog(tmp_path, write_fn=disk)
    ev.open()
    ev.append(_events(2))
    refuse["on"] = True
    assert ev.append(_events(2, start=2)) == 3  # the numbers are used: the events still went out live
    refuse["on"] = False
    ev.append(_events(1, start=4))
    assert ev.n_failed == 1
    assert [s for s, _, _ in read_range(tmp_path, 1, NO_END)] == [1, 2, 5]


class _Recorder:
    def __init__(self) -> None:
        self.got: list[tuple[str, int, bytes]] = []

    def __call__(self, src: str, seq: int, payload: bytes) -> None:
        self.got.append((src, seq, payload))


def test_sequencer_fills_gaps_from_the_log_skips_duplicates_and_counts_what_is_lost(tmp_path: Path) -> None:
    run_dir = tmp_path
    ev = EventLog(log_dir(run_dir, "risk"))
    ev.open()
    ev.append(_events(6))  # 1..6 logged
    got = _Recorder()
    sq = Sequencer(run_dir, Checkpoint(), got)
    sq.on_live("risk", ev.epoch, 1, b"payload-0")
    sq.on_live("risk", ev.epoch, 4, b"payload-3")  # 2 and 3 were missed live: from the log
    sq.on_live("risk", ev.epoch, 3, b"payload-2")  # late duplicate
    assert [s for _, s, _ in got.got] == [1, 2, 3, 4]
    assert got.got[1][2] == b"payload-1" and sq.n_replayed == 2 and sq.n_duplicates == 1
    sq.on_live("risk", ev.epoch, 9, b"payload-8")  # 5, 6 in the log; 7, 8 nowhere
    assert [s for _, s, _ in got.got] == [1, 2, 3, 4, 5, 6, 9]
    assert sq.n_lost == 2


def test_sequencer_starts_after_the_checkpoint_and_resets_on_a_new_epoch(tmp_path: Path) -> None:
    ev = EventLog(log_dir(tmp_path, "executor"))
    ev.open()
    ev.append(_events(5))
    cp = Checkpoint(applied={"executor": 4}, stored={"executor": 3}, epochs={"executor": ev.epoch})
    got = _Recorder()
    sq = Sequencer(tmp_path, cp, got)
    sq.start(["executor", "risk"])  # risk has no log yet: nothing to do
    assert [s for _, s, _ in got.got] == [4, 5]  # after the lower of the two marks
    forgotten: list[str] = []
    sq.on_new_log = forgotten.append
    sq.on_live("executor", ev.epoch + 1, 1, b"new")  # a wiped run directory: a new log, numbered from 1
    assert forgotten == ["executor"] and got.got[-1] == ("executor", 1, b"new")


@pytest.mark.parametrize("n", [1, 1000])
def test_one_write_per_append(tmp_path: Path, n: int) -> None:
    calls: list[int] = []

    def counting(fd: int, data: bytes) -> int:
        calls.append(len(data))
        return os.write(fd, data)

    ev = EventLog(tmp_path, write_fn=counting)
    ev.open()
    ev.append(_events(n))
    assert len(calls) == 1


def test_a_new_run_counts_from_zero_and_keeps_the_positions(tmp_path: Path) -> None:
    path = checkpoint_path(tmp_path)
    totals = Totals(approved=7, opportunities={0: 9})
    save(path, Checkpoint(applied={"risk": 40}, stored={"risk": 38}, epochs={"risk": 5}, totals=totals, session="a"))
    same = for_session(load(path), "a")  # a restart within the run: the counts go on
    assert (same.totals, same.applied, same.session) == (totals, {"risk": 40}, "a")
    new = for_session(load(path), "b")  # the next run in the same directory: its own counts, nothing stored again
    assert (new.totals, new.session) == (Totals(), "b")
    assert (new.applied, new.stored, new.epochs) == ({"risk": 40}, {"risk": 38}, {"risk": 5})
    save(path, new)
    assert load(path).session == "b"
