"""RedisSink against a real redis-server: plain subscribers and stream readers get the JSON records; a dead
Redis costs the caller nothing, keeps only the newest records, and is reconnected by itself.

The same sink inside a real `draizer run` is covered in tests/test_observability_e2e.py."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
import redis

from services.bridge.records import Record
from services.bridge.redis_sink import RedisSink, masked_url
from shared.config import Sinks
from tests.conftest import eventually_async, free_port
from tests.redis_kit import RedisServer

CHANNELS = ("opportunities", "decisions", "orders", "fills", "executions", "stats")
KINDS = ("opportunity", "decision", "order", "fill", "execution", "metric")


def record(i: int, kind: str = "opportunity") -> Record:
    return Record(kind, str(i), {"id": i, "symbol": "BTCUSDT", "spread_bps": 4.5, "legs": [{"venue": "binance"}]})


@pytest.fixture
def subscriber(redis_db: RedisServer) -> Iterator[redis.client.PubSub]:
    client = redis_db.client()
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(*(f"dz:{c}" for c in CHANNELS))
    yield pubsub
    pubsub.close()
    client.close()


def received(pubsub: redis.client.PubSub, n: int, timeout: float = 10.0) -> list[tuple[str, dict]]:
    out: list[tuple[str, dict]] = []
    deadline = time.monotonic() + timeout
    while len(out) < n and time.monotonic() < deadline:
        msg = pubsub.get_message(timeout=0.2)
        if msg is not None and msg["type"] == "message":
            out.append((msg["channel"].decode(), json.loads(msg["data"])))
    return out


async def test_every_kind_reaches_its_channel_and_stream_as_json(
    redis_db: RedisServer, subscriber: redis.client.PubSub
) -> None:
    sink = RedisSink(redis_db.url, Sinks(redis_channel_prefix="dz", redis_stream_maxlen=1000))
    await sink.start()
    for i, kind in enumerate(KINDS):
        sink.submit(record(i, kind))
    await eventually_async(lambda: sink.n_written == len(KINDS), what="six records written")

    got = received(subscriber, len(KINDS))
    assert [ch for ch, _ in got] == [f"dz:{c}" for c in CHANNELS]
    for (_ch, event), (i, kind) in zip(got, enumerate(KINDS), strict=True):
        assert event == {"kind": kind, "key": str(i), "data": record(i, kind).data}

    with redis_db.client() as c:
        for i, (plural, kind) in enumerate(zip(CHANNELS, KINDS, strict=True)):
            entries = c.xrange(f"dz:stream:{plural}")
            assert len(entries) == 1
            _id, fields = entries[0]
            assert json.loads(fields[b"event"]) == {"kind": kind, "key": str(i), "data": record(i, kind).data}
    await sink.stop()
    assert sink.counters() == {"written": 6, "queued": 0, "dropped": 0, "errors": 0, "reconnects": 0}


async def test_streams_are_capped_approximately_and_can_be_switched_off(redis_db: RedisServer) -> None:
    sink = RedisSink(redis_db.url, Sinks(redis_channel_prefix="dz", redis_stream_maxlen=200, batch_max_rows=50))
    await sink.start()
    for i in range(3000):
        sink.submit(record(i))
    await eventually_async(lambda: sink.n_written == 3000, what="3000 records written")
    await sink.stop()
    with redis_db.client() as c:
        length = c.xlen("dz:stream:opportunities")
        # MAXLEN ~ trims whole radix-tree nodes (100 entries by default): never below the cap, a node above at most
        assert 200 <= length <= 200 + 100, length
        newest = json.loads(c.xrevrange("dz:stream:opportunities", count=1)[0][1][b"event"])
        assert newest["key"] == "2999"
        c.delete("dz:stream:opportunities")

    off = RedisSink(redis_db.url, Sinks(redis_channel_prefix="dz", redis_stream_maxlen=0))
    await off.start()
    off.submit(record(1))
    await eventually_async(lambda: off.n_written == 1, what="published")
    await off.stop()
    with redis_db.client() as c:
        assert c.exists("dz:stream:opportunities") == 0


async def test_redis_down_costs_nothing_keeps_the_newest_and_reconnects(redis_db: RedisServer) -> None:
    redis_db.stop()
    try:
        sink = RedisSink(redis_db.url, Sinks(redis_channel_prefix="dz", redis_stream_maxlen=10_000), max_queue=100)
        await sink.start()  # Redis is down: starting must not fail
        t0 = time.perf_counter()
        for i in range(250):
            sink.submit(record(i))
        assert time.perf_counter() - t0 < 0.05  # submit only queues
        await eventually_async(lambda: sink.n_errors >= 2, what="the writer noticing Redis is down, and retrying")
        c = sink.counters()
        assert (c["queued"], c["dropped"], c["written"]) == (100, 150, 0)
    finally:
        redis_db.start()  # same port: the sink must find it again by itself
    await eventually_async(lambda: sink.n_written == 100, timeout=15, what="the queued records delivered")
    assert sink.n_reconnects == 1
    with redis_db.client() as client:
        keys = [json.loads(f[b"event"])["key"] for _id, f in client.xrange("dz:stream:opportunities")]
    assert keys == [str(i) for i in range(150, 250)]  # the oldest were dropped, the rest arrived in order

    sink.submit(record(250))
    await eventually_async(lambda: sink.n_written == 101, what="live again")
    await sink.stop()


async def test_stop_with_redis_down_is_bounded_and_counts_what_was_lost() -> None:
    sink = RedisSink(f"redis://127.0.0.1:{free_port()}/0", Sinks())  # nothing listens there
    await sink.start()
    for i in range(10):
        sink.submit(record(i))
    t0 = time.monotonic()
    await sink.stop()
    assert time.monotonic() - t0 < 5
    assert sink.counters()["dropped"] == 10
    assert sink.counters()["queued"] == 0


def test_password_is_masked_in_what_gets_logged() -> None:
    assert masked_url("redis://:s3cret@10.0.0.1:6380/2") == "redis://:***@10.0.0.1:6380/2"
    assert masked_url("rediss://app:s3cret@cache.local/0") == "rediss://app:***@cache.local/0"
    assert masked_url("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"
