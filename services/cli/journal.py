"""`draizer journal import FILE|DIR ... [--config FILE]`: load journal (and spool) files into PostgreSQL.

The same idempotent path as the bridge's PostgreSQL sink (COPY into staging, INSERT … ON CONFLICT DO NOTHING,
one transaction per batch), so importing a file twice, or a file whose records already arrived live, adds
nothing. A directory stands for its journal files and those of its ``spool/`` folder. Torn last lines
(a crash mid-write) are skipped and counted. Exit status 1 when PostgreSQL refused some records.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from itertools import islice
from pathlib import Path

import asyncpg

from services.bridge.journal import ReadStats, expand_paths, read_journal
from services.bridge.migrate import migrate
from services.bridge.pg_conn import mask_dsn
from services.bridge.pg_write import WriteResult, prepare_connection, write_records
from services.cli.db import dsn_from_config, open_connection
from shared.config import default_config_path, load_config
from shared.errors import ConfigError

WRITE_TIMEOUT_S = 60.0


def _line(name: str, read: ReadStats, written: WriteResult) -> str:
    return (
        f"{name}: read {read.records}, inserted {written.inserted}, duplicates {written.duplicates}, "
        f"rejected {len(written.rejected)}, torn {read.torn}, bad {read.bad}"
    )


async def import_files(dsn: str, files: list[Path], batch_rows: int) -> tuple[ReadStats, WriteResult]:
    conn = await open_connection(dsn)
    total_read, total_written = ReadStats(), WriteResult()
    try:
        await migrate(conn)
        await prepare_connection(conn)
        for path in files:
            read, written = ReadStats(), WriteResult()
            records = read_journal(path, read)
            while batch := list(islice(records, batch_rows)):
                written.add(await write_records(conn, batch, WRITE_TIMEOUT_S))
            for record, why in written.rejected[:5]:
                print(f"  rejected {record.kind} {record.key}: {why}", file=sys.stderr)
            print(_line(str(path), read, written))
            total_read.add(read)
            total_written.add(written)
    finally:
        await conn.close()
    return total_read, total_written


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="draizer journal", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="action", required=True)
    imp = sub.add_parser("import", help="load journal/spool files into PostgreSQL, idempotently")
    imp.add_argument("paths", nargs="+", type=Path, metavar="FILE", help="journal files or directories")
    imp.add_argument("--config", default=str(default_config_path()), help="config file (names the DSN's variable)")
    args = p.parse_args(argv)
    cfg = load_config(args.config)
    missing = [str(x) for x in args.paths if not x.exists()]
    if missing:
        raise ConfigError(f"no such file or directory: {', '.join(missing)}")
    files = expand_paths(args.paths)
    dsn = dsn_from_config(cfg)
    try:
        read, written = asyncio.run(import_files(dsn, files, cfg.sinks.batch_max_rows))
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        # Whatever committed before stays committed; running the same import again finishes the job.
        print(f"draizer journal: import stopped: {mask_dsn(dsn)}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(_line(f"total ({len(files)} files)", read, written))
    return 1 if written.rejected else 0
