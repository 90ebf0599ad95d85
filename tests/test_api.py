"""`draizer api` as a real process: reads equal the shared memory the test writes; writes need the token.

The kill switch through the API against a real pipeline (risk really halts) is in
tests/test_observability_e2e.py."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from services.bridge.state import BridgeState
from shared.config import Config
from shared.shm import ShmWriter, shm_path, snapshot_json
from tests.conftest import eventually, make_config_dict, write_config
from tests.http_kit import Answer, call, without_ages
from tests.test_bridge_state import SERVICES, decision, opportunity, registry, stats

REPO = Path(__file__).resolve().parents[1]
WRITES = ("/api/v2/kill", "/api/v2/resume", "/api/v2/strategies/cross_exchange/stop",
          "/api/v2/strategies/cross_exchange/start")


class Api:
    def __init__(self, cfg: Config, proc: subprocess.Popen[bytes], log_path: Path) -> None:
        self.cfg = cfg
        self.proc = proc
        self.log_path = log_path  # the API's stdout and stderr: its log
        self.base = f"http://127.0.0.1:{cfg.sinks.api_port}"

    def get(self, path: str) -> Answer:
        return call("GET", self.base + path)

    def post(self, path: str, token: str | None = None) -> Answer:
        return call("POST", self.base + path, token)

    def refusals(self) -> list[str]:
        """The log lines of refused writes so far."""
        return [line for line in self.log_path.read_text().splitlines() if "refused POST " in line]

    def await_refusals(self, n: int) -> list[str]:
        """The refusal lines once there are ``n`` (each is logged before its answer is sent; polled anyway)."""
        return eventually(lambda: lines if len(lines := self.refusals()) >= n else None, timeout=10,
                          what=f"{n} refusals in {self.log_path}")


@contextmanager
def running_api(tmp_path: Path, run_dir: Path, token: str | None, **sinks: object) -> Iterator[Api]:
    cfg_path = tmp_path / "draizer.toml"
    cfg = write_config(cfg_path, make_config_dict(run_dir, sinks=sinks))
    env = {k: v for k, v in os.environ.items() if k != cfg.sinks.api_token_env}
    if token is not None:
        env[cfg.sinks.api_token_env] = token
    log = (tmp_path / "api.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "services.cli.main", "api", "--config", str(cfg_path),
                             "--run-dir", str(run_dir)], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    api = Api(cfg, proc, tmp_path / "api.log")
    try:
        eventually(lambda: _answers(api), timeout=30, what=f"the API on {api.base}")
        yield api
    finally:
        proc.terminate()
        code = proc.wait(10)
        log.close()
        shm_path(cfg.instance).unlink(missing_ok=True)
    text = (tmp_path / "api.log").read_text()
    assert code == 0, text
    assert "Traceback" not in text, text


def _answers(api: Api) -> bool:
    try:
        return api.get("/openapi.json").status == 200
    except OSError:
        return False


def busy_state() -> BridgeState:
    state = BridgeState(registry(), SERVICES)
    state.on_event(stats("feed.binance", counters={"quotes": 900}, prices=[(0, 0, 100.0, 100.1), (0, 1, 5.0, 5.01)]))
    state.on_event(stats("feed.mexc", counters={"quotes": 700}, prices=[(1, 0, 99.9, 100.0)]))
    state.on_event(stats("risk", gauges={"halted": 0.0}))
    for i in range(1, 9):
        opp = opportunity(i, symbol=i % 2)
        state.on_event(opp)
        if i < 8:
            state.on_event(decision(opp, "approved" if i % 3 else "max_concurrent"))
    return state


@pytest.fixture
def api_with_token(tmp_path: Path, run_dir: Path) -> Iterator[tuple[Api, str]]:
    token = secrets.token_urlsafe(24)
    with running_api(tmp_path, run_dir, token) as api:
        yield api, token


def test_reads_are_the_shared_memory_snapshot(api_with_token: tuple[Api, str]) -> None:
    api, _ = api_with_token
    assert api.get("/api/v2/status").status == 503  # no bridge yet
    assert "no shared memory" in api.get("/api/v2/status").body["detail"]

    state = busy_state()
    with ShmWriter(shm_path(api.cfg.instance), state.layout) as writer:
        snap = state.snapshot()
        seq = writer.publish(snap)
        expected = without_ages(snapshot_json(snap, 0))

        status = api.get("/api/v2/status")
        assert status.status == 200
        body = status.body
        assert (body.pop("seq"), body.pop("instance"), body.pop("writer_pid"), body.pop("writer_alive")) == (
            seq, api.cfg.instance, os.getpid(), True)
        assert without_ages(body) == expected

        opps = api.get("/api/v2/opportunities?limit=5").body
        assert opps["seq"] == seq
        assert (opps["total"], opps["approved"], opps["rejected"]) == (8, 5, 2)
        assert opps["rejections_by_reason"] == {"max_concurrent": 2}
        assert without_ages(opps["opportunities"]) == list(reversed(expected["recent"]))[:5]
        assert [o["id"] for o in opps["opportunities"]] == [8, 7, 6, 5, 4]
        assert opps["opportunities"][0]["decision"] == "pending"
        symbol = expected["recent"][0]["symbol"]
        only = api.get(f"/api/v2/opportunities?symbol={symbol}").body["opportunities"]
        assert only and all(o["symbol"] == symbol for o in only)
        assert api.get("/api/v2/opportunities?limit=0").status == 422

        prices = api.get("/api/v2/prices").body
        assert prices["prices"] == expected["prices"] and prices["seq"] == seq
        btc = api.get("/api/v2/prices?symbol=BTCUSDT").body["prices"]
        assert btc == {"BTCUSDT": {"binance": {"bid": 100.0, "ask": 100.1}, "mexc": {"bid": 99.9, "ask": 100.0}}}
        assert api.get("/api/v2/prices?symbol=NOPE").status == 404

        # a new snapshot is what the next read shows
        state.on_event(opportunity(9))
        seq2 = writer.publish(state.snapshot())
        again = api.get("/api/v2/opportunities?limit=1").body
        assert (again["seq"], again["total"], again["opportunities"][0]["id"]) == (seq2, 9, 9)


def test_writes_need_the_right_bearer_token(api_with_token: tuple[Api, str]) -> None:
    api, token = api_with_token
    for path in WRITES:
        missing = api.post(path)
        assert missing.status == 401, path
        assert missing.headers.get("www-authenticate", missing.headers.get("WWW-Authenticate")) == "Bearer"
        assert api.post(path, token="wrong-" + token).status == 403, path
        assert api.post(path, token=token[:-1]).status == 403, path  # a prefix is not the token
    # The right token gets through to the control socket; nothing runs here, so the service is not answering.
    passed = api.post("/api/v2/kill", token=token)
    assert passed.status == 503, passed
    assert "risk is not answering" in passed.body["detail"]
    assert api.get("/api/v2/strategies").status == 503  # reads of the detector go to its control socket too


def test_every_refused_write_is_logged_once_without_the_token(api_with_token: tuple[Api, str]) -> None:
    api, token = api_with_token
    offered = "wrong-" + secrets.token_urlsafe(16)
    expected = []
    for path in WRITES:
        assert api.post(path).status == 401, path
        expected.append((path, 401))
        assert api.post(path, token=offered).status == 403, path
        expected.append((path, 403))
    lines = api.await_refusals(len(expected))
    assert len(lines) == len(expected), lines  # once per request, not more
    for line, (path, status) in zip(lines, expected, strict=True):
        assert re.search(rf"refused POST {re.escape(path)} from 127\.0\.0\.1:\d+: {status} ", line), line
    assert lines[-1].endswith(f"({len(expected)} writes refused since the start)"), lines[-1]
    # An accepted write is not a refusal (it fails later: no risk service runs here, and that is logged apart).
    assert api.post("/api/v2/kill", token=token).status == 503
    assert len(api.refusals()) == len(expected)
    log = api.log_path.read_text()
    assert token not in log and offered not in log  # neither the token nor what a caller offered


def test_writes_are_refused_when_no_token_is_configured(tmp_path: Path, run_dir: Path) -> None:
    offered = secrets.token_urlsafe(16)
    with running_api(tmp_path, run_dir, token=None) as api:
        for path in WRITES:
            for token in (None, "", offered):
                answer = api.post(path, token=token)
                assert answer.status == 503, (path, token, answer)
                assert "DRAIZER_API_TOKEN is not set" in answer.body["detail"]
        # Every one of those refusals is logged once, with the client address and without what was offered.
        lines = api.await_refusals(3 * len(WRITES))
        assert len(lines) == 3 * len(WRITES), lines
        for line, path in zip(lines, [p for p in WRITES for _ in range(3)], strict=True):
            assert re.search(rf"refused POST {re.escape(path)} from 127\.0\.0\.1:\d+: 503 .*is not set", line), line
        assert offered not in api.log_path.read_text()
    with running_api(tmp_path, run_dir, token="") as api:  # set but empty counts as unset
        assert api.post("/api/v2/kill", token="").status == 503


def test_openapi_document_and_docs_are_served(api_with_token: tuple[Api, str]) -> None:
    api, _ = api_with_token
    doc = api.get("/openapi.json").body
    paths = doc["paths"]
    assert {"/api/v2/status", "/api/v2/opportunities", "/api/v2/prices", "/api/v2/strategies",
            "/api/v2/strategies/{name}/start", "/api/v2/strategies/{name}/stop", "/api/v2/kill",
            "/api/v2/resume"} <= set(paths)
    assert doc["components"]["securitySchemes"]["token"] == {
        "type": "http", "scheme": "bearer",
        "description": "The value of the environment variable named by `sinks.api_token_env` (default "
                       "DRAIZER_API_TOKEN).",
    }
    for path, ops in paths.items():
        for method, op in ops.items():
            assert ("security" in op) == (method == "post"), (method, path)
    docs = call("GET", api.base + "/docs")
    assert docs.status == 200 and "swagger" in str(docs.body).lower()


def test_port_zero_means_no_api_and_a_clean_exit(tmp_path: Path, run_dir: Path) -> None:
    cfg_path = tmp_path / "draizer.toml"
    write_config(cfg_path, make_config_dict(run_dir, sinks={"api_port": 0}))
    out = subprocess.run([sys.executable, "-m", "services.cli.main", "api", "--config", str(cfg_path)],
                         capture_output=True, text=True, cwd=REPO, timeout=30, check=False)
    assert out.returncode == 0, out.stderr
    assert "HTTP API is off" in out.stderr
