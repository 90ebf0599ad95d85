"""Where every socket lives. Location is configuration, not code.

Defaults are ``ipc://`` files in the private run directory; ``[services.<name>]`` may override the control
and events endpoints with templates using ``{run_dir}`` and ``{service}`` (e.g. ``tcp://0.0.0.0:7001``).
"""

from __future__ import annotations

from pathlib import Path

from shared.config import Config, ServiceSettings


def feed_service_name(venue: str) -> str:
    return f"feed.{venue}"


def service_kind(service: str) -> str:
    """``feed.binance`` -> ``feed``; settings and CPU pinning are per kind."""
    return service.split(".", 1)[0]


class Endpoints:
    def __init__(self, cfg: Config, run_dir: Path) -> None:
        self.cfg = cfg
        self.run_dir = run_dir
        self._ipc = f"ipc://{run_dir}"

    def _settings(self, service: str) -> ServiceSettings:
        return getattr(self.cfg.services, service_kind(service))

    def _expand(self, template: str, service: str) -> str:
        return template.format(run_dir=self.run_dir, service=service)

    def control(self, service: str) -> str:
        custom = self._settings(service).control
        return self._expand(custom, service) if custom else f"{self._ipc}/{service}.ctl"

    def events(self, service: str) -> str:
        custom = self._settings(service).events
        return self._expand(custom, service) if custom else f"{self._ipc}/{service}.events"

    def market_data(self, venue: str) -> str:
        return f"{self._ipc}/md.{venue}"

    @property
    def opportunities(self) -> str:
        return f"{self._ipc}/risk.opps"

    @property
    def intents(self) -> str:
        return f"{self._ipc}/executor.intents"

    def all_services(self) -> list[str]:
        """Every service that publishes events, in pipeline order."""
        feeds = [feed_service_name(v.name) for v in self.cfg.venues]
        return [*feeds, "detector", "risk", "executor"]
