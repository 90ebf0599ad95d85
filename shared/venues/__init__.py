"""Venue wire formats, one folder per venue; pick one by the config's ``kind``."""

from __future__ import annotations

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


def order_format(kind: str) -> OrderFormat:
    if kind == "binance":
        from shared.venues.binance.orders import BinanceOrderFormat

        return BinanceOrderFormat()
    if kind == "mexc":
        from shared.venues.mexc.orders import MexcOrderFormat

        return MexcOrderFormat()
    raise ValueError(f"no order API for venue kind {kind!r}; orders go to spot venues (binance, mexc)")
