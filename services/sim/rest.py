"""One simulated spot venue's REST API (aiohttp): time, exchangeInfo, depth snapshots, signed orders.

Signed endpoints follow both venues' rules: the API key header, then an HMAC-SHA256 signature over the
query string (without ``signature``) followed by the body, then the timestamp window
(``timestamp < serverTime + 1000`` and ``serverTime - timestamp <= recvWindow``). The venue's dialect
supplies codes, messages and JSON shapes. ``latency_ms`` is split between the way in (the order meets
the book as it is when the request "arrives") and the way out.

``GET /api/v3/depth?symbol=X&limit=N`` answers the venue's current L2 book (best first, ``limit`` levels,
default 100, at most 5000) with ``lastUpdateId`` in the same id space as the streams; Binance weighs it
by ``limit``. Test hooks (not venue API): ``GET /sim/balances`` (API key header required), plus those of
``rest_common``.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections.abc import Mapping, Sequence
from decimal import Decimal
from urllib.parse import parse_qsl

from aiohttp import web

from services.sim.book import BAD_SYMBOL, Reject, SimOrder, VenueBook
from services.sim.depth import DepthBook
from services.sim.dialect import ApiError, Dialect, plain
from services.sim.rest_common import RestServer, SimHooks, json_response, now_ms
from shared.config import Venue
from shared.venues.binance.constants import DEPTH_PATH, MAX_DEPTH_LIMIT
from shared.venues.common import hmac_sha256_hex

log = logging.getLogger(__name__)

DEFAULT_RECV_WINDOW_MS = 5000
MAX_RECV_WINDOW_MS = 60_000
CLOCK_TOLERANCE_MS = 1000  # a timestamp may run this far ahead of the server clock
DEFAULT_DEPTH_LIMIT = 100


def depth_weight(limit: int) -> int:
    """Binance's request weight of ``GET /api/v3/depth`` by ``limit``."""
    if limit <= 100:
        return 5
    if limit <= 500:
        return 25
    return 50 if limit <= 1000 else 250


def split_signature(text: str) -> tuple[str, str | None]:
    """``text`` without its trailing ``signature=`` parameter, and that signature (None if absent)."""
    if text.startswith("signature="):
        return "", text[len("signature=") :]
    i = text.rfind("&signature=")
    if i < 0:
        return text, None
    return text[:i], text[i + len("&signature=") :]


class _Weights:
    """Binance's usage headers: request weight per minute, orders per 10 s and per day."""

    def __init__(self) -> None:
        self._buckets: dict[str, tuple[int, int]] = {}

    def add(self, name: str, window_s: int, n: int = 1) -> int:
        bucket = int(time.time()) // window_s
        start, count = self._buckets.get(name, (bucket, 0))
        count = count + n if start == bucket else n
        self._buckets[name] = (bucket, count)
        return count


class VenueRest(RestServer):
    def __init__(
        self,
        venue: Venue,
        dialect: Dialect,
        book: VenueBook,
        depth: Sequence[DepthBook],  # per symbol, as book.specs
        credentials: Mapping[str, str],  # api key -> secret
        latency_ms: float,
        hooks: SimHooks,
    ) -> None:
        super().__init__(hooks)
        self.venue = venue
        self.dialect = dialect
        self.book = book
        self.depth = depth
        self._secrets = dict(credentials)
        for key in self._secrets:
            book.open_account(key)
        self._half_latency_s = latency_ms / 2000.0
        self._weights = _Weights()

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/api/v3/time", self._time)
        app.router.add_get("/api/v3/exchangeInfo", self._exchange_info)
        app.router.add_get(DEPTH_PATH, self._depth)
        app.router.add_post("/api/v3/order", self._new_order)
        app.router.add_get("/api/v3/order", self._query_order)
        app.router.add_get("/sim/balances", self._balances)

    # ----- responses
    def _json(self, body: object, status: int = 200, orders: int = 0, weight: int = 1) -> web.Response:
        headers: dict[str, str] = {}
        if self.dialect.extra_headers:
            headers["X-MBX-USED-WEIGHT-1M"] = str(self._weights.add("weight", 60, weight + orders))
            if orders:
                headers["X-MBX-ORDER-COUNT-10S"] = str(self._weights.add("orders10s", 10, orders))
                headers["X-MBX-ORDER-COUNT-1D"] = str(self._weights.add("orders1d", 86400, orders))
        return json_response(body, status, headers)

    def _error(self, e: ApiError, weight: int = 1) -> web.Response:
        return self._json({"code": e.code, "msg": e.msg}, e.http_status, weight=weight)

    # ----- authentication
    async def _authenticate(self, request: web.Request) -> tuple[str, dict[str, str]] | ApiError:
        """The API key, and the parameters once key, signature and timestamp are good."""
        d = self.dialect
        api_key = request.headers.get(d.api_key_header, "")
        if not api_key:
            return d.missing_api_key()
        secret = self._secrets.get(api_key)
        if secret is None:
            return d.unknown_api_key()
        query, sig_q = split_signature(request.rel_url.raw_query_string)
        body_text = (await request.read()).decode("latin-1")
        body, sig_b = split_signature(body_text)
        signature = sig_q if sig_q is not None else sig_b
        if signature is None:
            return d.missing_param("signature")
        expected = hmac_sha256_hex(secret, query + body)
        if not (d.check_signature_text(signature) and hmac.compare_digest(signature.lower(), expected)):
            return d.bad_signature()
        params = dict(parse_qsl(body, keep_blank_values=True))
        params.update(parse_qsl(query, keep_blank_values=True))  # the query string wins, as on both venues
        problem = self._check_timestamp(params)
        return problem if problem is not None else (api_key, params)

    def _check_timestamp(self, params: Mapping[str, str]) -> ApiError | None:
        d = self.dialect
        ts_text = params.get("timestamp", "")
        if not ts_text:
            return d.missing_param("timestamp")
        if not ts_text.isdigit():
            return d.bad_param("timestamp")
        try:
            recv_window = float(params.get("recvWindow", DEFAULT_RECV_WINDOW_MS))
        except ValueError:
            return d.bad_param("recvWindow")
        if not 0 < recv_window <= MAX_RECV_WINDOW_MS:
            return d.bad_recv_window()
        server, ts = now_ms(), int(ts_text)
        if not (ts < server + CLOCK_TOLERANCE_MS and server - ts <= recv_window):
            return d.bad_timestamp()
        return None

    # ----- handlers
    async def _time(self, request: web.Request) -> web.Response:
        self.requests += 1
        return self._json({"serverTime": now_ms()})

    async def _exchange_info(self, request: web.Request) -> web.Response:
        self.requests += 1
        wanted_text = request.query.get("symbol") or request.query.get("symbols") or ""
        # Binance writes symbols=["A","B"], MEXC symbols=A,B: strip the JSON dressing, split on commas.
        wanted = [w.strip(' "') for w in wanted_text.strip("[]").split(",") if w.strip(' "')]
        specs = [self.book.specs[i] for i in self.book.index.values()]
        if wanted:
            unknown = [w for w in wanted if w not in self.book.index]
            if unknown:
                return self._error(self.dialect.rejection(Reject(BAD_SYMBOL, unknown[0])))
            specs = [self.book.specs[self.book.index[w]] for w in wanted]
        return self._json(self.dialect.exchange_info(self.venue, specs, now_ms()))

    async def _depth(self, request: web.Request) -> web.Response:
        self.requests += 1
        d = self.dialect
        limit = DEFAULT_DEPTH_LIMIT
        limit_text = request.query.get("limit", "")
        if limit_text:
            if not limit_text.isdigit() or int(limit_text) < 1:
                return self._error(d.bad_param("limit"))
            limit = min(int(limit_text), MAX_DEPTH_LIMIT)
        weight = depth_weight(limit)
        symbol = request.query.get("symbol", "")
        if not symbol:
            return self._error(d.missing_param("symbol"), weight)
        s = self.book.index.get(symbol)
        if s is None:
            return self._error(d.rejection(Reject(BAD_SYMBOL, symbol)), weight)
        book = self.depth[s]
        update_id, bids, asks = book.top(limit)
        body: dict[str, object] = {
            "lastUpdateId": update_id,
            "bids": book.text_levels(bids),
            "asks": book.text_levels(asks),
        }
        if d.depth_timestamp:
            body["timestamp"] = now_ms()
        return self._json(body, weight=weight)

    async def _new_order(self, request: web.Request) -> web.Response:
        self.requests += 1
        await asyncio.sleep(self._half_latency_s)
        result = await self._place(request)
        await asyncio.sleep(self._half_latency_s)
        if isinstance(result, ApiError):
            return self._error(result)
        order, response_type = result
        return self._json(self.dialect.new_order_response(order, response_type), orders=1)

    async def _place(self, request: web.Request) -> tuple[SimOrder, str] | ApiError:
        d = self.dialect
        auth = await self._authenticate(request)
        if isinstance(auth, ApiError):
            return auth
        api_key, params = auth
        for name in ("symbol", "side", "type", "quantity"):
            if not params.get(name):
                return d.missing_param(name)
        kind = d.order_kind(params)
        if isinstance(kind, ApiError):
            return kind
        price = params.get("price", "")
        if kind.kind != "MARKET" and not price:
            return d.missing_param("price")
        symbol = params["symbol"]
        spec_index = self.book.index.get(symbol)
        limit = d.price_decimals_limit(self.book.specs[spec_index]) if spec_index is not None else None
        cid = params.get("newClientOrderId") or f"sim{time.time_ns():x}"
        ticket = self.book.validate(
            symbol, params["side"], kind.kind, price, params["quantity"], cid, price_decimals_limit=limit
        )
        if isinstance(ticket, Reject):
            return d.rejection(ticket)
        order = self.book.execute(api_key, ticket, now_ms())
        if isinstance(order, Reject):
            return d.rejection(order)
        return order, kind.response_type

    async def _query_order(self, request: web.Request) -> web.Response:
        self.requests += 1
        await asyncio.sleep(self._half_latency_s)
        d = self.dialect
        auth = await self._authenticate(request)
        await asyncio.sleep(self._half_latency_s)
        if isinstance(auth, ApiError):
            return self._error(auth)
        api_key, params = auth
        symbol = params.get("symbol", "")
        if not symbol:
            return self._error(d.missing_param("symbol"))
        if symbol not in self.book.index:
            return self._error(d.rejection(Reject(BAD_SYMBOL, symbol)))
        cid, order_id = params.get("origClientOrderId", ""), params.get("orderId", "")
        order: SimOrder | None = None
        if cid:
            order = self.book.find(api_key, cid)
        elif order_id:
            number = d.order_number(order_id)
            order = self.book.find_by_number(api_key, number) if number is not None else None
        else:
            return self._error(d.missing_order_id())
        if order is None or order.spec.name != symbol:
            return self._error(d.no_such_order())
        return self._json(self.dialect.query_response(order))

    async def _balances(self, request: web.Request) -> web.Response:
        api_key = request.headers.get(self.dialect.api_key_header, "")
        if not api_key:
            return self._error(self.dialect.missing_api_key())
        if api_key not in self._secrets:
            return self._error(self.dialect.unknown_api_key())
        balances: dict[str, Decimal] = self.book.balances(api_key)
        return self._json({asset: plain(amount) for asset, amount in sorted(balances.items())})
