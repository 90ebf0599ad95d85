"""The detector's carry signals kept in step with the carries the executor holds.

The funding kernel (``funding.py``) keeps, per symbol, the carry it signalled open, and signals nothing new on a
symbol with one open. That is only a *signal*: risk may refuse the OPEN (a breaker, a limit), the execution may
miss, and a restarted detector starts empty and could open a second carry on top of the first. So the detector
asks the executor (``carries``: open carries, and symbols with a carry execution in flight) at start and every
``SYNC_INTERVAL_S``:

- a carry the executor holds and the detector does not know is taken as its own (after a restart; the settlement
  it was entered for is unknown then: 0, i.e. passed, so it closes as soon as the rate alone stops paying);
- a signal with no carry behind it and no execution in flight, on two asks in a row (an OPEN between risk and the
  executor is not mistaken for a refused one), is dropped, so the symbol can be signalled again.

The executor stays the source of truth either way: it never opens a second carry on a symbol and closes only
what a carry holds.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import numpy as np

from shared.messages import Command, Reply
from shared.registry import Registry
from shared.runtime.control_client import ControlError

log = logging.getLogger(__name__)

SYNC_INTERVAL_S = 5.0
STARTING_RETRY_S = 1.0  # while the executor is starting (it reconciles with the venues before it answers)

Ask = Callable[[Command], Awaitable[Reply]]


class CarrySignals:
    """The kernel's per-symbol carry state arrays, and their reconciliation with the executor's carries."""

    def __init__(self, registry: Registry, open_spot: np.ndarray, open_perp: np.ndarray, open_qty: np.ndarray,
                 open_settle_ms: np.ndarray) -> None:
        self.registry = registry
        self.open_spot, self.open_perp, self.open_qty, self.open_settle_ms = (
            open_spot, open_perp, open_qty, open_settle_ms)
        self._unbacked: set[int] = set()  # signalled open, no carry behind it at the last ask
        self.n_seeded = self.n_dropped = 0
        self.synced = False
        self.on_first_answer: Callable[[], None] | None = None  # the detector lifts its gate on carry signals

    def apply(self, carries: list[dict[str, Any]], pending: list[str]) -> tuple[list[str], list[str]]:
        """Bring the signals in line with the executor's answer; (symbols taken over, signals dropped)."""
        reg = self.registry
        held: set[int] = set()
        seeded: list[str] = []
        for c in carries:
            s = reg.symbol_id.get(str(c["symbol"]))
            perp = reg.venue_id.get(str(c["perp_venue"]))
            if s is None or perp is None:
                log.warning("executor carry %s on %s/%s: not in this config; not followed", c.get("carry_id"),
                            c.get("symbol"), c.get("perp_venue"))
                continue
            held.add(s)
            if self.open_perp[s] == perp:
                continue
            spot_name = str(c.get("spot_venue") or "")
            self.open_spot[s] = reg.venue_id.get(spot_name, -1) if spot_name else -2  # -2: the short alone
            self.open_perp[s] = perp
            self.open_qty[s] = abs(float(c["perp_qty"]))
            self.open_settle_ms[s] = 0
            seeded.append(reg.symbol(s))
        busy = {reg.symbol_id[n] for n in pending if n in reg.symbol_id}
        dropped: list[str] = []
        unbacked = {int(s) for s in np.flatnonzero(self.open_perp >= 0)} - held - busy
        for s in unbacked & self._unbacked:  # twice in a row: not an OPEN on its way
            self.open_perp[s] = -1
            self.open_spot[s] = -1
            self.open_qty[s] = 0.0
            dropped.append(reg.symbol(s))
        self._unbacked = unbacked - set(map(reg.symbol_id.__getitem__, dropped))
        self.n_seeded += len(seeded)
        self.n_dropped += len(dropped)
        if not self.synced:
            self.synced = True
            if self.on_first_answer is not None:
                self.on_first_answer()
        return seeded, dropped


async def follow(signals: CarrySignals, ask: Ask) -> None:
    """Ask the executor for its carries at start and every ``SYNC_INTERVAL_S``, until cancelled."""
    first, why = True, ""
    while True:
        try:
            reply = await ask(Command("carries", {}))
        except ControlError as exc:
            reply, why = None, str(exc)
        if reply is not None and reply.ok:
            seeded, dropped = signals.apply(list(reply.data.get("open", [])), list(reply.data.get("pending", [])))
            if seeded:
                log.info("carry signals resumed from the executor's open carries (a restart, or a CLOSE that "
                         "did not go through): %s", seeded)
            if dropped:
                log.info("carry signals dropped (no carry was opened behind them): %s", dropped)
            first, why = False, ""
            await asyncio.sleep(SYNC_INTERVAL_S)
            continue
        if reply is not None:
            why = reply.error
        if not first:
            log.warning("the executor did not say which carries are open (%s); asking again", why)
        await asyncio.sleep(STARTING_RETRY_S if first else SYNC_INTERVAL_S)  # a polling interval, not a sync
