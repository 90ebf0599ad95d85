"""Where a process's ZeroMQ I/O thread runs.

A hot-path process pinned to a core of its own loses that core to every helper thread that wakes up on it. Each
event it publishes wakes ZeroMQ's I/O thread; ``services.<kind>.io_cpu`` moves that thread (C++, it never holds
the GIL) to another core. Python helper threads (the journal's fsync, risk's state writes) stay with the process:
on a busy other core one could be preempted while holding the GIL, and the hot loop would wait for it.
"""

from __future__ import annotations

_io_cpus: set[int] = set()


def set_io_cpus(cpus: set[int]) -> None:
    """Once at start, before the process creates its ZeroMQ context's first socket."""
    _io_cpus.clear()
    _io_cpus.update(c for c in cpus if c >= 0)


def io_cpus() -> set[int]:
    return set(_io_cpus)
