"""Redis sink: every record as JSON on a pub/sub channel and on a capped Stream, for external consumers.

    PUBLISH <prefix>:<kinds>                            <json>
    XADD    <prefix>:stream:<kinds> MAXLEN ~ <n> *  event <json>      (skipped when redis_stream_maxlen is 0)

``<kinds>`` is the plural of the record kind (opportunities, decisions, orders, fills, executions, alerts,
funding_payments, carries; metric records go to ``stats``). A carry's channel carries every update of it
(open, each funding payment, closed); the newest per ``carry_id`` is its state. No hash of open carries is kept:
like every other kind, Redis only relays (the state is in the API, shared memory and PostgreSQL).
``<json>`` is ``{"kind": ..., "key": ..., "data": {...}}``, the same envelope as a
journal line; ``key`` is the record's idempotency key, so a consumer can drop the rare duplicate a retried
batch produces. Payload schemas are in docs/OBSERVABILITY.md.

Redis is best-effort by design: the durable record is PostgreSQL or the local journal. So this sink never
blocks the bridge (``submit`` appends to a bounded in-memory queue), writes in its own task as pipelined
batches of whatever is queued, and when Redis is unreachable it keeps the newest ``max_queue`` records,
dropping (and counting) the oldest, retries with capped exponential backoff, and reconnects by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import deque
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import msgspec
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from services.bridge.records import Record
from shared.config import Sinks

log = logging.getLogger(__name__)

CHANNEL_OF_KIND = {
    "opportunity": "opportunities",
    "decision": "decisions",
    "order": "orders",
    "fill": "fills",
    "execution": "executions",
    "alert": "alerts",
    "funding_payment": "funding_payments",
    "carry": "carries",
    "metric": "stats",
}
MAX_QUEUE = 100_000  # records kept while Redis is away; the oldest go first beyond this
IO_TIMEOUT_S = 2.0  # one batch, connect included: a hung Redis costs the writer task this much, never the bridge
BACKOFF_START_S = 0.05
BACKOFF_MAX_S = 2.0
STOP_FLUSH_S = 3.0  # at shutdown, how long queued records may take to reach Redis before they are dropped


class RedisEnvelope(msgspec.Struct):
    kind: str
    key: str
    data: dict[str, Any]


def masked_url(url: str) -> str:
    """The URL with any password replaced, for logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}{port}"))


class RedisSink:
    name = "redis"

    def __init__(self, url: str, sinks: Sinks, *, max_queue: int = MAX_QUEUE) -> None:
        self.url = url
        self.where = masked_url(url)
        self.prefix = sinks.redis_channel_prefix
        self.stream_maxlen = sinks.redis_stream_maxlen
        self.batch_max = sinks.batch_max_rows
        self.max_queue = max_queue
        self.channels = {kind: f"{self.prefix}:{plural}" for kind, plural in CHANNEL_OF_KIND.items()}
        self.streams = {kind: f"{self.prefix}:stream:{plural}" for kind, plural in CHANNEL_OF_KIND.items()}
        self._queue: deque[Record] = deque()
        self._wake = asyncio.Event()
        self._encoder = msgspec.json.Encoder()
        self._client: aioredis.Redis | None = None
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._down_since = 0.0  # monotonic seconds; 0 while Redis answers
        self.n_written = 0
        self.n_dropped = 0
        self.n_errors = 0
        self.n_reconnects = 0

    # ----- Sink protocol
    async def start(self) -> None:
        # No connection yet: the writer connects on its first batch, so a Redis that is down at start-up costs
        # nothing here (the bridge must come up regardless).
        self._client = aioredis.Redis.from_url(
            self.url,
            socket_timeout=IO_TIMEOUT_S,
            socket_connect_timeout=IO_TIMEOUT_S,
            retry=Retry(NoBackoff(), 0),  # the writer does its own backoff; a hidden retry would stall a batch
        )
        self._task = asyncio.get_running_loop().create_task(self._run(), name="redis-sink")
        log.info("redis sink: %s, channels %s:<kind>, streams %s", self.where, self.prefix,
                 f"MAXLEN ~{self.stream_maxlen}" if self.stream_maxlen else "off")

    def submit(self, record: Record) -> None:
        queue = self._queue
        if len(queue) >= self.max_queue:
            queue.popleft()
            self.n_dropped += 1
        queue.append(record)
        if not self._wake.is_set():
            self._wake.set()

    async def stop(self) -> None:
        self._closing = True
        self._wake.set()
        task = self._task
        if task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(task), STOP_FLUSH_S)
            except TimeoutError:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self._queue:
            log.warning("redis sink: %d records not delivered at shutdown (%s unreachable)", len(self._queue),
                        self.where)
            self.n_dropped += len(self._queue)
            self._queue.clear()
        if self._client is not None:
            with contextlib.suppress(RedisError, OSError):
                await self._client.aclose()
        log.info("redis sink stopped: %s", self.counters())

    def counters(self) -> dict[str, int]:
        return {
            "written": self.n_written,
            "queued": len(self._queue),
            "dropped": self.n_dropped,
            "errors": self.n_errors,
            "reconnects": self.n_reconnects,
        }

    # ----- writer task
    async def _run(self) -> None:
        backoff = BACKOFF_START_S
        while True:
            if not self._queue:
                if self._closing:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            batch = [self._queue.popleft() for _ in range(min(self.batch_max, len(self._queue)))]
            try:
                await asyncio.wait_for(self._write(batch), IO_TIMEOUT_S)
            except (RedisError, OSError, TimeoutError) as exc:
                self._requeue(batch)
                self._on_failure(exc)
                if self._closing:
                    return  # stop() counts what is left
                await asyncio.sleep(backoff * (0.5 + random.random()))  # jitter: no lockstep with other clients
                backoff = min(backoff * 2, BACKOFF_MAX_S)
                continue
            except Exception:  # a bug must not end the writer: Redis output would stop for good
                self.n_errors += 1
                self.n_dropped += len(batch)
                log.exception("redis sink: dropping a batch of %d records", len(batch))
                continue
            self.n_written += len(batch)
            backoff = BACKOFF_START_S
            if self._down_since:
                self.n_reconnects += 1
                log.warning("redis sink: %s reachable again after %.1fs; %d records dropped so far", self.where,
                            time.monotonic() - self._down_since, self.n_dropped)
                self._down_since = 0.0

    async def _write(self, batch: list[Record]) -> None:
        assert self._client is not None
        encode = self._encoder.encode
        maxlen = self.stream_maxlen
        async with self._client.pipeline(transaction=False) as pipe:
            for record in batch:
                payload = encode(RedisEnvelope(record.kind, record.key, record.data))
                pipe.publish(self.channels.get(record.kind, f"{self.prefix}:{record.kind}"), payload)
                if maxlen:
                    stream = self.streams.get(record.kind, f"{self.prefix}:stream:{record.kind}")
                    pipe.xadd(stream, {"event": payload}, maxlen=maxlen, approximate=True)
            await pipe.execute()

    def _requeue(self, batch: list[Record]) -> None:
        """Put a failed batch back in front (it is older than anything queued), then trim to the bound."""
        queue = self._queue
        queue.extendleft(reversed(batch))
        while len(queue) > self.max_queue:
            queue.popleft()
            self.n_dropped += 1

    def _on_failure(self, exc: BaseException) -> None:
        self.n_errors += 1
        if not self._down_since:
            self._down_since = time.monotonic()
            log.warning("redis sink: %s unreachable (%s: %s); keeping the newest %d records and retrying",
                        self.where, type(exc).__name__, exc, self.max_queue)
