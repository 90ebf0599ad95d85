"""One simulated spot venue's REST API (aiohttp): time, exchangeInfo, depth snapshots, signed orders.

Signed endpoints follow both venues' rules: the API key header, then an HMAC-SHA256 signature over the
query string (without ``signature``) followed by the body, then the timestamp window
(``timestamp < serverTime + 1000`` and ``serverTime - timestamp <= recvWindow``). The venue's dialect
supplies codes, messages and JSON shapes. ``latency_ms`` is split between the way in (the order meets
the book as it is when the request "arrives") and the way out, each half plus a uniform random extra of up
to ``latency_jitter_ms`` drawn from the venue's seeded generator.

``GET /api/v3/depth?symbol=X&limit=N`` answers the venue's current L2 book (best first, ``limit`` levels,
default 100, at most 5000) with ``lastUpdateId`` in the same id space as the streams. Every request passes
the venue's rate limits first (``rate_limits``; Binance's usage headers go on every answer). Account
endpoints (account, myTrades, cancels, open orders) live in ``rest_account``; order faults in
``order_faults``. Test hooks (not venue API): ``GET /sim/balances`` (API key header required),
``GET /sim/starting_balances`` (the same at the account's start), ``GET /sim/marks`` (USD per asset now),
``POST /sim/order_fault``, ``GET /sim/order_faults``, ``GET /sim/path_counts`` (venue API requests per method and
path), plus those of ``rest_common``.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

from services.sim import order_faults
from services.sim.book import BAD_SYMBOL, INSUFFICIENT, Reject, SimOrder, VenueBook, half_cap
from services.sim.depth import DepthBook
from services.sim.dialect import ApiError, Dialect, plain
from services.sim.faults import FaultError
from services.sim.order_faults import OrderFault, OrderFaults
from services.sim.rate_limits import ORDER_PATH, RateGate, SimRateLimits, request_weight
from services.sim.rest_account import AccountApi
from services.sim.rest_common import RestServer, SimHooks, json_response, now_ms
from shared.config import Venue
from shared.venues.binance.constants import DEPTH_PATH, MAX_DEPTH_LIMIT
from shared.venues.common import hmac_sha256_hex

log = logging.getLogger(__name__)

DEFAULT_RECV_WINDOW_MS = 5000
MAX_RECV_WINDOW_MS = 60_000
CLOCK_TOLERANCE_MS = 1000  # a timestamp may run this far ahead of the server clock


def check_timestamp(d: Dialect, params: Mapping[str, str], skew_ms: int = 0) -> ApiError | None:
    """A signed request's ``timestamp`` and ``recvWindow`` as Binance checks them (spot and USD-M alike): None when
    the request is in its window, else the venue's error."""
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
    server, ts = now_ms() + skew_ms, int(ts_text)
    if not (ts < server + CLOCK_TOLERANCE_MS and server - ts <= recv_window):
        return d.bad_timestamp()
    return None
DEFAULT_DEPTH_LIMIT = 100

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def split_signature(text: str) -> tuple[str, str | None]:
    """``text`` without its trailing ``signature=`` parameter, and that signature (None if absent)."""
    if text.startswith("signature="):
        return "", text[len("signature=") :]
    i = text.rfind("&signature=")
    if i < 0:
        return text, None
    return text[:i], text[i + len("&signature=") :]


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
        *,
        jitter_ms: float = 0.0,
        rng: random.Random | None = None,
        limits: SimRateLimits | None = None,
    ) -> None:
        """``limits``: the venue's documented ones unless a test passes smaller ones."""
        super().__init__(hooks)
        self.venue = venue
        self.dialect = dialect
        self.book = book
        self.depth = depth
        self._secrets = dict(credentials)
        for key in self._secrets:
            book.open_account(key)
        self._half_latency_s = latency_ms / 2000.0
        self._jitter_s = jitter_ms / 1000.0
        self._rng = rng or random.Random(0)
        self.limits = limits or SimRateLimits()
        self.gate = RateGate(self.limits, binance=dialect.binance_limits)
        self.faults = OrderFaults()
        self.account_api = AccountApi(self)
        # The venue's clock minus the host's (``Simulator.skew_clock``): its time answer and its recvWindow check
        # both read the skewed clock, as a venue whose clock differs from ours would.
        self.clock_skew_ms = 0
        self.user_data: Any = None  # a listen-key venue's user data (its routes added here; set by the venue)
        self.path_counts: Counter[tuple[str, str]] = Counter()  # (method, path) -> venue API requests arrived

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/api/v3/time", self._time)
        app.router.add_get("/api/v3/exchangeInfo", self._exchange_info)
        app.router.add_get(DEPTH_PATH, self._depth)
        app.router.add_post(ORDER_PATH, self._new_order)
        app.router.add_get(ORDER_PATH, self._query_order)
        self.account_api.routes(app)
        if self.user_data is not None:
            self.user_data.routes(app, self)
        app.router.add_get("/sim/balances", self._balances)
        app.router.add_get("/sim/starting_balances", self._balances)
        app.router.add_get("/sim/marks", self._marks)
        app.router.add_get("/sim/account_orders", self._account_orders)
        app.router.add_post("/sim/order_fault", self._order_fault)
        app.router.add_get("/sim/order_faults", self._order_faults)
        app.router.add_get("/sim/path_counts", self._path_counts)

    def middlewares(self) -> list[Any]:
        @web.middleware
        async def rate_limits(request: web.Request, handler: Handler) -> web.StreamResponse:
            path, method = request.path, request.method
            if path.startswith("/sim/"):
                return await handler(request)
            self.path_counts[method, path] += 1
            refusal = self.gate.admit(method, path, request_weight(method, path, dict(request.query)))
            if refusal is None:
                resp = await handler(request)
            else:
                self.requests += 1
                e = self.dialect.rate_refusal(refusal, self.limits, now_ms())
                headers = {"Retry-After": str(refusal.retry_after)}
                resp = json_response({"code": e.code, "msg": e.msg}, e.http_status, headers)
            resp.headers.update(self.gate.headers(method == "POST" and path == ORDER_PATH))
            return resp

        return [rate_limits]

    # ----- responses
    def json(self, body: object, status: int = 200) -> web.Response:
        return json_response(body, status)

    def error(self, e: ApiError) -> web.Response:
        return json_response({"code": e.code, "msg": e.msg}, e.http_status)

    async def delay(self) -> None:
        """Half the round trip (the way in or the way out), with its jitter."""
        seconds = self._half_latency_s
        if self._jitter_s:
            seconds += self._rng.uniform(0.0, self._jitter_s)
        await asyncio.sleep(seconds)

    # ----- authentication
    async def arrive(self, request: web.Request) -> tuple[str, dict[str, str]] | ApiError:
        """A signed request after its way in: the API key and parameters, or what is wrong with it."""
        self.requests += 1
        await self.delay()
        return await self._authenticate(request)

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
        problem = check_timestamp(self.dialect, params, self.clock_skew_ms)
        return problem if problem is not None else (api_key, params)

    def symbol_index(self, params: Mapping[str, str], *, required: bool = True) -> int | ApiError | None:
        """The ``symbol`` parameter as an index (None when absent and not required)."""
        symbol = params.get("symbol", "")
        if not symbol:
            return self.dialect.missing_param("symbol") if required else None
        s = self.book.index.get(symbol)
        return self.dialect.rejection(Reject(BAD_SYMBOL, symbol)) if s is None else s

    def find_order(self, api_key: str, params: Mapping[str, str]) -> SimOrder | ApiError:
        """The order named by ``symbol`` and ``origClientOrderId`` or ``orderId``."""
        d = self.dialect
        s = self.symbol_index(params)
        if isinstance(s, ApiError):
            return s
        cid, order_id = params.get("origClientOrderId", ""), params.get("orderId", "")
        order: SimOrder | None = None
        if cid:
            order = self.book.find(api_key, cid)
        elif order_id:
            number = d.order_number(order_id)
            order = self.book.find_by_number(api_key, number) if number is not None else None
        else:
            return d.missing_order_id()
        if order is None or order.ticket.symbol != s:
            return d.no_such_order()
        return order

    # ----- handlers
    async def _time(self, request: web.Request) -> web.Response:
        self.requests += 1
        return self.json({"serverTime": now_ms() + self.clock_skew_ms})

    async def _exchange_info(self, request: web.Request) -> web.Response:
        self.requests += 1
        wanted_text = request.query.get("symbol") or request.query.get("symbols") or ""
        # Binance writes symbols=["A","B"], MEXC symbols=A,B: strip the JSON dressing, split on commas.
        wanted = [w.strip(' "') for w in wanted_text.strip("[]").split(",") if w.strip(' "')]
        specs = [self.book.specs[i] for i in self.book.index.values()]
        if wanted:
            unknown = [w for w in wanted if w not in self.book.index]
            if unknown:
                return self.error(self.dialect.rejection(Reject(BAD_SYMBOL, unknown[0])))
            specs = [self.book.specs[self.book.index[w]] for w in wanted]
        return self.json(self.dialect.exchange_info(self.venue, specs, now_ms()))

    async def _depth(self, request: web.Request) -> web.Response:
        self.requests += 1
        d = self.dialect
        limit = DEFAULT_DEPTH_LIMIT
        limit_text = request.query.get("limit", "")
        if limit_text:
            if not limit_text.isdigit() or int(limit_text) < 1:
                return self.error(d.bad_param("limit"))
            limit = min(int(limit_text), MAX_DEPTH_LIMIT)
        s = self.symbol_index(request.query)
        if isinstance(s, ApiError) or s is None:
            return self.error(s or d.missing_param("symbol"))
        book = self.depth[s]
        update_id, bids, asks = book.top(limit)
        body: dict[str, object] = {
            "lastUpdateId": update_id,
            "bids": book.text_levels(bids),
            "asks": book.text_levels(asks),
        }
        if d.depth_timestamp:
            body["timestamp"] = now_ms()
        return self.json(body)

    async def _new_order(self, request: web.Request) -> web.Response:
        auth = await self.arrive(request)
        result = auth if isinstance(auth, ApiError) else self._place(*auth)
        if isinstance(result, ApiError):
            await self.delay()
            return self.error(result)
        api_key, order, response_type, fault = result
        if fault is not None and fault.kind == order_faults.SLOW:
            await asyncio.sleep(fault.seconds or 0.0)
            self.book.match(api_key, order, now_ms())  # nothing happens if it was cancelled meanwhile
        await self.delay()
        if fault is not None and fault.kind == order_faults.ERROR_AFTER_ACCEPT:
            return self.error(self.dialect.status_unknown())
        return self.json(self.dialect.new_order_response(order, response_type))

    def _place(
        self, api_key: str, params: dict[str, str]
    ) -> tuple[str, SimOrder, str, OrderFault | None] | ApiError:
        d = self.dialect
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
        fault = self.faults.take(symbol, ticket.side)
        fault_kind = fault.kind if fault is not None else ""
        if fault_kind == order_faults.REJECT:
            return d.rejection(self.book.reject(INSUFFICIENT, "fault"))
        if fault_kind == order_faults.SLOW:
            order = self.book.accept(api_key, ticket, now_ms(), hold=True)
        else:
            cap = half_cap(self.book.specs[ticket.symbol], ticket.qty) if fault_kind == order_faults.PARTIAL else None
            order = self.book.execute(api_key, ticket, now_ms(), cap)
        if isinstance(order, Reject):
            return d.rejection(order)
        return api_key, order, kind.response_type, fault

    async def _query_order(self, request: web.Request) -> web.Response:
        auth = await self.arrive(request)
        order = auth if isinstance(auth, ApiError) else self.find_order(*auth)
        await self.delay()
        if isinstance(order, ApiError):
            return self.error(order)
        return self.json(self.dialect.query_response(order))

    # ----- test hooks
    async def _balances(self, request: web.Request) -> web.Response:
        api_key = request.headers.get(self.dialect.api_key_header, "")
        if not api_key:
            return self.error(self.dialect.missing_api_key())
        if api_key not in self._secrets:
            return self.error(self.dialect.unknown_api_key())
        if request.path == "/sim/starting_balances":
            balances: dict[str, Decimal] = self.book.starting_balances(api_key)
        else:
            balances = self.book.balances(api_key)
        return self.json({asset: plain(amount) for asset, amount in sorted(balances.items())})

    async def _account_orders(self, request: web.Request) -> web.Response:
        """Every order of the key's account with its fills (the venue's side of a reconciliation, for tests)."""
        api_key = request.headers.get(self.dialect.api_key_header, "")
        if api_key not in self._secrets:
            return self.error(self.dialect.unknown_api_key() if api_key else self.dialect.missing_api_key())
        return self.json([
            {"symbol": o.spec.name, "client_order_id": o.ticket.client_order_id, "status": o.status,
             "trade_ids": [f.trade_id for f in o.fills]}
            for o in self.book.every_order(api_key)
        ])

    async def _path_counts(self, request: web.Request) -> web.Response:
        """The venue API requests that arrived, as ``{"METHOD /path": n}`` (what a client did, seen from here)."""
        return self.json({f"{m} {p}": n for (m, p), n in sorted(self.path_counts.items())})

    async def _marks(self, request: web.Request) -> web.Response:
        """USD per asset now, as ``Simulator.marks`` values them (for settling a paper run at mark prices)."""
        marks = self.hooks.marks() if self.hooks.marks is not None else {}
        return self.json({asset: plain(mark) for asset, mark in sorted(marks.items())})

    def inject_order_fault(self, fault: OrderFault) -> None:
        """Arm ``fault``; FaultError if the sim cannot carry it out."""
        order_faults.check(fault, self.book.index)
        self.faults.arm(fault)
        if fault.kind == order_faults.RATE_LIMIT:
            self.gate.fault(fault.seconds or 0.0)
        log.warning("sim %s: armed order fault %s", self.venue.name, fault)

    def order_fault_listing(self) -> list[dict[str, Any]]:
        out = self.faults.listing()
        remaining = self.gate.fault_remaining()
        if remaining:
            out.append({"kind": order_faults.RATE_LIMIT, "count": 1, "seconds": remaining, "symbol": None,
                        "side": None})
        return out

    async def _order_fault(self, request: web.Request) -> web.Response:
        try:
            self.inject_order_fault(order_faults.parse_request(await request.read()))
        except FaultError as exc:
            return json_response({"ok": False, "error": str(exc)}, 400)
        return json_response({"ok": True})

    async def _order_faults(self, request: web.Request) -> web.Response:
        return json_response(self.order_fault_listing())
