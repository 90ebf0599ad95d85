"""Executions booked but never published: a restart publishes them.

The executor writes an execution's ``done`` record (and syncs it) before it publishes the Execution, so a kill -9
between the two leaves an execution the journal calls settled — never reconciled again — whose event no one
ever received: the bridge would never store it. The ``done`` record therefore carries the Execution as it is
published, and a start compares the latest of them with the Execution events in the executor's own event log
(``shared/runtime/event_log.py``, the bridge's source): those missing from it were lost at the kill, and are
published now (risk, which also books from the executor's list, drops a publication it booked already:
``services/risk/catchup.py``).

"Missing" needs care once the log's oldest segments are deleted (the bridge has them): an execution absent from
a pruned log was either never published or published before the oldest event kept. Then only those booked after
the first one the log holds count as missing; when the log holds none of them, there is no telling and nothing
is published (logged: an operator compares with the venues).
"""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import msgspec

from shared.messages import TOPIC_EXECUTION, Execution
from shared.runtime.event_log import read_range, segments

log = logging.getLogger(__name__)

_decode = msgspec.msgpack.Decoder(Execution).decode


def logged_executions(directory: Path) -> tuple[set[int], bool]:
    """The opportunity ids of the Execution events in a service's event log, and whether the log still starts at
    its first number (nothing pruned)."""
    segs = segments(directory)
    ids: set[int] = set()
    for _seq, topic, payload in read_range(directory, 0, 2**63):
        if topic == TOPIC_EXECUTION:
            try:
                ids.add(_decode(payload).opportunity_id)
            except msgspec.DecodeError:
                continue
    return ids, not segs or segs[0][0] <= 1


def unpublished(booked: Sequence[tuple[int, int, str]], logged: set[int], whole: bool) -> list[Execution]:
    """The Executions of ``booked`` ((seq, opportunity id, base64 event), oldest first) that were lost between
    their ``done`` record and their publication."""
    first_logged = next((seq for seq, opp, _ in booked if opp in logged), None)
    if first_logged is None and not whole:
        if booked:
            log.warning("event log pruned and none of the %d latest booked executions is in it: cannot tell "
                        "which were published; none is published again", len(booked))
        return []
    after = 0 if whole or first_logged is None else first_logged  # never pruned: absent means never published
    out = []
    for seq, opp, event in booked:
        if seq > after and opp not in logged:
            try:
                out.append(_decode(base64.b64decode(event, validate=True)))
            except (binascii.Error, msgspec.DecodeError, ValueError):
                log.error("execution %d: its done record's event is unreadable; the bridge will lack it", opp)
    return out


def encode_event(exe: Execution, encode: Callable[[Execution], bytes]) -> str:
    """The ``event`` field of a ``done`` record: the Execution as its publication encodes it."""
    return base64.b64encode(encode(exe)).decode()


def booked_executions(booked: Sequence[str]) -> list[Execution]:
    """The Executions the journal's ``done`` records carry, in booking order (unreadable ones are skipped: their
    books are counted all the same, only the carries they moved cannot be rebuilt, which is logged)."""
    out: list[Execution] = []
    bad = 0
    for event in booked:
        try:
            out.append(_decode(base64.b64decode(event, validate=True)))
        except (ValueError, msgspec.DecodeError):
            bad += 1
    if bad:
        log.error("order journal: %d booked executions unreadable; carries they moved are not rebuilt", bad)
    return out
