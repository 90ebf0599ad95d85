"""The local journal: its file format (round trip, torn tails, rotation, fsync policy) and the sink."""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import time
from pathlib import Path

import pytest

from services.bridge.journal import (
    JournalSink,
    JournalWriter,
    ReadStats,
    encode_record,
    expand_paths,
    journal_files,
    read_journal,
)
from services.bridge.records import KINDS, Record
from shared.config import Sinks
from tests.conftest import eventually_async
from tests.disk_kit import Disk

DAY_NS = 86_400 * 10**9
T0 = 1_767_225_600 * 10**9 - 5 * 10**9  # 2025-12-31T23:59:55Z: a UTC midnight 5 s later


def records(n: int, start: int = 0) -> list[Record]:
    """Records of every kind, with the value types records carry (ints, floats, text, lists, nested dicts)."""
    out = []
    for i in range(start, start + n):
        kind = KINDS[i % len(KINDS)]
        data = {"i": i, "px": i * 0.1 + 1e-9, "name": f'r{i} ü\n"q"', "legs": [{"venue": "binance", "qty": 1.5}]}
        out.append(Record(kind, f"{kind}:{i}", data))
    return out


def read_all(paths: list[Path]) -> tuple[list[Record], ReadStats]:
    stats = ReadStats()
    return [r for p in paths for r in read_journal(p, stats)], stats


class Clock:
    def __init__(self, ns: int) -> None:
        self.ns = ns

    def __call__(self) -> int:
        return self.ns


def test_round_trip_every_kind(tmp_path: Path) -> None:
    recs = records(60)
    w = JournalWriter(tmp_path, "batch")
    w.write(recs[:25])
    w.write(recs[25:])
    w.close()
    got, stats = read_all(journal_files(tmp_path))
    assert got == recs
    assert stats == ReadStats(records=60, torn=0, bad=0)
    assert {r.kind for r in got} == set(KINDS)


def test_torn_last_line_is_skipped_and_counted(tmp_path: Path) -> None:
    recs = records(10)
    w = JournalWriter(tmp_path, "batch")
    w.write(recs)
    path = w.path
    assert path is not None
    w.close()
    # A crash mid-write: the last record only partly on disk.
    size = path.stat().st_size
    with open(path, "r+b") as f:
        f.truncate(size - len(encode_record(recs[-1])) // 2)
    got, stats = read_all([path])
    assert got == recs[:-1]
    assert (stats.torn, stats.bad) == (1, 0)


def test_garbage_inside_a_file_is_skipped_not_fatal(tmp_path: Path) -> None:
    recs = records(4)
    path = tmp_path / "journal-x.jsonl"
    lines = [encode_record(r) for r in recs]
    lines.insert(2, b"{not json\n")
    lines.insert(3, b'{"kind": "nonsense", "key": "1", "data": {}}\n')
    lines.append(b"\0\0\0\0")  # what a power cut can leave at the tail: zeroed blocks
    path.write_bytes(b"".join(lines))
    got, stats = read_all([path])
    assert got == recs
    assert (stats.bad, stats.torn) == (2, 0)


def test_a_new_writer_never_appends_to_an_old_file(tmp_path: Path) -> None:
    clock = Clock(T0 - 60 * 10**9)
    w1 = JournalWriter(tmp_path, "batch", clock=clock)
    w1.write(records(3))
    w1.close()
    first = journal_files(tmp_path)
    with open(first[0], "ab") as f:
        f.write(b'{"kind": "opportunity", "ke')  # torn by the crash
    w2 = JournalWriter(tmp_path, "batch", clock=clock)  # same instant: the name must still be new
    w2.write(records(3, start=3))
    w2.close()
    files = journal_files(tmp_path)
    assert len(files) == 2
    got, stats = read_all(files)
    assert got == records(6)
    assert stats.torn == 1


def test_rotation_by_size_keeps_order_and_bounds_files(tmp_path: Path) -> None:
    recs = records(500)
    line = max(len(encode_record(r)) for r in recs)
    max_bytes = 20 * line
    w = JournalWriter(tmp_path, "never", max_bytes=max_bytes)
    for i in range(0, 500, 37):
        w.write(recs[i : i + 37])
    w.close()
    files = journal_files(tmp_path)
    total = sum(len(encode_record(r)) for r in recs)
    assert len(files) >= -(-total // max_bytes) > 1
    assert all(f.stat().st_size <= max_bytes for f in files)
    assert files == sorted(files) and w.files_opened == len(files)
    got, _ = read_all(files)
    assert got == recs  # file name order is write order


def test_rotation_at_utc_midnight(tmp_path: Path) -> None:
    clock = Clock(T0)
    w = JournalWriter(tmp_path, "batch", clock=clock)
    w.write(records(5))
    w.write(records(5, start=5))  # same day: same file
    clock.ns = T0 + 10 * 10**9  # 5 s past midnight
    w.write(records(5, start=10))
    clock.ns = T0 + 10 * 10**9 + DAY_NS
    w.write(records(5, start=15))
    w.close()
    files = journal_files(tmp_path)
    assert [f.name[len("journal-") : len("journal-") + 8] for f in files] == ["20251231", "20260101", "20260102"]
    assert [len(read_all([f])[0]) for f in files] == [10, 5, 5]


@pytest.mark.parametrize(("policy", "expected"), [("always", 10 + 5), ("batch", 2), ("never", 0)])
def test_fsync_policy(tmp_path: Path, policy: str, expected: int) -> None:
    w = JournalWriter(tmp_path, policy)  # type: ignore[arg-type]
    w.write(records(10))
    w.write(records(5, start=10))
    assert w.fsyncs == expected
    # With "always", each record is on disk before write() returns: the file holds every line already.
    if policy == "always":
        assert w.path is not None
        assert w.path.read_bytes().count(b"\n") == 15
    w.close()
    assert w.fsyncs == expected + (1 if policy != "never" else 0)  # a file is synced once more when left


def test_expand_paths_takes_directories_and_their_spool(tmp_path: Path) -> None:
    for directory, prefix, start in ((tmp_path, "journal", 0), (tmp_path / "spool", "spool", 2)):
        w = JournalWriter(directory, "never", prefix=prefix)
        w.write(records(2, start=start))
        w.close()
    (tmp_path / "notes.txt").write_text("not a journal")
    files = expand_paths([tmp_path])
    assert [f.parent.name for f in files] == [tmp_path.name, "spool"]
    assert read_all(files)[0] == records(4)


async def test_sink_writes_everything_in_order(tmp_path: Path) -> None:
    sink = JournalSink(tmp_path / "journal", Sinks(journal_fsync="always", batch_max_rows=100, batch_interval_ms=20))
    await sink.start()
    recs = records(2000)
    for i, r in enumerate(recs):
        sink.submit(r)
        if i % 300 == 0:
            await asyncio.sleep(0)  # let the writer run between bursts, as the bridge's loop does
    await sink.stop()
    got, stats = read_all(journal_files(tmp_path / "journal"))
    assert got == recs and stats.torn == 0
    assert sink.counters() == {"written": 2000, "failed": 0, "stalls": 0, "dropped": 0, "pending": 0}
    assert sink.writer.fsyncs >= 2000


async def test_sink_keeps_records_while_the_disk_refuses(tmp_path: Path) -> None:
    target = tmp_path / "journal"
    target.write_text("a file where the directory should be")  # every write fails with an OSError
    sink = JournalSink(target, Sinks(batch_max_rows=10, batch_interval_ms=10))
    await sink.start()
    for r in records(50):
        sink.submit(r)

    await eventually_async(lambda: sink.n_failed > 0, timeout=5, what="a failed write")
    assert sink.counters()["pending"] == 50 and sink.n_written == 0
    os.unlink(target)  # the operator fixes it; the sink retries on its own
    for r in records(10, start=50):
        sink.submit(r)
    await sink.stop()
    got, _ = read_all(journal_files(target))
    assert got == records(60)
    assert sink.n_dropped == 0


def test_a_record_that_is_not_json_is_skipped_and_counted(tmp_path: Path) -> None:
    recs = records(4)
    odd = Record("fill", "x:1", {"qty": complex(1, 2)})  # JSON has no such number
    w = JournalWriter(tmp_path, "batch")
    w.write([*recs[:2], odd, *recs[2:]])
    w.close()
    assert w.unencodable == 1 and w.records_written == 4
    assert read_all(journal_files(tmp_path))[0] == recs


@pytest.mark.parametrize("policy", ["always", "batch", "never"])
def test_a_failed_write_keeps_its_file_and_cuts_off_the_torn_part(tmp_path: Path, policy: str) -> None:
    disk = Disk()
    recs = records(40)
    w = JournalWriter(tmp_path, policy, write_fn=disk)  # type: ignore[arg-type]
    w.write(recs[:5])
    # Room for three and a half more records, then the disk is full: a record is torn half-way.
    disk.free = sum(len(encode_record(r)) for r in recs[5:8]) + len(encode_record(recs[8])) // 2
    with pytest.raises(OSError) as refused:
        w.write(recs[5:15])
    assert refused.value.errno == errno.ENOSPC
    # "always" syncs record by record: the three that fit are done; otherwise the whole batch is retried.
    done = 5 + w.settled
    assert w.settled == (3 if policy == "always" else 0)
    assert w.records_written == done
    for _ in range(50):  # the disk stays full: every retry fails, in the same file
        with pytest.raises(OSError):
            w.write(recs[done:15])
        assert w.settled == 0
    assert disk.refused == 51 and w.files_opened == 1 and len(journal_files(tmp_path)) == 1
    disk.free = None  # space again
    w.write(recs[done:15])
    w.write(recs[15:])
    w.close()
    got, stats = read_all(journal_files(tmp_path))
    assert stats == ReadStats(records=40, torn=0, bad=0)  # no torn line left inside the file
    assert got == recs and w.records_written == 40 and w.files_opened == 1


async def test_a_full_disk_backs_off_keeps_one_file_and_loses_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="services.bridge.journal")
    disk = Disk()
    directory = tmp_path / "journal"
    retry_max_s = 0.4
    sink = JournalSink(directory, Sinks(batch_max_rows=10, batch_interval_ms=10), retry_max_s=retry_max_s,
                       write_fn=disk)
    await sink.start()
    recs = records(4000)
    try:
        for r in recs[:100]:
            sink.submit(r)
        await eventually_async(lambda: sink.n_written == 100, timeout=10, what="the first records written")
        disk.free = 777  # part of a record fits, then the disk is full

        # A busy bridge: a record every millisecond for 1.5 s, so the queue is always past batch_max_rows.
        n = 100
        window_end = time.monotonic() + 1.5
        while time.monotonic() < window_end and n < len(recs):
            sink.submit(recs[n])
            n += 1
            await asyncio.sleep(0.001)
        # Back-off from 0.1 s doubling up to 0.4 s: about 6 attempts in 1.5 s, however full the queue.
        assert 2 <= sink.n_failed <= 10, sink.counters()
        assert len(journal_files(directory)) == 1 and sink.writer.files_opened == 1  # not one file per attempt
        assert sink.stalled and sink.n_written + sink.counters()["pending"] == n  # what did not fit waits

        disk.free = None  # space returns: the queue drains on its own, within one back-off period
        await eventually_async(lambda: sink.counters()["pending"] == 0, timeout=10, what="the queue written")
        assert not sink.stalled
        for r in recs[n : n + 10]:
            sink.submit(r)
        n += 10
    finally:
        await sink.stop()
    got, stats = read_all(journal_files(directory))
    assert stats == ReadStats(records=n, torn=0, bad=0)
    assert got == recs[:n]  # everything, once, in order
    assert len(journal_files(directory)) == 1
    c = sink.counters()
    assert (c["written"], c["stalls"], c["dropped"], c["pending"]) == (n, 1, 0, 0) and c["failed"] == sink.n_failed

    # Logged once when it starts (with the file, the errno and how much waits) and once when it ends.
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1, errors
    path = str(journal_files(directory)[0])
    assert errors[0].startswith(f"journal: cannot write to {path} (ENOSPC: No space left on device); ")
    assert "records waiting in memory, retrying with back-off up to 0.4 s" in errors[0]
    cleared = [r.getMessage() for r in caplog.records if "again after" in r.getMessage()]
    assert len(cleared) == 1 and cleared[0].startswith(f"journal: writing to {path} again after "), cleared
