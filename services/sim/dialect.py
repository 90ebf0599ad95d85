"""How a simulated venue speaks REST: what differs between Binance and MEXC, behind one interface.

The generic request handling (``rest.py``) and the matching (``book.py``) are shared; a dialect names the
order types, maps neutral rejections to the venue's codes and messages, and renders its JSON answers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any, NamedTuple, Protocol

from services.sim.book import Reject, SimFill, SimOrder, StatusNames
from services.sim.rate_limits import Refusal, SimRateLimits
from services.sim.units import SymbolSpec
from shared.config import Venue


class ApiError(NamedTuple):
    http_status: int
    code: int
    msg: str


class OrderKind(NamedTuple):
    kind: str  # book.LIMIT_IOC | book.LIMIT_FOK | book.MARKET
    response_type: str  # Binance ACK | RESULT | FULL; MEXC always its ack


class Dialect(Protocol):
    api_key_header: str
    status_names: StatusNames
    commission_in_base_on_buy: bool
    depth_timestamp: bool  # MEXC's depth snapshot carries "timestamp"
    binance_limits: bool  # Binance's weight/order limits, usage headers and bans (else MEXC's per endpoint)

    def check_signature_text(self, signature: str) -> bool: ...

    def price_decimals_limit(self, spec: SymbolSpec) -> int | None: ...

    def order_kind(self, params: Mapping[str, str]) -> OrderKind | ApiError: ...

    def rejection(self, reject: Reject) -> ApiError: ...

    def missing_api_key(self) -> ApiError: ...

    def unknown_api_key(self) -> ApiError: ...

    def bad_signature(self) -> ApiError: ...

    def bad_timestamp(self) -> ApiError: ...

    def bad_recv_window(self) -> ApiError: ...

    def missing_param(self, name: str) -> ApiError: ...

    def bad_param(self, name: str) -> ApiError: ...

    def missing_order_id(self) -> ApiError: ...

    def no_such_order(self) -> ApiError: ...

    def order_number(self, order_id: str) -> int | None: ...

    def new_order_response(self, order: SimOrder, response_type: str) -> dict[str, Any]: ...

    def query_response(self, order: SimOrder) -> dict[str, Any]: ...

    def exchange_info(self, venue: Venue, specs: Sequence[SymbolSpec], server_ms: int) -> dict[str, Any]: ...

    def cancel_response(self, order: SimOrder) -> dict[str, Any]: ...

    def unknown_cancel(self) -> ApiError: ...

    def status_unknown(self) -> ApiError: ...

    def rate_refusal(self, refusal: Refusal, limits: SimRateLimits, server_ms: int) -> ApiError: ...

    def account(self, venue: Venue, balances: Sequence[Balance], server_ms: int) -> dict[str, Any]: ...

    def trade(self, order: SimOrder, fill: SimFill) -> dict[str, Any]: ...


class Balance(NamedTuple):
    asset: str
    free: Decimal
    locked: Decimal


def basis_points(fee: float) -> int | float:
    """A fee rate as the integer basis points both venues' account endpoints write (0.001 -> 10)."""
    bps = Decimal(repr(fee)) * 10_000
    return int(bps) if bps == bps.to_integral_value() else float(bps)


def plain(d: Decimal) -> str:
    """A decimal without exponent or trailing zeros (``"0.1"``, ``"50"``), as MEXC writes numbers."""
    s = format(d, "f")
    if "." in s:
        s = s.rstrip("0").rstrip(".")
    return s or "0"


def fixed8(d: Decimal) -> str:
    """Eight decimals (``"0.10000000"``), as Binance writes numbers."""
    return format(d.quantize(Decimal("1e-8")), "f")
