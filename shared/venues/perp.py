"""What a perpetual venue's order API adds to the spot one: one protocol both perp kinds implement.

A perpetual order format is an ``OrderFormat`` (``shared.venues.common``: the executor's ``VenueClient`` drives
it exactly like a spot venue's, quantities in *base units* whatever the venue counts in) plus the calls below.
MEXC counts contracts: its format converts with the contract size it learnt from ``parse_exchange_info``, so the
rest of draizer never sees a contract.

How draizer books a perpetual (``docs``: the carry's books). A position is a balance of the symbol's base asset
on the perp venue, signed (a short is negative), and every fill moves the quote asset by its notional, exactly
as a spot fill would: the *cash-flow* view. The venue keeps a wallet (realized PnL, commissions, funding) and
each position's exact entry cost instead; the two views agree exactly:

    ledger[base]  = position size
    ledger[quote] = wallet change - sign(size) x cost

which is what the settlement checks per venue and asset.
"""

from __future__ import annotations

from decimal import Decimal
from typing import NamedTuple, Protocol

from shared.venues.common import HttpRequest, OrderFormat

INCOME_FUNDING = "FUNDING_FEE"


class PerpPositionInfo(NamedTuple):
    """One open position as the venue states it (amounts exact; quantities in base units)."""

    symbol: str  # the venue's wire symbol (BTCUSDT, BTC_USDT)
    size: Decimal  # signed: short < 0
    entry_price: Decimal
    mark_price: Decimal
    liquidation_price: Decimal  # 0: the venue states none
    leverage: int
    isolated: bool
    margin: Decimal  # the position's initial margin (isolated: its margin), USDT
    unrealized: Decimal


class PerpAccountInfo(NamedTuple):
    """The margin account (USDT-margined): what risk's perpetual rules read."""

    wallet: Decimal  # realized: deposits + realized PnL - commissions + funding
    margin_balance: Decimal  # wallet + unrealized PnL
    available: Decimal  # what a new position's initial margin may use
    maint_margin: Decimal  # sum of the positions' maintenance margins
    positions: tuple[PerpPositionInfo, ...]


class FundingPaymentInfo(NamedTuple):
    """One funding settlement of one position, as the venue's income history reports it."""

    payment_id: str  # the venue's id for it (Binance tranId, MEXC id): funding is booked once per id
    symbol: str  # the venue's wire symbol
    amount: Decimal  # USDT: > 0 received, < 0 paid
    time_ms: int  # the settlement's time (venue clock)


class PerpOrderFormat(OrderFormat, Protocol):
    """A perpetual venue's order API. ``build_new_order`` takes ``reduce_only`` too (keyword, default False):
    a reduce-only order never opens or flips a position (the venue cuts or refuses what would)."""

    quote_asset: str  # the margin asset: USDT
    perp_account_weights: tuple[int, ...]  # each ``build_perp_account`` request's weight, in order
    funding_income_weight: int
    setup_weights: tuple[int, ...]  # each ``build_setup`` request's weight, in order

    def build_new_perp_order(
        self, *, symbol: str, side: str, price: str | None, qty: str, client_order_id: str, reduce_only: bool,
        api_key: str, api_secret: str, timestamp_ms: int, recv_window_ms: int, order_type: str,
    ) -> HttpRequest: ...

    def build_perp_account(
        self, *, api_key: str, api_secret: str, timestamp_ms: int, recv_window_ms: int
    ) -> list[HttpRequest]: ...

    def parse_perp_account(self, bodies: list[bytes]) -> PerpAccountInfo: ...

    def build_funding_income(
        self, *, start_ms: int, api_key: str, api_secret: str, timestamp_ms: int, recv_window_ms: int
    ) -> HttpRequest: ...

    def parse_funding_income(self, body: bytes) -> list[FundingPaymentInfo]: ...

    def build_setup(
        self, *, symbol: str, leverage: int, isolated: bool, api_key: str, api_secret: str, timestamp_ms: int,
        recv_window_ms: int,
    ) -> list[HttpRequest]:
        """The requests that set the symbol's leverage and margin type at start ([] where the venue takes them
        with every order, as MEXC does: the format then remembers them for ``build_new_perp_order``)."""
        ...

    def parse_setup(self, http_status: int, body: bytes) -> None:
        """None when the setting took (or needed no change: Binance -4046, -4059); VenueError otherwise."""
        ...
