"""Writing records to PostgreSQL, idempotently: the one path used by the sink, its backfill and
``draizer journal import``.

A batch is one transaction: per table, ``COPY`` the rows into a session-local staging table (binary COPY is
the fastest way in), then ``INSERT INTO t SELECT … FROM stage ON CONFLICT (key) DO NOTHING``. A row whose key
is already there (a replay, a backfill of a batch that committed just before the connection dropped) is
skipped and counted as a duplicate, never inserted twice. The staging tables are ``ON COMMIT DELETE ROWS``.

A table with ``newest`` rankings (carry_positions) is upserted instead: the batch's newest version of each key
(``DISTINCT ON``) replaces the stored row only when it ranks higher. A version that replaces nothing — older,
the same one again, or superseded within its batch — is counted as a duplicate.

A batch refused for its *data* (a value PostgreSQL will not take) is split in halves until the offending
records are isolated; those are returned as rejected and everything else is written. Any other error (the
server went away, a timeout, a missing table) propagates: the caller keeps the batch and retries later.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import asyncpg

from services.bridge.pg_tables import TABLES, Row, Table, to_row
from services.bridge.records import Record

log = logging.getLogger(__name__)

# Refused for what is in the rows, not for the state of the server: splitting the batch finds the culprits.
# (asyncpg's client-side encoding error is a ValueError too.)
DATA_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.exceptions.DataError,  # SQLSTATE class 22
    asyncpg.exceptions.IntegrityConstraintViolationError,  # class 23
    ValueError,
    TypeError,
    OverflowError,
)


@dataclass
class WriteResult:
    inserted: int = 0
    duplicates: int = 0
    rejected: list[tuple[Record, str]] = field(default_factory=list)  # (record, why)

    def add(self, other: WriteResult) -> None:
        self.inserted += other.inserted
        self.duplicates += other.duplicates
        self.rejected.extend(other.rejected)


# Identifiers below come from the fixed TABLES map, never from input; values only travel through COPY.
def _insert_sql(t: Table) -> str:
    cols = ", ".join(t.columns)
    key = ", ".join(t.key)
    if not t.newest:
        return f"INSERT INTO {t.name} ({cols}) SELECT {cols} FROM {t.stage} ON CONFLICT ({key}) DO NOTHING"
    # ON CONFLICT DO UPDATE may touch a row once per statement: only the batch's newest version of a key goes in.
    newest_first = ", ".join(f"{e.format(t=t.stage)} DESC" for e in t.newest)
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in t.columns if c not in t.key)
    new = ", ".join(e.format(t="EXCLUDED") for e in t.newest)
    held = ", ".join(e.format(t=t.name) for e in t.newest)
    return (
        f"INSERT INTO {t.name} ({cols}) SELECT DISTINCT ON ({key}) {cols} FROM {t.stage} ORDER BY {key}, "
        f"{newest_first} ON CONFLICT ({key}) DO UPDATE SET {updates}, recorded_at = now() "
        f"WHERE ROW({new}) > ROW({held})"
    )


_INSERT_SQL = {t.name: _insert_sql(t) for t in TABLES.values()}
_ROW_COUNT = re.compile(r"(\d+)$")


async def prepare_connection(conn: asyncpg.Connection) -> None:
    """Create this session's staging tables (after migrations: they copy the real tables' shape)."""
    for t in TABLES.values():
        await conn.execute(f"CREATE TEMP TABLE {t.stage} (LIKE {t.name} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS")


Item = tuple[Table, Record, Row]


async def write_records(conn: asyncpg.Connection, records: Sequence[Record], timeout: float = 30.0) -> WriteResult:
    """Write ``records`` (any kinds, any order) in one transaction, skipping keys already present."""
    result = WriteResult()
    items: list[Item] = []
    for record in records:
        try:
            table, row = to_row(record)
        except (ValueError, TypeError) as exc:
            result.rejected.append((record, str(exc)))
            continue
        items.append((table, record, row))
    if items:
        result.add(await _write_items(conn, items, timeout))
    return result


async def _write_items(conn: asyncpg.Connection, items: list[Item], timeout: float) -> WriteResult:
    try:
        return await _transaction(conn, items, timeout)
    except DATA_ERRORS as exc:
        if len(items) == 1:
            _table, record, _row = items[0]
            return WriteResult(rejected=[(record, f"{type(exc).__name__}: {exc}")])
    half = len(items) // 2
    first = await _write_items(conn, items[:half], timeout)
    first.add(await _write_items(conn, items[half:], timeout))
    return first


async def _transaction(conn: asyncpg.Connection, items: list[Item], timeout: float) -> WriteResult:
    by_table: dict[str, tuple[Table, list[Row]]] = {}
    for table, _record, row in items:
        by_table.setdefault(table.name, (table, []))[1].append(row)
    result = WriteResult()
    async with conn.transaction():
        for table, rows in by_table.values():
            await conn.copy_records_to_table(table.stage, records=rows, columns=table.columns, timeout=timeout)
            status = await conn.execute(_INSERT_SQL[table.name], timeout=timeout)
            m = _ROW_COUNT.search(status)
            inserted = int(m.group(1)) if m else 0
            result.inserted += inserted
            result.duplicates += len(rows) - inserted
    return result
