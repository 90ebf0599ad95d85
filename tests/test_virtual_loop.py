"""The backtest's event loop: timers fire in order on the virtual clock, no real time passes, the driver's
``sleep_until`` lets everything due run first."""

from __future__ import annotations

import asyncio
import time

import pytest

from shared.runtime.virtual_loop import VirtualClock, VirtualTimeLoop

START = 1_000_000_000_000  # ns: a monotonic reading like a recording's


def run(clock: VirtualClock, coro: object) -> object:
    loop = VirtualTimeLoop(clock, stall_s=0.2)
    try:
        return loop.run_until_complete(coro)  # type: ignore[arg-type]
    finally:
        loop.close()


def test_an_hour_of_timers_takes_no_real_time_and_fires_in_order() -> None:
    clock = VirtualClock(START, 1_700_000_000_000_000_000)
    seen: list[tuple[str, int]] = []

    async def sleeper(name: str, s: float) -> None:
        await asyncio.sleep(s)
        seen.append((name, clock.now_ns - START))

    async def main() -> None:
        await asyncio.gather(sleeper("hour", 3600), sleeper("50ms", 0.05), sleeper("2s", 2.0))

    real = time.monotonic()
    run(clock, main())
    assert time.monotonic() - real < 1.0
    assert [n for n, _ in seen] == ["50ms", "2s", "hour"]
    for (_, at), want in zip(seen, (50_000_000, 2_000_000_000, 3_600_000_000_000), strict=True):
        assert want <= at <= want + 1  # a timer's float `when` is rounded up to the next ns at most
    assert clock.time_ns() - clock.monotonic_ns() == 1_700_000_000_000_000_000 - START


def test_sleep_until_runs_what_is_due_first_and_lands_exactly() -> None:
    clock = VirtualClock(START, 0)
    order: list[str] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        assert isinstance(loop, VirtualTimeLoop)
        loop.call_later(0.010, order.append, "timer at +10ms")
        loop.call_soon(order.append, "ready now")
        assert loop.has_work_before(START + 5_000_000)  # the ready callback
        await loop.sleep_until(START + 20_000_000)
        order.append("driver at +20ms")
        assert clock.now_ns == START + 20_000_000
        assert not loop.has_work_before(START + 30_000_000)
        await loop.sleep_until(START)  # the past: the clock never goes back
        assert clock.now_ns == START + 20_000_000

    run(clock, main())
    assert order == ["ready now", "timer at +10ms", "driver at +20ms"]


def test_the_same_program_gives_the_same_times() -> None:
    def once() -> list[int]:
        clock = VirtualClock(START, 0)
        stamps: list[int] = []

        async def worker(i: int) -> None:
            for k in range(20):
                await asyncio.sleep(0.001 * ((i * 7 + k * 3) % 11))
                stamps.append(clock.now_ns)

        async def main() -> None:
            await asyncio.gather(*(worker(i) for i in range(5)))

        run(clock, main())
        return stamps

    assert once() == once()


def test_a_loop_with_nothing_to_wait_for_raises_instead_of_hanging() -> None:
    clock = VirtualClock(START, 0)

    async def main() -> None:
        await asyncio.get_running_loop().create_future()  # nothing will ever complete it

    with pytest.raises(RuntimeError, match="virtual loop stuck"):
        run(clock, main())
