"""MEXC spot orders and account: IMMEDIATE_OR_CANCEL / MARKET requests, precisions instead of filters.

MEXC's new-order answer is an acknowledgement without execution data (``orderId`` is a string): the
answer is ``NEW`` with ``fills=None``, and execution is read back with a query (status and totals) and
``myTrades`` (per-fill prices and commissions). The shapes MEXC shares with Binance live in
``shared/venues/spot_rest.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

import msgspec
from msgspec import Struct

from shared.errors import ProtocolError
from shared.venues.common import ORDER_LIMIT_IOC, ORDER_MARKET, SymbolRules, query_string
from shared.venues.mexc import constants as c
from shared.venues.mexc.auth import signed_request
from shared.venues.spot_rest import SpotOrderFormat, dec, decimals, plain_decimal, weights_from

STATUSES = {
    c.NEW: "NEW",
    c.PARTIALLY_FILLED: "PARTIALLY_FILLED",
    c.FILLED: "FILLED",
    c.CANCELED: "CANCELED",
    c.PARTIALLY_CANCELED: "CANCELED",  # an IOC remainder cancelled after a partial fill
    c.REJECTED: "REJECTED",
}


class _Symbol(Struct):
    symbol: str
    quotePrecision: int  # price decimals
    baseAssetPrecision: int
    baseSizePrecision: str = "0"  # the quantity step ("0" on some symbols: then 10^-baseAssetPrecision)
    quoteAmountPrecision: str = "0"  # the minimum order amount in the quote asset


class _ExchangeInfo(Struct):
    symbols: list[_Symbol]


_info_decoder = msgspec.json.Decoder(_ExchangeInfo)


class MexcOrderFormat(SpotOrderFormat):
    kind = "mexc"
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
                raise ValueError("an IMMEDIATE_OR_CANCEL order needs a price")
            # MEXC has no timeInForce: IOC is its own order type
            params += [("type", c.TYPE_IOC), ("quantity", qty), ("price", price)]
        elif order_type == ORDER_MARKET:
            params += [("type", c.TYPE_MARKET), ("quantity", qty)]
        else:
            raise ValueError(f"unknown order type {order_type!r}")
        params.append(("newClientOrderId", client_order_id))
        return params

    def exchange_info_query(self, symbols: Sequence[str]) -> str:
        if len(symbols) == 1:
            return query_string([("symbol", symbols[0])])
        return query_string([("symbols", ",".join(symbols))])

    def parse_exchange_info(self, body: bytes) -> dict[str, SymbolRules]:
        """MEXC publishes no filters: the tick is 10^-quotePrecision, the step baseSizePrecision (else
        10^-baseAssetPrecision), the minimum quantity one step, the minimum notional quoteAmountPrecision."""
        try:
            info = _info_decoder.decode(body)
            return {s.symbol: _rules(s) for s in info.symbols}
        except (msgspec.DecodeError, ValueError) as exc:
            raise ProtocolError(f"mexc: unreadable exchangeInfo ({exc})") from None


def _rules(s: _Symbol) -> SymbolRules:
    if s.quotePrecision < 0 or s.baseAssetPrecision < 0:
        raise ValueError(f"{s.symbol}: negative precision")
    tick = Decimal(1).scaleb(-s.quotePrecision)
    step = dec(s.baseSizePrecision) or Decimal(1).scaleb(-s.baseAssetPrecision)
    step = plain_decimal(step)
    return SymbolRules(s.symbol, plain_decimal(tick), step, step, plain_decimal(dec(s.quoteAmountPrecision)),
                       s.quotePrecision, decimals(step))
