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
import errno
import logging
import os
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

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
RETRY_MIN_S = 0.1  # back-off after a refused write: doubles from here...
RETRY_MAX_S = 5.0  # ...up to this


class JournalLine(msgspec.Struct, omit_defaults=True):
    kind: str
    key: str
    data: dict[str, Any]
    src: str = ""  # the producing service and its event's sequence number (absent in files of older versions)
    seq: int = 0


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(JournalLine)


def encode_record(record: Record) -> bytes:
    return _encoder.encode(JournalLine(record.kind, record.key, record.data, record.src, record.seq)) + b"\n"


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
    """Appends records to rotating files in one directory. Synchronous: callers run it off the event loop.

    A failed ``write`` (disk full, read-only, I/O error) keeps its file: what the failed call put in it after
    the last complete, synced record is cut off again, so a retry continues the same file with no torn line in
    the middle and no new file per attempt. ``settled`` tells the caller how much of the batch needs no retry.
    """

    def __init__(
        self,
        directory: Path,
        fsync: FsyncPolicy = "batch",
        *,
        prefix: str = "journal",
        max_bytes: int = DEFAULT_MAX_BYTES,
        clock: Callable[[], int] = time.time_ns,
        write_fn: Callable[[int, memoryview], int] = os.write,  # os.write; tests pass a disk that fills up
    ) -> None:
        self.directory = directory
        self.fsync_policy: FsyncPolicy = fsync
        self.prefix = prefix
        self.max_bytes = max_bytes
        self.clock = clock
        self._write_fn = write_fn
        self.path: Path | None = None  # the file being written, None when closed
        self._fd = -1
        self._dir_synced = True
        self._size = 0  # bytes in the current file
        self._committed = 0  # of which complete records, written (and synced) as the fsync policy demands
        self._day = -1
        self._seq = 0
        # Since the last commit point: records written, records given, unencodable records skipped.
        self._open_records = 0
        self._open_inputs = 0
        self._open_skipped = 0
        self.settled = 0  # records of the last write() call that are done (written or skipped), even if it raised
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
                # O_EXCL: never append to a file someone else (or an earlier crash) left behind.
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
                break
            except FileExistsError:
                continue
        self._fd = fd
        self.path = path
        self._size = self._committed = 0
        self._day = _utc_day(now_ns)
        self.files_opened += 1
        self._dir_synced = self.fsync_policy == "never"

    @property
    def position(self) -> tuple[str, int] | None:
        """(file name, bytes of complete records in it): everything this writer wrote is before this point."""
        return None if self.path is None else (self.path.name, self._committed)

    def _fsync(self) -> None:
        os.fsync(self._fd)
        self.fsyncs += 1

    def write(self, records: Sequence[Record]) -> None:
        """Append ``records`` in order; returns once they are written as the fsync policy demands.

        Raises OSError when the disk refuses. Then the first ``settled`` records are written (or skipped as not
        JSON-able) and stay so; the rest are not in any file: the caller retries them, and the retry goes to the
        same file (a new one only when the file could not be cut back, or at rotation)."""
        self.settled = 0
        if not records:
            return
        now = self.clock()
        try:
            self._write(records, now)
        except BaseException:
            self._roll_back()
            raise

    def _write(self, records: Sequence[Record], now: int) -> None:
        if self._fd < 0 or _utc_day(now) != self._day:
            self._open(now)
        self._sync_dir()
        chunk: list[bytes] = []
        chunk_size = 0
        for record in records:
            try:
                line = encode_record(record)
            except (msgspec.EncodeError, TypeError, ValueError) as exc:
                self.unencodable += 1
                self._open_skipped += 1
                self._open_inputs += 1
                if self.unencodable == 1:
                    log.error(
                        "journal %s: cannot encode %s %s (%s); skipped", self.directory, record.kind, record.key, exc
                    )
                continue
            if self._size + chunk_size + len(line) > self.max_bytes and self._size + chunk_size > 0:
                self._write_chunk(chunk)
                self._finish_file()
                self._commit()
                self._close_fd()
                self._open(now)
                self._sync_dir()
                chunk, chunk_size = [], 0
            chunk.append(line)
            chunk_size += len(line)
            self._open_inputs += 1
            if self.fsync_policy == "always":
                self._write_chunk(chunk)
                self._fsync()
                self._commit()
                chunk, chunk_size = [], 0
        self._write_chunk(chunk)
        if self.fsync_policy == "batch":
            self._fsync()
        self._commit()

    def _sync_dir(self) -> None:
        """A new file's name is made durable before its first record (retried with the records if it fails)."""
        if not self._dir_synced:
            fsync_dir(self.directory)
            self._dir_synced = True

    def _write_chunk(self, chunk: list[bytes]) -> None:
        if not chunk:
            return
        view = memoryview(b"".join(chunk))
        while view:  # a nearly full disk takes part of a write, then refuses the rest
            n = self._write_fn(self._fd, view)
            if n <= 0:
                raise OSError(errno.EIO, f"write to {self.path} took nothing")
            self._size += n
            view = view[n:]
        self._open_records += len(chunk)

    def _commit(self) -> None:
        """What was written since the last commit point is as durable as the policy asks: it stays."""
        self._committed = self._size
        self.records_written += self._open_records
        self.settled += self._open_inputs
        self._open_records = self._open_inputs = self._open_skipped = 0

    def _roll_back(self) -> None:
        """Undo the failed part of a write: cut the file back to its last commit point, keep it open."""
        self.unencodable -= self._open_skipped  # they will be met (and counted) again on the retry
        self._open_records = self._open_inputs = self._open_skipped = 0
        if self._fd < 0 or self._size == self._committed:
            return
        try:
            os.ftruncate(self._fd, self._committed)  # frees blocks: works on a full disk
            os.lseek(self._fd, self._committed, os.SEEK_SET)
            self._size = self._committed
        except OSError as exc:
            # The torn tail stays, as the last line of this file (readers skip it); the retry starts a new one.
            log.warning("journal %s: cannot cut back the failed write (%s); starting a new file", self.path, exc)
            self._close_fd()

    def _finish_file(self) -> None:
        """A file about to be left behind is made durable first (unless the policy says never)."""
        if self._fd >= 0 and self.fsync_policy != "never":
            self._fsync()

    def _close_fd(self) -> None:
        fd, self._fd, self.path = self._fd, -1, None
        os.close(fd)

    def close(self) -> None:
        if self._fd < 0:
            return
        try:
            self._finish_file()
        finally:
            self._close_fd()


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


def stored_through(
    directory: Path, position: tuple[str, int] | None, prefix: str = "journal"
) -> dict[str, int]:
    """The highest event number per source among the records written at or after ``position`` (file name, offset;
    None: every file), in ``directory``'s own files. The bridge's checkpoint lags its journal by up to one
    interval; this closes the gap, so no record is written twice after a restart."""
    through: dict[str, int] = {}
    for path in journal_files(directory, prefix):
        offset = 0
        if position is not None:
            if path.name < position[0]:
                continue
            if path.name == position[0]:
                offset = position[1]
        with open(path, "rb") as f:
            f.seek(offset)
            for line in f:
                record = _decode(line) if line.endswith(b"\n") else None
                if record is not None and record.src and record.seq > through.get(record.src, 0):
                    through[record.src] = record.seq
    return through


def _decode(line: bytes) -> Record | None:
    try:
        msg = _decoder.decode(line)
    except msgspec.DecodeError:
        return None
    if msg.kind not in KINDS:
        return None
    return Record(msg.kind, msg.key, msg.data, msg.src, msg.seq)


# ---------------------------------------------------------------- the sink


class JournalSink:
    """Records to local journal files, batched and written from a task (via a thread: fsync can take ms).

    While the disk refuses (full, read-only) the records stay queued, in order, and the writer keeps its file;
    the sink retries with exponential back-off up to ``retry_max_s`` — a queue that keeps filling does not
    shorten it — logs the stall once when it starts and once when it ends, and counts it (``stalls``)."""

    name = "journal"

    def __init__(
        self,
        journal_dir: Path,
        sinks: Sinks,
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        retry_max_s: float = RETRY_MAX_S,
        write_fn: Callable[[int, memoryview], int] = os.write,
    ) -> None:
        self.writer = JournalWriter(journal_dir, sinks.journal_fsync, max_bytes=max_bytes, write_fn=write_fn)
        self.batch_max_rows = sinks.batch_max_rows
        self.interval_s = sinks.batch_interval_ms / 1000
        self.retry_max_s = retry_max_s
        self._pending: deque[Record] = deque()
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self.n_written = 0
        self.n_failed = 0  # write attempts the disk refused (the records are kept and retried)
        self.n_dropped = 0
        self.n_stalls = 0  # times the disk started refusing: each is logged when it starts and when it ends
        self._stalled_at = 0.0  # monotonic start of the current stall; 0: writing
        self._stall_attempts = 0
        # Per source service, the highest event number whose record is written (records arrive in each source's
        # order, so every record before it is written too), and where the writer stood then: the checkpoint.
        self.through: dict[str, int] = {}
        self.position: tuple[str, int] | None = None

    @property
    def stalled(self) -> bool:
        return self._stalled_at > 0

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
        # A full batch is written at once, unless the disk is refusing: then the back-off says when to retry.
        if len(self._pending) >= self.batch_max_rows and not self.stalled:
            self._wake.set()

    async def _run(self) -> None:
        delay = self.interval_s
        while True:
            if not self._stopping:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=delay)
            self._wake.clear()
            if self._pending and await self._flush_once():
                delay = self.interval_s
            elif self._pending:
                self._wake.clear()  # set by submit() while the failed attempt ran: it must not cut the back-off
                delay = min(max(delay * 2, RETRY_MIN_S), self.retry_max_s)
                if self._stopping:
                    return  # the disk still refuses; stop() reports what is left
            if self._stopping and not self._pending:
                return

    async def _flush_once(self) -> bool:
        batch = list(self._pending)
        before = self.writer.records_written
        error: Exception | None = None
        try:
            await asyncio.to_thread(self.writer.write, batch)
        except Exception as exc:  # OSError: disk full, read-only...; anything else is a bug: both keep the records
            error = exc
        # What the writer settled is in the journal (a failed write keeps its file and cuts off its torn part):
        # only the rest is retried.
        through = self.through
        for _ in range(len(batch) if error is None else self.writer.settled):
            record = self._pending.popleft()
            if record.src and record.seq > through.get(record.src, 0):
                through[record.src] = record.seq
        self.position = self.writer.position or self.position
        self.n_written += self.writer.records_written - before
        if error is None:
            if self.stalled:
                log.warning(
                    "journal: writing to %s again after %.1f s and %d failed attempts; %d waiting records written",
                    self.writer.path or self.writer.directory,
                    time.monotonic() - self._stalled_at,
                    self._stall_attempts,
                    len(batch),
                )
                self._stalled_at, self._stall_attempts = 0.0, 0
            return True
        self.n_failed += 1
        self._stall_attempts += 1
        if not self.stalled:
            self._stalled_at = time.monotonic()
            self.n_stalls += 1
            log.error(
                "journal: cannot write to %s (%s); %d records waiting in memory, retrying with back-off up to %g s",
                self.writer.path or self.writer.directory,
                describe_error(error),
                len(self._pending),
                self.retry_max_s,
            )
        return False

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
            "stalls": self.n_stalls,
            "dropped": self.n_dropped + self.writer.unencodable,
            "pending": len(self._pending),
        }


def describe_error(exc: BaseException) -> str:
    """``ENOSPC: No space left on device`` for an OSError; the exception's type and text otherwise."""
    if isinstance(exc, OSError) and exc.errno is not None:
        return f"{errno.errorcode.get(exc.errno, exc.errno)}: {exc.strerror}"
    return f"{type(exc).__name__}: {exc}"
