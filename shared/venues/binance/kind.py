"""Binance's venue kinds: spot (``binance``) and USD-M perpetuals (``binance_usdm``).

Kept light: ``shared.config`` imports this (through ``shared.venues.kinds``), so the formats are imported
only when a factory is called.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shared.errors import ConfigError
from shared.venues.binance import constants as c
from shared.venues.declaration import DocumentedLimits, Simulated, UserStream, VenueKind

if TYPE_CHECKING:
    from shared.config import Venue
    from shared.venues.common import MarketFormat, OrderFormat


def _spot_market() -> MarketFormat:
    from shared.venues.binance.market import BinanceMarketFormat

    return BinanceMarketFormat()


def _futures_market() -> MarketFormat:
    from shared.venues.binance.futures import BinanceFuturesFormat

    return BinanceFuturesFormat()


def _orders() -> OrderFormat:
    from shared.venues.binance.orders import BinanceOrderFormat

    return BinanceOrderFormat()


def _usdm_orders() -> OrderFormat:
    from shared.venues.binance.futures_rest import BinanceUsdmOrderFormat

    return BinanceUsdmOrderFormat()


def _subscribe_request(api_key: str, api_secret: str, timestamp_ms: int, request_id: str) -> str:
    # Imported when called: the user stream's module imports the order format, hence shared.config.
    from shared.venues.binance.user_stream import subscribe_request

    return subscribe_request(api_key, api_secret, timestamp_ms, request_id)


def _check_spot_depth(venue: Venue, where: str) -> None:
    if venue.feed.depth_interval_ms == 10:
        raise ConfigError(f"{where}.feed.depth_interval_ms: Binance serves 100 or 1000")


BINANCE = VenueKind(
    name="binance",
    spot=True,
    ws_path=c.COMBINED_PATH,
    market_format=_spot_market,
    order_format=_orders,
    limits=DocumentedLimits(c.LIMIT_WEIGHT_PER_MINUTE, c.LIMIT_ORDERS_PER_10S, c.LIMIT_ORDERS_PER_DAY),
    api_key_header=c.API_KEY_HEADER,
    user_stream=UserStream(c.WS_API_PATH, _subscribe_request),
    checks=(_check_spot_depth,),
    commission_in_base_on_buy=True,  # without BNB: buys pay in the base asset, sells in the quote asset
    sim=Simulated(
        stream="services.sim.ws_binance:BinanceSpotStreamServer",
        dialect="services.sim.dialect_binance:BinanceDialect",
        load_stream="services.loadgen.venues:BinanceServer",
        load_ticker="services.loadgen.frames:binance_ticker_frame",
    ),
)

# USD-M documents three order limits: 2400 weight and 1200 orders per minute, 300 orders per 10 s.
# DocumentedLimits (and RateBudget) count weight per minute and orders per 10 s and per day, not orders per
# minute: the 10 s budget is therefore 200 = 1200 / 6, below the venue's 300, so that no minute can hold more
# than 1200 (any 60 s are six 10 s windows); there is no daily order limit (0).
_USDM_ORDERS_PER_10S = min(c.FUTURES_LIMIT_ORDERS_PER_10S, c.FUTURES_LIMIT_ORDERS_PER_MINUTE // 6)

BINANCE_USDM = VenueKind(
    name="binance_usdm",
    spot=False,
    ws_path=c.FUTURES_ROUTED_PATH,
    market_format=_futures_market,
    order_format=_usdm_orders,
    limits=DocumentedLimits(c.FUTURES_LIMIT_WEIGHT_PER_MINUTE, _USDM_ORDERS_PER_10S, 0),
    api_key_header=c.API_KEY_HEADER,  # X-MBX-APIKEY, as on spot
    funding_decimals=8,
    sim=Simulated(
        stream="services.sim.ws_binance_futures_user:BinanceFuturesPrivateStreamServer",
        funding_rest="services.sim.rest_perp:BinancePremiumIndexRest",
        perp_orders="services.sim.rest_futures_binance:BinanceFuturesApi",
        load_stream="services.loadgen.venues:BinancePerpServer",
    ),
)
