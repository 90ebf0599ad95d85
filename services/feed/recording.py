"""Recorded market-data sessions: a feed's raw input, append-only, readable after a crash mid-write.

File: the magic line ``DZREC1\\n``, one JSON header line (venue, kind, symbols, feed settings, start
time), then records. Each record is a 20-byte little-endian head — payload length (u32), CRC-32 of the
payload (u32), kind (u8), flags (u8), connection number (u16), receive stamp (monotonic ns, i64) — then
the payload. A reader stops at the first incomplete or corrupt record, so a file cut off by a crash
yields every record written before it.

Kinds: a text or binary WebSocket frame (flag ``LAST_IN_BUFFER`` marks the end of a socket read, so
replay batches exactly as live did), a REST depth snapshot (payload ``SYMBOL\\n`` + body), a connection
opened.
"""

from __future__ import annotations

import json
import os
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple

MAGIC = b"DZREC1\n"
HEAD = struct.Struct("<IIBBHq")

TEXT = 1
BINARY = 2
SNAPSHOT = 3
CONNECTED = 4

LAST_IN_BUFFER = 1

FLUSH_EVERY = 256  # records; a crash loses at most what the OS had not been handed yet


class Record(NamedTuple):
    kind: int
    flags: int
    conn: int
    tick_ns: int
    payload: bytes


class Recorder:
    def __init__(self, path: str | os.PathLike[str], header: dict[str, Any]) -> None:
        self.path = Path(path)
        self._f: BinaryIO = open(self.path, "wb")  # noqa: SIM115 - closed in close()
        self._f.write(MAGIC + json.dumps(header, sort_keys=True).encode() + b"\n")
        self._since_flush = 0
        self.records = 0
        self.bytes = 0

    def write(self, kind: int, payload: bytes, tick_ns: int, conn: int = 0, flags: int = 0) -> None:
        self._f.write(HEAD.pack(len(payload), zlib.crc32(payload), kind, flags, conn, tick_ns))
        self._f.write(payload)
        self.records += 1
        self.bytes += HEAD.size + len(payload)
        self._since_flush += 1
        if self._since_flush >= FLUSH_EVERY:
            self.flush()

    def snapshot(self, symbol: str, body: bytes, tick_ns: int) -> None:
        self.write(SNAPSHOT, symbol.encode() + b"\n" + body, tick_ns)

    def flush(self) -> None:
        self._f.flush()
        self._since_flush = 0

    def close(self) -> None:
        if not self._f.closed:
            self._f.flush()
            os.fsync(self._f.fileno())
            self._f.close()


class Recording:
    """A recorded session: ``header`` and the records, in order; ``truncated_bytes`` after the last good one."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        data = self.path.read_bytes()
        if not data.startswith(MAGIC):
            raise ValueError(f"{self.path}: not a draizer recording (bad magic)")
        end = data.find(b"\n", len(MAGIC))
        if end < 0:
            raise ValueError(f"{self.path}: header line is incomplete")
        self.header: dict[str, Any] = json.loads(data[len(MAGIC) : end])
        self._data = data
        self._start = end + 1
        self.truncated_bytes = 0

    def __iter__(self) -> Iterator[Record]:
        data, pos, size = self._data, self._start, len(self._data)
        while pos + HEAD.size <= size:
            length, crc, kind, flags, conn, tick = HEAD.unpack_from(data, pos)
            body_start = pos + HEAD.size
            payload = data[body_start : body_start + length]
            if len(payload) < length or zlib.crc32(payload) != crc:
                break
            yield Record(kind, flags, conn, tick, payload)
            pos = body_start + length
        self.truncated_bytes = size - pos


def split_snapshot(payload: bytes) -> tuple[str, bytes]:
    symbol, _, body = payload.partition(b"\n")
    return symbol.decode(), body
