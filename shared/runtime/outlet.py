"""Where a service sends its hot-path output: a socket, or a direct call in fused placement.

The service code is the same either way; placement decides which outlet it gets. ``send`` never blocks
the hot path: it returns False when the message could not be handed over (peer gone, high-water mark).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

import zmq

from shared.codec import Codec

T = TypeVar("T")


class Outlet(Generic[T]):
    def __init__(self, name: str) -> None:
        self.name = name
        self.sent = 0
        self.failed = 0

    @property
    def connected(self) -> bool:
        return False

    def send(self, msg: T) -> bool:
        self.failed += 1
        return False

    @staticmethod
    def unconnected(name: str) -> Outlet[T]:
        return Outlet(name)

    @staticmethod
    def direct(name: str, handler: Callable[[T], object]) -> Outlet[T]:
        return DirectOutlet(name, handler)


class DirectOutlet(Outlet[T]):
    """Fused placement: the downstream handler runs in this call stack (no socket, no copy)."""

    def __init__(self, name: str, handler: Callable[[T], object]) -> None:
        super().__init__(name)
        self._handler = handler

    @property
    def connected(self) -> bool:
        return True

    def send(self, msg: T) -> bool:
        self._handler(msg)
        self.sent += 1
        return True


class SocketOutlet(Outlet[T]):
    def __init__(self, name: str, sock: zmq.Socket[bytes], codec: Codec[T]) -> None:
        super().__init__(name)
        self._sock = sock
        self._encode = codec.encode

    @property
    def connected(self) -> bool:
        return True

    def send(self, msg: T) -> bool:
        try:
            self._sock.send(self._encode(msg), zmq.NOBLOCK)
        except zmq.Again:
            self.failed += 1
            return False
        self.sent += 1
        return True
