"""The PostgreSQL side on a real server: migrations, every record kind, idempotent keys, bad rows set aside,
and the spool/backfill through a real outage (the server stopped and started again)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import asyncpg
import pytest

from services.bridge.journal import JournalWriter, journal_files, read_journal
from services.bridge.migrate import load_migrations, migrate
from services.bridge.postgres_sink import PostgresSink
from services.bridge.records import Record, Recorder
from services.cli.journal import import_files
from shared.config import Sinks, default_config_path, load_config
from shared.messages import (
    ACTION_OPEN,
    STRATEGY_CROSS,
    Alert,
    CarryPosition,
    Execution,
    Fill,
    FundingPayment,
    Leg,
    Opportunity,
    OrderUpdate,
    RiskDecision,
    Stats,
)
from shared.registry import Registry
from tests.conftest import eventually_async
from tests.pg_kit import TABLES, PgServer
from tests.test_pg_spool_backoff import Disk

# Each table's key as the record key, so a test compares the keys it sent with the keys stored.
KEY_SQL = {
    "opportunity": "SELECT id::text FROM arbitrage_opportunities",
    "decision": "SELECT opportunity_id::text FROM risk_decisions",
    "order": "SELECT client_order_id || ':' || status FROM orders",
    "fill": "SELECT venue || ':' || trade_id FROM fills",
    "execution": "SELECT opportunity_id::text FROM arbitrage_executions",
    "alert": "SELECT source || ':' || kind || ':' || (extract(epoch from at) * 1000000)::bigint::text FROM risk_alerts",
    "metric": "SELECT service || ':' || (extract(epoch from at) * 1000000)::bigint::text FROM engine_metrics",
}
FAST = Sinks(batch_max_rows=200, batch_interval_ms=20)


def make_records(n: int, start: int = 0) -> list[Record]:
    """``n`` records of each kind, shaped as services/bridge/records.py makes them."""
    now = time.time_ns()
    out: list[Record] = []
    for i in range(start, start + n):
        opp = 10**12 + i
        out += [
            Record(
                "opportunity",
                str(opp),
                {
                    "id": opp,
                    "strategy": "cross_exchange",
                    "action": "open",
                    "symbol": "BTCUSDT",
                    "legs": [
                        {"venue": "binance", "side": "buy", "quote_age_ns": 1200 + i},
                        {"venue": "mexc", "side": "sell", "quote_age_ns": 900},
                    ],
                    "notional_usd": 1000.0,
                    "spread_bps": 4.5,
                    "expected_profit_usd": 0.45,
                    "tick_to_detect_ns": 30_000,
                    "detected_at_ns": now + i,
                },
            ),
            Record(
                "decision",
                str(opp),
                {
                    "opportunity_id": opp,
                    "strategy": "cross_exchange",
                    "symbol": "BTCUSDT",
                    "approved": i % 3 == 0,
                    "reason": "approved" if i % 3 == 0 else "max_concurrent",
                    "detect_to_decide_ns": 8000,
                    "decided_at_ns": now + i,
                },
            ),
            Record(
                "order",
                f"dz{opp}b:NEW",
                {
                    "client_order_id": f"dz{opp}b",
                    "opportunity_id": opp,
                    "venue": "binance",
                    "symbol": "BTCUSDT",
                    "side": "buy",
                    "price": "65000.10",
                    "qty": "0.00100",
                    "status": "NEW",
                    "filled_qty": 0.0,
                    "avg_price": 0.0,
                    "error_code": 0,
                    "error_msg": "",
                    "sent_at_ns": now,
                    "ack_at_ns": 0,
                },
            ),
            Record(
                "fill",
                f"binance:{opp}",
                {
                    "trade_id": str(opp),
                    "client_order_id": f"dz{opp}b",
                    "opportunity_id": opp,
                    "venue": "binance",
                    "symbol": "BTCUSDT",
                    "side": "buy",
                    "price": 65000.1,
                    "qty": 0.001,
                    "fee_usd": 0.065,
                    "filled_at_ns": now,
                },
            ),
            Record(
                "execution",
                str(opp),
                {
                    "opportunity_id": opp,
                    "symbol": "BTCUSDT",
                    "buy_venue": "binance",
                    "sell_venue": "mexc",
                    "bought_qty": 0.001,
                    "sold_qty": 0.001,
                    "buy_avg_price": 65000.1,
                    "sell_avg_price": 65030.0,
                    "fees_usd": 0.13,
                    "pnl_usd": -0.1,
                    "notional_usd": 65.0,
                    "outcome": "filled",
                    "tick_to_send_ns": 90_000,
                    "done_at_ns": now,
                },
            ),
            Record(
                "metric",
                f"detector:{now + i * 1000}",
                {
                    "service": "detector",
                    "pid": 42,
                    "state": "RUNNING",
                    "counters": {"opportunities": i},
                    "gauges": {"load": 0.5},
                    "at_ns": now + i * 1000,
                },
            ),
        ]
    return out


def keys_by_kind(records: list[Record]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {k: set() for k in TABLES}
    for r in records:
        key = r.key
        if r.kind == "metric":  # stored at microsecond precision
            service, ns = key.rsplit(":", 1)
            key = f"{service}:{int(ns) // 1000}"
        out[r.kind].add(key)
    return out


async def stored_keys(conn: asyncpg.Connection) -> dict[str, list[str]]:
    return {kind: [r[0] for r in await conn.fetch(sql)] for kind, sql in KEY_SQL.items()}


def assert_exactly_once(stored: dict[str, list[str]], expected: dict[str, set[str]]) -> None:
    for kind, keys in stored.items():
        assert len(keys) == len(set(keys)), f"{kind}: a key stored twice"
        assert set(keys) == expected[kind], f"{kind}: {len(set(keys))} stored, {len(expected[kind])} expected"


@pytest.fixture
async def conn(pg_dsn: str) -> AsyncIterator[asyncpg.Connection]:
    c = await asyncpg.connect(pg_dsn)
    yield c
    await c.close()


async def run_sink(sink: PostgresSink, records: list[Record]) -> None:
    await sink.start()
    for i, r in enumerate(records):
        sink.submit(r)
        if i % 500 == 0:
            await asyncio.sleep(0)
    await sink.stop()


# ----- migrations
async def test_migrations_apply_once_and_create_every_table(conn: asyncpg.Connection) -> None:
    applied = await migrate(conn)
    assert [m.version for m in applied] == [m.version for m in load_migrations()]
    assert await migrate(conn) == []  # a re-run applies nothing
    tables = {r[0] for r in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    assert tables == {*TABLES.values(), "schema_migrations"}
    versions = [r[0] for r in await conn.fetch("SELECT version FROM schema_migrations ORDER BY version")]
    assert versions == [m.version for m in load_migrations()]


async def test_concurrent_migrators_do_not_race(pg_dsn: str) -> None:
    conns = [await asyncpg.connect(pg_dsn) for _ in range(4)]
    try:
        results = await asyncio.gather(*(migrate(c) for c in conns))
        assert sorted(len(r) for r in results) == [0, 0, 0, len(load_migrations())]
        assert await conns[0].fetchval("SELECT count(*) FROM schema_migrations") == len(load_migrations())
    finally:
        for c in conns:
            await c.close()


# ----- writing
async def test_every_kind_lands_with_its_values(pg_dsn: str, conn: asyncpg.Connection, tmp_path: Path) -> None:
    """Records made by the real Recorder from real messages fit the schema, value for value."""
    cfg = load_config(default_config_path())
    rec = Recorder(Registry(cfg), metrics_interval_s=0.001)
    now = time.monotonic_ns()
    legs = (Leg(0, 0, 0, 65000.1, 0.002, 1.0, now - 5000), Leg(1, 0, 1, 65040.0, 0.002, 1.0, now - 9000))
    opp = Opportunity(77, STRATEGY_CROSS, ACTION_OPEN, 0, legs, 130.0, 4.2, 0.05, now - 40_000, now - 30_000, now)
    events = [
        opp,
        RiskDecision(opp, False, "max_concurrent", now + 7000),
        OrderUpdate("dz77b0", 77, 0, 0, 0, "65000.10", "0.00200", "FILLED", 0.002, 65000.1, 0, "", now, now, now),
        Fill("dz77b0", 77, 0, 0, 0, 65000.1, 0.002, 0.13, "T-1", now),
        Execution(77, 0, 0, 1, 0.002, 0.002, 65000.1, 65040.0, 0.26, -0.18, 130.0, "filled", now, now, now, now, now),
        Alert("risk", "failure_breaker", "5 failed in 60s", 1_800_000_000_000, 1_799_999_940_000_123_456),
        FundingPayment(2, 0, "F-1", "0.01250000", "USDT", 0.0125, 1_800_000_000_000, 77, 1_800_000_000_500_000_000),
        CarryPosition(77, 0, 0, 2, "open", "0.002", "-0.002", 6.1, 0.0, 0.0125, 0.13, -0.1175, 1_799_999_000_000, 0,
                      1_800_000_000_600_000_000),
        Stats("executor", 4242, "RUNNING", now, {"fills": 1}, {"open": 0.0}, [], {}),
    ]
    records = [r for e in events if (r := rec.record(e)) is not None]
    assert {r.kind for r in records} == set(TABLES)
    await run_sink(PostgresSink(pg_dsn, FAST, tmp_path), records)

    o = await conn.fetchrow("SELECT * FROM arbitrage_opportunities")
    assert (o["id"], o["strategy"], o["action"], o["symbol"]) == (77, "cross_exchange", "open", cfg.symbols[0].name)
    assert o["max_quote_age_ns"] == 9000 and o["tick_to_detect_ns"] == 40_000
    assert '"venue": "mexc"' in o["legs"] and o["detected_at"] is not None
    d = await conn.fetchrow("SELECT * FROM risk_decisions")
    assert (d["opportunity_id"], d["approved"], d["reason"], d["detect_to_decide_ns"]) == (
        77,
        False,
        "max_concurrent",
        7000,
    )
    od = await conn.fetchrow("SELECT * FROM orders")
    assert (od["client_order_id"], od["status"], od["price"], od["qty"]) == (
        "dz77b0",
        "FILLED",
        Decimal("65000.10"),
        Decimal("0.00200"),
    )
    f = await conn.fetchrow("SELECT * FROM fills")
    assert (f["venue"], f["trade_id"], f["qty"], f["fee_usd"]) == (cfg.venues[0].name, "T-1", 0.002, 0.13)
    x = await conn.fetchrow("SELECT * FROM arbitrage_executions")
    assert (x["opportunity_id"], x["outcome"], x["pnl_usd"]) == (77, "filled", -0.18)
    a = await conn.fetchrow("SELECT * FROM risk_alerts")
    assert (a["source"], a["kind"], a["until_at"].timestamp()) == ("risk", "failure_breaker", 1_800_000_000.0)
    assert a["at"].timestamp() == 1_799_999_940.000123  # µs: the key's precision
    fp = await conn.fetchrow("SELECT * FROM funding_payments")
    assert (fp["venue"], fp["payment_id"], fp["amount"], fp["carry_id"]) == (
        cfg.venues[2].name, "F-1", Decimal("0.01250000"), 77)
    assert fp["paid_at"].timestamp() == 1_800_000_000.0
    c = await conn.fetchrow("SELECT * FROM carry_positions")
    assert (c["carry_id"], c["state"], c["spot_qty"], c["perp_qty"], c["closed_at"]) == (
        77, "open", Decimal("0.002"), Decimal("-0.002"), None)
    m = await conn.fetchrow("SELECT * FROM engine_metrics")
    assert (m["service"], m["pid"], m["counters"]) == ("executor", 4242, '{"fills": 1}')


async def test_same_key_twice_lands_once(pg_dsn: str, conn: asyncpg.Connection, tmp_path: Path) -> None:
    records = make_records(300)
    # Repeats inside one batch, across batches, and in a second sink session.
    sink = PostgresSink(pg_dsn, FAST, tmp_path)
    await run_sink(sink, records + records[:50] + records)
    assert sink.n_written == len(records)
    assert sink.n_duplicates == len(records) + 50
    again = PostgresSink(pg_dsn, FAST, tmp_path)
    await run_sink(again, records[::7])
    assert (again.n_written, again.n_duplicates) == (0, len(records[::7]))
    assert_exactly_once(await stored_keys(conn), keys_by_kind(records))


async def test_a_journal_replayed_twice_lands_once(pg_dsn: str, conn: asyncpg.Connection, tmp_path: Path) -> None:
    records = make_records(400)
    w = JournalWriter(tmp_path, "batch", max_bytes=64 * 1024)
    w.write(records)
    w.close()
    files = journal_files(tmp_path)
    assert len(files) > 1
    read1, first = await import_files(pg_dsn, files, 250)
    read2, second = await import_files(pg_dsn, files, 333)
    assert read1.records == read2.records == len(records)
    assert (first.inserted, first.duplicates) == (len(records), 0)
    assert (second.inserted, second.duplicates) == (0, len(records))
    assert_exactly_once(await stored_keys(conn), keys_by_kind(records))


async def test_records_postgres_refuses_are_set_aside(pg_dsn: str, conn: asyncpg.Connection, tmp_path: Path) -> None:
    good = make_records(40)
    bad_price = Record("order", "x1:NEW", {"client_order_id": "x1", "status": "NEW", "price": "sixty"})
    # Passes our checks, refused by the server (jsonb cannot hold \u0000): found by splitting the batch.
    bad_json = Record("metric", "x:1", {"service": "x", "at_ns": 10**18, "counters": {"a\u0000b": 1}, "gauges": {}})
    records = [*good[:100], bad_price, *good[100:150], bad_json, *good[150:]]
    sink = PostgresSink(pg_dsn, Sinks(batch_max_rows=1000, batch_interval_ms=20), tmp_path)
    await run_sink(sink, records)
    assert sink.n_rejected == 2 and sink.n_written == len(good)
    assert_exactly_once(await stored_keys(conn), keys_by_kind(good))
    kept = [r for p in journal_files(tmp_path / "rejected") for r in read_journal(p)]
    assert sorted(r.key for r in kept) == ["x1:NEW", "x:1"]


def numbered(records: list[Record], src: str, first: int = 1) -> list[Record]:
    """The records as the event log of ``src`` numbers them: ``first``, ``first + 1``, ..."""
    return [r._replace(src=src, seq=first + i) for i, r in enumerate(records)]


async def test_through_follows_what_is_committed(pg_dsn: str, conn: asyncpg.Connection, tmp_path: Path) -> None:
    good = numbered(make_records(50), "detector")
    # Refused for its content and kept in rejected/: handled too, so it advances its source's mark.
    bad = Record("order", "x1:NEW", {"client_order_id": "x1", "status": "NEW", "price": "sixty"}, "executor", 7)
    unnamed = make_records(5, start=500)  # no source: not tracked
    sink = PostgresSink(pg_dsn, FAST, tmp_path)
    await sink.start()
    for r in [*good, bad, *unnamed]:
        sink.submit(r)
    # The queue empties as records become durable (a batch only once its refused record is in rejected/).
    await eventually_async(lambda: not sink._queue, timeout=20, what="everything handled")
    assert sink.n_written == len(good) + len(unnamed)
    assert sink.through == {"detector": len(good), "executor": 7}
    await sink.stop()
    assert sink.n_rejected == 1 and sink.n_spooled == 0


async def test_refused_records_wait_for_a_full_disk_and_are_kept_once(
    pg_dsn: str, conn: asyncpg.Connection, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """rejected/ on a full disk: the batch stays queued (``through`` does not pass it) and is retried with
    back-off into the same file; once the disk takes it, the refused record is kept exactly once."""
    caplog.set_level(logging.INFO, logger="services.bridge.postgres_sink")
    disk = Disk(free=0)
    good = numbered(make_records(20), "detector")
    bad = Record("order", "x1:NEW", {"client_order_id": "x1", "status": "NEW", "price": "sixty"}, "detector", 1000)
    records = [*good[:60], bad, *good[60:]]
    sink = PostgresSink(
        pg_dsn, Sinks(batch_max_rows=1000, batch_interval_ms=20), tmp_path, retry_max_s=0.4, write_fn=disk
    )
    for r in records:  # before start: one batch
        sink.submit(r)
    await sink.start()
    try:
        await eventually_async(lambda: disk.refused >= 3, timeout=20, what="rejected/ refused three times")
        assert sink.rejects_stall.stalled and sink.counters()["rejected_stalls"] == 1
        assert sink.through == {} and sink.n_rejected == 0  # the batch is not done while its refused record waits
        assert sink.n_written == len(good)  # its good rows are in: the retries find them as duplicates
        assert len(journal_files(tmp_path / "rejected")) == 1  # one file, not one per try
        disk.free = None
        await eventually_async(lambda: sink.n_rejected == 1, timeout=10, what="the refused record kept")
        assert sink.through == {"detector": 1000} and not sink.rejects_stall.stalled
    finally:
        await sink.stop()
    assert [r for p in journal_files(tmp_path / "rejected") for r in read_journal(p)] == [bad]
    assert_exactly_once(await stored_keys(conn), keys_by_kind(good))
    assert sink.n_written == len(good) and sink.n_dropped == 0 and sink.n_spooled == 0
    errors = [r.getMessage() for r in caplog.records if "cannot write the rejected records" in r.getMessage()]
    assert len(errors) == 1 and "(ENOSPC: No space left on device)" in errors[0], errors


async def test_a_batch_waiting_for_rejected_does_not_hold_back_the_rest(
    pg_dsn: str, conn: asyncpg.Connection, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """rejected/ refuses, the spool does not. Once the waiting batch is spilled to the spool, the records behind
    it are written at once, not at the pace of rejected/'s back-off; the refused record is kept later, once."""
    monkeypatch.setattr("services.bridge.postgres_sink.RETRY_MIN_S", 30.0)  # a retry would come far too late
    disk = Disk(free=0)
    bad = Record("order", "x1:NEW", {"client_order_id": "x1", "status": "NEW", "price": "sixty"})
    good = make_records(20)
    records = numbered([*good[:5], bad, *good[5:]], "detector")  # the first batch of 10 holds the refused one
    sink = PostgresSink(pg_dsn, Sinks(batch_max_rows=10, batch_interval_ms=20), tmp_path, retry_max_s=60.0)
    sink.rejects = JournalWriter(tmp_path / "rejected", "batch", prefix="rejected", write_fn=disk)
    sink.spill_at = 30
    for r in records[:10]:
        sink.submit(r)
    await sink.start()
    try:
        await eventually_async(lambda: sink.rejects_stall.stalled, timeout=20, what="the first batch waiting")
        for r in records[10:]:  # past spill_at: the waiting batch goes to the spool with most of the rest
            sink.submit(r)
        await eventually_async(lambda: not sink._queue, timeout=10, what="the queue emptied behind the batch")
        assert sink.n_spooled > 0 and sink.through == {"detector": len(records)} and disk.refused == 1
    finally:
        await sink.stop()  # rejected/'s back-off is not over: the spool file waits for the next start
    assert sink.n_rejected == 0 and sink.n_dropped == 0
    assert records[5] in [r for p in journal_files(tmp_path / "spool") for r in read_journal(p)]

    again = PostgresSink(pg_dsn, FAST, tmp_path)  # a disk with room
    await again.start()
    await eventually_async(lambda: not journal_files(tmp_path / "spool"), timeout=20, what="the spool backfilled")
    await again.stop()
    assert again.n_rejected == 1
    assert [r for p in journal_files(tmp_path / "rejected") for r in read_journal(p)] == [records[5]]
    assert_exactly_once(await stored_keys(conn), keys_by_kind(good))


# ----- outage
async def test_outage_spools_then_backfills_exactly_once(
    own_pg_server: PgServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    server = own_pg_server
    db = server.create_database()
    dsn = server.dsn(db)
    sink = PostgresSink(dsn, FAST, tmp_path, spool_file_bytes=64 * 1024)
    await sink.start()
    before, during, after = make_records(200), make_records(300, start=1000), make_records(200, start=2000)
    for r in before:
        sink.submit(r)
    await eventually_async(lambda: sink.n_written == len(before), timeout=20, what="the first records written")

    await asyncio.to_thread(server.stop)
    t0 = time.monotonic()
    for r in during:
        sink.submit(r)  # never blocks, never raises, with the server gone
    assert time.monotonic() - t0 < 0.5
    await eventually_async(lambda: sink.n_spooled == len(during), timeout=20, what="records spooled while down")
    assert not sink.connected and sink.n_failures >= 1
    assert journal_files(tmp_path / "spool")

    await asyncio.to_thread(server.start)
    for r in after:
        sink.submit(r)
    expected = len(before) + len(during) + len(after)
    await eventually_async(lambda: sink.n_written == expected, timeout=30, what="everything written after the outage")
    await eventually_async(lambda: not journal_files(tmp_path / "spool"), timeout=10, what="the spool emptied")
    await sink.stop()
    # Records that came after the restart but before the reconnect were spooled too.
    assert sink.n_backfilled == sink.n_spooled >= len(during)
    assert sink.n_dropped == 0 and sink.n_rejected == 0

    c = await asyncpg.connect(dsn)
    try:
        assert_exactly_once(await stored_keys(c), keys_by_kind(before + during + after))
    finally:
        await c.close()
    assert "unreachable" in caplog.text and "reachable again" in caplog.text
    assert server.password not in caplog.text  # the DSN is logged masked


async def test_stop_while_down_spools_and_next_start_backfills(own_pg_server: PgServer, tmp_path: Path) -> None:
    server = own_pg_server
    dsn = server.dsn(server.create_database())
    first = PostgresSink(dsn, FAST, tmp_path)
    records = make_records(150)
    await asyncio.to_thread(server.stop)
    await run_sink(first, records)  # the database never answered
    assert first.n_spooled == len(records) and first.n_written == 0
    assert sum(1 for p in journal_files(tmp_path / "spool") for _ in read_journal(p)) == len(records)

    await asyncio.to_thread(server.start)
    second = PostgresSink(dsn, FAST, tmp_path)
    await second.start()
    await eventually_async(lambda: not journal_files(tmp_path / "spool"), timeout=20, what="the spool backfilled")
    await second.stop()
    assert second.n_backfilled == len(records)
    c = await asyncpg.connect(dsn)
    try:
        assert_exactly_once(await stored_keys(c), keys_by_kind(records))
    finally:
        await c.close()


def test_masked_dsn_forms() -> None:
    from services.bridge.pg_conn import mask_dsn

    assert mask_dsn("postgresql://u:s3cret@db:5432/x") == "postgresql://u:***@db:5432/x"
    assert mask_dsn("postgresql://u:p@ss@db/x?sslmode=require") == "postgresql://u:***@db/x?sslmode=require"
    assert mask_dsn("postgresql://u@db/x?password=s3cret&a=1") == "postgresql://u@db/x?password=***&a=1"
    assert mask_dsn("host=db password=s3cret user=u") == "host=db password=*** user=u"


async def test_a_burst_beyond_the_memory_bound_goes_through_the_spool(
    pg_dsn: str, conn: asyncpg.Connection, tmp_path: Path
) -> None:
    records = make_records(500)
    sink = PostgresSink(pg_dsn, FAST, tmp_path)
    sink.spill_at = 400  # the bound, made small enough for a test
    await sink.start()
    for r in records:  # all at once: the writer cannot run before the queue is far past the bound
        sink.submit(r)
    await eventually_async(lambda: sink.n_written == len(records), timeout=30, what="everything written")
    await sink.stop()
    assert sink.n_spooled > 0 and sink.n_backfilled == sink.n_spooled
    assert not journal_files(tmp_path / "spool")
    assert_exactly_once(await stored_keys(conn), keys_by_kind(records))


async def test_a_batch_that_times_out_is_spooled_and_retried(
    pg_dsn: str, conn: asyncpg.Connection, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server is up but a table is locked: the batch times out, goes to the spool, lands once later."""
    monkeypatch.setattr("services.bridge.postgres_sink.WRITE_TIMEOUT_S", 1.0)
    await migrate(conn)
    records = make_records(100)
    sink = PostgresSink(pg_dsn, FAST, tmp_path)
    await sink.start()
    blocker = conn.transaction()
    await blocker.start()
    await conn.execute("LOCK TABLE fills IN ACCESS EXCLUSIVE MODE")
    for r in records:
        sink.submit(r)
    await eventually_async(lambda: sink.n_spooled == len(records), timeout=20, what="the timed-out batch spooled")
    assert sink.n_written == 0 and sink.n_failures >= 1
    await blocker.rollback()
    await eventually_async(lambda: not journal_files(tmp_path / "spool"), timeout=20, what="the spool backfilled")
    await sink.stop()
    assert sink.n_dropped == 0
    assert_exactly_once(await stored_keys(conn), keys_by_kind(records))
