"""Binance USD-M futures as draizer's common order API: ``PerpOrderFormat`` over ``BinanceFuturesOrderFormat``.

``VenueClient`` drives every venue through ``OrderFormat`` (``shared/venues/common.py``) and a perpetual's extras
through ``PerpOrderFormat`` (``shared/venues/perp.py``). ``futures_orders.py`` speaks the venue's /fapi wire
format with its own full shapes; this adapter maps it onto those protocols and adds the account trade list.
What a caller must know:

- Prices and quantities are the caller's texts, sent as given, as the spot formats send them (VenueClient writes
  them with the venue's increments, and ``OrderTemplate`` prepares its requests from ``build_new_order`` with
  marker texts in their place, so the texts are not parsed here); a Decimal is written as plain text, a float is
  refused (TypeError). ``reduceOnly=true`` is sent only when asked: the venue refuses the parameter in hedge
  mode even as ``false``. A template never carries it, so reduce-only orders take ``build_new_perp_order``.
- Cancel all: ``DELETE /fapi/v1/allOpenOrders`` answers ``{"code":200,"msg":...}``, naming no order, where the
  spot venues list the cancelled ones. ``parse_order_list`` reads that acknowledgement as ``[]``: success, and
  nothing known of which orders it closed (draizer's are IOC or MARKET, final once answered, so none normally
  is). A caller that must know lists ``openOrders`` before, or queries its orders by client id after. An error
  code raises VenueError, as for the spot lists.
- Account (``parse_account``): ``{"USDT": (availableBalance, max(0, walletBalance - availableBalance))}`` of the
  USDT asset: what new margin may use is free, the rest of the wallet (the margin in use, net of unrealized
  PnL) is locked. The futures account answer states no commission rates: the ``fallback`` (the config's fees)
  is returned, and is required.
- Rules (``parse_exchange_info``): one step and minimum quantity valid for LIMIT and MARKET orders alike:
  MARKET_LOT_SIZE's step where it is a multiple of LOT_SIZE's, the larger of the two minimums.
- Perp account: three requests, [account V3, positionRisk V3, symbolConfig]; positionRisk V3 no longer carries
  leverage and margin type, symbolConfig does. Only positions with a size are returned.
- Funding income: the first 1000 FUNDING_FEE records from ``start_ms`` on, oldest first; a caller that gets
  1000 pages on from the last record's time (``payment_id`` makes a record seen twice harmless).

Weights (each endpoint's page): ``weights`` for the common calls; the perp extras' are ``perp_account_weights``
(one per request of ``build_perp_account``), ``funding_income_weight`` and ``setup_weights``. Pure code.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal

import msgspec
from msgspec import Struct

from shared.errors import ProtocolError, VenueError
from shared.venues.binance import futures_orders as fo
from shared.venues.binance.futures_orders import (
    BinanceFuturesOrderFormat,
    FuturesAccount,
    FuturesRules,
    sdec,
    wire_decimal,
    with_symbol_config,
)
from shared.venues.common import (
    ANSWER_OK,
    ANSWER_REJECTED,
    ANSWER_THROTTLED,
    ORDER_LIMIT_IOC,
    ORDER_MARKET,
    REJECTED,
    ZERO,
    AccountInfo,
    HttpRequest,
    OrderAnswer,
    OrderResult,
    RateHeaders,
    RequestWeights,
    SymbolRules,
    TradeFill,
    rejected,
    unknown,
)
from shared.venues.perp import INCOME_FUNDING, FundingPaymentInfo, PerpAccountInfo, PerpPositionInfo
from shared.venues.spot_rest import dec, decimals, plain_decimal

QUOTE_ASSET = "USDT"
# Setup answers that mean "already so": Change Margin Type -4046, Change Position Mode -4059.
ERR_POSITION_SIDE_UNCHANGED = -4059
SETUP_UNCHANGED_CODES = frozenset({fo.ERR_MARGIN_TYPE_UNCHANGED, ERR_POSITION_SIDE_UNCHANGED})
ACK_OK = 200  # the code of an acknowledgement ({"code":200,"msg":"success"})


class _UserTrade(Struct):
    """One Account Trade List item (the fields draizer reads; the venue sends more)."""

    id: int | str
    price: str
    qty: str
    commission: str = "0"
    commissionAsset: str = ""


class _SetupAnswer(Struct):
    """Change Initial Leverage (``leverage``...) or Change Margin Type (``code``/``msg``)."""

    code: int | None = None
    msg: str = ""
    leverage: int | None = None


_trades_decoder = msgspec.json.Decoder(list[_UserTrade])
_setup_decoder = msgspec.json.Decoder(_SetupAnswer)


def _text(value: str | Decimal, what: str) -> str:
    if isinstance(value, Decimal):
        return wire_decimal(value, what)
    if not isinstance(value, str):  # a float's repr must never reach the venue
        raise TypeError(f"{what}: decimal text or Decimal, not {type(value).__name__}")
    if not value:
        raise ValueError(f"{what}: empty")
    return value


def _both_order_types(r: FuturesRules) -> SymbolRules:
    """One step and minimum quantity that suit LIMIT (LOT_SIZE) and MARKET (MARKET_LOT_SIZE) orders alike."""
    rules, step, market_step = r.rules, r.rules.step, r.market_step
    if step and market_step and market_step > step and market_step % step == 0:
        step = market_step
    min_qty = max(rules.min_qty, r.market_min_qty)
    qty_decimals = decimals(step) if step != rules.step else rules.qty_decimals
    return rules._replace(step=plain_decimal(step), min_qty=min_qty, qty_decimals=qty_decimals)


class BinanceUsdmOrderFormat:
    """The ``binance_usdm`` kind's order format (``PerpOrderFormat``); see the module docstring."""

    kind = fo.KIND
    quote_asset = QUOTE_ASSET
    not_found_codes = fo.NOT_FOUND_CODES
    timestamp_codes = frozenset({fo.ERR_TIMESTAMP})
    weights = RequestWeights(
        new_order=fo.WEIGHT_NEW_ORDER, query_order=fo.WEIGHT_QUERY_ORDER, cancel_order=fo.WEIGHT_CANCEL_ORDER,
        open_orders_symbol=fo.WEIGHT_OPEN_ORDERS_SYMBOL, open_orders_all=fo.WEIGHT_OPEN_ORDERS_ALL,
        cancel_all=fo.WEIGHT_CANCEL_ALL, account=fo.WEIGHT_ACCOUNT, my_trades=fo.WEIGHT_MY_TRADES,
        my_trades_by_order=fo.WEIGHT_MY_TRADES, exchange_info=fo.WEIGHT_EXCHANGE_INFO, time=fo.WEIGHT_TIME,
        all_orders=fo.WEIGHT_ALL_ORDERS,
    )
    perp_account_weights = (fo.WEIGHT_ACCOUNT, fo.WEIGHT_POSITION_RISK, fo.WEIGHT_SYMBOL_CONFIG)
    funding_income_weight = fo.WEIGHT_INCOME
    setup_weights = (fo.WEIGHT_LEVERAGE, fo.WEIGHT_MARGIN_TYPE)

    def __init__(self) -> None:
        self.wire = BinanceFuturesOrderFormat()

    # ----- orders
    def build_new_order(
        self, *, symbol: str, side: str, price: str | None, qty: str, client_order_id: str, api_key: str,
        api_secret: str, timestamp_ms: int, recv_window_ms: int, order_type: str = ORDER_LIMIT_IOC,
        reduce_only: bool = False,
    ) -> HttpRequest:
        """POST /fapi/v1/order: the spot-compatible call (an opening order unless ``reduce_only``)."""
        return self.build_new_perp_order(
            symbol=symbol, side=side, price=price, qty=qty, client_order_id=client_order_id, reduce_only=reduce_only,
            api_key=api_key, api_secret=api_secret, timestamp_ms=timestamp_ms, recv_window_ms=recv_window_ms,
            order_type=order_type,
        )

    def build_new_perp_order(
        self, *, symbol: str, side: str, price: str | None, qty: str, client_order_id: str, reduce_only: bool,
        api_key: str, api_secret: str, timestamp_ms: int, recv_window_ms: int, order_type: str,
    ) -> HttpRequest:
        """POST /fapi/v1/order (New Order, TRADE): LIMIT IOC or MARKET, RESULT answer (final for IOC and MARKET:
        no query needed). Parameters in futures_orders' order: symbol, side, type, [timeInForce], quantity,
        [price], [reduceOnly], newClientOrderId, newOrderRespType, recvWindow, timestamp."""
        if side not in fo.SIDES:
            raise ValueError(f"unknown side {side!r}")
        if not fo.CLIENT_ID_RULE.fullmatch(client_order_id):
            raise ValueError(f"client order id {client_order_id!r} breaks ^[.A-Z:/a-z0-9_-]{{1,36}}$")
        quantity = _text(qty, "quantity")
        params = [("symbol", symbol), ("side", side)]
        if order_type == ORDER_LIMIT_IOC:
            if price is None:
                raise ValueError("a LIMIT IOC order needs a price")
            params += [("type", "LIMIT"), ("timeInForce", "IOC"), ("quantity", quantity),
                       ("price", _text(price, "price"))]
        elif order_type == ORDER_MARKET:
            params += [("type", "MARKET"), ("quantity", quantity)]  # MARKET takes no price: one given is ignored
        else:
            raise ValueError(f"unknown order type {order_type!r}")
        if reduce_only:
            params.append(("reduceOnly", "true"))
        params += [("newClientOrderId", client_order_id), ("newOrderRespType", fo.RESPONSE_TYPE)]
        return self.wire.signed("POST", fo.ORDER_PATH, params, api_key, api_secret, timestamp_ms, recv_window_ms)

    def build_query_order(self, *, symbol: str, client_order_id: str, api_key: str, api_secret: str,
                          timestamp_ms: int, recv_window_ms: int) -> HttpRequest:
        return self.wire.build_query_order(symbol=symbol, client_order_id=client_order_id, api_key=api_key,
                                           api_secret=api_secret, timestamp_ms=timestamp_ms,
                                           recv_window_ms=recv_window_ms)

    def build_cancel_order(self, *, symbol: str, client_order_id: str, api_key: str, api_secret: str,
                           timestamp_ms: int, recv_window_ms: int) -> HttpRequest:
        return self.wire.build_cancel_order(symbol=symbol, client_order_id=client_order_id, api_key=api_key,
                                            api_secret=api_secret, timestamp_ms=timestamp_ms,
                                            recv_window_ms=recv_window_ms)

    def build_open_orders(self, *, symbol: str | None, api_key: str, api_secret: str, timestamp_ms: int,
                          recv_window_ms: int) -> HttpRequest:
        return self.wire.build_open_orders(symbol=symbol, api_key=api_key, api_secret=api_secret,
                                           timestamp_ms=timestamp_ms, recv_window_ms=recv_window_ms)

    def build_cancel_all(self, *, symbol: str, api_key: str, api_secret: str, timestamp_ms: int,
                         recv_window_ms: int) -> HttpRequest:
        """DELETE /fapi/v1/allOpenOrders: its answer names no order (``parse_order_list`` gives [])."""
        return self.wire.build_cancel_all(symbol=symbol, api_key=api_key, api_secret=api_secret,
                                          timestamp_ms=timestamp_ms, recv_window_ms=recv_window_ms)

    def build_account(self, *, api_key: str, api_secret: str, timestamp_ms: int, recv_window_ms: int) -> HttpRequest:
        return self.wire.build_account(api_key=api_key, api_secret=api_secret, timestamp_ms=timestamp_ms,
                                       recv_window_ms=recv_window_ms)

    def build_my_trades(self, *, symbol: str, order_id: str | None, api_key: str, api_secret: str,
                        timestamp_ms: int, recv_window_ms: int) -> HttpRequest:
        """GET /fapi/v1/userTrades (Account Trade List, USER_DATA, weight 5): the symbol's trades of the last 7
        days, or those of one order (``orderId``, "only in combination with symbol").
        https://developers.binance.com/en/docs/catalog/core-trading-derivatives-trading-usd-s-m-futures/api/rest-api/trade#account-trade-list
        """
        params = [("symbol", symbol)]
        if order_id:
            params.append(("orderId", order_id))
        return self.wire.signed("GET", fo.USER_TRADES_PATH, params, api_key, api_secret, timestamp_ms, recv_window_ms)

    def build_exchange_info(self, symbols: Sequence[str] = ()) -> HttpRequest:
        return self.wire.build_exchange_info(symbols)

    def build_time(self) -> HttpRequest:
        return self.wire.build_time()

    # ----- answers
    def parse_order(
        self, http_status: int, body: bytes, headers: Mapping[str, str], *, new_order: bool = True
    ) -> OrderAnswer:
        """executedQty and cumQuote exactly; ``fills`` None (futures order answers carry no fills: the trades
        are ``build_my_trades``'). Never raises."""
        return self.wire.parse_order(http_status, body, headers, new_order=new_order)

    def parse_order_list(self, http_status: int, body: bytes, headers: Mapping[str, str]) -> list[OrderAnswer]:
        """openOrders (a list), or cancel all's acknowledgement (``{"code":200,..}``: [], see the module
        docstring). VenueError for an error answer, ProtocolError for an unreadable one."""
        if 200 <= http_status < 300 and body.lstrip()[:1] == b"{":
            self.wire.parse_ack(http_status, body)  # VenueError unless code 200
            return []
        return self.wire.parse_order_list(http_status, body, headers)

    def parse_account(self, body: bytes, fallback: tuple[Decimal, Decimal] | None = None) -> AccountInfo:
        if fallback is None:
            raise ValueError(f"{self.kind}: the futures account answer states no commission rates: pass the "
                             "config's (maker, taker) as fallback")
        wallet, available = _usdt(self.wire.parse_account(200, body))[:2]
        maker, taker = fallback
        return AccountInfo({QUOTE_ASSET: (available, max(ZERO, wallet - available))}, maker, taker)

    def parse_my_trades(self, body: bytes) -> list[TradeFill]:
        """Account Trade List items. The commission booked is its magnitude: the page's example writes a paid
        commission negative ("-0.07819010", 0.5 % of its quoteQty) where live answers write it positive, and
        every order draizer sends (IOC, MARKET) takes liquidity, so a commission is always paid, never a rebate.
        ``commissionAsset`` is kept: an account paying fees in BNB is charged BNB."""
        try:
            return [
                TradeFill(str(t.id), dec(t.price), dec(t.qty), abs(sdec(t.commission)), t.commissionAsset)
                for t in _trades_decoder.decode(body)
            ]
        except (msgspec.DecodeError, ValueError) as exc:
            raise ProtocolError(f"{self.kind}: unreadable userTrades answer ({exc})") from None

    def parse_exchange_info(self, body: bytes) -> dict[str, SymbolRules]:
        return {s: _both_order_types(r) for s, r in self.wire.parse_exchange_info_full(body).rules.items()}

    def parse_rate_headers(self, headers: Mapping[str, str]) -> RateHeaders:
        """Weight per minute, orders per 10 s, Retry-After; ``orders_1d`` None (the venue counts orders per
        minute, not per day: ``X-MBX-ORDER-COUNT-1M`` is ``wire.parse_futures_rate_headers``')."""
        return self.wire.parse_rate_headers(headers)

    def parse_time(self, body: bytes) -> int:
        return self.wire.parse_time(body)

    def parse_error(self, http_status: int, body: bytes) -> tuple[int, str]:
        return self.wire.parse_error(http_status, body)

    def not_found(self, answer: OrderAnswer) -> bool:
        return self.wire.not_found(answer)

    def parse_order_response(self, http_status: int, body: bytes, base_asset: str) -> OrderResult:
        """The first executor's shape: totals as one aggregate fill, no fee (the answer states none)."""
        a = self.parse_order(http_status, body, {})
        if a.kind in (ANSWER_REJECTED, ANSWER_THROTTLED):
            return rejected(a.client_order_id, a.error_code, a.error_msg)
        if a.kind != ANSWER_OK:
            return unknown(a.client_order_id, a.error_msg, a.error_code)
        filled = float(a.executed_qty)
        avg = float(a.cum_quote / a.executed_qty) if a.executed_qty > 0 else 0.0
        fills = [(avg, filled, 0.0, f"order:{a.order_id}")] if filled > 0 else []
        return OrderResult(a.status != REJECTED, a.venue_status or "NEW", a.order_id, a.client_order_id, filled, avg,
                           0.0, fills, 0, "", not a.venue_status)

    # ----- perpetual extras
    def build_perp_account(
        self, *, api_key: str, api_secret: str, timestamp_ms: int, recv_window_ms: int
    ) -> list[HttpRequest]:
        """[GET /fapi/v3/account, GET /fapi/v3/positionRisk, GET /fapi/v1/symbolConfig]; ``parse_perp_account``
        takes their bodies in this order."""
        auth = {"api_key": api_key, "api_secret": api_secret, "timestamp_ms": timestamp_ms,
                "recv_window_ms": recv_window_ms}
        return [self.wire.build_account(**auth), self.wire.build_position_risk(symbol=None, **auth),
                self.wire.build_symbol_config(symbol=None, **auth)]

    def parse_perp_account(self, bodies: list[bytes]) -> PerpAccountInfo:
        """The USDT asset's wallet, margin balance, available and maintenance margin; every position with a size
        (signed base units, exact), its leverage and margin type from symbolConfig, its margin: the isolated
        wallet when isolated, its initial margin when cross. VenueError / ProtocolError as the parts raise."""
        if len(bodies) != 3:
            raise ValueError(f"{self.kind}: expected the 3 bodies of build_perp_account, got {len(bodies)}")
        account = self.wire.parse_account(200, bodies[0])
        positions = with_symbol_config(self.wire.parse_positions(200, bodies[1]),
                                       self.wire.parse_symbol_config(200, bodies[2]))
        wallet, available, margin_balance, maint = _usdt(account)
        cross_margins = {(p.symbol, p.position_side): p.initial_margin for p in account.positions}
        out: list[PerpPositionInfo] = []
        for p in positions:
            if not p.amount:
                continue
            if p.leverage is None or p.isolated is None:
                raise ProtocolError(f"{self.kind}: no leverage or margin type for {p.symbol} (not in symbolConfig)")
            if p.isolated:
                margin: Decimal | None = p.isolated_wallet
            elif p.initial_margin is not None:
                margin = p.initial_margin
            else:  # a V2-shaped item: the account's position item states it
                margin = cross_margins.get((p.symbol, p.position_side))
            if margin is None:
                raise ProtocolError(f"{self.kind}: no initial margin for the {p.symbol} position")
            out.append(PerpPositionInfo(p.symbol, p.amount, p.entry_price, p.mark_price, p.liquidation_price,
                                        p.leverage, p.isolated, margin, p.unrealized_pnl))
        return PerpAccountInfo(wallet, margin_balance, available, maint, tuple(out))

    def build_funding_income(
        self, *, start_ms: int, api_key: str, api_secret: str, timestamp_ms: int, recv_window_ms: int
    ) -> HttpRequest:
        """GET /fapi/v1/income?incomeType=FUNDING_FEE&startTime=..&limit=1000 (weight 30)."""
        return self.wire.build_income(symbol=None, income_type=INCOME_FUNDING, start_ms=start_ms,
                                      limit=fo.INCOME_MAX_LIMIT, api_key=api_key, api_secret=api_secret,
                                      timestamp_ms=timestamp_ms, recv_window_ms=recv_window_ms)

    def parse_funding_income(self, body: bytes) -> list[FundingPaymentInfo]:
        """One payment per record, ``payment_id`` the tranId. A record of another type or asset is refused
        (ProtocolError): the request asked for FUNDING_FEE, and draizer books USDT-margined funding only."""
        out = []
        for r in self.wire.parse_income(200, body):
            if r.income_type != INCOME_FUNDING or r.asset != QUOTE_ASSET:
                raise ProtocolError(f"{self.kind}: income record {r.tran_id} is {r.income_type} in {r.asset}, "
                                    f"not {INCOME_FUNDING} in {QUOTE_ASSET}")
            out.append(FundingPaymentInfo(r.tran_id, r.symbol, r.amount, r.time_ms))
        return out

    def build_setup(
        self, *, symbol: str, leverage: int, isolated: bool, api_key: str, api_secret: str, timestamp_ms: int,
        recv_window_ms: int,
    ) -> list[HttpRequest]:
        """[POST /fapi/v1/leverage, POST /fapi/v1/marginType]."""
        auth = {"api_key": api_key, "api_secret": api_secret, "timestamp_ms": timestamp_ms,
                "recv_window_ms": recv_window_ms}
        margin = fo.MARGIN_ISOLATED if isolated else fo.MARGIN_CROSSED
        return [self.wire.build_leverage(symbol=symbol, leverage=leverage, **auth),
                self.wire.build_margin_type(symbol=symbol, margin=margin, **auth)]

    def parse_setup(self, http_status: int, body: bytes) -> None:
        """None for the leverage answer, ``{"code":200,..}``, or "no need to change" (-4046 margin type, -4059
        position side); VenueError for any other refusal (-4048: a position is open in the other margin type),
        ProtocolError for an unreadable answer."""
        if not 200 <= http_status < 300:
            code, msg = self.parse_error(http_status, body)
            if code in SETUP_UNCHANGED_CODES:
                return
            raise VenueError(code, msg, http_status)
        try:
            a = _setup_decoder.decode(body)
        except msgspec.DecodeError as exc:
            raise ProtocolError(f"{self.kind}: unreadable setup answer ({exc})") from None
        if a.leverage is not None or a.code == ACK_OK or a.code in SETUP_UNCHANGED_CODES:
            return
        if a.code is not None:
            raise VenueError(a.code, a.msg, http_status)
        raise ProtocolError(f"{self.kind}: a setup answer with neither leverage nor code: {body[:200]!r}")


def _usdt(a: FuturesAccount) -> tuple[Decimal, Decimal, Decimal, Decimal]:
    """(wallet, available, margin balance, maintenance margin) of the USDT asset; the account totals when the
    answer lists no assets (they are USDT's in single-asset mode)."""
    x = a.assets.get(QUOTE_ASSET)
    if x is None:
        if a.assets:
            raise ProtocolError(f"{fo.KIND}: the account has no {QUOTE_ASSET} asset ({sorted(a.assets)})")
        return a.wallet_balance, a.available_balance, a.margin_balance, a.maint_margin
    return x.wallet, x.available, x.margin_balance, x.maint_margin
