"""The PostgreSQL sink: batched, idempotent writes; a spool on disk while the database is away.

One task does all the I/O, so ``submit`` only appends to a queue. Each cycle (every ``batch_interval_ms``, or
sooner once ``batch_max_rows`` are queued):

- connected: write what is queued, ``batch_max_rows`` per transaction (``pg_write``, at most
  ``FLUSH_BATCHES_PER_CYCLE`` batches), then backfill one spool file; a spool file is deleted only after all
  its rows committed;
- not connected (or a write failed): append everything queued to the spool and retry the connection with
  exponential backoff (``BACKOFF_MIN_S`` … ``BACKOFF_MAX_S``).

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
import time
from collections import deque
from itertools import islice
from pathlib import Path

import asyncpg

from services.bridge.journal import JournalWriter
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


class PostgresSink:
    name = "postgres"

    def __init__(self, dsn: str, sinks: Sinks, journal_dir: Path, *, spool_file_bytes: int = FILE_BYTES) -> None:
        self.dsn = dsn
        self.where = mask_dsn(dsn)
        self.batch_max_rows = sinks.batch_max_rows
        self.interval_s = sinks.batch_interval_ms / 1000
        self.spill_at = max(20 * sinks.batch_max_rows, 50_000)
        self.spool = Spool(journal_dir / "spool", sinks.journal_fsync, spool_file_bytes)
        self.rejects = JournalWriter(journal_dir / "rejected", sinks.journal_fsync, prefix="rejected")
        self._queue: deque[Record] = deque()
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._pool: asyncpg.Pool | None = None
        self._next_connect = 0.0
        self._deadline: float | None = None  # set at stop: every step then fits in what is left
        self._backoff = BACKOFF_MIN_S
        self._outage_logged = False
        self._spool_error_logged = False
        self._bug_logged = False
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
        if len(self._queue) >= self.batch_max_rows:
            self._wake.set()
        if len(self._queue) > HARD_CAP:
            self._queue.popleft()
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
        if len(self._queue) >= self.batch_max_rows:
            self._wake.set()  # more to do: no pause before the next cycle

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
        await self._spool_queue(len(self._queue))
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
        """One batch in one transaction; None when the database failed (it is then marked unreachable)."""
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
        if result.rejected:
            await self._reject(result)
        return result

    async def _flush(self, n: int) -> bool:
        """Write the first ``n`` queued records (not more: under load the queue grows while we write)."""
        while n > 0 and self._queue and self._time_left() > 0:
            batch = list(islice(self._queue, min(n, self.batch_max_rows)))
            if await self._write(batch) is None:
                return False
            for _ in batch:
                self._queue.popleft()
            n -= len(batch)
        return True

    async def _backfill_one(self) -> bool:
        """Load the oldest spool file; True when one was loaded completely (and deleted)."""
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

    async def _spool_queue(self, n: int) -> None:
        """Move the first ``n`` queued records to the spool."""
        n = min(n, len(self._queue))
        if n <= 0:
            return
        batch = list(islice(self._queue, n))
        unencodable = self.spool.writer.unencodable
        try:
            await asyncio.to_thread(self.spool.write, batch)
        except OSError as exc:
            self.n_failures += 1
            if not self._spool_error_logged:
                log.error(
                    "postgres sink: cannot spool to %s (%s); keeping records in memory", self.spool.directory, exc
                )
                self._spool_error_logged = True
            with contextlib.suppress(OSError):
                await asyncio.to_thread(self.spool.close)  # start a fresh file on the next try
            return
        self._spool_error_logged = False
        for _ in batch:
            self._queue.popleft()
        lost = self.spool.writer.unencodable - unencodable  # not JSON-able: could never be stored anyway
        self.n_dropped += lost
        self.n_spooled += n - lost

    async def _reject(self, result: WriteResult) -> None:
        self.n_rejected += len(result.rejected)
        record, why = result.rejected[0]
        log.error(
            "postgres sink: %d records refused for their content (first: %s %s: %s); kept in %s",
            len(result.rejected),
            record.kind,
            record.key,
            why,
            self.rejects.directory,
        )
        try:
            await asyncio.to_thread(self.rejects.write, [r for r, _ in result.rejected])
        except OSError as exc:
            log.error("postgres sink: cannot keep rejected records in %s: %s", self.rejects.directory, exc)
