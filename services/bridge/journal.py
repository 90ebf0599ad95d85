"""The local append-only journal: the embedded default sink, and the file format of PostgreSQL's spool.

Format: UTF-8 JSON, one record per line, ``{"kind": ..., "key": ..., "data": {...}}`` followed by ``\\n``.
A writer only ever appends to a file it created itself, so a line torn by a crash is always the *last* line
of its file; readers skip it (and any other undecodable line) with a count and carry on.

Files are named ``<prefix>-YYYYMMDDTHHMMSS.ffffffZ-NNNN.jsonl`` (UTC), so sorting names sorts by time. A
writer starts a new file when it opens, when the current one reaches ``max_bytes`` and when the UTC day
changes, which keeps files small enough to move around and makes "yesterday" a set of whole files.

Durability follows ``sinks.journal_fsync``: ``always`` fsyncs after every record, ``batch`` once per
written batch, ``never`` leaves it to the OS (a crash of the host, not of draizer, may lose the tail).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO, Literal

import msgspec

from services.bridge.records import KINDS, Record
from shared.config import Sinks
from shared.durable import fsync_dir

log = logging.getLogger(__name__)

FsyncPolicy = Literal["always", "batch", "never"]

SUFFIX = ".jsonl"
DEFAULT_MAX_BYTES = 64 * 1024 * 1024
# The sink keeps records in memory while the disk refuses them (full, read-only); past this it drops the
# oldest, counted, rather than take the whole process down with it.
MAX_PENDING = 500_000
RETRY_MAX_S = 5.0


class JournalLine(msgspec.Struct):
    kind: str
    key: str
    data: dict[str, Any]


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(JournalLine)


def encode_record(record: Record) -> bytes:
    return _encoder.encode(JournalLine(record.kind, record.key, record.data)) + b"\n"


# ---------------------------------------------------------------- files


def file_name(prefix: str, now_ns: int, seq: int) -> str:
    stamp = datetime.fromtimestamp(now_ns / 1e9, tz=UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    return f"{prefix}-{stamp}-{seq:04d}{SUFFIX}"


def journal_files(directory: Path, prefix: str = "") -> list[Path]:
    """The journal files directly in ``directory`` (optionally only those named ``<prefix>-…``), oldest first."""
    if not directory.is_dir():
        return []
    start = f"{prefix}-" if prefix else ""
    return sorted(
        p for p in directory.iterdir() if p.is_file() and p.name.endswith(SUFFIX) and p.name.startswith(start)
    )


def expand_paths(paths: Iterable[Path]) -> list[Path]:
    """Files as given; a directory stands for its journal files and those of its ``spool/`` folder."""
    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            out.extend(journal_files(p))
            out.extend(journal_files(p / "spool"))
        else:
            out.append(p)
    return out


def _utc_day(ns: int) -> int:
    return ns // 86_400_000_000_000


class JournalWriter:
    """Appends records to rotating files in one directory. Synchronous: callers run it off the event loop."""

    def __init__(
        self,
        directory: Path,
        fsync: FsyncPolicy = "batch",
        *,
        prefix: str = "journal",
        max_bytes: int = DEFAULT_MAX_BYTES,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        self.directory = directory
        self.fsync_policy: FsyncPolicy = fsync
        self.prefix = prefix
        self.max_bytes = max_bytes
        self.clock = clock
        self.path: Path | None = None  # the file being written, None when closed
        self._file: BinaryIO | None = None
        self._size = 0
        self._day = -1
        self._seq = 0
        self.records_written = 0
        self.unencodable = 0  # records whose data is not JSON-able: skipped (counted, logged once)
        self.files_opened = 0
        self.fsyncs = 0

    def _open(self, now_ns: int) -> None:
        self.close()
        self.directory.mkdir(parents=True, exist_ok=True)
        while True:
            path = self.directory / file_name(self.prefix, now_ns, self._seq)
            self._seq = (self._seq + 1) % 10_000
            try:
                # "x": never append to a file someone else (or an earlier crash) left behind.
                self._file = open(path, "xb")  # noqa: SIM115 - held open across calls, closed in close()
                break
            except FileExistsError:
                continue
        self.path = path
        self._size = 0
        self._day = _utc_day(now_ns)
        self.files_opened += 1
        if self.fsync_policy != "never":
            fsync_dir(self.directory)

    def _fsync(self) -> None:
        assert self._file is not None
        self._file.flush()
        os.fsync(self._file.fileno())
        self.fsyncs += 1

    def write(self, records: Sequence[Record]) -> None:
        """Append ``records`` in order; returns once they are written as the fsync policy demands.

        Raises OSError when the disk refuses; what was written before the error stays written."""
        if not records:
            return
        now = self.clock()
        if self._file is None or _utc_day(now) != self._day:
            self._open(now)
        chunk: list[bytes] = []
        chunk_size = 0
        for record in records:
            try:
                line = encode_record(record)
            except (msgspec.EncodeError, TypeError, ValueError) as exc:
                self.unencodable += 1
                if self.unencodable == 1:
                    log.error(
                        "journal %s: cannot encode %s %s (%s); skipped", self.directory, record.kind, record.key, exc
                    )
                continue
            if self._size + chunk_size + len(line) > self.max_bytes and self._size + chunk_size > 0:
                self._write_chunk(chunk)
                self._finish_file()
                self._open(now)
                chunk, chunk_size = [], 0
            if self.fsync_policy == "always":
                chunk.append(line)
                self._write_chunk(chunk)
                self._fsync()
                chunk = []
                continue
            chunk.append(line)
            chunk_size += len(line)
        self._write_chunk(chunk)
        assert self._file is not None
        if self.fsync_policy == "batch":
            self._fsync()
        else:
            self._file.flush()

    def _write_chunk(self, chunk: list[bytes]) -> None:
        if not chunk:
            return
        assert self._file is not None
        data = b"".join(chunk)
        self._file.write(data)
        self._size += len(data)
        self.records_written += len(chunk)

    def _finish_file(self) -> None:
        """A file about to be left behind is made durable first (unless the policy says never)."""
        if self._file is not None and self.fsync_policy != "never":
            self._fsync()

    def close(self) -> None:
        if self._file is None:
            return
        try:
            self._finish_file()
        finally:
            self._file.close()
            self._file = None
            self.path = None


# ---------------------------------------------------------------- reading


@dataclass
class ReadStats:
    records: int = 0  # decoded and returned
    torn: int = 0  # an incomplete or undecodable last line: what a crash leaves behind
    bad: int = 0  # an undecodable complete line elsewhere, or an unknown kind

    def add(self, other: ReadStats) -> None:
        self.records += other.records
        self.torn += other.torn
        self.bad += other.bad


def read_journal(path: Path, stats: ReadStats | None = None) -> Iterator[Record]:
    """The records of one journal (or spool) file, in order, skipping torn and bad lines (counted in ``stats``)."""
    stats = stats if stats is not None else ReadStats()
    skipped_torn = skipped_bad = 0
    with open(path, "rb") as f:
        line = f.readline()
        while line:
            following = f.readline()
            is_last = not following
            record = _decode(line) if line.endswith(b"\n") else None
            if record is not None:
                stats.records += 1
                yield record
            elif line.strip(b"\0 \t\r\n"):
                if is_last:
                    skipped_torn += 1
                else:
                    skipped_bad += 1
            line = following
    stats.torn += skipped_torn
    stats.bad += skipped_bad
    if skipped_torn or skipped_bad:
        log.warning("journal %s: skipped %d torn and %d bad lines", path, skipped_torn, skipped_bad)


def _decode(line: bytes) -> Record | None:
    try:
        msg = _decoder.decode(line)
    except msgspec.DecodeError:
        return None
    if msg.kind not in KINDS:
        return None
    return Record(msg.kind, msg.key, msg.data)


# ---------------------------------------------------------------- the sink


class JournalSink:
    """Records to local journal files, batched and written from a task (via a thread: fsync can take ms)."""

    name = "journal"

    def __init__(self, journal_dir: Path, sinks: Sinks, *, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.writer = JournalWriter(journal_dir, sinks.journal_fsync, max_bytes=max_bytes)
        self.batch_max_rows = sinks.batch_max_rows
        self.interval_s = sinks.batch_interval_ms / 1000
        self._pending: deque[Record] = deque()
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self.n_written = 0
        self.n_failed = 0  # write attempts the disk refused (the records are kept and retried)
        self.n_dropped = 0
        self._error_logged = False

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="journal-writer")
        log.info("journal sink writing to %s (fsync %s)", self.writer.directory, self.writer.fsync_policy)

    def submit(self, record: Record) -> None:
        self._pending.append(record)
        if len(self._pending) > MAX_PENDING:
            self._pending.popleft()
            self.n_dropped += 1
            if self.n_dropped == 1:
                log.error("journal: %d records pending, dropping the oldest", MAX_PENDING)
        if len(self._pending) >= self.batch_max_rows:
            self._wake.set()

    async def _run(self) -> None:
        backoff = self.interval_s
        while True:
            if not self._stopping:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=backoff)
            self._wake.clear()
            if self._pending and await self._flush_once():
                backoff = self.interval_s
            elif self._pending:
                backoff = min(max(backoff * 2, 0.1), RETRY_MAX_S)
                if self._stopping:
                    return  # the disk still refuses; stop() reports what is left
            if self._stopping and not self._pending:
                return

    async def _flush_once(self) -> bool:
        batch = list(self._pending)
        before = self.writer.records_written
        try:
            await asyncio.to_thread(self.writer.write, batch)
        except Exception as exc:  # OSError: disk full, read-only...; anything else is a bug: both keep the records
            self.n_failed += 1
            # Part of the batch may be on disk already; dropping the file makes the retry start clean
            # (keys are idempotent: a record written twice still loads once).
            await asyncio.to_thread(self._abandon_file)
            if not self._error_logged:
                log.error(
                    "journal: write to %s failed (%s); keeping %d records to retry",
                    self.writer.directory,
                    exc,
                    len(batch),
                )
                self._error_logged = True
            return False
        for _ in range(len(batch)):
            self._pending.popleft()
        self.n_written += self.writer.records_written - before
        if self._error_logged:
            log.info("journal: writing again")
            self._error_logged = False
        return True

    def _abandon_file(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.close()  # closes the file even when its final fsync fails

    async def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            await self._task
            self._task = None
        if self._pending:
            log.error("journal: %d records could not be written at stop", len(self._pending))
            self.n_dropped += len(self._pending)
            self._pending.clear()
        await asyncio.to_thread(self.writer.close)

    def counters(self) -> dict[str, int]:
        return {
            "written": self.n_written,
            "failed": self.n_failed,
            "dropped": self.n_dropped + self.writer.unencodable,
            "pending": len(self._pending),
        }
