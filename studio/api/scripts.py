"""Script renders over HTTP: ``/v1/scripts`` (start, progress, audio, subtitles, one-line edits, cancel).

A render runs in a background thread of the server, but each of its lines is one job of the server's inference
queue, so ``/tts`` and ``/v1/audio/speech`` requests wait at most one line, never a whole script. Renders live
in ``<workspace>/scripts/<id>/`` (the same folder layout as ``studio render --out``) and can be read after a
restart. Every route needs the API key when the server has one; starting, editing, cancelling and deleting
need the key that state-changing routes need. Errors have OpenAI's shape, as everywhere under ``/v1``.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import threading
import time
import uuid
from pathlib import Path

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, JSONResponse, Response
from pydantic import BaseModel, Field

from studio.api.api_v2 import authorize, authorize_change, get_engine
from studio.api.engine import ApiEngine
from studio.api.queue import QueueFullError
from studio.api.security import ApiError
from studio.errors import StudioError

MAX_SCRIPT_CHARS = 200_000
_ID = re.compile(r"[0-9a-f]{12}")
_ERROR = {"content": {"application/json": {"example": {"error": {"message": "...", "type": "invalid_request_error"}}}}}
router = APIRouter(
    prefix="/v1/scripts",
    tags=["Scripts"],
    dependencies=[Depends(authorize)],
    responses={400: _ERROR, 401: _ERROR, 404: _ERROR, 409: _ERROR},
)
_CHANGES = [Depends(authorize_change)]


class ScriptSettings(BaseModel):
    """How to render (see ``RenderSettings``); unset fields keep the defaults."""

    lang: str = "auto"
    retries: int = Field(2, ge=0, le=10)
    seed: int = Field(-1, ge=-1, le=2**32 - 1)
    check: bool = True
    max_cer: float | None = Field(None, ge=0, le=10)
    min_similarity: float | None = Field(None, ge=-1, le=1)
    pauses: str = "natural"
    speed: float = Field(1.0, ge=0.25, le=4.0)
    max_sentence_s: float = Field(60.0, ge=0.2, le=60.0)


class ScriptBody(BaseModel):
    """A script to render: its text, its format, who speaks whom, and how."""

    script: str = Field(..., min_length=1, max_length=MAX_SCRIPT_CHARS, description="The script's text.")
    format: str = Field("auto", description="script, txt, md, srt, vtt, or auto (NAME: lines → script, else txt).")
    name: str = Field("script", max_length=80, description="Names the joined WAV and SRT.")
    cast: dict[str, str] = Field(
        ..., description='Speaker → "voice" or "voice,style"; the key "*" casts every speaker not named.'
    )
    settings: ScriptSettings = ScriptSettings()


class LineEdit(BaseModel):
    """A new text and/or the line's own settings (voice, style, speed, seed, lang); the line alone is rendered."""

    text: str | None = Field(None, max_length=5000)
    settings: dict | None = None


class ScriptJobs:
    """The renders this server knows: each a :class:`ScriptRenderer` with its thread and cancel switch."""

    def __init__(self, engine: ApiEngine, loop: asyncio.AbstractEventLoop) -> None:
        from studio.services.studio import Studio
        from studio.settings import StudioSettings

        self.engine, self.loop = engine, loop
        self.root = Path(engine.settings.workspace) / "scripts"
        studio = Studio(StudioSettings(workspace=engine.settings.workspace, pretrained=engine.settings.pretrained))
        self.checker, self.lexicon = studio.takes.checker, engine.pronunciations.lexicon
        self.renderers: dict[str, object] = {}
        self.cancels: dict[str, threading.Event] = {}
        self.threads: dict[str, threading.Thread] = {}
        self._lock = threading.Lock()

    def services(self) -> dict:
        return {
            "synthesis": self.engine.service,
            "voices": self.engine.library,
            "checker": self.checker,
            "lexicon": self.lexicon,
            "run": self.run_in_queue,
        }

    def run_in_queue(self, work):
        """Run one line's work as a job of the inference queue (called from a render thread)."""

        async def queued():
            def items():
                yield work()

            while True:
                try:
                    job = self.engine.queue.submit(items)
                    break
                except QueueFullError:
                    await asyncio.sleep(0.5)  # the queue is full of /tts requests: they go first
            return await job.next()

        return asyncio.run_coroutine_threadsafe(queued(), self.loop).result()

    def renderer(self, script_id: str):
        from studio.services.scripts.render import ScriptRenderer

        if not _ID.fullmatch(script_id):
            raise ApiError(404, f"There is no script render {script_id!r}.")
        with self._lock:
            if script_id not in self.renderers:
                folder = self.root / script_id
                if not (folder / "project.json").is_file():
                    raise ApiError(404, f"There is no script render {script_id!r}.")
                self.renderers[script_id] = ScriptRenderer.open(folder, **self.services())
            return self.renderers[script_id]

    def start(self, body: ScriptBody) -> str:
        from studio.services.scripts import parse_script
        from studio.services.scripts.render import ScriptRenderer
        from studio.services.scripts.state import parse_cast

        settings = _render_settings(body.settings, self.engine)
        script = parse_script(body.script, body.format, name=body.name.strip() or "script")
        cast = parse_cast(f"{k}={v}" if k != "*" else v for k, v in body.cast.items())
        script_id = uuid.uuid4().hex[:12]
        renderer = ScriptRenderer.create(self.root / script_id, script, cast, settings, **self.services())
        with self._lock:
            self.renderers[script_id] = renderer
        self.launch(script_id, lambda cancel: renderer.render(cancel=cancel))
        return script_id

    def launch(self, script_id: str, work) -> None:
        """Run ``work(cancel)`` in the render's own thread (one at a time per render)."""
        with self._lock:
            running = self.threads.get(script_id)
            if running is not None and running.is_alive():
                raise ApiError(409, "This script is still rendering; wait for it or cancel it first.")
            cancel = self.cancels[script_id] = threading.Event()
            renderer = self.renderers[script_id]
            renderer.state = "rendering"

            def target():
                try:
                    work(cancel)
                    if renderer.state == "rendering":
                        renderer.state = "done"
                except Exception as exc:  # kept for GET; the server goes on
                    renderer.state, renderer.error = "failed", str(exc)

            thread = self.threads[script_id] = threading.Thread(target=target, name=f"script-{script_id}", daemon=True)
        thread.start()

    def cancel(self, script_id: str, wait_s: float = 0.0) -> None:
        self.renderer(script_id)
        event, thread = self.cancels.get(script_id), self.threads.get(script_id)
        if event is not None:
            event.set()
        if thread is not None and wait_s:
            thread.join(wait_s)


def _render_settings(body: ScriptSettings, engine: ApiEngine):
    from studio.services.scripts.state import RenderSettings

    limits = {k: v for k, v in (("max_cer", body.max_cer), ("min_similarity", body.min_similarity)) if v is not None}
    cap_s = engine.settings.max_tokens_per_sentence / 25  # the server's own cap on a sentence's length
    return RenderSettings(
        lang=body.lang,
        retries=body.retries,
        seed=body.seed,
        check=body.check,
        pauses=body.pauses,
        speed=body.speed,
        max_sentence_s=max(0.2, min(body.max_sentence_s, cap_s)),
        **limits,
    ).validated()


async def get_jobs(request: Request) -> ScriptJobs:
    jobs = getattr(request.app.state, "scripts", None)
    if jobs is None:
        jobs = request.app.state.scripts = ScriptJobs(get_engine(request), asyncio.get_running_loop())
    return jobs


def _status(script_id: str, renderer) -> dict:
    data = renderer.status().to_dict()
    base = f"/v1/scripts/{script_id}"
    ready = data.pop("audio") is not None and data.pop("subtitles") is not None
    lines = [{k: v for k, v in line.items() if k not in ("file",)} for line in data.pop("lines")]
    for line in lines:
        line["audio_url"] = (
            f"{base}/lines/{line['index']}/audio" if line["status"] in ("ok", "warn", "unchecked") else None
        )
        for attempt in line["tries"]:
            attempt.pop("file", None)
    urls = {"audio_url": f"{base}/audio", "subtitles_url": f"{base}/subtitles"} if ready else {}
    return {"id": script_id, "object": "script.render", **data, **urls, "lines": lines}


@router.post("", status_code=202, dependencies=_CHANGES)
async def start_render(body: ScriptBody, jobs: ScriptJobs = Depends(get_jobs)) -> JSONResponse:
    """Start rendering a script in the background; poll ``GET /v1/scripts/{id}`` for progress."""
    script_id = await run_in_threadpool(jobs.start, body)
    return JSONResponse(_status(script_id, jobs.renderer(script_id)), status_code=202)


@router.get("/{script_id}")
async def render_status(script_id: str, jobs: ScriptJobs = Depends(get_jobs)) -> dict:
    """Progress (done/total, ETA), every line's status (✓/⚠ and why), and the result's URLs once joined."""
    return _status(script_id, jobs.renderer(script_id))


@router.get("/{script_id}/audio", response_class=FileResponse)
async def render_audio(script_id: str, jobs: ScriptJobs = Depends(get_jobs)) -> Response:
    """The joined recording (32 kHz WAV), once every line is rendered."""
    status = jobs.renderer(script_id).status()
    if status.audio is None:
        raise ApiError(409, f"The script is not rendered yet ({status.done} of {status.total} lines).")
    return FileResponse(status.audio, media_type="audio/wav", filename=Path(status.audio).name)


@router.get("/{script_id}/subtitles")
async def render_subtitles(script_id: str, format: str = "srt", jobs: ScriptJobs = Depends(get_jobs)) -> Response:
    """Line-level subtitles of the joined recording: ``format=srt`` (default) or ``vtt``."""
    renderer = jobs.renderer(script_id)
    if format not in ("srt", "vtt"):
        raise ApiError(400, "format must be srt or vtt.", param="format")
    if renderer.status().audio is None:
        raise ApiError(409, "The script is not rendered yet; subtitles come with the joined audio.")
    media = "application/x-subrip" if format == "srt" else "text/vtt"
    return Response(renderer.subtitles(format), media_type=f"{media}; charset=utf-8")


@router.get("/{script_id}/lines/{index}/audio", response_class=FileResponse)
async def line_audio(script_id: str, index: int, take: int | None = None, jobs: ScriptJobs = Depends(get_jobs)):
    """One line's kept take (or its try ``take``, 0-based, to compare takes)."""
    renderer = jobs.renderer(script_id)
    try:
        path = renderer.line_audio(index) if take is None else renderer.take_audio(index, take)
    except StudioError as exc:
        raise ApiError(404, str(exc)) from exc
    return FileResponse(path, media_type="audio/wav")


@router.post("/{script_id}/lines/{index}", status_code=202, dependencies=_CHANGES)
async def edit_line(script_id: str, index: int, body: LineEdit, jobs: ScriptJobs = Depends(get_jobs)):
    """Change one line's text and/or settings and render that line alone (then join again)."""
    renderer = jobs.renderer(script_id)
    renderer._report(index)  # 400 for a line that does not exist, before anything starts
    jobs.launch(script_id, lambda _cancel: renderer.rerender_line(index, body.text, body.settings))
    return JSONResponse(_status(script_id, renderer), status_code=202)


@router.post("/{script_id}/resume", status_code=202, dependencies=_CHANGES)
async def resume_render(script_id: str, jobs: ScriptJobs = Depends(get_jobs)) -> JSONResponse:
    """Go on with a cancelled or interrupted render (e.g. after a restart): only unfinished lines are rendered."""
    renderer = jobs.renderer(script_id)
    jobs.launch(script_id, lambda cancel: renderer.render(cancel=cancel))
    return JSONResponse(_status(script_id, renderer), status_code=202)


@router.post("/{script_id}/cancel", status_code=202, dependencies=_CHANGES)
async def cancel_render(script_id: str, jobs: ScriptJobs = Depends(get_jobs)) -> JSONResponse:
    """Stop after the current line; finished lines stay (a later edit or render goes on from them)."""
    jobs.cancel(script_id)
    return JSONResponse(_status(script_id, jobs.renderer(script_id)), status_code=202)


@router.delete("/{script_id}", dependencies=_CHANGES)
async def delete_render(script_id: str, jobs: ScriptJobs = Depends(get_jobs)) -> dict:
    """Cancel the render and delete its folder."""
    jobs.cancel(script_id)
    thread = jobs.threads.get(script_id)
    deadline = time.monotonic() + 60
    while thread is not None and thread.is_alive() and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    with jobs._lock:
        renderer = jobs.renderers.pop(script_id)
    await run_in_threadpool(shutil.rmtree, renderer.folder, True)
    return {"id": script_id, "object": "script.render", "deleted": True}
