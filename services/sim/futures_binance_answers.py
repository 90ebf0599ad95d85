"""The simulated Binance USD-M answers: the JSON bodies of ``rest_futures_binance``, from the perp book's state.

Numbers are strings, as the venue writes them: quantities with the symbol's quantity decimals, prices with its
price decimals, money with 8 decimals, or exact when an amount has more (funding is booked unrounded, and the
wire never rounds what the book holds). Field sets follow the current docs' examples (New Order RESULT, Query
Order, Position Information V3, Account Information V3, Symbol Configuration, Income History, Exchange
Information, Account Trade List); the client's parsers (``shared/venues/binance/futures_orders.py``) read them.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from services.sim.perp_account import MARKET, MAX_LEVERAGE, Income, PerpBook, PerpFill, PerpOrder, PerpPosition
from services.sim.units import SymbolSpec
from shared.venues.binance.futures_orders import MARGIN_CROSSED, MARGIN_ISOLATED

ASSET = "USDT"
STP_MODE = "EXPIRE_MAKER"
MAX_NOTIONAL_1X = Decimal(200_000_000)  # a stand-in for the venue's brackets: shown, not enforced
EIGHT = Decimal("1e-8")


def money(d: Decimal) -> str:
    """8 decimals, or every decimal the amount has when it has more (never rounded, never an exponent)."""
    q = d.quantize(EIGHT) if d == d.quantize(EIGHT) else d
    return format(q + 0, "f")  # + 0: never "-0.00000000"


def qty_text(spec: SymbolSpec, d: Decimal) -> str:
    return format(d.quantize(Decimal(1).scaleb(-spec.qty_decimals)) + 0, "f")


def price_text(spec: SymbolSpec, d: Decimal) -> str:
    return format(d.quantize(Decimal(1).scaleb(-spec.price_decimals)), "f")


def max_notional(leverage: int) -> str:
    return format(MAX_NOTIONAL_1X / leverage, "f").split(".")[0]


def order_body(order: PerpOrder, *, ack: bool = False, query: bool = False) -> dict[str, Any]:
    """New Order (RESULT; ``ack``: ACK), Query Order (``query``) and Cancel share these names."""
    req, spec = order.request, order.spec
    market = req.kind == MARKET
    order_type = "MARKET" if market else "LIMIT"
    executed = "0" if ack else qty_text(spec, order.executed)
    body: dict[str, Any] = {
        "orderId": order.number,
        "symbol": spec.name,
        "status": "NEW" if ack else order.status,
        "clientOrderId": req.client_order_id,
        "price": "0" if market or req.price is None else price_text(spec, req.price),
        "avgPrice": "0.00" if ack or not order.executed else price_text(spec, order.avg_price),
        "origQty": qty_text(spec, req.qty),
        "executedQty": executed,
        "cumQuote": "0" if ack else money(order.cum_quote),
        "timeInForce": "GTC" if market else "IOC",
        "type": order_type,
        "reduceOnly": req.reduce_only,
        "closePosition": False,
        "side": req.side,
        "positionSide": req.position_side,
        "stopPrice": "0",
        "workingType": "CONTRACT_PRICE",
        "priceProtect": False,
        "origType": order_type,
        "priceMatch": "NONE",
        "selfTradePreventionMode": STP_MODE,
        "goodTillDate": 0,
        "updateTime": order.time_ms if ack else order.update_ms,
    }
    if query:
        body["time"] = order.time_ms
    else:
        body["cumQty"] = executed
    return body


def position_body(book: PerpBook, api_key: str, pos: PerpPosition) -> dict[str, Any]:
    """One Position Information V3 item (V3 has no leverage or marginType: symbolConfig carries them)."""
    spec = book.specs[pos.symbol]
    mark = book.mark_of(pos.symbol)
    im = pos.initial_margin()
    isolated_wallet = im if pos.isolated else Decimal(0)  # the margin set aside at opening (funding: wallet)
    return {
        "symbol": spec.name,
        "positionSide": pos.side,
        "positionAmt": qty_text(spec, pos.size),
        "entryPrice": money(pos.entry()),
        "breakEvenPrice": money(pos.entry()),  # the sim does not fold fees into a break-even price
        "markPrice": money(mark),
        "unRealizedProfit": money(pos.unrealized(mark)),
        "liquidationPrice": money(book.liquidation_price(api_key, pos)),
        "isolatedMargin": money(isolated_wallet + pos.unrealized(mark) if pos.isolated else Decimal(0)),
        "notional": money(pos.size * mark),
        "marginAsset": ASSET,
        "isolatedWallet": money(isolated_wallet),
        "initialMargin": money(im),
        "maintMargin": money(pos.maint_margin(mark)),
        "positionInitialMargin": money(im),
        "openOrderInitialMargin": "0",
        "adl": 0,
        "bidNotional": "0",
        "askNotional": "0",
        "updateTime": pos.update_ms,
    }


def account_body(book: PerpBook, api_key: str, server_ms: int) -> dict[str, Any]:
    """Account Information V3, single-asset mode: USDT only."""
    acct = book.account(api_key)
    positions = book.positions(api_key)
    unrealized = book.unrealized(api_key)
    im, mm = book.initial_margin(api_key), book.maint_margin(api_key)
    available = book.available(api_key)
    cross_unrealized = sum((p.unrealized(book.mark_of(p.symbol)) for p in positions if not p.isolated), Decimal(0))
    asset = {
        "asset": ASSET,
        "walletBalance": money(acct.wallet),
        "unrealizedProfit": money(unrealized),
        "marginBalance": money(acct.wallet + unrealized),
        "maintMargin": money(mm),
        "initialMargin": money(im),
        "positionInitialMargin": money(im),
        "openOrderInitialMargin": "0.00000000",
        "crossWalletBalance": money(acct.wallet),
        "crossUnPnl": money(cross_unrealized),
        "availableBalance": money(available),
        "maxWithdrawAmount": money(available),
        "updateTime": server_ms,
    }
    return {
        "totalInitialMargin": money(im),
        "totalMaintMargin": money(mm),
        "totalWalletBalance": money(acct.wallet),
        "totalUnrealizedProfit": money(unrealized),
        "totalMarginBalance": money(acct.wallet + unrealized),
        "totalPositionInitialMargin": money(im),
        "totalOpenOrderInitialMargin": "0.00000000",
        "totalCrossWalletBalance": money(acct.wallet),
        "totalCrossUnPnl": money(cross_unrealized),
        "availableBalance": money(available),
        "maxWithdrawAmount": money(available),
        "assets": [asset],
        "positions": [
            {
                "symbol": book.specs[p.symbol].name,
                "positionSide": p.side,
                "positionAmt": qty_text(book.specs[p.symbol], p.size),
                "unrealizedProfit": money(p.unrealized(book.mark_of(p.symbol))),
                "isolatedMargin": money(p.initial_margin() if p.isolated else Decimal(0)),
                "notional": money(p.size * book.mark_of(p.symbol)),
                "isolatedWallet": money(p.initial_margin() if p.isolated else Decimal(0)),
                "initialMargin": money(p.initial_margin()),
                "maintMargin": money(p.maint_margin(book.mark_of(p.symbol))),
                "updateTime": p.update_ms,
            }
            for p in positions
        ],
    }


def symbol_config_body(book: PerpBook, api_key: str, symbols: Sequence[int]) -> list[dict[str, Any]]:
    acct = book.account(api_key)
    out = []
    for s in symbols:
        setting = acct.setting(s)
        out.append({
            "symbol": book.specs[s].name,
            "marginType": MARGIN_ISOLATED if setting.isolated else MARGIN_CROSSED,
            "isAutoAddMargin": False,
            "leverage": setting.leverage,
            "maxNotionalValue": max_notional(setting.leverage),
        })
    return out


def trade_body(order: PerpOrder, fill: PerpFill) -> dict[str, Any]:
    """One Account Trade List item. Every sim order takes liquidity (maker false). The commission is written
    positive, as live answers write a fee paid (the page's example shows it negative: see futures_rest)."""
    req, spec = order.request, order.spec
    return {
        "buyer": req.side == "BUY",
        "commission": money(fill.commission),
        "commissionAsset": ASSET,
        "id": fill.trade_id,
        "maker": False,
        "orderId": order.number,
        "price": price_text(spec, fill.price),
        "qty": qty_text(spec, fill.qty),
        "quoteQty": money(fill.price * fill.qty),
        "realizedPnl": money(fill.realized),
        "side": req.side,
        "positionSide": req.position_side,
        "symbol": spec.name,
        "time": fill.time_ms,
    }


def income_body(book: PerpBook, income: Income) -> dict[str, Any]:
    return {
        "symbol": book.specs[income.symbol].name,
        "incomeType": income.kind,
        "income": money(income.amount),
        "asset": ASSET,
        "info": income.kind,
        "time": income.time_ms,
        "tranId": income.tran_id,
        "tradeId": str(income.trade_id) if income.trade_id else "",
    }


def exchange_info_body(specs: Sequence[SymbolSpec], server_ms: int, limits: tuple[int, int, int]) -> dict[str, Any]:
    weight, per_minute, per_10s = limits
    return {
        "timezone": "UTC",
        "serverTime": server_ms,
        "futuresType": "U_MARGINED",
        "rateLimits": [
            {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": weight},
            {"rateLimitType": "ORDERS", "interval": "MINUTE", "intervalNum": 1, "limit": per_minute},
            {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": per_10s},
        ],
        "exchangeFilters": [],
        "assets": [{"asset": ASSET, "marginAvailable": True, "autoAssetExchange": "-10000"}],
        "symbols": [_symbol(s) for s in specs],
    }


def _symbol(s: SymbolSpec) -> dict[str, Any]:
    tick, step = s.tick_text, s.step_text
    return {
        "symbol": s.name,
        "pair": s.name,
        "contractType": "PERPETUAL",
        "deliveryDate": 4133404800000,
        "onboardDate": 1569398400000,
        "status": "TRADING",
        "baseAsset": s.base,
        "quoteAsset": s.quote,
        "marginAsset": ASSET,
        "pricePrecision": s.price_decimals,
        "quantityPrecision": s.qty_decimals,
        "baseAssetPrecision": 8,
        "quotePrecision": 8,
        "underlyingType": "COIN",
        "settlePlan": 0,
        "triggerProtect": "0.0500",
        "filters": [
            {"filterType": "PRICE_FILTER", "minPrice": tick, "maxPrice": "4529764", "tickSize": tick},
            {"filterType": "LOT_SIZE", "minQty": step, "maxQty": "1000", "stepSize": step},
            {"filterType": "MARKET_LOT_SIZE", "minQty": step, "maxQty": "120", "stepSize": step},
            {"filterType": "MAX_NUM_ORDERS", "limit": 200},
            {"filterType": "MIN_NOTIONAL", "notional": format(s.min_notional, "f")},
            {"filterType": "PERCENT_PRICE", "multiplierUp": "1.0500", "multiplierDown": "0.9500",
             "multiplierDecimal": "4"},
        ],
        "orderTypes": ["LIMIT", "MARKET"],
        "timeInForce": ["IOC"],  # the sim never rests an order
        "liquidationFee": "0.012500",
        "marketTakeBound": "0.05",
        "maxLeverage": MAX_LEVERAGE,
    }
