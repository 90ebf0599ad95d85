"""`draizer top` as a user runs it (a real process) over a real shared-memory file that the test writes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

from services.bridge.state import BridgeState
from services.cli.top import CLEAR
from shared.shm import ShmWriter
from tests.conftest import eventually
from tests.test_bridge_state import SERVICES, decision, opportunity, registry, stats

REPO = Path(__file__).resolve().parents[1]


def draizer(*args: str) -> list[str]:
    return [sys.executable, "-m", "services.cli.main", *args]


def trade(state: BridgeState, first: int, n: int, quotes: int) -> None:
    state.on_event(stats("feed.binance", counters={"quotes": quotes}, prices=[(0, 0, 100.0, 100.1)]))
    state.on_event(stats("feed.mexc", counters={"quotes": quotes // 2}, prices=[(1, 0, 99.8, 99.9)]))
    for i in range(first, first + n):
        opp = opportunity(i)
        state.on_event(opp)
        state.on_event(decision(opp, "approved" if i % 2 else "max_concurrent"))


def test_once_prints_one_block_from_shared_memory(tmp_path: Path) -> None:
    state = BridgeState(registry(), SERVICES)
    trade(state, 1, 7, quotes=1200)
    path = tmp_path / "shm"
    with ShmWriter(path, state.layout) as writer:
        writer.publish(state.snapshot())
        out = subprocess.run(draizer("top", "--once", "--path", str(path)), capture_output=True, text=True,
                             cwd=REPO, timeout=30, check=False)
    assert out.returncode == 0, out.stderr
    assert CLEAR not in out.stdout
    assert "opportunities  7  approved 4  rejected 3 (max_concurrent 3)" in out.stdout
    assert "quotes         binance 1200  mexc 600" in out.stdout
    assert "rates  quotes binance -" in out.stdout  # one frame: no rate yet
    assert f"bridge pid {os.getpid()} running" in out.stdout


def test_once_without_shared_memory_says_so_and_fails(tmp_path: Path) -> None:
    out = subprocess.run(draizer("top", "--once", "--path", str(tmp_path / "none")), capture_output=True, text=True,
                         cwd=REPO, timeout=30, check=False)
    assert out.returncode == 1
    assert "waiting for the bridge" in out.stderr


def test_live_view_redraws_with_new_numbers_and_rates_and_quits_on_ctrl_c(tmp_path: Path) -> None:
    state = BridgeState(registry(), SERVICES)
    path = tmp_path / "shm"
    with ShmWriter(path, state.layout) as writer, subprocess.Popen(
        draizer("top", "--interval", "0.1", "--path", str(path)), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, cwd=REPO,
    ) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        out = proc.stdout
        chunks: list[str] = []
        reader = threading.Thread(target=lambda: chunks.extend(iter(lambda: out.read(1), "")), daemon=True)
        reader.start()

        def frames() -> list[str]:
            return "".join(chunks).split(CLEAR)[1:]

        try:
            eventually(lambda: any("has not published" in f or "opportunities" in f for f in frames()),
                       timeout=30, what="a first frame")
            trade(state, 1, 3, quotes=100)
            writer.publish(state.snapshot())
            eventually(lambda: any("opportunities  3 " in f for f in frames()), what="the first snapshot drawn")
            trade(state, 4, 5, quotes=5000)
            writer.publish(state.snapshot())
            latest = eventually(lambda: [f for f in frames() if "opportunities  8 " in f], what="the new snapshot")
            # the frame that first shows the jump has a rate for it
            assert "quotes binance -" not in latest[0] and "quotes binance 0.0/s" not in latest[0]
        finally:
            proc.send_signal(signal.SIGINT)
            proc.wait(10)
            reader.join(5)
        errors = proc.stderr.read()
    assert proc.returncode == 0, errors
    assert "Traceback" not in errors
