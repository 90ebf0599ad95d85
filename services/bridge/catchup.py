"""Events in sequence per source: live ones from the socket, missing ones from the source's event log.

Each service numbers its events (``shared/runtime/event_log.py``). The bridge hands every event to
``handle`` exactly once and in each source's order: a live event numbered past the next expected one means
events were missed (the bridge was restarting, the PUB dropped at its high-water mark, the subscription was not
up yet); they are read from the source's log first. An event already handled (replayed from the log, then
seen live) is skipped. A gap the log cannot fill (its write failed, or its segment was evicted) is counted
and logged once per source, and the sequence moves on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from pathlib import Path

from services.bridge.checkpoint import Checkpoint
from shared.runtime.event_log import log_dir, read_epoch, read_range

log = logging.getLogger(__name__)

Handle = Callable[[str, int, bytes], None]  # (source, seq, payload)
NO_END = 2**63 - 1


class Sequencer:
    def __init__(self, run_dir: Path, checkpoint: Checkpoint, handle: Handle) -> None:
        self.run_dir = run_dir
        self.handle = handle
        self.epochs = dict(checkpoint.epochs)
        # Per source, the last event handled: events up to the checkpoint's lower mark are in both its counts and
        # its sink, so the replay starts after the smaller of the two.
        sources = set(checkpoint.applied) | set(checkpoint.stored)
        self.last = {s: min(checkpoint.applied.get(s, 0), checkpoint.stored.get(s, 0)) for s in sources}
        self.on_new_log: Callable[[str], None] = lambda src: None
        self.n_live = 0
        self.n_replayed = 0
        self.n_duplicates = 0
        self.n_lost = 0
        self._lost_logged: set[str] = set()

    def start(self, sources: Iterable[str]) -> None:
        """Catch every source up from its log (what happened while the bridge was down)."""
        for src in sources:
            epoch = read_epoch(log_dir(self.run_dir, src))
            if epoch:
                self._check_epoch(src, epoch)
            self.catch_up(src, NO_END)

    def on_live(self, src: str, epoch: int, seq: int, payload: bytes) -> None:
        self._check_epoch(src, epoch)
        last = self.last.get(src, 0)
        if seq <= last:
            self.n_duplicates += 1
            return
        if seq > last + 1:
            self.catch_up(src, seq - 1)
        self.n_live += 1
        self.last[src] = seq
        self.handle(src, seq, payload)

    def catch_up(self, src: str, upto: int) -> None:
        """Hand over the logged events after the last handled one, up to ``upto`` (inclusive)."""
        last = self.last.get(src, 0)
        for seq, _topic, payload in read_range(log_dir(self.run_dir, src), last + 1, upto):
            if seq > last + 1:
                self._lost(src, last + 1, seq - 1)
            self.n_replayed += 1
            last = self.last[src] = seq
            self.handle(src, seq, payload)
        if upto != NO_END and last < upto:
            self._lost(src, last + 1, upto)
            self.last[src] = upto

    def _check_epoch(self, src: str, epoch: int) -> None:
        known = self.epochs.get(src)
        if known == epoch:
            return
        if known is not None:
            log.warning("%s: a new event log (epoch %d, was %d): its numbering starts again", src, epoch, known)
        self.epochs[src] = epoch
        self.last[src] = 0
        self.on_new_log(src)

    def _lost(self, src: str, first: int, last: int) -> None:
        self.n_lost += last - first + 1
        if src not in self._lost_logged:
            self._lost_logged.add(src)
            log.error("%s: events #%d..#%d are neither live nor in its log (counted in events_lost; further gaps "
                      "of this source are only counted)", src, first, last)
