"""A tiny HTTP client for tests of draizer's HTTP API (status, headers and decoded JSON, errors included), and a
loopback aiohttp server answering whatever a test's handler says (a venue with a broken answer)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple

from aiohttp import web


class Answer(NamedTuple):
    status: int
    headers: dict[str, str]
    body: Any  # decoded JSON, or the text when it is not JSON


def call(method: str, url: str, token: str | None = None, timeout: float = 10.0) -> Answer:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    req = urllib.request.Request(url, method=method, headers=headers, data=b"" if method == "POST" else None)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            status, hdrs, raw = resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as err:
        status, hdrs, raw = err.code, dict(err.headers), err.read()
        err.close()
    try:
        body: Any = json.loads(raw)
    except ValueError:
        body = raw.decode(errors="replace")
    return Answer(status, hdrs, body)


def without_ages(data: Any) -> Any:
    """JSON with every ``*age_s`` field removed: ages are relative to when it was read, the rest is the snapshot."""
    if isinstance(data, dict):
        return {k: without_ages(v) for k, v in data.items() if not k.endswith("age_s")}
    if isinstance(data, list):
        return [without_ages(v) for v in data]
    return data


async def start_server(handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> tuple[web.AppRunner, int]:
    """Every path on a free loopback port goes to ``handler``; the caller cleans up with ``runner.cleanup()``."""
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, port
