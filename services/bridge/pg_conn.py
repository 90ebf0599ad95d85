"""Connecting to PostgreSQL: migrate, then a pool whose connections carry the staging tables; DSNs for logs."""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from services.bridge.migrate import migrate
from services.bridge.pg_write import prepare_connection

_KV_PASSWORD = re.compile(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE)  # key=value DSNs
_QUERY_PASSWORD = re.compile(r"((?:^|&)password=)[^&]*", re.IGNORECASE)  # postgresql://…?password=…


def mask_dsn(dsn: str) -> str:
    """The DSN with its password replaced by ``***`` (for logs and messages: never print the secret)."""
    if "://" not in dsn:
        return _KV_PASSWORD.sub(r"\1***", dsn)
    try:
        parts = urlsplit(dsn)
        netloc = parts.netloc
        if parts.password is not None:
            netloc = f"{parts.username or ''}:***@{netloc.rsplit('@', 1)[1]}"
        return urlunsplit(parts._replace(netloc=netloc, query=_QUERY_PASSWORD.sub(r"\1***", parts.query)))
    except ValueError:
        return "<unparseable DSN>"


async def connect(dsn: str, timeout: float, command_timeout: float | None = None) -> asyncpg.Connection:
    return await asyncpg.connect(dsn, timeout=timeout, command_timeout=command_timeout)


async def open_pool(dsn: str, connect_timeout: float, command_timeout: float) -> asyncpg.Pool:
    """Apply pending migrations, then open a pool of at most one connection (the sink writes batches one
    at a time). ``min_size=0``: the pool connects on demand and never tries to restore a floor in the
    background, so an outage is seen, logged and retried in one place, the sink."""
    conn = await connect(dsn, connect_timeout, command_timeout)  # bounds the wait for the migration lock too
    try:
        await migrate(conn)
    finally:
        await conn.close(timeout=connect_timeout)
    pool: asyncpg.Pool = await asyncpg.create_pool(
        dsn,
        min_size=0,
        max_size=1,
        timeout=connect_timeout,
        command_timeout=command_timeout,
        init=prepare_connection,
    )
    return pool
