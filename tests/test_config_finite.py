"""Every float limit of the config is a finite, sane number: nan, ±inf and absurd magnitudes (1e308) are refused
by the config file and by a runtime strategy change alike, and the error names the key."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import msgspec
import msgspec.inspect as mi
import pytest

from services.cli.bench_config import bench_config
from services.detector.params import StrategyParams
from shared.config import Config, default_config_path, load_config, parse_config
from shared.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]
Key = tuple[str | int, ...]


def float_fields(info: mi.Type, key: Key = ()) -> list[tuple[Key, mi.FloatType]]:
    """Every float field of the config, with its key (a list's first item stands for every item)."""
    out: list[tuple[Key, mi.FloatType]] = []
    if isinstance(info, mi.FloatType):
        out.append((key, info))
    elif isinstance(info, mi.StructType):
        for f in info.fields:
            out += float_fields(f.type, (*key, f.encode_name))
    elif isinstance(info, (mi.VarTupleType, mi.ListType)):
        out += float_fields(info.item_type, (*key, 0))
    return out


FLOATS = float_fields(mi.type_info(Config))


def dollar_path(key: Key) -> str:
    return "$" + "".join(f"[{k}]" if isinstance(k, int) else f".{k}" for k in key)


def config_with(key: Key, value: float) -> bytes:
    data: dict[str, Any] = msgspec.toml.decode(default_config_path().read_bytes())
    node: Any = data
    for k in key[:-1]:
        node = node[k] if isinstance(k, int) else node.setdefault(k, {})
    node[key[-1]] = value
    return msgspec.toml.encode(data)


def test_the_walk_sees_every_section() -> None:
    paths = {dollar_path(k) for k, _ in FLOATS}
    assert len(paths) > 40
    assert {"$.strategies.cross_exchange.min_spread_bps", "$.venues[0].taker_fee", "$.sim.funding_rate_mean",
            "$.sim.venues[0].latency_ms", "$.capital.total_usd"} <= paths


@pytest.mark.parametrize("key", [k for k, _ in FLOATS], ids=[dollar_path(k) for k, _ in FLOATS])
def test_every_float_field_has_a_finite_upper_bound(key: Key) -> None:
    info = dict(FLOATS)[key]
    bound = info.le if info.le is not None else info.lt
    low = info.ge if info.ge is not None else info.gt
    assert bound is not None and math.isfinite(bound), f"{dollar_path(key)} has no finite upper bound"
    assert low is not None and math.isfinite(low), f"{dollar_path(key)} has no finite lower bound"


@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan], ids=["inf", "-inf", "nan"])
@pytest.mark.parametrize("key", [k for k, _ in FLOATS], ids=[dollar_path(k) for k, _ in FLOATS])
def test_non_finite_values_are_refused_by_key(key: Key, value: float) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(config_with(key, value), "c.toml")
    assert f"{dollar_path(key)}: must be a finite number" in str(err.value)


@pytest.mark.parametrize("value", [1e308, -1e308])
@pytest.mark.parametrize("key", [k for k, _ in FLOATS], ids=[dollar_path(k) for k, _ in FLOATS])
def test_absurd_magnitudes_are_refused_by_key(key: Key, value: float) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(config_with(key, value), "c.toml")
    assert f"`{dollar_path(key)}`" in str(err.value)


def test_nan_in_toml_text_names_the_key() -> None:
    text = default_config_path().read_text().replace("min_spread_bps = 5.0", "min_spread_bps = nan")
    with pytest.raises(ConfigError, match=r"\$\.strategies\.cross_exchange\.min_spread_bps: must be a finite"):
        parse_config(text, "c.toml")
    text = default_config_path().read_text().replace("max_notional_usd = 5000.0", "max_notional_usd = inf")
    with pytest.raises(ConfigError, match=r"\$\.risk\.max_notional_usd: must be a finite"):
        parse_config(text, "c.toml")


def test_the_shipped_and_generated_configs_still_pass(tmp_path: Path) -> None:
    load_config(default_config_path())
    load_config(REPO / "tests" / "fixtures" / "session.toml")
    for placement in ("single", "fused", "processes"):  # the benchmarks lift the USD limits to 1e12
        parse_config(msgspec.toml.encode(bench_config(tmp_path, placement)))


@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan, 1e308])
def test_a_runtime_strategy_change_applies_the_same_rules_and_changes_nothing(value: float) -> None:
    cfg = load_config(default_config_path())
    params = StrategyParams(cfg.strategies, cfg.capital)
    before = params.describe()
    packed = params.cross.copy()
    with pytest.raises(ConfigError) as err:
        params.update("cross_exchange", True, {"min_profit_usd": 1.0, "min_spread_bps": value})
    assert "$.strategies.cross_exchange.min_spread_bps" in str(err.value)
    assert params.describe() == before and (params.cross == packed).all()
