"""Binance's WebSocket API, user-data part, on the simulated Binance spot venue's WebSocket port.

Path ``/ws-api/v3``. Requests are JSON text ``{"id","method","params"}``; answers ``{"id","status":200,
"result":..}`` or ``{"id","status":4xx,"error":{"code","msg"}}``. Methods:

- ``userDataStream.subscribe.signature`` with ``params {"apiKey","timestamp","signature"[,"recvWindow"]}``:
  the signature is hex HMAC-SHA256(secret, every other param as ``name=value`` sorted by name and joined by
  ``&``); the timestamp obeys the REST window rule. Answer ``{"subscriptionId":N}`` (per connection, from 0).
  Unknown key: 401 -2015; bad signature: 400 -1022; timestamp: 400 -1021; missing param: 400 -1102.
  Several subscriptions may share a connection (each gets every event of its account, wrapped with its id).
- ``userDataStream.unsubscribe`` (``params {"subscriptionId"}`` optional: all of them), ``session.subscriptions``,
  ``ping``.

Events: ``{"subscriptionId":N,"event":{"e":"executionReport",...}}`` for every order event of the account as
it happens in the sim (before or regardless of the REST answer): NEW, one TRADE per fill (X PARTIALLY_FILLED
or FILLED), then EXPIRED for an expired remainder, or CANCELED. Orders the REST API refuses (filters,
balance, a ``reject`` fault) never reach the engine and get no event, as on the venue. WS ping frames are
answered with pongs; the venue's 5-messages-per-second rule of the market streams does not apply here.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import msgspec

from services.sim import book
from services.sim.book import SimFill, SimOrder
from services.sim.dialect import fixed8
from services.sim.dialect_binance import STP_MODE, ZERO8
from services.sim.rest_common import now_ms
from services.sim.ws_common import Connection, StreamServer
from shared.venues.binance import constants as c
from shared.venues.common import hmac_sha256_hex

WS_API_PATH = c.WS_API_PATH
SUBSCRIBE = "userDataStream.subscribe.signature"
UNSUBSCRIBE = "userDataStream.unsubscribe"
SUBSCRIPTIONS = "session.subscriptions"
PING = "ping"
DEFAULT_RECV_WINDOW_MS = 5000
CLOCK_TOLERANCE_MS = 1000

_encode = msgspec.json.encode


class _Request(msgspec.Struct):
    id: int | str | None = None
    method: str = ""
    params: dict[str, Any] = {}


_decoder = msgspec.json.Decoder(_Request)


def _param_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def execution_report(order: SimOrder, kind: str, fill: SimFill | None, event_ms: int) -> dict[str, Any]:
    """Binance's executionReport for one order event, its numbers as Binance writes them (8 decimals)."""
    t = order.ticket
    market = t.kind == book.MARKET
    status = kind  # NEW, EXPIRED and CANCELED name the status too
    if kind == book.EV_TRADE:
        status = c.FILLED if order.executed == order.orig_qty else c.PARTIALLY_FILLED
    return {
        "e": "executionReport",
        "E": event_ms,
        "s": order.spec.name,
        "c": t.client_order_id,
        "S": t.side,
        "o": "MARKET" if market else "LIMIT",
        "f": "GTC" if market else ("FOK" if t.kind == book.LIMIT_FOK else "IOC"),
        "q": fixed8(order.orig_qty),
        "p": ZERO8 if market else fixed8(Decimal(t.price_text)),
        "P": ZERO8,
        "F": ZERO8,
        "g": -1,
        "C": t.client_order_id if kind == book.EV_CANCELED else "",
        "x": kind,
        "X": status,
        "r": "NONE",
        "i": order.number,
        "l": fixed8(fill.qty) if fill is not None else ZERO8,
        "z": fixed8(order.executed),
        "L": fixed8(fill.price) if fill is not None else ZERO8,
        "n": fixed8(fill.commission) if fill is not None else "0",
        "N": fill.commission_asset if fill is not None else None,
        "T": fill.time_ms if fill is not None else order.update_ms,
        "t": fill.trade_id if fill is not None else -1,
        "w": order.is_open,
        "m": False,
        "O": order.time_ms,
        "Z": fixed8(order.cum_quote),
        "Y": fixed8(fill.price * fill.qty) if fill is not None else ZERO8,
        "Q": ZERO8,
        "W": order.time_ms,
        "V": STP_MODE,
    }


class UserStreams:
    """Who listens to which account's order events; ``on_order_event`` is the matching book's listener."""

    def __init__(self, credentials: Mapping[str, str]) -> None:
        self.secrets = dict(credentials)  # api key -> secret
        self._subs: dict[str, dict[WsApiConnection, list[int]]] = {}
        self.events = 0  # event frames sent

    def add(self, api_key: str, conn: WsApiConnection, sub_id: int) -> None:
        self._subs.setdefault(api_key, {}).setdefault(conn, []).append(sub_id)

    def remove(self, conn: WsApiConnection, sub_id: int | None = None) -> None:
        for subs in self._subs.values():
            ids = subs.get(conn)
            if ids is None:
                continue
            if sub_id is None:
                del subs[conn]
            elif sub_id in ids:
                ids.remove(sub_id)
                if not ids:
                    del subs[conn]

    def subscribers(self) -> int:
        return sum(len(ids) for subs in self._subs.values() for ids in subs.values())

    def on_order_event(self, api_key: str, order: SimOrder, kind: str, fill: SimFill | None) -> None:
        subs = self._subs.get(api_key)
        if not subs:
            return
        body = _encode(execution_report(order, kind, fill, now_ms())).decode()
        for conn, ids in list(subs.items()):
            for sub_id in ids:
                conn.reply(f'{{"subscriptionId":{sub_id},"event":{body}}}')
                self.events += 1


class WsApiConnection(Connection):
    def __init__(self, server: StreamServer, streams: UserStreams) -> None:
        super().__init__(server)
        self._incoming = None  # the WS API meters request weight, not the market streams' frame rate
        self.streams = streams
        self.sub_ids: list[int] = []
        self._next_id = 0

    def on_close(self) -> None:
        self.streams.remove(self)

    def on_binary(self, payload: bytes) -> None:
        self._error(None, 400, -1100, "Binary frames are not accepted.")

    def on_text(self, payload: bytes) -> None:
        try:
            req = _decoder.decode(payload)
        except (msgspec.DecodeError, msgspec.ValidationError):
            self._error(None, 400, -1100, "Malformed request.")
            return
        if req.method == SUBSCRIBE:
            self._subscribe(req)
        elif req.method == UNSUBSCRIBE:
            sub_id = req.params.get("subscriptionId")
            if sub_id is not None and sub_id not in self.sub_ids:
                self._error(req.id, 400, -1102, f"Subscription {sub_id} does not exist.")
                return
            for i in list(self.sub_ids) if sub_id is None else [sub_id]:
                self.sub_ids.remove(i)
                self.streams.remove(self, i)
            self._ok(req.id, {})
        elif req.method == SUBSCRIPTIONS:
            self._ok(req.id, [{"subscriptionId": i} for i in self.sub_ids])
        elif req.method == PING:
            self._ok(req.id, {})
        else:
            self._error(req.id, 400, -1100, f"Unknown method {req.method!r}.")

    def _subscribe(self, req: _Request) -> None:
        params = req.params
        for name in ("apiKey", "timestamp", "signature"):
            if params.get(name) in (None, ""):
                msg = f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed."
                self._error(req.id, 400, c.ERR_MANDATORY_PARAM, msg)
                return
        api_key = str(params["apiKey"])
        secret = self.streams.secrets.get(api_key)
        if secret is None:
            self._error(req.id, 401, c.ERR_API_KEY_REJECTED, c.MSG_API_KEY_REJECTED)
            return
        payload = "&".join(f"{k}={_param_text(v)}" for k, v in sorted(params.items()) if k != "signature")
        expected = hmac_sha256_hex(secret, payload)
        if not hmac.compare_digest(str(params["signature"]).lower(), expected):
            self._error(req.id, 400, c.ERR_SIGNATURE, c.MSG_SIGNATURE)
            return
        ts, window = params["timestamp"], params.get("recvWindow", DEFAULT_RECV_WINDOW_MS)
        server = now_ms()
        if not (isinstance(ts, int) and isinstance(window, int | float) and 0 < window <= c.MAX_RECV_WINDOW_MS
                and ts < server + CLOCK_TOLERANCE_MS and server - ts <= window):
            self._error(req.id, 400, c.ERR_TIMESTAMP, c.MSG_TIMESTAMP)
            return
        sub_id = self._next_id
        self._next_id += 1
        self.sub_ids.append(sub_id)
        self.streams.add(api_key, self, sub_id)
        self._ok(req.id, {"subscriptionId": sub_id})

    def _ok(self, request_id: int | str | None, result: object) -> None:
        self.reply(_encode({"id": request_id, "status": 200, "result": result}))

    def _error(self, request_id: int | str | None, status: int, code: int, msg: str) -> None:
        self.reply(_encode({"id": request_id, "status": status, "error": {"code": code, "msg": msg}}))
