"""The bridge's shared-memory snapshot: one writer (the bridge), lock-free readers (``draizer status``)."""

from __future__ import annotations

from pathlib import Path

from shared.shm.follower import ShmFollower
from shared.shm.layout import Layout, ShmError, ShmLayoutError, ShmMissingError, WriterInfo, session_tag
from shared.shm.seqlock import ShmReader, ShmWriter
from shared.shm.snapshot import (
    CarryRecord,
    FundingTotal,
    OpportunityRecord,
    ServiceHealth,
    Snapshot,
    StageLatency,
    snapshot_json,
)

SHM_DIR = Path("/dev/shm")


def shm_path(instance: str) -> Path:
    return SHM_DIR / f"draizer-{instance}"


__all__ = [
    "CarryRecord",
    "FundingTotal",
    "Layout",
    "OpportunityRecord",
    "ServiceHealth",
    "ShmError",
    "ShmFollower",
    "ShmLayoutError",
    "ShmMissingError",
    "ShmReader",
    "ShmWriter",
    "Snapshot",
    "StageLatency",
    "WriterInfo",
    "session_tag",
    "shm_path",
    "snapshot_json",
]
