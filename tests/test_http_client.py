"""The order-entry HTTP client against a real aiohttp server on loopback."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp import web

from shared.http.client import HttpPool
from tests.http_kit import start_server


async def test_requests_reuse_open_connections_and_queue_beyond_the_pool() -> None:
    seen: list[tuple[str, str, bytes]] = []

    async def handler(request: web.Request) -> web.Response:
        seen.append((request.method, request.path_qs, await request.read()))
        await asyncio.sleep(0.01)  # keep connections busy so later requests must queue
        return web.json_response({"ok": request.query.get("n")}, headers={"X-Test": "1"})

    runner, port = await start_server(handler)
    pool = HttpPool(f"http://127.0.0.1:{port}", size=2)
    try:
        await pool.open()
        futures = [pool.request("POST", f"/api/v3/order?n={i}", [("X-MBX-APIKEY", "k")], b"") for i in range(10)]
        responses = await asyncio.wait_for(asyncio.gather(*futures), 10)
        assert [r.status for r in responses] == [200] * 10
        assert [r.body for r in responses] == [f'{{"ok": "{i}"}}'.encode() for i in range(10)]
        assert responses[0].headers["x-test"] == "1"
        assert pool.connects == 2  # ten requests, two connections: keep-alive worked
        assert sorted(q for _, q, _ in seen) == sorted(f"/api/v3/order?n={i}" for i in range(10))
    finally:
        await pool.close()
        await runner.cleanup()


async def test_a_dropped_connection_fails_the_request_instead_of_hanging() -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        assert request.transport is not None
        request.transport.close()  # the venue hangs up mid-request
        raise ConnectionResetError

    runner, port = await start_server(handler)
    pool = HttpPool(f"http://127.0.0.1:{port}", size=1)
    try:
        await pool.open()
        with pytest.raises(ConnectionError):
            await asyncio.wait_for(pool.request("GET", "/x", []), 10)
    finally:
        await pool.close()
        await runner.cleanup()


async def test_nothing_listening_fails_fast() -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    pool = HttpPool(f"http://127.0.0.1:{port}", size=1)
    with pytest.raises(ConnectionError):
        await asyncio.wait_for(pool.request("GET", "/x", []), 10)
