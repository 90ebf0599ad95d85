"""The executor's order journal: every order is written here before it is sent, so a restart knows them all.

Format: append-only JSON lines in one directory, files ``orders-<UTC yyyymmdd>-<seq>.jsonl`` (sorting names
sorts them by time). A writer only appends to a file it created itself, each batch of records with a single
``os.write`` on an ``O_APPEND`` descriptor, so a crash can at worst tear the *last* line of a file; ``load``
skips such a line (and any other undecodable one) and counts it, never raises. A new file starts when the
writer first writes, when the current one would pass 64 MiB, when the UTC day changes, and when the current
file was removed under it by ``compact``.

Records, by ``t``:

- ``intent``: ``{"opportunity_id", "strategy", "legs", "ts_ns"}`` — the plan, before any of its orders.
- ``order``: ``{"order": TrackedOrder.to_record()}`` — a new order, before it is sent.
- ``update``: ``{"order": ...}`` — the order's whole state after a change (the last one wins on load).
- ``done``: ``{"opportunity_id", "outcome", "ts_ns"}`` — the execution is settled; its orders are history
  (``compact`` rewrites those of the last 8 days with outcome ``compacted``: ``JournalState.settled``).
- ``last``: ``{"opportunity_id", "ts_ns"}`` — written by ``compact`` so the highest id and the time of the
  latest record survive compaction (``ts_ns`` is absent in files written before it existed).
- A ``done`` the executor booked also carries the session's books of that execution: ``{"session", "seq",
  "pnl_usd", "deltas"}`` (``session_books.py``). Replaying them rebuilds the run's ledger after a restart.
  And ``"event"``: the Execution it publishes (base64 msgpack), as a kill between this record and the event's
  publication would otherwise lose it for good; a restart publishes what its event log lacks (``republish.py``).
- ``books``: ``SessionBooks.checkpoint()`` — written by ``compact`` before it drops the ``done`` records' books:
  the session's totals so far. A replay takes it in place of what it summed before it (a compacted file left
  beside the files it replaces by a crash counts nothing twice).

Durability contract (``execution.journal_fsync``)
-------------------------------------------------
The hot path writes an intent and all its orders with ONE ``os.write`` (``intent_and_orders``) *before* the
first request is written; corrections likewise (``orders``). A write() puts the records in the page cache:
from that moment they survive a kill -9 of the process at any point. (A kill *during* the write may leave a
prefix of the batch, as Linux stops a write between pages on a fatal signal: nothing of it was sent yet, and
the restart's reconcile finds those orders absent at the venue.) What differs is when they reach the disk:

- ``batch`` (the default): write before send, *group commit after send*. The executor writes the requests,
  then calls ``sync_soon()``, which hands one ``os.fdatasync`` to this journal's own worker thread (it
  releases the GIL; the event loop never waits for it). While a sync runs, further requests set a flag, so
  exactly one more sync follows it and covers all of them. A host crash (power, kernel) between the send and
  that sync loses the unsynced tail; the orders may exist at the venue all the same, and the restart finds
  them there by their deterministic client ids (``reconcile.py``: ``allOrders`` since the last record that
  survived, minus a margin) and books them. ``await synced()`` waits until everything written before the call
  is on disk: the executor awaits it for the ``done`` record before it publishes the Execution, because a
  ``done`` lost after a published Execution would settle, and book, that execution twice after a restart.
- ``always``: every ``intent``, ``order`` and ``done`` write is fdatasynced inline, *before* the call returns
  and so before the request is sent: the slow, safe mode (~0.3–0.4 ms per intent on this disk, on the
  critical path). Nothing a request was sent for can be lost, even to a host crash.
- ``never``: the OS writes the page cache back when it likes. A kill -9 loses nothing; a host crash may lose
  the tail, recovered from the venues like ``batch`` — except a ``done`` lost after its Execution was
  published, which the restart settles and publishes a second time. Tests and benchmarks only.

``update`` records are never synced on their own under any policy: a lost update is re-learned from the
venue by the restart's query, and the next sync carries them anyway.

A rotated-away file is synced (and closed) by the next sync, before the records of the new file count as
durable; so is the new file's directory entry. An ``fdatasync`` failure (EIO, ENOSPC) is counted
(``sync_errors``), logged once with its file and how many records it leaves unconfirmed, and is sticky:
the page cache may have dropped the dirty pages while reporting it once, so the journal never claims
durability again. ``synced()`` and ``commit()`` raise ``JournalSyncError`` from then on and ``failure`` holds
the first error; writes still go to the page cache and never raise for it (under ``always`` either: the
caller checks ``failure`` before sending). The executor raises one alert, refuses new legs (unwinds and hedges
still go out) and keeps booking and publishing what is in flight, until it is restarted (``Executor.send``,
``Executor.book``).

Loading replays the files in name order. An execution with a ``done`` record is dropped with its orders (its
id is kept in ``settled``, so a restart never books its venue orders again). A record arriving *after* its
execution's ``done`` is ignored when its order is final (a late report of history: replaying it would settle
the execution twice) and kept when it is not (an order that may still be live on a venue is never forgotten;
its execution comes back as a placeholder intent, strategy -1, no legs).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal, NamedTuple

import msgspec

from services.executor.order_state import PENDING, ZERO, TrackedOrder
from services.executor.session_books import Booked, SessionBooks
from shared.durable import fsync_dir

FsyncPolicy = Literal["always", "batch", "never"]

PREFIX = "orders"
SUFFIX = ".jsonl"
MAX_BYTES = 64 * 1024 * 1024
NAME = re.compile(r"^orders-(\d{8})-(\d{6})\.jsonl$")
COMPACT_TMP = ".orders-compact.tmp"  # not a journal name: a crash mid-compaction leaves it ignored
DAY_NS = 86_400 * 10**9
NO_STRATEGY = -1  # placeholder intent of an execution whose intent record was lost or came before a `done`
SETTLED_RETAIN_NS = 8 * DAY_NS  # compaction keeps `done` ids this long: longer than any recovery look-back
SETTLED_OUTCOME = "compacted"  # the outcome of a `done` record rewritten by compaction

log = logging.getLogger(__name__)
_encoder = msgspec.json.Encoder()
NLINK_CHECK_NS = 1_000_000_000  # a compaction by another process is noticed within this
BOOKED_EVENTS_KEPT = 256  # far more executions than are ever between their `done` and their publication
_compactions: dict[str, int] = {}  # directory -> compactions run by this process (see _needs_new_file)
_PLAIN_NUMBER = re.compile(r"[0-9]+(\.[0-9]+)?")
_EMPTY: Mapping[int, int] = MappingProxyType({})


class JournalState(NamedTuple):
    open_executions: dict[int, dict[str, Any]]  # opportunity id -> intent record, executions without `done`
    orders: dict[str, TrackedOrder]  # client order id -> last known state, every order of those executions
    torn_lines: int  # lines skipped: a torn tail after a crash, or garbage
    last_opportunity_id: int  # the highest opportunity id any record ever named (0 if none)
    settled: Mapping[int, int] = _EMPTY  # opportunity id -> ts_ns of its `done`: booked, never book again
    last_ts_ns: int = 0  # the latest time any record carries (0: none): where a host crash's lost tail starts
    books: SessionBooks | None = None  # the books of the latest session any record names (None: none does)
    books_unreadable: int = 0  # `done` records whose books did not decode (the execution still counts as settled)
    # (session seq, opportunity id, the Execution as published, base64 msgpack) of the latest session's recent
    # `done` records: a restart publishes those its event log lacks (``services/executor/republish.py``)
    booked_events: tuple[tuple[int, int, str], ...] = ()
    # Every booked execution of the latest session that moved a funding carry (its `done` record says ``carry``),
    # whatever compaction dropped: the executor rebuilds the carries from them (``carry_book.py``).
    carry_events: tuple[str, ...] = ()


class JournalSyncError(RuntimeError):
    """An fdatasync of the journal failed: records written since the last good sync may not be on disk."""

    def __init__(self, cause: OSError) -> None:
        super().__init__(f"order journal sync failed: {cause}")
        self.cause = cause


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


def _intent_record(opportunity_id: int, strategy: int, legs: list[Any], ts_ns: int) -> dict[str, Any]:
    return {"opportunity_id": opportunity_id, "strategy": strategy, "legs": legs, "ts_ns": ts_ns}


def _intent_line(opportunity_id: int, strategy: int, legs: list[Any], ts_ns: int) -> bytes:
    return _encoder.encode({"t": "intent", **_intent_record(opportunity_id, strategy, legs, ts_ns)}) + b"\n"


def _order_line(kind: str, o: TrackedOrder) -> bytes:
    return _encoder.encode({"t": kind, "order": o.to_record()}) + b"\n"


_NEW_ORDER = (
    '{"t":"order","order":{"client_order_id":"%s","opportunity_id":%d,"role":%d,"leg":%d,"venue":%d,"symbol":%d,'
    '"side":%d,"qty":"%s","price":%s,"order_type":"%s","created_ns":%d,"status":"PENDING","order_id":"",'
    '"executed":"0","cum_quote":"0","trades":[],"error_code":0,"error_msg":""}}\n'
)


def _as_os_error(exc: BaseException) -> OSError:
    return exc if isinstance(exc, OSError) else OSError(errno.EIO, f"{type(exc).__name__}: {exc}")


def _new_order_line(o: TrackedOrder) -> bytes:
    """``_order_line("order", o)`` for a fresh order, by one format instead of a dict and an encoder: the bytes are
    the same (a test holds them equal). Anything unusual (a state, text that JSON would escape) takes the encoder."""
    px = o.price
    if (o.status != PENDING or o.trades or o.order_id or o.executed is not ZERO or o.cum_quote is not ZERO
            or o.reduce_only or o.error_code or o.error_msg
            or not (o.client_order_id.isascii() and o.client_order_id.isalnum())
            or not _PLAIN_NUMBER.fullmatch(o.qty) or (px is not None and not _PLAIN_NUMBER.fullmatch(px))
            or not o.order_type.replace("_", "").isalnum()):
        return _order_line("order", o)
    return (_NEW_ORDER % (o.client_order_id, o.opportunity_id, o.role, o.leg, o.venue, o.symbol, o.side, o.qty,
                          "null" if px is None else f'"{px}"', o.order_type, o.created_ns)).encode()


def _resolve(fut: asyncio.Future[None], error: BaseException | None) -> None:
    if fut.done():
        return
    if error is None:
        fut.set_result(None)
    else:
        fut.set_exception(error)


class _Round(NamedTuple):
    """What one sync covers, taken under the lock: the records up to ``target``, in these files."""

    target: int
    fd: int | None
    path: Path | None
    size: int
    retiring: list[int]
    sync_dir: bool


class OrderJournal:
    """Appends records to rotating files in one directory from one thread (the executor's event loop); the
    group commit's fdatasync runs on a worker thread of its own. State both threads touch is under ``_lock``."""

    def __init__(
        self,
        directory: Path,
        fsync: FsyncPolicy,
        *,
        max_bytes: int = MAX_BYTES,
        clock: Callable[[], int] = time.time_ns,
        fdatasync: Callable[[int], None] = os.fdatasync,
    ) -> None:
        """``fdatasync``: what syncs a file's data (tests gate it, or make it fail, to reach the states between)."""
        if fsync not in ("always", "batch", "never"):
            raise ValueError(f"fsync policy {fsync!r}: always, batch or never")
        self.directory = directory
        self._key = str(directory.resolve())
        self._compaction_seen = -1
        self._nlink_checked_ns = 0
        self.fsync_policy: FsyncPolicy = fsync
        self.max_bytes = max_bytes
        self.clock = clock
        self.fdatasync = fdatasync
        self.path: Path | None = None  # the file being written; opened on the first record
        self._fd: int | None = None
        self._size = 0
        self._day = -1
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)  # the worker waits on it for work, close() for the worker
        self._retiring: list[int] = []  # rotated-away files, synced and closed by the next sync
        self._dir_dirty = False  # a new file's directory entry is not known durable yet
        self._durable = 0  # records_written when the last good sync started: all of those are on disk
        self._running = False  # a sync is asked for or under way on the worker
        self._again = False  # asked for while one ran on older records: exactly one more follows
        self._round_target = 0  # what the running sync covers
        self._waiters: list[tuple[int, asyncio.AbstractEventLoop, asyncio.Future[None]]] = []
        self._worker: threading.Thread | None = None
        self._stopping = False
        self._failure_taken = False
        self.failure: OSError | None = None  # the first fdatasync error: sticky
        self.synced_position: tuple[Path | None, int] = (None, 0)  # (file, bytes) known on disk: for tests
        self.records_written = 0
        self.records_synced = 0  # records a good sync confirmed, each counted once
        self.fsyncs = 0  # syncs that made records durable (inline or on the worker)
        self.sync_errors = 0
        self.files_opened = 0

    # ------------------------------------------------------------ records

    def intent(self, opportunity_id: int, strategy: int, legs: list[Any]) -> None:
        """The plan of one execution (legs: anything msgspec encodes), before any of its orders."""
        self._append([_intent_line(opportunity_id, strategy, legs, self.clock())], durable=True)

    def order(self, o: TrackedOrder) -> None:
        """A new order, BEFORE it is sent: with ``always`` it is on disk when this returns."""
        self._append([_order_line("order", o)], durable=True)

    def orders(self, orders: Iterable[TrackedOrder]) -> None:
        """New orders (corrections), BEFORE they are sent, with one write."""
        lines = [_order_line("order", o) for o in orders]
        if lines:
            self._append(lines, durable=True)

    def intent_and_orders(
        self, opportunity_id: int, strategy: int, legs: list[Any], orders: Iterable[TrackedOrder]
    ) -> None:
        """The hot path: an intent and all its orders encoded first, then ONE write (page cache; ``always``
        also syncs it here). Everything is encoded before any I/O, so an unencodable record writes nothing."""
        lines = [_intent_line(opportunity_id, strategy, legs, self.clock())]
        lines.extend(_new_order_line(o) for o in orders)
        self._append(lines, durable=True)

    def update(self, o: TrackedOrder) -> None:
        """The order's state after a change (status, executed, trades). Never synced on its own: a lost update
        is re-learned from the venue by the restart's query, while a sync here would stall the event loop on
        every answer. The next sync carries it to disk anyway."""
        self._append([_order_line("update", o)], durable=False)

    def done(self, opportunity_id: int, outcome: str, books: Mapping[str, Any] | None = None) -> None:
        """The execution is settled: a restart no longer reconciles its orders. ``books``: what the session booked
        for it (``Booked.done_fields``), so a restart rebuilds the run's books. Under ``batch`` the caller awaits
        ``synced()`` before it tells anyone (see the module docstring)."""
        record = {"t": "done", "opportunity_id": opportunity_id, "outcome": outcome, "ts_ns": self.clock(),
                  **(books or {})}
        self._append([_encoder.encode(record) + b"\n"], durable=True)

    # ------------------------------------------------------------ durability

    def sync_soon(self) -> None:
        """Group commit, called right after the requests are written: one fdatasync on the worker thread
        covers everything written so far; if one is already running, exactly one more follows it. Returns at
        once. A no-op under ``never``, when nothing is dirty, and after a sync failure."""
        if self.fsync_policy == "never" or self.failure is not None:
            return
        with self._lock:
            if self._running:
                if self._dirty_since(self._round_target):
                    self._again = True  # the running sync may have started before these records
                return
            if not self._dirty_since(self._durable):
                return
            self._running = True
            self._start_worker()
            self._idle.notify_all()

    async def synced(self) -> None:
        """Return once every record written before this call is on disk (``never``: at once). Raises
        ``JournalSyncError`` when a sync failed: durability can no longer be promised."""
        if self.fsync_policy == "never":
            return
        if self.failure is not None:
            raise JournalSyncError(self.failure)
        loop = asyncio.get_running_loop()
        seq = self.records_written
        with self._lock:
            if self._durable >= seq:
                return
            fut: asyncio.Future[None] = loop.create_future()
            self._waiters.append((seq, loop, fut))
        self.sync_soon()
        await fut

    def commit(self) -> None:
        """``batch``: everything written so far is on disk when this returns (inline, after any sync under way).
        ``always``: already is (updates apart, as ever). ``never``: nothing to do."""
        if self.fsync_policy == "batch":
            self._sync_inline(raising=True)

    def take_failure(self) -> OSError | None:
        """The sync failure, to the first caller only (the executor raises one alert for it)."""
        with self._lock:
            if self.failure is None or self._failure_taken:
                return None
            self._failure_taken = True
            return self.failure

    def close(self) -> None:
        """Wait for a sync under way, sync what is left (unless ``never``), close every file, stop the worker.
        Writing again afterwards opens a new file."""
        self._wait_idle()
        if self.fsync_policy != "never":
            self._sync_inline(raising=False)
        with self._lock:
            fds = [*self._retiring, *([self._fd] if self._fd is not None else [])]
            self._retiring, self._fd, self.path = [], None, None
            self._dir_dirty = False
            self._stopping = True
            self._idle.notify_all()
            worker, self._worker = self._worker, None
        for fd in fds:
            os.close(fd)
        if worker is not None:
            worker.join()
        with self._lock:
            self._stopping = False
            waiters, self._waiters = self._waiters, []
        for _seq, loop, fut in waiters:  # only records written after the last sync could still wait: none now
            self._wake(loop, fut, None if self.failure is None else JournalSyncError(self.failure))

    # ------------------------------------------------------------ files

    def _append(self, lines: list[bytes], *, durable: bool) -> None:
        data = lines[0] if len(lines) == 1 else b"".join(lines)
        now = self.clock()
        if self._needs_new_file(len(data), now):
            self._open(now)
        assert self._fd is not None
        _write_all(self._fd, data)
        with self._lock:
            self._size += len(data)
            self.records_written += len(lines)
        if durable and self.fsync_policy == "always":
            # A failure does not raise here: it is counted, logged and sticky in `failure`, which the executor
            # checks before it sends (an exception out of the hot path would leave the intent half handled).
            self._sync_inline(raising=False)

    def _needs_new_file(self, length: int, now_ns: int) -> bool:
        if self._fd is None:
            return True
        if self._size > 0 and self._size + length > self.max_bytes:
            return True
        if now_ns // DAY_NS != self._day:
            return True
        # compact() removed our file: whatever we append to an unlinked file is lost at close. Compaction runs in
        # this process (the executor's start), which bumps a counter the hot path compares; the fstat (µs) runs
        # then, and at most once a second besides, for a compaction by anyone else.
        generation = _compactions.get(self._key, 0)
        if generation == self._compaction_seen and now_ns - self._nlink_checked_ns < NLINK_CHECK_NS:
            return False
        self._compaction_seen, self._nlink_checked_ns = generation, now_ns
        return os.fstat(self._fd).st_nlink == 0

    def _open(self, now_ns: int) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        while True:
            path = _next_path(self.directory, now_ns)
            try:
                # O_EXCL: never append to a file another writer (or an earlier crash) left behind.
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o644)
                break
            except FileExistsError:
                continue
        with self._lock:
            # The old file is not closed here: a sync may be using it. The next sync syncs and closes it, so
            # the records of the new file never count as durable before those of the old one.
            if self._fd is not None:
                self._retiring.append(self._fd)
            self._fd, self.path, self._size, self._day = fd, path, 0, now_ns // DAY_NS
            self._dir_dirty = self.fsync_policy != "never"
            retired = self._retiring if self.fsync_policy == "never" else []
            if retired:
                self._retiring = []
        for old in retired:  # `never` syncs nothing: nothing else will use them
            os.close(old)
        self.files_opened += 1
        if self.fsync_policy == "always":
            self._sync_inline(raising=False)  # the old file and the new directory entry, as every `always` record

    # ------------------------------------------------------------ syncing

    def _dirty_since(self, target: int) -> bool:
        return self.records_written > target or bool(self._retiring) or self._dir_dirty

    def _take_round(self) -> _Round:
        """Under the lock: what a sync starting now covers (the fd swap of a rotation is under it too)."""
        r = _Round(self.records_written, self._fd, self.path, self._size, self._retiring, self._dir_dirty)
        self._retiring, self._dir_dirty, self._again = [], False, False
        self._round_target = r.target
        return r

    def _sync_files(self, r: _Round) -> OSError | None:
        """The fdatasyncs of one round, outside the lock (they release the GIL); the first error. Anything raised
        counts as a failed sync (an OSError stands for it): a dead worker would leave every waiter hanging."""
        error: OSError | None = None
        for old in r.retiring:
            try:
                self.fdatasync(old)
            except Exception as exc:
                error = error or _as_os_error(exc)
            finally:
                with contextlib.suppress(OSError):
                    os.close(old)
        try:
            if r.sync_dir:
                fsync_dir(self.directory)
            if r.fd is not None:
                # fdatasync: an append changes the size, which it flushes (the data must be retrievable); it
                # skips only timestamps. os.write has no user-space buffer to flush first.
                self.fdatasync(r.fd)
        except Exception as exc:
            error = error or _as_os_error(exc)
        return error

    def _finish_round(self, r: _Round, error: OSError | None) -> list[tuple[asyncio.AbstractEventLoop,
                                                                               asyncio.Future[None]]]:
        """Under the lock: book the round's result; the waiters it settles."""
        if error is not None:
            self.sync_errors += 1
            if self.failure is None:
                self.failure = error
                log.error("order journal %s: fdatasync failed (%s); %d records written since the last good sync "
                          "may not be on disk. The journal claims no durability from now on and the executor "
                          "refuses new legs: check the disk, then restart (reconciliation with the venues finds "
                          "what the journal lost)", r.path, error, r.target - self._durable)
            ready, self._waiters = self._waiters, []
            return [(loop, fut) for _seq, loop, fut in ready]
        if r.target > self._durable:
            self.records_synced += r.target - self._durable
            self._durable = r.target
            self.fsyncs += 1
        self.synced_position = (r.path, r.size)
        done = [(loop, fut) for seq, loop, fut in self._waiters if seq <= self._durable]
        self._waiters = [w for w in self._waiters if w[0] > self._durable]
        return done

    def _wake_all(self, woken: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]]) -> None:
        error = None if self.failure is None else JournalSyncError(self.failure)
        for loop, fut in woken:
            self._wake(loop, fut, error)

    @staticmethod
    def _wake(loop: asyncio.AbstractEventLoop, fut: asyncio.Future[None], error: BaseException | None) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits any more
            loop.call_soon_threadsafe(_resolve, fut, error)

    def _sync_inline(self, *, raising: bool) -> None:
        """Sync now on the calling thread, after any sync under way (``always``, ``commit``, ``close``).
        After a failure (now or earlier) it raises ``JournalSyncError`` if ``raising``, else returns."""
        if self.failure is not None:
            if raising:
                raise JournalSyncError(self.failure)
            return
        self._wait_idle()
        with self._lock:
            if not self._dirty_since(self._durable):
                return
            r = self._take_round()
        error = self._sync_files(r)
        with self._lock:
            woken = self._finish_round(r, error)
        self._wake_all(woken)
        if error is not None and raising:
            raise JournalSyncError(error)

    def _wait_idle(self) -> None:
        with self._idle:
            while self._running:
                self._idle.wait()

    def _start_worker(self) -> None:
        """Under the lock: the worker thread, started on first use (a daemon: an unclosed journal never holds
        up the interpreter's exit)."""
        if self._worker is None:
            self._worker = threading.Thread(target=self._work, name=f"journal-sync:{self.directory.name}",
                                            daemon=True)
            self._worker.start()

    def _work(self) -> None:
        while True:
            with self._idle:
                while not self._running and not self._stopping:
                    self._idle.wait()
                if not self._running:
                    return
                r = self._take_round()
            self._run_round(r)

    def _run_round(self, r: _Round) -> None:
        """One sync, then as many more as were asked for while it ran (normally one: the group commit)."""
        while True:
            error = self._sync_files(r)
            with self._lock:
                woken = self._finish_round(r, error)
                again = error is None and self._again
                if again:
                    r = self._take_round()
                else:
                    self._running = False
                    self._idle.notify_all()
            self._wake_all(woken)
            if not again:
                return

    # ------------------------------------------------------------ restart

    @staticmethod
    def load(directory: Path) -> JournalState:
        """Replay every file in name order; never raises on content (bad lines are counted in torn_lines)."""
        return _Replay().run(journal_files(directory))

    @staticmethod
    def compact(directory: Path, keep: JournalState, *, now_ns: int | None = None) -> Path:
        """Rewrite the journal as one file holding only ``keep`` (the executor passes the state as reconciled,
        which must reflect every record written so far), then remove the older files. Settled executions of
        the last ``SETTLED_RETAIN_NS`` stay as ``done`` records, so a later recovery never books them again.

        The new file is written under a temporary name, fsynced and renamed, so a crash at any point leaves
        either the old files (the temporary one is ignored) or the new one, possibly beside the old ones,
        which replays to the same state. Returns the new file's path."""
        now = time.time_ns() if now_ns is None else now_ns
        directory.mkdir(parents=True, exist_ok=True)
        key = str(directory.resolve())
        _compactions[key] = _compactions.get(key, 0) + 1  # writers in this process re-check their file
        tmp = directory / COMPACT_TMP
        last = {"t": "last", "opportunity_id": keep.last_opportunity_id, "ts_ns": keep.last_ts_ns}
        lines = [_encoder.encode(last) + b"\n"]
        if keep.books is not None:  # the `done` records below lose their books: their totals go on here
            checkpoint = {**keep.books.checkpoint(), "carry_events": list(keep.carry_events)}
            lines.append(_encoder.encode(checkpoint) + b"\n")
        lines.extend(
            _encoder.encode({"t": "done", "opportunity_id": opp, "outcome": SETTLED_OUTCOME, "ts_ns": ts}) + b"\n"
            for opp, ts in keep.settled.items() if ts >= now - SETTLED_RETAIN_NS
        )
        for opp, intent in keep.open_executions.items():
            lines.append(_encoder.encode({"t": "intent", **intent, "opportunity_id": opp}) + b"\n")
        lines.extend(_order_line("order", o) for o in keep.orders.values())
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
        self.done: dict[int, int] = {}  # opportunity id -> ts_ns of its `done`
        self.torn = 0
        self.last = 0
        self.last_ts = 0
        self.books: SessionBooks | None = None
        self.books_unreadable = 0
        self.booked_events: deque[tuple[int, int, str]] = deque(maxlen=BOOKED_EVENTS_KEPT)
        self.carry_events: list[str] = []

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
        return JournalState(self.open, self.orders, self.torn, self.last, self.done, self.last_ts, self.books,
                            self.books_unreadable, tuple(self.booked_events), tuple(self.carry_events))

    def apply(self, r: dict[str, Any]) -> None:
        kind = r["t"]
        ts = 0
        if kind == "intent":
            opp = int(r["opportunity_id"])
            legs = r["legs"]
            if not isinstance(legs, list):
                raise TypeError("legs is not a list")
            ts = int(r["ts_ns"])
            self.open[opp] = _intent_record(opp, int(r["strategy"]), legs, ts)
            self.done.pop(opp, None)
        elif kind in ("order", "update"):
            o = TrackedOrder.from_record(r["order"])
            opp, ts = o.opportunity_id, o.created_ns
            if opp in self.done and o.final:
                return
            self.done.pop(opp, None)
            self.orders[o.client_order_id] = o
            self.by_opp.setdefault(opp, set()).add(o.client_order_id)
        elif kind == "done":
            opp = int(r["opportunity_id"])
            ts = int(r.get("ts_ns", 0))
            self.open.pop(opp, None)
            for cid in self.by_opp.pop(opp, ()):
                self.orders.pop(cid, None)
            self.done[opp] = ts
            if "session" in r:
                self._book(r)
        elif kind == "books":
            self.books = SessionBooks.from_checkpoint(r)  # the totals of everything before it: replaces, never adds
            events = r.get("carry_events", [])
            self.carry_events = [e for e in events if isinstance(e, str)] if isinstance(events, list) else []
            return
        elif kind == "last":
            opp = int(r["opportunity_id"])
            ts = int(r.get("ts_ns", 0))
        else:
            raise ValueError(f"unknown record kind {kind!r}")
        self.last = max(self.last, opp)
        self.last_ts = max(self.last_ts, ts)

    def _book(self, r: dict[str, Any]) -> None:
        """Add a `done` record's books to its session's. Unreadable books are counted, never raised: the record
        still settles its execution (treating it as torn would reconcile, and book, the execution again)."""
        try:
            booked = Booked.from_done(r)
        except (KeyError, ValueError, TypeError, ArithmeticError):
            self.books_unreadable += 1
            return
        session = str(r["session"])
        if self.books is None or self.books.session != session:
            self.books = SessionBooks(session)  # a later run: its books start from zero
            self.booked_events.clear()
            self.carry_events.clear()
        self.books.add(booked)
        event = r.get("event")
        if isinstance(event, str):
            self.booked_events.append((booked.seq, booked.opportunity_id, event))
            if r.get("carry") is True:
                self.carry_events.append(event)


def _lines(path: Path) -> Iterator[bytes]:
    """Non-empty lines; the last one even without its newline (complete JSON is a complete record)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return
    for line in data.split(b"\n"):
        if line.strip():
            yield line
