"""The simulator's perpetual accounts: Binance USD-M and MEXC contract orders, positions, margin and funding.

Every request is built by the client's format classes (``BinanceFuturesOrderFormat``, ``MexcContractOrderFormat``,
the listen-key builders) and every answer read by their parsers: the sim is their exact counterpart. Expected
prices are recomputed here from the published mark (bid/ask = mark -/+ half the spread, to the tick), and every
amount is compared exactly.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_UP, Decimal
from pathlib import Path
from typing import Any

import pytest

from services.sim import perp_account as pa
from services.sim.app import Simulator
from services.sim.funding_clock import FundingClock
from services.sim.units import SymbolSpec
from shared.errors import VenueError
from shared.http.client import HttpPool, HttpResponse
from shared.venues.binance import futures_orders as bf
from shared.venues.binance import futures_user as bu
from shared.venues.binance.futures_orders import BinanceFuturesOrderFormat
from shared.venues.common import (
    ANSWER_OK,
    ANSWER_REJECTED,
    ANSWER_UNKNOWN,
    CANCELED,
    EXPIRED,
    FILLED,
    NEW,
    ORDER_LIMIT_IOC,
    ORDER_MARKET,
    HttpRequest,
)
from shared.venues.mexc import contract_orders as mc
from shared.venues.mexc.contract_orders import ContractRules, MexcContractOrderFormat
from tests.conftest import eventually_async
from tests.sim_kit import DEADLINE_S, connect, sim_config

BKEY, BSECRET = "fkey", "fsecret"
MKEY, MSECRET = "ckey", "csecret"
CREDS = {"binance_perp": (BKEY, BSECRET), "mexc_perp": (MKEY, MSECRET)}
START = Decimal(1_000_000)  # sim.starting_balance_usd
BINANCE_FEE, MEXC_FEE = Decimal("0.0005"), Decimal("0.0002")  # the perp venues' taker fees (default config)
HALF_SPREAD = Decimal("0.0001")  # spread_bps 2 / 2
TICK = Decimal("0.01")  # BTCUSDT
EIGHT = Decimal("1e-8")
B = BinanceFuturesOrderFormat()
M = MexcContractOrderFormat()


@pytest.fixture
async def sim(tmp_path: Path) -> AsyncIterator[Simulator]:
    async with Simulator(sim_config(tmp_path), CREDS, emit_quotes=False) as s:
        s.push_funding()  # a published mark: orders trade around it until the next push
        yield s


def now_ms() -> int:
    return time.time_ns() // 1_000_000


async def send(sim: Simulator, venue: str, req: HttpRequest) -> HttpResponse:
    pool = HttpPool(sim.rest_url(venue), size=1)
    try:
        return await asyncio.wait_for(pool.request(req.method, req.path, req.headers, req.body), DEADLINE_S)
    finally:
        await pool.close()


def bauth(secret: str = BSECRET, key: str = BKEY, ts_offset_ms: int = 0) -> dict[str, Any]:
    return {"api_key": key, "api_secret": secret, "timestamp_ms": now_ms() + ts_offset_ms, "recv_window_ms": 5000}


def mauth(secret: str = MSECRET, key: str = MKEY, ts_offset_ms: int = 0) -> dict[str, Any]:
    return {"api_key": key, "api_secret": secret, "timestamp_ms": now_ms() + ts_offset_ms}


def mark_of(sim: Simulator, venue: str, symbol: str = "BTCUSDT") -> Decimal:
    return Decimal(sim.funding(venue, symbol)[2])


def touch(sim: Simulator, venue: str) -> tuple[Decimal, Decimal, Decimal]:
    """(bid, ask, mark) recomputed from the published mark: the sim's perp book."""
    mark = mark_of(sim, venue)
    bid = (mark * (1 - HALF_SPREAD) / TICK).to_integral_value(ROUND_FLOOR) * TICK
    ask = (mark * (1 + HALF_SPREAD) / TICK).to_integral_value(ROUND_CEILING) * TICK
    return bid, ask, mark


def fee(notional: Decimal, rate: Decimal) -> Decimal:
    return (notional * rate).quantize(EIGHT, ROUND_UP)


# ----- Binance USD-M
async def b_order(sim: Simulator, *, side: str, qty: str, price: Decimal | None = None, cid: str | None = None,
                  reduce_only: bool = False, **auth: Any) -> bf.FuturesOrder:
    order_type = ORDER_MARKET if price is None else ORDER_LIMIT_IOC
    req = B.build_new_order(symbol="BTCUSDT", side=side, price=price, qty=qty,
                            client_order_id=cid or f"t{time.time_ns():x}", order_type=order_type,
                            reduce_only=reduce_only, **(auth or bauth()))
    resp = await send(sim, "binance_perp", req)
    return B.parse_order_detail(resp.status, resp.body, resp.headers)


async def b_positions(sim: Simulator) -> list[bf.FuturesPosition]:
    resp = await send(sim, "binance_perp", B.build_position_risk(symbol=None, **bauth()))
    return B.parse_positions(resp.status, resp.body)


async def b_account(sim: Simulator) -> bf.FuturesAccount:
    resp = await send(sim, "binance_perp", B.build_account(**bauth()))
    return B.parse_account(resp.status, resp.body)


async def test_binance_short_by_market_and_limit_ioc_moves_position_and_margin_exactly(sim: Simulator) -> None:
    info = await send(sim, "binance_perp", B.build_exchange_info())
    rules = B.parse_exchange_info_full(info.body).rules["BTCUSDT"]
    assert (rules.rules.tick, rules.rules.step, rules.contract_type) == (TICK, Decimal("0.00001"), "PERPETUAL")
    bid, ask, mark = touch(sim, "binance_perp")

    sold = await b_order(sim, side="SELL", qty="0.01")
    assert sold.answer.kind == ANSWER_OK and sold.answer.status == FILLED
    assert (sold.answer.executed_qty, sold.avg_price, sold.answer.cum_quote) == (Decimal("0.01"), bid, bid / 100)
    assert sold.order_type == "MARKET" and sold.position_side == "BOTH" and not sold.reduce_only

    ioc = await b_order(sim, side="SELL", qty="0.02", price=bid)  # reaches the bid: fills whole there
    assert (ioc.answer.status, ioc.answer.executed_qty, ioc.avg_price) == (FILLED, Decimal("0.02"), bid)
    missed = await b_order(sim, side="SELL", qty="0.02", price=ask)  # above the bid: nothing, expired
    assert (missed.answer.status, missed.answer.executed_qty) == (EXPIRED, 0)

    size, cost = Decimal("-0.03"), Decimal("0.03") * bid
    commissions = fee(Decimal("0.01") * bid, BINANCE_FEE) + fee(Decimal("0.02") * bid, BINANCE_FEE)
    [pos] = await b_positions(sim)
    assert (pos.symbol, pos.amount, pos.entry_price, pos.mark_price) == ("BTCUSDT", size, bid, mark)
    assert pos.unrealized_pnl == size * mark + cost and pos.notional == size * mark
    acct = await b_account(sim)
    im = cost / 20  # the default leverage
    assert acct.wallet_balance == START - commissions
    assert acct.initial_margin == im and acct.unrealized_pnl == pos.unrealized_pnl
    assert acct.available_balance == START - commissions + pos.unrealized_pnl - im
    assert acct.positions[0].amount == size
    # cross: liquidation where wallet + size x (P - entry) = |size| x P x 0.4 %
    wallet = START - commissions
    assert abs(pos.liquidation_price - (bid + wallet / Decimal("0.03")) / Decimal("1.004")) < EIGHT
    income = await send(sim, "binance_perp", B.build_income(income_type="COMMISSION", **bauth()))
    assert sum(i.amount for i in B.parse_income(income.status, income.body)) == -commissions


async def test_binance_reduce_only_is_cut_to_the_position_or_refused_never_flips(sim: Simulator) -> None:
    await b_order(sim, side="SELL", qty="0.01")
    _, ask, _ = touch(sim, "binance_perp")
    cut = await b_order(sim, side="BUY", qty="0.03", reduce_only=True)
    assert cut.answer.kind == ANSWER_OK and cut.reduce_only
    assert (cut.answer.status, cut.answer.executed_qty, cut.orig_qty, cut.avg_price) == (
        EXPIRED, Decimal("0.01"), Decimal("0.03"), ask)
    assert await b_positions(sim) == []  # flat, not long 0.02
    again = await b_order(sim, side="BUY", qty="0.01", reduce_only=True)  # nothing left to reduce
    assert (again.answer.kind, again.answer.error_code) == (ANSWER_REJECTED, bf.ERR_REDUCE_ONLY)
    await b_order(sim, side="SELL", qty="0.01")
    same_side = await b_order(sim, side="SELL", qty="0.01", reduce_only=True)  # would grow the short
    assert (same_side.answer.kind, same_side.answer.error_code) == (ANSWER_REJECTED, bf.ERR_REDUCE_ONLY)
    close = B.build_close_position(symbol="BTCUSDT", position_amt=Decimal("-0.01"), step=Decimal("0.00001"),
                                   client_order_id="close-1", **bauth())
    resp = await send(sim, "binance_perp", close)
    assert B.parse_order(resp.status, resp.body, resp.headers).status == FILLED
    assert await b_positions(sim) == []


async def test_binance_refuses_insufficient_margin_and_a_duplicate_client_id(sim: Simulator) -> None:
    resp = await send(sim, "binance_perp", B.build_leverage(symbol="BTCUSDT", leverage=1, **bauth()))
    assert B.parse_leverage(resp.status, resp.body).leverage == 1
    big = await b_order(sim, side="SELL", qty="11", cid="too-big")  # ~1.07M of notional at 1x on 1M
    assert (big.answer.kind, big.answer.status, big.answer.error_code) == (ANSWER_REJECTED, "REJECTED", bf.ERR_MARGIN)
    query = await send(sim, "binance_perp", B.build_query_order(symbol="BTCUSDT", client_order_id="too-big",
                                                                **bauth()))
    assert B.not_found(B.parse_order(query.status, query.body, query.headers, new_order=False))

    tiny = await b_order(sim, side="SELL", qty="0.00001")  # about 1 USDT: under MIN_NOTIONAL 5
    assert (tiny.answer.kind, tiny.answer.error_code) == (ANSWER_REJECTED, bf.ERR_MIN_NOTIONAL)
    first = await b_order(sim, side="SELL", qty="0.01", cid="dup-1")
    assert first.answer.status == FILLED
    second = await b_order(sim, side="SELL", qty="0.01", cid="dup-1")
    assert (second.answer.kind, second.answer.error_code) == (ANSWER_REJECTED, -4116)
    [pos] = await b_positions(sim)
    assert pos.amount == Decimal("-0.01")


async def test_binance_leverage_and_margin_type_set_and_read_back(sim: Simulator) -> None:
    resp = await send(sim, "binance_perp", B.build_leverage(symbol="BTCUSDT", leverage=5, **bauth()))
    lev = B.parse_leverage(resp.status, resp.body)
    assert (lev.symbol, lev.leverage) == ("BTCUSDT", 5) and lev.max_notional > 0
    resp = await send(sim, "binance_perp", B.build_margin_type(symbol="BTCUSDT", margin=bf.MARGIN_ISOLATED, **bauth()))
    assert B.parse_margin_type(resp.status, resp.body) is True
    resp = await send(sim, "binance_perp", B.build_margin_type(symbol="BTCUSDT", margin=bf.MARGIN_ISOLATED, **bauth()))
    assert B.parse_margin_type(resp.status, resp.body) is False  # -4046: it already was
    resp = await send(sim, "binance_perp", B.build_symbol_config(symbol="BTCUSDT", **bauth()))
    configs = B.parse_symbol_config(resp.status, resp.body)
    assert (configs["BTCUSDT"].margin_type, configs["BTCUSDT"].leverage) == (bf.MARGIN_ISOLATED, 5)

    bid, _, _ = touch(sim, "binance_perp")
    await b_order(sim, side="SELL", qty="0.01")
    [pos] = bf.with_symbol_config(await b_positions(sim), configs)
    assert pos.isolated and pos.leverage == 5
    assert pos.isolated_wallet == Decimal("0.01") * bid / 5
    # isolated short: liquidation where its own margin + size x (P - entry) = |size| x P x 0.4 %
    assert abs(pos.liquidation_price - bid * Decimal("1.2") / Decimal("1.004")) < EIGHT
    resp = await send(sim, "binance_perp", B.build_margin_type(symbol="BTCUSDT", margin=bf.MARGIN_CROSSED, **bauth()))
    with pytest.raises(VenueError) as refused:
        B.parse_margin_type(resp.status, resp.body)
    assert refused.value.code == -4048  # not with a position open


async def test_binance_query_cancel_and_open_orders_of_final_orders(sim: Simulator) -> None:
    await b_order(sim, side="BUY", qty="0.01", cid="q-1")
    resp = await send(sim, "binance_perp", B.build_query_order(symbol="BTCUSDT", client_order_id="q-1", **bauth()))
    q = B.parse_order_detail(resp.status, resp.body, resp.headers, new_order=False)
    assert (q.answer.status, q.answer.client_order_id, q.answer.executed_qty) == (FILLED, "q-1", Decimal("0.01"))
    resp = await send(sim, "binance_perp", B.build_cancel_order(symbol="BTCUSDT", client_order_id="q-1", **bauth()))
    cancel = B.parse_order(resp.status, resp.body, resp.headers, new_order=False)
    assert cancel.kind == ANSWER_REJECTED and cancel.error_code == bf.ERR_CANCEL_REJECTED and B.not_found(cancel)
    resp = await send(sim, "binance_perp", B.build_open_orders(symbol="BTCUSDT", **bauth()))
    assert B.parse_order_list(resp.status, resp.body, resp.headers) == []
    hook = await send(sim, "binance_perp", HttpRequest("GET", "/sim/perp_account", [("X-MBX-APIKEY", BKEY)], b""))
    listing = json.loads(hook.body)
    assert [(o["client_order_id"], o["status"], o["executed"]) for o in listing["orders"]] == [
        ("q-1", "FILLED", "0.01")]
    assert [(p["symbol"], p["size"]) for p in listing["positions"]] == [("BTCUSDT", "0.01")]
    resp = await send(sim, "binance_perp", B.build_cancel_all(symbol="BTCUSDT", **bauth()))
    assert B.parse_ack(resp.status, resp.body)
    rate = B.parse_futures_rate_headers(resp.headers)
    assert rate.weight_1m is not None and rate.weight_1m > 0
    order = await send(sim, "binance_perp", B.build_new_order(
        symbol="BTCUSDT", side="BUY", price=None, qty="0.01", client_order_id="q-2", order_type=ORDER_MARKET,
        **bauth()))
    counts = B.parse_futures_rate_headers(order.headers)
    assert counts.orders_1m is not None and counts.orders_10s is not None and counts.orders_10s >= 2


async def test_binance_auth_failures_answer_in_the_venues_format(sim: Simulator) -> None:
    for auth, status, code in (
        (bauth(secret="wrong"), 400, bf.ERR_SIGNATURE),
        (bauth(key="nobody"), 401, -2015),
        (bauth(ts_offset_ms=-60_000), 400, bf.ERR_TIMESTAMP),
    ):
        resp = await send(sim, "binance_perp", B.build_account(**auth))
        assert resp.status == status and B.parse_error(resp.status, resp.body)[0] == code
        with pytest.raises(VenueError) as err:
            B.parse_account(resp.status, resp.body)
        assert err.value.code == code
        order = await b_order(sim, side="BUY", qty="0.01", **auth)
        assert (order.answer.kind, order.answer.error_code) == (ANSWER_REJECTED, code)
    resp = await send(sim, "binance_perp", bu.build_start_listen_key("nobody"))
    with pytest.raises(VenueError) as err:
        bu.parse_listen_key(resp.status, resp.body)
    assert err.value.code == -2015
    assert sim.perp_account("binance_perp", BKEY)["orders"] == []


async def test_binance_user_stream_order_and_account_events(sim: Simulator) -> None:
    resp = await send(sim, "binance_perp", bu.build_start_listen_key(BKEY))
    key = bu.parse_listen_key(resp.status, resp.body)
    resp = await send(sim, "binance_perp", bu.build_keepalive_listen_key(BKEY))
    assert bu.parse_listen_key(resp.status, resp.body) == key
    transport, listener = await connect(bu.user_stream_url(key, base=sim.private_ws_url("binance_perp")))
    try:
        await eventually_async(lambda: sim.venue("binance_perp").api.user_streams.subscribers(), DEADLINE_S, "in")
        sold = await b_order(sim, side="SELL", qty="0.01", cid="ev-1")
        events = await eventually_async(
            lambda: (e := [bu.parse_user_event(p) for _, p in listener.frames]) and len(e) >= 3 and e,
            DEADLINE_S, "NEW, TRADE, ACCOUNT_UPDATE")
        new, trade, account = events[:3]
        assert isinstance(new, bu.FuturesOrderUpdate) and (new.exec_type, new.status) == ("NEW", NEW)
        assert isinstance(trade, bu.FuturesOrderUpdate) and (trade.exec_type, trade.status) == ("TRADE", FILLED)
        assert (trade.client_order_id, trade.last_qty, trade.last_price) == ("ev-1", Decimal("0.01"), sold.avg_price)
        assert trade.commission == fee(Decimal("0.01") * sold.avg_price, BINANCE_FEE) and trade.commission_asset
        assert isinstance(account, bu.FuturesAccountUpdate) and account.reason == "ORDER"
        assert account.positions[0].amount == Decimal("-0.01") and account.balances[0].asset == "USDT"
        assert account.balances[0].wallet == START - trade.commission
        before = len(listener.frames)
        assert sim.settle_funding() == 1
        funding = await eventually_async(
            lambda: len(listener.frames) > before and bu.parse_user_event(listener.frames[-1][1]), DEADLINE_S, "fee")
        paid = Decimal(sim.perp_account("binance_perp", BKEY)["funding"][0]["amount"])
        assert isinstance(funding, bu.FuturesAccountUpdate) and funding.reason == "FUNDING_FEE"
        assert funding.balances[0].change == paid and funding.positions == ()  # cross: the balance only
    finally:
        transport.disconnect()
    resp = await send(sim, "binance_perp", bu.build_close_listen_key(BKEY))
    assert resp.status == 200
    resp = await send(sim, "binance_perp", bu.build_keepalive_listen_key(BKEY))
    with pytest.raises(VenueError) as err:
        bu.parse_listen_key(resp.status, resp.body)
    assert err.value.code == bu.ERR_LISTEN_KEY_MISSING


# ----- MEXC contract
async def m_rules(sim: Simulator) -> ContractRules:
    resp = await send(sim, "mexc_perp", M.build_contract_detail("BTC_USDT"))
    return M.parse_contract_detail(resp.status, resp.body)["BTC_USDT"]


async def m_order(sim: Simulator, *, side: int, vol: str, price: Decimal | None = None, cid: str | None = None,
                  open_type: int = mc.OPEN_CROSS, leverage: int | None = None, reduce_only: bool = False,
                  **auth: Any) -> tuple[Any, str]:
    cid = cid or f"t{time.time_ns():x}"
    req = M.build_new_order(symbol="BTC_USDT", side=side, vol=Decimal(vol), price=price, client_order_id=cid,
                            open_type=open_type, leverage=leverage,
                            order_type=ORDER_MARKET if price is None else ORDER_LIMIT_IOC,
                            reduce_only=reduce_only, **(auth or mauth()))
    resp = await send(sim, "mexc_perp", req)
    return M.parse_new_order(resp.status, resp.body, resp.headers, client_order_id=cid), cid


async def m_query(sim: Simulator, cid: str) -> mc.ContractOrder:
    resp = await send(sim, "mexc_perp", M.build_query_order(symbol="BTC_USDT", client_order_id=cid, **mauth()))
    return M.parse_order_detail(resp.status, resp.body)


async def m_positions(sim: Simulator) -> list[mc.ContractPosition]:
    resp = await send(sim, "mexc_perp", M.build_open_positions(symbol=None, **mauth()))
    return M.parse_positions(resp.status, resp.body)


async def test_mexc_short_by_market_and_ioc_moves_position_and_margin_exactly(sim: Simulator) -> None:
    rules = await m_rules(sim)
    assert (rules.contract_size, rules.vol_unit, rules.price_unit, rules.api_allowed) == (
        Decimal("0.00001"), 1, TICK, True)
    bid, ask, mark = touch(sim, "mexc_perp")
    answer, cid = await m_order(sim, side=mc.SIDE_OPEN_SHORT, vol="1000")  # 0.01 BTC
    assert (answer.kind, answer.status) == (ANSWER_OK, NEW) and answer.order_id.isdigit()
    resp = await send(sim, "mexc_perp", M.build_query_order(symbol="BTC_USDT", client_order_id=cid, **mauth()))
    filled = M.parse_order(resp.status, resp.body, resp.headers, rules=rules, client_order_id=cid)
    assert (filled.status, filled.order_id, filled.executed_qty) == (FILLED, answer.order_id, Decimal("0.01"))
    assert filled.cum_quote == Decimal("0.01") * bid
    _, ioc_cid = await m_order(sim, side=mc.SIDE_OPEN_SHORT, vol="2000", price=bid)
    detail = await m_query(sim, ioc_cid)
    assert (detail.state, detail.deal_vol, detail.deal_avg_price) == (mc.STATE_COMPLETED, 2000, bid)
    assert detail.taker_fee == fee(Decimal("0.02") * bid, MEXC_FEE) and detail.fee_currency == "USDT"
    _, missed_cid = await m_order(sim, side=mc.SIDE_OPEN_SHORT, vol="2000", price=ask)
    missed = await m_query(sim, missed_cid)
    assert (missed.state, missed.status, missed.deal_vol) == (mc.STATE_CANCELLED, CANCELED, 0)

    fees = fee(Decimal("0.01") * bid, MEXC_FEE) + fee(Decimal("0.02") * bid, MEXC_FEE)
    cost = Decimal("0.03") * bid
    [pos] = await m_positions(sim)
    assert (pos.symbol, pos.position_type, pos.open_type, pos.leverage) == (
        "BTC_USDT", mc.POSITION_SHORT, mc.OPEN_CROSS, 20)
    assert (pos.hold_vol, pos.hold_avg_price, pos.im, pos.realised) == (3000, bid, cost / 20, -fees)
    resp = await send(sim, "mexc_perp", M.build_account(**mauth()))
    usdt = M.parse_assets(resp.status, resp.body)["USDT"]
    unrealized = cost - Decimal("0.03") * mark
    assert (usdt.unrealized, usdt.equity, usdt.position_margin) == (unrealized, START - fees + unrealized, cost / 20)
    assert usdt.available_balance == START - fees + unrealized - cost / 20


async def test_mexc_close_is_cut_to_the_position_or_refused_never_flips(sim: Simulator) -> None:
    await m_order(sim, side=mc.SIDE_OPEN_SHORT, vol="1000")
    nothing, _ = await m_order(sim, side=mc.SIDE_CLOSE_LONG, vol="1000")  # no long to close
    assert (nothing.kind, nothing.error_code) == (ANSWER_REJECTED, 2009)
    _, cid = await m_order(sim, side=mc.SIDE_CLOSE_SHORT, vol="5000")
    cut = await m_query(sim, cid)
    assert (cut.state, cut.vol, cut.deal_vol, cut.side) == (mc.STATE_CANCELLED, 5000, 1000, mc.SIDE_CLOSE_SHORT)
    assert await m_positions(sim) == []  # flat: no long appeared
    refused, _ = await m_order(sim, side=mc.SIDE_CLOSE_SHORT, vol="1000")
    assert (refused.kind, refused.error_code) == (ANSWER_REJECTED, 2009)
    hedge, _ = await m_order(sim, side=mc.SIDE_CLOSE_SHORT, vol="1000", reduce_only=True)
    assert (hedge.kind, hedge.error_code) == (ANSWER_REJECTED, mc.ERR_PARAM)  # hedge mode takes no reduceOnly


async def test_mexc_refuses_insufficient_margin_a_duplicate_id_and_mismatched_settings(sim: Simulator) -> None:
    big, _ = await m_order(sim, side=mc.SIDE_OPEN_LONG, vol="1100000", open_type=mc.OPEN_ISOLATED, leverage=1)
    assert (big.kind, big.error_code) == (ANSWER_REJECTED, mc.ERR_BALANCE)
    first, cid = await m_order(sim, side=mc.SIDE_OPEN_LONG, vol="100", open_type=mc.OPEN_ISOLATED, leverage=7)
    assert first.kind == ANSWER_OK
    again, _ = await m_order(sim, side=mc.SIDE_OPEN_LONG, vol="100", cid=cid, open_type=mc.OPEN_ISOLATED, leverage=7)
    assert (again.kind, again.error_code) == (ANSWER_UNKNOWN, mc.ERR_REPEATED)  # the client queries, never resends
    assert [o["client_order_id"] for o in sim.perp_account("mexc_perp", MKEY)["orders"]] == [cid]
    [pos] = await m_positions(sim)
    assert (pos.position_type, pos.open_type, pos.leverage, pos.hold_vol) == (
        mc.POSITION_LONG, mc.OPEN_ISOLATED, 7, 100)
    cross, _ = await m_order(sim, side=mc.SIDE_OPEN_LONG, vol="100", open_type=mc.OPEN_CROSS)
    assert (cross.kind, cross.error_code) == (ANSWER_REJECTED, 2027)
    other, _ = await m_order(sim, side=mc.SIDE_OPEN_LONG, vol="100", open_type=mc.OPEN_ISOLATED, leverage=9)
    assert (other.kind, other.error_code) == (ANSWER_REJECTED, 2021)
    short, _ = await m_order(sim, side=mc.SIDE_OPEN_SHORT, vol="100", open_type=mc.OPEN_CROSS, leverage=3)
    assert short.kind == ANSWER_OK  # hedge mode: the short side is its own position
    assert [(p.position_type, p.leverage) for p in await m_positions(sim)] == [
        (mc.POSITION_LONG, 7), (mc.POSITION_SHORT, 3)]


async def test_mexc_cancel_and_open_orders_of_final_orders(sim: Simulator) -> None:
    answer, cid = await m_order(sim, side=mc.SIDE_OPEN_LONG, vol="100")
    resp = await send(sim, "mexc_perp", M.build_cancel_order(order_id=answer.order_id, **mauth()))
    [item] = M.parse_cancel(resp.status, resp.body, resp.headers)
    assert (item.kind, item.error_code, item.order_id, item.not_found) == (
        ANSWER_REJECTED, mc.ERR_NOT_CANCELLABLE, answer.order_id, False)
    resp = await send(sim, "mexc_perp", M.build_cancel_order(order_id="12345", **mauth()))
    assert M.parse_cancel(resp.status, resp.body, resp.headers)[0].not_found
    resp = await send(sim, "mexc_perp", M.build_cancel_by_client_id(symbol="BTC_USDT", client_order_id=cid, **mauth()))
    result = M.parse_cancel_by_client_id(resp.status, resp.body, resp.headers, client_order_id=cid)
    assert (result.kind, result.error_code) == (ANSWER_REJECTED, mc.ERR_NOT_CANCELLABLE)
    resp = await send(sim, "mexc_perp", M.build_cancel_by_client_id(symbol="BTC_USDT", client_order_id="nope",
                                                                    **mauth()))
    assert M.parse_cancel_by_client_id(resp.status, resp.body, resp.headers, client_order_id="nope").not_found
    resp = await send(sim, "mexc_perp", M.build_query_order_by_id(order_id=answer.order_id, **mauth()))
    assert M.parse_order_detail(resp.status, resp.body).client_order_id == cid
    resp = await send(sim, "mexc_perp", M.build_open_orders(symbol="BTC_USDT", **mauth()))
    assert M.parse_order_list(resp.status, resp.body) == []
    hook = await send(sim, "mexc_perp", HttpRequest("GET", "/sim/perp_account", [(mc.API_KEY_HEADER, MKEY)], b""))
    listing = json.loads(hook.body)
    assert [(o["client_order_id"], o["position_side"], o["executed"]) for o in listing["orders"]] == [
        (cid, "LONG", "0.00100")]
    refused = await send(sim, "mexc_perp", HttpRequest("GET", "/sim/perp_account", [], b""))
    assert json.loads(refused.body)["code"] == mc.ERR_UNAUTHORIZED
    resp = await send(sim, "mexc_perp", M.build_query_order(symbol="BTC_USDT", client_order_id="nope", **mauth()))
    assert M.not_found(M.parse_order(resp.status, resp.body, resp.headers, rules=await m_rules(sim)))


async def test_mexc_auth_failures_answer_in_the_venues_format(sim: Simulator) -> None:
    for auth, code in (
        (mauth(secret="wrong"), mc.ERR_SIGNATURE),
        (mauth(key="nobody"), mc.ERR_UNAUTHORIZED),
        (mauth(ts_offset_ms=-60_000), mc.ERR_REQUEST_TIME),
    ):
        answer, _ = await m_order(sim, side=mc.SIDE_OPEN_LONG, vol="100", **auth)
        assert (answer.kind, answer.error_code) == (ANSWER_REJECTED, code)
        resp = await send(sim, "mexc_perp", M.build_open_positions(symbol=None, **auth))
        assert resp.status == 200 and json.loads(resp.body)["success"] is False
        with pytest.raises(VenueError) as err:
            M.parse_positions(resp.status, resp.body)
        assert err.value.code == code
    assert sim.perp_account("mexc_perp", MKEY)["orders"] == []


# ----- funding
@pytest.fixture
async def demo_sim(tmp_path: Path) -> AsyncIterator[Simulator]:
    """Funding every 2 s, as a demo config would (the venues' 8 h made short)."""
    async with Simulator(sim_config(tmp_path, funding_period_s=2), CREDS, emit_quotes=False) as s:
        yield s


def publish_rate(sim: Simulator, rate: float) -> None:
    """Push funding with the BTCUSDT rate near ``rate`` (the model steps once: a small move, same sign)."""
    s = sim.venue("binance_perp").names["BTCUSDT"]
    sim.funding_model.rates[s] = rate
    sim.push_funding()


async def settle_next_boundary(sim: Simulator) -> int:
    """Wait for the funding boundary the venues last published, then run what the timer runs."""
    boundary = sim.funding("binance_perp", "BTCUSDT")[1]
    await eventually_async(lambda: now_ms() >= boundary, DEADLINE_S, "the funding boundary")
    return sim.settle_due_funding()


@pytest.mark.parametrize("rate", [0.002, -0.002])
async def test_funding_at_the_demo_interval_pays_size_times_mark_times_rate(demo_sim: Simulator, rate: float) -> None:
    sim = demo_sim
    # Start just after a boundary: the steps below end well before the next one, which is then the one paid.
    await eventually_async(lambda: now_ms() % 2000 < 300, DEADLINE_S, "the start of a funding period")
    sim.settle_due_funding()  # whatever boundary passed before the positions exist pays nobody
    short = await b_order(sim, side="SELL", qty="0.01")
    long_answer, _ = await m_order(sim, side=mc.SIDE_OPEN_LONG, vol="2000")  # 0.02 BTC long on MEXC
    assert short.answer.status == FILLED and long_answer.kind == ANSWER_OK
    publish_rate(sim, rate)
    b_rate, boundary, b_mark = sim.funding("binance_perp", "BTCUSDT")
    m_rate, _, m_mark = sim.funding("mexc_perp", "BTC_USDT")
    assert sim.funding_clock.next_ms == boundary, "still in the period the rate was published for"
    b_wallet_before = (await b_account(sim)).wallet_balance
    assert await settle_next_boundary(sim) == 2  # both positions, once

    expected = Decimal("0.01") * Decimal(b_mark) * Decimal(b_rate)  # the short receives a positive rate
    assert (expected > 0) == (rate > 0)
    resp = await send(sim, "binance_perp", B.build_income(symbol="BTCUSDT", **bauth()))
    records = B.parse_income(resp.status, resp.body)
    assert [(r.income_type, r.amount, r.asset, r.symbol, r.time_ms) for r in records] == [
        (bf.INCOME_FUNDING_FEE, expected, "USDT", "BTCUSDT", boundary)]  # at the boundary the stream announced
    assert (await b_account(sim)).wallet_balance == b_wallet_before + expected

    m_expected = -Decimal("0.02") * Decimal(m_mark) * Decimal(m_rate)  # the long pays a positive rate
    resp = await send(sim, "mexc_perp", M.build_funding_records(symbol="BTC_USDT", **mauth()))
    page = M.parse_funding_records(resp.status, resp.body)
    [r] = page.records
    assert (r.symbol, r.position_type, r.funding, r.rate, r.settle_ms) == (
        "BTC_USDT", mc.POSITION_LONG, m_expected, Decimal(m_rate), boundary)
    assert r.position_value == Decimal("0.02") * Decimal(m_mark) and page.total_count == 1
    [pos] = await m_positions(sim)
    assert pos.hold_fee == m_expected and (m_expected < 0) == (rate > 0)
    listing = sim.perp_account("binance_perp", BKEY)
    assert [Decimal(f["amount"]) for f in listing["funding"]] == [expected]


async def test_the_timer_settles_at_the_boundary_with_the_rate_the_stream_published(tmp_path: Path) -> None:
    # Pushes every 200 ms: each 1 s funding period has pushes announcing its boundary before it comes.
    cfg = sim_config(tmp_path, funding_period_s=1, quotes_per_second=50.0, funding_push_interval_ms=200)
    async with Simulator(cfg, CREDS) as sim:
        url = sim.ws_url("binance_perp") + "?streams=btcusdt@markPrice@1s"
        transport, listener = await connect(url)
        try:
            await eventually_async(lambda: listener.frames, DEADLINE_S, "a markPrice push")
            await b_order(sim, side="SELL", qty="0.01")
            listing = await eventually_async(
                lambda: (x := sim.perp_account("binance_perp", BKEY))["funding"] and x, DEADLINE_S, "a payment")
            paid = listing["funding"][0]
            published = await eventually_async(
                lambda: [f["data"] for f in listener.texts() if f["data"]["T"] == paid["time"]], DEADLINE_S,
                "the boundary paid, announced on the stream")
        finally:
            transport.disconnect()
        last = published[-1]  # what the stream said last for that boundary: the rate and mark paid on
        assert Decimal(paid["rate"]) == Decimal(last["r"])
        assert Decimal(paid["amount"]) == Decimal("0.01") * Decimal(last["p"]) * Decimal(last["r"])
        assert sim.venue("binance_perp").stats()["funding_payments"] >= 1


# ----- the pure model
def book_at(mark: str) -> pa.PerpBook:
    spec = SymbolSpec("BTCUSDT", "BTC", "USDT", 2, 1, 3, 1, Decimal(5), 100.0, "0.01", "0.001")
    book = pa.PerpBook([spec], [0], lambda s: Decimal(mark), 0.0, 0.001, 10_000.0)
    book.open_account("k")
    return book


def one_way(side: str, qty: str, cid: str, *, reduce_only: bool = False) -> pa.OrderRequest:
    return pa.OrderRequest(0, side, pa.BOTH, pa.MARKET, Decimal(qty), None, cid, reduce_only)


def test_a_one_way_order_past_the_position_flips_it_and_a_partial_close_releases_cost_pro_rata() -> None:
    book = book_at("100")  # no spread: the bid is the mark, the ask one tick up
    book.place("k", one_way("SELL", "3", "a"), 1)
    [short] = book.positions("k")
    assert (short.size, short.cost, short.entry(), short.position_id) == (-3, 300, 100, 1)
    book.mark_of = lambda s: Decimal("90")  # buys at 90.01
    part = book.place("k", one_way("BUY", "1", "b"), 2)
    assert isinstance(part, pa.PerpOrder) and part.realized == Decimal("9.99")  # 1 x (100 - 90.01)
    assert (short.size, short.cost) == (-2, 200)
    flip = book.place("k", one_way("BUY", "5", "c"), 3)  # closes 2 (+19.98), opens a long of 3 at 90.01
    assert isinstance(flip, pa.PerpOrder) and flip.realized == Decimal("19.98") and flip.status == pa.FILLED
    [long] = book.positions("k")
    assert (long.size, long.cost, long.position_id, long.open_ms) == (3, Decimal("270.03"), 2, 3)
    fees = Decimal("0.3") + Decimal("0.09001") + Decimal("0.45005")  # 0.1 % of 300, 90.01, 450.05
    assert book.account("k").wallet == Decimal(10_000) + Decimal("29.97") - fees
    assert [i.kind for i in book.account("k").income].count(pa.REALIZED_PNL) == 2
    assert book.place("k", one_way("BUY", "1", "a"), 4) == pa.Reject(pa.DUPLICATE, "a")


def test_settlement_is_exact_and_signed_by_side() -> None:
    book = book_at("97000.12345678")
    book.place("k", one_way("SELL", "0.123", "a"), 1)
    wallet = book.account("k").wallet
    assert book.settle(0, Decimal("97000.12345678"), Decimal("0.00012345"), 10) == 1
    [income] = book.funding("k")
    assert income.amount == Decimal("0.123") * Decimal("97000.12345678") * Decimal("0.00012345") > 0
    assert book.account("k").wallet == wallet + income.amount
    book.settle(0, Decimal("97000.12345678"), Decimal("-0.0003"), 20)
    assert book.funding("k")[1].amount == -Decimal("0.123") * Decimal("97000.12345678") * Decimal("0.0003")


def test_the_funding_clock_returns_each_boundary_once_in_order() -> None:
    clock = FundingClock(60, 1_000)
    assert clock.next_ms == 60_000 and clock.due(59_999) == []
    assert clock.due(60_000) == [60_000] and clock.due(60_001) == []
    assert clock.due(250_000) == [120_000, 180_000, 240_000] and clock.settled == 4
