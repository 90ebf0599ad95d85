"""One writer, any number of readers, no locks: a seqlock over an mmap'ed file in /dev/shm.

The writer makes the sequence odd, writes the body, makes it even again. A reader takes the sequence,
copies the body, takes the sequence again: equal and even means the copy is one whole snapshot, anything
else means a write overlapped and the reader tries again.

Why Python-level ordering is enough here: the sequence is read and written through a ``memoryview`` cast to
unsigned 64-bit, which CPython turns into one aligned 8-byte load or store (``struct`` with an explicit
byte order would go byte by byte and could tear the counter itself). The body is one ``mmap`` slice
assignment, i.e. one memcpy. Each of these is a separate call into C, executed in program order, and no
compiler moves memory accesses across such opaque calls. On x86-64 (TSO) the CPU keeps stores in program
order as seen by other cores, and loads in order with other loads, so a reader that sees the even sequence
after its copy also saw every byte written before it. A weakly ordered CPU (ARM) would need explicit
barriers, which Python cannot express; the writer refuses to start there rather than publish torn data.
"""

from __future__ import annotations

import fcntl
import mmap
import os
import platform
import time
from pathlib import Path
from types import TracebackType

from shared.shm.layout import (
    NAMES_OFFSET,
    SEQ_OFFSET,
    WRITE_NS_OFFSET,
    Layout,
    ShmError,
    ShmLayoutError,
    ShmMissingError,
    WriterInfo,
)
from shared.shm.snapshot import Snapshot

_ORDERED_CPUS = frozenset({"x86_64", "amd64", "i386", "i686"})
_YIELD_AFTER = 16  # attempts spun before handing the CPU to the writer


def _check_cpu() -> None:
    machine = platform.machine().lower()
    if machine not in _ORDERED_CPUS:
        raise ShmError(f"the shared-memory seqlock relies on x86 store ordering; this CPU is {machine}")


def _words(mm: mmap.mmap) -> memoryview:
    """[0] the sequence, [1] the last write's monotonic ns: aligned 64-bit words, one access each."""
    return memoryview(mm)[SEQ_OFFSET : WRITE_NS_OFFSET + 8].cast("Q")


class ShmWriter:
    """The single writer of one shared-memory file. A second live writer of the same path is refused.

    The header names the writer (pid, start time, ``session``: the run it belongs to), and the writer holds an
    exclusive flock on the file for as long as it lives, which is how a reader tells a live writer from a dead
    one (a pid can be reused; a lock goes with its process)."""

    def __init__(self, path: str | os.PathLike[str], layout: Layout, session: str = "") -> None:
        _check_cpu()
        self.path = Path(path)
        self.layout = layout
        self.writer = WriterInfo(os.getpid(), time.time_ns() // 1_000_000, session)
        self._refuse_if_owned()
        # Build the file aside and rename it into place, so a reader never maps a half-written header.
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # held for our lifetime: "this file has a writer"
            os.ftruncate(fd, layout.total_size)
            self._mm = mmap.mmap(fd, layout.total_size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
            self._mm[: layout.header_size] = layout.pack_header(self.writer)
            os.replace(tmp, self.path)
        except BaseException:
            os.close(fd)
            tmp.unlink(missing_ok=True)
            raise
        self._fd = fd
        self._words = _words(self._mm)
        self._body = slice(layout.header_size, layout.header_size + layout.body_size)
        self.seq = 0

    def _refuse_if_owned(self) -> None:
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ShmError(f"{self.path} already has a live writer") from None
        finally:
            os.close(fd)

    def publish(self, snapshot: Snapshot) -> int:
        """Make ``snapshot`` the current one; returns the new (even) sequence number."""
        body = self.layout.pack_body(snapshot)  # packed before the window opens: readers retry only briefly
        words = self._words
        words[0] = self.seq + 1
        words[1] = time.monotonic_ns()
        self._mm[self._body] = body
        self.seq += 2
        words[0] = self.seq
        return self.seq

    def close(self, unlink: bool = False) -> None:
        if self._mm.closed:
            return
        self._words.release()
        self._mm.close()
        os.close(self._fd)
        if unlink:
            self.path.unlink(missing_ok=True)

    def __enter__(self) -> ShmWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class ShmReader:
    """Reads consistent snapshots of one shared-memory file; remaps it when a new writer replaced it."""

    def __init__(self, path: str | os.PathLike[str], max_attempts: int = 100_000) -> None:
        self.path = Path(path)
        self.max_attempts = max_attempts
        self.retries = 0  # reads that overlapped a write and were taken again
        self.seq = 0
        self.write_ns = 0
        self._open()

    def _open(self) -> None:
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            raise ShmMissingError(f"no shared memory at {self.path}") from None
        try:
            st = os.fstat(fd)
            if st.st_size < NAMES_OFFSET:
                raise ShmLayoutError(f"{self.path}: too small for a draizer header ({st.st_size} bytes)")
            mm = mmap.mmap(fd, st.st_size, mmap.MAP_SHARED, mmap.PROT_READ)
        finally:
            os.close(fd)
        try:
            self.layout, self.writer = Layout.from_header(mm[: min(st.st_size, 1 << 20)], str(self.path))
            if st.st_size < self.layout.total_size:
                raise ShmLayoutError(f"{self.path}: {st.st_size} bytes, the layout needs {self.layout.total_size}")
        except BaseException:
            mm.close()
            raise
        self._inode = st.st_ino
        self._mm = mm
        self._words = _words(mm)
        self._body = slice(self.layout.header_size, self.layout.header_size + self.layout.body_size)

    def _reopen_if_replaced(self) -> None:
        try:
            inode = os.stat(self.path).st_ino
        except FileNotFoundError:
            return  # the writer went away: its last snapshot stays readable
        if inode != self._inode:
            self.close()
            self._open()

    def read(self) -> Snapshot | None:
        """The latest snapshot, or None if the writer has not published one yet."""
        self._reopen_if_replaced()
        words, mm, body = self._words, self._mm, self._body
        seq = 0
        for attempt in range(self.max_attempts):
            seq = words[0]
            if not seq & 1:
                data = mm[body]
                write_ns = words[1]
                if words[0] == seq:
                    if seq == 0:
                        return None
                    self.seq, self.write_ns = seq, write_ns
                    return self.layout.unpack_body(data)
            self.retries += 1
            if attempt >= _YIELD_AFTER:
                os.sched_yield()
        why = "stuck mid-write (odd sequence): the writer died while publishing" if seq & 1 else "kept changing"
        raise ShmError(
            f"{self.path}: no consistent snapshot in {self.max_attempts} attempts; writer pid {self.writer_pid} {why}"
        )

    @property
    def writer_pid(self) -> int:
        return self.writer.pid

    def writer_alive(self) -> bool:
        """The writer of the file this reader maps still runs: it holds its lock on the file. A file replaced
        since (a new writer) means the old writer is gone: the next ``read`` maps the new one."""
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            return False
        try:
            if os.fstat(fd).st_ino != self._inode:
                return False
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return True  # the writer's exclusive lock
            except OSError:  # no flock here (not /dev/shm): the pid is the best there is
                return _pid_alive(self.writer.pid)
            fcntl.flock(fd, fcntl.LOCK_UN)
            return False
        finally:
            os.close(fd)

    def close(self) -> None:
        if self._mm.closed:
            return
        self._words.release()
        self._mm.close()

    def __enter__(self) -> ShmReader:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True
