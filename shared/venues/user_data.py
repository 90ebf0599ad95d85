"""What the executor asks of a venue whose user data flows over a private WebSocket opened with a listen key
(MEXC spot): the key's REST requests and the stream's frames, sans I/O. A venue kind names its implementation
in ``ListenKeyStream.format`` (``shared/venues/declaration.py``).
"""

from __future__ import annotations

import re
from typing import NamedTuple, Protocol

import msgspec
from msgspec import Struct

from shared.errors import ProtocolError, VenueError
from shared.venues.common import HttpRequest, OrderReport
from shared.venues.spot_rest import parse_code_msg

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

_LISTEN_KEY = re.compile(r"[A-Za-z0-9]+")  # every documented key (Binance, MEXC): letters and digits


class _ListenKey(Struct):
    listenKey: str


_key_decoder = msgspec.json.Decoder(_ListenKey)


def check_listen_key(listen_key: str) -> None:
    """ValueError unless the key is letters and digits (it goes into a URL). The key is a secret: not quoted."""
    if not _LISTEN_KEY.fullmatch(listen_key):
        raise ValueError("a listenKey is letters and digits")


def listen_key_answer(http_status: int, body: bytes, venue: str) -> str:
    """The key of a listen-key answer ``{"listenKey": ".."}``; VenueError (the venue's code kept) for a
    ``{"code","msg"}`` refusal, ProtocolError if unreadable. No message quotes the key."""
    if not 200 <= http_status < 300:
        code, msg = parse_code_msg(http_status, body)
        raise VenueError(code, msg, http_status)
    try:
        key = _key_decoder.decode(body).listenKey
    except msgspec.DecodeError as exc:
        raise ProtocolError(f"{venue}: unreadable listenKey answer ({exc})") from None
    if not _LISTEN_KEY.fullmatch(key):
        raise ProtocolError(f"{venue}: a listenKey of {len(key)} characters, not all letters and digits")
    return key


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
