"""Binance spot orders and account: LIMIT IOC / MARKET with a FULL answer, exchangeInfo filters, usage headers.

The request and answer shapes Binance shares with MEXC live in ``shared/venues/spot_rest.py``; this is
what is Binance's own (rest-api.md, filters.md, errors.md).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

import msgspec
from msgspec import Struct

from shared.errors import ProtocolError
from shared.venues.binance import constants as c
from shared.venues.binance.auth import signed_request
from shared.venues.common import (
    ORDER_LIMIT_IOC,
    ORDER_MARKET,
    ZERO,
    RateHeaders,
    SymbolRules,
    query_string,
)
from shared.venues.spot_rest import SpotOrderFormat, dec, decimals, header_int, plain_decimal, retry_after, weights_from

STATUSES = {
    c.NEW: "NEW",
    c.PENDING_NEW: "NEW",
    c.PENDING_CANCEL: "NEW",  # documented as unused; not final, so it is queried again
    c.PARTIALLY_FILLED: "PARTIALLY_FILLED",
    c.FILLED: "FILLED",
    c.CANCELED: "CANCELED",
    c.REJECTED: "REJECTED",
    c.EXPIRED: "EXPIRED",
    c.EXPIRED_IN_MATCH: "EXPIRED",
}


class _Filter(Struct):
    filterType: str
    tickSize: str = "0"
    minQty: str = "0"
    stepSize: str = "0"
    minNotional: str = "0"


class _Symbol(Struct):
    symbol: str
    filters: list[_Filter] = []
    baseAssetPrecision: int = 8
    quotePrecision: int = 8


class _ExchangeInfo(Struct):
    symbols: list[_Symbol]


_info_decoder = msgspec.json.Decoder(_ExchangeInfo)


class BinanceOrderFormat(SpotOrderFormat):
    kind = "binance"
    not_found_codes = c.NOT_FOUND_CODES
    status_unknown_codes = c.STATUS_UNKNOWN_CODES
    timestamp_codes = frozenset({c.ERR_TIMESTAMP})
    statuses = STATUSES
    weights = weights_from(c)
    sign = staticmethod(signed_request)

    def new_order_params(self, symbol: str, side: str, price: str | None, qty: str, client_order_id: str,
                         order_type: str) -> list[tuple[str, str]]:
        params = [("symbol", symbol), ("side", side)]
        if order_type == ORDER_LIMIT_IOC:
            if not price:
                raise ValueError("a LIMIT IOC order needs a price")
            params += [("type", "LIMIT"), ("timeInForce", "IOC"), ("quantity", qty), ("price", price)]
        elif order_type == ORDER_MARKET:
            params += [("type", "MARKET"), ("quantity", qty)]  # MARKET takes no price and no timeInForce
        else:
            raise ValueError(f"unknown order type {order_type!r}")
        params.append(("newClientOrderId", client_order_id))
        params.append(("newOrderRespType", "FULL"))  # fills in the answer: no query needed
        return params

    def exchange_info_query(self, symbols: Sequence[str]) -> str:
        if len(symbols) == 1:
            return query_string([("symbol", symbols[0])])
        return query_string([("symbols", json.dumps(list(symbols), separators=(",", ":")))])

    def parse_exchange_info(self, body: bytes) -> dict[str, SymbolRules]:
        """PRICE_FILTER tickSize, LOT_SIZE stepSize/minQty, MIN_NOTIONAL or NOTIONAL minNotional; a 0 (or an
        absent filter) disables that rule. Decimals come from the tick and step, else the asset precisions."""
        try:
            info = _info_decoder.decode(body)
            return {s.symbol: _rules(s) for s in info.symbols}
        except (msgspec.DecodeError, ValueError) as exc:
            raise ProtocolError(f"binance: unreadable exchangeInfo ({exc})") from None

    def parse_rate_headers(self, headers: Mapping[str, str]) -> RateHeaders:
        return RateHeaders(
            header_int(headers, c.WEIGHT_HEADER),
            header_int(headers, c.ORDER_COUNT_10S_HEADER),
            header_int(headers, c.ORDER_COUNT_1D_HEADER),
            retry_after(headers),
        )


def _rules(s: _Symbol) -> SymbolRules:
    tick = step = min_qty = ZERO
    min_notional = ZERO
    for f in s.filters:
        if f.filterType == "PRICE_FILTER":
            tick = dec(f.tickSize)
        elif f.filterType == "LOT_SIZE":
            step, min_qty = dec(f.stepSize), dec(f.minQty)
        elif f.filterType in ("MIN_NOTIONAL", "NOTIONAL"):
            min_notional = max(min_notional, dec(f.minNotional))
    price_decimals = decimals(tick) if tick else s.quotePrecision
    qty_decimals = decimals(step) if step else s.baseAssetPrecision
    return SymbolRules(s.symbol, plain_decimal(tick), plain_decimal(step), plain_decimal(min_qty),
                       plain_decimal(min_notional), price_decimals, qty_decimals)

