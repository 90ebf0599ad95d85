"""A service's events, numbered and kept on local disk until the bridge has stored them.

Every event a service publishes gets the next number of that service's sequence (1, 2, 3… across process
lifetimes: a restarted service continues after the last number in its log) and is appended here before it
goes on the PUB socket. PUB/SUB drops what nobody is subscribed to — a restarting bridge, a slow one —
so the socket is only the fast path; the log is the copy the bridge catches up from by sequence number
(``services/bridge/catchup.py``). One ``write()`` per flush puts the records in the page cache, which
survives a kill -9 of the service and costs a few µs; a host crash may lose what the OS had not written yet.

Layout: ``<run_dir>/events/<service>/<first seq, 20 digits>.evl`` segments, each a run of records

    u32 body length | u32 crc32(body) | u64 seq | body = u8 topic length, topic, payload (the event's msgpack)

A writer only appends, so a record torn by a crash is the last of the newest segment; opening cuts it off.
Segments roll over at ``segment_bytes``; a segment is deleted once the bridge has acknowledged (``acked``
file, written by the bridge) every number in it, or — when no bridge ever acknowledges — once the log holds
more than ``retain_bytes`` (counted and logged: older events can then no longer be caught up).
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import logging
import os
import struct
import zlib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

log = logging.getLogger(__name__)

HEADER = struct.Struct("<IIQ")
SUFFIX = ".evl"
ACKED_FILE = "acked"
SESSION_FILE = "session"  # the run (shared/runtime/session.py) that wrote the log last
EPOCH_FILE = "epoch"  # a random number fixed when the log is created: a new log (e.g. a wiped run directory)
# restarts the numbering at 1, and the bridge tells it from the old one by this number, not by guessing
SEGMENT_BYTES = 16 * 1024 * 1024
RETAIN_BYTES = 1024 * 1024 * 1024
MAX_BODY = 64 * 1024 * 1024  # a length beyond this is garbage, not a record


def log_dir(run_dir: Path, service: str) -> Path:
    return run_dir / "events" / service


def _segment_name(first_seq: int) -> str:
    return f"{first_seq:020d}{SUFFIX}"


def segments(directory: Path) -> list[tuple[int, Path]]:
    """(first seq, path) of every segment, oldest first."""
    out = []
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return []
    for name in names:
        if name.endswith(SUFFIX) and name[: -len(SUFFIX)].isdigit():
            out.append((int(name[: -len(SUFFIX)]), directory / name))
    out.sort()
    return out


def scan(data: bytes | memoryview) -> Iterator[tuple[int, int, bytes, bytes]]:
    """(end offset, seq, topic, payload) of each complete, intact record, in order; stops at the first torn or
    corrupt one (only the tail can be torn: a writer never rewrites what it wrote)."""
    view = memoryview(data)
    off, n = 0, len(view)
    while off + HEADER.size <= n:
        length, crc, seq = HEADER.unpack_from(view, off)
        start, end = off + HEADER.size, off + HEADER.size + length
        if length < 1 or length > MAX_BODY or end > n:
            return
        body = view[start:end]
        if zlib.crc32(body) != crc:
            return
        t = body[0]
        if 1 + t > length:
            return
        yield end, seq, bytes(body[1 : 1 + t]), bytes(body[1 + t :])
        off = end


def read_epoch(directory: Path) -> int:
    try:
        return int((directory / EPOCH_FILE).read_text())
    except (OSError, ValueError):
        return 0


def read_acked(directory: Path) -> int:
    try:
        return int((directory / ACKED_FILE).read_text().strip() or 0)
    except (OSError, ValueError):
        return 0


def write_acked(directory: Path, seq: int) -> None:
    """The bridge's acknowledgement: every event up to ``seq`` is stored (atomic replace, no fsync: a lost ack
    only keeps a segment longer)."""
    tmp = directory / f".{ACKED_FILE}.tmp"
    tmp.write_text(str(seq))
    os.replace(tmp, directory / ACKED_FILE)


class EventLog:
    """The writing side, one per service. Not thread-safe: the service's loop thread only."""

    def __init__(
        self,
        directory: Path,
        *,
        segment_bytes: int = SEGMENT_BYTES,
        retain_bytes: int = RETAIN_BYTES,
        write_fn: Callable[[int, bytes], int] = os.write,  # tests pass a disk that refuses
    ) -> None:
        self.directory = directory
        self._write_fn = write_fn
        self.segment_bytes = segment_bytes
        self.retain_bytes = retain_bytes
        self.next_seq = 1
        self.epoch = 0
        self.last_record: dict[bytes, bytes] = {}  # topic -> payload of the last record per topic at open
        self._fd = -1
        self._size = 0
        self.n_written = 0
        self.n_failed = 0  # flushes the disk refused (the events still went to the socket)
        self.n_evicted = 0  # segments deleted before the bridge acknowledged them (retain_bytes exceeded)
        self._failing = False

    # ----- open
    def open(self) -> None:
        """Continue the newest segment after its last intact record (a torn tail is cut off)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        segs = segments(self.directory)
        self.epoch = self._read_or_make_epoch(fresh=not segs)
        if not segs:
            self._open_segment(1)
            return
        first, path = segs[-1]
        data = path.read_bytes()
        end, last_seq = 0, first - 1
        for rec_end, seq, topic, payload in scan(data):
            end, last_seq = rec_end, seq
            self.last_record[topic] = payload
        if end < len(data):
            log.warning("event log %s: cut off %d bytes of a torn record at its end", path, len(data) - end)
            with open(path, "r+b") as f:
                f.truncate(end)
        self.next_seq = last_seq + 1
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
        self._size = end

    def claim(self, session: str) -> bool:
        """Record that ``session`` writes the log now; True when it already did (a restart within the run)."""
        path = self.directory / SESSION_FILE
        try:
            same = path.read_text() == session
        except OSError:
            same = False
        if not same:
            tmp = self.directory / f".{SESSION_FILE}.tmp"
            tmp.write_text(session)
            os.replace(tmp, path)
        return same

    def _read_or_make_epoch(self, fresh: bool) -> int:
        path = self.directory / EPOCH_FILE
        if not fresh:
            with contextlib.suppress(OSError, ValueError):
                return int(path.read_text())
        epoch = int.from_bytes(os.urandom(4), "little") or 1
        tmp = self.directory / f".{EPOCH_FILE}.tmp"
        tmp.write_text(str(epoch))
        os.replace(tmp, path)
        return epoch

    def _open_segment(self, first_seq: int) -> None:
        path = self.directory / _segment_name(first_seq)
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
        self._size = os.fstat(self._fd).st_size

    # ----- write
    def append(self, records: Sequence[tuple[bytes, bytes]]) -> int:
        """Number ``records`` ((topic, payload) each) and append them in one write; the first number given.
        A refused write is counted and logged once per outage; the numbers are used all the same (the events
        still go out on the socket, and a gap the bridge cannot fill is counted there)."""
        first = self.next_seq
        if not records or self._fd < 0:
            self.next_seq += len(records)
            return first
        parts = []
        seq = first
        for topic, payload in records:
            body = bytes((len(topic),)) + topic + payload
            parts.append(HEADER.pack(len(body), zlib.crc32(body), seq))
            parts.append(body)
            seq += 1
        self.next_seq = seq
        data = b"".join(parts)
        try:
            n = self._write_fn(self._fd, data)
            if n != len(data):
                raise OSError(errno.ENOSPC, f"short write ({n} of {len(data)} bytes)")
        except OSError as exc:
            self._refused(exc)
            return first
        self._size += n
        self.n_written += len(records)
        if self._failing:
            self._failing = False
            log.warning("event log %s: writing again", self.directory)
        if self._size >= self.segment_bytes:
            self._roll(seq)
        return first

    def _refused(self, exc: OSError) -> None:
        self.n_failed += 1
        with contextlib.suppress(OSError):  # a partial record would hide every later one: cut back to the last
            os.ftruncate(self._fd, self._size)
        if not self._failing:
            self._failing = True
            log.error("event log %s: cannot write (%s); events still go out live but cannot be caught up",
                      self.directory, exc)

    def _roll(self, next_seq: int) -> None:
        os.close(self._fd)
        self._fd = -1
        self._open_segment(next_seq)
        self._prune()

    def _prune(self) -> None:
        """Delete the segments the bridge has acknowledged; past ``retain_bytes``, the oldest anyway."""
        acked = read_acked(self.directory)
        segs = segments(self.directory)
        sizes = []
        for (first, path), following in itertools.pairwise(segs):
            last = following[0] - 1
            try:
                size = path.stat().st_size
            except FileNotFoundError:
                continue
            sizes.append((first, last, path, size))
        total = sum(s for *_, s in sizes)
        for _first, last, path, size in sizes:  # never the newest segment: it is the one being written
            if last <= acked:
                path.unlink(missing_ok=True)
                total -= size
            elif total > self.retain_bytes:
                path.unlink(missing_ok=True)
                total -= size
                self.n_evicted += 1
                if self.n_evicted == 1:
                    log.error("event log %s: over %d MiB unacknowledged (is the bridge down?); deleting the oldest "
                              "segments: their events can no longer be caught up", self.directory,
                              self.retain_bytes >> 20)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def read_range(directory: Path, first: int, last: int) -> Iterator[tuple[int, bytes, bytes]]:
    """(seq, topic, payload) of the logged events numbered ``first``..``last`` (inclusive) that exist, in order."""
    segs = segments(directory)
    for k, (start, path) in enumerate(segs):
        following = segs[k + 1][0] if k + 1 < len(segs) else None
        if following is not None and following <= first:
            continue  # every number in this segment is before the range
        if start > last:
            return
        try:
            data = path.read_bytes()
        except FileNotFoundError:  # pruned meanwhile
            continue
        for _end, seq, topic, payload in scan(data):
            if seq > last:
                return
            if seq >= first:
                yield seq, topic, payload
