"""MEXC's venue kinds: spot v3 (``mexc``) and contract perpetuals (``mexc_contract``).

Kept light: ``shared.config`` imports this (through ``shared.venues.kinds``), so the formats (protobuf
included) are imported only when a factory is called.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shared.errors import ConfigError
from shared.venues.declaration import DocumentedLimits, ListenKeyStream, Simulated, VenueKind
from shared.venues.mexc import constants as c

if TYPE_CHECKING:
    from shared.config import Venue
    from shared.venues.common import MarketFormat, OrderFormat
    from shared.venues.user_data import ListenKeyFormat


def _spot_market() -> MarketFormat:
    from shared.venues.mexc.market import MexcMarketFormat

    return MexcMarketFormat()


def _contract_market() -> MarketFormat:
    from shared.venues.mexc.contract import MexcContractFormat

    return MexcContractFormat()


def _orders() -> OrderFormat:
    from shared.venues.mexc.orders import MexcOrderFormat

    return MexcOrderFormat()


def _contract_orders() -> OrderFormat:
    from shared.venues.mexc.contract_rest import MexcContractRestFormat

    return MexcContractRestFormat()


def _user_format() -> ListenKeyFormat:
    from shared.venues.mexc.user_stream import MexcUserFormat

    return MexcUserFormat()


def _check_spot_depth(venue: Venue, where: str) -> None:
    if venue.feed.depth_interval_ms == 1000:
        raise ConfigError(f"{where}.feed.depth_interval_ms: MEXC serves 10 or 100")
    if venue.feed.depth == "partial":
        raise ConfigError(f"{where}.feed.depth: partial depth is a Binance option; use diff")


MEXC = VenueKind(
    name="mexc",
    spot=True,
    ws_path=c.WS_PATH,
    market_format=_spot_market,
    order_format=_orders,
    limits=DocumentedLimits(c.LIMIT_WEIGHT_PER_MINUTE, c.LIMIT_ORDERS_PER_10S, c.LIMIT_ORDERS_PER_DAY),
    api_key_header=c.API_KEY_HEADER,
    listen_key_stream=ListenKeyStream(c.WS_PATH, _user_format),  # /ws?listenKey=..: the market port's path
    checks=(_check_spot_depth,),
    sim=Simulated(
        stream="services.sim.ws_mexc:MexcStreamServer",
        user_data="services.sim.user_mexc:MexcUserStreams",
        dialect="services.sim.dialect_mexc:MexcDialect",
        load_stream="services.loadgen.venues:MexcServer",
        load_ticker="services.loadgen.frames:mexc_ticker_frame",
    ),
)

MEXC_CONTRACT = VenueKind(
    name="mexc_contract",
    spot=False,
    ws_path=c.CONTRACT_WS_PATH,
    market_format=_contract_market,
    order_format=_contract_orders,  # a PerpOrderFormat (shared/venues/perp.py)
    # 20 requests / 2 s per endpoint, as the budget can count it (constants.py says how)
    limits=DocumentedLimits(
        c.CONTRACT_LIMIT_WEIGHT_PER_MINUTE, c.CONTRACT_LIMIT_ORDERS_PER_10S, c.CONTRACT_LIMIT_ORDERS_PER_DAY
    ),
    api_key_header=c.CONTRACT_API_KEY_HEADER,
    funding_decimals=6,
    sim=Simulated(
        stream="services.sim.ws_mexc_contract:MexcContractStreamServer",
        funding_rest="services.sim.rest_perp:MexcFundingRateRest",
        perp_orders="services.sim.rest_contract_mexc:MexcContractApi",
        load_stream="services.loadgen.venues:MexcContractServer",
    ),
)
