"""VenueClient start-up fails clearly, never hangs: an unreadable venue answer stops after a few tries, an
unreachable venue after the start deadline; each error names the venue, the endpoint and what was wrong."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import msgspec
import pytest
from aiohttp import web

from services.executor.venue_client import START_UNREADABLE_TRIES, VenueClient
from shared.errors import ProtocolError
from shared.registry import Registry
from tests.conftest import free_port
from tests.http_kit import start_server
from tests.sim_kit import CREDS, DEADLINE_S, sim_config


@pytest.fixture(autouse=True)
def credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for venue, (key, secret) in CREDS.items():
        monkeypatch.setenv(f"DRAIZER_{venue.upper()}_API_KEY", key)
        monkeypatch.setenv(f"DRAIZER_{venue.upper()}_API_SECRET", secret)


def client_for(tmp_path: Path, name: str, rest_url: str, start_deadline_s: float = 120.0) -> VenueClient:
    cfg = sim_config(tmp_path)
    venue = msgspec.structs.replace(next(v for v in cfg.venues if v.name == name), rest_url=rest_url)
    return VenueClient(venue, Registry(cfg), 2.0, start_deadline_s=start_deadline_s)


@pytest.mark.parametrize(("name", "field"), [("binance", "`symbols`"), ("mexc", "`quotePrecision`")])
async def test_an_exchange_info_without_a_needed_field_stops_start_up(tmp_path: Path, name: str, field: str) -> None:
    hits: list[str] = []

    async def venue(request: web.Request) -> web.Response:
        hits.append(request.path)
        if request.path == "/api/v3/time":
            return web.json_response({"serverTime": time.time_ns() // 1_000_000})
        if request.path == "/api/v3/exchangeInfo":  # Binance without symbols; MEXC's symbol without its precision
            return web.json_response({"timezone": "UTC"} if name == "binance" else
                                     {"symbols": [{"symbol": "BTCUSDT", "baseAssetPrecision": 5}]})
        return web.json_response({"code": -1, "msg": "not here"}, status=404)

    runner, port = await start_server(venue)
    c = client_for(tmp_path, name, f"http://127.0.0.1:{port}")
    try:
        with pytest.raises(ProtocolError) as err:
            await asyncio.wait_for(c.start(), DEADLINE_S)
        text = str(err.value)
        assert text.startswith(f"{name}: start-up stopped after {START_UNREADABLE_TRIES} unreadable answers")
        assert f"GET http://127.0.0.1:{port}/api/v3/exchangeInfo" in text and field in text
        assert hits.count("/api/v3/exchangeInfo") == START_UNREADABLE_TRIES and not c.started
    finally:
        await c.close()
        await runner.cleanup()


async def test_an_unreachable_venue_stops_start_up_at_the_deadline(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    c = client_for(tmp_path, "binance", url, start_deadline_s=0.5)
    t0 = time.monotonic()
    try:
        with pytest.raises(ConnectionError) as err:
            await asyncio.wait_for(c.start(), DEADLINE_S)
        assert time.monotonic() - t0 < DEADLINE_S / 2
        text = str(err.value)
        assert text.startswith("binance: venue not ready after 0.5s") and url in text
    finally:
        await c.close()
