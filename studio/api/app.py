"""The FastAPI application: api_v2 routes, OpenAI routes, error shapes and the server lifecycle.

``create_app(settings)`` builds everything without loading a model; the models of the current voice load
when the app starts (its lifespan), so a bad file fails the start instead of the first request.
"""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from studio import __version__
from studio.api import api_v2, openai
from studio.api.config import ServerSettings
from studio.api.engine import ApiEngine
from studio.api.security import ApiError
from studio.errors import StudioError
from studio.services.synthesis import SynthesisService

_LOGGER = logging.getLogger(__name__)

_OPENAI_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    503: "server_busy",
}


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
        "`--allow-dir`. When the server has an API key, send `Authorization: Bearer <key>`.",
        lifespan=lifespan,
    )
    app.state.engine = engine
    app.state.control = ServerControl(engine)
    app.include_router(api_v2.router)
    app.include_router(openai.router)
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(StudioError, _studio_error)

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


def error_body(path: str, status: int, message: str, exception: str | None = None) -> dict:
    """OpenAI's ``{"error": {...}}`` under ``/v1``, api_v2's ``{"message": ...}`` everywhere else."""
    if path.startswith("/v1/") or path == "/v1":
        return {
            "error": {
                "message": message if exception is None else f"{message}: {exception}",
                "type": _OPENAI_ERROR_TYPES.get(status, "server_error"),
                "param": None,
                "code": "invalid_api_key" if status == 401 else None,
            }
        }
    body = {"message": message}
    if exception is not None:
        body["Exception"] = exception
    return body


async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
    if exc.status == 503:
        headers = {"Retry-After": "1"}
    return JSONResponse(
        error_body(request.url.path, exc.status, str(exc), exc.exception), status_code=exc.status, headers=headers
    )


async def _studio_error(request: Request, exc: StudioError) -> JSONResponse:
    return JSONResponse(error_body(request.url.path, 400, str(exc)), status_code=400)
