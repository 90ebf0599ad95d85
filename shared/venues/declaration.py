"""The shape of a venue kind's declaration: everything draizer chooses by a venue's ``kind``, in one value.

Each venue folder declares its kinds (``shared/venues/<venue>/kind.py``) and ``shared.venues.kinds`` lists
them. This module is imported by ``shared.config``, so by every process: it imports nothing of draizer's but
the error types. Formats are factories that import their module when called (the formats import
``shared.config`` themselves); the simulator's and the load source's parts are ``"module:attribute"`` paths
that only they resolve (``load``), because shared code must not import ``services`` at import time.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

if TYPE_CHECKING:  # type hints only: importing them here would be a cycle (they import shared.config)
    from shared.config import Venue
    from shared.venues.common import MarketFormat, OrderFormat
    from shared.venues.user_data import ListenKeyFormat


class DocumentedLimits(NamedTuple):
    """A spot venue's published request budget (PROTOCOLS.md); 0 means the venue sets no such limit."""

    weight_per_minute: int
    orders_per_10s: int
    orders_per_day: int


# (api key, secret, venue-clock timestamp ms, request id) -> the signed subscribe request's text
SubscribeRequest = Callable[[str, str, int, str], str]
# (the venue's config, its key path such as "venues[0]") -> None, or ConfigError naming the key
ConfigCheck = Callable[["Venue", str], None]


class UserStream(NamedTuple):
    """Account events (executionReport) over the venue's WebSocket API."""

    ws_path: str  # where the venue serves it (the simulator too: on the market-data port)
    subscribe_request: SubscribeRequest


class ListenKeyStream(NamedTuple):
    """Account events over a private WebSocket opened with a listen key the REST API hands out (MEXC spot)."""

    ws_path: str  # where the venue serves it (the simulator too: on the market-data port)
    format: Callable[[], ListenKeyFormat]  # the key's requests and the stream's frames (imported when called)


@dataclass(frozen=True, slots=True, kw_only=True)
class Simulated:
    """How the simulator (``services/sim``) and the load source (``services/loadgen``) play the venue.

    ``"module:attribute"`` paths, resolved with ``load`` by those two only: the hot-path processes never
    import them."""

    stream: str  # the simulator's market-data WebSocket server class
    load_stream: str  # the load source's WebSocket server class
    dialect: str | None = None  # spot: the order API's dialect (the simulator's REST, the load source's acceptor)
    funding_rest: str | None = None  # perpetual: the simulator's funding REST server class
    perp_orders: str | None = None  # perpetual: the simulator's order and account API (on the funding REST port)
    load_ticker: str | None = None  # spot: the load source's bookTicker frame builder
    user_data: str | None = None  # spot with a listen-key stream: its keys (REST) and private pushes (WebSocket)


@dataclass(frozen=True, slots=True, kw_only=True)
class VenueKind:
    """One venue kind. Resolve it once at start-up (``shared.venues.kinds.kind_of``), never per tick."""

    name: str  # the config's ``kind``
    spot: bool  # a spot book (quotes, depth, orders); else a perpetual (funding and mark price only)
    ws_path: str  # the market-data WebSocket path: the venue's own, and where the simulator serves it
    market_format: Callable[[], MarketFormat]  # a fresh parser per caller: each holds its own decoder state
    order_format: Callable[[], OrderFormat] | None = None  # None: no order path (yet)
    limits: DocumentedLimits | None = None  # the order API's documented budget; None: none documented
    api_key_header: str | None = None  # the HTTP header carrying the API key (orders, the simulator's hooks)
    user_stream: UserStream | None = None  # None: fills come from the REST answers only
    listen_key_stream: ListenKeyStream | None = None  # user data over a listen key's private WebSocket
    funding_decimals: int | None = None  # perpetual: how many decimals the venue writes a funding rate with
    checks: tuple[ConfigCheck, ...] = ()  # the venue's own config rules, beyond the schema's
    commission_in_base_on_buy: bool = False  # spot: a buy pays its commission in the base asset (Binance)
    sim: Simulated

    @property
    def perp(self) -> bool:
        return not self.spot


T = TypeVar("T")


def need(kind: VenueKind, value: T | None, what: str) -> T:
    """``value``, a field the caller cannot do without; a clear error if this kind leaves it out."""
    if value is None:
        raise ValueError(f"venue kind {kind.name!r} declares no {what}")
    return value


def load(path: str) -> Any:
    """The attribute a ``"module:attribute"`` path names (imported now: call it at start-up only)."""
    module, _, attribute = path.partition(":")
    if not module or not attribute:
        raise ValueError(f"{path!r} is not a 'module:attribute' path")
    return getattr(importlib.import_module(module), attribute)
