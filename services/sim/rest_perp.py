"""A simulated perpetual venue's REST API: funding and mark price here; orders and accounts from the kind's
order API (``Simulated.perp_orders``: ``rest_futures_binance``, ``rest_contract_mexc``), served on the same port.

Binance USD-M: ``GET /fapi/v1/premiumIndex[?symbol=BTCUSDT]`` (one object, or a list of all symbols
without ``symbol``). MEXC contract: ``GET /api/v1/contract/funding_rate/BTC_USDT`` with JSON numbers.
Values are what the venue last pushed (the model's current values before the first push).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

from aiohttp import web

from services.sim.perp import MAX_RATE, FundingPoint
from services.sim.rest_common import RestServer, SimHooks, json_response, now_ms
from services.sim.units import SymbolSpec
from services.sim.ws_mexc_contract import contract_symbol, json_number
from shared.venues.binance.constants import ERR_BAD_SYMBOL, MSG_BAD_SYMBOL, PREMIUM_INDEX_PATH
from shared.venues.mexc.constants import FUNDING_RATE_PATH

INTEREST_RATE = "0.00010000"  # Binance's usual interest component, per period
MEXC_NO_CONTRACT = 1001  # MEXC contract API: "contract not exist"

PointOf = Callable[[int], FundingPoint]


class PerpApi(Protocol):
    """A perpetual venue's order and account API, mounted on its funding REST server."""

    requests: int

    def routes(self, app: web.Application) -> None: ...

    def middlewares(self) -> list[Any]: ...


class PerpRest(RestServer):
    """What every perpetual venue's REST API knows: its symbols and where their funding points come from.
    The venue kind's declaration names the subclass that speaks its API (``Simulated.funding_rest``)."""

    def __init__(
        self,
        specs: Sequence[SymbolSpec],
        listed: Sequence[int],
        point_of: PointOf,
        funding_period_s: int,
        hooks: SimHooks,
        pin_rate: Callable[[int, float | None], None] | None = None,
    ) -> None:
        super().__init__(hooks)
        self.pin_rate = pin_rate
        self.specs = specs
        self.listed = list(listed)
        self.point_of = point_of
        self.collect_cycle_h = funding_period_s / 3600
        self._by_name = {specs[i].name: i for i in listed}
        self._by_contract = {contract_symbol(specs[i]): i for i in listed}
        self.apis: list[PerpApi] = []  # the order API, when the venue's kind declares one

    def app(self) -> web.Application:
        app = super().app()
        app.router.add_post("/sim/funding_rate", self._pin_funding_rate)
        for api in self.apis:
            api.routes(app)
        return app

    async def _pin_funding_rate(self, request: web.Request) -> web.Response:
        """Test hook: ``?symbol=BTCUSDT&rate=-0.0001`` holds that symbol's funding rate (every perp venue's, as
        they share the model); no ``rate`` lets it walk again."""
        s = self._by_name.get(request.query.get("symbol", ""))
        if s is None or self.pin_rate is None:
            return web.json_response({"error": "unknown symbol"}, status=400)
        text = request.query.get("rate")
        try:
            rate = None if text is None else float(text)
        except ValueError:
            return web.json_response({"error": f"rate {text!r} is not a number"}, status=400)
        self.pin_rate(s, rate)
        return web.json_response({"symbol": self.specs[s].name, "rate": rate})

    def middlewares(self) -> list[Any]:
        return [m for api in self.apis for m in api.middlewares()]


class BinancePremiumIndexRest(PerpRest):
    """Binance USD-M: ``GET /fapi/v1/premiumIndex[?symbol=BTCUSDT]``."""

    def routes(self, app: web.Application) -> None:
        app.router.add_get(PREMIUM_INDEX_PATH, self._premium_index)

    def _premium(self, s: int) -> dict[str, object]:
        pt = self.point_of(s)
        return {
            "symbol": self.specs[s].name,
            "markPrice": pt.mark_text,
            "indexPrice": pt.index_text,
            "estimatedSettlePrice": pt.index_text,
            "lastFundingRate": pt.rate_text,
            "interestRate": INTEREST_RATE,
            "nextFundingTime": pt.next_funding_ms,
            "time": now_ms(),
        }

    async def _premium_index(self, request: web.Request) -> web.Response:
        self.requests += 1
        symbol = request.query.get("symbol")
        if symbol is None:
            return json_response([self._premium(s) for s in self.listed])
        s = self._by_name.get(symbol)
        if s is None:
            return json_response({"code": ERR_BAD_SYMBOL, "msg": MSG_BAD_SYMBOL}, 400)
        return json_response(self._premium(s))


class MexcFundingRateRest(PerpRest):
    """MEXC contract: ``GET /api/v1/contract/funding_rate/BTC_USDT``."""

    def routes(self, app: web.Application) -> None:
        app.router.add_get(FUNDING_RATE_PATH + "{symbol}", self._funding_rate)

    async def _funding_rate(self, request: web.Request) -> web.Response:
        self.requests += 1
        name = request.match_info["symbol"]
        s = self._by_contract.get(name)
        if s is None:
            return json_response({"success": False, "code": MEXC_NO_CONTRACT, "message": "contract not exist"})
        pt = self.point_of(s)
        cycle = int(self.collect_cycle_h) if self.collect_cycle_h.is_integer() else self.collect_cycle_h
        data = {
            "symbol": name,
            "fundingRate": json_number(pt.rate),
            "maxFundingRate": json_number(MAX_RATE),
            "minFundingRate": json_number(-MAX_RATE),
            "collectCycle": cycle,
            "nextSettleTime": pt.next_funding_ms,
            "timestamp": now_ms(),
        }
        return json_response({"success": True, "code": 0, "data": data})
