"""A mistyped config key is named with the declared key closest to it: in a config file (any depth, inside arrays
of tables), in `draizer config check`, and in a runtime `strategy set`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import pytest

from services.cli.main import main
from services.detector.params import StrategyParams
from shared.config import default_config_path, load_config, parse_config
from shared.errors import ConfigError


def default_data() -> dict[str, Any]:
    return msgspec.toml.decode(default_config_path().read_bytes())


def error_of(data: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as err:
        parse_config(msgspec.toml.encode(data), "draizer.toml")
    return str(err.value)


def test_a_mistyped_strategy_key_gets_the_declared_one() -> None:
    data = default_data()
    data["strategies"]["cross_exchange"]["min_sprad_bps"] = 3.0
    assert error_of(data) == ("draizer.toml: Object contains unknown field `min_sprad_bps` - at "
                              "`$.strategies.cross_exchange`; did you mean 'min_spread_bps'?")


@pytest.mark.parametrize(("where", "typo", "meant"), [
    ((), "modee", "mode"),
    (("risk",), "max_concurent", "max_concurrent"),
    (("venues", 1), "taker_fe", "taker_fee"),
    (("venues", 0, "feed"), "depth_level", "depth_levels"),
    (("sim", "venues", 2), "rest_prot", "rest_port"),
    (("services", "detector"), "cpus", "cpu"),
])
def test_the_hint_follows_the_path_through_tables_and_arrays(where: tuple[Any, ...], typo: str, meant: str) -> None:
    data = default_data()
    table = data
    for step in where:
        table = table[step] if isinstance(step, int) else table.setdefault(step, {})
    table[typo] = 1
    path = "$" + "".join(f"[{s}]" if isinstance(s, int) else f".{s}" for s in where)
    at = f" - at `{path}`" if where else ""  # msgspec names no path for a top-level key
    assert error_of(data).endswith(f"unknown field `{typo}`{at}; did you mean '{meant}'?")


def test_no_hint_when_nothing_is_close_and_other_errors_are_unchanged() -> None:
    data = default_data()
    data["strategies"]["cross_exchange"]["banana"] = 1
    assert error_of(data).endswith("unknown field `banana` - at `$.strategies.cross_exchange`")
    data = default_data()
    data["risk"]["max_concurrent"] = "three"
    assert "did you mean" not in error_of(data)


def test_config_check_prints_the_hint(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "typo.toml"
    data = default_data()
    data["strategies"]["triangular"]["min_profit_bp"] = 2.0
    path.write_bytes(msgspec.toml.encode(data))
    assert main(["config", "check", str(path)]) == 1
    assert "`$.strategies.triangular`; did you mean 'min_profit_bps'?" in capsys.readouterr().err


def test_a_runtime_strategy_change_with_a_typo_gets_the_hint() -> None:
    cfg = load_config(default_config_path())
    params = StrategyParams(cfg.strategies, cfg.capital)
    with pytest.raises(ConfigError) as err:
        params.update("cross_exchange", params={"min_sprad_bps": 1.0})
    assert str(err.value) == ("strategies.cross_exchange: unknown parameter(s) ['min_sprad_bps']; "
                              "did you mean 'min_spread_bps'?")
