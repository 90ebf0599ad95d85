"""A tiny HTTP client for tests of draizer's HTTP API: status, headers and decoded JSON, errors included."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any, NamedTuple


class Answer(NamedTuple):
    status: int
    headers: dict[str, str]
    body: Any  # decoded JSON, or the text when it is not JSON


def call(method: str, url: str, token: str | None = None, timeout: float = 10.0) -> Answer:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    req = urllib.request.Request(url, method=method, headers=headers, data=b"" if method == "POST" else None)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            status, hdrs, raw = resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as err:
        status, hdrs, raw = err.code, dict(err.headers), err.read()
        err.close()
    try:
        body: Any = json.loads(raw)
    except ValueError:
        body = raw.decode(errors="replace")
    return Answer(status, hdrs, body)


def without_ages(data: Any) -> Any:
    """JSON with every ``*age_s`` field removed: ages are relative to when it was read, the rest is the snapshot."""
    if isinstance(data, dict):
        return {k: without_ages(v) for k, v in data.items() if not k.endswith("age_s")}
    if isinstance(data, list):
        return [without_ages(v) for v in data]
    return data
