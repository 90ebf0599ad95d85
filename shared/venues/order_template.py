"""New-order requests prepared at start: per order only numbers become text, a MAC is taken and bytes joined.

Why: the general path (``shared.money`` Decimal snapping, a params list, ``query_string``'s regex, an HMAC
object copy, string formatting of the HTTP head) costs ~15 µs per order even warm, more cold, before its
bytes reach the socket. Everything in a new order except the price, the quantity, the client id and the
timestamp is fixed per (venue, symbol, side, order type), so an ``OrderTemplate`` prepares it once:

* the request is built once by the venue's own ``OrderFormat.build_new_order`` and ``HttpPool.encode``
  with marker values in the four variable places, and cut at the markers. The template's bytes therefore
  follow today's parameter names, order and HTTP head by construction (and the tests check byte equality);
* the HMAC-SHA256 key schedule, plus the constant start of the query string, is absorbed into prepared
  inner/outer SHA-256 states once; an order copies them (two ``copy``, one ``update`` each). This is the
  fastest public-API signature here: ``hmac.HMAC.copy`` adds Python overhead and the one-shot
  ``hmac.digest`` recomputes the key schedule through OpenSSL 3's slow EVP set-up (see the benchmark);
* values are never percent-encoded: symbols and client ids must be ``[A-Za-z0-9]`` (refused otherwise),
  prices and quantities are digits and a point.

``Increment`` turns a float price or quantity into whole ticks or steps with exactly ``shared.money``'s
rounding (``repr`` decimal, then ROUND_HALF_EVEN / FLOOR / CEILING), using float arithmetic and falling
back to the Decimal path only where the float quotient is too close to a rounding boundary to decide, and
writes units back as the same text ``shared.money.to_wire(snap(...))`` gives.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
from collections.abc import Callable, Iterable, Mapping
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal
from functools import cache

from shared.http.client import HttpPool
from shared.money import noise_floor
from shared.venues import order_format
from shared.venues.common import ORDER_LIMIT_IOC, ORDER_MARKET

NEAREST = "nearest"
DOWN = "down"
UP = "up"
SIDES = ("BUY", "SELL")
ORDER_TYPES = (ORDER_LIMIT_IOC, ORDER_MARKET)

# |float quotient - exact Decimal quotient| <= 3 float roundings (repr decimal vs float, float(increment),
# the division) ~ 2^-51 relative, plus the 28-digit context rounding ~ 1e-27: 2^-48 leaves 8x slack.
_REL = 2.0**-48
# Below this many units * increment coefficient, (a) float holds the scaled integer exactly, (b) the
# increment's multiple has at most 15 significant digits, so it is the only such decimal that rounds to
# its float: a float equal to float(k * increment) has repr == k * increment exactly, and (c) the Decimal
# path can never exceed the context's 28 digits (shared.money.snap raises InvalidOperation there).
_EXACT_LIMIT = 10**15
_MAX_FAST_DECIMALS = 22  # 10.0 ** d is exact up to 10 ** 22
_INF = math.inf
_SIGNATURE = b"&signature="
_BLOCK = 64  # SHA-256 block size: longer HMAC keys are hashed first


def _plain(value: str) -> bool:
    return bool(value) and value.isascii() and value.isalnum()


@cache
def _digits(n: int) -> tuple[str, ...]:
    """Every n-digit zero-padded number, shared by all increments (n <= 4: at most 10,000 strings)."""
    return tuple(f"{i:0{n}d}" for i in range(10**n))


def _negative(v: int) -> str:
    raise ValueError(f"units must be >= 0 (got a scaled value of {v})")


def _text_writer(d: int, mult: int) -> Callable[[int], str]:
    """Exact for every int (no float involved): whole part by ``//``, the ``d`` fraction digits by table."""
    p = 10**d
    if d == 0:
        def text0(units: int) -> str:
            v = units * mult
            return str(v) if v >= 0 else _negative(v)
        return text0
    if d <= 4:
        frac = _digits(d)

        def text4(units: int) -> str:
            v = units * mult
            return f"{v // p}.{frac[v % p]}" if v >= 0 else _negative(v)
        return text4
    if d <= 8:
        hi, lo = _digits(d - 4), _digits(4)

        def text8(units: int) -> str:
            v = units * mult
            if v < 0:
                return _negative(v)
            r = v % p
            return f"{v // p}.{hi[r // 10_000]}{lo[r % 10_000]}"
        return text8

    def text_any(units: int) -> str:
        v = units * mult
        if v < 0:
            return _negative(v)
        s = str(v).rjust(d + 1, "0")
        return f"{s[:-d]}.{s[-d:]}"
    return text_any


class Increment:
    """One tick or step size: float → whole units (``shared.money`` rounding), units → wire text.

    ``text(units(x, r)) == shared.money.to_wire(shared.money.snap(x, increment, r))`` for every finite
    ``x >= 0`` (tests/test_order_template.py proves it by property). Differences from ``shared.money``,
    all outside what an order can carry: ``-0.0`` gives ``"0.00"`` where money writes ``"-0.00"``; negative,
    NaN or infinite values raise ValueError (money writes ``"-1.00"``/``"NaN"`` or raises InvalidOperation).
    The text keeps the increment's own exponent, as ``quantize`` does: ``0.01`` → 2 decimals, ``0.010`` →
    3, ``10`` and ``1E+1`` → none, ``10.0`` → 1.
    """

    __slots__ = ("_f", "_mult", "_p", "_qmax", "decimals", "increment", "text")

    def __init__(self, increment: Decimal | str) -> None:
        inc = Decimal(increment) if isinstance(increment, str) else increment
        if not isinstance(inc, Decimal) or not inc.is_finite() or inc <= 0:
            raise ValueError(f"increment must be a finite decimal > 0, got {increment!r}")
        self.increment = inc
        exp = int(inc.as_tuple().exponent)
        self.decimals = max(0, -exp)
        # units * _mult is the text's digits without the point: 0.5 → 5 (1 decimal), 10 → 10, 1E+1 → 10.
        self._mult = int(inc.scaleb(self.decimals))
        self._f = float(inc)
        self._p = 10.0**self.decimals if self.decimals <= _MAX_FAST_DECIMALS else 0.0
        fast = self._p > 0.0 and 1e-200 < self._f < 1e200 and self._mult < _EXACT_LIMIT
        # Quotients at or above this take the exact path: the exactness facts above need units*_mult < 1e15.
        self._qmax = float(_EXACT_LIMIT // self._mult - 2) if fast else -1.0
        # text(units): units × increment as plain decimal text with the increment's number of decimals
        # (ValueError for negative units). A function chosen per number of decimals, held as an attribute.
        self.text: Callable[[int], str] = _text_writer(self.decimals, self._mult)

    def __repr__(self) -> str:
        return f"Increment({str(self.increment)!r})"

    # ----- float → units
    def nearest(self, value: float) -> int:
        """``round(value / increment)`` half-even on the repr decimal: prices, and quantities already on
        the step (``shared.money.price_text``)."""
        q = value / self._f
        if value >= 0.0 and q < self._qmax:  # also False for NaN; -0.0 passes (see class doc)
            n = int(q)
            r = q - n  # exact: q and its integer part share an exponent range
            m = q * _REL
            if r - 0.5 > m:
                return n + 1
            if 0.5 - r > m:
                return n
        return self._exact(value, ROUND_HALF_EVEN)

    def floor(self, value: float) -> int:
        """Whole units not above ``value`` (``shared.money.qty_text``: never trade more than was sized)."""
        q = value / self._f
        if value >= 0.0 and q < self._qmax:  # also False for NaN; -0.0 passes (see class doc)
            n = int(q)
            r = q - n
            m = q * _REL
            if m < r < 1.0 - m:
                return n
            k = n if r < 0.5 else n + 1  # q is (nearly) a whole number: is value exactly k increments?
            if value == k * self._mult / self._p:
                return k
        return self._exact(value, ROUND_FLOOR)

    def floor_step(self, value: float) -> int:
        """Whole units not above ``value`` but for float noise (``shared.money.floor_step_text``): an order's
        quantity, floored to the venue's step, never rounded up."""
        return noise_floor(self.nearest(value), value, self._f)

    def ceil(self, value: float) -> int:
        """Whole units not below ``value`` (``shared.money.snap(..., "up")``)."""
        q = value / self._f
        if value >= 0.0 and q < self._qmax:  # also False for NaN; -0.0 passes (see class doc)
            n = int(q)
            r = q - n
            m = q * _REL
            if m < r < 1.0 - m:
                return n + 1
            k = n if r < 0.5 else n + 1
            if value == k * self._mult / self._p:
                return k
        return self._exact(value, ROUND_CEILING)

    def units(self, value: float, rounding: str = NEAREST) -> int:
        """``nearest`` / ``down`` / ``up``, as ``shared.money.snap`` names them."""
        if rounding == NEAREST:
            return self.nearest(value)
        if rounding == DOWN:
            return self.floor(value)
        if rounding == UP:
            return self.ceil(value)
        raise ValueError(f"unknown rounding {rounding!r}; expected nearest, down or up")

    def _exact(self, value: float, rounding: str) -> int:
        """``shared.money.snap``'s own Decimal arithmetic, for the rare quotients floats cannot decide."""
        v = float(value)
        if not 0.0 <= v < _INF:
            raise ValueError(f"a price or quantity must be finite and >= 0, got {value!r}")
        inc = self.increment
        u = (Decimal(repr(v)) / inc).to_integral_value(rounding=rounding)
        (u * inc).quantize(inc)  # raises InvalidOperation exactly where shared.money.snap does
        return int(u)

    # ----- units → text
    def wire(self, value: float, rounding: str = NEAREST) -> str:
        """Same as ``shared.money.to_wire(shared.money.snap(value, increment, rounding))`` (see class doc)."""
        return self.text(self.units(value, rounding))


class PreparedHmac:
    """HMAC-SHA256 (RFC 2104) keyed once, with a constant start of every message already absorbed.

    ``inner``/``outer`` are SHA-256 states after ``key ^ ipad`` (+ ``prefix``) and ``key ^ opad``; a
    signature copies both, so per message only the message and the inner digest are hashed. Two OpenSSL
    ``copy`` calls cost less than ``hmac.HMAC.copy`` (Python-level) or ``hmac.digest`` (key schedule and
    OpenSSL 3 EVP set-up each time): benchmarks/order_template.py measures all three."""

    __slots__ = ("inner", "outer")

    def __init__(self, secret: bytes, prefix: bytes = b"") -> None:
        key = hashlib.sha256(secret).digest() if len(secret) > _BLOCK else secret
        key = key.ljust(_BLOCK, b"\0")
        self.inner = hashlib.sha256(bytes(b ^ 0x36 for b in key) + prefix)
        self.outer = hashlib.sha256(bytes(b ^ 0x5C for b in key))

    def hexdigest(self, rest: bytes) -> str:
        """``hmac.new(secret, prefix + rest, sha256).hexdigest()``."""
        inner = self.inner.copy()
        inner.update(rest)
        outer = self.outer.copy()
        outer.update(inner.digest())
        return outer.hexdigest()


class OrderTemplate:
    """One (venue, symbol, side, order type) new order with everything constant prepared.

    Create at start, after the venue's rules (tick, step) are known; per order call ``request`` (units)
    or ``request_text`` (texts this template's ``price``/``qty`` increments wrote, e.g. kept in the
    journal). ``timestamp_ms`` is the venue-clock time (wall ms + the client's measured clock offset);
    ``recv_window_ms`` is fixed at build. The bytes equal ``HttpPool(base_url).encode(*req)`` for the
    ``req = order_format(kind).build_new_order(...)`` of the same inputs, byte for byte.
    """

    __slots__ = (
        "_head", "_inner", "_outer", "_post", "_s_cid", "_s_price", "_s_ts", "kind", "limit", "order_type",
        "price", "qty", "recv_window_ms", "side", "symbol",
    )

    def __init__(
        self, kind: str, symbol: str, side: str, order_type: str, *, tick: Increment | Decimal | str,
        step: Increment | Decimal | str, api_key: str, api_secret: str, recv_window_ms: int, base_url: str,
    ) -> None:
        if not _plain(symbol):
            raise ValueError(f"symbol {symbol!r}: only ASCII letters and digits are sent unencoded")
        if side not in SIDES:
            raise ValueError(f"side {side!r}: expected BUY or SELL")
        if order_type not in ORDER_TYPES:
            raise ValueError(f"order type {order_type!r}: expected {ORDER_LIMIT_IOC} or {ORDER_MARKET}")
        if isinstance(recv_window_ms, bool) or not isinstance(recv_window_ms, int) or recv_window_ms <= 0:
            raise ValueError(f"recv_window_ms must be a positive integer, got {recv_window_ms!r}")
        # Credentials are never named in an error: only what is wrong with them.
        if not api_key or not api_key.isascii() or not api_key.isprintable() or any(c.isspace() for c in api_key):
            raise ValueError("api_key: must be non-empty printable ASCII without spaces (it is an HTTP header)")
        if not api_secret:
            raise ValueError("api_secret: must be non-empty")
        self.kind = kind
        self.symbol = symbol
        self.side = side
        self.order_type = order_type
        self.limit = order_type == ORDER_LIMIT_IOC
        self.recv_window_ms = recv_window_ms
        self.price = tick if isinstance(tick, Increment) else Increment(tick)
        self.qty = step if isinstance(step, Increment) else Increment(step)

        fmt = order_format(kind)
        token = secrets.token_hex(6)
        q_mark, p_mark, c_mark = f"Q{token}q", f"P{token}p", f"C{token}c"
        ts_mark = 9_000_000_000_000_000 + int(token, 16) % 10**15  # 16 digits, nothing else is that long
        req = fmt.build_new_order(
            symbol=symbol, side=side, price=p_mark if self.limit else None, qty=q_mark, client_order_id=c_mark,
            api_key=api_key, api_secret=api_secret, timestamp_ms=ts_mark, recv_window_ms=recv_window_ms,
            order_type=order_type,
        )
        if req.body:
            raise ValueError(f"{kind}: a new order with a body is not supported by the template")
        text = HttpPool(base_url, size=1).encode(req.method, req.path, req.headers, req.body).decode("latin-1")
        base, _, signed = req.path.partition("?")
        qs, _, signature = signed.rpartition("&signature=")
        secret = api_secret.encode()
        if signature != hmac.new(secret, qs.encode(), hashlib.sha256).hexdigest():
            raise ValueError(f"{kind}: the order is not signed as HMAC-SHA256 hex over its query string")
        # Where the four values sit in the query string: today's order is quantity, price, client id,
        # timestamp; anything else means the format changed and this template must be revisited.
        ts_text = str(ts_mark)
        marks = [q_mark, p_mark, c_mark, ts_text] if self.limit else [q_mark, c_mark, ts_text]
        found = sorted((qs.find(m), m) for m in marks)
        if any(qs.count(m) != 1 or text.count(m) != 1 for m in marks) or [m for _, m in found] != marks:
            raise ValueError(f"{kind}: unexpected new-order parameter layout {qs!r}")
        if not qs.endswith(ts_text):
            raise ValueError(f"{kind}: the timestamp is not the last signed parameter in {qs!r}")
        start = qs.index(q_mark)
        prefix = qs[:start]
        rest = qs[start + len(q_mark):]
        if self.limit:
            self._s_price, rest = rest.split(p_mark)
        else:
            self._s_price = ""
        self._s_cid, rest = rest.split(c_mark)
        self._s_ts, _ = rest.split(ts_text)
        at = text.index(req.path)
        self._head = (text[:at] + base + "?" + prefix).encode("latin-1")
        self._post = text[at + len(req.path):].encode("latin-1")

        mac = PreparedHmac(secret, prefix.encode())
        self._inner, self._outer = mac.inner, mac.outer
        # Self-check: the prepared path reproduces the venue format's own request for the marker values.
        if self.request_text(p_mark, q_mark, c_mark, ts_mark) != text.encode("latin-1"):
            raise ValueError(f"{kind}: the prepared request differs from the venue format's")

    def __repr__(self) -> str:  # no credentials
        return f"OrderTemplate({self.kind!r}, {self.symbol!r}, {self.side!r}, {self.order_type!r})"

    def request_text(self, price: str | None, qty: str, client_order_id: str, timestamp_ms: int) -> bytes:
        """The complete signed HTTP/1.1 request. ``price`` and ``qty`` must be texts this template's
        ``price.text``/``qty.text`` wrote (they are not checked again); ``price`` is ignored for MARKET.
        ``timestamp_ms`` is an int. ValueError for a client id outside ``[A-Za-z0-9]`` (today's path would
        percent-encode it) and for a LIMIT IOC order without a price."""
        if not (client_order_id.isalnum() and client_order_id.isascii()):
            raise ValueError(f"client order id {client_order_id!r}: only ASCII letters and digits")
        if self.limit:
            if not price:
                raise ValueError("a LIMIT IOC order needs a price")
            tail = f"{qty}{self._s_price}{price}{self._s_cid}{client_order_id}{self._s_ts}{timestamp_ms}".encode()
        else:
            tail = f"{qty}{self._s_cid}{client_order_id}{self._s_ts}{timestamp_ms}".encode()
        inner = self._inner.copy()
        inner.update(tail)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return b"".join((self._head, tail, _SIGNATURE, outer.hexdigest().encode(), self._post))

    def request(self, price_units: int | None, qty_units: int, client_order_id: str, timestamp_ms: int) -> bytes:
        """``request_text`` from whole ticks and steps (``price_units`` None for MARKET). Written out rather
        than calling ``request_text``: a Python call is a tenth of the budget."""
        if not (client_order_id.isalnum() and client_order_id.isascii()):
            raise ValueError(f"client order id {client_order_id!r}: only ASCII letters and digits")
        qty = self.qty.text(qty_units)
        if self.limit:
            if price_units is None:
                raise ValueError("a LIMIT IOC order needs a price")
            price = self.price.text(price_units)
            tail = f"{qty}{self._s_price}{price}{self._s_cid}{client_order_id}{self._s_ts}{timestamp_ms}".encode()
        else:
            tail = f"{qty}{self._s_cid}{client_order_id}{self._s_ts}{timestamp_ms}".encode()
        inner = self._inner.copy()
        inner.update(tail)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return b"".join((self._head, tail, _SIGNATURE, outer.hexdigest().encode(), self._post))


def build_templates(
    kind: str, rules: Mapping[str, tuple[Decimal | str, Decimal | str]], *, api_key: str, api_secret: str,
    recv_window_ms: int, base_url: str, order_types: Iterable[str] = ORDER_TYPES,
) -> dict[tuple[str, str, str], OrderTemplate]:
    """Every (symbol, side, order type) template of one venue: ``rules`` maps a symbol to (tick, step)."""
    out: dict[tuple[str, str, str], OrderTemplate] = {}
    for symbol, (tick, step) in rules.items():
        price, qty = Increment(tick), Increment(step)  # shared by the symbol's templates
        for side in SIDES:
            for ot in order_types:
                out[symbol, side, ot] = OrderTemplate(
                    kind, symbol, side, ot, tick=price, step=qty, api_key=api_key, api_secret=api_secret,
                    recv_window_ms=recv_window_ms, base_url=base_url,
                )
    return out

