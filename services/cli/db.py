"""`draizer db migrate|status [--config FILE]`: draizer's SQL migrations on the PostgreSQL the config names.

The DSN comes from the environment variable named by ``sinks.postgres_dsn_env`` (default
``DRAIZER_POSTGRES_DSN``), never from a file or the command line. The bridge applies the same migrations
when it connects; this command is for operators who migrate before a deploy, or want to see the state.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

import asyncpg

from services.bridge.migrate import load_migrations, migrate, state
from services.bridge.pg_conn import connect, mask_dsn
from services.bridge.sinks import secret_from_env
from shared.config import Config, default_config_path, load_config
from shared.errors import ConfigError

CONNECT_TIMEOUT_S = 10.0


def dsn_from_config(cfg: Config) -> str:
    var = cfg.sinks.postgres_dsn_env
    dsn = secret_from_env(var)
    if not dsn:
        if not var:
            raise ConfigError("sinks.postgres_dsn_env is empty: no PostgreSQL is configured")
        raise ConfigError(
            f"${var} is not set: export the PostgreSQL DSN there "
            f"(e.g. postgresql://draizer:PASSWORD@127.0.0.1:5432/draizer; sinks.postgres_dsn_env names the variable)"
        )
    return dsn


async def open_connection(dsn: str) -> asyncpg.Connection:
    """Connect or raise ConfigError naming the (masked) DSN and the reason."""
    try:
        return await connect(dsn, CONNECT_TIMEOUT_S)
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise ConfigError(f"cannot connect to {mask_dsn(dsn)}: {type(exc).__name__}: {exc}") from None


async def _migrate(dsn: str) -> int:
    conn = await open_connection(dsn)
    try:
        applied = await migrate(conn)
        st = await state(conn)
    finally:
        await conn.close()
    for m in applied:
        print(f"applied {m.version:03d}_{m.name}")
    print(f"{mask_dsn(dsn)}: schema at version {max(st.applied, default=0):03d} ({len(applied)} applied now)")
    return 0


async def _status(dsn: str) -> int:
    conn = await open_connection(dsn)
    try:
        st = await state(conn)
    finally:
        await conn.close()
    for m in load_migrations():
        mark = "applied" if m.version in st.applied else "pending"
        if m.version in st.changed:
            mark = "applied, file changed since"
        print(f"{m.version:03d}_{m.name}: {mark}")
    print(f"{mask_dsn(dsn)}: {len(st.applied)} applied, {len(st.pending)} pending")
    return 1 if st.pending else 0


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="draizer db", description=__doc__.splitlines()[0])
    p.add_argument(
        "action", choices=("migrate", "status"), help="migrate: apply pending; status: list (exit 1 if pending)"
    )
    p.add_argument("--config", default=str(default_config_path()), help="config file (names the DSN's variable)")
    args = p.parse_args(argv)
    dsn = dsn_from_config(load_config(args.config))
    run = _migrate if args.action == "migrate" else _status
    try:
        return asyncio.run(run(dsn))
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        print(f"draizer db: {mask_dsn(dsn)}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
