"""The PostgreSQL sink's spool on a disk that refuses (full): one file, back-off, nothing lost, logged once
each way; and ``through``, the per-source mark of what the sink made durable.

No PostgreSQL server is needed: the DSN points at a closed local port, so every record goes to the spool.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from pathlib import Path

import pytest

from services.bridge.journal import ReadStats, journal_files, read_journal
from services.bridge.postgres_sink import PostgresSink
from services.bridge.records import KINDS, Record
from shared.config import Sinks
from tests.conftest import eventually_async, free_port
from tests.disk_kit import Disk

FAST = Sinks(batch_max_rows=10, batch_interval_ms=10)
LOGGER = "services.bridge.postgres_sink"


def unreachable_dsn() -> str:
    return f"postgresql://draizer:secret@127.0.0.1:{free_port()}/draizer"  # nothing listens there


def records(n: int, start: int = 0, src: str = "detector") -> list[Record]:
    """Records of every kind from one source, numbered 1, 2, ... from ``start + 1``, as the event log does."""
    out = []
    for i in range(start, start + n):
        kind = KINDS[i % len(KINDS)]
        out.append(Record(kind, f"{kind}:{src}:{i}", {"i": i, "name": f"r{i}"}, src, i + 1))
    return out


def spooled(directory: Path) -> tuple[list[Record], ReadStats]:
    stats = ReadStats()
    return [r for p in journal_files(directory) for r in read_journal(p, stats)], stats


async def test_a_full_disk_backs_off_keeps_one_spool_file_and_loses_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    disk = Disk()
    spool_dir = tmp_path / "spool"
    sink = PostgresSink(unreachable_dsn(), FAST, tmp_path, retry_max_s=0.4, write_fn=disk)
    await sink.start()
    recs = records(4000)
    try:
        for r in recs[:100]:
            sink.submit(r)
        await eventually_async(lambda: sink.n_spooled == 100, timeout=10, what="the first records spooled")
        assert sink.through == {"detector": 100}
        disk.free = 777  # part of a record fits, then the disk is full

        # A busy bridge: a record every millisecond for 1.5 s, so the queue is always past batch_max_rows.
        n = 100
        window_end = time.monotonic() + 1.5
        while time.monotonic() < window_end and n < len(recs):
            sink.submit(recs[n])
            n += 1
            await asyncio.sleep(0.001)
        # Back-off from 0.1 s doubling up to 0.4 s: about 6 tries in 1.5 s, not one per 10 ms cycle.
        assert 2 <= disk.refused <= 10, (disk.refused, sink.counters())
        assert len(journal_files(spool_dir)) == 1 and sink.spool.writer.files_opened == 1  # not a file per try
        assert sink.spool_stall.stalled and sink.counters()["spool_stalls"] == 1
        # What did not fit waits in memory; ``through`` covers only what is in the spool.
        assert sink.n_spooled + len(sink._queue) == n and sink.n_dropped == 0
        assert sink.through == {"detector": sink.n_spooled}

        disk.free = None  # space returns: the queue drains on its own, within one back-off period
        await eventually_async(lambda: sink.n_spooled == n, timeout=10, what="the waiting records spooled")
        assert not sink.spool_stall.stalled and sink.through == {"detector": n}
        for r in recs[n : n + 10]:
            sink.submit(r)
        n += 10
        await eventually_async(lambda: sink.n_spooled == n, timeout=10, what="new records spooled")
    finally:
        await sink.stop()
    got, stats = spooled(spool_dir)
    assert stats == ReadStats(records=n, torn=0, bad=0)  # the torn part of the failed write was cut off
    assert got == recs[:n]  # everything, once, in order
    assert len(journal_files(spool_dir)) == 1
    c = sink.counters()
    assert (c["spooled"], c["spool_stalls"], c["dropped"], c["written"]) == (n, 1, 0, 0), c
    assert sink.through == {"detector": n}

    # Logged once when it starts (the directory, the errno, how much waits) and once when it ends.
    mine = [r for r in caplog.records if r.name == LOGGER]
    errors = [r.getMessage() for r in mine if r.levelno >= logging.ERROR]
    assert len(errors) == 1, errors
    assert errors[0].startswith(
        f"postgres sink: cannot write the spool in {spool_dir} (ENOSPC: No space left on device); "
    ), errors
    assert "records waiting in memory, retrying with back-off up to 0.4 s" in errors[0]
    cleared = [r.getMessage() for r in mine if "again after" in r.getMessage()]
    assert len(cleared) == 1, cleared
    assert cleared[0].startswith(f"postgres sink: writing the spool in {spool_dir} again after "), cleared


async def test_stop_during_a_stall_tries_once_more(tmp_path: Path) -> None:
    """At stop the back-off does not count: the last try spools what the disk takes by then."""
    disk = Disk(free=0)
    sink = PostgresSink(unreachable_dsn(), FAST, tmp_path, retry_max_s=60.0, write_fn=disk)
    await sink.start()
    recs = records(50)
    for r in recs:
        sink.submit(r)
    await eventually_async(lambda: disk.refused >= 2, timeout=10, what="the spool refused twice")
    disk.free = None  # the next try would come in up to a minute; stop does not wait for it
    await sink.stop()
    assert spooled(tmp_path / "spool")[0] == recs
    assert sink.n_spooled == 50 and sink.n_dropped == 0 and sink.through == {"detector": 50}


async def test_through_follows_what_is_spooled(tmp_path: Path) -> None:
    sink = PostgresSink(unreachable_dsn(), FAST, tmp_path)
    await sink.start()
    mixed = [*records(30, src="detector"), *records(20, src="risk"), *records(5, src="")]  # "": no source
    for r in mixed:
        sink.submit(r)
    await eventually_async(lambda: sink.n_spooled == len(mixed), timeout=10, what="everything spooled")
    assert sink.through == {"detector": 30, "risk": 20}
    await sink.stop()
    assert spooled(tmp_path / "spool")[0] == mixed


async def test_records_dropped_at_the_cap_do_not_advance_through(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("services.bridge.postgres_sink.HARD_CAP", 50)
    disk = Disk(free=0)  # nothing can be spooled: the queue fills up to the cap
    sink = PostgresSink(unreachable_dsn(), FAST, tmp_path, retry_max_s=0.2, write_fn=disk)
    await sink.start()
    old, new = records(30, src="old"), records(60, src="new")
    for r in old + new:  # no await in between: the sink cannot spool any of them before the cap bites
        sink.submit(r)
    assert sink.n_dropped == 40 and sink.through == {}  # all of "old" and the first 10 of "new"
    disk.free = None
    await eventually_async(lambda: sink.n_spooled == 50, timeout=10, what="what is left spooled")
    await sink.stop()
    assert spooled(tmp_path / "spool")[0] == new[10:]
    assert sink.through == {"new": 60} and sink.n_dropped == 40


async def test_the_cap_biting_while_a_batch_is_spooled_loses_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """submit() drops the queue's oldest at HARD_CAP while the task spools them: they are in the spool after all,
    so the task must not take as many records again off the queue (records never stored), nor count them lost."""
    monkeypatch.setattr("services.bridge.postgres_sink.HARD_CAP", 50)
    entered, release = threading.Event(), threading.Event()

    def slow_write(fd: int, data: memoryview) -> int:
        entered.set()
        release.wait(10)
        return os.write(fd, data)

    sink = PostgresSink(unreachable_dsn(), FAST, tmp_path, write_fn=slow_write)
    await sink.start()
    a, b = records(40, src="a"), records(30, src="b")
    try:
        for r in a:
            sink.submit(r)
        await eventually_async(entered.is_set, timeout=10, what="the spool write under way")
        for r in b:  # 70 queued: the cap drops a[:20], which the write under way is storing
            sink.submit(r)
        assert sink.n_dropped == 20
    finally:
        release.set()
    await eventually_async(lambda: sink.n_spooled == 70, timeout=10, what="everything spooled")
    await sink.stop()
    assert spooled(tmp_path / "spool")[0] == a + b
    assert sink.n_dropped == 0 and sink.through == {"a": 40, "b": 30}
