"""The bridge's checkpoint: where it stands in every source's event sequence, and its counts at that point.

Clone-pattern state (zguide ch. 5): a snapshot plus the sequence number it reflects. After a restart the
bridge restores the snapshot and replays each source's event log from there:

- ``applied[src]``: the last event of ``src`` folded into ``totals`` — events up to it are not counted again;
- ``stored[src]``: the last event of ``src`` whose record the durable sink (journal or PostgreSQL) has kept —
  records up to it are not written again. For the journal, ``journal_position`` says where it stood, and the
  records written after it (the checkpoint is taken every half second) are scanned at start;
- ``epochs[src]``: the source's log epoch; a different one is a new log, numbered from 1 again;
- ``session``: the run (``shared/runtime/session.py``) the totals count. A new run in the same run directory
  starts its counts from zero, as every service's counters do, but keeps the positions: what the previous run's
  records are is stored already.

One small JSON file, replaced atomically (no fsync: a process kill keeps the page cache; a host crash may
return an older checkpoint, which only makes the replay longer — and the journal scan still prevents
duplicates in the journal).
"""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path

import msgspec

from services.bridge.state import Totals

log = logging.getLogger(__name__)

FILE_NAME = "checkpoint.json"


class Checkpoint(msgspec.Struct):
    applied: dict[str, int] = {}
    stored: dict[str, int] = {}
    epochs: dict[str, int] = {}
    journal_position: tuple[str, int] | None = None
    totals: Totals = msgspec.field(default_factory=Totals)
    session: str = ""


def checkpoint_path(run_dir: Path) -> Path:
    return run_dir / "bridge" / FILE_NAME


def load(path: Path) -> Checkpoint:
    """The last checkpoint; an empty one when there is none, or (logged) when it cannot be read."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return Checkpoint()
    try:
        return msgspec.json.decode(data, type=Checkpoint)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        log.error("bridge checkpoint %s unreadable (%s): replaying every source's log from its start", path, exc)
        return Checkpoint()


def for_session(cp: Checkpoint, session: str) -> Checkpoint:
    """The checkpoint a bridge of ``session`` continues: the same, or with zero totals for a new run."""
    if cp.session != session:
        if cp.session:
            log.info("bridge checkpoint of run %s: run %s counts from zero", cp.session, session)
        cp.totals, cp.session = Totals(), session
    return cp


def save(path: Path, cp: Checkpoint) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_bytes(msgspec.json.encode(cp))
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
