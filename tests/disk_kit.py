"""A disk that fills up, for writers that take a ``write_fn``."""

from __future__ import annotations

import errno
import os


class Disk:
    """``os.write`` onto a disk with ``free`` bytes left (None: plenty). A write that does not fit stores what
    fits and returns short, the next one fails with ENOSPC — as a filesystem filling up does."""

    def __init__(self, free: int | None = None) -> None:
        self.free = free
        self.refused = 0  # writes refused while the disk is full

    def __call__(self, fd: int, data: memoryview) -> int:
        if self.free is None:
            return os.write(fd, data)
        if self.free == 0:
            self.refused += 1
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        n = os.write(fd, data[: self.free])
        self.free -= n
        return n
