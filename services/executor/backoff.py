"""Reconnect pacing for the user streams: waits doubling from ``start_s`` to ``max_s``, each with jitter (half to
one and a half of it, so many clients do not come back in step), back to the start after a link that worked."""

from __future__ import annotations

import asyncio
import random

BACKOFF_START_S = 0.1
BACKOFF_MAX_S = 5.0


class Backoff:
    def __init__(self, start_s: float = BACKOFF_START_S, max_s: float = BACKOFF_MAX_S) -> None:
        self.start_s = start_s
        self.max_s = max_s
        self.next_s = start_s

    def reset(self) -> None:
        """The link worked until now: come back quickly."""
        self.next_s = self.start_s

    async def wait(self) -> None:
        await asyncio.sleep(self.next_s * (0.5 + random.random()))  # reconnect backoff with jitter
        self.next_s = min(self.next_s * 2, self.max_s)
