"""Recorded market-data sessions: a feed's raw input, append-only, readable after a crash mid-write.

File: a magic line, one JSON header line, then records. A reader stops at the first incomplete or corrupt
record, so a file cut off by a crash yields every record written before it.

Version 2 (``DZREC2\\n``, written now). Header: ``"version": 2``, the venue, kind, symbols and feed settings,
``started_unix_ns`` and ``started_monotonic_ns`` (the wall clock and the monotonic clock read together at the
start: a receive stamp ``t`` happened at wall time ``started_unix_ns + t - started_monotonic_ns``), and
``rules``: the venue's symbol rules at record time, ``{config symbol name: {"tick", "step", "min_qty",
"min_notional": exact decimal text, "price_decimals", "qty_decimals": int}}`` (``{}`` when the venue's
exchangeInfo could not be read). Each record is a 28-byte little-endian head — payload length (u32),
CRC-32 (u32) of the rest of the head and the payload, kind (u8), flags (u8), connection number (u16), receive
stamp (monotonic ns, i64), the venue's own event time (ms, i64; 0 when the frame carries none) — then the
payload.

Version 1 (``DZREC1\\n``, read only): a 20-byte head without the event time, its CRC over the payload alone.
Its records read with ``event_ms`` 0.

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

MAGIC_V1 = b"DZREC1\n"
MAGIC_V2 = b"DZREC2\n"
MAGIC = MAGIC_V2  # what the recorder writes
VERSION = 2
MAGIC_PREFIX = b"DZREC"
HEAD_V1 = struct.Struct("<IIBBHq")
HEAD_V2 = struct.Struct("<IIBBHqq")
HEAD = HEAD_V2
# The part of a v2 head after length and CRC: the CRC covers it, so a flipped stamp is caught like a flipped payload.
_HEAD_V2_TAIL = struct.Struct("<BBHqq")
_CRC_END = 8  # length (u32) and CRC (u32) lead the head
_I64_MIN, _I64_MAX = -(2**63), 2**63 - 1

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
    event_ms: int = 0  # the venue's event time (ms since the epoch, venue clock); 0: none sent, or a v1 file


class Recorder:
    """Writes version 2. ``header`` is stored as given, with ``"version": 2`` added."""

    def __init__(self, path: str | os.PathLike[str], header: dict[str, Any]) -> None:
        self.path = Path(path)
        self._f: BinaryIO = open(self.path, "wb")  # noqa: SIM115 - closed in close()
        header = {**header, "version": VERSION}
        self._f.write(MAGIC_V2 + json.dumps(header, sort_keys=True).encode() + b"\n")
        self._since_flush = 0
        self.records = 0
        self.bytes = 0

    def write(self, kind: int, payload: bytes, tick_ns: int, conn: int = 0, flags: int = 0,
              event_ms: int = 0) -> None:
        if not _I64_MIN <= event_ms <= _I64_MAX:  # a venue's absurd stamp must not stop the recording: none kept
            event_ms = 0
        tail = _HEAD_V2_TAIL.pack(kind, flags, conn, tick_ns, event_ms)
        self._f.write(struct.pack("<II", len(payload), zlib.crc32(payload, zlib.crc32(tail))) + tail)
        self._f.write(payload)
        self.records += 1
        self.bytes += HEAD_V2.size + len(payload)
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
    """A recorded session (either version): ``header``, ``version`` and the records, in order;
    ``truncated_bytes`` after the last good one (known once iterated)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        data = self.path.read_bytes()
        magic = data[: len(MAGIC_V2)]
        if magic == MAGIC_V2:
            self.version = 2
        elif magic == MAGIC_V1:
            self.version = 1
        elif magic.startswith(MAGIC_PREFIX) and magic.endswith(b"\n"):
            raise ValueError(f"{self.path}: recording format {magic[len(MAGIC_PREFIX):-1].decode(errors='replace')!r}"
                             " is not one this draizer reads (1, 2)")
        else:
            raise ValueError(f"{self.path}: not a draizer recording (bad magic)")
        end = data.find(b"\n", len(MAGIC_V2))
        if end < 0:
            raise ValueError(f"{self.path}: header line is incomplete")
        try:
            header = json.loads(data[len(MAGIC_V2) : end])
        except ValueError as exc:
            raise ValueError(f"{self.path}: unreadable header line ({exc})") from None
        if not isinstance(header, dict):
            raise ValueError(f"{self.path}: the header line is not a JSON object")
        self.header: dict[str, Any] = header
        self._data = data
        self._start = end + 1
        self.truncated_bytes = 0

    def __iter__(self) -> Iterator[Record]:
        return self._v2() if self.version == 2 else self._v1()

    def _v1(self) -> Iterator[Record]:
        data, pos, size = self._data, self._start, len(self._data)
        while pos + HEAD_V1.size <= size:
            length, crc, kind, flags, conn, tick = HEAD_V1.unpack_from(data, pos)
            body_start = pos + HEAD_V1.size
            payload = data[body_start : body_start + length]
            if len(payload) < length or zlib.crc32(payload) != crc:
                break
            yield Record(kind, flags, conn, tick, payload)
            pos = body_start + length
        self.truncated_bytes = size - pos

    def _v2(self) -> Iterator[Record]:
        data, pos, size = self._data, self._start, len(self._data)
        while pos + HEAD_V2.size <= size:
            length, crc, kind, flags, conn, tick, event_ms = HEAD_V2.unpack_from(data, pos)
            body_start = pos + HEAD_V2.size
            payload = data[body_start : body_start + length]
            if len(payload) < length or zlib.crc32(payload, zlib.crc32(data[pos + _CRC_END : body_start])) != crc:
                break
            yield Record(kind, flags, conn, tick, payload, event_ms)
            pos = body_start + length
        self.truncated_bytes = size - pos


def split_snapshot(payload: bytes) -> tuple[str, bytes]:
    symbol, _, body = payload.partition(b"\n")
    return symbol.decode(), body
