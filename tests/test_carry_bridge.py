"""The real bridge, in-process, fed by a real service's event socket: CarryPosition and FundingPayment events
(numbered and logged by their source, as the executor's are) reach shared memory, the HTTP API (a real `draizer
api` process), PostgreSQL, Redis and Prometheus. Across a restart from its checkpoint, and one that replays the
source's whole event log, nothing is counted or stored twice."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from services.bridge import checkpoint
from services.bridge.service import Bridge
from shared.runtime.host import ProcessContext
from shared.runtime.service import Service
from shared.runtime.session import SESSION_ENV
from tests.carry_kit import lifecycle
from tests.http_kit import without_ages
from tests.redis_kit import RedisServer
from tests.test_api import Api, running_api
from tests.test_metrics import samples, scrape, value
from tests.test_redis_sink import received

PG_VAR, REDIS_VAR = "DZ_CARRY_TEST_PG", "DZ_CARRY_TEST_REDIS"


async def until(check: Callable[[], Any], what: str, timeout: float = 20.0) -> Any:
    """Poll a blocking ``check`` off the event loop (the bridge runs on it) until it is truthy."""
    deadline = asyncio.get_running_loop().time() + timeout
    last: Any = None
    while asyncio.get_running_loop().time() < deadline:
        last = await asyncio.to_thread(check)
        if last:
            return last
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}: last={last!r}")


def carries(api: Api) -> dict[str, Any]:
    answer = api.get("/api/v2/carries")
    return answer.body if answer.status == 200 else {}


async def start_bridge(ctx: ProcessContext) -> Bridge:
    bridge = Bridge(ctx)
    await bridge.start()
    return bridge


async def stop(service: Service) -> None:
    await service.stop()
    service.close()


async def test_carry_events_reach_every_sink_once_across_restarts_and_replays(
    tmp_path: Path, run_dir: Path, pg_dsn: str, redis_db: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PG_VAR, pg_dsn)
    monkeypatch.setenv(REDIS_VAR, redis_db.url)
    monkeypatch.setenv(SESSION_ENV, "carry-e2e")
    redis = redis_db.client()
    sub = redis.pubsub(ignore_subscribe_messages=True)
    sub.subscribe("dz:carries", "dz:funding_payments")
    sinks = {"postgres_dsn_env": PG_VAR, "redis_url_env": REDIS_VAR, "redis_channel_prefix": "dz",
             "batch_interval_ms": 20}
    with running_api(tmp_path, run_dir, None, **sinks) as api:
        ctx = ProcessContext(api.cfg, run_dir)
        executor = Service("executor", ctx)  # publishes, numbers and logs its events as the executor does
        await executor.start()
        bridge = await start_bridge(ctx)
        conn = await asyncpg.connect(pg_dsn)
        try:
            events = lifecycle(501)
            for e in events[:5]:  # opened, two payments, two updates
                executor.publish(e)

            body = await until(lambda: (c := carries(api)) and c["carries"] and
                               c["carries"][0]["funding_usd"] == 0.0095 and c, "the open carry in the API")
            assert (body["open"], body["closed"]) == (1, 0)
            assert body["funding_by_venue"]["binance_perp"] == {"usd": pytest.approx(0.0095), "payments": 2,
                                                                "amounts": {"USDT": "0.0095"}}
            [c] = body["carries"]
            assert (c["carry_id"], c["state"], c["spot_qty"], c["perp_qty"], c["pnl_usd"]) == (
                501, "open", "0.010", "-0.010", -0.0905)
            assert api.get("/api/v2/carries?state=closed").body["carries"] == []
            assert api.get("/api/v2/carries?symbol=ETHUSDT").body["carries"] == []
            assert api.get("/api/v2/carries?state=opening").status == 422
            status = api.get("/api/v2/status").body
            assert without_ages(status["carry"]["positions"]) == without_ages(body["carries"])

            found = samples(await asyncio.to_thread(scrape, bridge.metrics_port))
            assert value(found, "draizer_carry_open") == 1
            assert value(found, "draizer_funding_usd_total", venue="binance_perp", direction="paid") == 0.003
            got = await asyncio.to_thread(received, sub, 5)
            assert [(ch, m["key"]) for ch, m in got] == [
                ("dz:carries", f"501:{events[0].ts_ns}"), ("dz:funding_payments", "binance_perp:501-1"),
                ("dz:carries", f"501:{events[2].ts_ns}"), ("dz:funding_payments", "binance_perp:501-2"),
                ("dz:carries", f"501:{events[4].ts_ns}"),
            ]

            # Restart from the checkpoint: the book comes back from it; the close lands on top.
            await stop(bridge)
            bridge = await start_bridge(ctx)
            executor.publish(events[5])
            body = await until(lambda: (c := carries(api)) and c["closed"] == 1 and c, "the closed carry")
            assert (body["open"], body["funding_by_venue"]["binance_perp"]["payments"]) == (0, 2)

            # Restart with no checkpoint: the source's whole log is replayed into the book and the sinks.
            await stop(bridge)
            checkpoint.checkpoint_path(run_dir).unlink()
            bridge = await start_bridge(ctx)
            assert bridge.sequencer.n_replayed >= len(events)
            await until(lambda: carries(api).get("closed") == 1, "the replayed book in shared memory")
            again = carries(api)
            assert without_ages(again["carries"]) == without_ages(body["carries"])
            assert again["funding_by_venue"] == body["funding_by_venue"]
            await stop(bridge)  # writes everything queued to PostgreSQL
            assert bridge.sinks[0].counters()["duplicates"] >= len(events)

            assert [(r["venue"], r["payment_id"], r["amount"]) for r in
                    await conn.fetch("SELECT * FROM funding_payments ORDER BY payment_id")] == [
                ("binance_perp", "501-1", Decimal("0.0125")), ("binance_perp", "501-2", Decimal("-0.0030"))]
            rows = await conn.fetch("SELECT * FROM carry_positions")
            assert [(r["carry_id"], r["state"], str(r["spot_qty"]), r["exit_basis_bps"], r["pnl_usd"],
                     r["updated_ns"]) for r in rows] == [(501, "closed", "0.000", 1.25, 0.1375, events[5].ts_ns)]
        finally:
            await conn.close()
            if bridge.state.value not in ("STOPPED", "READY"):
                await stop(bridge)
            await stop(executor)
            sub.close()
            redis.close()
