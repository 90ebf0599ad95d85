"""Binance USD-M user data: the listen key's REST requests, the private stream's URL, and its events (parsers).

Unlike spot (``user_stream.py``: a signed ``userDataStream.subscribe.signature`` on the WebSocket API), USD-M
futures still deliver account events through a listen key:

* ``POST /fapi/v1/listenKey`` (USER_STREAM: API key header, no signature, no parameters) answers
  ``{"listenKey": ".."}``; the key lives 60 minutes, ``PUT`` extends it by 60 minutes (-1125 "This listenKey
  does not exist." means start again with POST), ``DELETE`` closes it. Doc:
  https://developers.binance.com/en/docs/catalog/core-trading-derivatives-trading-usd-s-m-futures/api/rest-api/user-data-streams
* Since the 2026 split of the futures WebSocket hosts into routed paths (``/public`` high-frequency book
  data, ``/market`` other market data, ``/private`` user data; the legacy ``wss://fstream.binance.com/ws``
  and ``/stream`` URLs were retired on 2026-04-23), user data is served only under
  ``wss://fstream.binance.com/private``. Two documented ways in: ``/private/ws/<listenKey>`` (every event;
  https://developers.binance.com/docs/derivatives/usds-margined-futures/user-data-streams) and
  ``/private/ws?listenKey=<key>&events=ORDER_TRADE_UPDATE/ACCOUNT_UPDATE`` (only the events named;
  https://developers.binance.com/docs/derivatives/usds-margined-futures/websocket-market-streams/Important-WebSocket-Change-Notice).
  A connection lasts at most 24 hours.
* Events (``ORDER_TRADE_UPDATE``, ``ACCOUNT_UPDATE``, ``listenKeyExpired``; pages Event-Order-Update,
  Event-Balance-and-Position-Update, Event-User-Data-Stream-Expired under .../user-data-streams/) arrive
  bare in ws mode and as ``{"stream":..,"data":{..}}`` in stream mode; both are read. Pure code.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from decimal import Decimal
from typing import NamedTuple

import msgspec
from msgspec import Struct

from shared.errors import ProtocolError
from shared.venues.binance.constants import API_KEY_HEADER
from shared.venues.binance.futures_orders import STATUSES, margin_type, sdec
from shared.venues.common import HttpRequest
from shared.venues.spot_rest import dec
from shared.venues.user_data import check_listen_key, listen_key_answer

PRIVATE_WS_URL = "wss://fstream.binance.com/private"  # the routed path for user data (see the docstring)
LISTEN_KEY_PATH = "/fapi/v1/listenKey"
LISTEN_KEY_VALIDITY_S = 3600  # "valid for 60 minutes after creation"; each PUT extends it by 60 minutes
KEEPALIVE_INTERVAL_S = 1800  # our choice: half the validity, so one late keepalive does not lose the key
CONNECTION_MAX_S = 86_400  # "A single connection is only valid for 24 hours"
WEIGHT_LISTEN_KEY = 1  # POST, PUT and DELETE alike
ERR_LISTEN_KEY_MISSING = -1125  # "This listenKey does not exist.": POST a new one

EVENT_ORDER_TRADE_UPDATE = "ORDER_TRADE_UPDATE"
EVENT_ACCOUNT_UPDATE = "ACCOUNT_UPDATE"
EVENT_LISTEN_KEY_EXPIRED = "listenKeyExpired"
DEFAULT_EVENTS = (EVENT_ORDER_TRADE_UPDATE, EVENT_ACCOUNT_UPDATE)
EXEC_TRADE = "TRADE"  # execution type x of a fill

_EVENT_NAME = re.compile(r"[A-Za-z_]+")


# ----- the listen key (REST)
def build_start_listen_key(api_key: str) -> HttpRequest:
    """POST /fapi/v1/listenKey: a new key, or the active one extended."""
    return HttpRequest("POST", LISTEN_KEY_PATH, [(API_KEY_HEADER, api_key)], b"")


def build_keepalive_listen_key(api_key: str) -> HttpRequest:
    """PUT /fapi/v1/listenKey: extend the active key by 60 minutes."""
    return HttpRequest("PUT", LISTEN_KEY_PATH, [(API_KEY_HEADER, api_key)], b"")


def build_close_listen_key(api_key: str) -> HttpRequest:
    """DELETE /fapi/v1/listenKey: close the stream."""
    return HttpRequest("DELETE", LISTEN_KEY_PATH, [(API_KEY_HEADER, api_key)], b"")



def parse_listen_key(http_status: int, body: bytes) -> str:
    """The key of a POST or PUT answer; VenueError (code kept) for an error, ProtocolError if unreadable."""
    return listen_key_answer(http_status, body, "binance futures")


def user_stream_url(listen_key: str, events: Sequence[str] = DEFAULT_EVENTS, base: str = PRIVATE_WS_URL) -> str:
    """``<base>/ws?listenKey=..&events=A/B``: only the named events; with no events, ``<base>/ws/<key>``
    (every event). ``base`` is the configured private URL (the simulator serves its own)."""
    check_listen_key(listen_key)
    for e in events:
        if not _EVENT_NAME.fullmatch(e):
            raise ValueError(f"bad event name {e!r}")
    if not events:
        return f"{base}/ws/{listen_key}"
    return f"{base}/ws?listenKey={listen_key}&events={'/'.join(events)}"


# ----- events
class FuturesOrderUpdate(NamedTuple):
    """``ORDER_TRADE_UPDATE``: one order event; a fill has ``exec_type`` TRADE and a trade id."""

    symbol: str
    client_order_id: str  # "autoclose-.." for a liquidation, "adl_autoclose" for an ADL
    order_id: str
    side: str  # BUY | SELL
    order_type: str  # o: LIMIT | MARKET | ... | LIQUIDATION
    time_in_force: str
    exec_type: str  # x: NEW | CANCELED | CALCULATED | EXPIRED | TRADE | AMENDMENT
    status: str  # X made canonical (EXPIRED_IN_MATCH -> EXPIRED)
    venue_status: str
    orig_qty: Decimal  # q
    orig_price: Decimal  # p
    avg_price: Decimal  # ap
    last_qty: Decimal  # l: this fill
    last_price: Decimal  # L
    cum_qty: Decimal  # z
    commission: Decimal  # n (signed: a rebate would be negative)
    commission_asset: str  # N ("" when absent)
    realized_pnl: Decimal  # rp, signed
    trade_id: str  # t; "" unless exec_type is TRADE
    maker: bool  # m
    reduce_only: bool  # R
    position_side: str  # ps
    expiry_reason: str  # er ("0": none; "2": IOC remainder canceled, ...)
    event_ms: int  # E: order updates by this (the page recommends E over T)
    trade_ms: int  # o.T


class BalanceUpdate(NamedTuple):
    asset: str
    wallet: Decimal  # wb
    cross_wallet: Decimal  # cw
    change: Decimal  # bc: the change except PnL and commission (signed)


class PositionUpdate(NamedTuple):
    symbol: str
    amount: Decimal  # pa, signed
    entry_price: Decimal  # ep
    break_even_price: Decimal  # bep
    accumulated_realized: Decimal  # cr, signed
    unrealized_pnl: Decimal  # up, signed
    margin_type: str  # mt: MARGIN_ISOLATED | MARGIN_CROSSED
    isolated_wallet: Decimal  # iw
    position_side: str  # ps


class FuturesAccountUpdate(NamedTuple):
    """``ACCOUNT_UPDATE``: only what changed. A cross funding fee carries the fee's asset in ``balances``
    and no positions; an isolated one also the one position it was charged on."""

    reason: str  # m: ORDER | FUNDING_FEE | DEPOSIT | ...
    balances: tuple[BalanceUpdate, ...]
    positions: tuple[PositionUpdate, ...]
    event_ms: int
    transaction_ms: int


class ListenKeyExpired(NamedTuple):
    """No more events come on this key: start a new one (the connection itself may stay open)."""

    listen_key: str
    event_ms: int


UserEvent = FuturesOrderUpdate | FuturesAccountUpdate | ListenKeyExpired


_NO_DATA = msgspec.Raw(b"")


class _Head(Struct):
    e: str | None = None
    data: msgspec.Raw = _NO_DATA  # stream mode's envelope (Raw cannot be optional: empty means absent)


class _Order(Struct):
    s: str
    c: str
    S: str
    x: str
    X: str
    i: int
    o: str = ""
    f: str = ""
    q: str = "0"
    p: str = "0"
    ap: str = "0"
    l: str = "0"  # noqa: E741 - the venue's field name
    z: str = "0"
    L: str = "0"
    n: str | None = None
    N: str | None = None
    T: int = 0
    t: int = 0
    m: bool = False
    R: bool = False
    ps: str = "BOTH"
    rp: str = "0"
    er: str = "0"


class _OrderTradeUpdate(Struct):
    o: _Order
    E: int = 0


class _Balance(Struct):
    a: str
    wb: str
    cw: str = "0"
    bc: str = "0"


class _PositionItem(Struct):
    s: str
    pa: str
    ep: str = "0"
    bep: str = "0"
    cr: str = "0"
    up: str = "0"
    mt: str = "cross"
    iw: str = "0"
    ps: str = "BOTH"


class _AccountData(Struct):
    m: str
    B: list[_Balance] = []
    P: list[_PositionItem] = []


class _AccountUpdate(Struct):
    a: _AccountData
    E: int = 0
    T: int = 0


class _Expired(Struct):
    listenKey: str = ""
    E: int = 0


_head_decoder = msgspec.json.Decoder(_Head)
_order_decoder = msgspec.json.Decoder(_OrderTradeUpdate)
_account_decoder = msgspec.json.Decoder(_AccountUpdate)
_expired_decoder = msgspec.json.Decoder(_Expired)


def parse_user_event(payload: bytes | str) -> UserEvent | None:
    """One frame of the private stream: an order update, an account update or the key's expiry; None for
    other events (TRADE_LITE, ACCOUNT_CONFIG_UPDATE, MARGIN_CALL, ...) and for subscription answers.
    ProtocolError for anything malformed."""
    try:
        head = _head_decoder.decode(payload)
        raw: bytes | str = payload
        if head.e is None and len(head.data):  # stream mode: {"stream":..,"data":{..}}
            raw = bytes(head.data)
            head = _head_decoder.decode(raw)
        if head.e == EVENT_ORDER_TRADE_UPDATE:
            return _order_update(_order_decoder.decode(raw))
        if head.e == EVENT_ACCOUNT_UPDATE:
            return _account_update(_account_decoder.decode(raw))
        if head.e == EVENT_LISTEN_KEY_EXPIRED:
            x = _expired_decoder.decode(raw)
            return ListenKeyExpired(x.listenKey, x.E)
    except (msgspec.DecodeError, ValueError) as exc:
        raise ProtocolError(f"binance futures user stream: malformed frame ({exc})") from None
    return None


def _order_update(u: _OrderTradeUpdate) -> FuturesOrderUpdate:
    o = u.o
    status = STATUSES.get(o.X)
    if status is None or not o.c:
        raise ValueError(f"ORDER_TRADE_UPDATE status {o.X!r}, client id {o.c!r}")
    return FuturesOrderUpdate(
        o.s, o.c, str(o.i), o.S, o.o, o.f, o.x, status, o.X, dec(o.q), dec(o.p), dec(o.ap), dec(o.l), dec(o.L),
        dec(o.z), sdec(o.n or "0"), o.N or "", sdec(o.rp), str(o.t) if o.x == EXEC_TRADE else "", o.m, o.R,
        o.ps, o.er, u.E, o.T,
    )


def _account_update(u: _AccountUpdate) -> FuturesAccountUpdate:
    a = u.a
    balances = tuple(BalanceUpdate(b.a, sdec(b.wb), sdec(b.cw), sdec(b.bc)) for b in a.B)
    positions = tuple(
        PositionUpdate(p.s, sdec(p.pa), dec(p.ep), dec(p.bep), sdec(p.cr), sdec(p.up), margin_type(p.mt),
                       dec(p.iw), p.ps)
        for p in a.P
    )
    return FuturesAccountUpdate(a.m, balances, positions, u.E, u.T)
