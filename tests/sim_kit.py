"""Simulator test kit: configs on free ports, running sims (fixtures), small WebSocket and REST clients.

Loaded as a pytest plugin from conftest, so every test module sees the ``sim`` and ``still_sim`` fixtures.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import picows
import pytest

from services.sim import futures_binance_answers as answers
from services.sim.app import Simulator
from services.sim.market import PriceModel
from services.sim.perp_account import PerpBook
from services.sim.units import SymbolSpec
from shared.config import Config, parse_config
from shared.http.client import HttpPool, HttpResponse
from shared.venues import order_format
from shared.venues.common import hmac_sha256_hex, signed_path
from shared.venues.kinds import kind_of
from tests.conftest import make_config_dict

REPO = Path(__file__).resolve().parents[1]
CREDS = {
    "binance": ("bkey", "bsecret"),
    "mexc": ("mkey", "msecret"),
    "binance_perp": ("bpkey", "bpsecret"),
    "mexc_perp": ("ckey", "csecret"),
}
PERP_TOUCH_QTY = "1000000"  # a simulated perp book's touch has no size limit: any order there fills whole
DEADLINE_S = 20.0


def sim_config(tmp_path: Path, venue_settings: dict[str, dict[str, Any]] | None = None, **sim: Any) -> Config:
    """Port 0 everywhere: the in-process sim binds whatever is free (no race with other test runs);
    clients ask it for ``ws_url``/``rest_url``. ``venue_settings``: per venue name, ``[[sim.venues]]`` keys."""
    data = make_config_dict(tmp_path, sim=sim)
    for sv in data["sim"]["venues"]:
        sv["ws_port"] = sv["rest_port"] = 0
        sv.update((venue_settings or {}).get(sv["venue"], {}))
    return parse_config(msgspec.toml.encode(data))


@pytest.fixture
async def sim(tmp_path: Path) -> AsyncIterator[Simulator]:
    """Quotes flowing at the configured rate."""
    async with Simulator(sim_config(tmp_path), CREDS) as s:
        yield s


@pytest.fixture
async def still_sim(tmp_path: Path) -> AsyncIterator[Simulator]:
    """No timer: the test moves the market with ``emit`` and knows what an order will meet."""
    async with Simulator(sim_config(tmp_path), CREDS, emit_quotes=False) as s:
        s.emit(s.model.n_slots)  # one quote for every (venue, symbol)
        yield s


# ----- small clients
class Collector(picows.WSListener):  # type: ignore[misc]
    def __init__(self, hello: Sequence[str] = ()) -> None:
        self.hello = hello
        self.frames: list[tuple[bool, bytes]] = []  # (binary, payload)
        self.transport: picows.WSTransport | None = None

    def on_ws_connected(self, transport: picows.WSTransport) -> None:
        self.transport = transport
        for text in self.hello:
            transport.send(picows.WSMsgType.TEXT, text.encode())

    def on_ws_frame(self, transport: picows.WSTransport, frame: picows.WSFrame) -> None:
        if frame.msg_type in (picows.WSMsgType.TEXT, picows.WSMsgType.BINARY):
            self.frames.append((frame.msg_type == picows.WSMsgType.BINARY, frame.get_payload_as_bytes()))

    def send(self, text: str) -> None:
        assert self.transport is not None
        self.transport.send(picows.WSMsgType.TEXT, text.encode())

    def texts(self) -> list[Any]:
        return [json.loads(p) for binary, p in self.frames if not binary]


def binance_url(ws_url: str, symbols: Sequence[str]) -> str:
    return ws_url + "?streams=" + "/".join(f"{s.lower()}@bookTicker" for s in symbols)


def mexc_subscribe(symbols: Sequence[str]) -> list[str]:
    channels = ",".join(f'"spot@public.aggre.bookTicker.v3.api.pb@100ms@{s}"' for s in symbols)
    return [f'{{"method":"SUBSCRIPTION","params":[{channels}]}}']


async def connect(url: str, hello: Sequence[str] = ()) -> tuple[picows.WSTransport, Collector]:
    transport, listener = await picows.ws_connect(lambda: Collector(hello), url)
    return transport, listener


async def http(
    sim: Simulator, venue: str, method: str, path: str, headers: list[tuple[str, str]] | None = None
) -> HttpResponse:
    pool = HttpPool(sim.rest_url(venue), size=1)
    try:
        return await asyncio.wait_for(pool.request(method, path, headers or []), DEADLINE_S)
    finally:
        await pool.close()


async def send_order(sim: Simulator, venue: str, *, secret: str | None = None, ts_offset_ms: int = 0,
                     **order: str) -> HttpResponse:
    kind = sim.venue(venue).venue.kind
    key, real_secret = CREDS[venue]
    fields = {"symbol": "BTCUSDT", "side": "BUY", "client_order_id": f"t{time.time_ns():x}", **order}
    req = order_format(kind).build_new_order(
        symbol=fields["symbol"], side=fields["side"], price=fields["price"], qty=fields["qty"],
        client_order_id=fields["client_order_id"], api_key=key, api_secret=secret or real_secret,
        timestamp_ms=time.time_ns() // 1_000_000 + ts_offset_ms, recv_window_ms=5000,
    )
    pool = HttpPool(sim.rest_url(venue), size=1)
    try:
        return await asyncio.wait_for(pool.request(req.method, req.path, req.headers, req.body), DEADLINE_S)
    finally:
        await pool.close()


async def query_order(sim: Simulator, venue: str, client_order_id: str, symbol: str = "BTCUSDT") -> HttpResponse:
    kind = sim.venue(venue).venue.kind
    key, secret = CREDS[venue]
    req = order_format(kind).build_query_order(
        symbol=symbol, client_order_id=client_order_id, api_key=key, api_secret=secret,
        timestamp_ms=time.time_ns() // 1_000_000, recv_window_ms=5000,
    )
    return await http(sim, venue, req.method, req.path, req.headers)


def api_key_header(sim: Simulator, venue: str) -> str:
    """The header the venue's kind carries its API key in."""
    header = kind_of(sim.venue(venue).venue.kind).api_key_header
    assert header is not None, f"{venue} takes no API key"
    return header


async def balances(sim: Simulator, venue: str) -> dict[str, Decimal]:
    resp = await http(sim, venue, "GET", "/sim/balances", [(api_key_header(sim, venue), CREDS[venue][0])])
    assert resp.status == 200, resp.body
    return {k: Decimal(v) for k, v in json.loads(resp.body).items()}


def top(sim: Simulator, venue: str, symbol: str = "BTCUSDT") -> tuple[str, str, str, str]:
    """The venue's current (bid, bid qty, ask, ask qty) as wire text; a perp venue's touch around its mark,
    with a quantity (``PERP_TOUCH_QTY``) standing for its unlimited size."""
    book = sim.venue(venue).book
    if isinstance(book, PerpBook):
        s = book.index[symbol]
        t, spec = book.touch(s), book.specs[s]
        return answers.price_text(spec, t.bid), PERP_TOUCH_QTY, answers.price_text(spec, t.ask), PERP_TOUCH_QTY
    q = book.top(book.index[symbol])
    assert q is not None
    spec = book.specs[q.symbol]
    return spec.price_text(q.bid), spec.qty_text(q.bid_qty), spec.price_text(q.ask), spec.qty_text(q.ask_qty)


def error_of(resp: HttpResponse) -> tuple[int, int, str]:
    body = json.loads(resp.body)
    assert set(body) == {"code", "msg"}, body
    return resp.status, body["code"], body["msg"]


def price_model(cfg: Config, seed: int | None = None) -> PriceModel:
    sim_cfg = cfg.sim if seed is None else msgspec.structs.replace(cfg.sim, seed=seed)
    kinds = {v.name: v.kind for v in cfg.venues}
    spreads = [v.spread_bps for v in cfg.sim.venues if kind_of(kinds[v.venue]).spot]  # perps get no quotes
    return PriceModel(sim_cfg, SymbolSpec.all_of(cfg.symbols), spreads)


# ----- signed requests of any kind (orders beyond the shared formats' LIMIT IOC, account endpoints)
ORDER_TYPES = {  # (venue, kind) -> the venue's type / timeInForce parameters
    ("binance", "IOC"): (("type", "LIMIT"), ("timeInForce", "IOC")),
    ("binance", "FOK"): (("type", "LIMIT"), ("timeInForce", "FOK")),
    ("binance", "MARKET"): (("type", "MARKET"),),
    ("mexc", "IOC"): (("type", "IMMEDIATE_OR_CANCEL"),),
    ("mexc", "FOK"): (("type", "FILL_OR_KILL"),),
    ("mexc", "MARKET"): (("type", "MARKET"),),
}


def now_ms() -> int:
    return time.time_ns() // 1_000_000


async def signed(
    sim: Simulator, venue: str, method: str, path: str, params: Sequence[tuple[str, str]] = (),
    *, secret: str | None = None,
) -> HttpResponse:
    """A signed request with ``params`` (plus recvWindow and timestamp) in the query string."""
    key, real_secret = CREDS[venue]
    full = [*params, ("recvWindow", "5000"), ("timestamp", str(now_ms()))]
    return await http(sim, venue, method, signed_path(path, full, secret or real_secret),
                      [(api_key_header(sim, venue), key)])


async def place(
    sim: Simulator, venue: str, *, kind: str = "IOC", qty: str, price: str = "", symbol: str = "BTCUSDT",
    side: str = "BUY", client_order_id: str = "",
) -> HttpResponse:
    """A new order of ``kind`` IOC | FOK | MARKET in the venue's own parameters."""
    params = [("symbol", symbol), ("side", side), *ORDER_TYPES[(venue, kind)], ("quantity", qty)]
    if price:
        params.append(("price", price))
    params.append(("newClientOrderId", client_order_id or f"t{time.time_ns():x}"))
    return await signed(sim, venue, "POST", "/api/v3/order", params)


def levels(sim: Simulator, venue: str, symbol: str = "BTCUSDT") -> tuple[int, list[tuple[Decimal, Decimal]],
                                                                      list[tuple[Decimal, Decimal]]]:
    """The venue's L2 book now: (update id, bids, asks), best first, as Decimals."""
    uid, bids, asks = sim.book_levels(venue, symbol)
    return uid, [(Decimal(p), Decimal(q)) for p, q in bids], [(Decimal(p), Decimal(q)) for p, q in asks]


def text(d: Decimal) -> str:
    return format(d, "f")


def ws_api_subscribe(request_id: object, *, secret: str | None = None, key: str | None = None,
                     timestamp: int | None = None) -> str:
    """A Binance WS API ``userDataStream.subscribe.signature`` request for the sim's Binance account."""
    api_key = key or CREDS["binance"][0]
    ts = now_ms() if timestamp is None else timestamp
    signature = hmac_sha256_hex(secret or CREDS["binance"][1], f"apiKey={api_key}&timestamp={ts}")
    params = {"apiKey": api_key, "timestamp": ts, "signature": signature}
    return json.dumps({"id": request_id, "method": "userDataStream.subscribe.signature", "params": params})
