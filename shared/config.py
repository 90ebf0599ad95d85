"""Engine configuration: one TOML file validated into frozen msgspec Structs.

Unknown keys and bad values are errors that name the key (msgspec reports the path, e.g.
``$.risk.max_concurrent``). Secrets never live here: venues name the *environment variables* that hold
their API key and secret.
"""

from __future__ import annotations

import itertools
import math
import os
import urllib.parse
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Literal

import msgspec
from msgspec import Meta, Struct

from shared.config_hints import did_you_mean
from shared.errors import ConfigError
from shared.venues.kinds import KIND_NAMES, kind_of

PositiveFloat = Annotated[float, Meta(gt=0)]  # unbounded above: prefer the bounded kinds below for a new field
NonNegFloat = Annotated[float, Meta(ge=0)]
# Every float limit is finite and bounded above. TOML (and MessagePack) can carry nan and ±inf, and msgspec's
# ``ge``/``gt`` let inf through; ``check_finite`` refuses them by key, and these bounds refuse absurd finite
# values (1e308) that would overflow the integer ns/ms the services derive from them or swamp the kernels.
MAX_USD = 1e12  # a trillion dollars (the benchmarks' "no limit")
MAX_BPS = 10_000.0  # 100 %
MAX_MS = 1e12  # ~31.7 years: still an int64 in nanoseconds (the benchmarks' "never stale")
MAX_S = 1e9  # the same span in seconds
MAX_HOURS = 100_000.0  # ~11.4 years
MAX_PRICE = 1e12
UsdAmount = Annotated[float, Meta(gt=0, le=MAX_USD)]
NonNegUsd = Annotated[float, Meta(ge=0, le=MAX_USD)]
Bps = Annotated[float, Meta(ge=0, le=MAX_BPS)]
PositiveBps = Annotated[float, Meta(gt=0, le=MAX_BPS)]
SignedBps = Annotated[float, Meta(ge=-MAX_BPS, le=MAX_BPS)]
Millis = Annotated[float, Meta(gt=0, le=MAX_MS)]
Seconds = Annotated[float, Meta(gt=0, le=MAX_S)]
NonNegSeconds = Annotated[float, Meta(ge=0, le=MAX_S)]
Hours = Annotated[float, Meta(gt=0, le=MAX_HOURS)]
Price = Annotated[float, Meta(gt=0, le=MAX_PRICE)]
IntervalS = Annotated[float, Meta(gt=0, le=3600)]  # a periodic job's interval: at most an hour
DelayMs = Annotated[float, Meta(ge=0, le=60_000)]  # a simulated delay: at most a minute
AnnualRate = Annotated[float, Meta(ge=0, le=100)]  # a yearly rate as a fraction: at most 10,000 %
PositiveInt = Annotated[int, Meta(gt=0)]
NonNegInt = Annotated[int, Meta(ge=0)]
Fraction = Annotated[float, Meta(ge=0, le=1)]
FeeRate = Annotated[float, Meta(ge=0, lt=0.05)]
Port = Annotated[int, Meta(ge=0, le=65535)]
Name = Annotated[str, Meta(pattern=r"^[a-z][a-z0-9_]{0,31}$")]
SymbolName = Annotated[str, Meta(pattern=r"^[A-Z0-9]{2,20}$")]
DecimalText = Annotated[str, Meta(pattern=r"^[0-9]+(\.[0-9]+)?$")]

SERVICE_NAMES = ("sim", "feed", "detector", "risk", "executor", "bridge")


class _Frozen(Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    pass


class Capital(_Frozen):
    total_usd: UsdAmount = 100_000.0


# The schema accepts exactly the declared kinds (shared/venues/kinds.py), so an unknown one is an error naming
# its key, as before, and a new venue needs no edit here.
KindName = Literal[KIND_NAMES]  # type: ignore[valid-type]


class FeedSettings(_Frozen):
    """How a venue's feed subscribes and guards its connections. Zero means "the venue's documented
    value" where a field says so; every other default is the venue-safe choice."""

    book_ticker: bool = True  # spot: the best bid/ask stream; off: quotes come from the local book's top
    depth: Literal["none", "diff", "partial"] = "diff"  # diff: exact local book; partial: Binance depth<N>
    depth_levels: Annotated[int, Meta(ge=1, le=20)] = 10  # levels per side sent downstream
    depth_interval_ms: Literal[10, 100, 1000] = 100  # Binance 100 or 1000; MEXC 10 or 100
    snapshot_limit: Annotated[int, Meta(ge=5, le=5000)] = 1000
    max_streams_per_connection: Annotated[int, Meta(ge=0)] = 0  # 0: the venue's cap (Binance 1024, MEXC 30)
    control_messages_per_s: Annotated[float, Meta(gt=0, le=50)] = 4.0  # Binance drops a link above 5/s
    connection_max_age_s: Seconds = 23.5 * 3600  # roll over (with overlap) before the venue's 24 h cut
    stale_after_s: Seconds = 10.0  # a subscribed symbol silent this long is stale: resubscribe
    ping_interval_s: NonNegSeconds = 0.0  # 0: the venue's keep-alive interval
    pong_timeout_s: Seconds = 10.0  # no answer to our ping this long: the link is dead, reconnect
    snapshot_url: str = ""  # "" means the venue's rest_url


class RateLimits(_Frozen):
    """A venue's request budget; 0 means the venue's documented limit (PROTOCOLS.md). ``budget_share`` is
    the part of it draizer lets itself use, so a burst never meets the venue's own 429."""

    weight_per_minute: NonNegInt = 0  # Binance 6000; MEXC: requests per minute (500 per 10 s per endpoint);
    # MEXC contract 600 (20 requests / 2 s per endpoint, sustained: shared/venues/mexc/constants.py)
    orders_per_10s: NonNegInt = 0  # Binance 50; MEXC 500 requests / 10 s; MEXC contract 20 (its 2 s limit)
    orders_per_day: NonNegInt = 0  # Binance 160000; MEXC and MEXC contract none
    budget_share: Fraction = 0.8


class Venue(_Frozen):
    name: Name
    kind: KindName
    ws_url: str
    rest_url: str
    api_key_env: str = ""
    api_secret_env: str = ""
    symbols: tuple[SymbolName, ...] = ()  # () means every configured symbol
    feed: FeedSettings = FeedSettings()
    taker_fee: FeeRate = 0.001
    maker_fee: FeeRate = 0.001
    recv_window_ms: Annotated[int, Meta(gt=0, le=60_000)] = 5000
    order_connections: Annotated[int, Meta(ge=1, le=64)] = 4
    ws_api_url: str = ""  # Binance WS API (user data: executionReport); "" means fills from REST answers only
    # MEXC private WebSocket base (``wss://wbs-api.mexc.com/ws``: a listen key is added): fills from its orders and
    # deals channels, the trade list only while it is down; "" means fills from REST answers and the trade list
    user_ws_url: str = ""
    limits: RateLimits = RateLimits()
    # Paper fills inside draizer (``paper.fills = "model"``): the one-way time an order takes to reach the venue.
    # The fill is decided on the local book as it stands then; the answer comes back after as long again.
    paper_latency_ms: Annotated[float, Meta(ge=0, le=10_000)] = 20.0


class Symbol(_Frozen):
    name: SymbolName
    base: str
    quote: str
    tick_size: DecimalText
    step_size: DecimalText
    min_notional: DecimalText = "5"
    start_price: Price = 100.0


class Risk(_Frozen):
    max_notional_usd: UsdAmount = 5_000.0
    max_concurrent: PositiveInt = 2  # executions in flight at once
    max_daily_loss_usd: UsdAmount = 500.0  # realized PnL of the UTC day; survives a restart
    max_opportunity_age_ms: Millis = 100.0
    loss_breaker_usd: UsdAmount = 100.0  # a loss this large within loss_window_s halts for the cooldown
    loss_window_s: Seconds = 300.0
    failure_breaker_count: PositiveInt = 5  # this many unwound/orphaned/failed executions in the window halt
    failure_window_s: Seconds = 60.0
    breaker_cooldown_s: Seconds = 60.0
    balance_headroom: Fraction = 0.95  # share of a venue's free balance one execution may spend
    # Perpetuals and the funding carry (services/risk/perp.py): what an OPEN may add; a CLOSE is never refused
    # by these. Leverage is the venue's, set by the executor at start: above this, nothing opens there.
    max_leverage: Annotated[int, Meta(ge=1, le=125)] = 3
    # (maintenance margin + the order's) / margin balance after the order: 1.0 is the venue's liquidation.
    max_margin_ratio: Annotated[float, Meta(gt=0, lt=1)] = 0.5
    # The position's liquidation price at least this far from the mark, as a share of the mark (0.2 = 20 %).
    min_liquidation_distance: Annotated[float, Meta(ge=0, lt=1)] = 0.2
    max_net_delta_usd: UsdAmount = 2_000.0  # |net base position over every venue| x price, per asset
    max_carry_notional_usd: UsdAmount = 20_000.0  # every perpetual position's |size| x mark, plus the OPEN's
    state_file: str = ""  # "" means <run_dir>/state/risk.json; a relative path is under run_dir


class ExecutionSettings(_Frozen):
    """How the executor places and rescues orders (config section ``execution``)."""

    order_type: Literal["limit_ioc", "market"] = "limit_ioc"
    order_timeout_ms: PositiveInt = 3000  # no answer by then: the order is UNKNOWN and is queried
    unwind_mode: Literal["unwind", "hedge"] = "unwind"  # reverse the excess, or complete the shortfall
    unwind_deadline_ms: PositiveInt = 3000  # no imbalance may outlive this; past it: an orphan alert
    unwind_slippage_bps: PositiveBps = 30.0  # unwind/hedge IOC limit: this far through the leg's price
    journal_dir: str = ""  # "" means <run_dir>/state/orders
    # batch: records written before the requests, one group fdatasync right after them (off the critical path);
    # always: synced before the requests; never: the OS decides (see services/executor/order_journal.py)
    journal_fsync: Literal["always", "batch", "never"] = "batch"
    reconcile_timeout_s: Seconds = 30.0  # the start waits this long for the venues to answer
    # Host-crash recovery at start: the venues' orders are listed from the last surviving journal record minus
    # this margin (never further back than the lookback; MEXC keeps 7 days) and unknown ones of ours are booked.
    recover_margin_s: Annotated[float, Meta(ge=0, le=3600)] = 60.0
    recover_lookback_s: Annotated[float, Meta(gt=0, le=7 * 86_400)] = 86_400.0
    # Perpetual venues: set on every traded symbol at start. Isolated margin caps what a carry's short can lose to
    # its own margin; 2x leaves a liquidation ~50 % away (risk's perp rules check the real figures).
    perp_leverage: Annotated[int, Meta(ge=1, le=125)] = 2
    perp_margin: Literal["isolated", "cross"] = "isolated"
    funding_poll_s: Annotated[float, Meta(ge=0.5, le=3600)] = 10.0  # funding income is read this often
    perp_account_s: Annotated[float, Meta(ge=0.2, le=600)] = 2.0  # margin and positions for risk, this often


class CrossExchange(_Frozen):
    """Buy where the ask is lowest, sell where the bid is highest, sized by walking both books."""

    enabled: bool = True
    min_spread_bps: Bps = 5.0  # the marginal level's spread net of both taker fees: the walk stops below it
    min_profit_usd: NonNegUsd = 0.05
    max_position_usd: UsdAmount = 2_000.0
    max_price_age_ms: Millis = 500.0
    capital_allocation: Fraction = 0.05  # share of capital.total_usd one trade may use


CycleSpec = Annotated[tuple[SymbolName, ...], Meta(min_length=3, max_length=3)]


class Triangular(_Frozen):
    """Three legs on one venue around a currency triangle (e.g. USDT→BTC→ETH→USDT), both directions."""

    enabled: bool = True
    min_profit_bps: Bps = 5.0  # the marginal cycle's return net of three taker fees: the walk stops below
    min_profit_usd: NonNegUsd = 0.05
    max_position_usd: UsdAmount = 2_000.0
    max_price_age_ms: Millis = 500.0
    capital_allocation: Fraction = 0.05
    cycles: tuple[CycleSpec, ...] = ()  # extra cycles, each three symbols around a triangle
    discover: bool = True  # also every triangle the configured symbols form on each spot venue


class FundingRate(_Frozen):
    """Spot-perpetual carry: long spot, short the perpetual while its funding rate pays the shorts."""

    enabled: bool = True
    min_funding_rate: AnnualRate = 0.10  # annualised, net of both legs' round-trip fees and the entry basis
    hedge_enabled: bool = True  # False: the perpetual short alone (directional: it only collects funding)
    check_interval_sec: Seconds = 1.0  # a symbol's carry is re-evaluated at most this often
    horizon_hours: Hours = 720.0  # how long a position is expected to be held: amortises the fees
    funding_period_hours: Hours = 8.0  # the perpetuals' settlement interval
    max_position_usd: UsdAmount = 5_000.0
    capital_allocation: Fraction = 0.10
    max_price_age_ms: Millis = 5_000.0  # funding pushes come once a second, not per trade
    min_profit_usd: NonNegUsd = 1.0  # carry expected over the horizon
    # The perpetual leg's limit, this far through the price the carry was valued at: the feeds carry the perp's
    # mark (or, for MEXC, nothing: the spot mid), not its book, so a limit *at* that price would rest on the
    # wrong side of the touch and expire. A protected IOC: it crosses the spread, never sweeps the book.
    perp_slippage_bps: PositiveBps = 10.0


class Strategies(_Frozen):
    usd_assets: tuple[str, ...] = ("USDT", "USDC", "FDUSD", "USD")  # valued at 1 USD
    cross_exchange: CrossExchange = CrossExchange()
    triangular: Triangular = Triangular()
    funding_rate: FundingRate = FundingRate()


class ServiceSettings(_Frozen):
    cpu: Annotated[int, Meta(ge=-1)] = -1  # -1: not pinned
    # Where the process's ZeroMQ I/O thread runs (it wakes on every event sent); -1: with the process.
    io_cpu: Annotated[int, Meta(ge=-1)] = -1
    control: str = ""  # endpoint; "" means the default under the run directory
    events: str = ""


class Services(_Frozen):
    sim: ServiceSettings = ServiceSettings()
    feed: ServiceSettings = ServiceSettings()
    detector: ServiceSettings = ServiceSettings()
    risk: ServiceSettings = ServiceSettings()
    executor: ServiceSettings = ServiceSettings()
    bridge: ServiceSettings = ServiceSettings()
    engine: ServiceSettings = ServiceSettings()  # the one hot-path process of the fused and single placements


class Runtime(_Frozen):
    heartbeat_interval_s: IntervalS = 0.5
    # processes: one process per service (isolation); fused: detector + risk + executor in one process;
    # single: the feeds too, one process and one loop, the order written in the call that parsed the frame.
    placement: Literal["processes", "fused", "single"] = "processes"
    # Spin on the event loop's poll instead of sleeping in it (no kernel wake-up per frame). Only for a process
    # that owns a core of its own: it keeps that core at 100 %.
    busy_poll: bool = False
    # 0: Python's automatic garbage collection. > 0: automatic collection off; the loop collects the young
    # generations this often (and everything unfrozen every 60th time), so no collection lands inside a tick.
    gc_interval_s: Annotated[float, Meta(ge=0, le=3600)] = 0.0
    run_dir: str = ""  # "" means $DRAIZER_RUN_DIR, else <cwd>/.run


class Sinks(_Frozen):
    """Where the bridge sends what happened. Connection strings carry passwords, so the config names the
    environment variables that hold them; an unset or empty variable means "not configured"."""

    shm: bool = True
    prometheus_host: str = "127.0.0.1"
    prometheus_port: Port = 9464  # 0: no HTTP exporter
    postgres_dsn_env: str = "DRAIZER_POSTGRES_DSN"  # e.g. postgresql://draizer:…@127.0.0.1:5432/draizer
    redis_url_env: str = "DRAIZER_REDIS_URL"  # e.g. redis://127.0.0.1:6379/0
    journal_dir: str = ""  # "" means <run_dir>/journal: the embedded default sink, and PostgreSQL's spool
    journal_fsync: Literal["always", "batch", "never"] = "batch"  # batch: one fsync per written batch
    batch_max_rows: Annotated[int, Meta(ge=1, le=100_000)] = 1000
    batch_interval_ms: Annotated[int, Meta(ge=1, le=60_000)] = 200
    redis_channel_prefix: Name = "draizer"  # channels and streams are <prefix>:<kind>
    redis_stream_maxlen: Annotated[int, Meta(ge=0)] = 100_000  # approximate (MAXLEN ~); 0: no streams
    metrics_interval_s: IntervalS = 5.0  # how often engine_metrics rows are taken
    api_host: str = "127.0.0.1"
    api_port: Port = 8080  # 0: no HTTP API
    api_token_env: str = "DRAIZER_API_TOKEN"  # bearer token for write endpoints; unset: writes refused


class SimVenue(_Frozen):
    venue: Name  # which configured venue this simulates
    ws_port: Port
    rest_port: Port
    spread_bps: PositiveBps = 2.0
    latency_ms: DelayMs = 0.0  # order round trip, half on the way in, half on the way out
    latency_jitter_ms: DelayMs = 0.0  # uniform extra delay, up to this much, on each half
    max_connection_age_s: Seconds = 86_400.0  # the venue's connection lifetime


class Sim(_Frozen):
    enabled: bool = True
    host: str = "127.0.0.1"
    seed: int = 7
    quotes_per_second: Annotated[float, Meta(gt=0, le=1e7)] = 2_000.0
    volatility_bps: PositiveBps = 1.0  # std-dev of one base random-walk step
    venue_noise_bps: Bps = 1.0  # independent per-venue deviation around the common mid
    dislocation_probability: Fraction = 0.002  # per quote
    dislocation_bps: PositiveBps = 25.0
    dislocation_quotes: PositiveInt = 40  # how many quotes of that venue/symbol a dislocation lasts
    top_qty_usd: UsdAmount = 20_000.0  # mean notional resting at the top of book
    starting_balance_usd: UsdAmount = 1_000_000.0
    depth_levels: Annotated[int, Meta(ge=1, le=500)] = 30  # price levels per side in each simulated book
    level_gap_ticks: Annotated[int, Meta(ge=1, le=100)] = 2  # mean gap between deeper levels
    funding_push_interval_ms: Annotated[int, Meta(ge=10)] = 1000  # markPrice@1s
    funding_period_s: Annotated[int, Meta(ge=1)] = 8 * 3600  # funding settles on multiples of this
    funding_rate_mean: Annotated[float, Meta(ge=-1, le=1)] = 0.0001  # per period
    funding_rate_vol: Annotated[float, Meta(ge=0, le=1)] = 0.00002  # std-dev of one push's random-walk step
    perp_basis_bps: SignedBps = 3.0  # perp mark price over the spot mid
    venues: tuple[SimVenue, ...] = ()


class Paper(_Frozen):
    """How paper mode fills orders. ``venue``: orders go to the venue's REST, which must be the built-in simulator
    (it keeps the paper accounts); ``model``: filled inside draizer against the engine's own local book, with the
    venue's rules and the config's fees and latency (``services/executor/paper/``): paper trading on real market
    data, with no keys. Live mode ignores this table."""

    fills: Literal["venue", "model"] = "venue"
    # Each asset's starting balance per venue, worth this many USD at the first price the engine sees.
    asset_balance_usd: UsdAmount = 10_000.0
    balances: dict[str, DecimalText] = {}  # exact starting balances per asset (override asset_balance_usd)


def venue_symbols(venue: Venue, cfg_symbols: tuple[Symbol, ...]) -> tuple[Symbol, ...]:
    """The symbols a venue trades or quotes, in config order."""
    if not venue.symbols:
        return cfg_symbols
    wanted = set(venue.symbols)
    return tuple(s for s in cfg_symbols if s.name in wanted)


class Config(_Frozen):
    venues: tuple[Venue, ...]
    symbols: tuple[Symbol, ...]
    mode: Literal["paper", "live"] = "paper"
    instance: Name = "default"
    capital: Capital = Capital()
    risk: Risk = Risk()
    execution: ExecutionSettings = ExecutionSettings()
    strategies: Strategies = Strategies()
    services: Services = Services()
    runtime: Runtime = Runtime()
    sinks: Sinks = Sinks()
    sim: Sim = Sim()
    paper: Paper = Paper()


def paper_model(cfg: Config) -> bool:
    """Paper orders are filled inside draizer (no keys, no order traffic to any venue)."""
    return cfg.mode == "paper" and cfg.paper.fills == "model"


def _check_semantics(cfg: Config) -> None:
    """Rules a schema cannot express; each error names the key."""
    if not cfg.venues:
        raise ConfigError("venues: at least one venue is required")
    if not cfg.symbols:
        raise ConfigError("symbols: at least one symbol is required")
    venue_names = [v.name for v in cfg.venues]
    if len(set(venue_names)) != len(venue_names):
        raise ConfigError(f"venues: duplicate venue name in {venue_names}")
    symbol_names = [s.name for s in cfg.symbols]
    if len(set(symbol_names)) != len(symbol_names):
        raise ConfigError(f"symbols: duplicate symbol name in {symbol_names}")
    for i, venue in enumerate(cfg.venues):
        unknown = [s for s in venue.symbols if s not in symbol_names]
        if unknown:
            raise ConfigError(f"venues[{i}].symbols: not in symbols: {unknown}")
        kind = kind_of(venue.kind)
        if kind.spot and not venue.api_key_env and not paper_model(cfg):
            raise ConfigError(f"venues[{i}].api_key_env: a spot venue needs the names of its key variables")
        if venue.user_ws_url and kind.listen_key_stream is None:
            raise ConfigError(f"venues[{i}].user_ws_url: {venue.kind} has no listen-key user stream")
        for check in kind.checks:  # the venue's own rules (its depth intervals, its depth modes)
            check(venue, f"venues[{i}]")
        if venue.feed.depth == "partial" and venue.feed.depth_levels not in (5, 10, 20):
            raise ConfigError(f"venues[{i}].feed.depth_levels: Binance partial depth serves 5, 10 or 20")
    for i, sym in enumerate(cfg.symbols):
        for field in ("tick_size", "step_size"):
            try:
                value = Decimal(getattr(sym, field))
            except InvalidOperation:  # pragma: no cover - the schema pattern catches this first
                raise ConfigError(f"symbols[{i}].{field}: not a decimal") from None
            if value <= 0:
                raise ConfigError(f"symbols[{i}].{field}: must be > 0, got {getattr(sym, field)}")
        if sym.base + sym.quote != sym.name:
            raise ConfigError(f"symbols[{i}].name: {sym.name} is not base+quote ({sym.base}{sym.quote})")
    for i, cycle in enumerate(cfg.strategies.triangular.cycles):
        unknown = [name for name in cycle if name not in symbol_names]
        if unknown:
            raise ConfigError(f"strategies.triangular.cycles[{i}]: not in symbols: {unknown}")
        by_name = {sym.name: sym for sym in cfg.symbols}
        currencies = [{by_name[n].base, by_name[n].quote} for n in cycle]
        if len(set().union(*currencies)) != 3 or any(a == b for a, b in itertools.combinations(currencies, 2)):
            raise ConfigError(f"strategies.triangular.cycles[{i}]: {list(cycle)} is not a triangle of three currencies")
    if cfg.sim.enabled:
        for i, sv in enumerate(cfg.sim.venues):
            if sv.venue not in venue_names:
                raise ConfigError(f"sim.venues[{i}].venue: unknown venue {sv.venue!r}")
    if cfg.mode == "live" and cfg.sim.enabled:
        raise ConfigError("sim.enabled: the simulator cannot run in live mode")
    if cfg.mode == "paper" and cfg.paper.fills == "venue" and not cfg.sim.enabled:
        remote = [v.rest_url for v in cfg.venues if not _local_url(v.rest_url)]
        if remote:  # paper orders to a real venue would be real orders
            raise ConfigError(f"paper.fills: 'venue' sends paper orders to {remote[0]}, which is not a simulator on "
                              "this machine; paper trading on real market data takes fills = \"model\"")
    for asset, amount in cfg.paper.balances.items():
        if Decimal(amount) < 0:
            raise ConfigError(f"paper.balances.{asset}: must be >= 0, got {amount}")


def _local_url(url: str) -> bool:
    host = urllib.parse.urlsplit(url).hostname or ""
    return host in ("localhost", "::1") or host.startswith("127.")


def check_finite(data: object, path: str = "$") -> None:
    """Refuse NaN and ±inf anywhere in raw config data (TOML has ``nan`` and ``inf``), naming the key as msgspec
    does (``$.strategies.cross_exchange.min_spread_bps``). No float setting of draizer means anything with them:
    NaN fails every comparison (a limit that never trips) and inf overflows every integer derived from it."""
    if isinstance(data, float):
        if not math.isfinite(data):
            raise ConfigError(f"{path}: must be a finite number, got {data}")
    elif isinstance(data, dict):
        for key, value in data.items():
            check_finite(value, f"{path}.{key}")
    elif isinstance(data, (list, tuple)):
        for i, value in enumerate(data):
            check_finite(value, f"{path}[{i}]")


def parse_config(text: str | bytes, source: str = "<config>") -> Config:
    try:
        check_finite(msgspec.toml.decode(text))
        cfg = msgspec.toml.decode(text, type=Config)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    except msgspec.ValidationError as exc:
        raise ConfigError(f"{source}: {did_you_mean(str(exc), Config)}") from None
    except msgspec.DecodeError as exc:
        raise ConfigError(f"{source}: invalid TOML: {exc}") from None
    try:
        _check_semantics(cfg)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    return cfg


def load_config(path: str | os.PathLike[str]) -> Config:
    p = Path(path)
    try:
        text = p.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read: {exc.strerror}") from None
    return parse_config(text, str(p))


def default_config_path() -> Path:
    return Path(__file__).with_name("default.toml")


def resolve_run_dir(cfg: Config) -> Path:
    raw = cfg.runtime.run_dir or os.environ.get("DRAIZER_RUN_DIR") or str(Path.cwd() / ".run")
    return Path(raw).resolve()
