"""The executor's order journal: every order is written here before it is sent, so a restart knows them all.

Format: append-only JSON lines in one directory, files ``orders-<UTC yyyymmdd>-<seq>.jsonl`` (sorting names
sorts them by time). A writer only appends to a file it created itself, each record with a single
``os.write`` on an ``O_APPEND`` descriptor, so a crash can at worst tear the *last* line of a file; ``load``
skips such a line (and any other undecodable one) and counts it, never raises. A new file starts when the
writer first writes, when the current one would pass 64 MiB, when the UTC day changes, and when the current
file was removed under it by ``compact``.

Records, by ``t``:

- ``intent``: ``{"opportunity_id", "strategy", "legs", "ts_ns"}`` — the plan, before any of its orders.
- ``order``: ``{"order": TrackedOrder.to_record()}`` — a new order, before it is sent.
- ``update``: ``{"order": ...}`` — the order's whole state after a change (the last one wins on load).
- ``done``: ``{"opportunity_id", "outcome", "ts_ns"}`` — the execution is settled; its orders are history.
- ``last``: ``{"opportunity_id"}`` — written by ``compact`` so the highest id seen survives compaction.

Durability (``execution.journal_fsync``): ``always`` syncs after every intent, order and done record, so
each is on disk when the call returns (updates are not synced alone: the venue is the truth for them, and a
restart queries it); ``batch`` fsyncs once per ``commit()`` (the executor commits once per intent, after all its
legs are journaled and before the first is sent); ``never`` leaves it to the OS (a crash of draizer loses
nothing, a crash of the host may lose the tail).

Loading replays the files in name order. An execution with a ``done`` record is dropped with its orders. A
record arriving *after* its execution's ``done`` is ignored when its order is final (a late report of
history: replaying it would settle the execution twice) and kept when it is not (an order that may still be
live on a venue is never forgotten; its execution comes back as a placeholder intent, strategy -1, no legs).
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, NamedTuple

import msgspec

from services.executor.order_state import TrackedOrder
from shared.durable import fsync_dir

FsyncPolicy = Literal["always", "batch", "never"]

PREFIX = "orders"
SUFFIX = ".jsonl"
MAX_BYTES = 64 * 1024 * 1024
NAME = re.compile(r"^orders-(\d{8})-(\d{6})\.jsonl$")
COMPACT_TMP = ".orders-compact.tmp"  # not a journal name: a crash mid-compaction leaves it ignored
DAY_NS = 86_400 * 10**9
NO_STRATEGY = -1  # placeholder intent of an execution whose intent record was lost or came before a `done`

_encoder = msgspec.json.Encoder()


class JournalState(NamedTuple):
    open_executions: dict[int, dict[str, Any]]  # opportunity id -> intent record, executions without `done`
    orders: dict[str, TrackedOrder]  # client order id -> last known state, every order of those executions
    torn_lines: int  # lines skipped: a torn tail after a crash, or garbage
    last_opportunity_id: int  # the highest opportunity id any record ever named (0 if none)


def journal_files(directory: Path) -> list[Path]:
    """The journal's files, oldest first."""
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if NAME.match(p.name) and p.is_file())


def _next_path(directory: Path, now_ns: int) -> Path:
    """A name that sorts after every existing file, even if the clock went back a day."""
    day = datetime.fromtimestamp(now_ns / 1e9, tz=UTC).strftime("%Y%m%d")
    seq = 0
    for p in journal_files(directory):
        m = NAME.match(p.name)
        assert m is not None
        if m.group(1) > day:
            day, seq = m.group(1), int(m.group(2)) + 1
        elif m.group(1) == day:
            seq = max(seq, int(m.group(2)) + 1)
    return directory / f"{PREFIX}-{day}-{seq:06d}{SUFFIX}"


def _write_all(fd: int, data: bytes) -> None:
    # A regular file takes the whole buffer in one write unless the disk is full; loop for that rare case.
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _intent_record(opportunity_id: int, strategy: int, legs: list[dict[str, Any]], ts_ns: int) -> dict[str, Any]:
    return {"opportunity_id": opportunity_id, "strategy": strategy, "legs": legs, "ts_ns": ts_ns}


class OrderJournal:
    """Appends records to rotating files in one directory. Synchronous and single-threaded, like its caller."""

    def __init__(
        self,
        directory: Path,
        fsync: FsyncPolicy,
        *,
        max_bytes: int = MAX_BYTES,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        if fsync not in ("always", "batch", "never"):
            raise ValueError(f"fsync policy {fsync!r}: always, batch or never")
        self.directory = directory
        self.fsync_policy: FsyncPolicy = fsync
        self.max_bytes = max_bytes
        self.clock = clock
        self.path: Path | None = None  # the file being written; opened on the first record
        self._fd: int | None = None
        self._size = 0
        self._day = -1
        self._dirty = False  # written since the last fsync
        self.records_written = 0
        self.fsyncs = 0
        self.files_opened = 0

    # ------------------------------------------------------------ records

    def intent(self, opportunity_id: int, strategy: int, legs: list[dict[str, Any]]) -> None:
        """The plan of one execution (legs as builtins), before any of its orders."""
        self._append({"t": "intent", **_intent_record(opportunity_id, strategy, legs, self.clock())})

    def order(self, o: TrackedOrder) -> None:
        """A new order, BEFORE it is sent: with ``always`` it is on disk when this returns."""
        self._append({"t": "order", "order": o.to_record()})

    def update(self, o: TrackedOrder) -> None:
        """The order's state after a change (status, executed, trades). Never synced on its own: a lost update
        is re-learned from the venue by the restart's query, while a sync here would stall the event loop on
        every answer. The next intent's or ``done``'s sync carries it to disk anyway."""
        self._append({"t": "update", "order": o.to_record()}, durable=False)

    def done(self, opportunity_id: int, outcome: str) -> None:
        """The execution is settled: a restart no longer reconciles its orders."""
        self._append({"t": "done", "opportunity_id": opportunity_id, "outcome": outcome, "ts_ns": self.clock()})

    def commit(self) -> None:
        """``batch``: everything written so far is on disk when this returns. ``always``: already is.
        ``never``: every record already went to the OS with its own write, nothing to do."""
        if self.fsync_policy == "batch" and self._dirty:
            self._fsync()

    def close(self) -> None:
        if self._fd is None:
            return
        if self.fsync_policy != "never" and self._dirty:
            self._fsync()
        os.close(self._fd)
        self._fd, self.path = None, None

    # ------------------------------------------------------------ files

    def _append(self, record: dict[str, Any], durable: bool = True) -> None:
        # An unencodable record raises here, before anything is written: the order must not be sent then.
        line = _encoder.encode(record) + b"\n"
        now = self.clock()
        if self._needs_new_file(len(line), now):
            self._open(now)
        assert self._fd is not None
        _write_all(self._fd, line)
        self._size += len(line)
        self.records_written += 1
        self._dirty = True
        if durable and self.fsync_policy == "always":
            self._fsync()

    def _needs_new_file(self, length: int, now_ns: int) -> bool:
        if self._fd is None:
            return True
        if self._size > 0 and self._size + length > self.max_bytes:
            return True
        if now_ns // DAY_NS != self._day:
            return True
        # compact() removed our file: whatever we append to an unlinked file is lost at close.
        return os.fstat(self._fd).st_nlink == 0

    def _open(self, now_ns: int) -> None:
        self.close()  # syncs what the old file holds first, so a batch commit covers both files
        self.directory.mkdir(parents=True, exist_ok=True)
        while True:
            path = _next_path(self.directory, now_ns)
            try:
                # O_EXCL: never append to a file another writer (or an earlier crash) left behind.
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o644)
                break
            except FileExistsError:
                continue
        self._fd, self.path = fd, path
        self._size = 0
        self._day = now_ns // DAY_NS
        self.files_opened += 1
        if self.fsync_policy != "never":
            fsync_dir(self.directory)

    def _fsync(self) -> None:
        assert self._fd is not None
        # fdatasync: an append changes the size, which it flushes (the data must be retrievable); it skips only
        # timestamps. ~100 µs here against ~300 µs for fsync. os.write has no user-space buffer to flush first.
        os.fdatasync(self._fd)
        self.fsyncs += 1
        self._dirty = False

    # ------------------------------------------------------------ restart

    @staticmethod
    def load(directory: Path) -> JournalState:
        """Replay every file in name order; never raises on content (bad lines are counted in torn_lines)."""
        return _Replay().run(journal_files(directory))

    @staticmethod
    def compact(directory: Path, keep: JournalState) -> Path:
        """Rewrite the journal as one file holding only ``keep`` (the executor passes the state as reconciled,
        which must reflect every record written so far), then remove the older files.

        The new file is written under a temporary name, fsynced and renamed, so a crash at any point leaves
        either the old files (the temporary one is ignored) or the new one, possibly beside the old ones,
        which replays to the same state. Returns the new file's path."""
        directory.mkdir(parents=True, exist_ok=True)
        tmp = directory / COMPACT_TMP
        lines = [_encoder.encode({"t": "last", "opportunity_id": keep.last_opportunity_id}) + b"\n"]
        for opp, intent in keep.open_executions.items():
            lines.append(_encoder.encode({"t": "intent", **intent, "opportunity_id": opp}) + b"\n")
        lines.extend(_encoder.encode({"t": "order", "order": o.to_record()}) + b"\n" for o in keep.orders.values())
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            _write_all(fd, b"".join(lines))
            os.fsync(fd)
        finally:
            os.close(fd)
        path = _next_path(directory, time.time_ns())
        os.replace(tmp, path)
        fsync_dir(directory)
        for old in journal_files(directory):
            if old.name < path.name:
                with contextlib.suppress(FileNotFoundError):
                    old.unlink()
        fsync_dir(directory)
        return path


class _Replay:
    """The state the records describe, applied one by one."""

    def __init__(self) -> None:
        self.open: dict[int, dict[str, Any]] = {}
        self.orders: dict[str, TrackedOrder] = {}
        self.by_opp: dict[int, set[str]] = {}
        self.done: set[int] = set()
        self.torn = 0
        self.last = 0

    def run(self, files: list[Path]) -> JournalState:
        for path in files:
            for line in _lines(path):
                try:
                    record = msgspec.json.decode(line)
                    if not isinstance(record, dict):
                        raise ValueError("not an object")
                    self.apply(record)
                except (msgspec.DecodeError, KeyError, ValueError, TypeError, ArithmeticError):
                    self.torn += 1
        for o in self.orders.values():
            # An order whose intent record is missing still has to be reconciled: give it a placeholder.
            if o.opportunity_id not in self.open:
                self.open[o.opportunity_id] = _intent_record(o.opportunity_id, NO_STRATEGY, [], 0)
        return JournalState(self.open, self.orders, self.torn, self.last)

    def apply(self, r: dict[str, Any]) -> None:
        kind = r["t"]
        if kind == "intent":
            opp = int(r["opportunity_id"])
            legs = r["legs"]
            if not isinstance(legs, list):
                raise TypeError("legs is not a list")
            self.open[opp] = _intent_record(opp, int(r["strategy"]), legs, int(r["ts_ns"]))
            self.done.discard(opp)
        elif kind in ("order", "update"):
            o = TrackedOrder.from_record(r["order"])
            opp = o.opportunity_id
            if opp in self.done and o.final:
                return
            self.done.discard(opp)
            self.orders[o.client_order_id] = o
            self.by_opp.setdefault(opp, set()).add(o.client_order_id)
        elif kind == "done":
            opp = int(r["opportunity_id"])
            self.open.pop(opp, None)
            for cid in self.by_opp.pop(opp, ()):
                self.orders.pop(cid, None)
            self.done.add(opp)
        elif kind == "last":
            opp = int(r["opportunity_id"])
        else:
            raise ValueError(f"unknown record kind {kind!r}")
        self.last = max(self.last, opp)


def _lines(path: Path) -> Iterator[bytes]:
    """Non-empty lines; the last one even without its newline (complete JSON is a complete record)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return
    for line in data.split(b"\n"):
        if line.strip():
            yield line
