"""Durable file-system steps shared by every writer that must survive a host crash (journals, spools, state)."""

from __future__ import annotations

import os
from pathlib import Path


def fsync_dir(directory: Path) -> None:
    """Make a created, renamed or removed directory entry durable: without it a crash may forget the file
    exists (or that it was removed), even when the file's own data was synced."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
