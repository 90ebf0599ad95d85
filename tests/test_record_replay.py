"""Record and replay: the file format survives a crash, a recording rebuilds the books, replay repeats exactly."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

import msgspec
import pytest

from services.cli.replay import replay
from services.feed.recording import BINARY, CONNECTED, SNAPSHOT, TEXT, Recorder, Recording
from shared.config import parse_config
from tests.conftest import eventually, listening, make_config_dict
from tests.test_feed_live import SYMBOLS

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures"


def test_a_file_cut_mid_record_keeps_every_complete_record(tmp_path: Path) -> None:
    path = tmp_path / "r.dzrec"
    rec = Recorder(path, {"venue": "binance"})
    payloads = [f"frame {i}".encode() * (i + 1) for i in range(50)]
    for i, p in enumerate(payloads):
        rec.write(TEXT, p, 1000 + i, conn=1)
    rec.close()
    full = path.read_bytes()
    for cut in (len(full) - 1, len(full) - len(payloads[-1]) - 3, len(full) - 30):
        path.write_bytes(full[:cut])
        got = list(Recording(path))
        assert [r.payload for r in got] == payloads[: len(got)] and len(got) >= 48
    corrupt = bytearray(full)
    corrupt[-2] ^= 0xFF  # a flipped bit in the last record: its CRC no longer matches
    path.write_bytes(bytes(corrupt))
    r = Recording(path)
    assert len(list(r)) == 49 and r.truncated_bytes > 0
    path.write_bytes(b"nonsense")
    with pytest.raises(ValueError, match="not a draizer recording"):
        Recording(path)


def records_so_far(path: Path) -> int:
    """Complete records in a file being written (0 until its header is there)."""
    try:
        return len(list(Recording(path)))
    except (OSError, ValueError):
        return 0


def _sim_config(tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    data = make_config_dict(tmp_path / "run")  # the sim on free ports, the venues' URLs pointing at them
    data["symbols"] = data["symbols"][:SYMBOLS]
    data["sim"]["quotes_per_second"] = 1500.0
    data["sim"]["dislocation_probability"] = 0.02
    path = tmp_path / "c.toml"
    path.write_bytes(msgspec.toml.encode(data))
    return path, data


def test_record_from_the_sim_then_replay_twice_gives_the_same_results(tmp_path: Path) -> None:
    cfg_path, data = _sim_config(tmp_path)
    env = {**os.environ, "DRAIZER_BINANCE_API_KEY": "k", "DRAIZER_BINANCE_API_SECRET": "s",
           "DRAIZER_MEXC_API_KEY": "k", "DRAIZER_MEXC_API_SECRET": "s",
           "DRAIZER_BINANCE_PERP_API_KEY": "k", "DRAIZER_BINANCE_PERP_API_SECRET": "s",
           "DRAIZER_MEXC_PERP_API_KEY": "k", "DRAIZER_MEXC_PERP_API_SECRET": "s"}
    sim = subprocess.Popen([sys.executable, "-m", "services.sim", "--config", str(cfg_path)], cwd=REPO, env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    outputs = {}
    scratch = Path(tempfile.mkdtemp(prefix="dzt-", dir="/tmp"))  # the recorders' run directories go here
    env["TMPDIR"] = str(scratch)
    try:
        # Recording starts its clock at once: the simulator must be listening first, or a slow start eats it.
        eventually(lambda: all(listening(sv["ws_port"]) for sv in data["sim"]["venues"]), 60, what="the sim")
        recorders = {}
        for venue in ("binance", "mexc"):  # both at once: the replay needs overlapping quotes of both venues
            outputs[venue] = tmp_path / f"{venue}.dzrec"
            recorders[venue] = subprocess.Popen(
                [sys.executable, "-m", "services.cli.main", "record", "--venue", venue, "--duration", "4",
                 "-o", str(outputs[venue]), "--config", str(cfg_path)],
                cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            )
        for venue, rec_proc in recorders.items():
            stdout, stderr = rec_proc.communicate(timeout=60)
            assert rec_proc.returncode == 0, (venue, stderr[-3000:])
            assert json.loads(stdout.strip().splitlines()[-1])["records"] > 100
        assert list(scratch.iterdir()) == []  # both recorders removed their run directories (under $TMPDIR)
        # a recorder killed mid-write leaves a readable file
        crash = tmp_path / "crash.dzrec"
        proc = subprocess.Popen(
            [sys.executable, "-m", "services.cli.main", "record", "--venue", "binance", "--duration", "60",
             "-o", str(crash), "--config", str(cfg_path)], cwd=REPO, env=env,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        # Snapshots are large records: wait for a count of records, not a file size.
        eventually(lambda: records_so_far(crash) > 150, 30, what="the recorder writing")
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        assert len(list(Recording(crash))) > 100
        assert [p.name[:7] for p in scratch.iterdir()] == ["dz-rec-"]  # a killed one cannot: it was there
    finally:
        sim.send_signal(signal.SIGTERM)
        sim.wait(20)
        shutil.rmtree(scratch)  # the killed recorder's run directory: nothing could remove it

    for venue, path in outputs.items():
        kinds = {r.kind for r in Recording(path)}
        assert {CONNECTED, SNAPSHOT} <= kinds and (TEXT in kinds or BINARY in kinds), (venue, kinds)
    cfg = parse_config(cfg_path.read_bytes())
    first = replay(cfg, [outputs["binance"], outputs["mexc"]])
    second = replay(cfg, [outputs["binance"], outputs["mexc"]])
    assert first.digest == second.digest and first.opportunities == second.opportunities
    assert first.opportunities > 0
    for venue in ("binance", "mexc"):
        c = first.venues[venue]
        assert c["books"] > 0 and c["quotes"] > 0 and c["malformed"] == 0 and c["gaps"] == 0


def test_the_committed_session_replays_to_its_recorded_digest() -> None:
    """A session recorded from the sim and kept as a fixture: the replay must not drift across changes."""
    expected = json.loads((FIXTURES / "session.expected.json").read_text())
    cfg = parse_config((FIXTURES / "session.toml").read_bytes())
    result = replay(cfg, [FIXTURES / "session.binance.dzrec", FIXTURES / "session.mexc.dzrec"])
    assert msgspec.to_builtins(result)["digest"] == expected["digest"]
    assert result.opportunities == expected["opportunities"]
    assert {v: c["books"] for v, c in result.venues.items()} == expected["books"]


def test_a_replay_removes_its_run_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    cfg = parse_config((FIXTURES / "session.toml").read_bytes())
    done: list[object] = []
    # The 2 s session at twice real time: about a second in which its run directory can be seen.
    worker = threading.Thread(target=lambda: done.append(replay(cfg, [FIXTURES / "session.binance.dzrec"], 2.0)))
    worker.start()
    try:
        [used] = eventually(lambda: list(tmp_path.iterdir()), 30, 0.005, what="the replay's run directory")
        assert used.name.startswith("dz-replay-")
    finally:
        worker.join(60)
    assert done and list(tmp_path.iterdir()) == []
    with pytest.raises(FileNotFoundError):  # a replay that fails removes it too
        replay(cfg, [FIXTURES / "session.binance.dzrec", tmp_path.parent / "missing.dzrec"])
    assert list(tmp_path.iterdir()) == []
