"""Order faults a test arms on a simulated spot venue (``Simulator.inject_order_fault`` or
``POST /sim/order_fault`` with ``{"kind","count","seconds","symbol","side"}``; ``GET /sim/order_faults`` lists
the armed ones). Test hooks, not venue API.

- ``reject``: the next ``count`` matching orders are refused with the venue's new-order-rejected error
  (insufficient balance) without touching the book or the balances.
- ``error_after_accept``: the next ``count`` matching orders are placed and executed normally, but the answer
  is the venue's "status unknown" error (Binance 503 -1007, MEXC 500).
- ``rate_limit``: for ``seconds``, every request answers 429 + Retry-After; Binance bans (418) a client that
  keeps sending meanwhile (see ``rate_limits``).
- ``slow``: the next ``count`` matching orders are accepted at once (NEW: listed in openOrders, queryable,
  cancellable) and matched and answered only after ``seconds``; one cancelled meanwhile answers CANCELED.
- ``partial``: the next ``count`` matching orders fill at most half their quantity (floored to the step, at
  least one step); the remainder expires.

``symbol`` / ``side`` (None: any) restrict which orders a fault matches. An order meets at most one fault,
the earliest armed that matches, and only once its request is valid (a malformed order consumes none).
"""

from __future__ import annotations

from typing import Any

import msgspec

from services.sim.faults import FaultError

REJECT = "reject"
ERROR_AFTER_ACCEPT = "error_after_accept"
RATE_LIMIT = "rate_limit"
SLOW = "slow"
PARTIAL = "partial"
KINDS = (REJECT, ERROR_AFTER_ACCEPT, RATE_LIMIT, SLOW, PARTIAL)
NEEDS_SECONDS = (RATE_LIMIT, SLOW)


class OrderFault(msgspec.Struct, forbid_unknown_fields=True):
    """One armed fault; also the JSON body of ``POST /sim/order_fault``."""

    kind: str
    count: int = 1  # orders it still applies to (rate_limit: unused)
    seconds: float | None = None
    symbol: str | None = None
    side: str | None = None

    def matches(self, symbol: str, side: str) -> bool:
        return (self.symbol is None or self.symbol == symbol) and (self.side is None or self.side == side)


_decoder = msgspec.json.Decoder(OrderFault)


def parse_request(body: bytes) -> OrderFault:
    try:
        return _decoder.decode(body)
    except msgspec.DecodeError as exc:
        raise FaultError(f"bad order fault request: {exc}") from None


def check(fault: OrderFault, symbols: Any) -> None:
    """Raise FaultError for anything the sim cannot carry out. ``symbols``: the venue's listed names."""
    if fault.kind not in KINDS:
        raise FaultError(f"unknown order fault kind {fault.kind!r}; expected one of {', '.join(KINDS)}")
    if fault.count < 1:
        raise FaultError(f"count must be >= 1, got {fault.count}")
    if fault.kind in NEEDS_SECONDS and (fault.seconds is None or not fault.seconds > 0):
        raise FaultError(f"{fault.kind} needs seconds > 0")
    if fault.seconds is not None and not fault.seconds >= 0:
        raise FaultError(f"seconds must be >= 0, got {fault.seconds!r}")
    if fault.side not in (None, "BUY", "SELL"):
        raise FaultError(f"side must be BUY, SELL or null, got {fault.side!r}")
    if fault.symbol is not None and fault.symbol not in symbols:
        raise FaultError(f"the venue does not list symbol {fault.symbol!r}")


class OrderFaults:
    """The armed order faults of one venue (rate_limit lives in the venue's ``RateGate`` instead)."""

    def __init__(self) -> None:
        self.armed: list[OrderFault] = []
        self.injected = dict.fromkeys(KINDS, 0)
        self.triggered = dict.fromkeys(KINDS, 0)

    def arm(self, fault: OrderFault) -> None:
        self.injected[fault.kind] += 1
        if fault.kind != RATE_LIMIT:
            self.armed.append(msgspec.structs.replace(fault))

    def take(self, symbol: str, side: str) -> OrderFault | None:
        """The fault this order meets (one use of it), or None."""
        for i, fault in enumerate(self.armed):
            if fault.matches(symbol, side):
                fault.count -= 1
                if fault.count <= 0:
                    del self.armed[i]
                self.triggered[fault.kind] += 1
                return fault
        return None

    def listing(self) -> list[dict[str, Any]]:
        return [msgspec.structs.asdict(f) for f in self.armed]
