"""Binance USD-M as a draizer venue: ``BinanceUsdmOrderFormat`` (the kind's ``PerpOrderFormat``).

Part one is pure: exact request text (signatures computed here with plain ``hmac``), the documented answers of
the USD-M pages parsed exactly (tests/test_binance_futures_orders.py carries them, copied as published), errors
and throttling. Part two runs against the real simulator (``services/sim``, the only fake): a short opened by a
LIMIT IOC sell, queried, its trades and commission, the account, a reduce-only close larger than the position
that is cut (never flips), funding paid at a settlement of a 1 s funding period, and ``VenueClient`` driving the
format unchanged. Expected amounts are recomputed from the published mark with the sim's documented model
(``services/sim/perp_account.py``) and compared exactly.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import ROUND_HALF_EVEN, ROUND_UP, Decimal, localcontext
from pathlib import Path
from typing import Any, TypeVar

import msgspec
import pytest

from services.executor.venue_client import VenueClient
from services.sim.app import Simulator
from services.sim.faults import FaultError
from shared.errors import ProtocolError, VenueError
from shared.http.client import HttpPool, HttpResponse
from shared.messages import SIDE_BUY, SIDE_SELL
from shared.registry import Registry
from shared.venues import order_format
from shared.venues.binance.futures_rest import BinanceUsdmOrderFormat
from shared.venues.common import (
    ANSWER_OK,
    ANSWER_REJECTED,
    ANSWER_THROTTLED,
    ANSWER_UNKNOWN,
    EXPIRED,
    FILLED,
    NEW,
    ORDER_LIMIT_IOC,
    ORDER_MARKET,
    REJECTED,
    UNKNOWN,
    AccountInfo,
    HttpRequest,
    RateHeaders,
    RequestWeights,
    SymbolRules,
    TradeFill,
)
from shared.venues.perp import FundingPaymentInfo, PerpAccountInfo, PerpOrderFormat, PerpPositionInfo
from tests.conformance.table import USDM_FILLED, USDM_NEW_ORDER
from tests.sim_kit import DEADLINE_S, sim_config, top
from tests.test_binance_futures_orders import (
    ACCOUNT_V3_DOC,
    EXCHANGE_INFO_DOC,
    FUNDING,
    INCOME_DOC,
    OPEN_ORDERS_DOC,
    POSITION_V3_HEDGE_DOC,
)

D = Decimal
# general-info's HMAC example key and secret, and its timestamp
KEY = "dbefbc809e3e83c283a984c3a1459732ea7db1360ca80c5c2c8867408d28cc83"
SECRET = "2b5eb11e18796d12d88f13dc27dbbd02c2cc51ff7059765ed9821957d82bb4d9"
TS = 1591702613943
AUTH = {"api_key": KEY, "api_secret": SECRET, "timestamp_ms": TS, "recv_window_ms": 5000}
TAIL = f"recvWindow=5000&timestamp={TS}"
FMT = BinanceUsdmOrderFormat()

# Account Trade List's response example, as published (its paid commission written negative).
USER_TRADES_DOC = b"""[
  {"buyer": false, "commission": "-0.07819010", "commissionAsset": "USDT", "id": 698759, "maker": false,
   "orderId": 25851813, "price": "7819.01", "qty": "0.002", "quoteQty": "15.63802", "realizedPnl": "-0.91539999",
   "side": "SELL", "positionSide": "SHORT", "symbol": "BTCUSDT", "time": 1569514978020}
]"""
LEVERAGE_DOC = b'{"leverage": 21, "maxNotionalValue": "1000000", "symbol": "BTCUSDT"}'  # Change Initial Leverage
MARGIN_TYPE_DOC = b'{"code": 200, "msg": "success"}'  # Change Margin Type
CANCEL_ALL_DOC = b'{"code": 200, "msg": "The operation of cancel all open order is done."}'  # Cancel All Open Orders


def signed(method: str, path: str, query: str) -> HttpRequest:
    """The expected request, signed apart from the code under test."""
    signature = hmac.new(SECRET.encode(), query.encode(), hashlib.sha256).hexdigest()
    return HttpRequest(method, f"{path}?{query}&signature={signature}", [("X-MBX-APIKEY", KEY)], b"")


# ----- the declaration
def test_the_kind_declares_this_format_as_a_perp_order_format() -> None:
    assert isinstance(order_format("binance_usdm"), BinanceUsdmOrderFormat)
    fmt = BinanceUsdmOrderFormat()
    perp: PerpOrderFormat = fmt  # the protocol's shape (checked by type checkers; the calls below at run time)
    assert (perp.kind, perp.quote_asset) == ("binance_usdm", "USDT")
    assert perp.weights == RequestWeights(0, 1, 1, 1, 40, 1, 5, 5, 5, 1, 1, 5)  # each USD-M endpoint's page
    assert (fmt.perp_account_weights, fmt.funding_income_weight, fmt.setup_weights) == ((5, 5, 5), 30, (1, 1))
    assert fmt.not_found_codes == {-2013, -2011} and fmt.timestamp_codes == {-1021}


# ----- requests: exact text
def test_new_limit_ioc_and_market_orders() -> None:
    req = FMT.build_new_order(symbol="BTCUSDT", side="SELL", price="97000.10", qty="0.010", client_order_id="dz1",
                              **AUTH)
    assert req == signed("POST", "/fapi/v1/order", "symbol=BTCUSDT&side=SELL&type=LIMIT&timeInForce=IOC"
                         f"&quantity=0.010&price=97000.10&newClientOrderId=dz1&newOrderRespType=RESULT&{TAIL}")
    market = FMT.build_new_order(symbol="BTCUSDT", side="BUY", price="1", qty="0.5", client_order_id="dz2",
                                 order_type=ORDER_MARKET, **AUTH)  # a MARKET order's price is ignored
    assert market == signed("POST", "/fapi/v1/order", "symbol=BTCUSDT&side=BUY&type=MARKET&quantity=0.5"
                            f"&newClientOrderId=dz2&newOrderRespType=RESULT&{TAIL}")


def test_reduce_only_is_sent_only_when_asked() -> None:
    close = FMT.build_new_perp_order(symbol="BTCUSDT", side="BUY", price=None, qty="0.020", client_order_id="dz3",
                                     reduce_only=True, order_type=ORDER_MARKET, **AUTH)
    assert close == signed("POST", "/fapi/v1/order", "symbol=BTCUSDT&side=BUY&type=MARKET&quantity=0.020"
                           f"&reduceOnly=true&newClientOrderId=dz3&newOrderRespType=RESULT&{TAIL}")
    opening = FMT.build_new_perp_order(symbol="BTCUSDT", side="SELL", price="9000", qty="1", client_order_id="dz4",
                                       reduce_only=False, order_type=ORDER_LIMIT_IOC, **AUTH)
    assert opening == FMT.build_new_order(symbol="BTCUSDT", side="SELL", price="9000", qty="1",
                                          client_order_id="dz4", **AUTH)
    assert "reduceOnly" not in opening.path  # hedge mode refuses the parameter even as false


def test_decimals_are_plain_text_and_floats_are_refused() -> None:
    req = FMT.build_new_order(symbol="BTCUSDT", side="BUY", price=D("9E+3"), qty=D("1E-3"),  # type: ignore[arg-type]
                              client_order_id="a", **AUTH)
    assert "&quantity=0.001&price=9000&" in req.path
    with pytest.raises(TypeError):
        FMT.build_new_order(symbol="BTCUSDT", side="BUY", price=0.1, qty="1",  # type: ignore[arg-type]
                            client_order_id="a", **AUTH)


@pytest.mark.parametrize(
    ("change", "match"),
    [({"side": "buy"}, "side"), ({"client_order_id": "a b"}, "client order id"), ({"price": None}, "price"),
     ({"qty": ""}, "quantity"), ({"order_type": "stop"}, "order type")],
)
def test_new_order_argument_checks(change: dict[str, Any], match: str) -> None:
    args: dict[str, Any] = {"symbol": "BTCUSDT", "side": "BUY", "price": "1", "qty": "1", "client_order_id": "a",
                            **AUTH, **change}
    with pytest.raises(ValueError, match=match):
        FMT.build_new_order(**args)


def test_reads_cancels_and_trades() -> None:
    by_id = f"symbol=BTCUSDT&origClientOrderId=dz1&{TAIL}"
    assert FMT.build_query_order(symbol="BTCUSDT", client_order_id="dz1", **AUTH) == signed(
        "GET", "/fapi/v1/order", by_id)
    assert FMT.build_cancel_order(symbol="BTCUSDT", client_order_id="dz1", **AUTH) == signed(
        "DELETE", "/fapi/v1/order", by_id)
    assert FMT.build_cancel_all(symbol="BTCUSDT", **AUTH) == signed(
        "DELETE", "/fapi/v1/allOpenOrders", f"symbol=BTCUSDT&{TAIL}")
    assert FMT.build_open_orders(symbol=None, **AUTH) == signed("GET", "/fapi/v1/openOrders", TAIL)
    assert FMT.build_account(**AUTH) == signed("GET", "/fapi/v3/account", TAIL)
    assert FMT.build_my_trades(symbol="BTCUSDT", order_id="25851813", **AUTH) == signed(
        "GET", "/fapi/v1/userTrades", f"symbol=BTCUSDT&orderId=25851813&{TAIL}")
    assert FMT.build_my_trades(symbol="BTCUSDT", order_id=None, **AUTH) == signed(
        "GET", "/fapi/v1/userTrades", f"symbol=BTCUSDT&{TAIL}")
    assert FMT.build_exchange_info(["BTCUSDT"]) == HttpRequest("GET", "/fapi/v1/exchangeInfo", [], b"")
    assert FMT.build_time() == HttpRequest("GET", "/fapi/v1/time", [], b"")


def test_perp_requests() -> None:
    assert FMT.build_perp_account(**AUTH) == [signed("GET", "/fapi/v3/account", TAIL),
                                              signed("GET", "/fapi/v3/positionRisk", TAIL),
                                              signed("GET", "/fapi/v1/symbolConfig", TAIL)]
    assert FMT.build_funding_income(start_ms=1591700000000, **AUTH) == signed(
        "GET", "/fapi/v1/income", f"incomeType=FUNDING_FEE&startTime=1591700000000&limit=1000&{TAIL}")
    assert FMT.build_setup(symbol="BTCUSDT", leverage=3, isolated=True, **AUTH) == [
        signed("POST", "/fapi/v1/leverage", f"symbol=BTCUSDT&leverage=3&{TAIL}"),
        signed("POST", "/fapi/v1/marginType", f"symbol=BTCUSDT&marginType=ISOLATED&{TAIL}")]
    assert FMT.build_setup(symbol="BTCUSDT", leverage=1, isolated=False, **AUTH)[1] == signed(
        "POST", "/fapi/v1/marginType", f"symbol=BTCUSDT&marginType=CROSSED&{TAIL}")
    with pytest.raises(ValueError):
        FMT.build_setup(symbol="BTCUSDT", leverage=126, isolated=False, **AUTH)


# ----- answers
def test_order_answers_state_executed_quantity_and_quote_exactly() -> None:
    a = FMT.parse_order(200, USDM_NEW_ORDER, {})
    assert (a.kind, a.status, a.order_id, a.client_order_id, a.fills) == (ANSWER_OK, NEW, "22542179", "testOrder",
                                                                          None)
    f = FMT.parse_order(200, USDM_FILLED, {})
    assert (f.status, f.executed_qty, f.cum_quote, f.fills, f.final) == (FILLED, D("0.5"), D("12500.25"), None, True)
    cut = USDM_FILLED.replace(b'"status":"FILLED"', b'"status":"EXPIRED"')  # a reduce-only order cut to the position
    assert FMT.parse_order(200, cut, {}).status == EXPIRED


@pytest.mark.parametrize(
    ("http", "body", "kind", "code"),
    [(400, b'{"code":-2019,"msg":"Margin is insufficient."}', ANSWER_REJECTED, -2019),
     (400, b'{"code":-2022,"msg":"ReduceOnly Order is rejected."}', ANSWER_REJECTED, -2022),
     (400, b'{"code":-1021,"msg":"Timestamp for this request is outside of the recvWindow."}', ANSWER_REJECTED, -1021),
     (503, b'{"code":-1000,"msg":"Unknown error, please check your request or try again later."}', ANSWER_UNKNOWN,
      -1000),
     (503, b'{"code":-1008,"msg":"Request throttled by system-level protection."}', ANSWER_THROTTLED, -1008),
     (429, b'{"code":-1003,"msg":"Too many requests."}', ANSWER_THROTTLED, -1003),
     (418, b'{"code":-1003,"msg":"Way too many requests; IP banned."}', ANSWER_THROTTLED, -1003),
     (200, b"not json", ANSWER_UNKNOWN, 0)],
)
def test_errors_and_throttling(http: int, body: bytes, kind: str, code: int) -> None:
    a = FMT.parse_order(http, body, {"Retry-After": "4"})
    assert (a.kind, a.error_code, a.http_status) == (kind, code, http)
    assert a.status == (REJECTED if kind in (ANSWER_REJECTED, ANSWER_THROTTLED) else UNKNOWN)
    assert a.retry_after_s == (4.0 if http in (429, 418) else 0.0)
    assert (a.error_code in FMT.timestamp_codes) == (code == -1021)


def test_no_such_order_and_usage_headers() -> None:
    for body in (b'{"code":-2013,"msg":"Order does not exist."}', b'{"code":-2011,"msg":"Unknown order sent."}'):
        assert FMT.not_found(FMT.parse_order(400, body, {}, new_order=False))
    headers = {"X-MBX-USED-WEIGHT-1M": "15", "X-MBX-ORDER-COUNT-10S": "2", "X-MBX-ORDER-COUNT-1M": "9",
               "Retry-After": "3"}
    assert FMT.parse_rate_headers(headers) == RateHeaders(15, 2, None, 3.0)


def test_cancel_all_acknowledgement_is_an_empty_list_and_open_orders_a_list() -> None:
    assert FMT.parse_order_list(200, CANCEL_ALL_DOC, {}) == []
    [o] = FMT.parse_order_list(200, OPEN_ORDERS_DOC, {})
    assert (o.order_id, o.status) == ("1917641", NEW)
    with pytest.raises(VenueError) as exc:
        FMT.parse_order_list(400, b'{"code":-1121,"msg":"Invalid symbol."}', {})
    assert exc.value.code == -1121
    with pytest.raises(VenueError):  # an acknowledgement that is not one
        FMT.parse_order_list(200, b'{"code":-2011,"msg":"Unknown order sent."}', {})
    with pytest.raises(ProtocolError):
        FMT.parse_order_list(200, b"[1]", {})


def test_account_balances_and_fees() -> None:
    info = FMT.parse_account(ACCOUNT_V3_DOC, fallback=(D("0.0002"), D("0.0005")))
    assert info == AccountInfo({"USDT": (D("23.72469206"), D(0))}, D("0.0002"), D("0.0005"))
    in_use = json.loads(ACCOUNT_V3_DOC)
    in_use["assets"][0]["availableBalance"] = "20.00000000"
    info = FMT.parse_account(json.dumps(in_use).encode(), fallback=(D(0), D("0.0004")))
    assert info.balances == {"USDT": (D("20"), D("3.72469206"))}  # the wallet beyond what is available: locked
    with pytest.raises(ValueError, match="fallback"):
        FMT.parse_account(ACCOUNT_V3_DOC)
    with pytest.raises(VenueError):
        FMT.parse_account(b'{"code":-2015,"msg":"Invalid API-key, IP, or permissions for action."}', (D(0), D(0)))


def test_user_trades_documented_answer() -> None:
    assert FMT.parse_my_trades(USER_TRADES_DOC) == [
        TradeFill("698759", D("7819.01"), D("0.002"), D("0.07819010"), "USDT")]
    live = USER_TRADES_DOC.replace(b'"-0.07819010"', b'"0.00113016"').replace(b'"USDT", "id"', b'"BNB", "id"')
    assert FMT.parse_my_trades(live) == [TradeFill("698759", D("7819.01"), D("0.002"), D("0.00113016"), "BNB")]
    for bad in (b"{}", b'[{"id":1,"price":"x","qty":"1"}]', b'[{"id":1,"price":"1","qty":"-1"}]'):
        with pytest.raises(ProtocolError):
            FMT.parse_my_trades(bad)


def test_exchange_info_rules_hold_for_limit_and_market_orders() -> None:
    assert FMT.parse_exchange_info(EXCHANGE_INFO_DOC) == {
        "BLZUSDT": SymbolRules("BLZUSDT", D("0.0001"), D("1"), D("1"), D("5"), 4, 0)}
    coarser = EXCHANGE_INFO_DOC.replace(b'"maxQty": "590119", "minQty": "1", "stepSize": "1"',
                                        b'"maxQty": "590119", "minQty": "20", "stepSize": "10"')
    assert FMT.parse_exchange_info(coarser)["BLZUSDT"] == SymbolRules("BLZUSDT", D("0.0001"), D("10"), D("20"),
                                                                      D("5"), 4, 0)
    fine = json.loads(EXCHANGE_INFO_DOC)
    fine["symbols"][0]["filters"][1].update(stepSize="0.001", minQty="0.001")  # LOT_SIZE
    fine["symbols"][0]["filters"][2].update(stepSize="0.01", minQty="0.01")  # MARKET_LOT_SIZE
    assert FMT.parse_exchange_info(json.dumps(fine).encode())["BLZUSDT"] == SymbolRules(
        "BLZUSDT", D("0.0001"), D("0.01"), D("0.01"), D("5"), 4, 2)


# symbolConfig for the positions of POSITION_V3_HEDGE_DOC (not a documented example: the documented shape)
SYMBOL_CONFIGS = json.dumps([
    {"symbol": "ADAUSDT", "marginType": "CROSSED", "isAutoAddMargin": False, "leverage": 10,
     "maxNotionalValue": "1000000"},
    {"symbol": "COMPUSDT", "marginType": "CROSSED", "isAutoAddMargin": False, "leverage": 20,
     "maxNotionalValue": "500000"},
]).encode()


def test_perp_account_from_the_documented_answers() -> None:
    info = FMT.parse_perp_account([ACCOUNT_V3_DOC, POSITION_V3_HEDGE_DOC, SYMBOL_CONFIGS])
    assert info == PerpAccountInfo(
        D("23.72469206"), D("23.72469206"), D("23.72469206"), D(0), (
            PerpPositionInfo("ADAUSDT", D("30"), D("0.385"), D("0.41047590"), D(0), 10, False, D("0.61571385"),
                             D("0.76427700")),
            PerpPositionInfo("COMPUSDT", D("-1.000"), D("70.92841"), D("49.72023376"), D("2260.56757210"), 20, False,
                             D("2.48601168"), D("21.20817624")),
        ))
    flat = json.loads(POSITION_V3_HEDGE_DOC)
    flat[0]["positionAmt"] = "0"
    isolated = SYMBOL_CONFIGS.replace(b'"CROSSED", "isAutoAddMargin": false, "leverage": 20',
                                      b'"ISOLATED", "isAutoAddMargin": false, "leverage": 20')
    flat[1]["isolatedWallet"] = "2.5"
    info = FMT.parse_perp_account([ACCOUNT_V3_DOC, json.dumps(flat).encode(), isolated])
    assert [(p.symbol, p.isolated, p.margin) for p in info.positions] == [("COMPUSDT", True, D("2.5"))]
    with pytest.raises(ProtocolError, match="symbolConfig"):
        FMT.parse_perp_account([ACCOUNT_V3_DOC, POSITION_V3_HEDGE_DOC, b"[]"])
    with pytest.raises(ValueError):
        FMT.parse_perp_account([ACCOUNT_V3_DOC])


def test_funding_income() -> None:
    assert FMT.parse_funding_income(FUNDING) == [
        FundingPaymentInfo("2345234523", "BTCUSDT", D("0.01932500"), 1591718400000)]
    assert FMT.parse_funding_income(b"[]") == []
    with pytest.raises(ProtocolError, match="TRANSFER"):  # Get Income History's example: not funding
        FMT.parse_funding_income(INCOME_DOC)
    with pytest.raises(ProtocolError, match="BNB"):
        FMT.parse_funding_income(FUNDING.replace(b'"USDT"', b'"BNB"'))


def test_setup_answers() -> None:
    for http, body in ((200, LEVERAGE_DOC), (200, MARGIN_TYPE_DOC),
                       (400, b'{"code":-4046,"msg":"No need to change margin type."}'),
                       (400, b'{"code":-4059,"msg":"No need to change position side."}')):
        assert FMT.parse_setup(http, body) is None
    with pytest.raises(VenueError) as exc:
        FMT.parse_setup(400, b'{"code":-4048,"msg":"Margin type cannot be changed if there exists position."}')
    assert (exc.value.code, exc.value.http_status) == (-4048, 400)
    with pytest.raises(VenueError):
        FMT.parse_setup(200, b'{"code":-4028,"msg":"Leverage 200 is not valid"}')
    with pytest.raises(ProtocolError):
        FMT.parse_setup(200, b"{}")


# ----- against the simulator
VENUE = "binance_perp"
SKEY, SSECRET = "uk1", "us1"
START = D(1_000_000)  # sim.starting_balance_usd
TAKER = D("0.0005")  # binance_perp's taker fee (default config)
MMR = D("0.004")  # the sim's maintenance margin rate
EIGHT = D("1e-8")
T = TypeVar("T")


def sim_auth() -> dict[str, Any]:
    return {"api_key": SKEY, "api_secret": SSECRET, "timestamp_ms": time.time_ns() // 1_000_000,
            "recv_window_ms": 5000}


async def send(sim: Simulator, req: HttpRequest) -> HttpResponse:
    pool = HttpPool(sim.rest_url(VENUE), size=1)
    try:
        return await asyncio.wait_for(pool.request(req.method, req.path, req.headers, req.body), DEADLINE_S)
    finally:
        await pool.close()


async def ok_body(sim: Simulator, req: HttpRequest) -> bytes:
    resp = await send(sim, req)
    assert resp.status == 200, resp.body
    return resp.body


async def perp_account(sim: Simulator) -> PerpAccountInfo:
    return FMT.parse_perp_account([await ok_body(sim, r) for r in FMT.build_perp_account(**sim_auth())])


async def poll(fetch: Callable[[], Awaitable[T]], done: Callable[[T], bool], what: str) -> T:
    """``fetch`` again until ``done``; fail after DEADLINE_S."""
    deadline = time.monotonic() + DEADLINE_S
    while True:
        got = await fetch()
        if done(got):
            return got
        assert time.monotonic() < deadline, f"timed out waiting for {what}: last {got!r}"
        await asyncio.sleep(0.05)  # poll pacing


def fee(notional: Decimal) -> Decimal:
    return (notional * TAKER).quantize(EIGHT, ROUND_UP)


@pytest.fixture
async def still(tmp_path: Path) -> AsyncIterator[Simulator]:
    async with Simulator(sim_config(tmp_path), {VENUE: (SKEY, SSECRET)}, emit_quotes=False) as s:
        s.push_funding()  # a published mark: the perp book's touch until the next push
        yield s


async def test_short_query_trades_account_and_a_reduce_only_close_that_never_flips(still: Simulator) -> None:
    sim = still
    for req in FMT.build_setup(symbol="BTCUSDT", leverage=5, isolated=False, **sim_auth()):
        resp = await send(sim, req)  # the margin type is cross already: -4046, which is fine
        assert FMT.parse_setup(resp.status, resp.body) is None
    rules = FMT.parse_exchange_info(await ok_body(sim, FMT.build_exchange_info(["BTCUSDT"])))["BTCUSDT"]
    assert (rules.tick, rules.step) == (D("0.01"), D("0.00001"))
    bid_text, _, ask_text, _ = top(sim, VENUE)
    bid, ask, mark = D(bid_text), D(ask_text), D(sim.funding(VENUE, "BTCUSDT")[2])
    q = D("0.01")

    # open: a LIMIT IOC sell at the bid fills whole there
    resp = await send(sim, FMT.build_new_order(symbol="BTCUSDT", side="SELL", price=bid_text, qty="0.01000",
                                               client_order_id="usdm-open", **sim_auth()))
    opened = FMT.parse_order(resp.status, resp.body, resp.headers)
    assert (opened.kind, opened.status, opened.executed_qty, opened.cum_quote, opened.fills) == (
        ANSWER_OK, FILLED, q, q * bid, None)
    assert FMT.parse_rate_headers(resp.headers).orders_10s == 1
    resp = await send(sim, FMT.build_query_order(symbol="BTCUSDT", client_order_id="usdm-open", **sim_auth()))
    assert FMT.parse_order(resp.status, resp.body, resp.headers, new_order=False) == opened._replace(
        http_status=resp.status)
    open_fee = fee(q * bid)
    [trade] = FMT.parse_my_trades(await ok_body(sim, FMT.build_my_trades(symbol="BTCUSDT", order_id=opened.order_id,
                                                                         **sim_auth())))
    assert (trade.price, trade.qty, trade.commission, trade.commission_asset) == (bid, q, open_fee, "USDT")

    # the account: the position is -q exactly, margins by the sim's model
    wallet = START - open_fee
    cost = q * bid
    im = (cost / 5).quantize(EIGHT, ROUND_UP)
    unrealized = -q * mark + cost
    available = wallet + unrealized - im
    with localcontext() as ctx:  # cross: the whole wallet backs the position
        ctx.prec = 60
        liquidation = ((bid + wallet / q) / (1 + MMR)).quantize(EIGHT, ROUND_HALF_EVEN)
    assert await perp_account(sim) == PerpAccountInfo(
        wallet, wallet + unrealized, available, q * mark * MMR,
        (PerpPositionInfo("BTCUSDT", -q, bid, mark, liquidation, 5, False, im, unrealized),))
    info = FMT.parse_account(await ok_body(sim, FMT.build_account(**sim_auth())), fallback=(D("0.0002"), TAKER))
    assert info == AccountInfo({"USDT": (available, wallet - available)}, D("0.0002"), TAKER)

    # close: a reduce-only buy of twice the position is cut to it, the rest expires; the position is flat
    resp = await send(sim, FMT.build_new_perp_order(
        symbol="BTCUSDT", side="BUY", price=ask_text, qty="0.02000", client_order_id="usdm-close", reduce_only=True,
        order_type=ORDER_LIMIT_IOC, **sim_auth()))
    closed = FMT.parse_order(resp.status, resp.body, resp.headers)
    assert (closed.kind, closed.status, closed.venue_status, closed.executed_qty, closed.cum_quote) == (
        ANSWER_OK, EXPIRED, "EXPIRED", q, q * ask)
    close_fee = fee(q * ask)
    [trade] = FMT.parse_my_trades(await ok_body(sim, FMT.build_my_trades(symbol="BTCUSDT", order_id=closed.order_id,
                                                                         **sim_auth())))
    assert (trade.qty, trade.commission) == (q, close_fee)
    after = await perp_account(sim)
    assert after.positions == ()  # not flipped to a long of the excess
    assert after.wallet == START - open_fee - close_fee + q * (bid - ask)  # the short's loss, realized
    all_trades = FMT.parse_my_trades(await ok_body(sim, FMT.build_my_trades(symbol="BTCUSDT", order_id=None,
                                                                            **sim_auth())))
    assert [t.qty for t in all_trades] == [q, q]

    # nothing is left open; cancel all answers an acknowledgement: []
    resp = await send(sim, FMT.build_cancel_all(symbol="BTCUSDT", **sim_auth()))
    assert FMT.parse_order_list(resp.status, resp.body, resp.headers) == []
    resp = await send(sim, FMT.build_open_orders(symbol="BTCUSDT", **sim_auth()))
    assert FMT.parse_order_list(resp.status, resp.body, resp.headers) == []
    resp = await send(sim, FMT.build_new_perp_order(
        symbol="BTCUSDT", side="BUY", price=None, qty="0.01000", client_order_id="usdm-none", reduce_only=True,
        order_type=ORDER_MARKET, **sim_auth()))
    refused = FMT.parse_order(resp.status, resp.body, resp.headers)  # nothing to reduce
    assert (refused.kind, refused.status, refused.error_code) == (ANSWER_REJECTED, REJECTED, -2022)


async def test_isolated_setup_then_the_position_margin_is_its_isolated_wallet(still: Simulator) -> None:
    sim = still
    for req in FMT.build_setup(symbol="BTCUSDT", leverage=4, isolated=True, **sim_auth()):
        resp = await send(sim, req)
        assert FMT.parse_setup(resp.status, resp.body) is None
    resp = await send(sim, FMT.build_new_order(symbol="BTCUSDT", side="SELL", price=None, qty="0.00500",
                                               client_order_id="usdm-iso", order_type=ORDER_MARKET, **sim_auth()))
    sold = FMT.parse_order(resp.status, resp.body, resp.headers)
    assert sold.status == FILLED
    [pos] = (await perp_account(sim)).positions
    assert (pos.size, pos.leverage, pos.isolated) == (D("-0.005"), 4, True)
    assert pos.margin == (sold.cum_quote / 4).quantize(EIGHT, ROUND_UP)
    resp = await send(sim, FMT.build_setup(symbol="BTCUSDT", leverage=4, isolated=False, **sim_auth())[1])
    with pytest.raises(VenueError) as exc:  # a position is open: the margin type cannot change
        FMT.parse_setup(resp.status, resp.body)
    assert exc.value.code == -4048


async def test_the_simulated_trade_list_filters_as_documented(still: Simulator) -> None:
    sim = still
    for i in range(3):
        resp = await send(sim, FMT.build_new_order(symbol="BTCUSDT", side="SELL", price=None, qty="0.00100",
                                                   client_order_id=f"usdm-t{i}", order_type=ORDER_MARKET,
                                                   **sim_auth()))
        assert resp.status == 200, resp.body
    everything = FMT.parse_my_trades(await ok_body(sim, FMT.build_my_trades(symbol="BTCUSDT", order_id=None,
                                                                            **sim_auth())))
    ids = [t.trade_id for t in everything]
    assert len(ids) == 3 and ids == sorted(ids, key=int)  # oldest first

    async def trades(*params: tuple[str, str]) -> HttpResponse:
        req = FMT.wire.signed("GET", "/fapi/v1/userTrades", [("symbol", "BTCUSDT"), *params], SKEY, SSECRET,
                              time.time_ns() // 1_000_000, 5000)
        return await send(sim, req)

    newest = await trades(("limit", "1"))  # without a start: the most recent
    assert [t.trade_id for t in FMT.parse_my_trades(newest.body)] == ids[-1:]
    from_second = await trades(("fromId", ids[1]), ("limit", "1"))  # from an id: the oldest from there on
    assert [t.trade_id for t in FMT.parse_my_trades(from_second.body)] == ids[1:2]
    both = await trades(("fromId", ids[1]), ("startTime", "1"))
    assert (both.status, FMT.parse_error(both.status, both.body)[0]) == (400, -1128)
    with pytest.raises(FaultError):  # the USD-M API carries rate_limit faults only
        sim.inject_order_fault(VENUE, "reject")


async def test_funding_income_after_a_settlement(tmp_path: Path) -> None:
    # Funding every 1 s, pushes every 200 ms, the timer running: settlements come by themselves.
    cfg = sim_config(tmp_path, funding_period_s=1, quotes_per_second=50.0, funding_push_interval_ms=200)
    async with Simulator(cfg, {VENUE: (SKEY, SSECRET)}) as sim:
        # From a minute back: a boundary the timer settles a moment late still pays the new position at its
        # boundary's time, which may precede the order (the account is new: nothing else is in that minute).
        start_ms = time.time_ns() // 1_000_000 - 60_000
        resp = await send(sim, FMT.build_new_order(symbol="BTCUSDT", side="SELL", price=None, qty="0.01000",
                                                   client_order_id="usdm-fund", order_type=ORDER_MARKET,
                                                   **sim_auth()))
        sold = FMT.parse_order(resp.status, resp.body, resp.headers)
        assert sold.status == FILLED

        async def income() -> list[FundingPaymentInfo]:
            return FMT.parse_funding_income(await ok_body(sim, FMT.build_funding_income(start_ms=start_ms,
                                                                                        **sim_auth())))

        paid = await poll(income, bool, "a funding payment")
        venue_side = {str(f["tran_id"]): f for f in sim.perp_account(VENUE, SKEY)["funding"]}
        for p in paid:  # the sim's own record of each: exact, and -size x mark x rate for the short
            f = venue_side[p.payment_id]
            assert (p.symbol, p.amount, p.time_ms) == ("BTCUSDT", D(f["amount"]), f["time"])
            assert p.amount == D(f["position_value"]) * D(f["rate"])  # |size| x mark x rate: a short receives
            assert p.time_ms % 1000 == 0  # at a period boundary

        # the wallet is the start, less the commission, plus every payment (read when no settlement came between)
        async def wallet_and_income() -> tuple[Decimal, list[FundingPaymentInfo], list[FundingPaymentInfo]]:
            before = await income()
            wallet = (await perp_account(sim)).wallet
            return wallet, before, await income()

        wallet, before, _ = await poll(wallet_and_income, lambda x: x[1] == x[2], "a quiet moment")
        [trade] = FMT.parse_my_trades(await ok_body(sim, FMT.build_my_trades(symbol="BTCUSDT", order_id=sold.order_id,
                                                                             **sim_auth())))
        assert wallet == START - trade.commission + sum((p.amount for p in before), D(0))


async def test_venue_client_drives_the_format_unchanged(
    still: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DRAIZER_USDM_TEST_KEY", SKEY)
    monkeypatch.setenv("DRAIZER_USDM_TEST_SECRET", SSECRET)
    cfg = still.cfg
    venue = next(v for v in cfg.venues if v.name == VENUE)
    venue = msgspec.structs.replace(venue, rest_url=still.rest_url(VENUE), api_key_env="DRAIZER_USDM_TEST_KEY",
                                    api_secret_env="DRAIZER_USDM_TEST_SECRET")
    client = VenueClient(venue, Registry(cfg), 5.0)
    try:
        await asyncio.wait_for(client.start(), DEADLINE_S)
        s = client.registry.symbol_id["BTCUSDT"]
        assert client.rules_for(s).step == D("0.00001") and (client.maker_fee, client.taker_fee) == (D("0.0002"),
                                                                                                     TAKER)
        assert client.budget.orders_full_10s == 200 and client.budget.orders_full_1d == 0  # 1200 per minute / 6
        # Perpetual orders take the general path (a reduce-only flag per order; a carry is no microsecond race).
        assert client.template(s, SIDE_SELL, ORDER_LIMIT_IOC) is None
        bid_text, _, _, _ = top(still, VENUE)
        placed = await asyncio.wait_for(client.send_order(s, SIDE_SELL, "0.00100", bid_text, "vcusdm1"), DEADLINE_S)
        assert (placed.status, placed.executed_qty, placed.cum_quote) == (FILLED, D("0.001"), D("0.001") * D(bid_text))
        bought = await asyncio.wait_for(client.send_order(s, SIDE_BUY, "0.00100", None, "vcusdm2", ORDER_MARKET),
                                        DEADLINE_S)
        assert (bought.kind, bought.status) == (ANSWER_OK, FILLED)
        trades = await client.my_trades(s, placed.order_id)
        assert [t.qty for t in trades] == [D("0.001")]
        assert (await client.query_order(s, "vcusdm2")).status == FILLED
        assert client.not_found(await client.cancel_order(s, "vcusdm2"))
        assert await client.cancel_all(s) == [] and await client.open_orders(s) == []
        ask = bought.cum_quote / D("0.001")  # the MARKET buy took the ask
        wallet = START - trades[0].commission - fee(bought.cum_quote) + D("0.001") * (D(bid_text) - ask)
        assert (await client.account()).balances == {"USDT": (wallet, D(0))}  # flat again: all of it available
    finally:
        await client.close()
