"""Ask a running service something over its control socket (the CLI, the HTTP API and tests use this)."""

from __future__ import annotations

from typing import Any

import zmq

from shared.codec import control_codec
from shared.errors import DraizerError
from shared.messages import Command, Reply


class ControlError(DraizerError):
    """The service did not answer in time (not running, or busy past the timeout)."""


_CONTEXT: zmq.Context[zmq.Socket[bytes]] | None = None


def _context() -> zmq.Context[zmq.Socket[bytes]]:
    """A context of its own, not ``Context.instance()``: a service in the same process terminates that one
    when it stops, which would cut a request waiting for that service's last reply."""
    global _CONTEXT
    if _CONTEXT is None:
        _CONTEXT = zmq.Context()
    return _CONTEXT


def request(endpoint: str, cmd: str, args: dict[str, Any] | None = None, timeout_s: float = 5.0) -> Reply:
    """One command, one reply. A fresh REQ socket per call: a timed-out REQ is unusable afterwards."""
    codec = control_codec()
    sock = _context().socket(zmq.REQ)
    sock.linger = 0
    try:
        sock.connect(endpoint)
        sock.send(codec.encode(Command(cmd, args or {})))
        if not sock.poll(int(timeout_s * 1000), zmq.POLLIN):
            raise ControlError(f"no reply to {cmd!r} from {endpoint} within {timeout_s}s")
        reply = codec.decode(sock.recv())
    finally:
        sock.close()
    if not isinstance(reply, Reply):
        raise ControlError(f"{endpoint} answered {cmd!r} with a {type(reply).__name__}, not a Reply")
    return reply
