"""Executor actor: every leg of an approved opportunity goes out at once as a signed REST order.

The requests are written to already-open connections in the same call that received the intent;
responses are settled in a task. HTTP 5xx, timeouts and lost connections make an order UNKNOWN, which is
resolved by querying the venue, never by sending the order again.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Sequence
from typing import NamedTuple

import msgspec
import zmq

from services.executor.accounting import LegResult, settle_execution
from shared.codec import Codec, intent_codec
from shared.config import SPOT_KINDS, Venue
from shared.errors import ConfigError
from shared.http.client import HttpPool, HttpResponse
from shared.messages import SIDE_BUY, Fill, OrderIntent, OrderUpdate
from shared.money import price_text, step_multiple_text
from shared.runtime.host import ProcessContext
from shared.runtime.service import Service
from shared.venues import order_format
from shared.venues.common import OrderFormat, OrderResult, unknown

log = logging.getLogger(__name__)

ORDER_TIMEOUT_S = 5.0
STOP_GRACE_S = 10.0


class VenueSession:
    """One venue's order connection pool, wire format and credentials (from the environment only)."""

    def __init__(self, venue: Venue) -> None:
        self.venue = venue
        self.fmt: OrderFormat = order_format(venue.kind)
        self.pool = HttpPool(venue.rest_url, venue.order_connections)
        self.api_key = os.environ.get(venue.api_key_env, "")
        self.api_secret = os.environ.get(venue.api_secret_env, "")
        if not self.api_key or not self.api_secret:
            raise ConfigError(
                f"venues[{venue.name}]: set the environment variables {venue.api_key_env} and "
                f"{venue.api_secret_env} (credentials are never read from files)"
            )
        self.clock_offset_ms = 0

    def timestamp_ms(self) -> int:
        return time.time_ns() // 1_000_000 + self.clock_offset_ms

    async def sync_clock(self) -> None:
        """Venue time minus ours, so signed timestamps land inside recvWindow."""
        before = time.time_ns() // 1_000_000
        resp = await asyncio.wait_for(self.pool.request("GET", "/api/v3/time", []), ORDER_TIMEOUT_S)
        after = time.time_ns() // 1_000_000
        server = msgspec.json.decode(resp.body, type=dict[str, int])["serverTime"]
        self.clock_offset_ms = server - (before + after) // 2


class Executor(Service):
    def __init__(self, ctx: ProcessContext) -> None:
        super().__init__("executor", ctx)
        self.sessions: dict[int, VenueSession] = {}  # spot venues only: perpetual feeds take no orders
        self._intents: Codec[OrderIntent] = intent_codec()
        self._pull: zmq.Socket[bytes] | None = None
        self._fused = False
        self._in_flight: set[asyncio.Task[None]] = set()
        self.n_intents = 0
        self.n_orders = 0
        self.n_fills = 0
        self.n_unknown = 0
        self.n_rejected = 0
        self.n_executions = 0
        self.pnl_usd = 0.0
        self._latency: dict[str, list[int]] = {"tick_to_order": [], "decide_to_order": []}

    def link_in_process(self, peers: dict[str, object]) -> None:
        self._fused = "RiskEngine" in peers

    async def on_start(self) -> None:
        self.sessions = {i: VenueSession(v) for i, v in enumerate(self.cfg.venues) if v.kind in SPOT_KINDS}
        for s in self.sessions.values():
            await self._connect(s)
        if not self._fused:
            pull = self.socket(zmq.PULL)
            pull.bind(self.ctx.endpoints.intents)
            self._pull = pull
            self.watch(pull, self._on_intents)

    async def _connect(self, s: VenueSession) -> None:
        """The venue may start after us (supervisord does not order programs): retry with backoff."""
        backoff = 0.05
        while True:
            try:
                await s.pool.open()
                await s.sync_clock()
                return
            except (OSError, TimeoutError, ConnectionError, msgspec.DecodeError, KeyError) as exc:
                if self.ctx.stop_event.is_set():
                    raise
                log.warning("%s: venue not reachable yet (%s); retry in %.2fs", s.venue.name, exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)

    async def on_stop(self) -> None:
        if self._pull is not None:
            asyncio.get_running_loop().remove_reader(self._pull.getsockopt(zmq.FD))
        if self._in_flight:
            log.info("waiting for %d executions in flight", len(self._in_flight))
            await asyncio.wait(self._in_flight, timeout=STOP_GRACE_S)
        for s in self.sessions.values():
            await s.pool.close()

    def _on_intents(self) -> None:
        assert self._pull is not None
        self.drain(self._pull, self._intents, self.on_intent, "order intent")

    def on_intent(self, intent: OrderIntent) -> bool:
        opp = intent.opportunity
        if any(leg.venue not in self.sessions for leg in opp.legs):
            log.error("intent %d names a venue without an order API (%s); refused",
                      opp.id, [self.registry.venue(leg.venue) for leg in opp.legs])
            return False
        reg = self.registry
        orders: list[LegOrder] = []
        for leg in opp.legs:
            orders.append(
                LegOrder(
                    side=leg.side,
                    venue=leg.venue,
                    symbol=leg.symbol,
                    price=price_text(leg.price, reg.tick[leg.venue][leg.symbol]),
                    qty=step_multiple_text(leg.qty, reg.step[leg.venue][leg.symbol]),
                    client_order_id=client_order_id(opp.id, leg.side, len(orders)),
                    quote_usd=leg.quote_usd,
                )
            )
        futures: list[asyncio.Future[HttpResponse]] = []
        for order in orders:
            s = self.sessions[order.venue]
            req = s.fmt.build_new_order(
                symbol=reg.symbol(order.symbol),
                side="BUY" if order.side == SIDE_BUY else "SELL",
                price=order.price,
                qty=order.qty,
                client_order_id=order.client_order_id,
                api_key=s.api_key,
                api_secret=s.api_secret,
                timestamp_ms=s.timestamp_ms(),
                recv_window_ms=s.venue.recv_window_ms,
            )
            futures.append(s.pool.request(req.method, req.path, req.headers, req.body))
        sent = time.monotonic_ns()
        self.n_intents += 1
        self.n_orders += len(orders)
        self._latency["tick_to_order"].append(sent - opp.tick_ns)
        self._latency["decide_to_order"].append(sent - intent.decided_ns)
        task = asyncio.get_running_loop().create_task(self._settle(intent, orders, futures, sent))
        self._in_flight.add(task)
        task.add_done_callback(self._in_flight.discard)
        return True

    async def _settle(
        self,
        intent: OrderIntent,
        orders: Sequence[LegOrder],
        futures: Sequence[asyncio.Future[HttpResponse]],
        sent_ns: int,
    ) -> None:
        opp = intent.opportunity
        results = await asyncio.gather(
            *(self._resolve(order, fut) for order, fut in zip(orders, futures, strict=True))
        )
        ack = time.monotonic_ns()
        leg_results: list[LegResult] = []
        for order, result in zip(orders, results, strict=True):
            cid = order.client_order_id
            if result.status == "UNKNOWN":
                self.n_unknown += 1
            elif not result.ok:
                self.n_rejected += 1
                log.warning(
                    "order %s rejected by %s: %d %s",
                    cid, self.registry.venue(order.venue), result.error_code, result.error_msg,
                )
            self.publish(
                OrderUpdate(
                    client_order_id=cid,
                    opportunity_id=opp.id,
                    venue=order.venue,
                    symbol=order.symbol,
                    side=order.side,
                    price=order.price,
                    qty=order.qty,
                    status=result.status,
                    filled_qty=result.filled_qty,
                    avg_price=result.avg_price,
                    error_code=result.error_code,
                    error_msg=result.error_msg,
                    sent_ns=sent_ns,
                    ack_ns=ack,
                    tick_ns=opp.tick_ns,
                )
            )
            for fill_price, fill_qty, fee_usd, trade_id in result.fills:
                self.n_fills += 1
                self.publish(
                    Fill(
                        client_order_id=cid,
                        opportunity_id=opp.id,
                        venue=order.venue,
                        symbol=order.symbol,
                        side=order.side,
                        price=fill_price,
                        qty=fill_qty,
                        fee_usd=fee_usd * order.quote_usd,  # venue fees are in the quote currency
                        trade_id=trade_id,
                        ts_ns=ack,
                    )
                )
            leg_results.append(LegResult(order.side, result))
        execution = settle_execution(intent, leg_results, sent_ns, time.monotonic_ns())
        self.n_executions += 1
        self.pnl_usd += execution.pnl_usd
        self.publish(execution)

    async def _resolve(self, order: LegOrder, fut: asyncio.Future[HttpResponse]) -> OrderResult:
        """The order's final answer: the response, or — when that is missing or not final — a query."""
        s = self.sessions[order.venue]
        symbol_id, cid = order.symbol, order.client_order_id
        base = self.registry.symbols[symbol_id].base
        try:
            resp = await asyncio.wait_for(fut, ORDER_TIMEOUT_S)
            result = s.fmt.parse_order_response(resp.status, resp.body, base)
        except (TimeoutError, ConnectionError) as exc:
            log.warning("order %s on %s: no answer (%s); status UNKNOWN, querying", cid, s.venue.name, exc)
            result = unknown(cid, str(exc))
        if result.needs_query or result.status == "UNKNOWN":
            result = await self._query(s, symbol_id, cid, result)
        return with_estimated_fee(result, s.venue.taker_fee)

    async def _query(self, s: VenueSession, symbol_id: int, cid: str, previous: OrderResult) -> OrderResult:
        req = s.fmt.build_query_order(
            symbol=self.registry.symbol(symbol_id),
            client_order_id=cid,
            api_key=s.api_key,
            api_secret=s.api_secret,
            timestamp_ms=s.timestamp_ms(),
            recv_window_ms=s.venue.recv_window_ms,
        )
        try:
            resp = await asyncio.wait_for(s.pool.request(req.method, req.path, req.headers, req.body), ORDER_TIMEOUT_S)
        except (TimeoutError, ConnectionError) as exc:
            log.error("query of %s on %s failed (%s); order stays UNKNOWN", cid, s.venue.name, exc)
            return previous if previous.status == "UNKNOWN" else unknown(cid, str(exc))
        return s.fmt.parse_order_response(resp.status, resp.body, self.registry.symbols[symbol_id].base)

    def counters(self) -> dict[str, int]:
        return {
            "intents": self.n_intents,
            "orders": self.n_orders,
            "fills": self.n_fills,
            "orders_unknown": self.n_unknown,
            "orders_rejected": self.n_rejected,
            "executions": self.n_executions,
            "in_flight": len(self._in_flight),
            "malformed": self.n_malformed,
        }

    def gauges(self) -> dict[str, float]:
        return {"pnl_usd": self.pnl_usd}

    def take_latencies(self) -> dict[str, list[int]]:
        out = {k: v[-512:] for k, v in self._latency.items()}
        self._latency = {k: [] for k in self._latency}
        return out


class LegOrder(NamedTuple):
    """One leg as it goes on the wire: price and quantity already exact decimal text."""

    side: int
    venue: int
    symbol: int
    price: str
    qty: str
    client_order_id: str
    quote_usd: float  # USD per unit of the symbol's quote currency, for fees and PnL in USD


def client_order_id(opportunity_id: int, side: int, leg: int) -> str:
    """Deterministic per leg: a resend of the same leg is refused by the venue as a duplicate."""
    return f"dz{opportunity_id:x}{'b' if side == SIDE_BUY else 's'}{leg}"


def with_estimated_fee(result: OrderResult, taker_fee: float) -> OrderResult:
    """Query answers (MEXC's always) carry no commission: book the configured taker fee rather than zero,
    so PnL is never overstated. A venue-reported fee is kept as it is."""
    if result.filled_qty <= 0 or result.fee_usd > 0 or taker_fee <= 0:
        return result
    fills = [(p, q, p * q * taker_fee, tid) for p, q, _fee, tid in result.fills]
    return result._replace(fee_usd=result.filled_qty * result.avg_price * taker_fee, fills=fills)
