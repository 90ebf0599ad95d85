"""A config dict pointed at free loopback ports: the simulated venues, the venues' URLs, the API and metrics ports.

For tests, scripts and benchmarks that start a simulator (or a whole run) beside whatever else runs on the
machine: the default config's fixed ports would collide.
"""

from __future__ import annotations

import socket
from typing import Any

from shared.venues.kinds import kind_of


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def on_free_ports(data: dict[str, Any]) -> dict[str, Any]:
    """Rewrite ``data`` (a decoded config) in place, and return it: each simulated venue on two free ports, each
    venue's market-data, REST and user-data URLs at them, the API and Prometheus on free ports."""
    ports = {sv["venue"]: (free_port(), free_port()) for sv in data["sim"]["venues"]}
    for sv in data["sim"]["venues"]:
        sv["ws_port"], sv["rest_port"] = ports[sv["venue"]]
    for v in data["venues"]:
        if v["name"] not in ports:
            continue
        ws, rest = ports[v["name"]]
        kind = kind_of(v["kind"])
        v["ws_url"] = f"ws://127.0.0.1:{ws}{kind.ws_path}"
        v["rest_url"] = f"http://127.0.0.1:{rest}"
        if v.get("ws_api_url") and kind.user_stream is not None:
            v["ws_api_url"] = f"ws://127.0.0.1:{ws}{kind.user_stream.ws_path}"
        if v.get("user_ws_url") and kind.listen_key_stream is not None:
            v["user_ws_url"] = f"ws://127.0.0.1:{ws}{kind.listen_key_stream.ws_path}"
    data.setdefault("sinks", {})
    data["sinks"]["prometheus_port"] = free_port()
    data["sinks"]["api_port"] = free_port()
    return data
