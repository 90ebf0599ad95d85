"""The deployment profiles (deploy/profiles/*.toml) are complete configs that say what they are: each validates
through the config loader, its mode and simulator flag match its name, it talks only to the venues' TLS
endpoints, its header names every environment variable it reads, and the paper profile needs no key at all."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.config import Config, load_config
from shared.venues.kinds import kind_of

REPO = Path(__file__).resolve().parents[1]
PROFILES = sorted((REPO / "deploy" / "profiles").glob("*.toml"))
LIVE = [p for p in PROFILES if not p.stem.startswith("paper")]
LOCAL_HOSTS = ("127.0.0.1", "localhost", "0.0.0.0", "[::1]")


def urls(cfg: Config) -> list[tuple[str, str]]:
    """Every endpoint the config connects to, with its key."""
    out: list[tuple[str, str]] = []
    for i, v in enumerate(cfg.venues):
        out += [(f"venues[{i}].ws_url", v.ws_url), (f"venues[{i}].rest_url", v.rest_url)]
        if v.ws_api_url:
            out.append((f"venues[{i}].ws_api_url", v.ws_api_url))
        if v.feed.snapshot_url:
            out.append((f"venues[{i}].feed.snapshot_url", v.feed.snapshot_url))
    return out


def header(path: Path) -> str:
    """The comment block the profile begins with."""
    lines = path.read_text().splitlines()
    block = []
    for line in lines:
        if not line.startswith("#"):
            break
        block.append(line)
    return "\n".join(block)


def test_the_three_profiles_exist() -> None:
    assert {p.stem for p in PROFILES} >= {"paper-real-data", "binance-testnet", "live"}


@pytest.mark.parametrize("path", PROFILES, ids=lambda p: p.stem)
def test_profile_validates_and_is_what_its_name_says(path: Path) -> None:
    cfg = load_config(path)
    assert cfg.mode == ("paper" if path.stem.startswith("paper") else "live")
    assert not cfg.sim.enabled, "a profile talks to the real venues, never to the built-in simulator"
    for key, url in urls(cfg):
        assert url.startswith(("wss://", "https://")), f"{path.name}: {key} = {url!r} is not TLS"
        assert not any(h in url for h in LOCAL_HOSTS), f"{path.name}: {key} = {url!r} is local"


@pytest.mark.parametrize("path", PROFILES, ids=lambda p: p.stem)
def test_profile_header_names_every_variable_and_the_commands(path: Path) -> None:
    cfg = load_config(path)
    text = header(path)
    assert text, f"{path.name} does not begin with a comment block"
    names = {n for v in cfg.venues for n in (v.api_key_env, v.api_secret_env) if n}
    missing = sorted(n for n in names if n not in text)
    assert not missing, f"{path.name}: the header does not name {missing}"
    rel = path.relative_to(REPO)
    assert f"draizer config check {rel}" in text
    assert f"draizer run --config {rel}" in text
    if cfg.mode == "live":
        assert f"draizer preflight -c {rel}" in text


def test_paper_profile_needs_no_key_and_fills_inside_draizer() -> None:
    cfg = load_config(REPO / "deploy" / "profiles" / "paper-real-data.toml")
    spot = [v for v in cfg.venues if kind_of(v.kind).spot]
    assert {kind_of(v.kind).name for v in spot} == {"binance", "mexc"}
    assert all(not v.api_key_env and not v.api_secret_env for v in spot)
    assert all(not v.api_key_env for v in cfg.venues), "a perpetual with keys would not be a funding feed only"
    assert cfg.paper.fills == "model"


@pytest.mark.parametrize("path", LIVE, ids=lambda p: p.stem)
def test_live_profile_trades_with_keys_and_syncs_the_journal_per_intent(path: Path) -> None:
    cfg = load_config(path)
    spot = [v for v in cfg.venues if kind_of(v.kind).spot]
    assert spot and all(v.api_key_env and v.api_secret_env for v in spot)
    assert all(v.ws_api_url for v in spot if kind_of(v.kind).user_stream is not None), \
        "Binance user data comes over the WS API"
    assert cfg.execution.journal_fsync == "always"
    assert cfg.risk.loss_window_s >= 60 and cfg.risk.failure_window_s >= 60 and cfg.risk.breaker_cooldown_s >= 60
