"""The PostgreSQL sink: batched, idempotent writes; a spool on disk while the database is away.

One task does all the I/O, so ``submit`` only appends to a queue. Each cycle (every ``batch_interval_ms``, or
sooner once ``batch_max_rows`` are queued):

- connected: write what is queued, ``batch_max_rows`` per transaction (``pg_write``, at most
  ``FLUSH_BATCHES_PER_CYCLE`` batches), then backfill one spool file; a spool file is deleted only after all
  its rows committed;
- not connected (or a write failed): append everything queued to the spool and retry the connection with
  exponential backoff (``BACKOFF_MIN_S`` … ``BACKOFF_MAX_S``).

While the disk refuses the spool (full, read-only, I/O error) the records stay queued in memory, in order (up
to ``HARD_CAP``), and the spool keeps its file (the writer cuts off a failed write's torn part); the next try
waits out a back-off of its own (``RETRY_MIN_S`` doubling up to ``retry_max_s``, which a filling queue does not
shorten), and the stall is logged once when it starts and once when it ends, and counted (``spool_stalls``).
``rejected/`` is handled alike: a batch whose refused records cannot be kept stays queued (its good rows come
back as duplicates on the retry), so no refused record is lost either.

``through`` tells, per source service, the highest event number up to which every record is durable:
committed, spooled, or kept in ``rejected/``.

A record leaves the queue only once committed or spooled, and every table key is the record's idempotency
key, so a batch that committed just before the link dropped and is written again from the spool lands once.
When the database is slower than the engine, the queue past ``spill_at`` records goes to the spool too: memory
stays bounded and nothing is dropped. Records PostgreSQL refuses for their content (see ``pg_write``) are set
aside in ``<journal_dir>/rejected/`` (journal format, counted, logged) so they can be fixed and imported.

On (re)connect the sink applies pending migrations (``services/bridge/migrate.py``), so a fresh database
works without a separate step. On stop it writes what is queued within ``STOP_BUDGET_S`` (the bridge is
killed after 15 s) and spools whatever it could not.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections import deque
from collections.abc import Callable, Iterable
from itertools import islice
from pathlib import Path

import asyncpg

from services.bridge.journal import RETRY_MAX_S, RETRY_MIN_S, JournalWriter, describe_error
from services.bridge.pg_conn import mask_dsn, open_pool
from services.bridge.pg_spool import FILE_BYTES, Spool
from services.bridge.pg_write import WriteResult, write_records
from services.bridge.records import Record
from shared.config import Sinks

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 5.0
WRITE_TIMEOUT_S = 10.0  # one batch; past it the database counts as unreachable
BACKOFF_MIN_S = 0.5
BACKOFF_MAX_S = 5.0
STOP_BUDGET_S = 8.0
FLUSH_BATCHES_PER_CYCLE = 10
# Last resort only (the task spills to the spool long before): a queue this long means the task is stuck.
HARD_CAP = 500_000


class DiskStall:
    """A directory of the sink that refuses writes (disk full, read-only, I/O error): when to try again, and
    what to say about it. Tries back off from RETRY_MIN_S doubling up to ``retry_max_s``; the stall is logged
    once when it starts and once when it ends (not per try: a long outage would flood the log), and counted."""

    def __init__(self, what: str, directory: Path, retry_max_s: float) -> None:
        self.what = what  # for the log: "spool", "rejected records"
        self.directory = directory
        self.retry_max_s = retry_max_s
        self.count = 0  # stalls so far
        self.since = 0.0  # monotonic start of the current stall; 0: writing
        self.attempts = 0  # failed tries in the current stall
        self._delay = 0.0
        self._retry_at = 0.0

    @property
    def stalled(self) -> bool:
        return self.since > 0

    def ready(self) -> bool:
        """The back-off is over (always, outside a stall)."""
        return time.monotonic() >= self._retry_at

    def failed(self, exc: OSError, waiting: int) -> None:
        now = time.monotonic()
        self.attempts += 1
        self._delay = min(max(self._delay * 2, RETRY_MIN_S), self.retry_max_s)
        self._retry_at = now + self._delay
        if self.stalled:
            return
        self.since = now
        self.count += 1
        log.error(
            "postgres sink: cannot write the %s in %s (%s); %d records waiting in memory, "
            "retrying with back-off up to %g s",
            self.what,
            self.directory,
            describe_error(exc),
            waiting,
            self.retry_max_s,
        )

    def cleared(self, written: int) -> None:
        if self.stalled:
            log.warning(
                "postgres sink: writing the %s in %s again after %.1f s and %d failed attempts; %d records written",
                self.what,
                self.directory,
                time.monotonic() - self.since,
                self.attempts,
                written,
            )
        self.since, self.attempts, self._delay, self._retry_at = 0.0, 0, 0.0, 0.0


class PostgresSink:
    name = "postgres"

    def __init__(
        self,
        dsn: str,
        sinks: Sinks,
        journal_dir: Path,
        *,
        spool_file_bytes: int = FILE_BYTES,
        retry_max_s: float = RETRY_MAX_S,  # the longest back-off while the disk refuses the spool or rejected/
        write_fn: Callable[[int, memoryview], int] = os.write,  # os.write; tests pass a disk that fills up
    ) -> None:
        self.dsn = dsn
        self.where = mask_dsn(dsn)
        self.batch_max_rows = sinks.batch_max_rows
        self.interval_s = sinks.batch_interval_ms / 1000
        self.spill_at = max(20 * sinks.batch_max_rows, 50_000)
        self.spool = Spool(journal_dir / "spool", sinks.journal_fsync, spool_file_bytes, write_fn=write_fn)
        self.rejects = JournalWriter(
            journal_dir / "rejected", sinks.journal_fsync, prefix="rejected", write_fn=write_fn
        )
        self.spool_stall = DiskStall("spool", self.spool.directory, retry_max_s)
        self.rejects_stall = DiskStall("rejected records", self.rejects.directory, retry_max_s)
        # Per source service, the highest event number whose record is durable (committed, spooled or kept in
        # rejected/). Records are handled in queue order, so every earlier record of that source is durable too.
        self.through: dict[str, int] = {}
        self._queue: deque[Record] = deque()
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._pool: asyncpg.Pool | None = None
        self._next_connect = 0.0
        self._deadline: float | None = None  # set at stop: every step then fits in what is left
        self._backoff = BACKOFF_MIN_S
        self._outage_logged = False
        self._bug_logged = False
        self._capped = 0  # records submit() dropped at HARD_CAP, ever (to reconcile with a batch in flight)
        self._refused_head: Record | None = None  # first record of the batch whose refused records wait for disk
        self.n_written = 0  # rows inserted (new keys), from the queue or the spool
        self.n_duplicates = 0  # rows whose key was already there (replays, backfill after an uncertain commit)
        self.n_spooled = 0  # records written to the spool
        self.n_backfilled = 0  # spooled records since committed (inserted or already present)
        self.n_failures = 0  # failed connects and batches
        self.n_rejected = 0  # records refused for their content (kept in rejected/)
        self.n_dropped = 0  # HARD_CAP overflow: should stay 0

    # ----- the Sink interface
    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="postgres-sink")
        log.info("postgres sink: %s (spool %s)", self.where, self.spool.directory)

    def submit(self, record: Record) -> None:
        self._queue.append(record)
        if len(self._queue) >= self.batch_max_rows and self._may_hurry():
            self._wake.set()
        if len(self._queue) > HARD_CAP:
            self._queue.popleft()
            self._capped += 1
            self.n_dropped += 1
            if self.n_dropped == 1:
                log.error("postgres sink: %d records queued and the writer is stuck; dropping the oldest", HARD_CAP)

    async def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            await self._task
            self._task = None

    def counters(self) -> dict[str, int]:
        return {
            "written": self.n_written,
            "duplicates": self.n_duplicates,
            "spooled": self.n_spooled,
            "backfilled": self.n_backfilled,
            "failures": self.n_failures,
            "rejected": self.n_rejected,
            "dropped": self.n_dropped,
            "spool_stalls": self.spool_stall.count,
            "rejected_stalls": self.rejects_stall.count,
        }

    @property
    def connected(self) -> bool:
        return self._pool is not None

    # ----- the task
    async def _run(self) -> None:
        try:
            while not self._stopping:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=self.interval_s)
                self._wake.clear()
                if not self._stopping:
                    try:
                        await self._cycle()
                    except Exception:  # a bug, not an outage: say so once, keep the records, keep going
                        self.n_failures += 1
                        if not self._bug_logged:
                            log.exception("postgres sink: unexpected error; records stay queued")
                            self._bug_logged = True
                        await asyncio.sleep(BACKOFF_MAX_S)  # no hot loop on a persistent bug
        finally:
            await self._final()

    async def _cycle(self) -> None:
        if self._pool is None and time.monotonic() >= self._next_connect:
            await self._connect()
        if self._pool is None:
            await self._spool_queue(len(self._queue))
            return
        if len(self._queue) > self.spill_at:  # the database is slower than the engine: keep memory bounded
            await self._spool_queue(len(self._queue) - self.spill_at // 2)
        # A bounded slice per cycle, so the spill check and the backfill get their turn under any load.
        if await self._flush(FLUSH_BATCHES_PER_CYCLE * self.batch_max_rows) and self._pool is not None:
            await self._backfill_one()
        if len(self._queue) >= self.batch_max_rows and self._may_hurry():
            self._wake.set()  # more to do: no pause before the next cycle

    def _may_hurry(self) -> bool:
        """A full batch may start the next cycle at once, unless the step it needs is waiting out a disk
        back-off: a queue that keeps filling must not shorten it (the cycle would only find it not over)."""
        if self._head_waits_for_rejects():
            return False
        return self._pool is not None or not self.spool_stall.stalled

    def _head_waits_for_rejects(self) -> bool:
        """The batch at the head of the queue could not keep its refused records: it waits for rejected/.
        By identity: once that batch is spooled (spill) or written, the batches behind it are not held back."""
        return bool(self._queue) and self._queue[0] is self._refused_head

    async def _final(self) -> None:
        """Write what is left within the stop budget; spool the rest; close.

        The budget is kept by the timeouts of each step (asyncpg cancels a timed-out statement itself),
        never by cancelling the task mid-batch: that would leave the connection in an unknown state."""
        self._deadline = time.monotonic() + STOP_BUDGET_S
        if self._pool is None and time.monotonic() >= self._next_connect:
            await self._connect()
        if self._pool is not None and await self._flush(len(self._queue)):
            while self._pool is not None and self._time_left() > 0 and await self._backfill_one():
                pass
        await self._spool_queue(len(self._queue), force=True)  # the last chance: whatever the back-off says
        if self._queue:
            log.error("postgres sink: %d records could be neither written nor spooled", len(self._queue))
            self.n_dropped += len(self._queue)
            self._queue.clear()
        left = await asyncio.to_thread(self.spool.files)
        if left:
            log.warning(
                "postgres sink: %d spool files in %s wait for the next start (or `draizer journal import`)",
                len(left),
                self.spool.directory,
            )
        await self._close_pool()
        await asyncio.to_thread(self.spool.close)
        await asyncio.to_thread(self.rejects.close)

    def _time_left(self) -> float:
        return float("inf") if self._deadline is None else self._deadline - time.monotonic()

    def _timeout(self, usual: float) -> float:
        """A step's timeout: the usual one, cut to what is left of the stop budget."""
        return max(0.1, min(usual, self._time_left()))

    # ----- connection
    async def _connect(self) -> None:
        timeout = self._timeout(CONNECT_TIMEOUT_S)
        try:
            self._pool = await open_pool(self.dsn, timeout, self._timeout(WRITE_TIMEOUT_S))
        except Exception as exc:  # down, refused, bad password, no such database: all retried
            self._unreachable(exc)
            return
        self._backoff = BACKOFF_MIN_S
        pending = len(await asyncio.to_thread(self.spool.files))
        if self._outage_logged:
            log.warning("postgres sink: %s reachable again; backfilling %d spool files", self.where, pending)
            self._outage_logged = False
        else:
            log.info("postgres sink: connected to %s (%d spool files to backfill)", self.where, pending)

    def _unreachable(self, exc: BaseException) -> None:
        """Count, log once per outage, drop the connection, schedule the next try."""
        self.n_failures += 1
        if not self._outage_logged:
            log.warning(
                "postgres sink: %s unreachable (%s: %s); spooling to %s and retrying",
                self.where,
                type(exc).__name__,
                exc,
                self.spool.directory,
            )
            self._outage_logged = True
        if self._pool is not None:
            self._pool.terminate()
            self._pool = None
        self._next_connect = time.monotonic() + self._backoff
        self._backoff = min(self._backoff * 2, BACKOFF_MAX_S)

    async def _close_pool(self) -> None:
        pool, self._pool = self._pool, None
        if pool is None:
            return
        try:
            await asyncio.wait_for(pool.close(), self._timeout(CONNECT_TIMEOUT_S))
        except Exception:  # a broken link cannot close politely (or the stop budget is spent)
            pool.terminate()

    # ----- writing
    async def _write(self, records: list[Record]) -> WriteResult | None:
        """One batch in one transaction. None when the batch is not done and must be retried: the database
        failed (it is then marked unreachable), or the records it refused could not be kept in rejected/."""
        pool = self._pool
        assert pool is not None
        try:
            async with pool.acquire(timeout=self._timeout(CONNECT_TIMEOUT_S)) as conn:
                result = await write_records(conn, records, self._timeout(WRITE_TIMEOUT_S))
        except Exception as exc:  # anything but a data error: the batch stays where it is, to retry
            self._unreachable(exc)
            return None
        self.n_written += result.inserted
        self.n_duplicates += result.duplicates
        if result.rejected and not await self._reject(result):
            self._refused_head = records[0]
            return None  # its good rows committed: the retry finds them as duplicates
        self._refused_head = None
        return result

    async def _flush(self, n: int) -> bool:
        """Write the first ``n`` queued records (not more: under load the queue grows while we write)."""
        if self._head_waits_for_rejects() and not self.rejects_stall.ready():
            return False  # retried once the back-off is over
        while n > 0 and self._queue and self._time_left() > 0:
            batch = list(islice(self._queue, min(n, self.batch_max_rows)))
            capped = self._capped
            if await self._write(batch) is None:
                return False
            self._done(batch, len(batch), capped)
            n -= len(batch)
        return True

    def _done(self, batch: list[Record], done: int, capped: int) -> None:
        """The first ``done`` records of ``batch`` (the head of the queue when it was taken, with ``capped`` the
        HARD_CAP count then) are durable: take them off the queue and advance ``through``.

        submit() may have dropped some of them from the head at HARD_CAP while they were written: those are not
        popped again (that would lose records never stored) and, being stored after all, not counted dropped."""
        gone = min(self._capped - capped, done)
        self.n_dropped -= gone
        for _ in range(done - gone):
            self._queue.popleft()
        self._advance(islice(batch, done))

    def _advance(self, records: Iterable[Record]) -> None:
        through = self.through
        for r in records:
            if r.src and r.seq > through.get(r.src, 0):
                through[r.src] = r.seq

    async def _backfill_one(self) -> bool:
        """Load the oldest spool file; True when one was loaded completely (and deleted)."""
        if not self.rejects_stall.ready():
            return False  # a file whose refused records could not be kept is retried after the back-off
        path = await asyncio.to_thread(self.spool.next_file)
        if path is None:
            return False
        records, _stats = await asyncio.to_thread(self.spool.read, path)
        for i in range(0, len(records), self.batch_max_rows):
            if self._time_left() <= 0:
                return False  # stopping: the file stays for the next start
            batch = records[i : i + self.batch_max_rows]
            result = await self._write(batch)
            if result is None:
                return False
            self.n_backfilled += result.inserted + result.duplicates
        await asyncio.to_thread(self.spool.delete, path)
        log.info("postgres sink: backfilled %s (%d records)", path.name, len(records))
        return True

    async def _spool_queue(self, n: int, *, force: bool = False) -> None:
        """Move the first ``n`` queued records to the spool. While its disk refuses, they stay queued and a try
        waits for the back-off to end (``force``: try anyway)."""
        n = min(n, len(self._queue))
        if n <= 0 or not (force or self.spool_stall.ready()):
            return
        batch = list(islice(self._queue, n))
        writer = self.spool.writer
        unencodable, capped = writer.unencodable, self._capped
        error: OSError | None = None
        try:
            await asyncio.to_thread(self.spool.write, batch)
        except OSError as exc:
            error = exc
        # A failed write keeps its file and cuts off its torn part: only what it settled is in the spool (some
        # records under fsync "always"), the rest is retried into the same file; no new file per try.
        done = n if error is None else writer.settled
        lost = writer.unencodable - unencodable  # not JSON-able: could never be stored anyway
        self.n_dropped += lost
        self.n_spooled += done - lost
        self._done(batch, done, capped)
        if error is None:
            self.spool_stall.cleared(n)
            return
        self.n_failures += 1
        self.spool_stall.failed(error, len(self._queue))

    async def _reject(self, result: WriteResult) -> bool:
        """Keep the records PostgreSQL refused in rejected/; False when the disk refuses (the batch is then
        retried after the back-off: nothing refused is lost, and ``through`` never passes it unkept)."""
        refused = [r for r, _ in result.rejected]
        try:
            await asyncio.to_thread(self.rejects.write, refused)
        except OSError as exc:
            self.n_failures += 1
            self.rejects_stall.failed(exc, len(self._queue))
            return False
        self.rejects_stall.cleared(len(refused))
        self.n_rejected += len(refused)
        record, why = result.rejected[0]
        log.error(
            "postgres sink: %d records refused for their content (first: %s %s: %s); kept in %s",
            len(refused),
            record.kind,
            record.key,
            why,
            self.rejects.directory,
        )
        return True
