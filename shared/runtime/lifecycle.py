"""A service's lifecycle: a handful of explicit states; a failing hook leaves a visible FAULTED state."""

from __future__ import annotations

from enum import StrEnum


class State(StrEnum):
    READY = "READY"
    STARTING = "STARTING"
    RUNNING = "RUNNING"
    STOPPING = "STOPPING"
    STOPPED = "STOPPED"
    FAULTED = "FAULTED"


# Which transitions are legal; anything else is a programming error, reported as such.
TRANSITIONS: dict[State, frozenset[State]] = {
    State.READY: frozenset({State.STARTING}),
    State.STARTING: frozenset({State.RUNNING, State.FAULTED}),
    State.RUNNING: frozenset({State.STOPPING, State.FAULTED}),
    State.STOPPING: frozenset({State.STOPPED, State.FAULTED}),
    State.STOPPED: frozenset(),
    State.FAULTED: frozenset({State.STOPPING}),
}


class InvalidTransition(RuntimeError):
    pass


def check_transition(current: State, new: State) -> None:
    if new not in TRANSITIONS[current]:
        raise InvalidTransition(f"{current.value} -> {new.value} is not a legal transition")
