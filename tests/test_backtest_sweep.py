"""Sweeps: ``--set`` options into a grid, validated against the config before anything runs, each point in a
process of its own, the table sorted by net PnL with a failing point reported in its row."""

from __future__ import annotations

import io
import os
from typing import Any

import msgspec
import pytest

from services.backtest.sweep import apply, grid, parse_set, parse_sets, run_sweep, validate
from shared.config import default_config_path
from shared.errors import ConfigError

SPREAD = "strategies.cross_exchange.min_spread_bps"
NET_BY_SPREAD = {5: 1.0, 10: 3.0, 15: -2.0}


def base() -> dict[str, Any]:
    return msgspec.toml.decode(default_config_path().read_bytes())


def run_point(config: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """The sweep's trivial run: module-level (it is pickled by name into the workers)."""
    spread = params[SPREAD]
    assert config["strategies"]["cross_exchange"]["min_spread_bps"] == spread  # the point's config, applied
    if spread == 20:
        raise RuntimeError("boom at 20")
    return {"opportunities": spread, "executions": 2, "fill_ratio": 0.5, "gross_usd": NET_BY_SPREAD[spread] + 0.5,
            "fees_usd": 0.5, "net_usd": NET_BY_SPREAD[spread], "max_drawdown_usd": 0.25,
            "digest": f"{spread:02d}" * 32, "pid": os.getpid(), "fee": config["venues"][0]["taker_fee"]}


def test_values_are_toml_scalars_and_the_grid_is_the_product_first_option_slowest() -> None:
    axes = parse_sets([f"{SPREAD}=5,10.5", "execution.order_type=market,\"limit_ioc\"",
                       "strategies.triangular.enabled=true,false"])
    assert axes == [(SPREAD, [5, 10.5]), ("execution.order_type", ["market", "limit_ioc"]),
                    ("strategies.triangular.enabled", [True, False])]
    assert [type(v) for v in axes[0][1]] == [int, float] and type(axes[2][1][0]) is bool
    points = grid(axes)
    assert len(points) == 8
    assert points[:3] == [
        {SPREAD: 5, "execution.order_type": "market", "strategies.triangular.enabled": True},
        {SPREAD: 5, "execution.order_type": "market", "strategies.triangular.enabled": False},
        {SPREAD: 5, "execution.order_type": "limit_ioc", "strategies.triangular.enabled": True},
    ]
    assert points[-1] == {SPREAD: 10.5, "execution.order_type": "limit_ioc", "strategies.triangular.enabled": False}
    assert parse_set("sinks.redis_channel_prefix='a,b', c") == ("sinks.redis_channel_prefix", ["a,b", "c"])
    assert parse_set("x.y=-3, 1e2") == ("x.y", [-3, 100.0])
    assert grid([]) == [{}]


@pytest.mark.parametrize(("option", "message"), [
    ("min_spread_bps", "expected key=value"),
    (f"{SPREAD}=", "no values"),
    (f"{SPREAD}=5,,10", "an empty value"),
    (f"{SPREAD}=[5, 10]", "is not a TOML value"),  # split at the comma: neither half is one
    (f"{SPREAD}=1979-05-27", "a sweep takes numbers, booleans and strings"),
])
def test_malformed_options_fail_naming_the_option(option: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_set(option)


def test_the_same_key_twice_is_refused() -> None:
    with pytest.raises(ConfigError, match=f"--set {SPREAD}: given more than once"):
        parse_sets([f"{SPREAD}=5", f"{SPREAD}=10"])


@pytest.mark.parametrize(("option", "named"), [
    ("strategies.cross_exchange.min_sprd_bps=5", "min_sprd_bps"),  # no such key
    (f"{SPREAD}=5,-1", "strategies.cross_exchange.min_spread_bps"),  # out of range: the second value
    ("risk.max_concurrent=2,many", "risk.max_concurrent"),  # a string where an int belongs
    (f"{SPREAD}=5,inf", "strategies.cross_exchange.min_spread_bps"),  # not finite
    ("venues.kraken.taker_fee=0.001", "no entry named 'kraken'"),
    ("mode.fast=1", "mode is a value, not a table"),
])
def test_a_bad_key_or_value_fails_naming_it_before_any_run(option: str, named: str) -> None:
    with pytest.raises(ConfigError, match=named) as err:
        run_sweep(base(), [option], run_point)  # validation comes first: no pool is started
    assert "--set" in str(err.value)


def test_a_point_whose_combination_breaks_a_cross_field_rule_is_named() -> None:
    # Each alone is fine (diff depth takes 15 levels; partial depth the default 10); together they are not.
    axes = parse_sets(["venues.binance.feed.depth=diff,partial", "venues.binance.feed.depth_levels=10,15"])
    with pytest.raises(ConfigError, match=r"sweep point venues.binance.feed.depth=partial, "
                                          r"venues.binance.feed.depth_levels=15: .*depth_levels"):
        validate(base(), axes)
    assert len(validate(base(), axes[:1])) == 2


def test_apply_sets_nested_keys_and_list_elements_by_name_or_index_on_a_copy() -> None:
    cfg = base()
    out = apply(cfg, {"venues.mexc.taker_fee": 0.002, "venues.0.maker_fee": 0.0005, "paper.balances.USDT": "5"})
    assert out["venues"][1]["name"] == "mexc" and out["venues"][1]["taker_fee"] == 0.002
    assert out["venues"][0]["maker_fee"] == 0.0005 and out["paper"]["balances"] == {"USDT": "5"}
    assert cfg == base()  # the base is untouched


def test_a_sweep_runs_each_point_in_its_own_process_and_sorts_by_net() -> None:
    out = io.StringIO()
    rows = run_sweep(base(), [f"{SPREAD}=5,10,15,20", "venues.binance.taker_fee=0.0009"], run_point, out=out)
    assert [r.params[SPREAD] for r in rows] == [10, 5, 15, 20]  # net 3, 1, -2, then the failed point
    assert [r.net_usd for r in rows] == [3.0, 1.0, -2.0, None]
    ok, failed = rows[:3], rows[3]
    pids = [r.pid for r in ok]
    assert os.getpid() not in pids and len(set(pids)) == 3  # a fresh process per point
    assert all(r.summary["pid"] == r.pid for r in ok) and all(r.summary["fee"] == 0.0009 for r in ok)
    assert "RuntimeError: boom at 20" in failed.error and failed.summary == {}
    lines = out.getvalue().splitlines()
    assert lines[0].split() == ["#", SPREAD, "venues.binance.taker_fee", "opps", "execs", "fill", "gross_usd",
                                "fees_usd", "net_usd", "max_dd_usd", "digest"]
    assert lines[1].split() == ["1", "10", "0.0009", "10", "2", "0.500", "3.5000", "0.5000", "3.0000", "0.2500",
                                "101010101010"]
    assert [line.split()[0] for line in lines[1:]] == ["1", "0", "2", "3"]
    assert lines[4].split()[3:10] == ["-"] * 7 and "error: RuntimeError: boom at 20" in lines[4]


def test_a_run_function_that_cannot_be_pickled_is_refused_before_any_run() -> None:
    with pytest.raises(ValueError, match="module-level function"):
        run_sweep(base(), [f"{SPREAD}=5"], lambda config, params: {})
