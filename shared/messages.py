"""Messages between draizer's actors: msgspec Structs, MessagePack on the wire.

Hot-path messages are ``array_like=True, gc=False`` with small integer tags: they are encoded positionally
and never persisted (the bridge turns them into named records at the edge). Venues and symbols are small
integer ids from ``shared.registry.Registry``. Every hot-path message carries ``time.monotonic_ns()``
stamps, which all processes on one host share:

    tick_ns      frame received by the feed (the quote that triggered the opportunity)
    pub_ns       quote published by the feed
    detected_ns  opportunity found by the detector
    decided_ns   risk decision taken
    journaled_ns every order record of the intent written to the journal (before any request)
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
TAG_VENUE = 14
TAG_ALERT = 15
TAG_FUNDING_PAYMENT = 16
TAG_CARRY = 17

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
    sent_ns: int  # monotonic: when its request left
    ack_ns: int  # monotonic: when the venue's first answer came (no answer: when the execution closed)
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


class LegFill(Struct, array_like=True, gc=False, frozen=True):
    """One order of an execution as it ended: a planned leg, or an order that unwound or hedged one."""

    role: int  # ROLE_LEG / ROLE_UNWIND / ROLE_HEDGE
    leg: int  # index of the planned leg it belongs to
    venue: int
    symbol: int
    side: int
    client_order_id: str
    qty: str  # as sent
    filled_qty: str  # exact, as the venue reported it
    quote_qty: str  # exact cumulative quote amount
    status: str  # final state: FILLED, PARTIALLY_FILLED (then expired), CANCELED, REJECTED, EXPIRED, UNKNOWN
    fee_usd: float


class AssetDelta(Struct, array_like=True, gc=False, frozen=True):
    """How one asset's balance on one venue moved: fills and commissions, exact decimal text."""

    venue: int
    asset: str
    delta: str


ROLE_LEG = 0
ROLE_UNWIND = 1
ROLE_HEDGE = 2
ROLE_NAMES = ("leg", "unwind", "hedge")

# Execution outcomes
OUTCOME_FILLED = "filled"  # every leg filled as planned
OUTCOME_PARTIAL = "partial"  # every leg filled the same fraction of the plan (nothing left over)
OUTCOME_UNWOUND = "unwound"  # legs filled unevenly; the excess was reversed within the deadline
OUTCOME_HEDGED = "hedged"  # legs filled unevenly; the shortfall was completed within the deadline
OUTCOME_MISSED = "missed"  # nothing filled
OUTCOME_REJECTED = "rejected"  # the venue refused every leg that was sent
OUTCOME_ORPHANED = "orphaned"  # an imbalance outlived the deadline: an alert goes out with it
OUTCOME_ABORTED = "aborted"  # refused before any order went out (kill switch, venue blocked)


class Execution(_Hot, tag=TAG_EXECUTION):
    """The outcome of every leg of one opportunity. ``buy_*``/``sell_*`` describe the first buy and the
    first sell leg (a cross pair's two legs); ``legs`` has every order, ``deltas`` every balance move, and
    ``pnl_usd`` is those deltas valued at the execution's own prices."""

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
    outcome: str  # OUTCOME_*
    tick_ns: int
    detected_ns: int
    decided_ns: int
    sent_ns: int
    done_ns: int
    strategy: int = 0
    legs: tuple[LegFill, ...] = ()
    deltas: tuple[AssetDelta, ...] = ()
    residual_usd: float = 0.0  # inventory left over (step dust, commissions in the base asset), at those prices
    note: str = ""  # why it ended as it did, when not plainly filled
    pub_ns: int = 0  # the triggering quote's publish stamp (the feed's stage ends here)
    journaled_ns: int = 0  # every order record written (page cache), just before the first request


class VenueState(_Hot, tag=TAG_VENUE):
    """What the executor knows of a venue account: balances and how much of the rate budget is used."""

    venue: int
    ts_ns: int  # wall clock (time.time_ns)
    reachable: bool
    balances: tuple[tuple[str, str], ...]  # (asset, free) exact decimal text
    weight_1m: int  # request weight used in the current minute (X-MBX-USED-WEIGHT-1M; MEXC: requests)
    weight_limit_1m: int
    orders_10s: int  # orders in the current 10 s window (X-MBX-ORDER-COUNT-10S)
    orders_limit_10s: int
    orders_1d: int
    orders_limit_1d: int
    blocked_until_ms: int  # wall clock: a 429/418 Retry-After; 0 when not blocked
    open_orders: int
    # What draizer's trading moved on this venue in the session: (asset, exact delta) from the executor's books.
    # Summed over venues per asset it is draizer's net delta (a perpetual position is a signed base balance).
    session_deltas: tuple[tuple[str, str], ...] = ()
    perp: PerpMargin | None = None  # a perpetual venue's margin account; None for spot


class PerpPositionState(Struct, array_like=True, gc=False, frozen=True):
    """One open perpetual position as the venue last stated it."""

    symbol: int
    size: str  # signed base units, exact (short < 0)
    entry_price: float
    mark_price: float
    liquidation_price: float  # 0: none stated
    leverage: int
    margin_usd: float  # its initial margin


class PerpMargin(Struct, array_like=True, gc=False, frozen=True):
    """A perpetual venue's margin account (USDT): what risk's leverage, margin and liquidation rules read."""

    wallet: float
    margin_balance: float  # wallet + unrealized
    available: float
    maint_margin: float
    leverage: tuple[tuple[int, int], ...]  # (symbol, leverage set at start) for every traded symbol
    positions: tuple[PerpPositionState, ...]


class FundingPayment(_Hot, tag=TAG_FUNDING_PAYMENT):
    """A funding settlement booked from the venue's income history (once per ``payment_id``)."""

    venue: int
    symbol: int
    payment_id: str
    amount: str  # exact, in ``asset``: > 0 received
    asset: str
    amount_usd: float
    time_ms: int  # venue clock
    carry_id: int  # the carry position it accrues to (its opening opportunity id); 0: none open
    ts_ns: int  # wall clock when booked


class CarryPosition(_Hot, tag=TAG_CARRY):
    """One spot-perpetual carry's life: published when it opens, on every funding payment, and when it closes.
    Identity: ``carry_id``, the opening opportunity's id."""

    carry_id: int
    symbol: int
    spot_venue: int  # -1: unhedged (the perpetual alone)
    perp_venue: int
    state: str  # "open" | "closed"
    spot_qty: str  # base held on the spot venue, exact
    perp_qty: str  # the perpetual position it holds (negative: short), exact
    entry_basis_bps: float  # (perp entry - spot entry) / spot entry at the opening fills
    exit_basis_bps: float  # at the closing fills; 0 while open
    funding_usd: float  # collected so far (paid: negative)
    fees_usd: float  # every leg's commissions, opening and closing
    pnl_usd: float  # trading PnL of its executions (at their own prices) + funding
    opened_ms: int  # wall clock
    closed_ms: int  # 0 while open
    ts_ns: int  # wall clock of this update


class Alert(_Hot, tag=TAG_ALERT):
    """Something an operator must see: a breaker tripped, the kill switch, an orphaned position."""

    source: str  # service name
    kind: str  # "failure_breaker", "loss_breaker", "daily_loss", "kill_switch", "orphan", "reconcile"
    message: str
    until_ms: int  # wall clock the condition lasts until; 0: until cleared by an operator
    ts_ns: int  # wall clock (time.time_ns), unlike the hot-path monotonic stamps


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
Event = (
    Opportunity | RiskDecision | OrderUpdate | Fill | Execution | Stats | VenueState | Alert | FundingPayment
    | CarryPosition
)
Control = Command | Reply

# First frame of each event on a PUB socket; subscribers filter by prefix.
TOPIC_QUOTES = b"q."
TOPIC_OPPORTUNITY = b"ev.opp"
TOPIC_DECISION = b"ev.dec"
TOPIC_ORDER = b"ev.ord"
TOPIC_FILL = b"ev.fill"
TOPIC_EXECUTION = b"ev.exec"
TOPIC_STATS = b"ev.stats"
TOPIC_VENUE = b"ev.venue"
TOPIC_ALERT = b"ev.alert"
TOPIC_FUNDING_PAYMENT = b"ev.funding"
TOPIC_CARRY = b"ev.carry"

TOPIC_OF: dict[type, bytes] = {
    Opportunity: TOPIC_OPPORTUNITY,
    RiskDecision: TOPIC_DECISION,
    OrderUpdate: TOPIC_ORDER,
    Fill: TOPIC_FILL,
    Execution: TOPIC_EXECUTION,
    Stats: TOPIC_STATS,
    VenueState: TOPIC_VENUE,
    Alert: TOPIC_ALERT,
    FundingPayment: TOPIC_FUNDING_PAYMENT,
    CarryPosition: TOPIC_CARRY,
}


def quotes_topic(venue: int) -> bytes:
    return TOPIC_QUOTES + str(venue).encode()
