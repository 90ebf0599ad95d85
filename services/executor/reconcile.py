"""Start-up reconciliation: the journal's open executions are settled with the venues before any new intent.

For each execution the journal left without ``done`` (the executor died mid-flight):

- every order that is not final is *queried* by its client order id. An order the venue does not know and that
  can no longer arrive (its recvWindow has passed) was never placed: it is marked refused. Nothing is resent.
- the execution then runs the normal path from there (trades, legging, books), so an imbalance the crash left is
  unwound now, and the Execution event goes out once, marked as reconciled.

Then every venue's open orders are checked: one of ours (the ``dz`` client id prefix) that the journal does not
know cannot be explained, and is cancelled. Finally the journal is compacted to what is still open (nothing).
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec

from services.executor.execution import ExecutionRun
from services.executor.order_journal import OrderJournal
from shared.errors import ProtocolError, VenueError
from shared.messages import OrderIntent

if TYPE_CHECKING:
    from services.executor.order_journal import JournalState
    from services.executor.service import Executor

log = logging.getLogger(__name__)

OUR_PREFIX = "dz"


async def reconcile(ex: Executor, state: JournalState, journal_dir: Path) -> int:
    """Settle every open execution of ``state``; how many there were."""
    runs: list[ExecutionRun] = []
    for opp_id, record in sorted(state.open_executions.items()):
        orders = [o for o in state.orders.values() if o.opportunity_id == opp_id]
        intent = _intent_of(record)
        if intent is None or not orders:
            log.error("journal: execution %d has no readable intent or no orders; its orders: %s",
                      opp_id, [o.client_order_id for o in orders])
            ex.journal.done(opp_id, "unreadable")
            continue
        run = ExecutionRun(ex, intent, orders, min(o.created_ns for o in orders))
        run.note = "reconciled after a restart"
        runs.append(run)
    if runs:
        log.warning("journal: %d executions were open at the last stop; reconciling with the venues", len(runs))
    timeout = ex.settings.reconcile_timeout_s
    pending = [ex.start_run(run) for run in runs]
    if pending:
        _done, not_done = await asyncio.wait(pending, timeout=timeout)
        if not_done:
            log.error("reconciliation: %d executions not settled within %.0fs; still running", len(not_done), timeout)
    await _cancel_unexplained(ex, state)
    OrderJournal.compact(journal_dir, OrderJournal.load(journal_dir))
    return len(runs)


def _intent_of(record: dict[str, object]) -> OrderIntent | None:
    legs = record.get("legs")
    if not isinstance(legs, list) or not legs:
        return None
    try:
        return msgspec.convert(legs[0], OrderIntent)
    except (msgspec.ValidationError, TypeError):
        return None


async def _cancel_unexplained(ex: Executor, state: JournalState) -> None:
    known = set(state.orders)
    for venue, client in ex.clients.items():
        for s in ex.registry.listed_symbols(venue):
            try:
                answers = await client.open_orders(s)
            except (OSError, TimeoutError, ConnectionError, VenueError, ProtocolError) as exc:
                log.error("reconciliation: open orders of %s on %s unavailable (%s)", ex.registry.symbol(s),
                          client.name, exc)
                continue
            for a in answers:
                if a.client_order_id.startswith(OUR_PREFIX) and a.client_order_id not in known:
                    log.error("reconciliation: open order %s on %s is not in the journal; cancelling it",
                              a.client_order_id, client.name)
                    await client.cancel_order(s, a.client_order_id)
