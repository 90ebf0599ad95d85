"""The request limits the simulated MEXC contract API enforces, as its docs state them per endpoint.

Every endpoint draizer uses is documented at "Rate limit: 20 times/2 seconds", ``contract/detail`` at 1 per 5 s;
each endpoint (method and route, path parameters not told apart) counts on its own. Over a limit, or while a
``rate_limit`` order fault is active (``Simulator.inject_order_fault``), a request is answered HTTP 429 with
``Retry-After`` (seconds) and the envelope of code 510 "Excessive frequency of requests". The docs give the code
but not the HTTP status: 429 is what MEXC's spot API and the wider MEXC rate-limit pages answer. Windows start
with their first request (as in ``rate_limits``); the sim's ``/sim/*`` hooks are never limited.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from services.sim.rate_limits import Window
from services.sim.rest_common import json_response
from shared.venues.mexc import contract_orders as m

THROTTLE_MESSAGE = "Excessive frequency of requests"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ContractGate:
    """Admits or refuses each request by its endpoint; ``fault`` refuses every request for a while."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._windows: dict[str, Window] = {}
        self.fault_until = 0.0
        self.limited = 0

    def fault(self, seconds: float) -> None:
        self.fault_until = max(self.fault_until, self._clock() + seconds)

    def admit(self, method: str, route: str) -> int | None:
        """None if the request may proceed, else the seconds to wait (at least 1)."""
        now = self._clock()
        if now < self.fault_until:
            self.limited += 1
            return max(1, int(self.fault_until - now + 0.999))
        key = f"{method} {route}"
        window = self._windows.get(key)
        if window is None:
            limit, seconds = m.CONTRACT_DETAIL_LIMIT if route == m.CONTRACT_DETAIL_PATH else m.PRIVATE_LIMIT
            window = self._windows[key] = Window(seconds, limit)
        if window.current(now) >= window.limit:
            self.limited += 1
            return window.retry_after(now)
        window.count += 1
        return None

    def middleware(self, on_refusal: Callable[[], None]) -> Any:
        """The aiohttp middleware; ``on_refusal`` counts a refused request as served."""

        @web.middleware
        async def rate_limits(request: web.Request, handler: Handler) -> web.StreamResponse:
            if request.path.startswith("/sim/"):
                return await handler(request)
            resource = request.match_info.route.resource
            wait = self.admit(request.method, resource.canonical if resource is not None else request.path)
            if wait is None:
                return await handler(request)
            on_refusal()
            body = {"success": False, "code": m.ERR_TOO_FREQUENT, "message": THROTTLE_MESSAGE}
            return json_response(body, 429, {"Retry-After": str(wait)})

        return rate_limits
