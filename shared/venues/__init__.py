"""Venue wire formats, one folder per venue; pick one by the config's ``kind``."""

from __future__ import annotations

from typing import NamedTuple

from shared.venues.common import MarketFormat, OrderFormat

SPOT_KINDS = ("binance", "mexc")


def market_format(kind: str) -> MarketFormat:
    """A fresh parser per caller: each holds its own reusable decoder state."""
    if kind == "binance":
        from shared.venues.binance.market import BinanceMarketFormat

        return BinanceMarketFormat()
    if kind == "mexc":
        from shared.venues.mexc.market import MexcMarketFormat

        return MexcMarketFormat()
    if kind == "binance_usdm":
        from shared.venues.binance.futures import BinanceFuturesFormat

        return BinanceFuturesFormat()
    if kind == "mexc_contract":
        from shared.venues.mexc.contract import MexcContractFormat

        return MexcContractFormat()
    raise ValueError(f"unknown venue kind {kind!r}; expected binance, mexc, binance_usdm or mexc_contract")


class DocumentedLimits(NamedTuple):
    """A spot venue's published request budget (PROTOCOLS.md); 0 means the venue sets no such limit."""

    weight_per_minute: int
    orders_per_10s: int
    orders_per_day: int


def documented_limits(kind: str) -> DocumentedLimits:
    if kind == "binance":
        from shared.venues.binance import constants as b

        return DocumentedLimits(b.LIMIT_WEIGHT_PER_MINUTE, b.LIMIT_ORDERS_PER_10S, b.LIMIT_ORDERS_PER_DAY)
    if kind == "mexc":
        from shared.venues.mexc import constants as m

        return DocumentedLimits(m.LIMIT_WEIGHT_PER_MINUTE, m.LIMIT_ORDERS_PER_10S, m.LIMIT_ORDERS_PER_DAY)
    raise ValueError(f"no order API for venue kind {kind!r}; orders go to spot venues (binance, mexc)")


def order_format(kind: str) -> OrderFormat:
    if kind == "binance":
        from shared.venues.binance.orders import BinanceOrderFormat

        return BinanceOrderFormat()
    if kind == "mexc":
        from shared.venues.mexc.orders import MexcOrderFormat

        return MexcOrderFormat()
    raise ValueError(f"no order API for venue kind {kind!r}; orders go to spot venues (binance, mexc)")
