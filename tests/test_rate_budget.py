"""RateBudget (pure): sliding windows, venue headers, Retry-After blocks and bans, the budget share."""

from __future__ import annotations

from services.executor.rate_budget import RateBudget, RateUsage, SlidingCount
from shared.config import RateLimits
from shared.venues.common import RateHeaders


class Clock:
    """Hand-moved monotonic and wall clocks."""

    def __init__(self) -> None:
        self.t = 1000.0
        self.wall_t = 1_700_000_000.0

    def __call__(self) -> float:
        return self.t

    def wall(self) -> float:
        return self.wall_t

    def advance(self, s: float) -> None:
        self.t += s
        self.wall_t += s


def budget(kind: str = "binance", **limits: float) -> tuple[RateBudget, Clock]:
    clock = Clock()
    return RateBudget(RateLimits(**limits), kind, clock=clock, wall=clock.wall), clock  # type: ignore[arg-type]


def test_documented_defaults_times_the_share() -> None:
    b, _ = budget()
    assert b.usage() == RateUsage(0, 4800, 0, 40, 0, 128_000, 0)
    m, _ = budget("mexc", budget_share=0.5)
    assert m.usage() == RateUsage(0, 1500, 0, 250, 0, 0, 0)  # MEXC: no daily order limit
    c, _ = budget(weight_per_minute=100, orders_per_10s=10, orders_per_day=1000, budget_share=1.0)
    assert c.usage()[1::2][:3] == (100, 10, 1000)
    tiny, _ = budget(orders_per_10s=1, budget_share=0.1)
    assert tiny.orders_limit_10s == 1  # a share never rounds a limit down to nothing


def test_order_window_slides() -> None:
    b, clock = budget(orders_per_10s=5, budget_share=1.0)
    for _ in range(5):
        assert b.can_send(1, 1)
        b.note_sent(1, 1)
        clock.advance(1.0)
    assert not b.can_send(1, 1) and b.n_refused == 1
    assert b.can_send(0, 1)  # a request that places no order still fits
    clock.advance(5.2)  # the first order (sent 10.2 s before... now 10.2 s old) has left the window
    assert b.usage().orders_10s == 4
    assert b.can_send(1, 1)
    clock.advance(4.0)
    assert b.usage().orders_10s == 0
    assert b.usage().weight_1m == 5  # still inside the minute


def test_weight_and_daily_windows() -> None:
    b, clock = budget(weight_per_minute=10, orders_per_day=3, budget_share=1.0)
    b.note_sent(0, 9)
    assert b.can_send(0, 1) and not b.can_send(0, 2)
    clock.advance(61.0)
    assert b.can_send(0, 10)
    for _ in range(3):
        b.note_sent(1, 1)
        clock.advance(20.0)  # out of the 10 s window, not out of the day
    assert not b.can_send(1, 1)
    clock.advance(86_400.0 - 60.0)  # the first order is a day old: out (buckets may keep it up to 1% longer)
    assert b.usage().orders_1d >= 2
    clock.advance(86_400.0 / 100)
    assert b.usage().orders_1d <= 2 and b.can_send(1, 1)


def test_share_keeps_a_reserve_for_rescue_requests() -> None:
    b, _ = budget(weight_per_minute=100, orders_per_10s=10, budget_share=0.8)
    b.note_sent(8, 80)
    assert not b.can_send(1, 1)  # new orders stop at 80%
    assert b.can_send(0, 20, rescue=True)  # queries and cancels may use the rest
    assert not b.can_send(0, 21, rescue=True)


def test_headers_correct_upward_only() -> None:
    b, clock = budget(budget_share=1.0)
    b.note_sent(1, 1)
    b.note_headers(RateHeaders(5990, 48, 70, None))  # another client on our key used most of it
    u = b.usage()
    assert (u.weight_1m, u.orders_10s, u.orders_1d) == (5990, 48, 70)
    assert b.can_send(2, 10) and not b.can_send(3, 10) and not b.can_send(0, 11)
    b.note_headers(RateHeaders(3, 1, 1, None))  # lower than ours: ours stay (requests still in flight)
    assert b.usage().weight_1m == 5990
    b.note_headers(RateHeaders(None, None, None, None))
    assert b.usage().orders_10s == 48
    clock.advance(10.2)
    assert b.usage().orders_10s == 0 and b.usage().weight_1m == 5990


def test_retry_after_blocks_until_the_deadline() -> None:
    b, clock = budget()
    b.note_retry_after(3.0, banned=False)
    assert not b.can_send(0, 1, rescue=True) and not b.can_send(1, 1)
    assert b.usage().blocked_until_ms_wall == int((clock.wall_t + 3.0) * 1000)
    assert b.n_throttled == 1 and not b.banned
    clock.advance(2.9)
    assert b.blocked()
    b.note_retry_after(0.05, banned=False)  # one ending sooner never shortens the block
    clock.advance(0.2)
    assert b.can_send(1, 1) and b.usage().blocked_until_ms_wall == 0


def test_418_is_a_ban() -> None:
    b, clock = budget()
    b.note_retry_after(120.0, banned=True)
    assert b.banned and b.n_banned == 1 and not b.can_send(0, 1, rescue=True)
    clock.advance(119.0)
    assert b.banned and b.blocked()
    clock.advance(1.0)
    assert not b.blocked() and not b.banned and b.can_send(1, 1)


def test_sliding_count_never_undercounts() -> None:
    w = SlidingCount(10.0)
    for i in range(100):
        w.add(1, i * 0.1)
    # at t=10.0 the event at t=0.0 is exactly a window old: it may still count, never one inside the window
    assert 99 <= w.count(10.0) <= 100
    assert w.count(10.0 + 0.1 + 1e-9) in (98, 99)
    assert w.count(20.2) == 0
    w.raise_to(7, 30.0)
    assert w.count(30.0) == 7
    w.add(0, 30.0)
    w.add(-3, 30.0)
    assert w.count(30.0) == 7
