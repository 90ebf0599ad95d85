"""An asyncio event loop on a virtual clock: the backtest runs the engine's own code on a recording's time.

The loop's ``time()`` is ``VirtualClock.now_ns``, and the services read the same clock (``Clock`` from the
context). Nothing waits for real time: when the loop has nothing ready and would sleep until its next timer, the
clock jumps to that timer instead (``_VirtualSelector.select``), so a 50 ms order round trip, a 2 s unwind
deadline or a heartbeat costs no wall time at all, and happens at exactly the same virtual instant every run.
The driver (the backtest) moves the clock forward to each recorded event; ``advance_to`` never moves it back.

Real file descriptors still work (the services' sockets are real); they are polled without waiting. A loop that
has neither a ready callback nor a timer would wait for I/O that a simulation cannot bring: after
``STALL_S`` of real time it raises instead of hanging. Threads that call back into the loop (an fsync worker)
would race the virtual clock, so a backtest configures none (``execution.journal_fsync = "never"``).
"""

from __future__ import annotations

import asyncio
import math
import selectors
from typing import Any

from shared.runtime.clock import Clock

STALL_S = 5.0  # real seconds a loop with no timer may wait for I/O before the simulation is declared stuck


class VirtualClock:
    """Monotonic ns moved by the backtest; wall time is the recording's wall time at the same instant."""

    __slots__ = ("now_ns", "wall_offset_ns")

    def __init__(self, start_monotonic_ns: int, start_wall_ns: int) -> None:
        self.now_ns = start_monotonic_ns
        self.wall_offset_ns = start_wall_ns - start_monotonic_ns

    def monotonic_ns(self) -> int:
        return self.now_ns

    def time_ns(self) -> int:
        return self.now_ns + self.wall_offset_ns

    def advance_to(self, ns: int) -> None:
        if ns > self.now_ns:
            self.now_ns = ns

    def clock(self) -> Clock:
        return Clock(self.monotonic_ns, self.time_ns)


class _VirtualSelector(selectors.DefaultSelector):  # type: ignore[misc,valid-type]
    def __init__(self, clock: VirtualClock, stall_s: float) -> None:
        super().__init__()
        self.clock = clock
        self.stall_s = stall_s
        self.loop: VirtualTimeLoop | None = None

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        ready = super().select(0)
        if ready or timeout == 0:
            return ready
        if timeout is None:  # no timer at all: only I/O could wake the loop
            ready = super().select(self.stall_s)
            if not ready:
                raise RuntimeError(f"virtual loop stuck: nothing scheduled and no I/O for {self.stall_s:g}s")
            return ready
        assert self.loop is not None
        self.clock.advance_to(self.loop.next_timer_ns())
        return ready


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    def __init__(self, clock: VirtualClock, stall_s: float = STALL_S) -> None:
        selector = _VirtualSelector(clock, stall_s)
        super().__init__(selector)
        selector.loop = self
        self.clock = clock
        self._clock_resolution = 1e-9

    def time(self) -> float:
        return self.clock.now_ns / 1e9

    def next_timer_ns(self) -> int:
        """When the earliest live timer is due (ns, rounded up so ``time()`` reaches it); now when there is none."""
        # _run_once drops cancelled timers from the head of its heap before it selects: the head is live.
        scheduled: list[Any] = self._scheduled  # type: ignore[attr-defined]
        return math.ceil(scheduled[0].when() * 1e9) if scheduled else self.clock.now_ns

    def has_work_before(self, ns: int) -> bool:
        """A ready callback, or a timer due no later than ``ns``: the driver must let the loop run first."""
        if self._ready:  # type: ignore[attr-defined]
            return True
        scheduled: list[Any] = self._scheduled  # type: ignore[attr-defined]
        return bool(scheduled) and scheduled[0].when() * 1e9 <= ns

    async def sleep_until(self, ns: int) -> None:
        """Let everything due before ``ns`` run, in order, then return with the clock at ``ns`` exactly."""
        if ns > self.clock.now_ns:
            fut = self.create_future()
            self.call_at(ns / 1e9, _set_done, fut)
            await fut
            self.clock.advance_to(ns)
        else:
            await asyncio.sleep(0)


def _set_done(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)
