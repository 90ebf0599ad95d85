"""The web monitor's event stream from a real `draizer api` process: frames from shared memory as it changes,
and an open stream does not hold up the API's stop (uvicorn would wait for it)."""

from __future__ import annotations

import http.client
import json
import time
from pathlib import Path
from typing import Any

from shared.shm import ShmWriter, shm_path
from tests.conftest import eventually
from tests.test_api import busy_state, running_api


def frames(resp: http.client.HTTPResponse) -> Any:
    """Each `event: frame` of a server-sent event stream, its data decoded."""
    event = ""
    while line := resp.readline():
        text = line.decode().rstrip("\n")
        if text.startswith("event: "):
            event = text[len("event: "):]
        elif text.startswith("data: ") and event == "frame":
            yield json.loads(text[len("data: "):])


def test_the_stream_follows_shared_memory_and_ends_when_the_api_stops(tmp_path: Path, run_dir: Path) -> None:
    with running_api(tmp_path, run_dir, token=None) as api:
        conn = http.client.HTTPConnection("127.0.0.1", api.cfg.sinks.api_port, timeout=10)
        conn.request("GET", "/api/v2/stream", headers={"Accept": "text/event-stream"})
        resp = conn.getresponse()
        assert resp.status == 200 and resp.getheader("content-type", "").startswith("text/event-stream")
        stream = frames(resp)
        first = next(stream)
        assert first["available"] is False and "no shared memory" in first["detail"]
        assert first["tape"]["risk"]["heard"] is False  # nothing runs: no risk, no executor

        state = busy_state()
        with ShmWriter(shm_path(api.cfg.instance), state.layout) as writer:
            writer.publish(state.snapshot())
            live = next(f for f in stream if f["available"])
            assert live["totals"]["opportunities"] == 8 and live["writer_alive"] is True
            # newest first; ids as text: they use 64 bits, past what a browser's JSON numbers hold exactly
            assert [o["id"] for o in live["opportunities"]] == [str(i) for i in range(8, 0, -1)]
            assert live["opportunities"][1]["decision"] == "approved"
            assert set(live["feeds"]) == {"binance", "mexc"}

            start = time.monotonic()
            api.proc.terminate()
            eventually(lambda: api.proc.poll() is not None, timeout=10, what="the API to exit")
            assert time.monotonic() - start < 3.0  # not the 5 s uvicorn gives open connections
        assert api.proc.returncode == 0
        assert not any(True for _ in stream)  # the stream ended with the server
        conn.close()
