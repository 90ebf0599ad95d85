"""One conformance suite for every declared venue kind (``shared.venues.kinds.KINDS``).

Each test is parametrized over the declarations and states a contract every kind meets where its
declaration gives it the capability; where the declaration leaves the field out (``order_format`` or
``limits`` is None) the test skips naming that field, never by the kind's name. The per-venue data (the
documented frames, signing examples and answers) is one table keyed by kind name,
``tests/conformance/table.py``: a declared kind without a row fails here, and so does a kind whose
declaration gains a capability its row has no examples for.

1. market data: documented frames parse into the common events exactly; malformed or mangled frames are
   refused with ProtocolError (``MarketFormat.parse`` raises nothing else)
2. the simulated venue: the kind's own market format, on the declared ``ws_path`` of the simulator, reads
   the simulator's frames, and the latest one is the simulator's state; a spot book rebuilt from the REST
   snapshot and the diffs is the simulator's book; a keepalive gets a pong the format recognises
3. signing: the documented examples reproduce byte for byte; the order format's requests are signed exactly
4. order answers: documented answers parse exactly; errors keep the venue's code and message; throttled
   answers (429, Binance's 418) are recognised with Retry-After honoured
5. rate limits: the documented limits are declared and the usage headers parse
6. orders against the simulated venue: an IOC order built by the kind's format fills and is queried back;
   a bad signature is refused in the venue's error format; the venue's throttling is recognised; its symbol
   rules and clock read with the format are the simulator's
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import hmac
import json
import re
import time
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.feed.book import APPLIED, DUPLICATE, BookSync
from services.sim.app import Simulator
from shared.errors import ProtocolError
from shared.http.client import HttpPool, HttpResponse
from shared.venues.common import (
    ANSWER_OK,
    ANSWER_REJECTED,
    ANSWER_THROTTLED,
    FILLED,
    NEW,
    NOTICE_PONG,
    REJECTED,
    UNKNOWN,
    DepthDiff,
    DepthSnapshot,
    FundingUpdate,
    HttpRequest,
    MarketEvent,
    MarketFormat,
    Notice,
    OrderAnswer,
    OrderFormat,
    RateHeaders,
    TopOfBook,
    hmac_sha256_hex,
)
from shared.venues.declaration import VenueKind
from shared.venues.kinds import KINDS
from tests.conformance.table import ROWS, Conformance, Frame, OrderRow, RateRow
from tests.conftest import eventually_async
from tests.sim_kit import CREDS, DEADLINE_S, Collector, connect, http, now_ms, top

MARKET_EVENTS = (TopOfBook, DepthDiff, DepthSnapshot, FundingUpdate, Notice)
DECLARED = list(KINDS.values())
EACH_KIND = pytest.mark.parametrize("kind", DECLARED, ids=[k.name for k in DECLARED])
TABLE = "tests/conformance/table.py"


# ----- the table and the declaration
def row_of(kind: VenueKind) -> Conformance:
    row = ROWS.get(kind.name)
    if row is None:
        pytest.fail(f"venue kind {kind.name!r} is declared but has no conformance row: add its documented frames "
                    f"(and, with an order format, its order examples) to ROWS in {TABLE}")
    return row


def order_row(kind: VenueKind) -> OrderRow:
    """The kind's order examples; a skip when its declaration has no order format."""
    if kind.order_format is None:
        pytest.skip(f"{kind.name}: VenueKind.order_format is None (no order API declared)")
    orders = row_of(kind).orders
    if orders is None:
        pytest.fail(f"venue kind {kind.name!r} declares an order_format but its row in {TABLE} has no order "
                    f"examples (orders=None)")
    return orders


def rate_row(kind: VenueKind) -> RateRow:
    """The kind's usage-header examples; a skip when its declaration documents no limits."""
    if kind.limits is None:
        pytest.skip(f"{kind.name}: VenueKind.limits is None (no documented limits)")
    if kind.order_format is None:
        pytest.fail(f"venue kind {kind.name!r} declares limits but no order_format to read usage headers with")
    rates = row_of(kind).rates
    if rates is None:
        pytest.fail(f"venue kind {kind.name!r} declares limits but its row in {TABLE} has no usage-header "
                    f"examples (rates=None)")
    return rates


@pytest.fixture
def row(kind: VenueKind) -> Conformance:
    return row_of(kind)


@pytest.fixture
def orders(kind: VenueKind) -> OrderRow:
    return order_row(kind)


@pytest.fixture
def rates(kind: VenueKind) -> RateRow:
    return rate_row(kind)


def test_every_declared_kind_has_a_row_and_every_row_a_kind() -> None:
    assert set(KINDS) - set(ROWS) == set(), f"declared kinds without a conformance row in {TABLE}"
    assert set(ROWS) - set(KINDS) == set(), f"rows in {TABLE} for kinds nobody declares"


def test_skips_follow_the_declaration_not_the_name(monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever a kind is called: without an order format or limits its tests skip; with one but no examples
    in its row they fail; without a row at all everything fails."""
    trading = next(k for k in DECLARED if k.order_format is not None and k.limits is not None)
    with pytest.raises(pytest.skip.Exception, match="order_format is None"):
        order_row(dataclasses.replace(trading, order_format=None))
    with pytest.raises(pytest.skip.Exception, match="limits is None"):
        rate_row(dataclasses.replace(trading, limits=None))
    new = dataclasses.replace(trading, name="newvenue")
    with pytest.raises(pytest.fail.Exception, match="'newvenue' is declared but has no conformance row"):
        row_of(new)
    monkeypatch.setitem(ROWS, "newvenue", Conformance(market=ROWS[trading.name].market))  # market data only
    with pytest.raises(pytest.fail.Exception, match="has no order examples"):
        order_row(new)
    with pytest.raises(pytest.fail.Exception, match="has no usage-header examples"):
        rate_row(new)


# ----- helpers
def parse_or_refuse(fmt: MarketFormat, payload: bytes, binary: bool) -> MarketEvent | ProtocolError | None:
    """What ``parse`` makes of a frame: an event, None (an ack), or the ProtocolError it refused it with.
    Anything else it raises fails the test."""
    try:
        event = fmt.parse(payload, binary)
    except ProtocolError as exc:
        return exc
    assert event is None or isinstance(event, MARKET_EVENTS), f"parse returned {event!r}"
    return event


def data_type(kind: VenueKind) -> type:
    """What a kind's market data is: quotes for a spot book, funding for a perpetual."""
    return TopOfBook if kind.spot else FundingUpdate


def header(headers: Any, name: str) -> str | None:
    return next((v for k, v in headers.items() if k.lower() == name), None)


def sim_venue(sim: Simulator, kind: VenueKind) -> str:
    """The name of the (default config's) simulated venue that plays ``kind``."""
    names = [v.venue.name for v in sim.venues if v.venue.kind == kind.name]
    assert names, f"the default config's simulator plays no venue of kind {kind.name!r}: add one"
    return names[0]


def format_of(kind: VenueKind, orders: OrderRow) -> OrderFormat:
    """The kind's order format, after reading the row's exchangeInfo when it has one, as VenueClient reads the
    venue's rules at start (a format may need them: MEXC contract converts base units into contracts)."""
    fmt: OrderFormat = kind.order_format()  # type: ignore[misc]
    if orders.exchange_info is not None:
        fmt.parse_exchange_info(orders.exchange_info)
    return fmt


async def started_format(sim: Simulator, kind: VenueKind, name: str, symbol: str) -> OrderFormat:
    """The kind's order format after reading the simulated venue's rules for ``symbol`` (as VenueClient starts)."""
    fmt: OrderFormat = kind.order_format()  # type: ignore[misc]
    resp = await send(sim, name, fmt.build_exchange_info([symbol]))
    assert resp.status == 200, resp.body
    fmt.parse_exchange_info(resp.body)
    return fmt


def best_ask(sim: Simulator, kind: VenueKind, name: str, symbol: str) -> tuple[str, Decimal | None]:
    """The ask a buy meets now and the quantity there: the spot book's top, or a perpetual's touch around its
    published mark (no quantity limit: None)."""
    if kind.spot:
        _, _, ask, ask_qty = top(sim, name, symbol)
        return ask, Decimal(ask_qty)
    book = sim.venue(name).book
    return format(book.touch(book.index[symbol]).ask, "f"), None


async def send(sim: Simulator, venue: str, req: HttpRequest) -> HttpResponse:
    pool = HttpPool(sim.rest_url(venue), size=1)
    try:
        return await asyncio.wait_for(pool.request(req.method, req.path, req.headers, req.body), DEADLINE_S)
    finally:
        await pool.close()


# ----- 1. market data
def good_frames(row: Conformance) -> list[Frame]:
    return [f for f in row.market.documented if not f.xfail]


@EACH_KIND
def test_documented_frames_parse_exactly(kind: VenueKind, row: Conformance) -> None:
    wanted = data_type(kind)
    assert any(isinstance(f.expected, wanted) for f in good_frames(row)), (
        f"{kind.name}'s row documents no {wanted.__name__} frame")
    shared = kind.market_format()  # one parser for all frames: its decoders carry no state between frames
    for frame in good_frames(row):
        assert shared.parse(frame.payload, frame.binary) == frame.expected, frame.what
        assert kind.market_format().parse(frame.payload, frame.binary) == frame.expected, frame.what


KNOWN_BUGS = [
    pytest.param(KINDS[name], frame, id=f"{name}-{re.sub(r'[^a-z0-9]+', '-', frame.what)}",
                 marks=pytest.mark.xfail(strict=True, raises=(ProtocolError, AssertionError), reason=frame.xfail))
    for name, conformance in ROWS.items() if name in KINDS
    for frame in conformance.market.documented if frame.xfail
]


@pytest.mark.parametrize(("kind", "frame"), KNOWN_BUGS)
def test_documented_frames_with_a_known_bug(kind: VenueKind, frame: Frame) -> None:
    """Documented frames the format gets wrong today (the row says why): strict, so a fix shows up."""
    assert kind.market_format().parse(frame.payload, frame.binary) == frame.expected


@EACH_KIND
def test_malformed_frames_are_refused_with_protocol_error(kind: VenueKind, row: Conformance) -> None:
    assert row.market.malformed, f"{kind.name}'s row has no malformed frames"
    fmt = kind.market_format()
    for bad in row.market.malformed:
        with pytest.raises(ProtocolError):
            fmt.parse(bad.payload, bad.binary)
    # and the parser is still good for the next frame
    frame = good_frames(row)[0]
    assert fmt.parse(frame.payload, frame.binary) == frame.expected


@EACH_KIND
def test_mangled_documented_frames_only_raise_protocol_error(kind: VenueKind, row: Conformance) -> None:
    fmt = kind.market_format()
    for frame in row.market.documented:
        p = frame.payload
        variants = [p[:cut] for cut in range(len(p))]  # every truncation
        variants += [p[:i] + bytes([p[i] ^ 0xFF]) + p[i + 1:] for i in range(len(p))]  # every byte inverted
        variants += [p + p, b"\x00" + p]
        for payload in variants:
            for binary in (frame.binary, not frame.binary):
                parse_or_refuse(fmt, payload, binary)


json_keys = st.sampled_from(["stream", "data", "channel", "e", "s", "u", "b", "a", "r", "T", "id", "code", "msg",
                             "symbol", "rate"]) | st.text(max_size=4)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(json_keys, inner, max_size=7),
    max_leaves=20,
)


@EACH_KIND
@settings(deadline=None)  # a busy test machine must not turn slowness into failure
@given(payload=st.binary(max_size=300), binary=st.booleans())
def test_random_bytes_only_raise_protocol_error(kind: VenueKind, payload: bytes, binary: bool) -> None:
    parse_or_refuse(kind.market_format(), payload, binary)


@EACH_KIND
@settings(deadline=None)
@given(data=json_values)
def test_random_json_only_raises_protocol_error(kind: VenueKind, data: object) -> None:
    fmt = kind.market_format()
    for wrapped in (data, {"stream": "x", "data": data}, {"channel": "push.funding.rate", "data": data}):
        parse_or_refuse(fmt, json.dumps(wrapped).encode(), False)


# ----- 2. the simulated venue
async def test_the_simulator_plays_every_declared_kind(still_sim: Simulator) -> None:
    assert {v.venue.kind for v in still_sim.venues} == set(KINDS)


def _subscription(sim: Simulator, kind: VenueKind, row: Conformance) -> tuple[str, str, MarketFormat, str, list[str]]:
    """(venue name, wire symbol, the kind's market format, URL on the declared ws_path, frames to send)."""
    name = sim_venue(sim, kind)
    v = sim.venue(name)
    base = f"ws://{sim.cfg.sim.host}:{v.stream.port}"
    assert sim.ws_url(name) == base + kind.ws_path
    spec = next(s for s in sim.cfg.symbols if s.name == row.market.sim_symbol)
    fmt = kind.market_format()
    wire = fmt.wire_symbol(spec.base, spec.quote)
    channels = fmt.channels([wire], v.venue.feed)  # what the feed subscribes to, from the venue's own settings
    hello = [] if fmt.subscribes_in_url else fmt.subscribe_frames(channels)
    return name, wire, fmt, fmt.url(base + kind.ws_path, channels), hello


class Reader:
    """Parses every frame a connection received, once, with the kind's format (a refusal fails the test)."""

    def __init__(self, fmt: MarketFormat, listener: Collector) -> None:
        self.fmt, self.listener = fmt, listener
        self.events: list[MarketEvent] = []
        self._seen = 0

    def read(self) -> list[MarketEvent]:
        for binary, payload in self.listener.frames[self._seen:]:
            event = self.fmt.parse(payload, binary)  # ProtocolError: the simulator broke the venue's format
            if event is not None:
                self.events.append(event)
        self._seen = len(self.listener.frames)
        return self.events

    def latest(self, wanted: type, symbol: str) -> Any:
        return next((e for e in reversed(self.read()) if isinstance(e, wanted) and e.symbol == symbol), None)


def move(sim: Simulator, kind: VenueKind) -> None:
    """One step of the simulated market of the kind: a quote for every (venue, symbol), or a funding push."""
    if kind.spot:
        sim.emit(sim.model.n_slots)
    else:
        sim.push_funding()


def sim_state(sim: Simulator, kind: VenueKind, name: str, symbol: str) -> Any:
    """What the simulator says the venue last sent for ``symbol``: the quote, or (rate, next funding, mark)."""
    if kind.spot:
        return sim.top_of_book(name, symbol)
    rate, next_ms, mark = sim.funding(name, symbol)
    return float(rate), next_ms, float(mark)


def is_state(kind: VenueKind, event: Any, state: Any) -> bool:
    if event is None or kind.spot:
        return bool(event == state)
    rate, next_ms, mark = state
    # a venue whose funding push carries no mark price says 0.0 (FundingUpdate)
    return (event.rate, event.next_funding_ms) == (rate, next_ms) and event.mark_price in (mark, 0.0)


@EACH_KIND
async def test_simulated_venue_speaks_the_declared_market_format(
    kind: VenueKind, row: Conformance, still_sim: Simulator
) -> None:
    sim = still_sim
    name, wire, fmt, url, hello = _subscription(sim, kind, row)
    wanted, symbol = data_type(kind), row.market.sim_symbol
    transport, listener = await connect(url, hello)
    try:
        reader = Reader(fmt, listener)

        def subscribed() -> bool:
            if reader.latest(wanted, wire) is not None:
                return True
            move(sim, kind)  # the market moves until the subscription is in
            return False

        await eventually_async(subscribed, DEADLINE_S, f"{kind.name}: a {wanted.__name__} on {kind.ws_path}")
        # Now subscribed: one more step, and the latest frame for the symbol is exactly the simulator's state.
        move(sim, kind)
        expected = sim_state(sim, kind, name, symbol)
        await eventually_async(lambda: is_state(kind, reader.latest(wanted, wire), expected), DEADLINE_S,
                               f"{kind.name}: the latest {wanted.__name__} for {wire} to be {expected}")
        event = reader.latest(wanted, wire)
        if kind.spot:
            assert 0 < event.bid < event.ask and event.bid_qty > 0 and event.ask_qty > 0
        else:
            assert -1 < event.rate < 1 and event.next_funding_ms > event.event_ms
            assert abs(event.event_ms - now_ms()) < 60_000  # stamped by the venue's clock
    finally:
        transport.disconnect()


@EACH_KIND
async def test_book_from_the_simulated_venues_snapshot_and_diffs_is_its_book(
    kind: VenueKind, row: Conformance, still_sim: Simulator
) -> None:
    """The feed's procedure (``BookSync``) over the kind's own formats — the REST snapshot at
    ``snapshot_path`` read by ``parse_snapshot``, the diff stream read by ``parse`` — rebuilds the
    simulated venue's book exactly."""
    if not kind.spot:
        pytest.skip(f"{kind.name}: VenueKind.spot is False (a perpetual has no book)")
    sim = still_sim
    name, wire, fmt, url, hello = _subscription(sim, kind, row)
    feed = sim.venue(name).venue.feed
    if feed.depth != "diff":
        pytest.skip(f"{kind.name}: the default config's feed takes no diff depth (feed.depth={feed.depth!r})")
    symbol = row.market.sim_symbol
    transport, listener = await connect(url, hello)
    try:
        reader = Reader(fmt, listener)

        def subscribed() -> bool:
            if reader.latest(TopOfBook, wire) is not None:
                return True
            move(sim, kind)
            return False

        await eventually_async(subscribed, DEADLINE_S, f"{kind.name}: subscribed")
        resp = await http(sim, name, "GET", fmt.snapshot_path(wire, feed.snapshot_limit))
        assert resp.status == 200, resp.body
        snapshot = fmt.parse_snapshot(wire, resp.body)
        assert isinstance(snapshot, DepthSnapshot) and snapshot.symbol == wire
        sync = BookSync()
        assert sync.on_snapshot(snapshot) == APPLIED
        seen = 0
        for _ in range(3):
            move(sim, kind)
            sim.flush_depth(feed.depth_interval_ms)
            update_id = sim.book_levels(name, symbol)[0]
            await eventually_async(lambda update_id=update_id: any(
                isinstance(e, DepthDiff) and e.symbol == wire and e.last_id == update_id for e in reader.read()),
                DEADLINE_S, f"{kind.name}: a diff up to {update_id}")
            diffs = [e for e in reader.read() if isinstance(e, DepthDiff) and e.symbol == wire]
            for d in diffs[seen:]:
                assert sync.on_diff(d) in (APPLIED, DUPLICATE), (d, sync.last_id)
            seen = len(diffs)
            _, bids, asks = sim.book_levels(name, symbol)
            want = ([(float(p), float(q)) for p, q in bids], [(float(p), float(q)) for p, q in asks])
            assert sync.last_id == update_id and sync.book.levels() == want
    finally:
        transport.disconnect()


@EACH_KIND
async def test_simulated_venue_answers_the_formats_keepalive(
    kind: VenueKind, row: Conformance, still_sim: Simulator
) -> None:
    fmt = kind.market_format()
    ping = fmt.keepalive_frame()
    if ping is None:
        pytest.skip(f"{kind.name}: its market format's keepalive_frame() is None (no application-level ping)")
    _, _, fmt, url, _ = _subscription(still_sim, kind, row)
    transport, listener = await connect(url)
    try:
        reader = Reader(fmt, listener)
        listener.send(ping)
        await eventually_async(lambda: Notice(NOTICE_PONG) in reader.read(), DEADLINE_S, f"{kind.name}: a pong")
    finally:
        transport.disconnect()


# ----- 3. signing
@EACH_KIND
def test_documented_signing_examples_reproduce(kind: VenueKind, orders: OrderRow) -> None:
    assert orders.signing, f"{kind.name}'s row has no documented signing example"
    for s in orders.signing:
        independent = hmac.new(s.secret.encode(), (s.query + s.body).encode(), hashlib.sha256).hexdigest()
        assert independent == s.signature, f"{s.what}: the row's example is not HMAC-SHA256 of query + body"
        assert orders.sign(s.secret, s.query, s.body) == s.signature, s.what
        assert hmac_sha256_hex(s.secret, s.query + s.body) == s.signature, s.what
    for r in orders.documented_requests:
        req = orders.signed_request(r.method, r.path, list(r.params), r.api_key, r.api_secret)
        assert (req.method, req.path, req.body) == (r.method, r.signed_path, b""), r.what
        assert req.headers == [(kind.api_key_header, r.api_key)], r.what


@EACH_KIND
def test_order_requests_are_signed_byte_for_byte(kind: VenueKind, orders: OrderRow) -> None:
    fmt = format_of(kind, orders)
    builds = {r.build for r in orders.requests}
    assert {"build_new_order", "build_query_order"} <= builds, f"{kind.name}'s row lacks a new order or a query"
    auth = {"api_key": orders.api_key, "api_secret": orders.api_secret, "timestamp_ms": orders.timestamp_ms,
            "recv_window_ms": orders.recv_window_ms}
    for r in orders.requests:
        req = getattr(fmt, r.build)(**r.args, **auth)
        if r.headers is not None:  # signed in headers (MEXC contract): the path and body go as they are
            assert (req.method, req.path, req.body) == (r.method, r.unsigned_path, r.body), r.what
            assert req.headers == list(r.headers), r.what
            continue
        query = r.unsigned_path.partition("?")[2]
        signature = hmac.new(orders.api_secret.encode(), query.encode() + r.body, hashlib.sha256).hexdigest()
        assert req.method == r.method, r.what
        assert req.path == f"{r.unsigned_path}&signature={signature}", r.what
        assert req.headers == [(kind.api_key_header, orders.api_key)], r.what
        assert req.body == r.body, r.what


# ----- 4. order answers
@EACH_KIND
def test_documented_answers_parse_exactly(kind: VenueKind, orders: OrderRow) -> None:
    fmt = format_of(kind, orders)
    assert {a.new_order for a in orders.answers} == {True, False}, (
        f"{kind.name}'s row needs a documented new-order answer and a query answer")
    for a in orders.answers:
        got = fmt.parse_order(a.http_status, a.body, a.headers, new_order=a.new_order)
        assert isinstance(got, OrderAnswer) and got == a.expected, a.what
        assert got.kind == ANSWER_OK and got.order_id, a.what


@EACH_KIND
def test_error_answers_keep_the_venues_code_and_message(kind: VenueKind, orders: OrderRow) -> None:
    fmt = format_of(kind, orders)
    assert orders.errors, f"{kind.name}'s row has no error answer"
    for a in orders.errors:
        got = fmt.parse_order(a.http_status, a.body, a.headers, new_order=True)
        assert got == a.expected, a.what
        code, msg = fmt.parse_error(a.http_status, a.body)
        assert (got.kind, got.status, got.error_code, got.error_msg) == (ANSWER_REJECTED, REJECTED, code, msg), a.what
        assert code != 0 and msg, a.what
        # The same refusal of a query or cancel says nothing about the order: UNKNOWN, code kept.
        again = fmt.parse_order(a.http_status, a.body, a.headers, new_order=False)
        assert (again.kind, again.status, again.error_code, again.error_msg) == (ANSWER_REJECTED, UNKNOWN, code, msg)


@EACH_KIND
def test_throttled_answers_are_recognised_with_retry_after(kind: VenueKind, orders: OrderRow) -> None:
    fmt = format_of(kind, orders)
    assert 429 in orders.throttle_statuses
    assert {a.http_status for a in orders.throttled} == set(orders.throttle_statuses), (
        f"{kind.name}'s row needs a throttled example for each of {orders.throttle_statuses}")
    for a in orders.throttled:
        got = fmt.parse_order(a.http_status, a.body, a.headers)
        assert got == a.expected, a.what
        wait = header(a.headers, "retry-after")
        assert (got.kind, got.status, got.http_status) == (ANSWER_THROTTLED, REJECTED, a.http_status), a.what
        assert got.retry_after_s == (float(wait) if wait is not None else 0.0), a.what
        assert fmt.parse_rate_headers(a.headers).retry_after_s == (float(wait) if wait is not None else None)
        query = fmt.parse_order(a.http_status, a.body, a.headers, new_order=False)
        assert (query.kind, query.status, query.retry_after_s) == (ANSWER_THROTTLED, UNKNOWN, got.retry_after_s)


# ----- 5. rate limits
@EACH_KIND
def test_documented_limits_and_usage_headers(kind: VenueKind, rates: RateRow) -> None:
    assert kind.limits is not None and tuple(kind.limits) == rates.limits
    fmt: OrderFormat = kind.order_format()  # type: ignore[misc]
    assert fmt.parse_rate_headers(rates.headers) == rates.expected
    assert fmt.parse_rate_headers({k.upper(): v for k, v in rates.headers.items()}) == rates.expected
    assert fmt.parse_rate_headers({k: "lots" for k in rates.headers}) == RateHeaders(None, None, None, None)
    assert fmt.parse_rate_headers({}) == RateHeaders(None, None, None, None)
    assert set(rates.live) <= set(RateHeaders._fields)


# ----- 6. orders against the simulated venue
def _creds(sim: Simulator, kind: VenueKind) -> tuple[str, str, str]:
    name = sim_venue(sim, kind)
    assert name in CREDS, f"tests/sim_kit.py CREDS has no key for the simulated {kind.name} venue {name!r}"
    return name, *CREDS[name]


def _new_order(fmt: OrderFormat, symbol: str, price: str, qty: str, client_order_id: str, key: str,
               secret: str) -> HttpRequest:
    return fmt.build_new_order(symbol=symbol, side="BUY", price=price, qty=qty, client_order_id=client_order_id,
                               api_key=key, api_secret=secret, timestamp_ms=now_ms(), recv_window_ms=5000)


def _query(fmt: OrderFormat, symbol: str, client_order_id: str, key: str, secret: str) -> HttpRequest:
    return fmt.build_query_order(symbol=symbol, client_order_id=client_order_id, api_key=key, api_secret=secret,
                                 timestamp_ms=now_ms(), recv_window_ms=5000)


def _client_id() -> str:
    return f"cf{time.time_ns():x}"


def _symbol(row: Conformance) -> str:
    return row.market.sim_symbol


@EACH_KIND
async def test_ioc_order_against_the_simulated_venue(
    kind: VenueKind, orders: OrderRow, row: Conformance, still_sim: Simulator
) -> None:
    sim, symbol = still_sim, _symbol(row)
    name, key, secret = _creds(sim, kind)
    fmt = await started_format(sim, kind, name, symbol)
    ask, ask_qty = best_ask(sim, kind, name, symbol)
    qty = Decimal(orders.sim_qty)
    assert ask_qty is None or ask_qty >= qty, "the top of book must fill the whole IOC"
    cid = _client_id()
    resp = await send(sim, name, _new_order(fmt, symbol, ask, orders.sim_qty, cid, key, secret))
    placed = fmt.parse_order(resp.status, resp.body, resp.headers)
    assert placed.kind == ANSWER_OK and placed.http_status == 200, placed
    assert placed.order_id and placed.client_order_id in (cid, ""), placed  # an acknowledgement may omit it
    assert placed.status in (NEW, FILLED), placed
    if placed.status == FILLED:
        assert placed.executed_qty == qty and placed.cum_quote == qty * Decimal(ask), placed

    resp = await send(sim, name, _query(fmt, symbol, cid, key, secret))
    found = fmt.parse_order(resp.status, resp.body, resp.headers, new_order=False)
    assert (found.kind, found.status, found.order_id, found.client_order_id) == (
        ANSWER_OK, FILLED, placed.order_id, cid), found
    assert (found.executed_qty, found.cum_quote) == (qty, qty * Decimal(ask)) and found.final
    # nothing is left open to cancel: the venue says so in a code the format knows as "no such order"
    cancel = fmt.build_cancel_order(symbol=symbol, client_order_id=cid, api_key=key, api_secret=secret,
                                    timestamp_ms=now_ms(), recv_window_ms=5000)
    resp = await send(sim, name, cancel)
    assert fmt.not_found(fmt.parse_order(resp.status, resp.body, resp.headers, new_order=False)), resp.body


@EACH_KIND
async def test_simulated_venues_rules_and_clock_read_with_the_format(
    kind: VenueKind, orders: OrderRow, row: Conformance, still_sim: Simulator
) -> None:
    sim, symbol = still_sim, _symbol(row)
    name = sim_venue(sim, kind)
    fmt: OrderFormat = kind.order_format()  # type: ignore[misc]
    resp = await send(sim, name, fmt.build_exchange_info([symbol]))
    assert resp.status == 200, resp.body
    rules = fmt.parse_exchange_info(resp.body)[symbol]
    spec = next(s for s in sim.specs if s.name == symbol)
    min_notional = spec.min_notional if orders.publishes_min_notional else 0
    assert (rules.tick, rules.step, rules.min_notional) == (Decimal(spec.tick_text), Decimal(spec.step_text),
                                                            min_notional)
    assert (rules.price_decimals, rules.qty_decimals) == (spec.price_decimals, spec.qty_decimals)
    before = now_ms()
    resp = await send(sim, name, fmt.build_time())
    assert before - 1000 <= fmt.parse_time(resp.body) <= now_ms() + 1000


@EACH_KIND
async def test_bad_signature_is_refused_in_the_venues_error_format(
    kind: VenueKind, orders: OrderRow, row: Conformance, still_sim: Simulator
) -> None:
    sim, symbol = still_sim, _symbol(row)
    name, key, secret = _creds(sim, kind)
    fmt = await started_format(sim, kind, name, symbol)
    ask, _ = best_ask(sim, kind, name, symbol)
    cid = _client_id()
    resp = await send(sim, name, _new_order(fmt, symbol, ask, orders.sim_qty, cid, key, secret + "-wrong"))
    status, code, msg = orders.bad_signature
    assert (resp.status, json.loads(resp.body)) == (status, orders.error_body(code, msg))
    assert fmt.parse_error(resp.status, resp.body) == (code, msg)
    refused = fmt.parse_order(resp.status, resp.body, resp.headers)
    assert (refused.kind, refused.status, refused.error_code, refused.error_msg) == (
        ANSWER_REJECTED, REJECTED, code, msg)
    # the refused order never existed
    resp = await send(sim, name, _query(fmt, symbol, cid, key, secret))
    assert fmt.not_found(fmt.parse_order(resp.status, resp.body, resp.headers, new_order=False))
    assert sim.venue(name).book.orders == 0


@EACH_KIND
async def test_the_simulated_venues_throttling_is_recognised(
    kind: VenueKind, orders: OrderRow, row: Conformance, still_sim: Simulator
) -> None:
    sim, symbol = still_sim, _symbol(row)
    name, key, secret = _creds(sim, kind)
    fmt = await started_format(sim, kind, name, symbol)
    ask, _ = best_ask(sim, kind, name, symbol)
    sim.inject_order_fault(name, "rate_limit", seconds=5.0)
    answers: list[OrderAnswer] = []
    for _ in orders.throttle_statuses:  # Binance bans (418) a client that sends again before Retry-After
        resp = await send(sim, name, _new_order(fmt, symbol, ask, orders.sim_qty, _client_id(), key, secret))
        a = fmt.parse_order(resp.status, resp.body, resp.headers)
        wait = header(resp.headers, "retry-after")
        assert wait is not None and (a.kind, a.status) == (ANSWER_THROTTLED, REJECTED), a
        assert a.retry_after_s == float(wait) >= 1 and (a.error_code, a.error_msg) == fmt.parse_error(
            resp.status, resp.body)
        answers.append(a)
    assert tuple(a.http_status for a in answers) == orders.throttle_statuses
    assert sim.venue(name).book.orders == 0  # a throttled order never reached the engine


@EACH_KIND
async def test_the_simulated_venue_reports_usage(
    kind: VenueKind, rates: RateRow, orders: OrderRow, row: Conformance, still_sim: Simulator
) -> None:
    sim, symbol = still_sim, _symbol(row)
    name, key, secret = _creds(sim, kind)
    fmt = await started_format(sim, kind, name, symbol)
    ask, _ = best_ask(sim, kind, name, symbol)
    resp = await send(sim, name, _new_order(fmt, symbol, ask, orders.sim_qty, _client_id(), key, secret))
    assert resp.status == 200, resp.body
    usage = fmt.parse_rate_headers(resp.headers)
    reported = {f for f in RateHeaders._fields if getattr(usage, f) is not None}
    assert reported == set(rates.live), usage
    # this order counts on every order counter, and on the weight where the venue weighs a new order (USD-M: 0)
    counted = [f for f in rates.live if f != "weight_1m" or fmt.weights.new_order > 0]
    assert all(getattr(usage, f) >= 1 for f in counted), usage
