"""OpenAI-compatible speech: ``POST /v1/audio/speech``, ``GET /v1/models``, ``GET /v1/audio/voices``.

``voice`` is the name of a voice in the studio's library (its models, reference clip and transcript), or
``"default"`` for the server's loaded voice and default reference. OpenAI's own voice names (``alloy``,
``nova``, …) also mean the default voice unless the library has a voice of that name, so clients with a
hard-wired voice still work. ``pcm`` is 24 kHz mono int16 as OpenAI documents it (resampled) and is
streamed sentence by sentence; every other format is a complete 32 kHz file.
Extensions (send them with the SDK's ``extra_body``): ``lang``, ``seed``, ``top_k``, ``top_p``, ``temperature``,
``pause_map`` (a preset name or seconds per mark).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, Field

from studio.api.api_v2 import authorize, get_engine
from studio.api.audio_encoding import AI_HEADER, MEDIA_TYPES, Int16Resampler, encode
from studio.api.config import MAX_TEXT_CHARS
from studio.api.engine import ApiEngine, VoiceChoice
from studio.api.queue import Job, cancel_on_disconnect
from studio.api.security import ApiError
from studio.errors import StudioError
from studio.inference.pauses import PRESETS, PauseMap
from studio.inference.requests import SEED_MAX, SynthesisRequest

OPENAI_VOICES = frozenset("alloy ash ballad cedar coral echo fable marin nova onyx sage shimmer verse".split())
MODELS = ("sovits-studio", "tts-1", "tts-1-hd", "gpt-4o-mini-tts")
PCM_RATE = 24000

_ERROR = {"content": {"application/json": {"example": {"error": {"message": "...", "type": "invalid_request_error"}}}}}
router = APIRouter(
    prefix="/v1",
    tags=["OpenAI compatible"],
    dependencies=[Depends(authorize)],
    responses={400: _ERROR, 401: _ERROR, 403: _ERROR, 500: _ERROR, 503: _ERROR},
)


class VoiceId(BaseModel):
    id: str


class SpeechRequest(BaseModel):
    """OpenAI's ``audio.speech.create`` body, plus a few sampling extensions."""

    model: str = Field("sovits-studio", description="Accepted for compatibility; the voice decides the models.")
    input: str = Field(..., min_length=1, description=f"At most {MAX_TEXT_CHARS} characters (the server's limit).")
    voice: str | VoiceId = Field("default", description='A voice of the library, or "default".')
    response_format: Literal["mp3", "opus", "aac", "flac", "wav", "pcm"] = "mp3"
    speed: float = Field(1.0, ge=0.25, le=4.0)
    instructions: str | None = Field(None, description="Accepted and ignored (no style prompts in GPT-SoVITS).")
    stream_format: Literal["audio"] | None = "audio"
    lang: str | None = Field(None, description="Language mode (auto, en, zh, ja, …); default from the voice.")
    seed: int | None = Field(
        None, le=SEED_MAX, description=f"Fixed seed (0–{SEED_MAX}) for repeatable output; unset or < 0 = random."
    )
    top_k: int | None = Field(None, ge=1, le=1025)
    top_p: float | None = Field(None, gt=0.0, le=1.0)
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    pause_map: str | dict[str, float] | None = Field(
        None, description="Pauses by punctuation: natural, audiobook, fast, or seconds per mark (comma, full_stop, …)."
    )


_SPEECH_200 = {
    "content": {
        MEDIA_TYPES[f]: {"schema": {"type": "string", "format": "binary"}} for f in ("mp3", "opus", "aac", "flac")
    }
    | {"audio/wav": {"schema": {"type": "string", "format": "binary"}}}
    | {"audio/pcm": {"schema": {"type": "string", "format": "binary"}}}
}


@router.post("/audio/speech", response_class=Response, responses={200: _SPEECH_200})
async def create_speech(http: Request, body: SpeechRequest, engine: ApiEngine = Depends(get_engine)) -> Response:
    """Turn ``input`` into speech with ``voice``."""
    limit = engine.settings.max_text_chars
    if len(body.input) > limit:
        raise ApiError(400, f"input is too long: {len(body.input):,} characters (at most {limit:,})", param="input")
    voice = _resolve_voice(engine, body.voice.id if isinstance(body.voice, VoiceId) else body.voice)
    request = _build_request(engine, body, voice)
    fmt = body.response_format
    async with cancel_on_disconnect(engine.submit(request, voice), http.is_disconnected) as job:
        first = await job.first(_synthesis_error)
        if fmt == "pcm":
            stream = _pcm_stream(job, first, engine.sample_rate)
            return StreamingResponse(stream, media_type="audio/pcm", headers=AI_HEADER)
        chunks = [first] if first is not None else []
        try:
            chunks += [chunk async for chunk in job]
        except Exception as exc:
            raise _synthesis_error(exc) from exc
    if job.cancelled:  # the client has gone; nobody reads this
        return Response(status_code=499)
    audio = np.concatenate([c.audio for c in chunks]) if chunks else np.zeros(0, np.float32)
    data = await run_in_threadpool(encode, audio, engine.sample_rate, fmt)
    return Response(data, media_type=MEDIA_TYPES[fmt], headers=AI_HEADER)


def _resolve_voice(engine: ApiEngine, name: str) -> VoiceChoice:
    library = set(engine.library.names())
    if name in library:
        try:
            return engine.library_voice(name)
        except StudioError as exc:
            raise ApiError(400, str(exc)) from exc
    if name == "default" or name in OPENAI_VOICES:
        voice = engine.current
        if voice.reference is None:
            raise ApiError(
                400,
                "The server has no default reference clip for voice 'default'.",
                hint="Start it with --voice NAME (or --ref-audio), call /set_refer_audio, or name a library voice.",
            )
        return voice
    known = ", ".join(["default", *sorted(library)])
    raise ApiError(400, f"There is no voice named {name!r} (voices: {known}).")


def _build_request(engine: ApiEngine, body: SpeechRequest, voice: VoiceChoice) -> SynthesisRequest:
    ref = voice.reference
    lang = body.lang or (voice.languages[0] if len(voice.languages) == 1 else "auto")
    if lang.lower() not in engine.supported_languages():
        raise ApiError(400, f"lang: {lang} is not supported (use one of: {', '.join(engine.supported_languages())})")
    sampling = (("top_k", body.top_k), ("top_p", body.top_p), ("temperature", body.temperature))
    extra = {k: v for k, v in sampling if v is not None}
    if body.pause_map is not None:
        if isinstance(body.pause_map, str) and body.pause_map.strip().lower() not in PRESETS:
            raise ApiError(400, f"pause_map: use one of {', '.join(PRESETS)} or an object of seconds per mark")
        try:
            extra["pauses"] = PauseMap.parse(body.pause_map)
        except StudioError as exc:
            raise ApiError(400, f"pause_map: {exc}", hint=exc.hint, param="pause_map") from exc
    return SynthesisRequest(
        text=body.input,
        lang=lang.lower(),
        reference=ref.audio,
        ref_text=ref.text,
        ref_lang=(ref.lang or "auto").lower(),
        speed=body.speed,
        split="cut5",
        seed=body.seed,
        **extra,
    )


def _synthesis_error(exc: Exception) -> ApiError:
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, StudioError):
        return ApiError(400, str(exc))
    return ApiError(500, "Speech synthesis failed inside the server; see its log.", exception=str(exc))


async def _pcm_stream(job: Job, first, sample_rate: int):
    resampler = Int16Resampler(sample_rate, PCM_RATE)
    try:
        if first is not None:
            yield resampler.push(first.audio)
        async for chunk in job:
            yield resampler.push(chunk.audio)
        yield resampler.push(np.zeros(0, np.float32), last=True)
    finally:
        job.cancel()


@router.get("/models")
async def list_models() -> dict:
    """The model names this server accepts (all of them speak with the chosen voice)."""
    return {
        "object": "list",
        "data": [{"id": m, "object": "model", "created": 0, "owned_by": "sovits-studio"} for m in MODELS],
    }


@router.get("/audio/voices")
async def list_voices(request: Request) -> dict:
    """The voices ``voice`` may name: ``default`` and every voice of the library."""
    engine = get_engine(request)
    data = []
    if engine.current.reference is not None:
        data.append({"id": "default", "name": "default", "object": "voice", "languages": []})
    for info in engine.library.list():
        data.append({"id": info.name, "name": info.name, "object": "voice", "languages": list(info.languages)})
    return {"object": "list", "data": data, "voices": [v["id"] for v in data]}


router.add_api_route("/voices", list_voices, methods=["GET"], summary="List Voices (alias)")
