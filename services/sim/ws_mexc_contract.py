"""Simulated MEXC contract (futures) WebSocket at ``/edge``: JSON text only, funding rates.

``{"method":"ping"}`` → ``{"channel":"pong","data":<ms>}``; ``{"method":"sub.funding.rate","param":
{"symbol":"BTC_USDT"}}`` → ``{"channel":"rs.sub.funding.rate","data":"success","ts":<ms>}`` (an unknown
symbol or method → ``{"channel":"rs.error","data":"<why>","ts":<ms>}``); pushes
``{"channel":"push.funding.rate","data":{"symbol":"BTC_USDT","rate":0.000034,"nextSettleTime":<ms>},"ts":<ms>}``.
The venue drops a connection that has not pinged for ``PING_TIMEOUT_S``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

import msgspec
import picows
from msgspec import Struct

from services.sim.perp import FundingPoint
from services.sim.units import SymbolSpec
from services.sim.ws_common import Connection, ListenerOrResponse, StreamServer
from shared.venues.mexc.constants import CONTRACT_PUSH_FUNDING, CONTRACT_SUB_FUNDING, CONTRACT_WS_PATH

PING_TIMEOUT_S = 60.0  # the venue drops a link that sent no ping for a minute
FUNDING = "funding"
UNSUB_FUNDING = "unsub.funding.rate"


class _Param(Struct, frozen=True):
    symbol: str = ""


class _Request(Struct):
    method: str
    param: _Param = _Param()


_request_decoder = msgspec.json.Decoder(_Request)
_encode = msgspec.json.encode


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def contract_symbol(spec: SymbolSpec) -> str:
    return f"{spec.base}_{spec.quote}"


def json_number(value: float, decimals: int = 6) -> msgspec.Raw:
    """A plain decimal JSON number (``0.000034``): msgspec would write ``3.4e-05``, MEXC does not."""
    text = f"{value:.{decimals}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return msgspec.Raw(("0" if text in ("", "-0") else text).encode())


class ContractConnection(Connection):
    def __init__(self, server: MexcContractStreamServer) -> None:
        super().__init__(server)
        self.cserver = server

    def on_binary(self, payload: bytes) -> None:
        self._error("binary frames are not supported")

    def on_text(self, payload: bytes) -> None:
        try:
            req = _request_decoder.decode(payload)
        except msgspec.DecodeError as exc:
            self._error(f"invalid request: {exc}")
            return
        if req.method == "ping":
            self.last_client_ping = time.monotonic()
            self.reply(_encode({"channel": "pong", "data": now_ms()}))
        elif req.method in (CONTRACT_SUB_FUNDING, UNSUB_FUNDING):
            symbol = self.cserver.symbol_index.get(req.param.symbol)
            if symbol is None:
                self._error(f"contract not exist: {req.param.symbol!r}")
                return
            if req.method == CONTRACT_SUB_FUNDING:
                self.server.subscribe(self, symbol, req.param.symbol, FUNDING)
            else:
                self.server.unsubscribe(self, symbol, FUNDING)
            self.reply(_encode({"channel": "rs." + req.method, "data": "success", "ts": now_ms()}))
        else:
            self._error(f"unknown method {req.method!r}")

    def _error(self, why: str) -> None:
        self.reply(_encode({"channel": "rs.error", "data": why, "ts": now_ms()}))


class MexcContractStreamServer(StreamServer):
    def __init__(
        self, venue: str, specs: Sequence[SymbolSpec], listed: Sequence[int], max_connection_age_s: float = 86_400.0
    ) -> None:
        super().__init__(venue, specs, max_connection_age_s)
        self.symbol_index = {contract_symbol(specs[i]): i for i in listed}
        self._subs = self.topic(FUNDING)

    def listener(self, request: picows.WSUpgradeRequest) -> ListenerOrResponse:
        path = request.path.decode("latin-1").partition("?")[0]
        return ContractConnection(self) if path == CONTRACT_WS_PATH else None

    def malformed_frame(self) -> tuple[picows.WSMsgType, bytes]:
        return picows.WSMsgType.TEXT, b'{"channel":"push.funding.rate","data":{"symbol":"BTC_'

    def keepalive(self, conn: Connection, now: float) -> None:
        # Read at call time, so a test can shorten it.
        if conn.silent:
            return  # half-open: nothing happens on it until the fault's own timer ends it
        if now - conn.last_client_ping > PING_TIMEOUT_S and conn.transport is not None:
            conn.transport.disconnect()

    def publish_funding(self, points: Mapping[int, FundingPoint], tick: int) -> None:
        ts = now_ms()
        for s, pt in points.items():
            subs = self._subs[s]
            if not subs:
                continue
            name = contract_symbol(self.specs[s])
            data = {"symbol": name, "rate": json_number(pt.rate), "nextSettleTime": pt.next_funding_ms}
            payload = _encode({"channel": CONTRACT_PUSH_FUNDING, "data": data, "ts": ts})
            self.frames[s] += self.send(subs, picows.WSMsgType.TEXT, payload)
