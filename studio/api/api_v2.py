"""GPT-SoVITS ``api_v2`` compatible routes: ``/tts`` (GET and POST), ``/set_*`` and ``/control``.

Same parameters, defaults, media types, 400 messages and streaming wire format as upstream (SPEC §8), so
existing clients work unchanged. Deliberate differences:

* Paths (``ref_audio_path``, ``aux_ref_audio_paths``, weights) must lie in the allowed folders: else 403.
* ``text_lang``/``prompt_lang`` are lower-cased in GET *and* POST (upstream only in GET).
* ``aux_ref_audio_paths`` can also be given in GET (repeat the parameter).
* Without ``ref_audio_path`` the server's default reference is used when it has one (``--voice``,
  ``--ref-audio`` or ``/set_refer_audio``); without one the 400 is upstream's.
* ``streaming_mode`` 3 streams every ``min_chunk_length`` semantic tokens and 2 cuts at pause-like tokens
  (upstream's rule, without its re-sending of tokens after the cut), with the same wire format; ``batch_threshold``, ``split_bucket``, ``parallel_infer``, ``sample_steps``,
  ``super_sampling`` and ``overlap_length`` are accepted and have no effect on v2 models.
* int16 conversion clips instead of wrapping a sample of exactly +1.0.
"""

from __future__ import annotations

import logging
from typing import Annotated

import numpy as np
from fastapi import APIRouter, BackgroundTasks, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict

from studio.api.audio_encoding import AI_HEADER, MEDIA_TYPES, StreamEncoder, encode
from studio.api.engine import ApiEngine, Reference
from studio.api.queue import Job, cancel_on_disconnect
from studio.api.security import ApiError, bearer_scheme
from studio.errors import StudioError
from studio.inference.pauses import PRESETS, PauseMap
from studio.inference.requests import SEED_MAX, SynthesisRequest
from studio.text.sentence_split import UPSTREAM_NAMES

_LOGGER = logging.getLogger(__name__)

V2_MEDIA_TYPES = ("wav", "raw", "ogg", "aac")
MAX_BATCH_SIZE = 200  # upstream's WebUI slider goes to 200; the engine batches at most ENGINE_BATCH_SIZE
ENGINE_BATCH_SIZE = 64
STREAMING_MODE_ERROR = "the value of streaming_mode must be 0, 1, 2, 3(int) or true/false(bool)"


def get_engine(request: Request) -> ApiEngine:
    return request.app.state.engine


def authorize(request: Request, _credentials=Depends(bearer_scheme)) -> None:
    get_engine(request).keys.verify(request)


def authorize_change(request: Request) -> None:
    """State-changing routes need a key even when synthesis needs none (a GET from an <img> must not do it)."""
    get_engine(request).control_keys.verify(request)


_CHANGES = [Depends(authorize_change)]


_ERROR = {"content": {"application/json": {"example": {"message": "text is required"}}}}
_RESPONSES = {400: _ERROR, 401: _ERROR, 403: _ERROR, 503: _ERROR}
_AUDIO = {"content": {MEDIA_TYPES[m]: {"schema": {"type": "string", "format": "binary"}} for m in V2_MEDIA_TYPES}}

router = APIRouter(tags=["api_v2 (GPT-SoVITS compatible)"], dependencies=[Depends(authorize)], responses=_RESPONSES)


class TimbreRef(BaseModel):
    """One clip of a timbre mix: a path (allow-listed like ``ref_audio_path``) and its relative weight."""

    path: str
    weight: float = 1.0


class TTSParams(BaseModel):
    """The parameters of ``/tts`` with upstream's defaults."""

    model_config = ConfigDict(extra="ignore")

    text: str | None = None
    text_lang: str | None = None
    ref_audio_path: str | None = None
    aux_ref_audio_paths: list[str] | None = None
    prompt_lang: str | None = None
    prompt_text: str = ""
    top_k: int = 15
    top_p: float = 1.0
    temperature: float = 1.0
    text_split_method: str = "cut5"
    batch_size: int = 1
    batch_threshold: float = 0.75
    split_bucket: bool = True
    speed_factor: float = 1.0
    fragment_interval: float = 0.3
    seed: int = -1
    media_type: str = "wav"
    streaming_mode: bool | int | str = False
    parallel_infer: bool = True
    repetition_penalty: float = 1.35
    sample_steps: int = 32
    super_sampling: bool = False
    overlap_length: int = 2
    min_chunk_length: int = 16
    # Extensions (directing the voice; api_v2 clients never send them, so they change nothing for them)
    style_ref_audio_path: str | None = None
    style_prompt_text: str = ""
    style_prompt_lang: str | None = None
    timbre_refs: list[TimbreRef] | None = None
    pause_map: str | dict[str, float] | None = None


@router.get("/tts", response_class=Response, responses={200: _AUDIO})
async def tts_get(
    request: Request, params: Annotated[TTSParams, Query()], engine: ApiEngine = Depends(get_engine)
) -> Response:
    """Synthesise speech (query parameters)."""
    return await tts(engine, params, request)


@router.post("/tts", response_class=Response, responses={200: _AUDIO})
async def tts_post(request: Request, params: TTSParams, engine: ApiEngine = Depends(get_engine)) -> Response:
    """Synthesise speech (JSON body)."""
    return await tts(engine, params, request)


def parse_streaming_mode(value: bool | int | str | None) -> int:
    """0 whole file, 1 one chunk per sentence, 2/3 token-chunk streaming (here: per sentence as well)."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return int(value.strip().lower() == "true")
    try:
        mode = int(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ApiError(400, STREAMING_MODE_ERROR) from None
    if mode not in (0, 1, 2, 3):
        raise ApiError(400, STREAMING_MODE_ERROR)
    return mode


def check_params(engine: ApiEngine, p: TTSParams) -> None:
    """Upstream's validation, message for message."""
    if not p.ref_audio_path and engine.current.reference is None:
        raise ApiError(400, "ref_audio_path is required")
    if not p.text:
        raise ApiError(400, "text is required")
    languages = engine.supported_languages()
    for name, value in (("text_lang", p.text_lang), ("prompt_lang", p.prompt_lang)):
        if not value:
            if name == "prompt_lang" and not p.ref_audio_path:
                continue  # the default reference brings its own language
            raise ApiError(400, f"{name} is required")
        if value.lower() not in languages:
            raise ApiError(400, f"{name}: {value} is not supported in version {engine.version}")
    if p.media_type not in V2_MEDIA_TYPES:
        raise ApiError(400, f"media_type: {p.media_type} is not supported")
    if p.text_split_method not in UPSTREAM_NAMES:
        raise ApiError(400, f"text_split_method:{p.text_split_method} is not supported")
    limit = engine.settings.max_text_chars
    if len(p.text) > limit:
        raise ApiError(
            400,
            f"text is too long: {len(p.text):,} characters, this server takes at most {limit:,} per request",
            hint="Send the text in several requests, or start the server with a larger --max-text-chars.",
        )
    if not 1 <= p.batch_size <= MAX_BATCH_SIZE:
        raise ApiError(400, f"batch_size must be between 1 and {MAX_BATCH_SIZE} (got {p.batch_size})")
    if not -1 <= p.seed <= SEED_MAX:
        raise ApiError(400, f"seed must be between 0 and {SEED_MAX}, or -1 for a random seed (got {p.seed})")


def build_request(engine: ApiEngine, p: TTSParams, mode: int) -> SynthesisRequest:
    if p.ref_audio_path:
        reference = Reference(engine.guard.resolve(p.ref_audio_path, "ref_audio_path"), p.prompt_text, "")
        ref_lang = (p.prompt_lang or "").lower()
    else:
        reference = engine.current.reference
        ref_lang = (p.prompt_lang or reference.lang).lower()
        if p.prompt_text:
            reference = Reference(reference.audio, p.prompt_text, ref_lang)
    aux = tuple(engine.guard.resolve(a, "aux_ref_audio_paths") for a in p.aux_ref_audio_paths or () if a)
    return SynthesisRequest(
        **direction_fields(engine, p),
        text=p.text or "",
        lang=(p.text_lang or "").lower(),
        reference=reference.audio,
        ref_text=reference.text,
        ref_lang=ref_lang,
        aux_references=aux,
        top_k=p.top_k,
        top_p=p.top_p,
        temperature=p.temperature,
        repetition_penalty=p.repetition_penalty,
        speed=p.speed_factor,
        pause_s=p.fragment_interval,
        split=p.text_split_method,
        batch_size=min(p.batch_size, ENGINE_BATCH_SIZE),  # larger batches (accepted as upstream) run as 64
        seed=None if p.seed < 0 else p.seed,
        stream_tokens=p.min_chunk_length if mode in (2, 3) else 0,
        stream_at_silence=mode == 2,
    )


def direction_fields(engine: ApiEngine, p: TTSParams) -> dict:
    """The extension fields as request fields: a style clip apart from the timbre, a weighted timbre mix (paths pass
    the same allow-list as ``ref_audio_path``), a pause map (a preset name or seconds per mark). Bad values: 400."""
    fields: dict = {}
    if p.style_ref_audio_path:
        fields["style_reference"] = engine.guard.resolve(p.style_ref_audio_path, "style_ref_audio_path")
        fields["style_ref_text"] = p.style_prompt_text
        fields["style_ref_lang"] = (p.style_prompt_lang or p.prompt_lang or p.text_lang or "auto").lower()
    if p.timbre_refs:
        fields["timbre_references"] = tuple(
            (engine.guard.resolve(t.path, "timbre_refs"), t.weight) for t in p.timbre_refs
        )
    if p.pause_map is not None:
        if isinstance(p.pause_map, str) and p.pause_map.strip().lower() not in PRESETS:  # never a server file
            raise ApiError(400, f"pause_map: use one of {', '.join(PRESETS)} or an object of seconds per mark")
        try:
            fields["pauses"] = PauseMap.parse(p.pause_map)
        except StudioError as exc:
            raise ApiError(400, f"pause_map: {exc}", hint=exc.hint) from exc
    return fields


async def first_chunk(job: Job):
    """The first item of a synthesis job, or a 400 "tts failed" naming what went wrong."""
    return await job.first(lambda exc: ApiError(400, "tts failed", exception=str(exc)))


async def tts(engine: ApiEngine, p: TTSParams, http: Request) -> Response:
    mode = parse_streaming_mode(p.streaming_mode)
    check_params(engine, p)
    request = build_request(engine, p, mode)
    try:
        request.check_direction()
    except StudioError as exc:
        raise ApiError(400, str(exc), hint=exc.hint) from exc
    async with cancel_on_disconnect(engine.submit(request), http.is_disconnected) as job:
        first = await first_chunk(job)
        media_type = MEDIA_TYPES[p.media_type]
        if mode != 0:
            return StreamingResponse(
                _stream_body(job, first, p.media_type, engine.sample_rate), media_type=media_type, headers=AI_HEADER
            )
        chunks = [first] if first is not None else []
        try:
            chunks += [chunk async for chunk in job]
        except Exception as exc:
            raise ApiError(400, "tts failed", exception=str(exc)) from exc
    if job.cancelled:  # the client has gone; nobody reads this
        return Response(status_code=499)
    audio = np.concatenate([c.audio for c in chunks]) if chunks else np.zeros(0, np.float32)
    body = await run_in_threadpool(encode, audio, engine.sample_rate, p.media_type)
    return Response(body, media_type=media_type, headers=AI_HEADER)


async def _stream_body(job: Job, first, fmt: str, sample_rate: int):
    """One readable stream: WAV = a header of unknown size then int16; raw = int16; ogg = one Vorbis stream
    fed chunk by chunk; aac = ADTS frames (self-delimiting)."""
    encoder = StreamEncoder(fmt, sample_rate)
    try:
        if first is not None:
            yield await run_in_threadpool(encoder.push, first.audio)
        async for chunk in job:
            yield await run_in_threadpool(encoder.push, chunk.audio)
        yield await run_in_threadpool(encoder.finish)
    except Exception:  # the status line is gone: the stream just ends early
        _LOGGER.exception("streaming synthesis failed")
    finally:
        job.cancel()


@router.get("/set_gpt_weights", dependencies=_CHANGES)
async def set_gpt_weights(weights_path: str | None = None, engine: ApiEngine = Depends(get_engine)):
    """Load another GPT (``.ckpt``) for the following requests."""
    return await _set_weights(engine, weights_path, "gpt")


@router.get("/set_sovits_weights", dependencies=_CHANGES)
async def set_sovits_weights(weights_path: str | None = None, engine: ApiEngine = Depends(get_engine)):
    """Load another SoVITS (``.pth``) for the following requests."""
    return await _set_weights(engine, weights_path, "sovits")


async def _set_weights(engine: ApiEngine, weights_path: str | None, kind: str) -> JSONResponse:
    if not weights_path:
        raise ApiError(400, f"{kind} weight path is required")
    path = engine.guard.resolve(weights_path, "weights_path")
    try:
        await engine.swap_models(**{kind: path})
    except ApiError:
        raise
    except Exception as exc:
        raise ApiError(400, f"change {kind} weight failed", exception=str(exc)) from exc
    return JSONResponse({"message": "success"})


@router.get("/set_refer_audio", dependencies=_CHANGES)
async def set_refer_audio(
    refer_audio_path: str | None = None,
    prompt_text: str | None = None,
    prompt_lang: str | None = None,
    engine: ApiEngine = Depends(get_engine),
) -> JSONResponse:
    """Set the server's default reference (used when a request names none, and by OpenAI voice "default")."""
    from studio.inference.reference import load_reference

    if not refer_audio_path:
        raise ApiError(400, "refer audio path is required")
    path = engine.guard.resolve(refer_audio_path, "refer_audio_path")
    try:
        await run_in_threadpool(load_reference, path)
    except Exception as exc:
        raise ApiError(400, "set refer audio failed", exception=str(exc)) from exc
    old = engine.current.reference
    text = prompt_text if prompt_text is not None else ""
    lang = (prompt_lang or (old.lang if old else "auto")).lower()
    engine.set_reference(Reference(path, text, lang))
    return JSONResponse({"message": "success"})


@router.get("/control", dependencies=_CHANGES)
async def control(request: Request, background: BackgroundTasks, command: str | None = None) -> JSONResponse:
    """``restart``: reload the models (``studio serve`` re-executes itself); ``exit``: stop the server gracefully."""
    if not command:
        raise ApiError(400, "command is required")
    ctl = request.app.state.control
    if command == "exit":
        if not ctl.can_stop:
            raise ApiError(400, "command: exit is not available: this app does not run its own server")
        background.add_task(ctl.exit)
        return JSONResponse({"message": "exiting"})
    if command == "restart":
        await ctl.restart()
        return JSONResponse({"message": "restarting"})
    raise ApiError(400, f"command: {command} is not supported (use restart or exit)")
