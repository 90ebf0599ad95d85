"""The bridge's external sinks behind one interface, and the choice of which ones run.

A sink takes records without blocking (``submit`` only queues) and does its I/O in its own task, so a slow
or dead PostgreSQL or Redis never holds up the bridge's event loop, let alone the hot path upstream.

Which sinks run follows from the config and the environment:
- PostgreSQL when ``sinks.postgres_dsn_env`` names a set variable; it spools to the journal directory while
  the database is unreachable and backfills when it returns;
- otherwise the local append-only journal (the embedded default: no external service needed);
- Redis, in addition, when ``sinks.redis_url_env`` names a set variable.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol

from services.bridge.records import Record
from shared.config import Config


class Sink(Protocol):
    name: str  # short, used as the prefix of its counters ("postgres", "journal", "redis")

    async def start(self) -> None:
        """Open what it needs; must not fail because the service behind it is down (retry inside)."""

    def submit(self, record: Record) -> None:
        """Queue one record; never blocks, never raises."""

    async def stop(self) -> None:
        """Write out everything queued (or spool it), then close."""

    def counters(self) -> dict[str, int]:
        """Cumulative counts: written, failed, spooled, backfilled, dropped… whatever the sink has."""


def journal_dir(cfg: Config, run_dir: Path) -> Path:
    return Path(cfg.sinks.journal_dir) if cfg.sinks.journal_dir else run_dir / "journal"


def secret_from_env(var: str) -> str:
    """The value of the environment variable named in the config ('' when unnamed or unset)."""
    return os.environ.get(var, "") if var else ""


def build_sinks(cfg: Config, run_dir: Path) -> list[Sink]:
    sinks: list[Sink] = []
    dsn = secret_from_env(cfg.sinks.postgres_dsn_env)
    if dsn:
        from services.bridge.postgres_sink import PostgresSink

        sinks.append(PostgresSink(dsn, cfg.sinks, journal_dir(cfg, run_dir)))
    else:
        from services.bridge.journal import JournalSink

        sinks.append(JournalSink(journal_dir(cfg, run_dir), cfg.sinks))
    url = secret_from_env(cfg.sinks.redis_url_env)
    if url:
        from services.bridge.redis_sink import RedisSink

        sinks.append(RedisSink(url, cfg.sinks))
    return sinks
