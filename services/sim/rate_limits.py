"""Request budgets the simulated spot venues enforce, as the venues document them.

Binance (rest-api.md, "LIMITS"): request weight 6000 per minute per IP, reported on every response as
``X-MBX-USED-WEIGHT-1M``; new orders 50 per 10 s and 160000 per day per account, reported on order
responses as ``X-MBX-ORDER-COUNT-10S`` / ``-1D``. Over a limit: HTTP 429 with ``Retry-After`` (seconds) and
``-1003`` (weight) or ``-1015`` (orders). A client that keeps sending before the ``Retry-After`` it was given
is banned: HTTP 418 with ``Retry-After`` (counted as ``banned``). Endpoint weights follow the docs: order 1,
cancel 1, query 4, openOrders 6 with a symbol / 80 without, account 20, myTrades 20, allOrders 20,
exchangeInfo 20, depth by limit.

MEXC (spot v3 docs): 500 requests per 10 s per endpoint; over it, HTTP 429 ``{"code":429,"msg":"Too many
requests"}`` with ``Retry-After``. MEXC documents no ban, so a client that keeps going just gets more 429s.

A ``rate_limit`` order fault makes every request answer 429 for its duration, then the same ban rule.
Windows here start with the first request in them rather than at clock boundaries, so a test's burst never
straddles two windows by chance. The sim's own ``/sim/*`` hooks are never limited.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

from shared.venues.binance.constants import DEPTH_PATH

ORDER_PATH = "/api/v3/order"
LIMITED = "limited"  # a 429
BANNED = "banned"  # a 418 (Binance)
WEIGHT = "weight"
ORDERS_10S = "orders_10s"
ORDERS_1D = "orders_1d"
REQUESTS = "requests"  # MEXC, per endpoint
FAULT = "fault"


@dataclass(frozen=True)
class SimRateLimits:
    """The limits a simulated venue enforces (the documented ones unless a test passes smaller ones)."""

    weight_per_minute: int = 6000
    orders_per_10s: int = 50
    orders_per_day: int = 160_000
    requests_per_endpoint_10s: int = 500  # MEXC


class Refusal(NamedTuple):
    status: int  # 429 or 418
    reason: str  # WEIGHT | ORDERS_10S | ORDERS_1D | REQUESTS | FAULT
    retry_after: int  # seconds


def depth_weight(limit: int) -> int:
    """Binance's request weight of ``GET /api/v3/depth`` by ``limit``."""
    if limit <= 100:
        return 5
    if limit <= 500:
        return 25
    return 50 if limit <= 1000 else 250


_FIXED_WEIGHTS = {
    ("POST", ORDER_PATH): 1,
    ("DELETE", ORDER_PATH): 1,
    ("GET", ORDER_PATH): 4,
    ("DELETE", "/api/v3/openOrders"): 1,
    ("GET", "/api/v3/account"): 20,
    ("GET", "/api/v3/myTrades"): 20,
    ("GET", "/api/v3/allOrders"): 20,
    ("GET", "/api/v3/exchangeInfo"): 20,
    ("GET", "/api/v3/time"): 1,
}


def request_weight(method: str, path: str, query: dict[str, str]) -> int:
    """Binance's documented weight of one request."""
    if path == "/api/v3/openOrders" and method == "GET":
        return 6 if query.get("symbol") else 80
    if path == DEPTH_PATH:
        text = query.get("limit", "")
        return depth_weight(int(text)) if text.isdigit() else 5
    return _FIXED_WEIGHTS.get((method, path), 1)


class Window:
    """A count over ``seconds`` starting with the first request in it."""

    __slots__ = ("count", "limit", "seconds", "start")

    def __init__(self, seconds: float, limit: int) -> None:
        self.seconds = seconds
        self.limit = limit
        self.start = 0.0
        self.count = 0

    def current(self, now: float) -> int:
        if now - self.start >= self.seconds:
            self.start, self.count = now, 0
        return self.count

    def retry_after(self, now: float) -> int:
        return max(1, math.ceil(self.start + self.seconds - now))


class RateGate:
    """Admits or refuses each request of one venue; ``binance`` picks its rules (else MEXC's)."""

    def __init__(
        self, limits: SimRateLimits, *, binance: bool, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limits = limits
        self.binance = binance
        self._clock = clock
        self.weight = Window(60, limits.weight_per_minute)
        self.orders_10s = Window(10, limits.orders_per_10s)
        self.orders_1d = Window(86_400, limits.orders_per_day)
        self._endpoints: dict[tuple[str, str], Window] = {}
        self.fault_until = 0.0  # a rate_limit fault is active until then
        self._told_until = 0.0  # a 429 told the client to wait until then (requests)
        self._orders_told_until = 0.0  # ... (new orders: the account's order limits)
        self.counts = {LIMITED: 0, BANNED: 0}

    def fault(self, seconds: float) -> None:
        self.fault_until = max(self.fault_until, self._clock() + seconds)

    def fault_remaining(self) -> float:
        return max(0.0, self.fault_until - self._clock())

    def admit(self, method: str, path: str, weight: int) -> Refusal | None:
        """Count the request; None if it may proceed, else how it is refused."""
        now = self._clock()
        order = method == "POST" and path == ORDER_PATH
        if self.binance:
            self.weight.current(now)
            self.weight.count += weight
        told = max(self._told_until, self._orders_told_until if order else 0.0)
        if now < told:
            if self.binance:  # it was told to wait: banned until then
                return self._refuse(418, FAULT, told - now, BANNED)
            return self._refuse(429, REQUESTS, told - now, LIMITED)
        if now < self.fault_until:
            self._told_until = self.fault_until
            return self._refuse(429, FAULT, self.fault_until - now, LIMITED)
        if not self.binance:
            key = (method, path)
            window = self._endpoints.get(key)
            if window is None:
                window = self._endpoints[key] = Window(10, self.limits.requests_per_endpoint_10s)
            if window.current(now) >= window.limit:
                return self._told(window, REQUESTS, now)
            window.count += 1
            return None
        if self.weight.count > self.weight.limit:
            return self._told(self.weight, WEIGHT, now)
        if order:
            for window, reason in ((self.orders_10s, ORDERS_10S), (self.orders_1d, ORDERS_1D)):
                if window.current(now) >= window.limit:
                    return self._told(window, reason, now, orders=True)
            self.orders_10s.count += 1
            self.orders_1d.count += 1
        return None

    def _told(self, window: Window, reason: str, now: float, *, orders: bool = False) -> Refusal:
        retry = window.retry_after(now)
        if self.binance:  # MEXC bans nobody: no memory of what it told
            if orders:
                self._orders_told_until = now + retry
            else:
                self._told_until = now + retry
        return self._refuse(429, reason, retry, LIMITED)

    def _refuse(self, status: int, reason: str, seconds: float, counter: str) -> Refusal:
        self.counts[counter] += 1
        return Refusal(status, reason, max(1, math.ceil(seconds)))

    def headers(self, order: bool) -> dict[str, str]:
        """Binance's usage headers (MEXC sends none)."""
        if not self.binance:
            return {}
        now = self._clock()
        out = {"X-MBX-USED-WEIGHT-1M": str(self.weight.current(now))}
        if order:
            out["X-MBX-ORDER-COUNT-10S"] = str(self.orders_10s.current(now))
            out["X-MBX-ORDER-COUNT-1D"] = str(self.orders_1d.current(now))
        return out
