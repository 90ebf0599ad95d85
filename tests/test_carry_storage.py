"""Funding payments and carry positions in the bridge's sinks, on a real PostgreSQL and a real Redis: migration
003, a payment stored once however often it comes, a carry's life ending as one row with its final values
whatever order its updates land in, the local journal, and the Redis channels."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import asyncpg
import pytest

from services.bridge.journal import JournalSink, journal_files, read_journal
from services.bridge.migrate import migrate
from services.bridge.postgres_sink import PostgresSink
from services.bridge.records import Record, Recorder
from services.bridge.redis_sink import RedisSink
from services.cli.journal import import_files
from shared.config import Sinks
from tests.carry_kit import OPENED_MS, T_NS, lifecycle, payment
from tests.conftest import eventually_async
from tests.redis_kit import RedisServer
from tests.test_bridge_state import registry
from tests.test_postgres_sink import FAST, run_sink
from tests.test_redis_sink import received


def records_of(events: list) -> list[Record]:
    rec = Recorder(registry())
    return [r for e in events if (r := rec.record(e)) is not None]


@pytest.fixture
async def conn(pg_dsn: str) -> AsyncIterator[asyncpg.Connection]:
    c = await asyncpg.connect(pg_dsn)
    yield c
    await c.close()


async def test_migration_003_creates_both_tables_with_their_keys(conn: asyncpg.Connection) -> None:
    applied = await migrate(conn)
    assert "funding_and_carries" in [m.name for m in applied]
    keys = {
        r["table_name"]: r["cols"]
        for r in await conn.fetch(
            "SELECT tc.table_name, array_agg(kcu.column_name::text ORDER BY kcu.ordinal_position) AS cols "
            "FROM information_schema.table_constraints tc JOIN information_schema.key_column_usage kcu "
            "USING (constraint_name, table_name) WHERE tc.constraint_type = 'PRIMARY KEY' "
            "AND tc.table_name IN ('funding_payments', 'carry_positions') GROUP BY tc.table_name"
        )
    }
    assert keys == {"funding_payments": ["venue", "payment_id"], "carry_positions": ["carry_id"]}
    types = {
        (r["table_name"], r["column_name"]): r["data_type"]
        for r in await conn.fetch(
            "SELECT table_name, column_name, data_type FROM information_schema.columns "
            "WHERE table_name IN ('funding_payments', 'carry_positions')"
        )
    }
    assert types[("funding_payments", "amount")] == "numeric"
    assert types[("carry_positions", "spot_qty")] == types[("carry_positions", "perp_qty")] == "numeric"


async def test_a_funding_payment_replayed_is_stored_once(
    pg_dsn: str, conn: asyncpg.Connection, tmp_path: Path
) -> None:
    [first] = records_of([payment("tran-1", "0.01250000", 0.0125)])
    sink = PostgresSink(pg_dsn, FAST, tmp_path)
    await run_sink(sink, [first, first])  # twice in one batch
    again = PostgresSink(pg_dsn, FAST, tmp_path)
    await run_sink(again, [first])  # and after a restart
    assert (sink.n_written, sink.n_duplicates, again.n_written, again.n_duplicates) == (1, 1, 0, 1)
    rows = await conn.fetch("SELECT * FROM funding_payments")
    assert len(rows) == 1
    row = rows[0]
    assert (row["venue"], row["payment_id"], row["symbol"], row["asset"], row["carry_id"]) == (
        "binance_perp", "tran-1", "BTCUSDT", "USDT", 501)
    assert str(row["amount"]) == "0.01250000" and row["amount_usd"] == 0.0125  # exact, scale kept
    assert row["paid_at"].timestamp() == (T_NS + 8 * 3_600 * 10**9) / 1e9


FINAL = {
    "carry_id": 501, "symbol": "BTCUSDT", "spot_venue": "binance", "perp_venue": "binance_perp", "state": "closed",
    "spot_qty": "0.000", "perp_qty": "0.000", "entry_basis_bps": 5.5, "exit_basis_bps": 1.25, "funding_usd": 0.0095,
    "fees_usd": 0.2, "pnl_usd": 0.1375, "updated_ns": T_NS + 20 * 3_600 * 10**9,
}


async def carry_rows(conn: asyncpg.Connection) -> list[dict]:
    out = []
    for r in await conn.fetch("SELECT * FROM carry_positions"):
        row = {k: (str(v) if isinstance(v, Decimal) else v) for k, v in r.items() if k in FINAL}
        row["opened"] = r["opened_at"].timestamp()
        row["closed"] = r["closed_at"].timestamp() if r["closed_at"] else None
        out.append(row)
    return out


FINAL_ROW = {**FINAL, "opened": OPENED_MS / 1000, "closed": (OPENED_MS + 20 * 3_600_000) / 1000}


@pytest.mark.parametrize("delivery", ["one_batch", "one_by_one", "newest_first"])
async def test_a_carry_from_open_to_closed_is_one_row_with_the_final_values(
    pg_dsn: str, conn: asyncpg.Connection, tmp_path: Path, delivery: str
) -> None:
    records = records_of(lifecycle(501))
    carries = [r for r in records if r.kind == "carry"]
    assert len(carries) == 4 and len({r.key for r in carries}) == 4  # every update is its own record
    if delivery == "one_batch":
        await run_sink(PostgresSink(pg_dsn, FAST, tmp_path), records)
    else:
        order = records if delivery == "one_by_one" else list(reversed(records))
        for r in order:  # each in its own sink session: one transaction per update
            await run_sink(PostgresSink(pg_dsn, FAST, tmp_path), [r])
            if delivery == "one_by_one" and r.kind == "carry":
                [row] = await carry_rows(conn)
                assert row["updated_ns"] == r.data["updated_at_ns"]  # each newer update replaced the row
    assert await carry_rows(conn) == [FINAL_ROW]
    assert await conn.fetchval("SELECT count(*) FROM funding_payments") == 2


async def test_a_journal_of_a_carry_imported_twice_changes_nothing(
    pg_dsn: str, conn: asyncpg.Connection, tmp_path: Path
) -> None:
    records = records_of(lifecycle(501) + lifecycle(502))
    sink = JournalSink(tmp_path / "journal", Sinks(batch_max_rows=3, batch_interval_ms=10))
    await sink.start()
    for r in records:
        sink.submit(r)
    await sink.stop()
    files = journal_files(tmp_path / "journal")
    assert [r for f in files for r in read_journal(f)] == records  # the local journal holds both kinds
    _read, first = await import_files(pg_dsn, files, 5)
    _read, second = await import_files(pg_dsn, files, 7)
    # A carry update that replaces the row counts as written, one superseded in its batch as a duplicate.
    assert (first.inserted + first.duplicates, first.rejected) == (len(records), [])
    assert (second.inserted, second.duplicates, second.rejected) == (0, len(records), [])
    rows = {r["carry_id"]: r for r in await carry_rows(conn)}
    assert rows[501] == FINAL_ROW and rows[502] == {**FINAL_ROW, "carry_id": 502}
    assert await conn.fetchval("SELECT count(*) FROM funding_payments") == 4


async def test_a_carry_record_postgres_cannot_take_is_set_aside(pg_dsn: str, tmp_path: Path) -> None:
    [bad] = records_of([lifecycle(501)[0]])
    bad = bad._replace(data={**bad.data, "spot_qty": "ten"})
    sink = PostgresSink(pg_dsn, FAST, tmp_path)
    await run_sink(sink, [bad])
    assert sink.n_rejected == 1
    assert [r.key for p in journal_files(tmp_path / "rejected") for r in read_journal(p)] == [bad.key]


async def test_redis_subscribers_get_funding_payments_and_every_carry_update(redis_db: RedisServer) -> None:
    client = redis_db.client()
    sub = client.pubsub(ignore_subscribe_messages=True)
    sub.subscribe("dz:funding_payments", "dz:carries")
    try:
        records = records_of(lifecycle(501))
        sink = RedisSink(redis_db.url, Sinks(redis_channel_prefix="dz", redis_stream_maxlen=100))
        await sink.start()
        for r in records:
            sink.submit(r)
        await eventually_async(lambda: sink.n_written == len(records), what="every record written")
        await sink.stop()
        got = received(sub, len(records))
        expected = [("dz:carries" if r.kind == "carry" else "dz:funding_payments",
                     {"kind": r.kind, "key": r.key, "data": r.data}) for r in records]
        assert got == expected
        last = got[-1][1]["data"]
        assert (last["state"], last["spot_qty"], last["closed_at_ms"]) == ("closed", "0.000",
                                                                          OPENED_MS + 20 * 3_600_000)
        assert len(client.xrange("dz:stream:carries")) == 4
        assert json.loads(client.xrange("dz:stream:funding_payments")[0][1][b"event"])["key"] == "binance_perp:501-1"
    finally:
        sub.close()
        client.close()
