"""Faults the simulator injects at runtime (``Simulator.inject`` or ``POST /sim/fault``).

Each applies to the connections open at injection time:

- ``drop``: abort every connection (TCP gone, no close frame).
- ``stall``: no market data for ``seconds`` (default: until the connection closes); control replies and
  pongs still flow, so the link looks alive while the stream is dead.
- ``gap``: the next depth push of ``symbol`` (every symbol if None) is lost for everyone; update ids move
  on, so clients see a sequence gap. On a perp venue: the next funding push of that symbol.
- ``malformed``: one corrupt data frame on each connection (truncated JSON; MEXC spot: bytes that are
  not a valid protobuf wrapper).
- ``shutdown``: Binance sends ``{"e":"serverShutdown","E":<ms>}``; every venue then closes with 1001
  after ``seconds`` (default 1.0).
- ``ping_silence``: half-open: no data, no control replies, no pongs, no server pings; aborted after
  ``seconds`` (default: never).
- ``slow_consumer``: every frame to the connection is dropped for ``seconds`` (default 1.0) as if its
  socket buffer were full (counted in ``dropped``), then data resumes.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import msgspec

DROP = "drop"
STALL = "stall"
GAP = "gap"
MALFORMED = "malformed"
SHUTDOWN = "shutdown"
PING_SILENCE = "ping_silence"
SLOW_CONSUMER = "slow_consumer"
KINDS = (DROP, STALL, GAP, MALFORMED, SHUTDOWN, PING_SILENCE, SLOW_CONSUMER)

DEFAULT_SECONDS: dict[str, float | None] = {SHUTDOWN: 1.0, SLOW_CONSUMER: 1.0}


class FaultError(ValueError):
    """A fault request the simulator cannot carry out; the message says why."""


class Fault(NamedTuple):
    kind: str
    symbol: int | None  # index into the configured symbols; None: every symbol
    seconds: float | None  # None: the kind's default

    @property
    def duration(self) -> float | None:
        return self.seconds if self.seconds is not None else DEFAULT_SECONDS.get(self.kind)


class FaultRequest(msgspec.Struct, forbid_unknown_fields=True):
    """The JSON body of ``POST /sim/fault``."""

    kind: str
    symbol: str | None = None
    seconds: float | None = None


_request_decoder = msgspec.json.Decoder(FaultRequest)


def parse_request(body: bytes) -> FaultRequest:
    try:
        return _request_decoder.decode(body)
    except msgspec.DecodeError as exc:
        raise FaultError(f"bad fault request: {exc}") from None


def check(kind: str, seconds: float | None) -> None:
    if kind not in KINDS:
        raise FaultError(f"unknown fault kind {kind!r}; expected one of {', '.join(KINDS)}")
    if seconds is not None and not seconds >= 0:
        raise FaultError(f"seconds must be >= 0, got {seconds!r}")


def counts() -> dict[str, Any]:
    return dict.fromkeys(KINDS, 0)
