"""Follow an instance's shared memory across bridge restarts: the one way the CLI, `top` and the API read it."""

from __future__ import annotations

import os
from pathlib import Path

from shared.shm.layout import ShmError, WriterInfo
from shared.shm.seqlock import ShmReader
from shared.shm.snapshot import Snapshot


class ShmFollower:
    """Opens the file lazily (a reader may start before the bridge) and drops the reader after any error, so
    a restarted bridge (a new file) is picked up by the next read."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.reader: ShmReader | None = None

    def read(self) -> Snapshot | None:
        """The latest snapshot; None while the writer has not published one. Raises ShmError (ShmMissingError
        when there is no file) and forgets the reader, so the next call opens afresh."""
        try:
            if self.reader is None:
                self.reader = ShmReader(self.path)
            return self.reader.read()
        except ShmError:
            self.close()
            raise

    @property
    def writer(self) -> WriterInfo | None:
        """Who wrote what the last ``read`` returned (None before a successful open)."""
        return self.reader.writer if self.reader is not None else None

    def close(self) -> None:
        reader, self.reader = self.reader, None
        if reader is not None:
            reader.close()
