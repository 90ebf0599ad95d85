"""The strategies' settings at runtime: validated like the config, packed into the kernels' parameter arrays.

The arrays are updated in place, so a change (control command or config reload) takes effect on the next
evaluation without recompiling or restarting anything. A change is validated as a whole before any of it
applies: a bad value leaves every setting as it was and names the key.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec
import numpy as np

from services.detector import cross, funding, triangular
from shared.config import Capital, CrossExchange, FundingRate, Strategies, Triangular, check_finite
from shared.config_hints import suggestion
from shared.errors import ConfigError

STRATEGIES = ("cross_exchange", "triangular", "funding_rate")
# Settings that change which cycles exist: applying them rebuilds the cycle table.
STRUCTURAL = frozenset({"cycles", "discover"})

Settings = CrossExchange | Triangular | FundingRate


class StrategyParams:
    def __init__(self, strategies: Strategies, capital: Capital) -> None:
        self.cross = np.zeros(cross.P_COUNT, dtype=np.float64)
        self.triangular = np.zeros(triangular.P_COUNT, dtype=np.float64)
        self.funding = np.zeros(funding.P_COUNT, dtype=np.float64)
        self.capital_usd = capital.total_usd
        self.settings: dict[str, Settings] = {}
        self.apply(strategies, capital)

    def enabled(self, name: str) -> bool:
        return bool(self.settings[name].enabled)

    def apply(self, strategies: Strategies, capital: Capital) -> None:
        self.capital_usd = capital.total_usd
        self.settings = {
            "cross_exchange": strategies.cross_exchange,
            "triangular": strategies.triangular,
            "funding_rate": strategies.funding_rate,
        }
        self._pack()

    def update(
        self,
        name: str,
        enabled: bool | None = None,
        params: dict[str, Any] | None = None,
        check: Callable[[str, Settings], None] | None = None,
    ) -> bool:
        """Change one strategy; returns True when the change is structural (cycles must be rebuilt).

        The change is validated whole by the config's own rules (types, bounds, finiteness, and ``check`` for
        the rules that need the rest of the config) before any of it applies; errors name the key as the
        config's do (``$.strategies.cross_exchange.min_spread_bps``)."""
        if not isinstance(name, str) or name not in self.settings:
            raise ConfigError(f"unknown strategy {name!r}; known: {', '.join(STRATEGIES)}")
        current = self.settings[name]
        merged = msgspec.to_builtins(current)
        changes = dict(params or {})
        if enabled is not None:
            changes["enabled"] = enabled
        not_text = [k for k in changes if not isinstance(k, str)]
        if not_text:
            raise ConfigError(f"strategies.{name}: parameter names must be text, got {not_text!r}")
        unknown = sorted(set(changes) - set(merged))
        if unknown:
            hint = suggestion(unknown[0], merged) if len(unknown) == 1 else ""
            raise ConfigError(f"strategies.{name}: unknown parameter(s) {unknown}{hint}")
        path = f"$.strategies.{name}"
        check_finite(changes, path)
        merged.update(changes)
        try:
            new = msgspec.convert(merged, type=type(current))
        except msgspec.ValidationError as exc:
            msg = str(exc)
            raise ConfigError(msg.replace("`$", f"`{path}", 1) if "`$" in msg else f"{path}: {msg}") from None
        if check is not None:
            check(name, new)
        self.settings[name] = new
        self._pack()
        return bool(STRUCTURAL & set(changes))

    def describe(self) -> dict[str, dict[str, Any]]:
        return {
            name: {"enabled": s.enabled, "params": {k: v for k, v in msgspec.to_builtins(s).items() if k != "enabled"}}
            for name, s in self.settings.items()
        }

    def _pack(self) -> None:
        c = self.settings["cross_exchange"]
        assert isinstance(c, CrossExchange)
        p = self.cross
        p[cross.P_MIN_SPREAD_BPS] = c.min_spread_bps
        p[cross.P_MIN_PROFIT_USD] = c.min_profit_usd
        p[cross.P_MAX_POSITION_USD] = c.max_position_usd
        p[cross.P_CAPITAL_USD] = self.capital_usd * c.capital_allocation
        p[cross.P_MAX_AGE_NS] = c.max_price_age_ms * 1e6

        t = self.settings["triangular"]
        assert isinstance(t, Triangular)
        p = self.triangular
        p[triangular.P_MIN_PROFIT_BPS] = t.min_profit_bps
        p[triangular.P_MIN_PROFIT_USD] = t.min_profit_usd
        p[triangular.P_MAX_POSITION_USD] = t.max_position_usd
        p[triangular.P_CAPITAL_USD] = self.capital_usd * t.capital_allocation
        p[triangular.P_MAX_AGE_NS] = t.max_price_age_ms * 1e6

        f = self.settings["funding_rate"]
        assert isinstance(f, FundingRate)
        p = self.funding
        p[funding.P_MIN_ANNUAL] = f.min_funding_rate
        p[funding.P_HEDGE] = 1.0 if f.hedge_enabled else 0.0
        p[funding.P_CHECK_NS] = f.check_interval_sec * 1e9
        p[funding.P_HORIZON_H] = f.horizon_hours
        p[funding.P_PERIOD_H] = f.funding_period_hours
        p[funding.P_CAP_USD] = min(f.max_position_usd, self.capital_usd * f.capital_allocation)
        p[funding.P_MAX_AGE_NS] = f.max_price_age_ms * 1e6
        p[funding.P_MIN_PROFIT_USD] = f.min_profit_usd
