"""What every venue folder shares: the normalized shapes the feed and executor see, and request signing.

A venue folder turns its own wire format into these shapes and back; nothing outside ``shared/venues``
knows a venue's JSON field names or protobuf fields.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Sequence
from functools import lru_cache
from typing import NamedTuple, Protocol
from urllib.parse import quote

import msgspec
from msgspec import Struct

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


class HttpRequest(NamedTuple):
    method: str
    path: str  # includes the query string
    headers: list[tuple[str, str]]
    body: bytes


class OrderResult(NamedTuple):
    """One order as the venue reported it, normalized; ``status`` keeps the venue's own status name."""

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


class MarketFormat(Protocol):
    keepalive_interval_s: float | None

    def url(self, ws_url: str, symbols: Sequence[str]) -> str: ...

    def subscribe_frames(self, symbols: Sequence[str]) -> list[str]: ...

    def keepalive_frame(self) -> str | None: ...

    def parse(self, payload: bytes, binary: bool) -> TopOfBook | None: ...


class OrderFormat(Protocol):
    def build_new_order(
        self,
        *,
        symbol: str,
        side: str,
        price: str,
        qty: str,
        client_order_id: str,
        api_key: str,
        api_secret: str,
        timestamp_ms: int,
        recv_window_ms: int,
    ) -> HttpRequest: ...

    def build_query_order(
        self,
        *,
        symbol: str,
        client_order_id: str,
        api_key: str,
        api_secret: str,
        timestamp_ms: int,
        recv_window_ms: int,
    ) -> HttpRequest: ...

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


class _VenueErrorBody(Struct):
    code: int
    msg: str


_error_decoder = msgspec.json.Decoder(_VenueErrorBody)


def error_result(http_status: int, body: bytes, unknown_codes: frozenset[int] = frozenset()) -> OrderResult:
    """A non-2xx answer. 5xx means the order's fate is unknown (it may have been placed); a 4xx with the
    venue's ``{"code","msg"}`` is a refusal; anything else we cannot read is treated as unknown too."""
    if http_status >= 500:
        return unknown("", f"HTTP {http_status}: {body[:200].decode(errors='replace')}")
    try:
        err = _error_decoder.decode(body)
    except msgspec.DecodeError:
        return unknown("", f"HTTP {http_status}: unreadable body {body[:200]!r}")
    if err.code in unknown_codes:
        return unknown("", err.msg, err.code)
    return rejected("", err.code, err.msg)
