"""Prepared new-order requests: the same wire text and bytes as today's path, and refusals at build time.

The reference is the code that sends orders today: ``shared.money`` for prices and quantities,
``order_format(kind).build_new_order`` for the request and ``HttpPool.encode`` for its bytes.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import random
import re
from decimal import Decimal, InvalidOperation

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from shared.http.client import HttpPool
from shared.money import floor_step_text, price_text, qty_text, snap, to_wire
from shared.venues import order_format
from shared.venues.binance.auth import sign as binance_sign
from shared.venues.common import ORDER_LIMIT_IOC, ORDER_MARKET
from shared.venues.kinds import KINDS
from shared.venues.mexc.auth import sign as mexc_sign
from shared.venues.order_template import (
    DOWN,
    NEAREST,
    UP,
    Increment,
    OrderTemplate,
    PreparedHmac,
    build_templates,
)

# The venues' documented signing examples (the same vectors tests/test_venue_binance.py and
# tests/test_venue_mexc.py check the general path with).
BINANCE_SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
BINANCE_QUERY = (
    "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1&recvWindow=5000&timestamp=1499827319559"
)
BINANCE_SIGNATURE = "c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71"
MEXC_SECRET = "45d0b3c26f2644f19bfb98b07741b2f5"
MEXC_QUERY = "symbol=BTCUSDT&side=BUY&type=LIMIT&quantity=1&price=11&recvWindow=5000&timestamp=1644489390087"
MEXC_SIGNATURE = "fd3e4e8543c5188531eb7279d68ae7d26a573d0fc5ab0d18eb692451654d837a"
SIGN = {"binance": binance_sign, "mexc": mexc_sign}

INCREMENTS = [
    "0.00000001", "0.0000001", "0.000001", "0.00001", "0.0001", "0.001", "0.01", "0.1", "1", "10", "100", "1000",
    "0.5", "0.25", "0.05", "0.00000005", "2.5", "0.3", "0.010", "10.0", "1E+1", "2.5E+1", "1E-8", "0.00000123",
]
ROUNDINGS = (NEAREST, DOWN, UP)
ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


@st.composite
def increments(draw: st.DrawFn) -> Decimal:
    """The usual forms, and any 1..3-digit coefficient from 1e-8 to 1e3."""
    if draw(st.booleans()):
        return Decimal(draw(st.sampled_from(INCREMENTS)))
    return Decimal(draw(st.integers(1, 999))).scaleb(draw(st.integers(-8, 3)))


def nudge(x: float, ulps: int) -> float:
    for _ in range(abs(ulps)):
        x = math.nextafter(x, math.inf if ulps > 0 else 0.0)
    return x


@st.composite
def values(draw: st.DrawFn, inc: Decimal) -> float:
    """Floats anywhere, on the grid, at exact half increments, and a few ulps either side of both."""
    how = draw(st.sampled_from(["any", "small", "grid", "half"]))
    if how == "any":
        return draw(st.floats(0.0, 1e12, allow_nan=False, allow_infinity=False))
    if how == "small":
        return draw(st.floats(0.0, float(inc) * 4, allow_nan=False, allow_infinity=False))
    units = draw(st.integers(0, 10**draw(st.integers(0, 13))))
    exact = units * inc + (inc / 2 if how == "half" else 0)
    return nudge(float(exact), draw(st.sampled_from([0, 0, 0, 1, -1, 2, -2, 64, -64])))


def money(x: float, inc: Decimal, rounding: str) -> str | type[Exception]:
    try:
        return to_wire(snap(x, inc, rounding))
    except InvalidOperation:
        return InvalidOperation


def fast(x: float, inc: Increment, rounding: str) -> str | type[Exception]:
    try:
        return inc.wire(x, rounding)
    except InvalidOperation:
        return InvalidOperation


# ----- wire text
def check_wire(x: float, inc: Decimal) -> None:
    grid = Increment(inc)
    assert grid.text(grid.nearest(x)) == price_text(x, inc)
    assert grid.text(grid.floor_step(x)) == floor_step_text(x, inc)
    assert grid.text(grid.floor(x)) == qty_text(x, inc)
    for r in ROUNDINGS:
        assert fast(x, grid, r) == money(x, inc, r), (x, inc, r)


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), inc=increments())
def test_wire_text_equals_shared_money(data: st.DataObject, inc: Decimal) -> None:
    x = data.draw(values(inc))
    assume(math.copysign(1.0, x) > 0)  # -0.0: see test_negative_zero_is_plain_zero
    check_wire(x, inc)


@pytest.mark.parametrize("inc", INCREMENTS)
def test_wire_text_of_awkward_floats(inc: str) -> None:
    for x in (0.0, 97000.005, 0.125, 0.135, 1e-7, 3 * 0.00001, 0.1 + 0.2, 5e-324, 2.5, 7.5, 1e15, 2.0**53):
        check_wire(x, Decimal(inc))


@settings(max_examples=300, deadline=None)
@given(inc=increments(), x=st.floats(1e12, 1e30, allow_nan=False, allow_infinity=False))
def test_huge_values_take_the_exact_path_and_fail_where_money_fails(inc: Decimal, x: float) -> None:
    grid = Increment(inc)
    for r in ROUNDINGS:
        assert fast(x, grid, r) == money(x, inc, r)


def test_exact_halves_round_half_even_on_the_repr_decimal() -> None:
    cent, half = Increment("0.01"), Increment("0.5")
    assert [cent.wire(x) for x in (0.125, 0.135, 97000.005, 97000.015)] == ["0.12", "0.14", "97000.00", "97000.02"]
    assert [half.wire(x) for x in (0.25, 0.75, 1.25)] == ["0.0", "1.0", "1.0"]
    # 0.3 / 0.1 is 2.9999999999999996 in floats; the repr decimal 0.3 is exactly 3 steps.
    assert Increment("0.1").floor(0.3) == 3 == Increment("0.1").ceil(0.3)
    assert Increment("0.00001").floor(3 * 0.00001) == 3  # 3.0000000000000004e-05


def test_text_keeps_the_increments_own_exponent() -> None:
    cases = {
        "0.01": "970012.30", "0.010": "970012.300", "10": "970010", "1E+1": "970010", "10.0": "970010.0",
        "0.5": "970012.5", "1": "970012", "0.00000001": "970012.30000000", "2.5E+1": "970000",
    }
    for inc, text in cases.items():
        grid = Increment(inc)
        assert grid.wire(970012.3) == text == to_wire(snap(970012.3, Decimal(inc)))
    assert Increment("0.01").text(9700012) == "97000.12"
    assert Increment("0.00001").text(0) == "0.00000"
    assert Increment("1E+1").text(0) == "0" == to_wire(snap(0.0, Decimal("1E+1")))
    assert Increment("0.01").text(10**20) == "1000000000000000000.00"  # beyond the float formatting range


class CountingIncrement(Increment):
    """Counts the quotients left to the Decimal path (the float path must decide almost all)."""

    def __init__(self, increment: str) -> None:
        super().__init__(increment)
        self.exact = 0

    def _exact(self, value: float, rounding: str) -> int:
        self.exact += 1
        return super()._exact(value, rounding)


@settings(deadline=None)
@given(units=st.integers(0, 10**12), inc=st.sampled_from(["0.01", "0.00001", "0.5", "10", "0.00000001"]))
def test_grid_values_never_need_decimal(units: int, inc: str) -> None:
    """Prices off the book and quantities the detector floored are exact multiples: the float path decides
    all three roundings for them (floor and ceil by the exact-equality check)."""
    grid = CountingIncrement(inc)
    x = float(units * Decimal(inc))
    assert grid.nearest(x) == grid.floor(x) == grid.ceil(x) == units
    assert grid.exact == 0


def test_float_path_decides_nearly_all_random_values() -> None:
    rng = random.Random(7)
    grid = CountingIncrement("0.01")
    for _ in range(10_000):
        x = rng.uniform(0, 200_000)
        for r in ROUNDINGS:
            assert grid.wire(x, r) == to_wire(snap(x, Decimal("0.01"), r))
    assert grid.exact < 30  # only quotients within ~1e-14 relative of a boundary


def test_negative_zero_is_plain_zero() -> None:
    """The one finite value where the text differs: money writes the sign of -0.0, units cannot carry it."""
    assert to_wire(snap(-0.0, Decimal("0.01"))) == "-0.00"
    assert Increment("0.01").wire(-0.0) == "0.00"


@pytest.mark.parametrize("bad", [-0.01, -1e-300, -5e-324, math.nan, math.inf, -math.inf])
def test_negative_and_non_finite_values_are_refused(bad: float) -> None:
    for r in ROUNDINGS:
        with pytest.raises(ValueError, match="finite and >= 0"):
            Increment("0.01").units(bad, r)


@pytest.mark.parametrize("bad", ["0", "-0.01", "NaN", "Infinity", "abc"])
def test_bad_increments_are_refused(bad: str) -> None:
    with pytest.raises((ValueError, InvalidOperation)):
        Increment(bad)


def test_unknown_rounding_is_refused() -> None:
    with pytest.raises(ValueError, match="sideways"):
        Increment("0.01").units(1.0, "sideways")


# ----- the signature
@pytest.mark.parametrize(
    ("secret", "query", "signature"),
    [(BINANCE_SECRET, BINANCE_QUERY, BINANCE_SIGNATURE), (MEXC_SECRET, MEXC_QUERY, MEXC_SIGNATURE)],
)
def test_prepared_hmac_reproduces_the_documented_signatures(secret: str, query: str, signature: str) -> None:
    for cut in (0, 7, 20, len(query)):
        mac = PreparedHmac(secret.encode(), query[:cut].encode())
        assert mac.hexdigest(query[cut:].encode()) == signature
        assert mac.hexdigest(query[cut:].encode()) == signature  # the prepared states are not consumed


@settings(deadline=None)
@given(secret=st.binary(min_size=1, max_size=200), prefix=st.binary(max_size=100), rest=st.binary(max_size=300))
def test_prepared_hmac_is_hmac_sha256(secret: bytes, prefix: bytes, rest: bytes) -> None:
    """Keys longer than the 64-byte block are hashed first (RFC 2104), as hmac.new does."""
    assert PreparedHmac(secret, prefix).hexdigest(rest) == hmac.new(secret, prefix + rest, hashlib.sha256).hexdigest()


def test_documented_example_order_exact_bytes() -> None:
    t = OrderTemplate(
        "binance", "BTCUSDT", "BUY", ORDER_LIMIT_IOC, tick="0.01", step="0.00001", api_key="KEY",
        api_secret=BINANCE_SECRET, recv_window_ms=5000, base_url="https://api.binance.com",
    )
    query = (
        "symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=IOC&quantity=0.00150&price=97000.01"
        "&newClientOrderId=dz1fb&newOrderRespType=FULL&recvWindow=5000&timestamp=1499827319559"
    )
    expected = (
        f"POST /api/v3/order?{query}&signature={binance_sign(BINANCE_SECRET, query)} HTTP/1.1\r\n"
        "Host: api.binance.com\r\nContent-Length: 0\r\nX-MBX-APIKEY: KEY\r\n\r\n"
    ).encode()
    assert t.request(9700001, 150, "dz1fb", 1499827319559) == expected
    assert t.request_text("97000.01", "0.00150", "dz1fb", 1499827319559) == expected
    assert t.price.text(t.price.nearest(97000.01)) == "97000.01"


# ----- the request
SECRETS = st.one_of(
    st.sampled_from([BINANCE_SECRET, MEXC_SECRET]),
    st.text(min_size=1, max_size=100),  # any text: signed as its UTF-8 bytes, long ones hashed first
)
BASE_URLS = st.sampled_from([
    "http://127.0.0.1:8080", "https://api.binance.com", "https://api.mexc.com", "http://localhost", "http://[::1]:9",
])


def split_request(data: bytes) -> tuple[str, str]:
    """(query string that was signed, signature) from the request line."""
    target = data.split(b" ", 2)[1].decode()
    signed = target.split("?", 1)[1]
    qs, signature = signed.rsplit("&signature=", 1)
    return qs, signature


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    kind=st.sampled_from(["binance", "mexc"]),
    order_type=st.sampled_from([ORDER_LIMIT_IOC, ORDER_MARKET]),
    side=st.sampled_from(["BUY", "SELL"]),
    symbol=st.text(ALNUM, min_size=1, max_size=20),
    cid=st.text(ALNUM, min_size=1, max_size=36),
    ts=st.integers(0, 2**53),
    recv=st.integers(1, 60_000),
    tick=increments(),
    step=increments(),
    price=st.floats(0.0, 1e9, allow_nan=False, allow_infinity=False),
    qty=st.floats(0.0, 1e9, allow_nan=False, allow_infinity=False),
    api_key=st.text(ALNUM + "-_.", min_size=1, max_size=80),
    secret=SECRETS,
    base_url=BASE_URLS,
)
def test_request_bytes_equal_todays_path(
    kind: str, order_type: str, side: str, symbol: str, cid: str, ts: int, recv: int, tick: Decimal,
    step: Decimal, price: float, qty: float, api_key: str, secret: str, base_url: str,
) -> None:
    t = OrderTemplate(
        kind, symbol, side, order_type, tick=tick, step=step, api_key=api_key, api_secret=secret,
        recv_window_ms=recv, base_url=base_url,
    )
    market = order_type == ORDER_MARKET
    px_units = None if market else t.price.nearest(price)
    qty_units = t.qty.floor_step(qty)
    px = None if market else price_text(price, tick)
    req = order_format(kind).build_new_order(
        symbol=symbol, side=side, price=px, qty=floor_step_text(qty, step), client_order_id=cid,
        api_key=api_key, api_secret=secret, timestamp_ms=ts, recv_window_ms=recv, order_type=order_type,
    )
    today = HttpPool(base_url).encode(req.method, req.path, req.headers, req.body)
    assert t.request(px_units, qty_units, cid, ts) == today
    px_text = None if px_units is None else t.price.text(px_units)
    assert t.request_text(px_text, t.qty.text(qty_units), cid, ts) == today
    qs, signature = split_request(today)
    assert signature == SIGN[kind](secret, qs) == hmac.new(secret.encode(), qs.encode(), hashlib.sha256).hexdigest()


def test_market_orders_carry_no_price() -> None:
    # Spot kinds: perpetual orders take the general path (MEXC contract signs a JSON body, in headers).
    for kind in (name for name, k in KINDS.items() if k.order_format is not None and k.spot):
        t = OrderTemplate(kind, "ETHUSDT", "SELL", ORDER_MARKET, tick="0.01", step="0.0001", api_key="K",
                          api_secret="S", recv_window_ms=5000, base_url="http://127.0.0.1:1")
        data = t.request(None, 12345, "dz9s0", 1700000000000)
        assert b"price=" not in data and b"quantity=1.2345&" in data
        assert t.request(777, 12345, "dz9s0", 1700000000000) == data  # a price is ignored, as today


def test_templates_are_independent_of_each_other() -> None:
    """Two templates with different secrets and keys never share prepared state."""
    a = OrderTemplate("mexc", "BTCUSDT", "BUY", ORDER_LIMIT_IOC, tick="0.01", step="0.000001", api_key="A",
                      api_secret="secret-a", recv_window_ms=5000, base_url="http://h")
    b = OrderTemplate("mexc", "BTCUSDT", "BUY", ORDER_LIMIT_IOC, tick="0.01", step="0.000001", api_key="B",
                      api_secret="secret-b", recv_window_ms=5000, base_url="http://h")
    ra, rb = a.request(1, 1, "x1", 1), b.request(1, 1, "x1", 1)
    assert split_request(ra)[0] == split_request(rb)[0]
    assert split_request(ra)[1] == mexc_sign("secret-a", split_request(ra)[0]) != split_request(rb)[1]


def test_build_templates_covers_every_side_and_type() -> None:
    rules = {"BTCUSDT": (Decimal("0.01"), Decimal("0.00001")), "ETHBTC": ("0.000001", "0.0001")}
    ts = build_templates("binance", rules, api_key="key4XYZ", api_secret="secret-QWE", recv_window_ms=3000,
                         base_url="http://127.0.0.1:1")
    assert len(ts) == 8
    buy, sell = ts["BTCUSDT", "BUY", ORDER_LIMIT_IOC], ts["BTCUSDT", "SELL", ORDER_MARKET]
    assert buy.price is sell.price and buy.qty is sell.qty  # one Increment per symbol
    assert b"recvWindow=3000&timestamp=5&" in ts["ETHBTC", "SELL", ORDER_LIMIT_IOC].request(1, 1, "c", 5)
    assert "key4XYZ" not in repr(buy) and "secret-QWE" not in repr(buy)


# ----- refusals
BUILD = {
    "kind": "binance", "symbol": "BTCUSDT", "side": "BUY", "order_type": ORDER_LIMIT_IOC, "tick": "0.01",
    "step": "0.00001", "api_key": "KEY", "api_secret": "SECRET", "recv_window_ms": 5000,
    "base_url": "http://127.0.0.1:8080",
}


def build(**changes: object) -> OrderTemplate:
    args = {**BUILD, **changes}
    return OrderTemplate(
        args.pop("kind"), args.pop("symbol"), args.pop("side"), args.pop("order_type"), **args  # type: ignore[arg-type]
    )


@pytest.mark.parametrize("symbol", ["BTC-USDT", "BTC_USDT", "BTC/USDT", "BTC USDT", "BTCÜSDT", "BTC&x=1", ""])
def test_a_symbol_that_would_need_encoding_is_refused_at_build(symbol: str) -> None:
    with pytest.raises(ValueError, match=re.escape(f"symbol {symbol!r}")):
        build(symbol=symbol)


@pytest.mark.parametrize("cid", ["dz 1", "dz-1", "dz&1", "dz=1", "dzü1", "dz%20", ""])
def test_a_client_id_that_would_need_encoding_is_refused(cid: str) -> None:
    t = build()
    with pytest.raises(ValueError, match=re.escape(f"client order id {cid!r}")):
        t.request(1, 1, cid, 1)
    with pytest.raises(ValueError, match=re.escape(f"client order id {cid!r}")):
        t.request_text("0.01", "0.00001", cid, 1)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"side": "buy"}, "side 'buy'"),
        ({"order_type": "limit"}, "order type 'limit'"),
        ({"kind": "kraken"}, "kraken"),
        ({"recv_window_ms": 0}, "recv_window_ms"),
        ({"recv_window_ms": True}, "recv_window_ms"),
        ({"tick": "0"}, "increment"),
        ({"step": "-1"}, "increment"),
        ({"api_secret": ""}, "api_secret"),
        ({"base_url": "ftp://x"}, "scheme"),
    ],
)
def test_bad_build_inputs_are_refused(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        build(**changes)


@pytest.mark.parametrize("key", ["", "with space", "new\r\nline", "tab\tkey", "kéy"])
def test_a_bad_api_key_is_refused_without_echoing_it(key: str) -> None:
    with pytest.raises(ValueError, match="api_key") as err:
        build(api_key=key)
    assert not key or key not in str(err.value)


def test_limit_without_price_is_refused() -> None:
    t = build()
    with pytest.raises(ValueError, match="needs a price"):
        t.request(None, 1, "dz1", 1)
    with pytest.raises(ValueError, match="needs a price"):
        t.request_text(None, "0.00001", "dz1", 1)
