"""A venue kind is declared once (``shared/venues/kinds.py``): every configured kind has a declaration, an
unknown kind fails with a message naming the known ones, and the config's per-venue rules come from it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, get_args

import msgspec
import picows
import pytest

from services.sim.app import Simulator
from shared.config import FeedSettings, KindName, default_config_path, load_config, parse_config
from shared.errors import ConfigError
from shared.venues import documented_limits, market_format, order_format
from shared.venues.common import FundingUpdate, TopOfBook
from shared.venues.declaration import load, need
from shared.venues.kinds import KIND_NAMES, KINDS, kind_of
from tests.conftest import eventually_async
from tests.sim_kit import DEADLINE_S, connect

REPO = Path(__file__).resolve().parents[1]
SKIPPED_DIRS = {".venv", ".git", "__pycache__", ".ruff_cache", ".hypothesis", ".run"}
_KNOWN = "|".join(re.escape(name) for name in KINDS)
# A choice between venues by kind name: kind == "binance", v["kind"] in ("binance", "mexc"), kinds[v] != "mexc"...
KIND_CHAIN = re.compile(
    r"""\bkinds?(?:\[[^\]]*\])*["']?\]?\s*(?:==|!=|(?:not\s+)?in\s*[(\[{][^)\]}]*?)\s*["'](?:""" + _KNOWN + r""")["']"""
)
WS_PATHS_TABLE = re.compile(r"\bWS_PATHS\s*(?::[^=]*)?=\s*\{")  # a copy of the declared paths
KIND_SETS = re.compile(r"\b(?:SPOT|PERP)_KINDS\s*(?::[^=]*)?=")  # a copy of the declared spot / perpetual split


def default_data() -> dict[str, Any]:
    data: dict[str, Any] = msgspec.toml.decode(default_config_path().read_bytes())
    return data


def test_every_kind_in_the_default_config_is_declared() -> None:
    cfg = load_config(default_config_path())
    kinds = {v.kind for v in cfg.venues}
    assert kinds == set(KINDS)  # the default config plays every venue draizer speaks
    for name in kinds:
        kind = kind_of(name)
        assert kind.name == name and kind.spot != kind.perp


def test_the_schema_accepts_exactly_the_declared_kinds() -> None:
    assert get_args(KindName) == KIND_NAMES
    data = default_data()
    data["venues"][0]["kind"] = "kraken"
    with pytest.raises(ConfigError, match=r"\$\.venues\[0\]\.kind"):
        parse_config(msgspec.toml.encode(data))


@pytest.mark.parametrize("lookup", [kind_of, market_format, order_format, documented_limits])
def test_an_unknown_kind_fails_naming_the_known_ones(lookup: Any) -> None:
    with pytest.raises(ValueError, match="unknown venue kind 'kraken'; known kinds: binance, mexc, binance_usdm, "
                                         "mexc_contract"):
        lookup("kraken")


@pytest.mark.parametrize("name", KIND_NAMES)
def test_each_declaration_is_whole(name: str) -> None:
    kind = kind_of(name)
    assert kind.ws_path.startswith("/")
    assert kind.market_format() is not kind.market_format()  # a fresh parser per caller
    if kind.spot:  # every spot kind trades
        assert kind.order_format is not None
        assert kind.api_key_header and kind.funding_decimals is None
        assert kind.sim.dialect and kind.sim.load_ticker and kind.sim.funding_rest is None
    else:  # a perpetual may be a funding feed only; one that trades has its simulated order API
        assert kind.user_stream is None
        assert kind.funding_decimals is not None and kind.sim.funding_rest and kind.sim.dialect is None
        assert kind.order_format is None or kind.sim.perp_orders
    if kind.order_format is not None:  # an order API comes whole: its format, documented budget and key header
        assert kind.order_format().kind == name and order_format(name).kind == name
        assert kind.limits is not None and tuple(documented_limits(name)) == tuple(kind.limits)
        assert kind.api_key_header
    else:
        assert kind.limits is None
        with pytest.raises(ValueError, match=f"no order API for venue kind '{name}'; orders go to binance, mexc"):
            order_format(name)
    if kind.user_stream is not None:
        assert kind.user_stream.ws_path.startswith("/")


@pytest.mark.parametrize("name", KIND_NAMES)
def test_every_simulator_path_resolves(name: str) -> None:
    sim = kind_of(name).sim
    for path in (sim.stream, sim.load_stream, sim.dialect, sim.funding_rest, sim.load_ticker):
        if path is not None:
            assert callable(load(path)), path


def test_load_refuses_a_path_without_an_attribute() -> None:
    with pytest.raises(ValueError, match="not a 'module:attribute' path"):
        load("services.sim.app")


@pytest.mark.parametrize(
    ("venue", "feed", "message"),
    [
        (0, {"depth_interval_ms": 10}, r"venues\[0\]\.feed\.depth_interval_ms: Binance serves 100 or 1000"),
        (1, {"depth_interval_ms": 1000}, r"venues\[1\]\.feed\.depth_interval_ms: MEXC serves 10 or 100"),
        (1, {"depth": "partial"}, r"venues\[1\]\.feed\.depth: partial depth is a Binance option; use diff"),
        (0, {"depth": "partial", "depth_levels": 7}, r"venues\[0\]\.feed\.depth_levels: Binance partial depth"),
    ],
)
def test_a_kinds_own_config_rules_name_the_key(venue: int, feed: dict[str, Any], message: str) -> None:
    data = default_data()
    data["venues"][venue]["feed"] = feed
    with pytest.raises(ConfigError, match=message):
        parse_config(msgspec.toml.encode(data))


def test_a_spot_venue_needs_its_key_variables_a_perpetual_does_not() -> None:
    data = default_data()
    assert [v["kind"] for v in data["venues"]][:3] == ["binance", "mexc", "binance_usdm"]
    data["venues"][2].pop("api_key_env", None)
    parse_config(msgspec.toml.encode(data))
    data["venues"][1].pop("api_key_env")
    with pytest.raises(ConfigError, match=r"venues\[1\]\.api_key_env: a spot venue needs"):
        parse_config(msgspec.toml.encode(data))


async def test_the_simulator_serves_each_kind_at_its_declared_ws_path(still_sim: Simulator) -> None:
    """Each venue's feed format, pointed at the declared path of the simulator's port, gets its data."""
    names = {v.venue.name: v.venue.kind for v in still_sim.venues}
    assert set(names.values()) == set(KINDS)
    for name, kind_name in names.items():
        kind = kind_of(kind_name)
        base = f"ws://{still_sim.cfg.sim.host}:{still_sim.venue(name).stream.port}"
        assert still_sim.ws_url(name) == base + kind.ws_path
        with pytest.raises(picows.WSError, match="404"):  # the path matters: another one is refused
            await picows.ws_connect(picows.WSListener, base + "/not-a-venue-path")
        fmt = kind.market_format()
        channels = fmt.channels(["BTCUSDT"] if kind.spot else [fmt.wire_symbol("BTC", "USDT")],
                                FeedSettings(depth="none"))
        transport, listener = await connect(fmt.url(base + kind.ws_path, channels), fmt.subscribe_frames(channels))
        try:
            wanted = TopOfBook if kind.spot else FundingUpdate

            def got_data(listener: Any = listener, fmt: Any = fmt, wanted: type = wanted) -> bool:
                still_sim.emit(still_sim.model.n_slots)  # the market moves until the subscription is in
                still_sim.push_funding()
                return any(isinstance(fmt.parse(payload, binary), wanted) for binary, payload in listener.frames)

            await eventually_async(got_data, DEADLINE_S, f"{name}: data on {kind.ws_path}")
        finally:
            transport.disconnect()
        if kind.user_stream is not None:
            assert still_sim.ws_api_url(name) == base + kind.user_stream.ws_path
            transport, _ = await connect(still_sim.ws_api_url(name))
            transport.disconnect()


def repo_sources() -> list[Path]:
    here = Path(__file__).resolve()  # this file's own examples of what the patterns find
    return [p for p in REPO.rglob("*.py") if not SKIPPED_DIRS & set(p.relative_to(REPO).parts) and p != here]


@pytest.mark.parametrize(
    ("line", "chain"),
    [
        ('if venue.kind == "binance":', True),
        ("if v['kind'] in ('binance', 'mexc'):", True),
        ('if kinds[v] != "mexc_contract":', True),
        ('if self.kind not in ["binance_usdm"]:', True),
        ('if kind == "depth":', False),
        ("if kind.kind == book.MARKET:", False),
        ('if venue.name == "binance":', False),
    ],
)
def test_the_chain_pattern_sees_a_choice_by_kind_name(line: str, chain: bool) -> None:
    assert bool(KIND_CHAIN.search(line)) is chain


def test_no_kind_chain_or_ws_path_table_outside_the_venue_folders() -> None:
    """Adding a venue is its folder and its declaration: nothing else may choose between kinds by name."""
    sources = repo_sources()
    assert len(sources) > 100 and REPO / "services" / "sim" / "app.py" in sources
    found = []
    for path in sources:
        rel = path.relative_to(REPO).as_posix()
        for n, line in enumerate(path.read_text().splitlines(), 1):
            table = WS_PATHS_TABLE.search(line) or KIND_SETS.search(line)
            chain = KIND_CHAIN.search(line) and not rel.startswith("shared/venues/")  # a venue's own dialect may
            if table or chain:
                found.append(f"{rel}:{n}: {line.strip()}")
    assert not found, "\n".join(found)


def test_a_missing_field_a_caller_needs_is_named() -> None:
    perp = kind_of("mexc_contract")
    assert need(perp, perp.funding_decimals, "funding-rate decimals") == 6
    with pytest.raises(ValueError, match="venue kind 'mexc_contract' declares no simulator order API dialect"):
        need(perp, perp.sim.dialect, "simulator order API dialect")
