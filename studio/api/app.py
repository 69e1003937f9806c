"""The FastAPI application: api_v2 routes, OpenAI routes, error shapes and the server lifecycle.

``create_app(settings)`` builds everything without loading a model; the models of the current voice load
when the app starts (its lifespan), so a bad file fails the start instead of the first request.
"""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from studio import __version__
from studio.api import api_v2, openai, scripts
from studio.api.config import ServerSettings
from studio.api.engine import ApiEngine
from studio.api.middleware import BodyLimit, LocalGuard, error_body
from studio.api.security import ApiError
from studio.errors import StudioError
from studio.services.synthesis import SynthesisService

_LOGGER = logging.getLogger(__name__)


class ServerControl:
    """What ``/control`` may do to the running server; ``studio serve`` attaches its uvicorn server."""

    def __init__(self, engine: ApiEngine) -> None:
        self.engine = engine
        self.server = None  # a uvicorn.Server, when the app runs its own
        self.reexec_on_restart = False
        self.restart_requested = False

    @property
    def can_stop(self) -> bool:
        return self.server is not None

    def exit(self) -> None:
        """Graceful stop: uvicorn finishes the open responses, then the lifespan closes the queue."""
        if self.server is not None:
            _LOGGER.warning("exit requested over HTTP")
            self.server.should_exit = True

    async def restart(self) -> None:
        """Re-execute the process (``studio serve``) or, embedded, reload the models in place."""
        if self.server is not None and self.reexec_on_restart:
            self.restart_requested = True
            self.server.should_exit = True
        else:
            await self.engine.reload()


def create_app(settings: ServerSettings, *, service: SynthesisService | None = None) -> FastAPI:
    """The studio's HTTP API. ``service`` lets several apps (or the studio UI) share loaded models."""
    engine = ApiEngine(settings, service)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await run_in_threadpool(engine.start)
        try:
            yield
        finally:
            await run_in_threadpool(engine.close)

    app = FastAPI(
        title="SoVITS Studio API",
        version=__version__,
        description="GPT-SoVITS api_v2 compatible speech synthesis, plus OpenAI-compatible `/v1/audio/speech`. "
        "File paths in requests must lie inside the workspace, `pretrained/` or a folder allowed with "
        "`--allow-dir`. State-changing routes (`/set_*`, `/control`) need the API key (`Authorization: Bearer "
        "<key>` or `X-API-Key`); when the server was started with `--api-key`, every route does. Requests from "
        "web pages of other sites are refused.",
        lifespan=lifespan,
    )
    app.state.engine = engine
    app.state.control = ServerControl(engine)
    app.include_router(api_v2.router)
    app.include_router(openai.router)
    app.include_router(scripts.router)
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(StudioError, _studio_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    # add_middleware wraps: the guard runs first, then the body limit
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(LocalGuard, host=settings.host, allow_origins=settings.allow_origins)

    @app.get("/", tags=["server"])
    async def about() -> dict:
        """Which voice is loaded and where the documentation is."""
        return {
            "name": "SoVITS Studio",
            "version": __version__,
            "model_version": engine.version,
            "voice": engine.current.name,
            "docs": "/docs",
            "queue": {"waiting": engine.queue.waiting, "busy": engine.queue.busy, "limit": settings.queue_size},
        }

    return app


async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
    if exc.status == 503:
        headers = {"Retry-After": "1"}
    return JSONResponse(
        error_body(request.url.path, exc.status, str(exc), exc.exception, param=exc.param),
        status_code=exc.status,
        headers=headers,
    )


async def _studio_error(request: Request, exc: StudioError) -> JSONResponse:
    return JSONResponse(error_body(request.url.path, 400, str(exc)), status_code=400)


async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    """404, 405, 413 …: the route family's shape instead of FastAPI's ``{"detail": …}``."""
    message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    return JSONResponse(
        error_body(request.url.path, exc.status_code, message), status_code=exc.status_code, headers=exc.headers
    )


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    """A bad parameter: 400 naming it, in the route family's shape (OpenAI: ``param`` set), never a 422."""
    first = exc.errors()[0] if exc.errors() else {}
    where = [str(p) for p in first.get("loc", ()) if p not in ("body", "query")]
    param = ".".join(where) or None
    message = validation_message(first)
    if param:
        message = f"{param}: {message}"
    return JSONResponse(error_body(request.url.path, 400, message, param=param), status_code=400)


def validation_message(error: dict) -> str:
    """Pydantic's wording, with the limits spelled out ("must be at most 4096 characters")."""
    ctx = error.get("ctx") or {}
    kind = error.get("type", "")
    limits = {
        "string_too_long": lambda: f"must be at most {ctx.get('max_length')} characters",
        "string_too_short": lambda: f"must be at least {ctx.get('min_length')} character(s)",
        "less_than_equal": lambda: f"must be at most {ctx.get('le')}",
        "greater_than_equal": lambda: f"must be at least {ctx.get('ge')}",
        "less_than": lambda: f"must be less than {ctx.get('lt')}",
        "greater_than": lambda: f"must be greater than {ctx.get('gt')}",
        "missing": lambda: "is required",
    }
    if kind in limits:
        return limits[kind]()
    return str(error.get("msg", "is not valid"))
