"""What every simulated venue's REST server shares: the aiohttp runner and the sim-only test hooks.

Test hooks (not venue API), on every venue's REST port: ``GET /sim/stats`` and ``POST /sim/fault`` with
``{"kind":..,"symbol":..,"seconds":..}`` → ``{"ok":true}``, or 400 ``{"ok":false,"error":"<why>"}``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any, NamedTuple

import msgspec
from aiohttp import web

from services.sim import faults
from services.sim.faults import FaultError


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class SimHooks(NamedTuple):
    stats: Callable[[], dict[str, Any]]
    inject: Callable[[str, str | None, float | None], None]  # kind, symbol, seconds; raises FaultError
    marks: Callable[[], dict[str, Decimal]] | None = None  # spot venues: USD per asset now (Simulator.marks)


def json_response(body: object, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        status=status, body=msgspec.json.encode(body), content_type="application/json", headers=headers
    )


class RestServer:
    """Start/stop of one aiohttp app on its own port; subclasses add the venue's routes in ``routes``."""

    def __init__(self, hooks: SimHooks) -> None:
        self.hooks = hooks
        self.requests = 0
        self.port = 0
        self._runner: web.AppRunner | None = None

    def routes(self, app: web.Application) -> None:
        raise NotImplementedError

    def middlewares(self) -> list[Any]:
        """aiohttp middlewares wrapped around every route (a venue's rate limits)."""
        return []

    def app(self) -> web.Application:
        app = web.Application(middlewares=self.middlewares())
        self.routes(app)
        app.router.add_get("/sim/stats", self._stats)
        app.router.add_post("/sim/fault", self._fault)
        return app

    async def start(self, host: str, port: int) -> int:
        runner = web.AppRunner(self.app(), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        await site.start()
        self._runner = runner
        self.port = int(runner.addresses[0][1])
        return self.port

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _stats(self, request: web.Request) -> web.Response:
        return json_response({**self.hooks.stats(), "requests": self.requests})

    async def _fault(self, request: web.Request) -> web.Response:
        try:
            req = faults.parse_request(await request.read())
            self.hooks.inject(req.kind, req.symbol, req.seconds)
        except FaultError as exc:
            return json_response({"ok": False, "error": str(exc)}, 400)
        return json_response({"ok": True})
