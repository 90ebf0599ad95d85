"""Per-stage latency in the bridge: a rolling window behind P50/P99, and cumulative Prometheus buckets."""

from __future__ import annotations

import numpy as np
from msgspec import Struct

from shared.shm.snapshot import StageLatency

# Prometheus histogram bounds: 1-2.5-5 steps from 1 µs to 1 s.
_BOUNDS_NS = (*(m * 10**e for e in range(2, 8) for m in (10, 25, 50)), 10**9)
BUCKETS_NS = np.array(_BOUNDS_NS, dtype=np.int64)
BUCKETS_S: tuple[float, ...] = tuple(ns / 1e9 for ns in _BOUNDS_NS)


class StageMetrics(Struct, frozen=True):
    buckets: tuple[int, ...]  # cumulative counts per BUCKETS_S bound, then +Inf
    sum_s: float
    count: int


class Stage:
    """One stage: a rolling window for percentiles, cumulative buckets for Prometheus. Samples in ns.

    Samples are buffered in a list and folded into numpy in batches: one event costs one append.
    """

    __slots__ = ("_pending", "_summary", "buckets", "count", "filled", "head", "sum_ns", "window")

    def __init__(self, window: int) -> None:
        self.window = np.zeros(window, dtype=np.int64)
        self.filled = 0
        self.head = 0
        self.buckets = np.zeros(len(BUCKETS_NS) + 1, dtype=np.int64)
        self.count = 0
        self.sum_ns = 0
        self._pending: list[int] = []
        self._summary: StageLatency | None = None

    def add(self, ns: int) -> None:
        self._pending.append(ns)
        if len(self._pending) >= self.window.size:
            self.flush()

    def extend(self, samples: list[int]) -> None:
        self._pending.extend(samples)
        if len(self._pending) >= self.window.size:
            self.flush()

    def flush(self) -> None:
        if not self._pending:
            return
        batch = np.asarray(self._pending, dtype=np.int64)
        self._pending = []
        batch = batch[batch >= 0]
        self.count += batch.size
        self.sum_ns += int(batch.sum())
        # side="left": a sample equal to a bound belongs to that bucket (Prometheus "le")
        self.buckets += np.bincount(np.searchsorted(BUCKETS_NS, batch, side="left"), minlength=self.buckets.size)
        size = self.window.size
        if batch.size >= size:
            self.window[:] = batch[-size:]
            self.head, self.filled = 0, size
        else:
            idx = (self.head + np.arange(batch.size)) % size
            self.window[idx] = batch
            self.head = (self.head + batch.size) % size
            self.filled = min(size, self.filled + batch.size)
        self._summary = None

    def summary(self) -> StageLatency:
        self.flush()
        if self._summary is None:
            if self.filled:
                window = self.window[: self.filled]
                p50, p99 = np.percentile(window, (50, 99))
                self._summary = StageLatency(self.count, float(window.mean()), float(p50), float(p99))
            else:
                self._summary = StageLatency(self.count, 0.0, 0.0, 0.0)
        return self._summary

    def samples(self) -> np.ndarray:
        """The window, oldest first."""
        self.flush()
        if self.filled < self.window.size:
            return self.window[: self.filled].copy()
        return np.concatenate((self.window[self.head :], self.window[: self.head]))

    def metrics(self) -> StageMetrics:
        self.flush()
        return StageMetrics(tuple(int(c) for c in np.cumsum(self.buckets)), self.sum_ns / 1e9, self.count)
