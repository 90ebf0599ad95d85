"""What the API reads and whom it asks: the bridge's shared memory, and the services' control sockets."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, NamedTuple

from shared.runtime.control_client import ControlError, request
from shared.shm import ShmError, ShmFollower, ShmMissingError, snapshot_json

CONTROL_TIMEOUT_S = 3.0


class Unavailable(Exception):
    """What the API needs is not there (no shared memory yet, a service not answering): HTTP 503."""


class Refused(Exception):
    """A service answered a command with an error: HTTP 400 with its text."""


class ShmView(NamedTuple):
    seq: int  # the seqlock sequence of the snapshot read: two reads with the same seq saw the same data
    data: dict[str, Any]  # snapshot_json(), exactly what `draizer status --json` prints
    writer_pid: int
    writer_alive: bool


class ShmSource:
    """Reads the latest snapshot through a ``ShmFollower`` (lazy open, reopened after a bridge restart)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._follower = ShmFollower(path)

    def read(self) -> ShmView:
        try:
            snap = self._follower.read()
        except ShmMissingError:
            raise Unavailable(f"no shared memory at {self.path}: is the bridge running?") from None
        except ShmError as exc:
            raise Unavailable(str(exc)) from None
        reader = self._follower.reader
        assert reader is not None
        if snap is None:
            raise Unavailable(f"the bridge (pid {reader.writer_pid}) has not published a snapshot yet")
        return ShmView(reader.seq, snapshot_json(snap, time.monotonic_ns()), reader.writer_pid, reader.writer_alive())

    def close(self) -> None:
        self._follower.close()


class Controls:
    """Commands to services over their control sockets (blocking: call from a worker thread)."""

    def __init__(self, endpoint_of: dict[str, str], timeout_s: float = CONTROL_TIMEOUT_S) -> None:
        self.endpoint_of = endpoint_of  # service name -> control endpoint
        self.timeout_s = timeout_s

    def ask(self, service: str, cmd: str, args: dict[str, Any] | None = None) -> dict[str, Any]:
        try:
            reply = request(self.endpoint_of[service], cmd, args, self.timeout_s)
        except ControlError as exc:
            raise Unavailable(f"{service} is not answering: {exc}") from None
        if not reply.ok:
            raise Refused(f"{service} refused {cmd!r}: {reply.error}")
        return dict(reply.data)
