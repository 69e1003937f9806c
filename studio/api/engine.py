"""The server's long-lived state: the synthesis service, the current voice, the default reference and the queue.

Nothing here is a cache of "the last reference": every request carries its own reference, which the
:class:`~studio.inference.synthesizer.Synthesizer` keys by file content. The current voice and the default
reference are only what a request gets when it names none.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from studio.api.config import ServerSettings
from studio.api.queue import InferenceQueue, Job, QueueFullError
from studio.api.security import ApiError, ApiKeyCheck, PathGuard
from studio.inference.batching import TokenBatcher
from studio.inference.requests import OUTPUT_SAMPLE_RATE, AudioChunk, SynthesisRequest
from studio.inference.synthesizer import Synthesizer
from studio.pretrained import PretrainedAssets
from studio.services.pronunciations import PronunciationService
from studio.services.synthesis import SynthesisService, VoiceModels
from studio.services.voices import VoiceLibrary

_LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True)
class Reference:
    """A reference clip with its transcript: the voice and style a request imitates."""

    audio: Path
    text: str = ""
    lang: str = "auto"


@dataclass(frozen=True)
class VoiceChoice:
    """What a request speaks with: the model files and (when known) the voice's own reference."""

    name: str
    models: VoiceModels
    reference: Reference | None
    languages: tuple[str, ...] = ()


class ApiEngine:
    """Shared by the api_v2 and OpenAI routes of one app."""

    def __init__(self, settings: ServerSettings, service: SynthesisService | None = None) -> None:
        self.settings = settings
        self.service = service or SynthesisService(
            PretrainedAssets(settings.pretrained),
            device=settings.device,
            precision=settings.precision,
            hubert_dir=settings.hubert_dir,
            bert_dir=settings.bert_dir,
        )
        self.library = VoiceLibrary(settings.workspace)
        self.pronunciations = PronunciationService(settings.workspace)
        self.guard = PathGuard(
            [settings.workspace, settings.pretrained, *settings.allow_dirs],
            base=settings.workspace,
        )
        self.keys = ApiKeyCheck(settings.api_key)
        self.control_keys = ApiKeyCheck(
            settings.control_key,
            "This request changes the server, so it needs the API key: send 'Authorization: Bearer <key>' "
            "(or 'X-API-Key: <key>'). The key is printed when the server starts and kept in "
            f"{settings.workspace / 'config' / 'api_key'} unless --api-key or $STUDIO_API_KEY set one.",
        )
        self.queue = InferenceQueue(settings.queue_size, name=str(self.service.device), max_running=settings.max_batch)
        # Concurrent requests decode their GPT stage in shared batches (continuous batching); 1 = one at a time.
        self.batcher = TokenBatcher(settings.max_batch) if settings.max_batch > 1 else None
        self.version = "v2"
        self.sample_rate = OUTPUT_SAMPLE_RATE
        self._lock = threading.Lock()
        self.current = self._initial_voice()

    # ------------------------------------------------------------------------------------------ voices

    def _initial_voice(self) -> VoiceChoice:
        s = self.settings
        if s.voice:
            return self.library_voice(s.voice)
        base = self.service.base_voice()
        models = VoiceModels(Path(s.gpt_path or base.gpt_path), Path(s.sovits_path or base.sovits_path))
        reference = Reference(Path(s.ref_audio), s.ref_text, s.ref_lang) if s.ref_audio else None
        return VoiceChoice("default", models, reference)

    def library_voice(self, name: str) -> VoiceChoice:
        info = self.library.get(name)  # VoiceNotFoundError names the known voices
        reference = Reference(info.reference_audio, info.reference_text, info.reference_lang or "auto")
        return VoiceChoice(info.name, info.models, reference, tuple(info.languages))

    def set_reference(self, reference: Reference) -> None:
        with self._lock:
            self.current = replace(self.current, reference=reference)

    def supported_languages(self) -> tuple[str, ...]:
        from studio.text.language_split import supported_lang_modes

        return tuple(supported_lang_modes(self.version))

    # ------------------------------------------------------------------------------------------ work

    def start(self) -> None:
        """Start the worker; with ``settings.preload`` also load the current voice (fails early on bad files)."""
        self.queue.start()
        if self.settings.preload:
            self.version = self.synthesizer(self.current.models).models.version

    def synthesizer(self, models: VoiceModels) -> Synthesizer:
        """The service's loaded synthesizer for ``models``, joined to this server's decoding batches."""
        synth = self.service.synthesizer(models)
        synth.batcher = self.batcher
        return synth

    def close(self) -> None:
        self.queue.stop()

    def submit(self, request: SynthesisRequest, voice: VoiceChoice | None = None) -> Job:
        """Queue one synthesis; the job yields :class:`AudioChunk` s. Raises ApiError(503) when the queue is full."""
        models = (voice or self.current).models
        cap = self.settings.max_tokens_per_sentence
        if request.max_tokens_per_sentence > cap:
            request = replace(request, max_tokens_per_sentence=cap)
        if self.settings.length_retries and not request.length_retries:
            request = replace(request, length_retries=self.settings.length_retries)
        if request.lexicon is None:  # the workspace's pronunciation list, re-read when it changes
            request = replace(request, lexicon=self.pronunciations.lexicon())

        def work() -> Iterator[AudioChunk]:
            return self.synthesizer(models).stream(request)

        return self._submit(work)

    def _submit(self, work, *, exclusive: bool = False) -> Job:
        try:
            return self.queue.submit(work, exclusive=exclusive)
        except QueueFullError as exc:
            raise ApiError(503, str(exc)) from exc

    async def swap_models(self, *, gpt: Path | None = None, sovits: Path | None = None) -> None:
        """Load a new GPT and/or SoVITS file (an exclusive job of the queue: no request runs meanwhile), make it
        current."""
        old = self.current.models
        models = VoiceModels(gpt or old.gpt_path, sovits or old.sovits_path)

        def work() -> Iterator[str]:
            yield self.synthesizer(models).models.version

        version = await self._submit(work, exclusive=True).next()
        with self._lock:
            self.version = version
            self.current = replace(self.current, models=models)

    async def reload(self) -> None:
        """Drop the loaded models and load the current voice again (``/control?command=restart`` when embedded)."""

        def work() -> Iterator[str]:
            forget = getattr(self.service, "forget_loaded", None)
            if forget is not None:
                forget()
            else:  # until SynthesisService grows forget_loaded(): empty its voice cache
                self.service.forget_loaded()
            yield self.synthesizer(self.current.models).models.version

        self.version = await self._submit(work, exclusive=True).next()
