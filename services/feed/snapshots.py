"""REST depth snapshots for the feed's diff books (aiohttp: TLS, redirects and proxies come for free).

Requests for one symbol collapse while one is in flight; a few run at once so a cold start of many books
does not burst the venue's request weight. A 429/418 answer pauses every request for its ``Retry-After``;
other failures retry with backoff. Nothing here blocks the frame path: results arrive as callbacks.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

import aiohttp

log = logging.getLogger(__name__)

PARALLEL = 4
TIMEOUT_S = 10.0
RETRY_START_S = 0.25
RETRY_MAX_S = 30.0
DEFAULT_RETRY_AFTER_S = 10.0


class SnapshotFetcher:
    def __init__(
        self,
        name: str,
        base_url: str,
        path_of: Callable[[str], str],
        on_body: Callable[[str, bytes, int], None],
    ) -> None:
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.path_of = path_of
        self.on_body = on_body
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._wanted: set[str] = set()
        self._paused_until = 0.0
        self._session: aiohttp.ClientSession | None = None
        self._workers: list[asyncio.Task[None]] = []
        self.requests = 0
        self.failures = 0
        self.rate_limited = 0

    def request(self, symbol: str) -> None:
        if symbol in self._wanted:
            return
        self._wanted.add(symbol)
        self._queue.put_nowait(symbol)

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=TIMEOUT_S))
        self._workers = [asyncio.get_running_loop().create_task(self._work()) for _ in range(PARALLEL)]

    async def stop(self) -> None:
        for w in self._workers:
            w.cancel()
        if self._workers:
            await asyncio.wait(self._workers)
        if self._session is not None:
            await self._session.close()

    async def _work(self) -> None:
        while True:
            symbol = await self._queue.get()
            backoff = RETRY_START_S
            while not await self._fetch(symbol):
                await asyncio.sleep(backoff)  # retry pacing
                backoff = min(backoff * 2, RETRY_MAX_S)

    async def _fetch(self, symbol: str) -> bool:
        pause = self._paused_until - time.monotonic()
        if pause > 0:
            await asyncio.sleep(pause)  # the venue asked us to wait (Retry-After)
        assert self._session is not None
        url = self.base_url + self.path_of(symbol)
        self.requests += 1
        try:
            async with self._session.get(url) as resp:
                body = await resp.read()
                status = resp.status
                retry_after = resp.headers.get("Retry-After", "")
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            self.failures += 1
            log.warning("%s: depth snapshot for %s failed: %s", self.name, symbol, exc)
            return False
        if status in (418, 429):
            self.rate_limited += 1
            wait = float(retry_after) if retry_after.isdigit() else DEFAULT_RETRY_AFTER_S
            self._paused_until = time.monotonic() + wait
            log.warning("%s: depth snapshots rate-limited (HTTP %d); pausing %.0fs", self.name, status, wait)
            return False
        if status != 200:
            self.failures += 1
            log.warning("%s: depth snapshot for %s: HTTP %d %r", self.name, symbol, status, body[:200])
            return False
        self._wanted.discard(symbol)
        self.on_body(symbol, body, time.monotonic_ns())
        return True
