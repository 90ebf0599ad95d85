"""One venue's request budget: local sliding counts, corrected by the venue's own usage headers.

Limits are the config's ``RateLimits`` (0 = the venue's documented limit) times ``budget_share``: new
orders stop at that share, so a burst never meets the venue's 429. Rescue traffic (queries, cancels,
account reads) may use the reserve up to the venue's full limit. After a 429 or 418 nothing is sent
until Retry-After has passed (a client that keeps sending after a 429 gets banned: 418). Pure logic:
time comes from injectable clocks, so tests move it by hand.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from typing import NamedTuple

from shared.config import RateLimits
from shared.venues import documented_limits
from shared.venues.common import RateHeaders

BUCKETS_PER_WINDOW = 100  # a count leaves the window at most 1% of the window late: never early
MINUTE_S = 60.0
TEN_S = 10.0
DAY_S = 86_400.0


class RateUsage(NamedTuple):
    weight_1m: int
    weight_limit: int
    orders_10s: int
    orders_limit_10s: int
    orders_1d: int
    orders_limit_1d: int  # 0: the venue sets no daily limit
    blocked_until_ms_wall: int  # 0: not blocked


class SlidingCount:
    """Events in the last ``window_s``, kept in ``BUCKETS_PER_WINDOW`` buckets. A bucket is dropped only
    once all of it is older than the window, so the count errs high (safe), never low."""

    def __init__(self, window_s: float) -> None:
        self.window_s = window_s
        self.bucket_s = window_s / BUCKETS_PER_WINDOW
        self._buckets: deque[list[int]] = deque()  # [bucket number, count]
        self._total = 0

    def _expire(self, now: float) -> None:
        oldest_live = math.floor((now - self.window_s) / self.bucket_s)
        while self._buckets and self._buckets[0][0] < oldest_live:
            self._total -= self._buckets.popleft()[1]

    def add(self, n: int, now: float) -> None:
        if n <= 0:
            return
        self._expire(now)
        b = math.floor(now / self.bucket_s)
        if self._buckets and self._buckets[-1][0] == b:
            self._buckets[-1][1] += n
        else:
            self._buckets.append([b, n])
        self._total += n

    def count(self, now: float) -> int:
        self._expire(now)
        return self._total

    def raise_to(self, value: int, now: float) -> None:
        """The venue counted ``value``: never report less than that."""
        missing = value - self.count(now)
        if missing > 0:
            self.add(missing, now)


def _limits(configured: int, documented: int, share: float) -> tuple[int, int]:
    """The venue's limit (the config's, else the documented one; 0: no limit) and our share of it (>= 1)."""
    full = configured or documented
    return full, (max(1, int(full * share)) if full else 0)


class RateBudget:
    def __init__(
        self,
        limits: RateLimits,
        kind: str,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        doc = documented_limits(kind)
        self.kind = kind
        self._clock = clock
        self._wall = wall
        share = limits.budget_share
        self.weight_full, self.weight_limit = _limits(limits.weight_per_minute, doc.weight_per_minute, share)
        self.orders_full_10s, self.orders_limit_10s = _limits(limits.orders_per_10s, doc.orders_per_10s, share)
        self.orders_full_1d, self.orders_limit_1d = _limits(limits.orders_per_day, doc.orders_per_day, share)
        self._weight = SlidingCount(MINUTE_S)
        self._orders_10s = SlidingCount(TEN_S)
        self._orders_1d = SlidingCount(DAY_S)
        self.blocked_until = 0.0  # monotonic seconds
        self.banned = False  # the last block came with HTTP 418 (the venue banned us for a while)
        self.n_refused = 0  # requests we did not send because the budget could not carry them
        self.n_throttled = 0  # 429 answers
        self.n_banned = 0  # 418 answers

    def blocked(self) -> bool:
        if self.blocked_until and self._clock() >= self.blocked_until:
            self.blocked_until = 0.0
            self.banned = False
        return self.blocked_until > 0

    def can_send(self, orders: int, weight: int, *, rescue: bool = False) -> bool:
        """Would ``orders`` new orders and ``weight`` request weight fit now? New orders get our share of
        the venue's limits; ``rescue`` requests (queries, cancels) may also use the reserve above it."""
        if self.blocked():
            self.n_refused += 1
            return False
        now = self._clock()
        w_cap = self.weight_full if rescue else self.weight_limit
        fits = not w_cap or self._weight.count(now) + weight <= w_cap
        if orders:
            o10 = self.orders_full_10s if rescue else self.orders_limit_10s
            o1d = self.orders_full_1d if rescue else self.orders_limit_1d
            fits = fits and (not o10 or self._orders_10s.count(now) + orders <= o10)
            fits = fits and (not o1d or self._orders_1d.count(now) + orders <= o1d)
        if not fits:
            self.n_refused += 1
        return fits

    def note_sent(self, orders: int, weight: int) -> None:
        now = self._clock()
        self._weight.add(weight, now)
        self._orders_10s.add(orders, now)
        self._orders_1d.add(orders, now)

    def note_headers(self, headers: RateHeaders) -> None:
        """The venue's counts are the truth when they exceed ours (another client on the same key, or its
        fixed windows); ours stay when they are higher (requests still in flight)."""
        now = self._clock()
        if headers.weight_1m is not None:
            self._weight.raise_to(headers.weight_1m, now)
        if headers.orders_10s is not None:
            self._orders_10s.raise_to(headers.orders_10s, now)
        if headers.orders_1d is not None:
            self._orders_1d.raise_to(headers.orders_1d, now)

    def note_retry_after(self, seconds: float, banned: bool) -> None:
        """A 429 (``banned`` False) or 418 (True): send nothing for ``seconds``."""
        if banned:
            self.n_banned += 1
            self.banned = True
        else:
            self.n_throttled += 1
        until = self._clock() + max(0.0, seconds)
        self.blocked_until = max(self.blocked_until, until)

    def usage(self) -> RateUsage:
        now = self._clock()
        blocked_ms = 0
        if self.blocked():
            blocked_ms = int((self._wall() + (self.blocked_until - now)) * 1000)
        return RateUsage(
            self._weight.count(now), self.weight_limit,
            self._orders_10s.count(now), self.orders_limit_10s,
            self._orders_1d.count(now), self.orders_limit_1d,
            blocked_ms,
        )
