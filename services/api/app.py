"""The v2 HTTP API (FastAPI): reads come from the bridge's shared memory only, commands go to the services'
control sockets. OpenAPI at /openapi.json, interactive docs at /docs (and /redoc); the live web monitor at /.

Reads return the same JSON ``draizer status --json`` prints (``snapshot_json``), plus ``seq``, the snapshot's
sequence number: two answers with the same ``seq`` describe the same snapshot. Writes need
``Authorization: Bearer <token>`` (see ``auth.py``).

The monitor at `/` is a page with its own script and style (``static/``); `/api/v2/stream` pushes its data as
server-sent events, one frame every half second (`/api/v2/monitor` is the same frame once). Every asset of `/`,
`/docs` and `/redoc` is served from this package: the pages work without a network.
"""

# No `from __future__ import annotations` here: FastAPI reads the endpoint annotations at runtime, and
# `Depends(writer)` names a closure it could not resolve from a string.
import logging
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec
from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline

from services.api.auth import TokenCheck, bearer
from services.api.monitor import Monitor
from services.api.sources import Controls, Refused, ShmSource, ShmView, Unavailable

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
DOCS_ASSETS = "/docs-assets"  # Swagger UI and ReDoc, as the fastapi-offline package ships them
# The monitor's page may load nothing from anywhere but this server, whatever a field it shows contains.
MONITOR_CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
               "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")

_encoder = msgspec.json.Encoder()

_ERRORS: dict[int | str, dict[str, Any]] = {
    503: {"description": "no shared memory yet, or the service is not answering"},
}
_WRITE_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "the service refused the command (its error text is in `detail`)"},
    401: {"description": "no bearer token"},
    403: {"description": "wrong token"},
    503: {"description": "writes disabled (the token variable is unset), or the service is not answering"},
}


class JSONBody(Response):
    """JSON via msgspec: the snapshot is already plain data, so pydantic's encoder would only cost time."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return _encoder.encode(content)


def create_app(
    source: ShmSource, controls: Controls, auth: TokenCheck, instance: str, monitor: Monitor | None = None
) -> FastAPI:
    monitor = monitor or Monitor(source, None, instance, "")
    # FastAPIOffline: FastAPI whose /docs and /redoc load Swagger UI and ReDoc from files in that package (no CDN).
    app = FastAPIOffline(
        title="draizer",
        version="2",
        summary="Live state of a draizer engine, and its commands.",
        description=__doc__,
        openapi_url="/openapi.json",
        docs_url="/docs",
        redoc_url="/redoc",
        static_url=DOCS_ASSETS,
        swagger_ui_parameters={"validatorUrl": None},  # no badge fetched from the validator's site
        default_response_class=JSONBody,
    )
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.exception_handler(Unavailable)
    async def _unavailable(_request: Request, exc: Unavailable) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=503)

    @app.exception_handler(Refused)
    async def _refused(_request: Request, exc: Refused) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=400)

    def writer(request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> str:
        auth(request, credentials)
        return request.client.host if request.client else "?"

    def command(who: str, what: str, service: str, cmd: str, args: dict[str, Any] | None = None) -> dict[str, Any]:
        try:
            data = controls.ask(service, cmd, args)
        except (Unavailable, Refused) as exc:
            log.warning("%s from %s failed: %s", what, who, exc)
            raise
        log.info("%s from %s: done (%s)", what, who, data)
        return data

    def view(v: ShmView, **body: Any) -> dict[str, Any]:
        return {"seq": v.seq, "instance": instance, **body}

    # ----- reads: shared memory only
    @app.get("/api/v2/status", tags=["read"], responses=_ERRORS)
    async def status() -> JSONBody:
        """Everything `draizer status --json` shows: counters, rejections by reason, PnL, latency percentiles,
        service health, the last opportunities, prices, books, funding rates, and carries (`carry`)."""
        v = source.read()
        return JSONBody(view(v, writer_pid=v.writer_pid, writer_alive=v.writer_alive, **v.data))

    @app.get("/api/v2/opportunities", tags=["read"], responses=_ERRORS)
    async def opportunities(
        limit: Annotated[int, Query(ge=1, le=1000, description="at most this many, newest first")] = 50,
        strategy: Annotated[str | None, Query(description="only this strategy (cross_exchange, ...)")] = None,
        symbol: Annotated[str | None, Query(description="only this symbol")] = None,
    ) -> JSONBody:
        """The latest opportunities the bridge keeps (a ring in shared memory), newest first, each with its legs
        and the risk decision (`approved`, `pending` or the rejection reason)."""
        v = source.read()
        found = [
            r for r in reversed(v.data["recent"])
            if (strategy is None or r["strategy"] == strategy) and (symbol is None or r["symbol"] == symbol)
        ]
        d = v.data
        return JSONBody(view(
            v, total=d["opportunities"], approved=d["approved"], rejected=d["rejected"],
            rejections_by_reason=d["rejections_by_reason"], opportunities=found[:limit],
        ))

    @app.get("/api/v2/prices", tags=["read"], responses={**_ERRORS, 404: {"description": "symbol not quoted"}})
    async def prices(symbol: Annotated[str | None, Query(description="one symbol only")] = None) -> JSONBody:
        """Latest top of book per symbol and venue, and funding rates of the perpetual venues."""
        v = source.read()
        quoted, funding = v.data["prices"], v.data["funding"]
        if symbol is not None:
            if symbol not in quoted and symbol not in funding:
                raise HTTPException(404, f"no price for {symbol!r}")
            quoted = {symbol: quoted[symbol]} if symbol in quoted else {}
            funding = {symbol: funding[symbol]} if symbol in funding else {}
        return JSONBody(view(v, prices=quoted, funding=funding))

    @app.get("/api/v2/carries", tags=["read"], responses=_ERRORS)
    async def carries(
        state: Annotated[Literal["open", "closed"] | None, Query(description="only open or only closed")] = None,
        symbol: Annotated[str | None, Query(description="only this symbol")] = None,
    ) -> JSONBody:
        """Spot-perpetual carries of this run: every open one, then the latest closed ones shared memory holds
        (`open` and `closed` count them all), each with its exact quantities, basis, funding, fees and PnL; and
        the funding booked per perpetual venue (`amounts`: exact, per asset)."""
        v = source.read()
        c = v.data["carry"]
        found = [
            p for p in c["positions"]
            if (state is None or p["state"] == state) and (symbol is None or p["symbol"] == symbol)
        ]
        return JSONBody(view(
            v, open=c["open"], closed=c["closed"], funding_usd=c["funding_usd"],
            funding_by_venue=c["funding_by_venue"], carries=found,
        ))

    @app.get("/api/v2/strategies", tags=["read"], responses=_ERRORS)
    def strategies() -> JSONBody:
        """Each strategy with `enabled` and its current parameters, as the running detector has them."""
        return JSONBody(controls.ask("detector", "strategies"))

    # ----- the web monitor
    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"Content-Security-Policy": MONITOR_CSP,
                                                            "Cache-Control": "no-cache"})

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon() -> FileResponse:
        return FileResponse(STATIC / "favicon.svg", media_type="image/svg+xml")

    @app.get("/api/v2/monitor", tags=["monitor"])
    async def monitor_frame() -> Response:
        """One frame of the web monitor: shared memory's counts, latest opportunities, latency, feeds and
        funding, with the executions, PnL by strategy, risk state and rate budgets heard from the services'
        events since the API started (`tape`). `available` is false while there is no shared memory."""
        return Response(monitor.encoded(), media_type="application/json")

    @app.get("/api/v2/stream", tags=["monitor"], response_class=StreamingResponse,
             responses={200: {"content": {"text/event-stream": {}},
                              "description": "`event: frame`, `data:` the JSON of /api/v2/monitor"}})
    async def stream() -> StreamingResponse:
        """Server-sent events for the web monitor: a frame at once, then one every half second."""
        return StreamingResponse(monitor.stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    # ----- writes: bearer token, then the service's control socket
    @app.post("/api/v2/strategies/{name}/start", tags=["write"], responses=_WRITE_ERRORS)
    def start_strategy(name: str, who: Annotated[str, Depends(writer)]) -> JSONBody:
        """Enable a strategy in the running detector (no restart)."""
        data = command(who, f"start strategy {name}", "detector", "strategy", {"name": name, "enabled": True})
        return JSONBody({"ok": True, "strategy": name, "enabled": True, "detector": data})

    @app.post("/api/v2/strategies/{name}/stop", tags=["write"], responses=_WRITE_ERRORS)
    def stop_strategy(name: str, who: Annotated[str, Depends(writer)]) -> JSONBody:
        """Disable a strategy in the running detector: it finds no more opportunities of that kind."""
        data = command(who, f"stop strategy {name}", "detector", "strategy", {"name": name, "enabled": False})
        return JSONBody({"ok": True, "strategy": name, "enabled": False, "detector": data})

    @app.post("/api/v2/kill", tags=["write"], responses=_WRITE_ERRORS)
    def kill(who: Annotated[str, Depends(writer)]) -> JSONBody:
        """Engage risk's kill switch: every opportunity is refused (reason `kill_switch`) until resumed."""
        data = command(who, "kill switch", "risk", "kill")
        return JSONBody({"ok": True, "halted": bool(data.get("halted", True)), "risk": data})

    @app.post("/api/v2/resume", tags=["write"], responses=_WRITE_ERRORS)
    def resume(who: Annotated[str, Depends(writer)]) -> JSONBody:
        """Release the kill switch: risk decides on its rules again."""
        data = command(who, "resume", "risk", "resume")
        if monitor.tape is not None:
            monitor.tape.on_resumed()
        return JSONBody({"ok": True, "halted": bool(data.get("halted", False)), "risk": data})

    return app
