"""Simulated Binance USD-M user data: listen keys and the ``/private`` stream on the perp venue's WebSocket port.

``rest_futures_binance`` hands out listen keys (``POST/PUT/DELETE /fapi/v1/listenKey``); a client connects to
``/private/ws/<listenKey>`` (every event) or ``/private/ws?listenKey=<key>&events=A/B`` (only those named), as
``shared/venues/binance/futures_user.py`` builds the URL, and receives bare events:

- ``ORDER_TRADE_UPDATE`` for every order event as it happens in the book: NEW, one TRADE per fill (X FILLED
  or PARTIALLY_FILLED, with commission ``n``/``N`` and realized PnL ``rp``), then EXPIRED for an IOC remainder
  or a reduce-only cut (``er`` "2"). Refused orders get no event, as on the venue.
- ``ACCOUNT_UPDATE`` with reason ``ORDER`` after each fill (USDT balance and the position) and ``FUNDING_FEE``
  at each settlement (the balance, ``bc`` the fee; an isolated position's entry too, as the venue does).

An unknown listen key is refused at the upgrade (HTTP 400, -1125). A DELETE closes the key's connections.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs

import msgspec
import picows

from services.sim.futures_binance_answers import money, price_text, qty_text
from services.sim.perp_account import EV_TRADE, EXPIRED, MARKET, PerpBook, PerpFill, PerpOrder, PerpPosition
from services.sim.rest_common import now_ms
from services.sim.ws_binance_futures import BinanceFuturesStreamServer
from services.sim.ws_common import Connection, ListenerOrResponse

PRIVATE_PATH = "/private"  # the base URL's path: user_stream_url(key, base=ws://host:port/private)
PRIVATE_WS = PRIVATE_PATH + "/ws"
ERR_LISTEN_KEY = -1125

_encode = msgspec.json.encode


class PrivateConnection(Connection):
    def __init__(self, server: BinanceFuturesStreamServer, streams: FuturesUserStreams, listen_key: str,
                 events: frozenset[str] | None) -> None:
        super().__init__(server)
        self.streams = streams
        self.listen_key = listen_key
        self.events = events  # None: every event

    def on_open(self) -> None:
        self.streams.add(self)

    def on_close(self) -> None:
        self.streams.remove(self)


class FuturesUserStreams:
    """Listen keys per API key, the private connections on each, and the book's events rendered for them."""

    def __init__(self, book: PerpBook) -> None:
        self.book = book
        self._key_of: dict[str, str] = {}  # api key -> listen key
        self._api_of: dict[str, str] = {}  # listen key -> api key
        self._conns: dict[str, set[PrivateConnection]] = {}  # listen key -> connections
        self.events = 0  # event frames sent
        book.order_listeners.append(self.on_order)
        book.account_listeners.append(self.on_account)

    # ----- listen keys
    def start(self, api_key: str) -> str:
        """The account's key: the active one (extended), else a new one."""
        key = self._key_of.get(api_key)
        if key is None:
            key = secrets.token_hex(32)  # 64 letters and digits, as the venue's keys
            self._key_of[api_key], self._api_of[key] = key, api_key
        return key

    def keepalive(self, api_key: str) -> str | None:
        return self._key_of.get(api_key)

    def close(self, api_key: str) -> None:
        key = self._key_of.pop(api_key, None)
        if key is None:
            return
        self._api_of.pop(key, None)
        for conn in list(self._conns.pop(key, ())):
            if conn.transport is not None:
                conn.transport.disconnect()

    def known(self, listen_key: str) -> bool:
        return listen_key in self._api_of

    def add(self, conn: PrivateConnection) -> None:
        self._conns.setdefault(conn.listen_key, set()).add(conn)

    def remove(self, conn: PrivateConnection) -> None:
        self._conns.get(conn.listen_key, set()).discard(conn)

    def subscribers(self) -> int:
        return sum(len(c) for c in self._conns.values())

    def _send(self, api_key: str, name: str, event: dict[str, Any]) -> None:
        key = self._key_of.get(api_key)
        conns = self._conns.get(key, ()) if key is not None else ()
        if not conns:
            return
        payload = _encode(event)
        for conn in list(conns):
            if conn.events is None or name in conn.events:
                conn.reply(payload)
                self.events += 1

    # ----- the book's listeners
    def on_order(self, api_key: str, order: PerpOrder, kind: str, fill: PerpFill | None) -> None:
        self._send(api_key, "ORDER_TRADE_UPDATE", order_trade_update(order, kind, fill, now_ms()))

    def on_account(self, api_key: str, reason: str, change: Decimal, positions: Sequence[PerpPosition],
                   at_ms: int) -> None:
        self._send(api_key, "ACCOUNT_UPDATE", account_update(self.book, api_key, reason, change, positions, at_ms))


def order_trade_update(order: PerpOrder, kind: str, fill: PerpFill | None, event_ms: int) -> dict[str, Any]:
    req, spec = order.request, order.spec
    market = req.kind == MARKET
    order_type = "MARKET" if market else "LIMIT"
    status = kind  # NEW and EXPIRED name the status too
    if kind == EV_TRADE:
        status = "FILLED" if order.executed == req.qty else "PARTIALLY_FILLED"
    return {
        "e": "ORDER_TRADE_UPDATE",
        "E": event_ms,
        "T": fill.time_ms if fill is not None else order.update_ms,
        "o": {
            "s": spec.name, "c": req.client_order_id, "S": req.side, "o": order_type,
            "f": "GTC" if market else "IOC", "q": qty_text(spec, req.qty),
            "p": "0" if market or req.price is None else price_text(spec, req.price),
            "ap": price_text(spec, order.avg_price) if order.executed else "0", "sp": "0",
            "x": kind, "X": status, "i": order.number,
            "l": qty_text(spec, fill.qty) if fill is not None else "0",
            "z": qty_text(spec, order.executed),
            "L": price_text(spec, fill.price) if fill is not None else "0",
            "N": "USDT", "n": money(fill.commission) if fill is not None else "0",
            "T": fill.time_ms if fill is not None else order.update_ms,
            "t": fill.trade_id if fill is not None else 0,
            "b": "0", "a": "0", "m": False, "R": req.reduce_only, "wt": "CONTRACT_PRICE", "ot": order_type,
            "ps": req.position_side, "cp": False, "rp": money(fill.realized) if fill is not None else "0",
            "pP": False, "si": 0, "ss": 0, "V": "EXPIRE_MAKER", "pm": "NONE", "gtd": 0,
            "er": "2" if kind == EXPIRED else "0",
        },
    }


def account_update(book: PerpBook, api_key: str, reason: str, change: Decimal, positions: Sequence[PerpPosition],
                   at_ms: int) -> dict[str, Any]:
    wallet = book.account(api_key).wallet
    balance_change = change if reason != "ORDER" else Decimal(0)  # bc leaves out PnL and commission
    items = []
    for p in positions:
        spec, mark = book.specs[p.symbol], book.mark_of(p.symbol)
        items.append({
            "s": spec.name, "pa": qty_text(spec, p.size), "ep": money(p.entry()), "bep": money(p.entry()),
            "cr": money(p.realized), "up": money(p.unrealized(mark)), "mt": "isolated" if p.isolated else "cross",
            "iw": money(p.initial_margin() if p.isolated else Decimal(0)), "ps": p.side,
        })
    return {
        "e": "ACCOUNT_UPDATE",
        "E": now_ms(),
        "T": at_ms,
        "a": {"m": reason, "B": [{"a": "USDT", "wb": money(wallet), "cw": money(wallet), "bc": money(balance_change)}],
              "P": items},
    }


class BinanceFuturesPrivateStreamServer(BinanceFuturesStreamServer):
    """The USD-M market-data server plus the ``/private`` user-data paths (``user_streams`` set by the API)."""

    private_path = PRIVATE_PATH

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.user_streams: FuturesUserStreams | None = None

    def listener(self, request: picows.WSUpgradeRequest) -> ListenerOrResponse:
        path, _, query = request.path.decode("latin-1").partition("?")
        streams = self.user_streams
        if streams is None or not (path == PRIVATE_WS or path.startswith(PRIVATE_WS + "/")):
            return super().listener(request)
        events: frozenset[str] | None = None
        if path == PRIVATE_WS:
            args = parse_qs(query)
            key = args.get("listenKey", [""])[0]
            names = [e for e in args.get("events", [""])[0].split("/") if e]
            events = frozenset(names) if names else None
        else:
            key = path[len(PRIVATE_WS) + 1 :]
        if not streams.known(key):
            body = _encode({"code": ERR_LISTEN_KEY, "msg": "This listenKey does not exist."})
            return picows.WSUpgradeResponseWithListener(picows.WSUpgradeResponse.create_error_response(400, body),
                                                        None)
        return PrivateConnection(self, streams, key, events)
