"""Numbered SQL migrations: ``migrations/NNN_name.sql``, applied in order, each in its own transaction.

Applied versions are recorded in ``schema_migrations`` (with a checksum of the file as applied), so a re-run
applies nothing. A session advisory lock serialises migrators: two bridges starting at once, or a bridge and
``draizer db migrate``, never race to create the same table. The PostgreSQL sink runs this on every
(re)connect; ``draizer db migrate`` does the same for operators who prefer to migrate before a deploy.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import asyncpg

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
# pg_advisory_lock takes a bigint; any constant unique to draizer will do ("draizer" in ASCII).
LOCK_KEY = 0x647261697A6572
_NAME = re.compile(r"^(\d{3})_([a-z0-9_]+)\.sql$")

CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    checksum   text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def load_migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    found: list[Migration] = []
    for path in sorted(directory.glob("*.sql")):
        m = _NAME.match(path.name)
        if m is None:
            raise ValueError(f"{path.name}: migration files are named NNN_lowercase_name.sql")
        found.append(Migration(int(m.group(1)), m.group(2), path.read_text()))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise ValueError(f"{directory}: two migrations share a version number: {versions}")
    return found


@dataclass(frozen=True)
class MigrationState:
    applied: dict[int, str]  # version -> checksum recorded when it was applied
    pending: list[Migration]
    changed: list[int]  # applied versions whose file has changed since (never re-applied: add a new one)


async def state(conn: asyncpg.Connection, migrations: list[Migration] | None = None) -> MigrationState:
    migrations = load_migrations() if migrations is None else migrations
    exists = await conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL")
    rows = await conn.fetch("SELECT version, checksum FROM schema_migrations") if exists else []
    applied = {int(r["version"]): str(r["checksum"]) for r in rows}
    pending = [m for m in migrations if m.version not in applied]
    changed = [m.version for m in migrations if m.version in applied and applied[m.version] != m.checksum]
    return MigrationState(applied, pending, changed)


async def migrate(conn: asyncpg.Connection, migrations: list[Migration] | None = None) -> list[Migration]:
    """Apply what is pending, in order; returns what was applied (empty when up to date)."""
    migrations = load_migrations() if migrations is None else migrations
    done: list[Migration] = []
    await conn.execute("SELECT pg_advisory_lock($1)", LOCK_KEY)
    try:
        await conn.execute(CREATE_TABLE)
        # Read under the lock: another migrator may have applied some while we waited for it.
        st = await state(conn, migrations)
        for version in st.changed:
            log.warning("migration %03d changed after it was applied; it is not re-run (add a new one)", version)
        for m in st.pending:
            async with conn.transaction():
                await conn.execute(m.sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                    m.version,
                    m.name,
                    m.checksum,
                )
            log.info("applied migration %03d_%s", m.version, m.name)
            done.append(m)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", LOCK_KEY)
    return done
