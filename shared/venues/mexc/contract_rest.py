"""MEXC contract (USDT-margined perpetuals) as a ``PerpOrderFormat``: the calls ``VenueClient`` makes, in draizer's
shapes, on top of the wire format ``contract_orders.MexcContractOrderFormat`` (which follows MEXC's docs where
PROTOCOLS.md differs: states 1-5, POST cancels, Recv-Window in seconds, a submit answer whose data is the id).

Stateful where MEXC needs it (one instance per venue client):

- Symbols: draizer's ``BTCUSDT`` is MEXC's ``BTC_USDT`` (as the contract market format writes it). Before the
  contract details are read, a name is split before its USDT quote; after, the details' baseCoin + quoteCoin.
- Quantities: draizer counts base units, MEXC contracts of ``contractSize`` base units. ``parse_exchange_info``
  (contract/detail) remembers every contract's rules, and every quantity in or out is converted with them,
  exactly: a quantity sent must be a whole number of steps (``SymbolRules.step`` = volUnit x contractSize; any
  other is refused, never cut); a quantity read is dealVol (or holdVol, vol) x contractSize. Until the rules of
  a symbol are known its orders cannot be built (ValueError) and its order answers are ``unknown``.
- Leverage and margin type: MEXC takes them with every order (leverage and openType), so ``build_setup`` sends
  nothing and remembers them for the symbol's opening orders. Without a setup orders go cross margin with no
  leverage (the account's current one for the contract).
- Sides (the account in hedge mode, MEXC's default): an order opens (BUY 1 open long, SELL 3 open short); a
  reduce-only order closes (BUY 2 close short, SELL 4 close long). The venue cuts a close larger than the
  position to its size and refuses one with nothing to close (2009): a reduce-only order never flips.
- ``funding``: ``build_funding_income(start_ms)`` remembers ``start_ms`` and ``parse_funding_income`` keeps the
  records settled at or after it (MEXC's funding records take no start time); one page, the 100 newest.

Answers. A new order's answer carries only its id: ``ok``, NEW, nothing executed (query it). A query is the
order: canonical status, executed_qty = dealVol x contractSize, cum_quote = executed x dealAvgPrice, no fills.
A cancel (by client id) that the venue took names no order: ``unknown`` with code 0 (query it for the final
state); a refused one keeps the code (2040 "order not exist", 2041 "order state cannot be cancelled": both are
``not_found``, as Binance's "Unknown order sent" for a cancel of a closed order). ``cancel_all`` answers the bare
envelope: ``parse_order_list`` gives [] (the cancelled orders are not listed; query or list open orders).
Trades come from ``order/deal_details/{order_id}``: each fill with its own price, volume and fee (exact).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation

import msgspec

from shared.errors import ProtocolError, VenueError
from shared.venues.common import (
    ANSWER_OK,
    ANSWER_REJECTED,
    ANSWER_THROTTLED,
    ANSWER_UNKNOWN,
    ORDER_LIMIT_IOC,
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
    answer_without_order,
    rejected,
    unknown,
)
from shared.venues.mexc import constants as c
from shared.venues.mexc import contract_orders as m
from shared.venues.mexc.contract_orders import ContractRules, MexcContractOrderFormat
from shared.venues.perp import FundingPaymentInfo, PerpAccountInfo, PerpPositionInfo
from shared.venues.spot_rest import plain_decimal, retry_after

QUOTE = "USDT"
W = c.CONTRACT_WEIGHT_REQUEST
WEIGHTS = RequestWeights(
    new_order=W, query_order=W, cancel_order=W, open_orders_symbol=W, open_orders_all=W, cancel_all=W, account=W,
    my_trades=W, my_trades_by_order=W, exchange_info=c.CONTRACT_WEIGHT_DETAIL, time=W, all_orders=W,
)
# 2041 (not cancellable) answers only a cancel: the order is closed, which for draizer is "no such open order".
NOT_FOUND_CODES = frozenset({m.ERR_ORDER_NOT_EXIST, m.ERR_NOT_CANCELLABLE})
_HOLDING = frozenset({m.POSITION_HOLDING, 2})  # position state 1 holding, 2 system auto-holding (3: closed)


def _decimal(text: str, what: str) -> Decimal:
    try:
        value = Decimal(text)
    except (InvalidOperation, TypeError):
        raise ValueError(f"{what} {text!r} is not a decimal") from None
    if not value.is_finite() or value <= 0:
        raise ValueError(f"{what} must be a positive number, not {text!r}")
    return value


class MexcContractRestFormat:
    """``PerpOrderFormat`` of ``mexc_contract`` (see the module docstring for the state it keeps)."""

    kind = "mexc_contract"
    quote_asset = QUOTE
    not_found_codes = NOT_FOUND_CODES
    timestamp_codes = m.TIMESTAMP_CODES
    weights = WEIGHTS
    # The perp extras' request weights (MEXC counts requests: 1 each; the budget is per endpoint, see limits).
    perp_account_weights = (1, 1, 1)  # assets, open positions, ticker (positions carry no mark)
    funding_income_weight = 1
    setup_weights: tuple[int, ...] = ()  # leverage and margin type ride on each order

    def __init__(self) -> None:
        self.wire = MexcContractOrderFormat()
        self._rules: dict[str, ContractRules] = {}  # by MEXC symbol
        self._wire_of: dict[str, str] = {}  # draizer name -> MEXC symbol
        self._setup: dict[str, tuple[int, bool]] = {}  # MEXC symbol -> (leverage, isolated)
        self._funding_since = 0

    # ----- symbols and rules
    def wire_symbol(self, symbol: str) -> str:
        """MEXC's name of draizer's ``symbol`` (a name already in MEXC's form is kept)."""
        known = self._wire_of.get(symbol)
        if known is not None:
            return known
        if "_" in symbol:
            return symbol
        if len(symbol) > len(QUOTE) and symbol.endswith(QUOTE):
            return f"{symbol[:-len(QUOTE)]}_{QUOTE}"
        raise ValueError(f"{symbol!r} is not a USDT-margined contract (BASEUSDT)")

    def contract_rules(self, symbol: str) -> ContractRules:
        """The remembered rules of a symbol (draizer's or MEXC's name); ValueError before contract/detail."""
        rules = self._rules.get(self.wire_symbol(symbol))
        if rules is None:
            raise ValueError(f"{self.kind}: no contract rules for {symbol!r}: read contract/detail first "
                             "(build_exchange_info / parse_exchange_info)")
        return rules

    def _contracts(self, qty: str, rules: ContractRules) -> Decimal:
        base = _decimal(qty, "qty")
        contracts = m.base_to_contracts(base, rules)
        if m.contracts_to_base(contracts, rules) != base:
            step = plain_decimal(rules.vol_unit * rules.contract_size)
            raise ValueError(f"qty {qty} of {rules.symbol} is not a whole number of steps of {step}")
        return contracts

    def build_exchange_info(self, symbols: Sequence[str] = ()) -> HttpRequest:
        """contract/detail: of the one symbol asked for, else of every contract."""
        return self.wire.build_contract_detail(self.wire_symbol(symbols[0]) if len(symbols) == 1 else None)

    def parse_exchange_info(self, body: bytes) -> dict[str, SymbolRules]:
        """Rules by draizer's name (base + quote), in base units; the contract rules are remembered."""
        out: dict[str, SymbolRules] = {}
        for symbol, rules in self.wire.parse_contract_detail(200, body).items():
            name = f"{rules.base}{rules.quote}" if rules.base and rules.quote else symbol.replace("_", "")
            self._rules[symbol] = rules
            self._wire_of[name] = symbol
            out[name] = rules.symbol_rules()._replace(symbol=name)
        return out

    def build_time(self) -> HttpRequest:
        return self.wire.build_ping()

    def parse_time(self, body: bytes) -> int:
        try:
            return self.wire.parse_ping(200, body)
        except VenueError as exc:
            raise ProtocolError(f"{self.kind}: no server time ({exc})") from None

    # ----- setup
    def build_setup(
        self, *, symbol: str, leverage: int, isolated: bool, api_key: str, api_secret: str, timestamp_ms: int,
        recv_window_ms: int,
    ) -> list[HttpRequest]:
        """No request: MEXC takes leverage and margin type with each order; remembered for ``symbol``."""
        if isinstance(leverage, bool) or not isinstance(leverage, int) or leverage < 1:
            raise ValueError(f"leverage must be a whole number >= 1, not {leverage!r}")
        wire = self.wire_symbol(symbol)
        rules = self._rules.get(wire)
        if rules is not None and rules.max_leverage and leverage > rules.max_leverage:
            raise ValueError(f"{wire}: leverage {leverage} above the contract's maximum {rules.max_leverage}")
        self._setup[wire] = (leverage, isolated)
        return []

    def parse_setup(self, http_status: int, body: bytes) -> None:
        v = self.wire.verdict(http_status, body, {})
        if v.kind != ANSWER_OK:
            raise VenueError(v.code, v.msg, http_status)

    # ----- orders
    def build_new_order(
        self, *, symbol: str, side: str, price: str | None, qty: str, client_order_id: str, api_key: str,
        api_secret: str, timestamp_ms: int, recv_window_ms: int, order_type: str = ORDER_LIMIT_IOC,
        reduce_only: bool = False,
    ) -> HttpRequest:
        return self.build_new_perp_order(
            symbol=symbol, side=side, price=price, qty=qty, client_order_id=client_order_id, reduce_only=reduce_only,
            api_key=api_key, api_secret=api_secret, timestamp_ms=timestamp_ms, recv_window_ms=recv_window_ms,
            order_type=order_type,
        )

    def build_new_perp_order(
        self, *, symbol: str, side: str, price: str | None, qty: str, client_order_id: str, reduce_only: bool,
        api_key: str, api_secret: str, timestamp_ms: int, recv_window_ms: int, order_type: str = ORDER_LIMIT_IOC,
    ) -> HttpRequest:
        """order/submit: ``qty`` in base units (whole steps), ``price`` the limit of an IOC (None for MARKET)."""
        rules = self.contract_rules(symbol)
        leverage, isolated = self._setup.get(rules.symbol, (None, False))
        return self.wire.build_new_order(
            symbol=rules.symbol, side=m.contract_side(side, close=reduce_only), vol=self._contracts(qty, rules),
            price=None if price is None else _decimal(price, "price"), client_order_id=client_order_id,
            open_type=m.OPEN_ISOLATED if isolated else m.OPEN_CROSS, leverage=None if reduce_only else leverage,
            api_key=api_key, api_secret=api_secret, timestamp_ms=timestamp_ms, recv_window_ms=recv_window_ms,
            order_type=order_type,
        )

    def build_query_order(self, *, symbol: str, client_order_id: str, api_key: str, api_secret: str,
                          timestamp_ms: int, recv_window_ms: int) -> HttpRequest:
        return self.wire.build_query_order(symbol=self.wire_symbol(symbol), client_order_id=client_order_id,
                                           api_key=api_key, api_secret=api_secret, timestamp_ms=timestamp_ms,
                                           recv_window_ms=recv_window_ms)

    def build_cancel_order(self, *, symbol: str, client_order_id: str, api_key: str, api_secret: str,
                           timestamp_ms: int, recv_window_ms: int) -> HttpRequest:
        """order/cancel_with_external: by the client order id (externalOid)."""
        return self.wire.build_cancel_by_client_id(symbol=self.wire_symbol(symbol), client_order_id=client_order_id,
                                                   api_key=api_key, api_secret=api_secret,
                                                   timestamp_ms=timestamp_ms, recv_window_ms=recv_window_ms)

    def build_open_orders(self, *, symbol: str | None, api_key: str, api_secret: str, timestamp_ms: int,
                          recv_window_ms: int) -> HttpRequest:
        return self.wire.build_open_orders(symbol=self.wire_symbol(symbol) if symbol else None, api_key=api_key,
                                           api_secret=api_secret, timestamp_ms=timestamp_ms,
                                           recv_window_ms=recv_window_ms)

    def build_cancel_all(self, *, symbol: str, api_key: str, api_secret: str, timestamp_ms: int,
                         recv_window_ms: int) -> HttpRequest:
        return self.wire.build_cancel_all(symbol=self.wire_symbol(symbol), api_key=api_key, api_secret=api_secret,
                                          timestamp_ms=timestamp_ms, recv_window_ms=recv_window_ms)

    def parse_order(
        self, http_status: int, body: bytes, headers: Mapping[str, str], *, new_order: bool = True
    ) -> OrderAnswer:
        """A submit answer (``new_order``), a query answer, or a cancel answer (see the module docstring)."""
        if new_order:
            return self.wire.parse_new_order(http_status, body, headers, client_order_id="")
        v = self.wire.verdict(http_status, body, headers)
        if v.kind != ANSWER_OK:
            return answer_without_order(v.kind, "", v.code, v.msg, http_status, v.retry_after_s, new_order=False)
        data = v.data.strip()
        if data.startswith(b"["):  # a cancel's answer with an item per order: a refused one keeps its code
            for item in self.wire.parse_cancel(http_status, body, headers):
                if item.error_code:
                    return answer_without_order(item.kind, "", item.error_code, item.error_msg, http_status,
                                                new_order=False)
        if data == b"null" or data.startswith(b"["):  # a cancel the venue took: it names no order's state
            return answer_without_order(ANSWER_UNKNOWN, "", 0, "cancel taken: query the order for its final state",
                                        http_status, new_order=False)
        return self._order(data, http_status)

    def _order(self, data: bytes, http_status: int) -> OrderAnswer:
        try:
            order = m.decode_order(data)
        except (msgspec.DecodeError, ValueError) as exc:
            msg = f"HTTP {http_status}: unreadable order answer ({exc})"
            return answer_without_order(ANSWER_UNKNOWN, "", 0, msg, http_status, new_order=False)
        rules = self._rules.get(order.symbol)
        if rules is None:
            msg = f"no contract rules for {order.symbol}: its volumes cannot be read in base units"
            return answer_without_order(ANSWER_UNKNOWN, order.client_order_id, 0, msg, http_status, new_order=False)
        return m.order_answer(order, rules, http_status)

    def parse_order_list(self, http_status: int, body: bytes, headers: Mapping[str, str]) -> list[OrderAnswer]:
        """Open orders; a cancel_all answer (no data) is []. VenueError for a refusal, ProtocolError when
        unreadable; an order of a contract without rules is ``unknown``."""
        v = self.wire.verdict(http_status, body, headers)
        if v.kind != ANSWER_OK:
            if v.kind == ANSWER_UNKNOWN and v.code == 0 and 200 <= http_status < 300:
                raise ProtocolError(f"{self.kind}: {v.msg}")
            raise VenueError(v.code, v.msg, http_status)
        if v.data.strip() == b"null":
            return []
        try:
            items = msgspec.json.decode(v.data, type=list[msgspec.Raw])
        except msgspec.DecodeError as exc:
            raise ProtocolError(f"{self.kind}: unreadable order list ({exc})") from None
        return [self._order(bytes(raw), http_status) for raw in items]

    def not_found(self, answer: OrderAnswer) -> bool:
        return answer.kind == ANSWER_REJECTED and answer.error_code in self.not_found_codes

    def parse_error(self, http_status: int, body: bytes) -> tuple[int, str]:
        return self.wire.parse_error(http_status, body)

    def parse_rate_headers(self, headers: Mapping[str, str]) -> RateHeaders:
        """MEXC reports no usage: only Retry-After."""
        return RateHeaders(None, None, None, retry_after(headers))

    # ----- trades and account
    def build_my_trades(self, *, symbol: str, order_id: str | None, api_key: str, api_secret: str,
                        timestamp_ms: int, recv_window_ms: int) -> HttpRequest:
        """order/deal_details/{order_id}: the fills of one order (MEXC lists a symbol's trades only by time)."""
        if not order_id:
            raise ValueError(f"{self.kind}: trades are read per order (order/deal_details): give the order id")
        return self.wire.build_deal_details(order_id=order_id, api_key=api_key, api_secret=api_secret,
                                            timestamp_ms=timestamp_ms, recv_window_ms=recv_window_ms)

    def parse_my_trades(self, body: bytes) -> list[TradeFill]:
        out = []
        for d in self.wire.parse_deal_details(200, body):
            rules = self._rules.get(d.symbol)
            if rules is None:
                raise ProtocolError(f"{self.kind}: a deal of {d.symbol}, whose contract rules are unknown")
            out.append(TradeFill(d.deal_id, d.price, m.contracts_to_base(d.vol, rules), d.fee, d.fee_currency))
        return out

    def build_account(self, *, api_key: str, api_secret: str, timestamp_ms: int, recv_window_ms: int) -> HttpRequest:
        return self.wire.build_account(api_key=api_key, api_secret=api_secret, timestamp_ms=timestamp_ms,
                                       recv_window_ms=recv_window_ms)

    def parse_account(self, body: bytes, fallback: tuple[Decimal, Decimal] | None = None) -> AccountInfo:
        """account/assets: (availableBalance, frozenBalance) per currency. MEXC states no account commission
        rates (only per contract): the fees are ``fallback`` (maker, taker)."""
        if fallback is None:
            raise ProtocolError(f"{self.kind}: the assets answer states no commission rates; pass the fallback")
        assets = self.wire.parse_assets(200, body)
        balances = {a.currency: (a.available_balance, a.frozen_balance) for a in assets.values()}
        return AccountInfo(balances, *fallback)

    def build_perp_account(
        self, *, api_key: str, api_secret: str, timestamp_ms: int, recv_window_ms: int
    ) -> list[HttpRequest]:
        """account/assets, position/open_positions and the public contract/ticker (the fair price positions
        are marked at: MEXC's position answer has none)."""
        auth = {"api_key": api_key, "api_secret": api_secret, "timestamp_ms": timestamp_ms,
                "recv_window_ms": recv_window_ms}
        return [self.wire.build_account(**auth), self.wire.build_open_positions(symbol=None, **auth),
                self.wire.build_ticker()]

    def parse_perp_account(self, bodies: list[bytes]) -> PerpAccountInfo:
        """Sizes in base units, a short (positionType 2) negative; the position's ``im`` is its margin. Wallet =
        equity - unrealized; maintenance margin = |size| x fair price x the contract's maintenanceMarginRate
        (the first risk tier: MEXC states no maintenance margin); a position's unrealized PnL = size x (fair
        price - holdAvgPrice)."""
        if len(bodies) != 3:
            raise ValueError(f"expected the answers of build_perp_account's 3 requests, got {len(bodies)}")
        assets, positions, tickers = bodies
        usdt = self.wire.parse_assets(200, assets).get(QUOTE)
        if usdt is None:
            raise ProtocolError(f"{self.kind}: no {QUOTE} in the assets answer")
        marks = self.wire.parse_tickers(200, tickers)
        out: list[PerpPositionInfo] = []
        maint = ZERO
        for p in self.wire.parse_positions(200, positions):
            if p.state not in _HOLDING or not p.hold_vol:
                continue
            rules, ticker = self._rules.get(p.symbol), marks.get(p.symbol)
            if rules is None or ticker is None:
                raise ProtocolError(f"{self.kind}: a position in {p.symbol} without its contract rules or ticker")
            qty = m.contracts_to_base(p.hold_vol, rules)
            size = -qty if p.position_type == m.POSITION_SHORT else qty
            mark = ticker.fair_price
            maint += qty * mark * rules.maint_margin_rate
            out.append(PerpPositionInfo(
                p.symbol, size, p.hold_avg_price, mark, p.liquidate_price, p.leverage,
                p.open_type == m.OPEN_ISOLATED, p.im, size * (mark - p.hold_avg_price),
            ))
        return PerpAccountInfo(usdt.equity - usdt.unrealized, usdt.equity, usdt.available_balance, maint,
                               tuple(out))

    def build_funding_income(
        self, *, start_ms: int, api_key: str, api_secret: str, timestamp_ms: int, recv_window_ms: int
    ) -> HttpRequest:
        """position/funding_records, newest first, one page of 100; ``start_ms`` filters the parse."""
        self._funding_since = start_ms
        return self.wire.build_funding_records(symbol=None, api_key=api_key, api_secret=api_secret,
                                               timestamp_ms=timestamp_ms, recv_window_ms=recv_window_ms)

    def parse_funding_income(self, body: bytes) -> list[FundingPaymentInfo]:
        """The records settled at or after the last ``build_funding_income``'s start, oldest first."""
        page = self.wire.parse_funding_records(200, body)
        kept = [r for r in page.records if r.settle_ms >= self._funding_since]
        return [FundingPaymentInfo(r.record_id, r.symbol, r.funding, r.settle_ms)
                for r in sorted(kept, key=lambda r: (r.settle_ms, r.record_id))]

    # ----- the first executor's shape
    def parse_order_response(self, http_status: int, body: bytes, base_asset: str) -> OrderResult:
        a = self.parse_order(http_status, body, {})
        if a.kind in (ANSWER_REJECTED, ANSWER_THROTTLED):
            return rejected(a.client_order_id, a.error_code, a.error_msg)
        if a.kind != ANSWER_OK:
            return unknown(a.client_order_id, a.error_msg, a.error_code)
        return OrderResult(a.status != REJECTED, a.venue_status or "NEW", a.order_id, a.client_order_id, 0.0, 0.0,
                           0.0, [], 0, "", True)  # a submit answer states no execution: query it
