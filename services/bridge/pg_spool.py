"""The PostgreSQL sink's spool: batches the database could not take, on disk in the journal format, until
they are backfilled. A file is deleted only after every row in it has committed.

``<journal_dir>/spool/spool-<UTC time>-NNNN.jsonl``, oldest first. The file being written is sealed (closed)
before it is backfilled, so a file is never read while it grows. Files left by a crash are picked up at
the next start (or loaded by hand with ``draizer journal import``). All methods block: call them from a thread.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from services.bridge.journal import FsyncPolicy, JournalWriter, ReadStats, journal_files, read_journal
from services.bridge.records import Record
from shared.durable import fsync_dir

PREFIX = "spool"
# Small files: backfill reads one whole file at a time, and a partly backfilled file is replayed whole.
FILE_BYTES = 4 * 1024 * 1024


class Spool:
    def __init__(
        self,
        directory: Path,
        fsync: FsyncPolicy,
        max_bytes: int = FILE_BYTES,
        *,
        write_fn: Callable[[int, memoryview], int] = os.write,  # tests pass a disk that fills up
    ) -> None:
        self.directory = directory
        self.writer = JournalWriter(directory, fsync, prefix=PREFIX, max_bytes=max_bytes, write_fn=write_fn)

    def write(self, records: list[Record]) -> None:
        """Raises OSError when the disk refuses: the first ``writer.settled`` records are in the spool, the rest
        in no file; the open file is kept, so the retry continues it (see JournalWriter.write)."""
        self.writer.write(records)

    def files(self) -> list[Path]:
        """Every spool file, the open one included, oldest first."""
        return journal_files(self.directory, PREFIX)

    def next_file(self) -> Path | None:
        """The oldest file to backfill; the open file is sealed when it is the only one left."""
        files = self.files()
        if not files:
            return None
        if files[0] == self.writer.path:
            self.writer.close()
        return files[0]

    def read(self, path: Path) -> tuple[list[Record], ReadStats]:
        stats = ReadStats()
        return list(read_journal(path, stats)), stats

    def delete(self, path: Path) -> None:
        path.unlink(missing_ok=True)
        if self.writer.fsync_policy != "never":
            fsync_dir(self.directory)

    def close(self) -> None:
        self.writer.close()
