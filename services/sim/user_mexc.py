"""Simulated MEXC spot user data: listen keys on the venue's REST port, the private stream on its WebSocket port.

REST (``/api/v3/userDataStream``), signed and timestamped as every private endpoint (``VenueRest.arrive``):

- ``POST`` -> ``{"listenKey": k}``: a new key, valid ``validity_s`` (the venue's 60 minutes) from now. An
  account holds at most 60 valid keys; a 61st is refused.
- ``PUT ?listenKey=k`` -> ``{"listenKey": k}``: valid ``validity_s`` from now.
- ``DELETE ?listenKey=k`` -> ``{"listenKey": k}``: invalidated; its connections are closed.
- ``GET`` -> ``{"listenKey": [every valid key]}``.

A key that is unknown, expired, deleted or another account's is refused with MEXC's generic parameter error
33333 (MEXC documents no code for it). Keys expire on their own when not kept alive, and their connections
are then closed, as the venue's stream "will close 60 minutes after creation unless a keepalive is sent".

WebSocket ``/ws?listenKey=k``: an invalid key, or a sixth connection on one key, is refused at the upgrade
(HTTP 400, the same error body). On a private connection ``SUBSCRIPTION`` of ``spot@private.orders.v3.api.pb``
and ``spot@private.deals.v3.api.pb`` is acked like a public channel, and every order event of the account goes
out as it happens in the book: a ``privateOrders`` push per event (NEW, each fill, the expired or cancelled
remainder) and a ``privateDeals`` push after each fill's order push (MEXC's documented samples stamp the deal
after the order). PING, faults and the 24 h cut work as on the public connections.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import picows
from aiohttp import web

from services.sim import book
from services.sim.book import SimFill, SimOrder
from services.sim.dialect import ApiError, plain
from services.sim.dialect_mexc import ORDER_ID_PREFIX
from services.sim.rest_common import now_ms
from services.sim.ws_common import Connection
from shared.venues.mexc.proto.push_data_pb2 import PushDataV3ApiWrapper
from shared.venues.mexc.user_stream import (
    CHANNEL_DEALS,
    CHANNEL_ORDERS,
    CHANNELS,
    LISTEN_KEY_PATH,
    LISTEN_KEY_VALIDITY_S,
    MAX_CONNECTIONS_PER_KEY,
    MAX_LISTEN_KEYS_PER_UID,
    SIDE_NUMBERS,
    STATUS_NUMBERS,
)

if TYPE_CHECKING:
    from services.sim.rest import VenueRest

ERR_PARAM = 33333  # MEXC's generic parameter error: the sim's answer where MEXC documents none
MSG_BAD_KEY = "listenKey does not exist"
MSG_TOO_MANY = f"at most {MAX_LISTEN_KEYS_PER_UID} listenKeys per account"
ORDER_TYPES = {book.LIMIT_IOC: 3, book.LIMIT_FOK: 4, book.MARKET: 5}  # IMMEDIATE_OR_CANCEL, FILL_OR_KILL, MARKET


class _Key:
    __slots__ = ("api_key", "conns", "expires_at")

    def __init__(self, api_key: str, expires_at: float) -> None:
        self.api_key = api_key
        self.expires_at = expires_at
        self.conns: set[Connection] = set()


class MexcUserStreams:
    """Listen keys per account, the private connections on each, and the book's events pushed to them."""

    def __init__(self, credentials: Mapping[str, str], validity_s: float = LISTEN_KEY_VALIDITY_S) -> None:
        self.accounts = frozenset(credentials)
        self.validity_s = validity_s  # a test shortens it to see keys expire
        self._keys: dict[str, _Key] = {}
        self.channels: dict[Connection, set[str]] = {}  # private connection -> its subscribed channels
        self.created = self.keepalives = self.deleted = self.expired = 0
        self.refused = 0  # REST calls naming an invalid key, and refused upgrades
        self.events = 0  # pushes sent

    # ----- keys
    def _valid(self, key: str, api_key: str | None = None) -> _Key | None:
        k = self._keys.get(key)
        if k is None or (api_key is not None and k.api_key != api_key):
            return None
        if k.expires_at <= time.monotonic():
            self._end(key, expired=True)
            return None
        return k

    def _end(self, key: str, expired: bool = False) -> None:
        k = self._keys.pop(key, None)
        if k is None:
            return
        if expired:
            self.expired += 1
        for conn in list(k.conns):
            conn.close(picows.WSCloseCode.GOING_AWAY)

    def expire(self, api_key: str) -> int:
        """Test hook: every key of the account expires now (its connections close); how many."""
        keys = [key for key, k in self._keys.items() if k.api_key == api_key]
        for key in keys:
            self._end(key, expired=True)
        return len(keys)

    def sweep(self) -> None:
        """Expired keys go, with their connections (the stream server's housekeeping calls this)."""
        now = time.monotonic()
        for key in [key for key, k in self._keys.items() if k.expires_at <= now]:
            self._end(key, expired=True)

    def valid_keys(self, api_key: str) -> list[str]:
        return [key for key in list(self._keys) if self._valid(key, api_key) is not None]

    # ----- REST
    def routes(self, app: web.Application, rest: VenueRest) -> None:
        async def handle(request: web.Request) -> web.Response:
            auth = await rest.arrive(request)
            body: object = auth if isinstance(auth, ApiError) else self.answer(request.method, *auth)
            await rest.delay()
            return rest.error(body) if isinstance(body, ApiError) else rest.json(body)

        for add in (app.router.add_post, app.router.add_put, app.router.add_delete, app.router.add_get):
            add(LISTEN_KEY_PATH, handle)

    def answer(self, method: str, api_key: str, params: Mapping[str, str]) -> dict[str, Any] | ApiError:
        if method == "GET":
            return {"listenKey": self.valid_keys(api_key)}
        if method == "POST":
            if len(self.valid_keys(api_key)) >= MAX_LISTEN_KEYS_PER_UID:
                return ApiError(400, ERR_PARAM, MSG_TOO_MANY)
            key = secrets.token_hex(32)  # 64 letters and digits, as the documented keys
            self._keys[key] = _Key(api_key, time.monotonic() + self.validity_s)
            self.created += 1
            return {"listenKey": key}
        key = params.get("listenKey", "")
        if not key:
            return ApiError(400, 700004, "Mandatory parameter 'listenKey' was not sent, was empty/null, or malformed.")
        k = self._valid(key, api_key)
        if k is None:
            self.refused += 1
            return ApiError(400, ERR_PARAM, MSG_BAD_KEY)
        if method == "PUT":
            k.expires_at = time.monotonic() + self.validity_s
            self.keepalives += 1
        else:
            self._end(key)
            self.deleted += 1
        return {"listenKey": key}

    # ----- connections
    def admit(self, key: str) -> ApiError | None:
        """None if a connection may open on ``key``; else why not."""
        k = self._valid(key)
        if k is None or len(k.conns) >= MAX_CONNECTIONS_PER_KEY:
            self.refused += 1
            return ApiError(400, ERR_PARAM, MSG_BAD_KEY if k is None else
                            f"at most {MAX_CONNECTIONS_PER_KEY} connections per listenKey")
        return None

    def add(self, key: str, conn: Connection) -> bool:
        k = self._valid(key)
        if k is None:
            return False
        k.conns.add(conn)
        self.channels[conn] = set()
        return True

    def remove(self, key: str, conn: Connection) -> None:
        k = self._keys.get(key)
        if k is not None:
            k.conns.discard(conn)
        self.channels.pop(conn, None)

    def subscribers(self) -> int:
        return sum(1 for chans in self.channels.values() if chans)

    # ----- the book's listener
    def on_order_event(self, api_key: str, order: SimOrder, kind: str, fill: SimFill | None) -> None:
        conns = [c for k in self._keys.values() if k.api_key == api_key for c in k.conns]
        if not conns:
            return
        pushes = [(CHANNEL_ORDERS, orders_push(order, kind, fill, now_ms()))]
        if fill is not None:
            pushes.append((CHANNEL_DEALS, deals_push(order, fill, now_ms())))
        for conn in conns:
            chans = self.channels.get(conn, set())
            for channel, payload in pushes:
                if channel in chans and conn.transport is not None and not conn.blocked and not conn.closing():
                    conn.transport.send(picows.WSMsgType.BINARY, payload)
                    self.events += 1

    def stats(self) -> dict[str, int]:
        return {"user_keys": len(self._keys), "user_keys_created": self.created, "user_keepalives": self.keepalives,
                "user_keys_expired": self.expired, "user_refused": self.refused, "user_events": self.events,
                "user_streams": self.subscribers()}


def _status(order: SimOrder, kind: str) -> int:
    if kind == book.EV_TRADE:
        return STATUS_NUMBERS["FILLED" if order.executed == order.orig_qty else "PARTIALLY_FILLED"]
    if kind in (book.EV_EXPIRED, book.EV_CANCELED):  # an IOC's remainder, or a cancel: MEXC calls both canceled
        return STATUS_NUMBERS["PARTIALLY_CANCELED" if order.executed else "CANCELED"]
    return STATUS_NUMBERS["NEW"]


def _wrapper(channel: str, order: SimOrder, send_ms: int) -> PushDataV3ApiWrapper:
    w = PushDataV3ApiWrapper()  # a fresh message per push, as the market pushes
    w.channel = channel
    w.symbol = order.spec.name
    w.sendTime = send_ms
    return w


def orders_push(order: SimOrder, kind: str, fill: SimFill | None, send_ms: int) -> bytes:
    """The ``privateOrders`` push for one order event, numbers written as MEXC writes them."""
    t = order.ticket
    market = t.kind == book.MARKET
    price = book.ZERO if market else order.spec.price(t.price)
    w = _wrapper(CHANNEL_ORDERS, order, send_ms)
    o = w.privateOrders
    o.id = f"{ORDER_ID_PREFIX}{order.number}"
    o.clientId = t.client_order_id
    o.price = plain(price)
    o.quantity = plain(order.orig_qty)
    o.amount = plain(price * order.orig_qty)
    o.avgPrice = plain(order.cum_quote / order.executed) if order.executed else "0"
    o.orderType = ORDER_TYPES[t.kind]
    o.tradeType = SIDE_NUMBERS[t.side]
    o.isMaker = False
    open_ = kind in (book.EV_NEW, book.EV_TRADE) and order.executed < order.orig_qty
    o.remainQuantity = plain(order.orig_qty - order.executed) if open_ else "0"
    o.remainAmount = plain(price * (order.orig_qty - order.executed)) if open_ else "0"
    if fill is not None:
        o.lastDealQuantity = plain(fill.qty)
    o.cumulativeQuantity = plain(order.executed)
    o.cumulativeAmount = plain(order.cum_quote)
    o.status = _status(order, kind)
    o.createTime = order.time_ms
    return w.SerializeToString()


def deals_push(order: SimOrder, fill: SimFill, send_ms: int) -> bytes:
    """The ``privateDeals`` push for one fill."""
    w = _wrapper(CHANNEL_DEALS, order, send_ms)
    d = w.privateDeals
    d.price = plain(fill.price)
    d.quantity = plain(fill.qty)
    d.amount = plain(fill.price * fill.qty)
    d.tradeType = SIDE_NUMBERS[order.ticket.side]
    d.isMaker = False
    d.isSelfTrade = False
    d.tradeId = str(fill.trade_id)
    d.clientOrderId = order.ticket.client_order_id
    d.orderId = f"{ORDER_ID_PREFIX}{order.number}"
    d.feeAmount = plain(fill.commission)
    d.feeCurrency = fill.commission_asset
    d.time = fill.time_ms
    return w.SerializeToString()


def private_channels(params: list[str]) -> bool:
    """Every channel of a request is a private one (a request mixing both kinds is refused)."""
    return bool(params) and all(p in CHANNELS for p in params)
