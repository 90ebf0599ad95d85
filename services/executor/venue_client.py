"""One spot venue's REST client for the executor: signed orders, queries, cancels, account, rules, budget.

The wire formats are ``shared/venues`` (sans I/O); this adds the connections (``HttpPool``: a new order's
bytes are written in the caller's stack frame), the venue clock offset, the rate budget fed by every
answer's headers, and timeouts. Credentials come from the environment variables the config names; they
stay in this object and never reach a log line, an exception or a repr.

Failures are answers, not exceptions, where an order is concerned (``OrderAnswer.kind``): a timeout or a
lost connection is ``unknown`` (resolve by query, never by resending); a request the budget cannot carry
is ``throttled`` and is never sent. Calls that return lists or the account raise ``TimeoutError`` or
``ConnectionError`` when no answer came, ``VenueError`` when the venue refused (429/418: throttled; also
429 with code 0 when our own budget refused to send), ``ProtocolError`` when the answer is unreadable.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from decimal import Decimal
from typing import NamedTuple, TypedDict

from services.executor.rate_budget import RateBudget
from shared.config import Venue
from shared.errors import ConfigError, ProtocolError, VenueError
from shared.http.client import HttpPool, HttpResponse
from shared.messages import SIDE_BUY, SIDE_SELL
from shared.registry import Registry
from shared.runtime.clock import SYSTEM_CLOCK, Clock
from shared.venues import order_format
from shared.venues.common import (
    ANSWER_REJECTED,
    ANSWER_THROTTLED,
    ANSWER_UNKNOWN,
    ORDER_LIMIT_IOC,
    AccountInfo,
    DeclaredLimit,
    HttpRequest,
    OrderAnswer,
    SymbolRules,
    TradeFill,
    TradingPermission,
    answer_without_order,
)
from shared.venues.kinds import kind_of
from shared.venues.order_template import OrderTemplate, build_templates
from shared.venues.perp import FundingPaymentInfo, PerpAccountInfo, PerpOrderFormat
from shared.venues.spot_rest import (
    ALL_ORDERS_MAX_LIMIT,
    SpotOrderFormat,
    VenueOrder,
    parse_permission,
    parse_rate_limits,
)

log = logging.getLogger(__name__)

DEFAULT_RETRY_AFTER_S = 1.0  # a 429/418 without Retry-After still blocks this long
CLOCK_SAMPLES = 3
BACKOFF_START_S = 0.05
BACKOFF_MAX_S = 2.0
START_DEADLINE_S = 120.0  # a venue (or the simulator) still not answering by then: start-up fails, naming it
START_UNREADABLE_TRIES = 3


class _NoAnswer(NamedTuple):
    kind: str  # ANSWER_THROTTLED: not sent | ANSWER_UNKNOWN: sent, no answer
    msg: str
    timeout: bool = False


class _Auth(TypedDict):
    api_key: str
    api_secret: str
    timestamp_ms: int
    recv_window_ms: int


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


class VenueClient:
    def __init__(self, venue: Venue, registry: Registry, timeout_s: float,
                 start_deadline_s: float = START_DEADLINE_S, *, keys_required: bool = True,
                 clock: Clock = SYSTEM_CLOCK) -> None:
        self.venue = venue
        self.clock = clock  # the rate budget's windows (a backtest's are the recording's); signing stays on the wall
        self.name = venue.name
        self.kind = venue.kind
        self.venue_id = registry.venue_id[venue.name]
        self.registry = registry
        self.fmt = order_format(venue.kind)
        kind = kind_of(venue.kind)
        self.perp = kind.perp  # a perpetual venue: reduce-only orders, a margin account, funding income
        self.user_stream = kind.user_stream  # None: the venue has no WS API user stream
        self.listen_key_format = kind.listen_key_stream.format() if kind.listen_key_stream is not None else None
        self.timeout_s = timeout_s
        self.start_deadline_s = start_deadline_s
        self._last_request: HttpRequest | None = None  # the last request sent: start-up errors name it
        self.budget = RateBudget(venue.limits, venue.kind, clock.monotonic, lambda: clock.time_ns() / 1e9)
        self.pool = HttpPool(venue.rest_url, venue.order_connections)
        key, secret = os.environ.get(venue.api_key_env, ""), os.environ.get(venue.api_secret_env, "")
        if keys_required and (not venue.api_key_env or not venue.api_secret_env or not key or not secret):
            raise ConfigError(
                f"venues[{venue.name}]: set the environment variables {venue.api_key_env or '<api_key_env>'} and "
                f"{venue.api_secret_env or '<api_secret_env>'} (credentials are never read from files)"
            )
        self.__key = key
        self.__secret = secret
        self.symbol_ids = [s for s in range(registry.n_symbols) if registry.listed[self.venue_id, s]]
        self.rules: dict[int, SymbolRules] = {}
        # What the venue declares beyond what orders need, for ``draizer preflight``: its exchangeInfo rateLimits
        # (None: unreadable) and the last account answer's trading permission.
        self.declared_limits: tuple[DeclaredLimit, ...] | None = None
        self.permission = TradingPermission(None, ())
        self.templates: dict[tuple[int, int, str], OrderTemplate] = {}
        # The config's fees until the account answer states the real ones.
        self.maker_fee = Decimal(repr(venue.maker_fee))
        self.taker_fee = Decimal(repr(venue.taker_fee))
        self.clock_offset_ms = 0
        self.reachable = False  # the last request got an HTTP answer
        self.closing = False
        self.started = False
        self._tasks: set[asyncio.Task[OrderAnswer]] = set()
        self._resync: asyncio.Task[None] | None = None
        self.n_orders = 0
        self.n_unknown = 0
        self.n_requests = 0

    def __repr__(self) -> str:
        return f"VenueClient({self.name!r}, {self.kind})"

    # ----- lifecycle
    async def start(self) -> None:
        """Connect, take the venue's clock, rules and fees. The venue may start after us: retry with backoff
        while the failure is transient (refused, timed out, 5xx, 429), for at most ``start_deadline_s``; an
        answer draizer cannot read is retried ``START_UNREADABLE_TRIES`` times (a venue that changed its format
        will not change it back in seconds); a refusal (bad key, unknown symbol) is raised at once. Each final
        error names the venue, the endpoint and what was wrong (a parse error names the field)."""
        backoff = BACKOFF_START_S
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.start_deadline_s
        tries = unreadable = 0
        while True:
            if self.closing:
                raise ConnectionError(f"{self.name}: closed while starting")
            tries += 1
            self._last_request = None
            try:
                await self.pool.open()
                await self.sync_clock()
                await self.load_rules()
                self._build_templates()
                await self.account()
                self.started = True
                return
            except ProtocolError as exc:  # the venue answered, with something the client cannot read
                unreadable += 1
                why = f"{self._endpoint()}: {exc}"
                if unreadable >= START_UNREADABLE_TRIES:
                    raise ProtocolError(f"{self.name}: start-up stopped after {unreadable} unreadable answers from "
                                        f"{why}") from None
            except OSError as exc:  # refused, timed out, connection lost
                why = f"{self._endpoint()}: {str(exc) or type(exc).__name__}"
            except VenueError as exc:
                if not (exc.http_status >= 500 or exc.http_status in (429, 418)):
                    raise  # a refusal (bad key, unknown symbol): waiting will not change it
                why = f"{self._endpoint()}: {exc}"
            if loop.time() + backoff > deadline:
                raise ConnectionError(f"{self.name}: venue not ready after {self.start_deadline_s:g}s ({tries} tries); "
                                      f"last: {why}")
            log.warning("%s: venue not ready (%s); retry in %.2fs", self.name, why, backoff)
            await asyncio.sleep(backoff)  # reconnect backoff
            backoff = min(backoff * 2, BACKOFF_MAX_S)

    def _endpoint(self) -> str:
        """The request that failed, for an error message: method, URL, path (never the signed query)."""
        req = self._last_request
        if req is None:
            return self.venue.rest_url
        return f"{req.method} {self.venue.rest_url.rstrip('/')}{req.path.partition('?')[0]}"

    async def close(self) -> None:
        """Stop sending; answers still in flight resolve as ``unknown`` once their connections close."""
        self.closing = True
        if self._resync is not None:
            self._resync.cancel()
            await asyncio.wait([self._resync])
        await self.pool.close()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=self.timeout_s)

    # ----- clock and rules
    def timestamp_ms(self) -> int:
        return _wall_ms() + self.clock_offset_ms

    async def sync_clock(self) -> None:
        """Venue time minus ours, from the quickest of a few round trips, so signed timestamps fall
        inside recvWindow (offset = serverTime - the round trip's midpoint)."""
        best: tuple[int, int] | None = None
        for _ in range(CLOCK_SAMPLES):
            before = _wall_ms()
            resp = await self._checked(self.fmt.build_time(), self.fmt.weights.time)
            after = _wall_ms()
            server = self.fmt.parse_time(resp.body)
            if best is None or after - before < best[0]:
                best = (after - before, server - (before + after) // 2)
        assert best is not None
        self.clock_offset_ms = best[1]

    async def load_rules(self) -> None:
        """exchangeInfo for the symbols this venue trades in the config; a symbol the venue does not list
        is a config error. A tick or step that differs from the config's is logged: orders use the venue's."""
        names = [self.registry.symbol(s) for s in self.symbol_ids]
        resp = await self._checked(self.fmt.build_exchange_info(names), self.fmt.weights.exchange_info)
        rules = self.fmt.parse_exchange_info(resp.body)
        self.declared_limits = parse_rate_limits(resp.body)
        missing = [n for n in names if n not in rules]
        if missing:
            raise ConfigError(f"venues[{self.name}].symbols: the venue does not list {missing}")
        v = self.venue_id
        for s, name in zip(self.symbol_ids, names, strict=True):
            r = rules[name]
            tick, step = self.registry.tick[v][s], self.registry.step[v][s]
            if (r.tick and r.tick != tick) or (r.step and r.step != step):
                log.warning("%s %s: venue tick/step %s/%s differ from the config's %s/%s; the venue's apply",
                            self.name, name, r.tick, r.step, tick, step)
        self.rules = {s: rules[n] for s, n in zip(self.symbol_ids, names, strict=True)}

    def _build_templates(self) -> None:
        """Per (symbol, side, order type) the new-order request prepared once from the venue's rules: per order
        only the texts, the client id, the timestamp and the HMAC remain (``order_template.py``). A symbol whose
        tick or step the venue leaves at 0 (no filter) has no template and takes the general path."""
        templates: dict[tuple[int, int, str], OrderTemplate] = {}
        if self.perp:  # perpetual orders take the general path: a carry is not a microsecond race
            self.templates = templates
            return
        for s, r in self.rules.items():
            name = self.registry.symbol(s)
            try:
                built = build_templates(self.kind, {name: (r.tick, r.step)}, api_key=self.__key,
                                        api_secret=self.__secret, recv_window_ms=self.venue.recv_window_ms,
                                        base_url=self.venue.rest_url)
            except ValueError as exc:
                log.warning("%s %s: no order template (%s); orders take the general path", self.name, name, exc)
                continue
            for (_sym, side, order_type), t in built.items():
                templates[(s, SIDE_BUY if side == "BUY" else SIDE_SELL, order_type)] = t
        self.templates = templates

    def template(self, symbol: int, side: int, order_type: str) -> OrderTemplate | None:
        return self.templates.get((symbol, side, order_type))

    # ----- orders
    def write_order(self, t: OrderTemplate, price: str | None, qty: str, client_order_id: str,
                    rescue: bool = False) -> asyncio.Future[HttpResponse] | None:
        """The hot path: sign and write a templated order now. None: not sent (budget, closing); ``send_order``
        is the general path that also builds the answer. Bookkeeping (``note_sent``, the answer task) is the
        caller's, after every leg is written: see ``track_answer``."""
        weight = self.fmt.weights.new_order
        if self.closing or not self.budget.can_send(1, weight, rescue=rescue):
            return None
        http = self.pool.send(t.request_text(price, qty, client_order_id, _wall_ms() + self.clock_offset_ms))
        self.budget.note_sent(1, weight)  # before the next leg's check: three legs cannot all take the last slot
        return http

    def track_answer(self, http: asyncio.Future[HttpResponse], client_order_id: str) -> asyncio.Future[OrderAnswer]:
        """After ``write_order``: turn the HTTP answer into an OrderAnswer (a task, created after every leg)."""
        self.n_orders += 1
        task = asyncio.get_running_loop().create_task(self._order_answer(http, client_order_id, True),
                                                      name=f"order.{client_order_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def not_sent(self, client_order_id: str, why: str = "") -> asyncio.Future[OrderAnswer]:
        """The answer of an order that was not sent (an already-done ``throttled``): ``write_order`` refused it
        (the reason is the budget's or the closing client's), or the caller did (``why``)."""
        done: asyncio.Future[OrderAnswer] = asyncio.get_running_loop().create_future()
        why = why or ("client closing" if self.closing else self._refusal())
        done.set_result(answer_without_order(ANSWER_THROTTLED, client_order_id, 0, why))
        return done

    def send_order(
        self, symbol: int, side: int, qty: str, price: str | None, client_order_id: str,
        order_type: str = ORDER_LIMIT_IOC, *, rescue: bool = False, reduce_only: bool = False,
    ) -> asyncio.Future[OrderAnswer]:
        """Sign and write the order now (synchronously, in this call); the future resolves to the venue's
        answer. Not sent at all (an already-done ``throttled`` answer) when the budget cannot carry it.
        ``rescue``: an order that reduces risk (an unwind or hedge) may use the reserve above our share."""
        loop = asyncio.get_running_loop()
        weight = self.fmt.weights.new_order
        if self.closing or not self.budget.can_send(1, weight, rescue=rescue):
            why = "client closing" if self.closing else self._refusal()
            done: asyncio.Future[OrderAnswer] = loop.create_future()
            done.set_result(answer_without_order(ANSWER_THROTTLED, client_order_id, 0, why))
            return done
        side_text = "BUY" if side == SIDE_BUY else "SELL"
        if self.perp:
            req = self._perp_fmt().build_new_perp_order(
                symbol=self.registry.symbol(symbol), side=side_text, price=price, qty=qty,
                client_order_id=client_order_id, order_type=order_type, reduce_only=reduce_only, **self._auth(),
            )
        else:
            req = self.fmt.build_new_order(
                symbol=self.registry.symbol(symbol), side=side_text, price=price, qty=qty,
                client_order_id=client_order_id, order_type=order_type, **self._auth(),
            )
        http = self.pool.request(req.method, req.path, req.headers, req.body)
        self.budget.note_sent(1, weight)
        self.n_orders += 1
        task = loop.create_task(self._order_answer(http, client_order_id, True), name=f"order.{client_order_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def query_order(self, symbol: int, client_order_id: str) -> OrderAnswer:
        req = self.fmt.build_query_order(
            symbol=self.registry.symbol(symbol), client_order_id=client_order_id, **self._auth()
        )
        return await self._order_call(req, self.fmt.weights.query_order, client_order_id)

    async def cancel_order(self, symbol: int, client_order_id: str) -> OrderAnswer:
        req = self.fmt.build_cancel_order(
            symbol=self.registry.symbol(symbol), client_order_id=client_order_id, **self._auth()
        )
        return await self._order_call(req, self.fmt.weights.cancel_order, client_order_id)

    async def open_orders(self, symbol: int | None = None) -> list[OrderAnswer]:
        name = self.registry.symbol(symbol) if symbol is not None else None
        w = self.fmt.weights
        req = self.fmt.build_open_orders(symbol=name, **self._auth())
        resp = await self._checked(req, w.open_orders_symbol if name else w.open_orders_all)
        return self.fmt.parse_order_list(resp.status, resp.body, resp.headers)

    async def cancel_all(self, symbol: int) -> list[OrderAnswer]:
        req = self.fmt.build_cancel_all(symbol=self.registry.symbol(symbol), **self._auth())
        resp = await self._checked(req, self.fmt.weights.cancel_all)
        return self.fmt.parse_order_list(resp.status, resp.body, resp.headers)

    async def my_trades(self, symbol: int, order_id: str | None) -> list[TradeFill]:
        w = self.fmt.weights
        req = self.fmt.build_my_trades(symbol=self.registry.symbol(symbol), order_id=order_id, **self._auth())
        resp = await self._checked(req, w.my_trades_by_order if order_id else w.my_trades)
        return self.fmt.parse_my_trades(resp.body)

    async def all_orders(
        self, symbol: int, start_ms: int | None = None, end_ms: int | None = None, limit: int = ALL_ORDERS_MAX_LIMIT,
    ) -> tuple[list[VenueOrder], list[str]]:
        """The account's orders of ``symbol`` created in [start_ms, end_ms] (venue clock: ``timestamp_ms()``),
        open or not, oldest first; without times the most recent ones. (orders, client ids of unreadable items).
        Raises like ``open_orders``. A restart's recovery of orders whose journal records a host crash lost."""
        fmt = self.fmt
        if not isinstance(fmt, SpotOrderFormat):
            raise TypeError(f"{self.name}: {self.kind} has no allOrders")
        req = fmt.build_all_orders(symbol=self.registry.symbol(symbol), start_ms=start_ms, end_ms=end_ms,
                                   limit=limit, **self._auth())
        resp = await self._checked(req, fmt.weights.all_orders)
        return fmt.parse_order_details(resp.status, resp.body)

    async def account(self) -> AccountInfo:
        """Balances and commission rates; the rates become ``maker_fee``/``taker_fee``."""
        resp = await self._checked(self.fmt.build_account(**self._auth()), self.fmt.weights.account)
        info = self.fmt.parse_account(resp.body, fallback=(self.maker_fee, self.taker_fee))
        self.permission = parse_permission(resp.body)
        self.maker_fee, self.taker_fee = info.maker_fee, info.taker_fee
        return info

    def rules_for(self, symbol: int) -> SymbolRules:
        """The venue's rules for a configured symbol id (KeyError: the venue does not trade it)."""
        return self.rules[symbol]

    def not_found(self, answer: OrderAnswer) -> bool:
        """The venue says it has no order by that id (a query or cancel answer)."""
        return self.fmt.not_found(answer)

    def user_stream_request(self, request_id: str) -> str:
        """The signed WS API subscribe request (Binance): the credentials stay inside this client."""
        if self.user_stream is None:
            raise ValueError(f"{self.name}: {self.kind} has no WS API user stream")
        return self.user_stream.subscribe_request(self.__key, self.__secret, self.timestamp_ms(), request_id)

    async def listen_key(self, action: str, listen_key: str = "") -> str:
        """Create, keep alive or close the venue's user-data listen key (``shared.venues.user_data``); the key the
        venue answers. Raises like ``account`` (VenueError: refused, e.g. an expired key). The key is a secret:
        the caller keeps it out of logs."""
        fmt = self.listen_key_format
        if fmt is None:
            raise ValueError(f"{self.name}: {self.kind} has no listen-key user stream")
        req = fmt.build_listen_key(action, listen_key, **self._auth())
        resp = await self._checked(req, fmt.weight)
        return fmt.parse_listen_key(resp.status, resp.body)

    # ----- perpetuals
    def _perp_fmt(self) -> PerpOrderFormat:
        if not self.perp:
            raise ValueError(f"{self.name}: {self.kind} is not a perpetual venue")
        return self.fmt  # type: ignore[return-value]  # a perp kind's order format is a PerpOrderFormat

    async def setup_perp(self, leverage: int, isolated: bool) -> None:
        """Leverage and margin type of every traded symbol, before the first order; a refusal is raised."""
        fmt = self._perp_fmt()
        for s in self.symbol_ids:
            requests = fmt.build_setup(symbol=self.registry.symbol(s), leverage=leverage, isolated=isolated,
                                       **self._auth())
            for req, weight in zip(requests, fmt.setup_weights, strict=True):
                resp = await self._call(req, weight)
                if isinstance(resp, _NoAnswer):
                    raise ConnectionError(f"{self.name}: leverage/margin setup: {resp.msg}")
                fmt.parse_setup(resp.status, resp.body)

    async def perp_account(self) -> PerpAccountInfo:
        """The margin account and open positions (base units, signed)."""
        fmt = self._perp_fmt()
        bodies = []
        for req, weight in zip(fmt.build_perp_account(**self._auth()), fmt.perp_account_weights, strict=True):
            bodies.append((await self._checked(req, weight)).body)
        return fmt.parse_perp_account(bodies)

    async def funding_income(self, start_ms: int) -> list[FundingPaymentInfo]:
        """Funding settlements since ``start_ms`` (venue clock), oldest first."""
        fmt = self._perp_fmt()
        resp = await self._checked(fmt.build_funding_income(start_ms=start_ms, **self._auth()),
                                   fmt.funding_income_weight)
        return sorted(fmt.parse_funding_income(resp.body), key=lambda p: (p.time_ms, p.payment_id))

    def counters(self) -> dict[str, int]:
        b = self.budget
        return {
            "orders": self.n_orders, "requests": self.n_requests, "unknown": self.n_unknown,
            "refused": b.n_refused, "throttled": b.n_throttled, "banned": b.n_banned,
        }

    # ----- plumbing
    def _auth(self) -> _Auth:
        return {
            "api_key": self.__key, "api_secret": self.__secret,
            "timestamp_ms": self.timestamp_ms(), "recv_window_ms": self.venue.recv_window_ms,
        }

    def _refusal(self) -> str:
        if self.budget.blocked():
            what = "banned (418)" if self.budget.banned else "throttled (429)"
            return f"not sent: {self.name} {what}, Retry-After not yet over"
        return f"not sent: {self.name} rate budget exhausted"

    def _note(self, resp: HttpResponse) -> None:
        """Every answer's headers feed the budget; a 429/418 blocks sending until Retry-After is over."""
        self.budget.note_headers(self.fmt.parse_rate_headers(resp.headers))
        if resp.status in (429, 418):
            wait = self.fmt.parse_rate_headers(resp.headers).retry_after_s
            self.budget.note_retry_after(DEFAULT_RETRY_AFTER_S if wait is None else wait, resp.status == 418)
            log.warning("%s: HTTP %d, sending nothing for %.1fs", self.name, resp.status,
                        DEFAULT_RETRY_AFTER_S if wait is None else wait)

    async def _call(self, req: HttpRequest, weight: int) -> HttpResponse | _NoAnswer:
        if self.closing:
            return _NoAnswer(ANSWER_THROTTLED, "not sent: client closing")
        if not self.budget.can_send(0, weight, rescue=True):
            return _NoAnswer(ANSWER_THROTTLED, self._refusal())
        self._last_request = req
        http = self.pool.request(req.method, req.path, req.headers, req.body)
        self.budget.note_sent(0, weight)
        return await self._wait(http)

    async def _wait(self, http: asyncio.Future[HttpResponse]) -> HttpResponse | _NoAnswer:
        self.n_requests += 1
        try:
            resp = await asyncio.wait_for(http, self.timeout_s)
        except TimeoutError:
            self.reachable = False
            return _NoAnswer(ANSWER_UNKNOWN, f"no answer from {self.name} within {self.timeout_s}s", True)
        except ConnectionError as exc:
            self.reachable = False
            return _NoAnswer(ANSWER_UNKNOWN, f"{self.name}: {exc}")
        self.reachable = True
        self._note(resp)
        return resp

    async def _order_answer(self, http: asyncio.Future[HttpResponse], cid: str, new_order: bool) -> OrderAnswer:
        resp = await self._wait(http)
        return self._to_answer(resp, cid, new_order)

    async def _order_call(self, req: HttpRequest, weight: int, cid: str) -> OrderAnswer:
        return self._to_answer(await self._call(req, weight), cid, False)

    def _to_answer(self, resp: HttpResponse | _NoAnswer, cid: str, new_order: bool) -> OrderAnswer:
        if isinstance(resp, _NoAnswer):
            answer = answer_without_order(resp.kind, cid, 0, resp.msg, new_order=new_order)
        else:
            answer = self.fmt.parse_order(resp.status, resp.body, resp.headers, new_order=new_order)
            if not answer.client_order_id:
                answer = answer._replace(client_order_id=cid)  # MEXC's ack and error answers name no client id
        if answer.kind == ANSWER_UNKNOWN:
            self.n_unknown += 1
        elif answer.kind == ANSWER_REJECTED and answer.error_code in self.fmt.timestamp_codes:
            self._clock_drifted()
        return answer

    def _clock_drifted(self) -> None:
        """The venue refused our timestamp: take its clock again (once at a time) so later requests pass."""
        if self._resync is None or self._resync.done():
            log.warning("%s: timestamp outside recvWindow; re-syncing the clock", self.name)
            self._resync = asyncio.get_running_loop().create_task(self._sync_quietly())

    async def _sync_quietly(self) -> None:
        try:
            await self.sync_clock()
        except (OSError, VenueError, ProtocolError) as exc:
            log.warning("%s: clock re-sync failed (%s)", self.name, exc)

    async def _checked(self, req: HttpRequest, weight: int) -> HttpResponse:
        """A 2xx answer; TimeoutError/ConnectionError without one; VenueError for a refusal (429 with code 0:
        not sent, our own budget refused it)."""
        resp = await self._call(req, weight)
        if isinstance(resp, _NoAnswer):
            if resp.kind == ANSWER_THROTTLED:
                raise VenueError(0, resp.msg, 429)
            raise TimeoutError(resp.msg) if resp.timeout else ConnectionError(resp.msg)
        if not 200 <= resp.status < 300:
            code, msg = self.fmt.parse_error(resp.status, resp.body)
            if code in self.fmt.timestamp_codes:
                self._clock_drifted()
            raise VenueError(code, msg, resp.status)
        return resp
