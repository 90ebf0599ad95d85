"""The detector's carry signal state at start, from the positions the executor holds.

The funding kernel (``funding.py``) keeps, per symbol, the carry it signalled open, and signals nothing new on a
symbol with one open. That state lived only in memory: a restarted detector started empty and could open a second
carry on top of the first. So at start it asks the executor (``carries``: the carries its journal and the venues
say are open) and takes them as its own. Until the answer comes, an OPEN it signals on such a symbol is refused by
the executor (which never opens a second carry on a symbol): the executor is the source of truth either way.
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

ASK_INTERVAL_S = 1.0
ASK_ATTEMPTS = 120  # the executor reconciles with the venues before it answers: allow it minutes

Ask = Callable[[Command], Awaitable[Reply]]


def seed(registry: Registry, carries: list[dict[str, Any]], open_spot: np.ndarray, open_perp: np.ndarray,
         open_qty: np.ndarray, open_settle_ms: np.ndarray) -> list[str]:
    """Write the open carries into the kernel's state arrays; the symbols seeded. The settlement an entry was made
    for is unknown after a restart: 0, i.e. passed, so the carry closes as soon as the rate alone stops paying."""
    seeded = []
    for c in carries:
        s = registry.symbol_id.get(str(c["symbol"]))
        perp = registry.venue_id.get(str(c["perp_venue"]))
        if s is None or perp is None:
            log.warning("executor carry %s on %s/%s: not in this config; not seeded", c.get("carry_id"),
                        c.get("symbol"), c.get("perp_venue"))
            continue
        spot_name = str(c.get("spot_venue") or "")
        open_spot[s] = registry.venue_id.get(spot_name, -1) if spot_name else -2  # -2: the short alone
        open_perp[s] = perp
        open_qty[s] = abs(float(c["perp_qty"]))
        open_settle_ms[s] = 0
        seeded.append(registry.symbol(s))
    return seeded


async def ask_until_answered(ask: Ask) -> list[dict[str, Any]] | None:
    """The executor's open carries; None when it never answered (logged: the executor still refuses doubles)."""
    why = ""
    for _ in range(ASK_ATTEMPTS):
        try:
            reply = await ask(Command("carries", {}))
        except ControlError as exc:
            why = str(exc)
        else:
            if reply.ok:
                return list(reply.data.get("open", []))
            why = reply.error
        await asyncio.sleep(ASK_INTERVAL_S)  # the executor is starting: ask again (a bounded retry, not a sync)
    log.error("the executor never said which carries are open (%s): carry signals start empty", why)
    return None
