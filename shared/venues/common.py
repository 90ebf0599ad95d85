"""What every venue folder shares: the normalized shapes the feed and executor see, and request signing.

A venue folder turns its own wire format into these shapes and back; nothing outside ``shared/venues``
knows a venue's JSON field names or protobuf fields.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping, Sequence
from decimal import Decimal
from functools import lru_cache
from typing import Final, Literal, NamedTuple, Protocol
from urllib.parse import quote

import msgspec
from msgspec import Struct

from shared.config import FeedSettings
from shared.errors import ProtocolError

# Values made only of these characters are sent as they are; anything else is percent-encoded before
# signing, because the venue verifies the signature over the text it receives.
_PLAIN = re.compile(r"[A-Za-z0-9._~-]*")
INF = float("inf")


class TopOfBook(NamedTuple):
    symbol: str
    bid: float
    bid_qty: float
    ask: float
    ask_qty: float
    seq: int  # Binance ``u``; MEXC ``version`` (0 when absent)


Levels = list[tuple[float, float]]  # (price, quantity); quantity 0 removes the level


class DepthDiff(NamedTuple):
    """Changes to a book covering update ids ``first_id..last_id`` (Binance U..u, MEXC from/toVersion)."""

    symbol: str
    first_id: int
    last_id: int
    bids: Levels
    asks: Levels


class DepthSnapshot(NamedTuple):
    """A whole book (REST snapshot) or its top levels (Binance partial depth), best first."""

    symbol: str
    last_id: int
    bids: Levels
    asks: Levels


class FundingUpdate(NamedTuple):
    symbol: str
    rate: float  # per funding period
    next_funding_ms: int
    mark_price: float  # 0.0 when the venue's push has none
    event_ms: int


class Notice(NamedTuple):
    """A control event the feed must act on; plain acks are ``None`` instead."""

    kind: str  # NOTICE_SHUTDOWN | NOTICE_PONG


NOTICE_SHUTDOWN = "shutdown"  # the server will close this connection soon: move to a new one
NOTICE_PONG = "pong"  # the answer to our application-level ping

MarketEvent = TopOfBook | DepthDiff | DepthSnapshot | FundingUpdate | Notice

CHANNEL_TICKER = "ticker"
CHANNEL_DEPTH = "depth"
CHANNEL_FUNDING = "funding"


class Channel(NamedTuple):
    """One subscription: the venue's stream or channel name and what it carries for which symbol."""

    name: str
    symbol: str  # as the venue writes it (BTCUSDT, BTC_USDT)
    kind: str  # CHANNEL_TICKER | CHANNEL_DEPTH | CHANNEL_FUNDING


class HttpRequest(NamedTuple):
    method: str
    path: str  # includes the query string
    headers: list[tuple[str, str]]
    body: bytes


class OrderResult(NamedTuple):
    """One order as the venue reported it, normalized; ``status`` keeps the venue's own status name.
    The first executor's shape (floats); new code reads ``OrderAnswer``."""

    ok: bool  # False: the venue refused the request (REJECTED) or its outcome is UNKNOWN
    status: str
    order_id: str
    client_order_id: str
    filled_qty: float
    avg_price: float
    fee_usd: float  # in the quote currency; base-asset commissions converted at the fill price
    fills: list[tuple[float, float, float, str]]  # (price, qty, fee_usd, trade_id)
    error_code: int
    error_msg: str
    needs_query: bool  # the response carries no execution data: send build_query_order and parse that


# ----- orders and accounts: exact (Decimal) shapes both spot venues' REST answers become
NEW = "NEW"
PARTIALLY_FILLED = "PARTIALLY_FILLED"
FILLED = "FILLED"
CANCELED = "CANCELED"
REJECTED = "REJECTED"
EXPIRED = "EXPIRED"
UNKNOWN = "UNKNOWN"  # not a venue status: the answer does not say what became of the order
FINAL_STATUSES = frozenset({FILLED, CANCELED, REJECTED, EXPIRED})

# What one answer says (``OrderAnswer.kind``): a closed set, checked by the type checker, never a free string.
AnswerKind = Literal["ok", "rejected", "unknown", "throttled"]
ANSWER_OK: Final = "ok"  # the venue states the order (its status and executed quantity)
ANSWER_REJECTED: Final = "rejected"  # the venue refused the request: a 4xx with its code
ANSWER_UNKNOWN: Final = "unknown"  # 5xx, timeout, lost connection, unreadable, or a code leaving the order open
ANSWER_THROTTLED: Final = "throttled"  # 429/418, or our own budget refused to send: the request never took effect

ORDER_LIMIT_IOC = "limit_ioc"
ORDER_MARKET = "market"
ZERO = Decimal(0)


class TradeFill(NamedTuple):
    trade_id: str
    price: Decimal
    qty: Decimal
    commission: Decimal
    commission_asset: str  # as the venue reports it: Binance charges buys in the base asset


class OrderReport(NamedTuple):
    """One account event from a venue's user-data stream, whichever venue: an order's state (``status`` set,
    cumulative numbers) and/or one fill (``trade_id`` set, with its price, quantity and fee). Binance's
    executionReport carries both at once; MEXC sends the order's state and its fills on two channels."""

    symbol: str
    client_order_id: str  # "" when the venue did not name it
    order_id: str
    side: str  # BUY | SELL
    status: str  # canonical (PARTIALLY_CANCELED -> CANCELED); "" when the event says nothing of the order's state
    cum_qty: Decimal
    cum_quote: Decimal
    last_qty: Decimal  # this event's fill ("0" when none)
    last_price: Decimal  # "0" when the event does not say it
    trade_id: str  # "" when the event is not a fill
    commission: Decimal
    commission_asset: str
    event_ms: int


class OrderAnswer(NamedTuple):
    """What one answer says about one order.

    ``status`` describes the order: for ``ok`` the venue's status made canonical (MEXC PARTIALLY_CANCELED
    → CANCELED, Binance EXPIRED_IN_MATCH → EXPIRED, PENDING_NEW → NEW; an ACK without status → NEW). A
    refused or throttled *new order* does not exist: REJECTED. Every other answer (``unknown``, and a
    refused or throttled query or cancel) says nothing about the order: UNKNOWN, with the venue's code in
    ``error_code`` (``OrderFormat.not_found`` tells whether that code means "no such order")."""

    kind: AnswerKind
    status: str
    venue_status: str  # the venue's own word ("" when the answer has none)
    order_id: str
    client_order_id: str
    executed_qty: Decimal
    cum_quote: Decimal
    fills: tuple[TradeFill, ...] | None  # None: this answer carries no per-fill data (queries, acks, MEXC)
    error_code: int
    error_msg: str
    http_status: int  # 0: no HTTP answer (timeout, connection lost, refused locally)
    retry_after_s: float  # from Retry-After on 429/418, else 0

    @property
    def final(self) -> bool:
        return self.status in FINAL_STATUSES


def answer_without_order(
    kind: AnswerKind, client_order_id: str, code: int, msg: str, http_status: int = 0, retry_after_s: float = 0.0,
    *, new_order: bool = True,
) -> OrderAnswer:
    """An answer that states no order: refused, throttled or unknown (see ``OrderAnswer``)."""
    gone = new_order and kind in (ANSWER_REJECTED, ANSWER_THROTTLED)
    return OrderAnswer(
        kind, REJECTED if gone else UNKNOWN, "", "", client_order_id, ZERO, ZERO, None, code, msg,
        http_status, retry_after_s,
    )


class SymbolRules(NamedTuple):
    """A symbol's trading rules as the venue publishes them; 0 means the venue does not enforce that rule."""

    symbol: str
    tick: Decimal
    step: Decimal
    min_qty: Decimal
    min_notional: Decimal
    price_decimals: int
    qty_decimals: int


class RequestWeights(NamedTuple):
    """What each request costs against the venue's weight budget (its documented weights)."""

    new_order: int
    query_order: int
    cancel_order: int
    open_orders_symbol: int
    open_orders_all: int
    cancel_all: int
    account: int
    my_trades: int
    my_trades_by_order: int
    exchange_info: int
    time: int
    all_orders: int = 1  # allOrders: only a restart's recovery lists them


class AccountInfo(NamedTuple):
    balances: dict[str, tuple[Decimal, Decimal]]  # asset -> (free, locked)
    maker_fee: Decimal  # a rate: 0.001 is 0.1%
    taker_fee: Decimal


class DeclaredLimit(NamedTuple):
    """One request limit the venue declares in its exchangeInfo (``rateLimits``)."""

    kind: str  # REQUEST_WEIGHT | ORDERS | RAW_REQUESTS
    interval_s: int
    limit: int


class TradingPermission(NamedTuple):
    """What an account answer says about trading with these keys (None: the answer does not say)."""

    can_trade: bool | None
    permissions: tuple[str, ...]  # e.g. ("SPOT",)


class RateHeaders(NamedTuple):
    """The venue's own count of our usage, from one answer's headers (None: not reported)."""

    weight_1m: int | None
    orders_10s: int | None
    orders_1d: int | None
    retry_after_s: float | None


class MarketFormat(Protocol):
    """One venue's market-data wire format. ``parse`` never raises anything but ProtocolError."""

    keepalive_interval_s: float | None  # how often the venue wants an application-level ping (None: never)
    max_channels_per_connection: int
    snapshots: bool  # diff books need a REST snapshot (``snapshot_path``/``parse_snapshot``)
    subscribes_in_url: bool  # the channels go in the connection URL, not in subscription frames

    def wire_symbol(self, base: str, quote: str) -> str: ...

    def channels(self, symbols: Sequence[str], settings: FeedSettings) -> list[Channel]: ...

    def url(self, ws_url: str, channels: Sequence[Channel]) -> str: ...

    def subscribe_frames(self, channels: Sequence[Channel]) -> list[str]: ...

    def unsubscribe_frames(self, channels: Sequence[Channel]) -> list[str]: ...

    def keepalive_frame(self) -> str | None: ...

    def parse(self, payload: bytes, binary: bool) -> MarketEvent | None: ...

    def event_time_ms(self, payload: bytes, binary: bool) -> int:
        """The venue's own event time of a frame (ms since the epoch, the venue's clock); 0 when the frame
        carries none or cannot be read. Never raises. Called by the recorder only, not on the live path."""
        ...

    def snapshot_path(self, symbol: str, limit: int) -> str: ...

    def parse_snapshot(self, symbol: str, body: bytes) -> DepthSnapshot: ...


class OrderFormat(Protocol):
    """One spot venue's order API: requests built signed (sans I/O) and answers parsed into the shapes
    above. Every ``build_*`` takes the credentials and the venue-clock timestamp; parsers never raise for
    an order answer (anything unreadable is ``unknown``), and raise ProtocolError for the others."""

    kind: str
    not_found_codes: frozenset[int]  # codes meaning "no such order" on a query or cancel
    timestamp_codes: frozenset[int]  # codes meaning "timestamp outside recvWindow"
    weights: RequestWeights

    def build_new_order(
        self, *, symbol: str, side: str, price: str | None, qty: str, client_order_id: str, api_key: str,
        api_secret: str, timestamp_ms: int, recv_window_ms: int, order_type: str = ORDER_LIMIT_IOC,
    ) -> HttpRequest: ...

    def build_query_order(
        self, *, symbol: str, client_order_id: str, api_key: str, api_secret: str, timestamp_ms: int,
        recv_window_ms: int,
    ) -> HttpRequest: ...

    def build_cancel_order(
        self, *, symbol: str, client_order_id: str, api_key: str, api_secret: str, timestamp_ms: int,
        recv_window_ms: int,
    ) -> HttpRequest: ...

    def build_open_orders(
        self, *, symbol: str | None, api_key: str, api_secret: str, timestamp_ms: int, recv_window_ms: int
    ) -> HttpRequest: ...

    def build_cancel_all(
        self, *, symbol: str, api_key: str, api_secret: str, timestamp_ms: int, recv_window_ms: int
    ) -> HttpRequest: ...

    def build_account(
        self, *, api_key: str, api_secret: str, timestamp_ms: int, recv_window_ms: int
    ) -> HttpRequest: ...

    def build_my_trades(
        self, *, symbol: str, order_id: str | None, api_key: str, api_secret: str, timestamp_ms: int,
        recv_window_ms: int,
    ) -> HttpRequest: ...

    def build_exchange_info(self, symbols: Sequence[str] = ()) -> HttpRequest: ...

    def build_time(self) -> HttpRequest: ...

    def parse_order(
        self, http_status: int, body: bytes, headers: Mapping[str, str], *, new_order: bool = True
    ) -> OrderAnswer: ...

    def parse_order_list(self, http_status: int, body: bytes, headers: Mapping[str, str]) -> list[OrderAnswer]: ...

    def parse_account(self, body: bytes, fallback: tuple[Decimal, Decimal] | None = None) -> AccountInfo: ...

    def parse_my_trades(self, body: bytes) -> list[TradeFill]: ...

    def parse_exchange_info(self, body: bytes) -> dict[str, SymbolRules]: ...

    def parse_rate_headers(self, headers: Mapping[str, str]) -> RateHeaders: ...

    def parse_time(self, body: bytes) -> int: ...

    def parse_error(self, http_status: int, body: bytes) -> tuple[int, str]: ...

    def not_found(self, answer: OrderAnswer) -> bool: ...

    def parse_order_response(self, http_status: int, body: bytes, base_asset: str) -> OrderResult: ...


@lru_cache(maxsize=64)
def _keyed_hmac(secret: str) -> hmac.HMAC:
    # The key schedule is computed once per secret; each signature copies the prepared state.
    return hmac.new(secret.encode(), digestmod=hashlib.sha256)


def hmac_sha256_hex(secret: str, payload: str) -> str:
    """Lowercase hex HMAC-SHA256, the signature both Binance and MEXC expect."""
    mac = _keyed_hmac(secret).copy()
    mac.update(payload.encode())
    return mac.hexdigest()


def encode_value(value: str) -> str:
    return value if _PLAIN.fullmatch(value) else quote(value, safe="")


def query_string(params: Sequence[tuple[str, str]]) -> str:
    # One regex over all values at once: the usual case (nothing to encode) costs a single match.
    if _PLAIN.fullmatch("".join([v for _, v in params])):
        return "&".join([f"{k}={v}" for k, v in params])
    return "&".join([f"{k}={encode_value(v)}" for k, v in params])


def signed_path(path: str, params: Sequence[tuple[str, str]], secret: str, body: bytes = b"") -> str:
    """``path?params&signature=...``: the signature covers the query string followed by the body."""
    qs = query_string(params)
    signature = hmac_sha256_hex(secret, qs + body.decode())
    return f"{path}?{qs}&signature={signature}"


def rejected(client_order_id: str, code: int, msg: str) -> OrderResult:
    return OrderResult(False, "REJECTED", "", client_order_id, 0.0, 0.0, 0.0, [], code, msg, False)


def unknown(client_order_id: str, why: str, code: int = 0) -> OrderResult:
    """The venue may or may not have the order: the caller must query it, never resend it."""
    return OrderResult(False, "UNKNOWN", "", client_order_id, 0.0, 0.0, 0.0, [], code, why, False)


def to_float(text: str | float | int) -> float:
    """A venue decimal (string or JSON number) as a finite, non-negative float; ValueError otherwise."""
    value = float(text)
    if not 0.0 <= value < INF:
        raise ValueError(f"not a finite non-negative number: {text!r}")
    return value


def levels(pairs: Sequence[tuple[str, str]] | Sequence[Sequence[str]], what: str) -> Levels:
    """Venue ``[["price","qty"], ...]`` as floats; ProtocolError on anything non-numeric or negative."""
    try:
        out = [(float(p), float(q)) for p, q in pairs]
    except (ValueError, TypeError):
        raise ProtocolError(f"non-numeric level in {what}") from None
    for p, q in out:
        if not (0.0 < p < INF and 0.0 <= q < INF):
            raise ProtocolError(f"level out of range in {what}: {p} x {q}")
    return out


class DepthBody(Struct):
    """``{"lastUpdateId","bids","asks"}``: both venues' REST depth snapshot and Binance's partial depth push."""

    lastUpdateId: int
    bids: list[tuple[str, str]]
    asks: list[tuple[str, str]]


_depth_decoder = msgspec.json.Decoder(DepthBody)


def depth_snapshot(symbol: str, d: DepthBody) -> DepthSnapshot:
    return DepthSnapshot(symbol, d.lastUpdateId, levels(d.bids, symbol), levels(d.asks, symbol))


def parse_depth_snapshot(symbol: str, body: bytes) -> DepthSnapshot:
    """A REST ``/api/v3/depth`` answer (same shape on Binance and MEXC; MEXC's extra ``timestamp`` is skipped)."""
    try:
        return depth_snapshot(symbol, _depth_decoder.decode(body))
    except msgspec.DecodeError as exc:
        raise ProtocolError(f"bad depth snapshot for {symbol}: {exc}") from None


class NoSnapshots:
    """For funding-only formats: there is no book, so asking for a snapshot is a programming error."""

    snapshots = False

    def snapshot_path(self, symbol: str, limit: int) -> str:
        raise ProtocolError("funding streams have no book snapshot")

    def parse_snapshot(self, symbol: str, body: bytes) -> DepthSnapshot:
        raise ProtocolError("funding streams have no book snapshot")
