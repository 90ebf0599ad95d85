"""What the executor asks of a venue whose user data flows over a private WebSocket opened with a listen key
(MEXC spot): the key's REST requests and the stream's frames, sans I/O. A venue kind names its implementation
in ``ListenKeyStream.format`` (``shared/venues/declaration.py``).
"""

from __future__ import annotations

from typing import NamedTuple, Protocol

from shared.venues.common import HttpRequest, OrderReport

CREATE = "create"  # a new key
KEEPALIVE = "keepalive"  # extend the key
CLOSE = "close"  # invalidate the key (and end its streams)


class Subscribed(NamedTuple):
    """The venue confirmed these channels."""

    channels: frozenset[str]


class SubscribeRefused(NamedTuple):
    msg: str


class Pong(NamedTuple):
    pass


UserFrame = OrderReport | Subscribed | SubscribeRefused | Pong


class ListenKeyFormat(Protocol):
    keepalive_interval_s: float  # how often to extend the key
    ping_interval_s: float  # how often to send an application PING (the venue drops a silent link)
    channels: frozenset[str]  # what a connection subscribes to: healthy once all are confirmed
    weight: int  # the request weight of each listen-key request

    def build_listen_key(self, action: str, listen_key: str, *, api_key: str, api_secret: str, timestamp_ms: int,
                         recv_window_ms: int) -> HttpRequest: ...

    def parse_listen_key(self, http_status: int, body: bytes) -> str:
        """The key of an answer; VenueError when refused, ProtocolError when unreadable."""
        ...

    def url(self, base: str, listen_key: str) -> str: ...

    def subscribe_frames(self) -> list[str]: ...

    def ping_frame(self) -> str: ...

    def parse(self, payload: bytes, binary: bool) -> UserFrame | None:
        """One frame; None for what the executor does not use; ProtocolError when malformed."""
        ...
