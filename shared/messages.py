"""Messages between draizer's actors: msgspec Structs, MessagePack on the wire.

Hot-path messages are ``array_like=True, gc=False`` with small integer tags: they are encoded positionally
and never persisted (the bridge turns them into named records at the edge). Venues and symbols are small
integer ids from ``shared.registry.Registry``. Every hot-path message carries ``time.monotonic_ns()``
stamps, which all processes on one host share:

    tick_ns      frame received by the feed (the quote that triggered the opportunity)
    pub_ns       quote published by the feed
    detected_ns  opportunity found by the detector
    decided_ns   risk decision taken
    sent_ns      first order request written to the venue's socket

Each socket carries one tagged union, decoded by one ``Decoder`` created once (see ``shared.codec``).
"""

from __future__ import annotations

from typing import Any

from msgspec import Struct

# Integer tags keep the positional encoding compact: one small int in front of each message.
TAG_QUOTE = 1
TAG_OPPORTUNITY = 2
TAG_DECISION = 3
TAG_INTENT = 4
TAG_ORDER = 5
TAG_FILL = 6
TAG_EXECUTION = 7
TAG_STATS = 8
TAG_COMMAND = 9
TAG_REPLY = 10
TAG_BOOK = 11
TAG_FUNDING = 12
TAG_MARKET_BATCH = 13

SIDE_BUY = 0
SIDE_SELL = 1

STRATEGY_CROSS = 0
STRATEGY_TRIANGULAR = 1
STRATEGY_FUNDING = 2
STRATEGY_NAMES = ("cross_exchange", "triangular", "funding_rate")

ACTION_OPEN = 0  # take the position the legs describe
ACTION_CLOSE = 1  # funding carry: the reason to hold is gone, unwind the legs of the earlier OPEN
ACTION_NAMES = ("open", "close")


class _Hot(Struct, array_like=True, gc=False, frozen=True):
    pass


class Quote(_Hot, tag=TAG_QUOTE):
    """Top of book of one symbol on one venue."""

    venue: int
    symbol: int
    bid: float
    bid_qty: float
    ask: float
    ask_qty: float
    seq: int  # venue update id (Binance ``u``, MEXC ``version``); 0 where the venue sends none
    tick_ns: int


class Book(_Hot, tag=TAG_BOOK):
    """The best ``depth_levels`` of a venue's local book after an update (best first). Levels beyond what
    the book holds are absent, not zero-filled."""

    venue: int
    symbol: int
    seq: int  # the book's update id (Binance ``u`` / ``lastUpdateId``, MEXC ``toVersion``)
    bid_px: list[float]
    bid_qty: list[float]
    ask_px: list[float]
    ask_qty: list[float]
    tick_ns: int


class Funding(_Hot, tag=TAG_FUNDING):
    """A perpetual's funding rate as the venue last reported it."""

    venue: int
    symbol: int
    rate: float  # per funding period, e.g. 0.0001 = 1 bp
    next_funding_ms: int  # wall clock (venue time) of the next settlement
    mark_price: float  # 0 when the venue's push carries none (MEXC)
    event_ms: int  # the venue's event time
    tick_ns: int


class Leg(Struct, array_like=True, gc=False, frozen=True):
    """One order an opportunity needs: ``qty`` of ``symbol`` on ``venue`` at limit ``price`` or better."""

    venue: int
    symbol: int
    side: int  # SIDE_BUY / SIDE_SELL
    price: float  # the worst book level the size reaches: a limit on the venue's tick
    qty: float  # base units, a multiple of the venue's step
    quote_usd: float  # USD per unit of the symbol's quote asset when detected (1.0 for USDT pairs)
    quote_ns: int  # receive stamp of the quote or book the leg was priced on (its age = detected_ns - this)


class Opportunity(_Hot, tag=TAG_OPPORTUNITY):
    """A trade the detector found: its legs, sized, rounded and priced, with the profit they should make.

    cross_exchange: [buy on the cheap venue, sell on the dear one], same symbol and quantity.
    triangular: three legs on one venue, in cycle order (each leg spends what the previous one bought).
    funding_rate: [buy spot, sell perp] (hedged) or [sell perp] alone; ACTION_CLOSE signals the unwind.
    """

    id: int
    strategy: int  # STRATEGY_*
    action: int  # ACTION_*
    symbol: int  # the symbol whose update found it
    legs: tuple[Leg, ...]
    notional_usd: float  # what the first leg spends, in USD
    spread_bps: float  # net of every leg's taker fee (funding: the annualised net carry, in bps)
    expected_profit_usd: float  # net of fees; funding: the carry expected over the strategy's horizon
    tick_ns: int
    pub_ns: int
    detected_ns: int


class RiskDecision(_Hot, tag=TAG_DECISION):
    opportunity: Opportunity
    approved: bool
    reason: str  # "approved" or the rule that refused it
    decided_ns: int


class OrderIntent(_Hot, tag=TAG_INTENT):
    """An approved opportunity handed to the executor."""

    opportunity: Opportunity
    decided_ns: int


class OrderUpdate(_Hot, tag=TAG_ORDER):
    """One order's state as the venue reported it (the venue's own status names)."""

    client_order_id: str
    opportunity_id: int
    venue: int
    symbol: int
    side: int
    price: str  # exactly as sent
    qty: str
    status: str  # NEW, PARTIALLY_FILLED, FILLED, CANCELED, REJECTED, EXPIRED, UNKNOWN
    filled_qty: float
    avg_price: float
    error_code: int
    error_msg: str
    sent_ns: int
    ack_ns: int
    tick_ns: int


class Fill(_Hot, tag=TAG_FILL):
    client_order_id: str
    opportunity_id: int
    venue: int
    symbol: int
    side: int
    price: float
    qty: float
    fee_usd: float
    trade_id: str
    ts_ns: int


class Execution(_Hot, tag=TAG_EXECUTION):
    """The outcome of both legs of one opportunity."""

    opportunity_id: int
    symbol: int
    buy_venue: int
    sell_venue: int
    bought_qty: float
    sold_qty: float
    buy_avg_price: float
    sell_avg_price: float
    fees_usd: float
    pnl_usd: float  # realized on the matched quantity, net of fees
    notional_usd: float
    outcome: str  # "filled", "partial", "imbalanced", "missed", "failed"
    tick_ns: int
    detected_ns: int
    decided_ns: int
    sent_ns: int
    done_ns: int


class Stats(_Hot, tag=TAG_STATS):
    """A service's heartbeat: its lifecycle state and cumulative counters."""

    service: str
    pid: int
    state: str
    ts_ns: int
    counters: dict[str, int]
    gauges: dict[str, float]
    prices: list[tuple[int, int, float, float]]  # (venue, symbol, bid, ask), feeds only
    latencies_ns: dict[str, list[int]]  # stage -> samples since the last heartbeat
    funding: list[tuple[int, int, float, int]] = []  # (venue, symbol, rate, next funding ms), perp feeds
    book_states: list[tuple[int, int, int]] = []  # (venue, symbol, 0 syncing | 1 live | 2 stale), feeds


class Command(Struct, tag=TAG_COMMAND, frozen=True):
    cmd: str  # "status", "ping", "shutdown"
    args: dict[str, Any] = {}


class Reply(Struct, tag=TAG_REPLY, frozen=True):
    ok: bool
    data: dict[str, Any] = {}
    error: str = ""


MarketItem = Quote | Book | Funding


class MarketBatch(_Hot, tag=TAG_MARKET_BATCH):
    """Everything one feed read from one socket read, published as one message (one publish stamp)."""

    pub_ns: int
    items: list[MarketItem]


MarketData = MarketBatch
Event = Opportunity | RiskDecision | OrderUpdate | Fill | Execution | Stats
Control = Command | Reply

# First frame of each event on a PUB socket; subscribers filter by prefix.
TOPIC_QUOTES = b"q."
TOPIC_OPPORTUNITY = b"ev.opp"
TOPIC_DECISION = b"ev.dec"
TOPIC_ORDER = b"ev.ord"
TOPIC_FILL = b"ev.fill"
TOPIC_EXECUTION = b"ev.exec"
TOPIC_STATS = b"ev.stats"

TOPIC_OF: dict[type, bytes] = {
    Opportunity: TOPIC_OPPORTUNITY,
    RiskDecision: TOPIC_DECISION,
    OrderUpdate: TOPIC_ORDER,
    Fill: TOPIC_FILL,
    Execution: TOPIC_EXECUTION,
    Stats: TOPIC_STATS,
}


def quotes_topic(venue: int) -> bytes:
    return TOPIC_QUOTES + str(venue).encode()
