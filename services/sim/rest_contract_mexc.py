"""The simulated MEXC contract v1 order and account API, on the perp venue's REST port.

The server side of ``shared/venues/mexc/contract_orders.py``. Every answer is the envelope ``{"success",
"code", "data"}`` (``"message"`` on a refusal) with HTTP 200, numbers as JSON numbers written from their exact
decimal text. Private endpoints check the ``ApiKey`` header (absent or unknown: 401 "Unauthorized"), the
``Signature`` = hex HMAC-SHA256(secret, accessKey + Request-Time + parameter string) (602 "Verify failed"),
the parameter string being the sorted, URL-encoded query of a GET or the body of a POST exactly as sent, and
``Request-Time`` within ``Recv-Window`` seconds (default 10, at most 60) of the server clock (513).

The account is in hedge mode (MEXC's default): a long and a short position per contract. Volumes count
contracts of ``contractSize`` base units (the symbol's step: one contract is one lot), ``volUnit`` 1.

- ``POST order/submit``: type 3 (IOC) or 5 (market); the sim rests nothing, so 1, 2, 4 and 6 are 2029. Sides
  1 open long, 3 open short, 2 close short, 4 close long; a close reduces only (never flips): with no position
  it is 2009, larger than the position it is cut to it. ``leverage`` is needed to open isolated (2006); an
  opening whose leverage or margin type differs from its open position is 2021 / 2027. ``reduceOnly`` is
  refused (600): the docs say hedge-mode positions do not accept it. Insufficient margin: 2005. A reused
  ``externalOid`` is 603 "Repeated requests" (the batch endpoint's docs say an existing externalOid returns
  the existing order; for the single submit MEXC documents nothing, and 603 makes the client query it).
- ``POST order/cancel`` (list of ids; per id 2040 "order not exist" or 2041 "order state cannot be
  cancelled": every order is final at once), ``POST order/cancel_with_external`` (the same codes, in the
  envelope).
- ``POST order/cancel_all`` (``{"symbol"}`` or ``{}``): the bare envelope (nothing is ever open to cancel).
- ``GET order/external/{symbol}/{externalOid}``, ``GET order/get/{id}`` (2040 when unknown),
  ``GET order/deal_details/{id}`` (the order's one fill: id, vol, price, fee = its commission, profit = the PnL
  it realized; ``[]`` for an unknown id), ``GET order/list/open_orders[/{symbol}]`` (always empty),
  ``GET position/open_positions``, ``GET account/assets``, ``GET position/funding_records`` (newest first,
  paged), public ``GET /api/v1/contract/detail[?symbol=]``, ``GET /api/v1/contract/ping`` (the server time) and
  ``GET /api/v1/contract/ticker[?symbol=]`` (fairPrice = the published mark, bid1/ask1 = the touch).
- Every endpoint is rate limited as documented (``rate_limits_mexc_contract``); ``inject_order_fault`` carries
  the ``rate_limit`` fault only.
- Test hook ``GET /sim/perp_account`` (``ApiKey`` header): the account's orders, positions and funding.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Mapping
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl

import msgspec
from aiohttp import web

from services.sim import order_faults
from services.sim import perp_account as pa
from services.sim.faults import FaultError
from services.sim.order_faults import OrderFault
from services.sim.perp_account import OrderRequest, PerpBook, PerpOrder, PerpPosition, Reject
from services.sim.rate_limits_mexc_contract import ContractGate
from services.sim.rest_common import json_response, now_ms
from services.sim.units import SymbolSpec
from services.sim.ws_mexc_contract import contract_symbol
from shared.config import Venue
from shared.venues.common import hmac_sha256_hex, query_string
from shared.venues.mexc import contract_orders as m

ORDER_ID_BASE = 102_057_569_836_905_984  # ids the size of the venue's
DEFAULT_RECV_WINDOW_S = 10
ASSET = "USDT"

_REJECTIONS = {
    pa.DUPLICATE: (m.ERR_REPEATED, "Repeated requests"),
    pa.INSUFFICIENT_MARGIN: (m.ERR_BALANCE, "Balance insufficient"),
    pa.REDUCE_ONLY: (2009, "Positions do not exist or have been closed"),
    pa.LEVERAGE_MISMATCH: (2021, "The single leverage is not consistent with the existing position leverage"),
    pa.MARGIN_MISMATCH: (2027, "There is only one cross or isolated in the same direction"),
}
# side -> (BUY/SELL, position side, closes)
_SIDES = {
    m.SIDE_OPEN_LONG: ("BUY", pa.LONG, False),
    m.SIDE_CLOSE_SHORT: ("BUY", pa.SHORT, True),
    m.SIDE_OPEN_SHORT: ("SELL", pa.SHORT, False),
    m.SIDE_CLOSE_LONG: ("SELL", pa.LONG, True),
}
_SIDE_OF = {(side, position_side): n for n, (side, position_side, _) in _SIDES.items()}


class Refusal(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


class _Submit(msgspec.Struct):
    symbol: str = ""
    price: Decimal | None = None
    vol: Decimal | None = None
    leverage: int | None = None
    side: int = 0
    type: int = 0
    openType: int = 0
    positionId: int | None = None
    externalOid: str | None = None
    reduceOnly: bool = False
    positionMode: int | None = None


class _CancelExternal(msgspec.Struct):
    symbol: str = ""
    externalOid: str = ""


class _CancelAll(msgspec.Struct):
    symbol: str | None = None


_submit = msgspec.json.Decoder(_Submit)
_cancel_ids = msgspec.json.Decoder(list[int])
_cancel_external = msgspec.json.Decoder(_CancelExternal)
_cancel_all = msgspec.json.Decoder(_CancelAll)


def num(d: Decimal | int) -> msgspec.Raw:
    """A JSON number from exact decimal text (``1217.3``; never a float repr, never an exponent)."""
    text = format(d, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return msgspec.Raw(("0" if text in ("", "-0") else text).encode())


def ok(data: object) -> web.Response:
    return json_response({"success": True, "code": 0, "data": data})


def refused(code: int, message: str) -> web.Response:
    return json_response({"success": False, "code": code, "message": message})


class MexcContractApi:
    def __init__(self, venue: Venue, book: PerpBook, credentials: Mapping[str, str], stream: Any) -> None:
        self.venue = venue
        self.book = book
        self.secrets = dict(credentials)
        for key in self.secrets:
            book.open_account(key)
        self.by_contract = {contract_symbol(book.specs[i]): i for i in book.index.values()}
        self.requests = 0
        self.gate = ContractGate()

    def routes(self, app: web.Application) -> None:
        r = app.router
        r.add_post(m.SUBMIT_PATH, self._submit)
        r.add_post(m.CANCEL_PATH, self._cancel)
        r.add_post(m.CANCEL_EXTERNAL_PATH, self._cancel_external)
        r.add_post(m.CANCEL_ALL_PATH, self._cancel_all)
        r.add_get(m.DEAL_DETAILS_PATH + "{order_id}", self._deal_details)
        r.add_get(m.QUERY_EXTERNAL_PATH + "{symbol}/{oid}", self._query_external)
        r.add_get(m.QUERY_ORDER_PATH + "{order_id}", self._query_id)
        r.add_get(m.OPEN_ORDERS_PATH, self._open_orders)
        r.add_get(m.OPEN_ORDERS_PATH + "/{symbol}", self._open_orders)
        r.add_get(m.OPEN_POSITIONS_PATH, self._positions)
        r.add_get(m.ASSETS_PATH, self._assets)
        r.add_get(m.FUNDING_RECORDS_PATH, self._funding_records)
        r.add_get(m.CONTRACT_DETAIL_PATH, self._contract_detail)
        r.add_get(m.PING_PATH, self._ping)
        r.add_get(m.TICKER_PATH, self._ticker)
        r.add_get("/sim/perp_account", self._sim_account)

    def middlewares(self) -> list[Any]:
        return [self.gate.middleware(self._count_refusal)]

    def _count_refusal(self) -> None:
        self.requests += 1

    def inject_order_fault(self, fault: OrderFault) -> None:
        """Arm ``fault``: only ``rate_limit`` (every request answers 429 / 510 for its seconds)."""
        order_faults.check(fault, self.book.index)
        if fault.kind != order_faults.RATE_LIMIT:
            raise FaultError(f"the simulated MEXC contract API carries only {order_faults.RATE_LIMIT} faults")
        self.gate.fault(fault.seconds or 0.0)

    # ----- authentication
    async def _auth(self, request: web.Request) -> tuple[str, bytes]:
        """The API key and the raw body once key, signature and time are good; Refusal otherwise."""
        self.requests += 1
        h = request.headers
        api_key = h.get(m.API_KEY_HEADER, "")
        secret = self.secrets.get(api_key)
        if secret is None:
            raise Refusal(m.ERR_UNAUTHORIZED, "Unauthorized")
        body = await request.read()
        if request.method == "POST":
            parameters = body.decode("utf-8", errors="replace")
        else:  # the docs: sorted by name, URL-encoded; the server re-sorts what it received
            parameters = query_string(sorted(parse_qsl(request.rel_url.raw_query_string, keep_blank_values=True)))
        ts_text = h.get(m.TIME_HEADER, "")
        expected = hmac_sha256_hex(secret, f"{api_key}{ts_text}{parameters}")
        if not hmac.compare_digest(h.get(m.SIGNATURE_HEADER, ""), expected):
            raise Refusal(m.ERR_SIGNATURE, "Verify failed")
        window_text = h.get(m.RECV_WINDOW_HEADER, "")
        window_s = min(int(window_text), m.MAX_RECV_WINDOW_S) if window_text.isdigit() else DEFAULT_RECV_WINDOW_S
        if not ts_text.isdigit() or abs(now_ms() - int(ts_text)) > window_s * 1000:
            raise Refusal(m.ERR_REQUEST_TIME, "Invalid request(for open api serves time more or less than 10s)")
        return api_key, body

    def _contract(self, name: str) -> int:
        s = self.by_contract.get(name)
        if s is None:
            raise Refusal(1001, "Contract does not exist")
        return s

    def _contract_size(self, s: int) -> Decimal:
        return Decimal(self.book.specs[s].step_text)

    # ----- orders
    async def _submit(self, request: web.Request) -> web.Response:
        try:
            api_key, body = await self._auth(request)
            try:
                o = _submit.decode(body)
            except (msgspec.DecodeError, msgspec.ValidationError):
                raise Refusal(m.ERR_PARAM, "Parameter error") from None
            req = self._order_request(o)
        except Refusal as r:
            return refused(r.code, r.message)
        placed = self.book.place(api_key, req, now_ms())
        if isinstance(placed, Reject):
            code, message = _REJECTIONS.get(placed.reason, (m.ERR_PARAM, placed.reason))
            return refused(code, message)
        return ok(ORDER_ID_BASE + placed.number)

    def _order_request(self, o: _Submit) -> OrderRequest:
        s = self._contract(o.symbol)
        spec = self.book.specs[s]
        if o.side not in _SIDES:
            raise Refusal(2001, "Wrong order direction")
        side, position_side, closes = _SIDES[o.side]
        if o.openType not in (m.OPEN_ISOLATED, m.OPEN_CROSS):
            raise Refusal(2002, "Wrong opening type")
        if o.type not in (m.TYPE_IOC, m.TYPE_MARKET):
            raise Refusal(2029, "Error order type (the simulator rests no order: use 3 or 5)")
        if o.reduceOnly or o.positionMode == 2:
            raise Refusal(m.ERR_PARAM, "Parameter error: hedge-mode positions do not accept reduceOnly")
        if o.vol is None or o.vol <= 0:
            raise Refusal(m.ERR_QUANTITY, "Order quantity error")
        if o.vol != o.vol.to_integral_value():
            raise Refusal(m.ERR_PRECISION, "Price or quantity accuracy error")
        price: Decimal | None = None
        if o.type == m.TYPE_IOC:
            if o.price is None or o.price <= 0:
                raise Refusal(2007, "Order price error")
            if o.price % Decimal(spec.tick_text):
                raise Refusal(m.ERR_PRECISION, "Price or quantity accuracy error")
            price = o.price
        if o.leverage is not None and not 1 <= o.leverage <= pa.MAX_LEVERAGE:
            raise Refusal(2006, "Leverage ratio error")
        isolated = o.openType == m.OPEN_ISOLATED
        if isolated and not closes and o.leverage is None:
            raise Refusal(2006, "Leverage ratio error")
        cid = o.externalOid or f"sim{time.time_ns():x}"
        if len(cid) > m.MAX_EXTERNAL_OID:
            raise Refusal(m.ERR_EXTERNAL_OID_LONG, "External order ID is too long (Max. 32 bits )")
        return OrderRequest(
            s, side, position_side, pa.LIMIT_IOC if price is not None else pa.MARKET, o.vol * self._contract_size(s),
            price, cid, closes, leverage=None if closes else o.leverage, isolated=None if closes else isolated,
        )

    async def _cancel(self, request: web.Request) -> web.Response:
        try:
            api_key, body = await self._auth(request)
            try:
                ids = _cancel_ids.decode(body)
            except (msgspec.DecodeError, msgspec.ValidationError):
                raise Refusal(m.ERR_PARAM, "Parameter error") from None
        except Refusal as r:
            return refused(r.code, r.message)
        items = []
        for order_id in ids:
            order = self.book.find_by_number(api_key, order_id - ORDER_ID_BASE)
            code, msg = (m.ERR_ORDER_NOT_EXIST, "order not exist") if order is None else (
                m.ERR_NOT_CANCELLABLE, "order state cannot be cancelled")
            items.append({"orderId": order_id, "errorCode": code, "errorMsg": msg})
        return ok(items)

    async def _cancel_external(self, request: web.Request) -> web.Response:
        try:
            api_key, body = await self._auth(request)
            try:
                c = _cancel_external.decode(body)
            except (msgspec.DecodeError, msgspec.ValidationError):
                raise Refusal(m.ERR_PARAM, "Parameter error") from None
            s = self._contract(c.symbol)
        except Refusal as r:
            return refused(r.code, r.message)
        order = self.book.find(api_key, c.externalOid)
        if order is None or order.request.symbol != s:
            return refused(m.ERR_ORDER_NOT_EXIST, "order not exist")
        return refused(m.ERR_NOT_CANCELLABLE, "order state cannot be cancelled")  # every order is final at once

    async def _cancel_all(self, request: web.Request) -> web.Response:
        try:
            _, body = await self._auth(request)
            try:
                c = _cancel_all.decode(body or b"{}")
            except (msgspec.DecodeError, msgspec.ValidationError):
                raise Refusal(m.ERR_PARAM, "Parameter error") from None
            if c.symbol:
                self._contract(c.symbol)
        except Refusal as r:
            return refused(r.code, r.message)
        return json_response({"success": True, "code": 0})  # every order is final at once: none to cancel

    async def _deal_details(self, request: web.Request) -> web.Response:
        try:
            api_key, _ = await self._auth(request)
        except Refusal as r:
            return refused(r.code, r.message)
        text = request.match_info["order_id"]
        order = self.book.find_by_number(api_key, int(text) - ORDER_ID_BASE) if text.isdigit() else None
        if order is None:
            return ok([])
        size = self._contract_size(order.request.symbol)
        side = _SIDE_OF[(order.request.side, order.request.position_side)]
        return ok([{
            "id": str(f.trade_id), "symbol": contract_symbol(order.spec), "side": side, "vol": num(f.qty / size),
            "price": num(f.price), "feeCurrency": ASSET, "fee": num(f.commission), "timestamp": f.time_ms,
            "profit": num(f.realized), "category": 1, "orderId": str(ORDER_ID_BASE + order.number), "taker": True,
        } for f in order.fills])

    async def _query_external(self, request: web.Request) -> web.Response:
        try:
            api_key, _ = await self._auth(request)
            s = self._contract(request.match_info["symbol"])
        except Refusal as r:
            return refused(r.code, r.message)
        order = self.book.find(api_key, request.match_info["oid"])
        if order is None or order.request.symbol != s:
            return refused(m.ERR_ORDER_NOT_EXIST, "order not exist")
        return ok(self.order_body(order))

    async def _query_id(self, request: web.Request) -> web.Response:
        try:
            api_key, _ = await self._auth(request)
        except Refusal as r:
            return refused(r.code, r.message)
        text = request.match_info["order_id"]
        order = self.book.find_by_number(api_key, int(text) - ORDER_ID_BASE) if text.isdigit() else None
        if order is None:
            return refused(m.ERR_ORDER_NOT_EXIST, "order not exist")
        return ok(self.order_body(order))

    async def _open_orders(self, request: web.Request) -> web.Response:
        try:
            api_key, _ = await self._auth(request)
            self._page(request.query)
            symbol = request.match_info.get("symbol")
            s = self._contract(symbol) if symbol else None
        except Refusal as r:
            return refused(r.code, r.message)
        return ok([self.order_body(o) for o in self.book.open_orders(api_key, s)])

    # ----- positions, assets, funding
    async def _positions(self, request: web.Request) -> web.Response:
        try:
            api_key, _ = await self._auth(request)
            symbol = request.query.get("symbol")
            s = self._contract(symbol) if symbol else None
        except Refusal as r:
            return refused(r.code, r.message)
        return ok([self.position_body(api_key, p) for p in self.book.positions(api_key, s)])

    async def _assets(self, request: web.Request) -> web.Response:
        try:
            api_key, _ = await self._auth(request)
        except Refusal as r:
            return refused(r.code, r.message)
        book = self.book
        wallet, unrealized = book.account(api_key).wallet, book.unrealized(api_key)
        im, available = book.initial_margin(api_key), book.available(api_key)
        return ok([{
            "currency": ASSET,
            "positionMargin": num(im),
            "availableBalance": num(available),
            "cashBalance": num(max(Decimal(0), min(wallet - im, available))),
            "frozenBalance": num(0),
            "equity": num(wallet + unrealized),
            "unrealized": num(unrealized),
            "bonus": num(0),
        }])

    async def _funding_records(self, request: web.Request) -> web.Response:
        try:
            api_key, _ = await self._auth(request)
            page, size = self._page(request.query)
            symbol = request.query.get("symbol")
            s = self._contract(symbol) if symbol else None
            position_text = request.query.get("position_id", "")
            if position_text and not position_text.isdigit():
                raise Refusal(m.ERR_PARAM, "Parameter error")
        except Refusal as r:
            return refused(r.code, r.message)
        rows = [i for i in reversed(self.book.funding(api_key))  # newest first
                if (s is None or i.symbol == s) and (not position_text or i.position_id == int(position_text))]
        total_pages = max(1, -(-len(rows) // size))
        chosen = rows[(page - 1) * size : page * size]
        return ok({
            "pageSize": size, "totalCount": len(rows), "totalPage": total_pages, "currentPage": page,
            "resultList": [{
                "id": i.tran_id, "symbol": contract_symbol(self.book.specs[i.symbol]), "positionId": i.position_id,
                "positionType": m.POSITION_LONG if i.position_side == pa.LONG else m.POSITION_SHORT,
                "positionValue": num(i.position_value), "funding": num(i.amount), "rate": num(i.rate),
                "settleTime": i.time_ms,
            } for i in chosen],
        })

    def _page(self, query: Mapping[str, str]) -> tuple[int, int]:
        """page_num and page_size, both mandatory (600 when absent or not a number)."""
        page, size = query.get("page_num", ""), query.get("page_size", "")
        if not page.isdigit() or not size.isdigit() or int(page) < 1 or int(size) < 1:
            raise Refusal(m.ERR_PARAM, "Parameter error")
        return int(page), min(int(size), m.MAX_PAGE_SIZE)

    # ----- public
    async def _contract_detail(self, request: web.Request) -> web.Response:
        self.requests += 1
        symbol = request.query.get("symbol")
        if symbol:
            s = self.by_contract.get(symbol)
            if s is None:
                return refused(1001, "Contract does not exist")
            return ok(self.contract_body(self.book.specs[s]))
        return ok([self.contract_body(self.book.specs[s]) for s in sorted(self.by_contract.values())])

    async def _ping(self, request: web.Request) -> web.Response:
        self.requests += 1
        return ok(now_ms())

    async def _ticker(self, request: web.Request) -> web.Response:
        self.requests += 1
        symbol = request.query.get("symbol")
        if symbol:
            s = self.by_contract.get(symbol)
            if s is None:
                return refused(1001, "Contract does not exist")
            return ok(self.ticker_body(s))
        return ok([self.ticker_body(s) for s in sorted(self.by_contract.values())])

    def ticker_body(self, s: int) -> dict[str, Any]:
        """fairPrice is the mark the sim publishes (positions are valued at it); bid1/ask1 its touch."""
        touch = self.book.touch(s)
        return {
            "symbol": contract_symbol(self.book.specs[s]), "lastPrice": num(touch.mark), "bid1": num(touch.bid),
            "ask1": num(touch.ask), "fairPrice": num(touch.mark), "timestamp": now_ms(),
        }

    def contract_body(self, spec: SymbolSpec) -> dict[str, Any]:
        venue = self.venue
        return {
            "symbol": contract_symbol(spec), "displayName": f"{contract_symbol(spec)}永续",
            "displayNameEn": f"{contract_symbol(spec)} PERPETUAL", "positionOpenType": 3,
            "baseCoin": spec.base, "quoteCoin": spec.quote, "settleCoin": spec.quote,
            "contractSize": num(Decimal(spec.step_text)), "minLeverage": 1, "maxLeverage": pa.MAX_LEVERAGE,
            "priceScale": spec.price_decimals, "volScale": 0, "amountScale": 4,
            "priceUnit": num(Decimal(spec.tick_text)), "volUnit": 1, "minVol": 1, "maxVol": 10_000_000,
            "bidLimitPriceRate": num(Decimal("0.03")), "askLimitPriceRate": num(Decimal("0.03")),
            "takerFeeRate": num(Decimal(repr(venue.taker_fee))), "makerFeeRate": num(Decimal(repr(venue.maker_fee))),
            "maintenanceMarginRate": num(pa.MAINT_MARGIN_RATE), "initialMarginRate": num(Decimal("0.008")),
            "state": 0, "isNew": False, "isHot": False, "isHidden": False, "apiAllowed": True,
        }

    # ----- bodies
    def order_body(self, order: PerpOrder) -> dict[str, Any]:
        req, size = order.request, self._contract_size(order.request.symbol)
        side = _SIDE_OF[(req.side, req.position_side)]
        opening = not req.reduce_only
        margin = (order.cum_quote / order.leverage).quantize(pa.MARGIN_QUANTUM) if opening else Decimal(0)
        price = req.price if req.price is not None else order.avg_price
        return {
            "orderId": str(ORDER_ID_BASE + order.number), "symbol": contract_symbol(order.spec),
            "positionId": order.position_id, "price": num(price), "vol": num(req.qty / size),
            "leverage": order.leverage, "side": side, "category": 1,
            "orderType": m.TYPE_IOC if req.kind == pa.LIMIT_IOC else m.TYPE_MARKET,
            "dealAvgPrice": num(order.avg_price), "dealVol": num(order.executed / size), "orderMargin": num(0),
            "takerFee": num(order.commission), "makerFee": num(0), "profit": num(order.realized),
            "feeCurrency": ASSET, "openType": m.OPEN_ISOLATED if order.isolated else m.OPEN_CROSS,
            "state": m.STATE_COMPLETED if order.status == pa.FILLED else m.STATE_CANCELLED,
            "externalOid": req.client_order_id, "errorCode": 0, "usedMargin": num(margin),
            "createTime": order.time_ms, "updateTime": order.update_ms,
        }

    def position_body(self, api_key: str, p: PerpPosition) -> dict[str, Any]:
        size = self._contract_size(p.symbol)
        entry, im = p.entry(), p.initial_margin()
        return {
            "positionId": p.position_id, "symbol": contract_symbol(self.book.specs[p.symbol]),
            "positionType": m.POSITION_LONG if p.side == pa.LONG else m.POSITION_SHORT,
            "openType": m.OPEN_ISOLATED if p.isolated else m.OPEN_CROSS, "state": m.POSITION_HOLDING,
            "holdVol": num(abs(p.size) / size), "frozenVol": num(0), "closeVol": num(0),
            "holdAvgPrice": num(entry), "openAvgPrice": num(entry), "closeAvgPrice": num(0),
            "liquidatePrice": num(self.book.liquidation_price(api_key, p)), "oim": num(im), "im": num(im),
            "holdFee": num(p.funding), "realised": num(p.realized - p.fees), "leverage": p.leverage,
            "createTime": p.open_ms, "updateTime": p.update_ms, "autoAddIm": False,
        }

    # ----- test hook
    async def _sim_account(self, request: web.Request) -> web.Response:
        api_key = request.headers.get(m.API_KEY_HEADER, "")
        if api_key not in self.secrets:
            return refused(m.ERR_UNAUTHORIZED, "Unauthorized")
        return json_response(pa.account_listing(self.book, api_key))
