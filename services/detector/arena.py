"""Many arrays of one dtype as views into one buffer, so a Numba entry takes a few buffers, not dozens of arrays.

Numba unboxes every array argument on every call (~100 ns each): kernels taking 25–35 arrays paid 2–3 µs of
dispatch before doing any work, per strategy, per drain. The detector's state lives in a few arenas instead;
Python code keeps working on ordinary numpy views (same memory), and the entry (``entry.py``) rebuilds the
views from a layout table inside compiled code, where a view costs a few nanoseconds.

Layout row per slot: ``[arena, offset, d0, d1, d2, d3]`` (unused dimensions are 1).
"""

from __future__ import annotations

import numpy as np
from numba import njit

LAYOUT_COLUMNS = 6


class Arena:
    """Collects array shapes, then allocates one zeroed buffer and hands out views into it."""

    def __init__(self, index: int, dtype: type) -> None:
        self.index = index
        self.dtype = dtype
        self.shapes: list[tuple[int, ...]] = []
        self.buffer = np.zeros(0, dtype=dtype)
        self.views: list[np.ndarray] = []

    def add(self, *shape: int) -> int:
        """Reserve an array of ``shape`` (1 to 4 dimensions); returns its slot number."""
        if not 1 <= len(shape) <= 4 or any(d < 0 for d in shape):
            raise ValueError(f"arena slot shape {shape}: 1 to 4 non-negative dimensions")
        self.shapes.append(tuple(shape))
        return len(self.shapes) - 1

    def allocate(self) -> list[np.ndarray]:
        sizes = [int(np.prod(s)) for s in self.shapes]
        self.buffer = np.zeros(max(1, sum(sizes)), dtype=self.dtype)
        self.views = []
        offset = 0
        for shape, size in zip(self.shapes, sizes, strict=True):
            self.views.append(self.buffer[offset : offset + size].reshape(shape))
            offset += size
        return self.views

    def layout_rows(self) -> np.ndarray:
        rows = np.ones((len(self.shapes), LAYOUT_COLUMNS), dtype=np.int64)
        offset = 0
        for k, shape in enumerate(self.shapes):
            rows[k, 0] = self.index
            rows[k, 1] = offset
            rows[k, 2 : 2 + len(shape)] = shape
            offset += int(np.prod(shape))
        return rows


@njit(cache=True, nogil=True, inline="always")
def view1(buf: np.ndarray, lay: np.ndarray, k: int) -> np.ndarray:
    o = lay[k, 1]
    return buf[o : o + lay[k, 2]]


@njit(cache=True, nogil=True, inline="always")
def view2(buf: np.ndarray, lay: np.ndarray, k: int) -> np.ndarray:
    o = lay[k, 1]
    return buf[o : o + lay[k, 2] * lay[k, 3]].reshape((lay[k, 2], lay[k, 3]))


@njit(cache=True, nogil=True, inline="always")
def view3(buf: np.ndarray, lay: np.ndarray, k: int) -> np.ndarray:
    o = lay[k, 1]
    return buf[o : o + lay[k, 2] * lay[k, 3] * lay[k, 4]].reshape((lay[k, 2], lay[k, 3], lay[k, 4]))


@njit(cache=True, nogil=True, inline="always")
def view4(buf: np.ndarray, lay: np.ndarray, k: int) -> np.ndarray:
    o = lay[k, 1]
    n = lay[k, 2] * lay[k, 3] * lay[k, 4] * lay[k, 5]
    return buf[o : o + n].reshape((lay[k, 2], lay[k, 3], lay[k, 4], lay[k, 5]))
