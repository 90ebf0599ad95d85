"""A thin order acceptor: each spot venue's REST port, answering the executor in the venue's own JSON at once.

It measures the engine, not the venue: **no signature check, no timestamp window, no rate limits, no book**.
Every order fills completely at its own limit price and quantity (a MARKET order at the last quote sent),
with the venue's taker commission, in one fill. The answers are the simulator's own shapes, rendered by
the simulator's dialects (``services/sim/dialect_binance.py``, ``dialect_mexc.py``), so the executor's
parsers read them exactly as they read the simulator's: Binance a FULL answer with status FILLED and its
fills; MEXC its acknowledgement (``orderId`` a string), then FILLED on query and the fill in ``myTrades``.

Endpoints: ``GET /api/v3/time``, ``GET /api/v3/exchangeInfo`` (Binance filters PRICE_FILTER / LOT_SIZE /
NOTIONAL from the config's tick, step and min notional; MEXC precisions), ``GET /api/v3/account`` (a billion
dollars of every asset), ``GET /api/v3/depth`` (one level a side: the last quote sent), ``POST /api/v3/order``,
``GET /api/v3/order`` (by origClientOrderId or orderId), ``DELETE /api/v3/order`` (-2011 "Unknown order
sent.": a filled order is not open, as on the venue and the simulator), ``GET`` / ``DELETE
/api/v3/openOrders`` (``[]``), ``GET /api/v3/myTrades``, ``GET /api/v3/allOrders`` (what a restarted executor
reconciles with). Binance answers carry ``X-MBX-USED-WEIGHT-1M`` (and
the order counts on orders) with small numbers, so the executor's budget is never corrected upward.

Each new order's arrival is stamped with ``time.monotonic_ns()`` when its first bytes are read from the
socket (before parsing), so the lead can compute wire-to-wire figures against the feed's frame stamps (the
same clock on one host). ``GET /loadgen/stats`` on any venue's port: orders received per venue, frames sent
per venue, the replay rate, and the last ``?last=N`` (default 1000) arrivals with their clientOrderId.

HTTP/1.1 keep-alive, parsed by llhttp (httptools); answers are written in the callback that completed the
request, so pipelined requests are answered in order.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from decimal import ROUND_DOWN, ROUND_UP, Decimal, InvalidOperation
from typing import Any
from urllib.parse import parse_qsl

import httptools
import msgspec

from services.sim import book
from services.sim.book import Reject, SimFill, SimOrder, Ticket
from services.sim.dialect import ApiError, Balance, Dialect
from services.sim.units import USD_ASSETS, SymbolSpec, units_text
from shared.config import Venue
from shared.venues.declaration import load, need
from shared.venues.kinds import kind_of

log = logging.getLogger(__name__)

STATS_PATH = "/loadgen/stats"
DEFAULT_STATS_LAST = 1000
ARRIVALS_KEPT = 100_000
BALANCE_USD = Decimal(1_000_000_000)  # of every asset: no order is ever short of funds
COMMISSION_QUANTUM = Decimal("1e-8")
REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 500: "Internal Server Error"}

TopLookup = Callable[[str, int], tuple[int, int, int, int, int] | None]  # venue, symbol -> the last quote sent
_encode = msgspec.json.encode


class Arrivals:
    """Orders received per venue and the last ``ARRIVALS_KEPT`` arrival stamps, shared by every venue."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.stamps: deque[tuple[str, str, int]] = deque(maxlen=ARRIVALS_KEPT)  # (venue, client id, ns)

    def note(self, venue: str, client_order_id: str, ns: int) -> None:
        self.counts[venue] = self.counts.get(venue, 0) + 1
        self.stamps.append((venue, client_order_id, ns))

    def last(self, n: int) -> list[dict[str, Any]]:
        items = list(self.stamps)[-n:] if n > 0 else []
        return [{"venue": v, "clientOrderId": cid, "arrival_ns": ns} for v, cid, ns in items]


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _decimal(text: str) -> Decimal | None:
    try:
        d = Decimal(text)
    except InvalidOperation:
        return None
    return d if d.is_finite() and d > 0 else None


def _starting_balances(specs: Sequence[SymbolSpec]) -> list[Balance]:
    """``BALANCE_USD`` worth of every asset at the start prices (a BTC-quoted base through BTC's price)."""
    out: dict[str, Decimal] = {}
    for s in sorted(specs, key=lambda spec: spec.quote_usd != 1.0):  # USD pairs first
        if s.quote in USD_ASSETS:
            out.setdefault(s.quote, BALANCE_USD)
        value = Decimal(repr(s.start_price)) * Decimal(repr(s.quote_usd))
        out.setdefault(s.base, (BALANCE_USD / value).quantize(Decimal(1).scaleb(-s.qty_decimals), ROUND_DOWN))
    return [Balance(asset, amount, Decimal(0)) for asset, amount in sorted(out.items())]


class VenueOrders:
    """One venue's answers: the dialect's shapes over orders that fill at their own numbers."""

    def __init__(self, venue: Venue, specs: Sequence[SymbolSpec], listed: Sequence[int], top: TopLookup,
                 arrivals: Arrivals, stats: Callable[[], dict[str, Any]]) -> None:
        self.venue = venue
        kind = kind_of(venue.kind)
        self.dialect: Dialect = load(need(kind, kind.sim.dialect, "simulator order API dialect"))()
        self.usage_headers_sent = self.dialect.binance_limits  # Binance's usage headers (MEXC sends none)
        self.specs = list(specs)
        self.index = {specs[i].name: i for i in listed}
        self.fee = Decimal(repr(venue.taker_fee))
        self.top = top
        self.arrivals = arrivals
        self.stats = stats
        self.balances = _starting_balances([specs[i] for i in listed])
        self.orders: dict[str, SimOrder] = {}  # client order id -> order
        self.by_number: dict[int, SimOrder] = {}
        self._number = 0
        self._trade_id = 0
        self.requests = 0

    # ----- routing
    def handle(self, method: str, url: str, body: bytes, arrival_ns: int) -> tuple[int, bytes, list[tuple[str, str]]]:
        """(HTTP status, JSON body, extra headers) for one request."""
        self.requests += 1
        path, _, query = url.partition("?")
        params = dict(parse_qsl(body.decode("latin-1"), keep_blank_values=True)) if body else {}
        params.update(parse_qsl(query, keep_blank_values=True))  # the query string wins, as on both venues
        params.pop("signature", None)
        answer: object
        if path == "/api/v3/order":
            if method == "POST":
                answer = self.new_order(params, arrival_ns)
            elif method == "GET":
                answer = self.query_order(params)
            elif method == "DELETE":
                answer = self.cancel_order(params)
            else:
                answer = ApiError(404, -1, "Not found.")
        elif method == "GET" and path == "/api/v3/time":
            answer = {"serverTime": _now_ms()}
        elif method == "GET" and path == "/api/v3/exchangeInfo":
            answer = self.exchange_info(params)
        elif method == "GET" and path == "/api/v3/account":
            answer = self.dialect.account(self.venue, self.balances, _now_ms())
        elif method == "GET" and path == "/api/v3/depth":
            answer = self.depth(params)
        elif method in ("GET", "DELETE") and path == "/api/v3/openOrders":
            answer = []  # orders never rest here
        elif method == "GET" and path == "/api/v3/myTrades":
            answer = self.my_trades(params)
        elif method == "GET" and path == "/api/v3/allOrders":
            answer = self.all_orders(params)
        elif method == "GET" and path == STATS_PATH:
            last = params.get("last", "")
            return 200, _encode(self.stats_body(int(last) if last.isdigit() else DEFAULT_STATS_LAST)), []
        else:
            answer = ApiError(404, -1, f"Not found: {method} {path}")
        headers = self.usage_headers(method == "POST" and path == "/api/v3/order")
        if isinstance(answer, ApiError):
            return answer.http_status, _encode({"code": answer.code, "msg": answer.msg}), headers
        return 200, _encode(answer), headers

    def usage_headers(self, order: bool) -> list[tuple[str, str]]:
        """Binance's usage headers with small numbers (MEXC sends none)."""
        if not self.usage_headers_sent:
            return []
        out = [("X-MBX-USED-WEIGHT-1M", "1")]
        if order:
            out += [("X-MBX-ORDER-COUNT-10S", "1"), ("X-MBX-ORDER-COUNT-1D", "1")]
        return out

    def stats_body(self, last: int) -> dict[str, Any]:
        return {**self.stats(), "arrivals": self.arrivals.last(last)}

    # ----- orders
    def new_order(self, params: dict[str, str], arrival_ns: int) -> dict[str, Any] | ApiError:
        d = self.dialect
        cid = params.get("newClientOrderId", "")
        self.arrivals.note(self.venue.name, cid, arrival_ns)
        for name in ("symbol", "side", "type", "quantity"):
            if not params.get(name):
                return d.missing_param(name)
        kind = d.order_kind(params)
        if isinstance(kind, ApiError):
            return kind
        s = self.index.get(params["symbol"])
        if s is None:
            return d.rejection(Reject(book.BAD_SYMBOL, params["symbol"]))
        side = params["side"]
        if side not in ("BUY", "SELL"):
            return d.rejection(Reject(book.BAD_PARAM, "side"))
        qty = _decimal(params["quantity"])
        if qty is None:
            return d.bad_param("quantity")
        spec = self.specs[s]
        price_text = params.get("price", "")
        if kind.kind == book.MARKET:
            last = self.top(self.venue.name, s)
            fill_text = units_text(last[2] if side == "BUY" else last[0], spec.price_decimals) if last else ""
            price = _decimal(fill_text) or Decimal(repr(spec.start_price))
            price_text = ""
        else:
            if not price_text:
                return d.missing_param("price")
            maybe = _decimal(price_text)
            if maybe is None:
                return d.bad_param("price")
            price = maybe
        if not cid:
            cid = f"lg{self._number + 1}"
        if cid in self.orders:
            return d.rejection(Reject(book.DUPLICATE, cid))
        order = self._filled(spec, s, side, kind.kind, price, qty, cid, price_text, params["quantity"])
        return d.new_order_response(order, kind.response_type)

    def _filled(self, spec: SymbolSpec, s: int, side: str, kind: str, price: Decimal, qty: Decimal, cid: str,
                price_text: str, qty_text: str) -> SimOrder:
        """The order, filled whole at ``price`` in one trade, commission as the venue charges it."""
        ms = _now_ms()
        notional = price * qty
        if side == "BUY" and self.dialect.commission_in_base_on_buy:
            commission, asset = qty * self.fee, spec.base
        else:
            commission, asset = notional * self.fee, spec.quote
        commission = commission.quantize(COMMISSION_QUANTUM, ROUND_UP)
        self._number += 1
        self._trade_id += 1
        ticket = Ticket(s, side, kind, 0, 0, cid, price_text, qty_text)
        fill = SimFill(price, qty, commission, asset, self._trade_id, ms)
        order = SimOrder(self._number, ticket, spec, ms, self.dialect.status_names.filled, executed=qty,
                         cum_quote=notional, fills=[fill], update_ms=ms)
        self.orders[cid] = order
        self.by_number[order.number] = order
        return order

    def find(self, params: dict[str, str]) -> SimOrder | ApiError:
        d = self.dialect
        symbol = params.get("symbol", "")
        if not symbol:
            return d.missing_param("symbol")
        s = self.index.get(symbol)
        if s is None:
            return d.rejection(Reject(book.BAD_SYMBOL, symbol))
        cid, order_id = params.get("origClientOrderId", ""), params.get("orderId", "")
        order: SimOrder | None = None
        if cid:
            order = self.orders.get(cid)
        elif order_id:
            number = d.order_number(order_id)
            order = self.by_number.get(number) if number is not None else None
        else:
            return d.missing_order_id()
        if order is None or order.ticket.symbol != s:
            return d.no_such_order()
        return order

    def query_order(self, params: dict[str, str]) -> dict[str, Any] | ApiError:
        order = self.find(params)
        return order if isinstance(order, ApiError) else self.dialect.query_response(order)

    def cancel_order(self, params: dict[str, str]) -> ApiError:
        """Nothing is ever open here: a known order is filled, an unknown one never existed. Both venues (and
        the simulator) answer -2011 "Unknown order sent." to a cancel of an order that is not open."""
        found = self.find(params)
        if isinstance(found, ApiError) and found != self.dialect.no_such_order():
            return found  # a malformed request: no symbol, no id
        return self.dialect.unknown_cancel()

    def my_trades(self, params: dict[str, str]) -> list[dict[str, Any]] | ApiError:
        d = self.dialect
        symbol = params.get("symbol", "")
        s = self.index.get(symbol) if symbol else None
        if s is None:
            return d.missing_param("symbol") if not symbol else d.rejection(Reject(book.BAD_SYMBOL, symbol))
        orders: list[SimOrder]
        if params.get("orderId"):
            number = d.order_number(params["orderId"])
            if number is None:
                return d.bad_param("orderId")
            found = self.by_number.get(number)
            orders = [found] if found is not None and found.ticket.symbol == s else []
        else:
            limit = params.get("limit", "")
            n = min(int(limit), 1000) if limit.isdigit() else 500
            orders = [o for o in self.by_number.values() if o.ticket.symbol == s][-n:] if n else []
        return [d.trade(o, f) for o in orders for f in o.fills]

    def all_orders(self, params: dict[str, str]) -> list[dict[str, Any]] | ApiError:
        """The orders of a symbol in the query shape, oldest first: created within [startTime, endTime], from
        ``orderId`` on if given; ``limit`` (500, at most 1000) from the start if one is given, else the most
        recent. The venues' span rules (Binance 24 h, MEXC 7 days back) are not enforced here."""
        d = self.dialect
        symbol = params.get("symbol", "")
        s = self.index.get(symbol) if symbol else None
        if s is None:
            return d.missing_param("symbol") if not symbol else d.rejection(Reject(book.BAD_SYMBOL, symbol))
        numbers = {name: params.get(name, "") for name in ("orderId", "startTime", "endTime", "limit")}
        for name, text in numbers.items():
            if text and not text.isdigit():
                return d.bad_param(name)
        start = int(numbers["startTime"] or 0)
        end = int(numbers["endTime"]) if numbers["endTime"] else None
        first = int(numbers["orderId"]) if numbers["orderId"] else None
        limit = min(int(numbers["limit"] or 500), 1000)
        orders = [o for o in self.by_number.values()
                  if o.ticket.symbol == s and start <= o.time_ms and (end is None or o.time_ms <= end)
                  and (first is None or o.number >= first)]
        chosen = orders[:limit] if numbers["startTime"] or first is not None else orders[-limit:] if limit else []
        return [d.query_response(o) for o in chosen]

    # ----- market data and rules
    def exchange_info(self, params: dict[str, str]) -> dict[str, Any] | ApiError:
        wanted_text = params.get("symbol") or params.get("symbols") or ""
        # Binance writes symbols=["A","B"], MEXC symbols=A,B: strip the JSON dressing, split on commas.
        wanted = [w.strip(' "') for w in wanted_text.strip("[]").split(",") if w.strip(' "')]
        unknown = [w for w in wanted if w not in self.index]
        if unknown:
            return self.dialect.rejection(Reject(book.BAD_SYMBOL, unknown[0]))
        specs = [self.specs[self.index[w]] for w in wanted] if wanted else [self.specs[i] for i in self.index.values()]
        return self.dialect.exchange_info(self.venue, specs, _now_ms())

    def depth(self, params: dict[str, str]) -> dict[str, Any] | ApiError:
        """One level a side, the last quote sent, with its update id (a feed that asks gets a valid book)."""
        d = self.dialect
        symbol = params.get("symbol", "")
        s = self.index.get(symbol)
        if s is None:
            return d.missing_param("symbol") if not symbol else d.rejection(Reject(book.BAD_SYMBOL, symbol))
        last = self.top(self.venue.name, s)
        if last is None:  # pragma: no cover - every listed symbol is on the tape
            return ApiError(500, -1, "no quote")
        spec = self.specs[s]
        bid, bid_qty, ask, ask_qty, uid = last
        out: dict[str, Any] = {
            "lastUpdateId": uid,
            "bids": [[spec.price_text(bid), spec.qty_text(bid_qty)]],
            "asks": [[spec.price_text(ask), spec.qty_text(ask_qty)]],
        }
        if d.depth_timestamp:
            out["timestamp"] = _now_ms()
        return out


class _HttpConnection(asyncio.Protocol):
    """One keep-alive client connection; llhttp calls back as the request bytes arrive."""

    def __init__(self, server: AcceptorServer) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self._url = b""
        self._body = b""
        self._read_ns = 0
        self._arrival_ns = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.server.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.server.connections.discard(self)
        self.transport = None

    def data_received(self, data: bytes) -> None:
        self._read_ns = time.monotonic_ns()  # the arrival stamp: before any parsing
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._reply(400, b'{"code":-1,"msg":"no upgrade here"}', [], keep_alive=False)
        except httptools.HttpParserError as exc:
            self._reply(400, _encode({"code": -1, "msg": f"bad request: {exc}"}), [], keep_alive=False)

    # llhttp callbacks
    def on_message_begin(self) -> None:
        self._url = b""
        self._body = b""
        self._arrival_ns = self._read_ns

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_body(self, body: bytes) -> None:
        self._body += body

    def on_message_complete(self) -> None:
        method = self.parser.get_method().decode("latin-1")
        try:
            status, body, headers = self.server.orders.handle(
                method, self._url.decode("latin-1"), self._body, self._arrival_ns
            )
        except Exception as exc:  # a bug here must not take the connection's other requests with it
            log.exception("loadgen %s: %s %r failed", self.server.orders.venue.name, method, self._url[:200])
            status, body, headers = 500, _encode({"code": -1, "msg": f"internal error: {exc}"}), []
        self._reply(status, body, headers, keep_alive=self.parser.should_keep_alive())

    def _reply(self, status: int, body: bytes, headers: list[tuple[str, str]], *, keep_alive: bool) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        head = [f"HTTP/1.1 {status} {REASONS.get(status, 'Error')}\r\n",
                "Content-Type: application/json;charset=UTF-8\r\n", f"Content-Length: {len(body)}\r\n"]
        head.extend(f"{k}: {v}\r\n" for k, v in headers)
        if not keep_alive:
            head.append("Connection: close\r\n")
        head.append("\r\n")
        transport.write("".join(head).encode("latin-1") + body)
        if not keep_alive:
            transport.close()


class AcceptorServer:
    """One venue's REST port."""

    def __init__(self, orders: VenueOrders) -> None:
        self.orders = orders
        self.connections: set[_HttpConnection] = set()
        self.port = 0
        self._server: asyncio.Server | None = None

    async def start(self, host: str, port: int) -> int:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _HttpConnection(self), host, port)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self.port

    async def stop(self) -> None:
        if self._server is None:
            return
        self._server.close()
        for conn in list(self.connections):
            if conn.transport is not None:
                conn.transport.close()
        await self._server.wait_closed()
        self._server = None
