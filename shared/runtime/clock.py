"""The time a service reads, as a dependency: the system's clocks in a run, the recording's in a backtest.

Two readings, as the code needs them: ``monotonic_ns`` for ages, deadlines and latency stamps, ``time_ns`` for
what is stamped in wall time (journal records, the UTC day, breaker cooldowns, signed timestamps). A service
takes its ``Clock`` from its ``ProcessContext``; nothing on the hot path reads ``time`` directly, so
``draizer backtest`` runs the same code on the recording's clock (``virtual_loop.py``) and repeats exactly.

The attributes are plain callables (the system clock's are the ``time`` builtins themselves), so a read costs
one attribute lookup more than calling ``time.monotonic_ns`` directly.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class Clock:
    __slots__ = ("monotonic_ns", "time_ns")

    def __init__(
        self, monotonic_ns: Callable[[], int] = time.monotonic_ns, time_ns: Callable[[], int] = time.time_ns
    ) -> None:
        self.monotonic_ns = monotonic_ns
        self.time_ns = time_ns

    def monotonic(self) -> float:
        """Seconds, for deadlines compared with other ``monotonic()`` readings of this clock."""
        return self.monotonic_ns() / 1e9

    def time_ms(self) -> int:
        return self.time_ns() // 1_000_000


SYSTEM_CLOCK = Clock()
