"""Synthesis use case shared by the CLI, the studio UI and the HTTP API.

Owns the loaded models: the content encoder is loaded once per device, the Chinese BERT once per device when
Chinese text first arrives; one :class:`Synthesizer` per (GPT file, SoVITS file) pair is kept in a small LRU
cache. GPT and SoVITS weights are read through their memory-mapped weights cache (``weights_cache=False``
reads the original files every time). Every call is serialised per device (one model instance per
device), so concurrent requests queue instead of mixing state.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from pathlib import Path

import torch

from studio.inference import compute_thread
from studio.inference.precision_choice import apply_plan, gpt_identity
from studio.inference.requests import SynthesisRequest, SynthesisResult
from studio.inference.runtime import trim_freed_memory
from studio.inference.synthesizer import EngineModels, Synthesizer
from studio.pretrained import PretrainedAssets, missing_error
from studio.services.voices import VoiceModels

_LOGGER = logging.getLogger(__name__)

MAX_LOADED_VOICES = 2


class SynthesisService:
    """Loads voices on demand and runs synthesis requests against them."""

    def __init__(
        self,
        pretrained: PretrainedAssets | None = None,
        *,
        device: str | None = None,
        hubert_dir: Path | None = None,
        bert_dir: Path | None = None,
        weights_cache: bool = True,
        precision: str = "auto",
    ) -> None:
        self.pretrained = pretrained or PretrainedAssets()
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.hubert_dir = Path(hubert_dir) if hubert_dir else self.pretrained.hubert_dir
        self.bert_dir = Path(bert_dir) if bert_dir else self.pretrained.bert_dir
        self.weights_cache = weights_cache  # see studio.models.weights_cache
        from studio.models.precision import check_mode

        self.precision = check_mode(precision, allow_auto=True)  # see studio.inference.precision_choice
        self._plan = None
        self._lock = threading.Lock()
        self._encoders: tuple[object, object | None] | None = None
        self._verifier: object | None = None  # SpeakerVerifier, loaded with the first v2Pro/v2ProPlus voice
        self._voices: OrderedDict[tuple, Synthesizer] = OrderedDict()

    def base_voice(self) -> VoiceModels:
        """The base models zero-shot synthesis uses: the best complete base present (v2ProPlus, v2Pro, v2), else
        the best whose GPT and SoVITS are here (what it lacks, e.g. the SV model, is then named), else v2."""
        from studio.pretrained import BASE_PREFERENCE

        assets = self.pretrained
        halves = [v for v in BASE_PREFERENCE if assets.base(v).gpt.is_file() and assets.base(v).sovits.is_file()]
        base = assets.base(assets.best_base() or next(iter(halves), "v2"))
        return VoiceModels(base.gpt, base.sovits)

    def check_base_files(self, voice: VoiceModels | None = None) -> None:
        """Raise a :class:`MissingPretrainedError` that lists every missing file and how to get it."""
        voice = voice or self.base_voice()
        needed = [voice.gpt_path, voice.sovits_path, self.hubert_dir / "config.json"]
        absent = [p for p in needed if not p.exists()]
        if not any((self.hubert_dir / name).is_file() for name in ("pytorch_model.bin", "model.safetensors")):
            absent.append(self.hubert_dir / "pytorch_model.bin")
        if absent:
            raise missing_error(absent, self.pretrained.root)

    def _shared_encoders(self) -> tuple[object, object | None]:
        from studio.models.content_encoder import LazyContentEncoder
        from studio.models.text_features import LazyChineseBert

        if self._encoders is None:
            hubert = LazyContentEncoder(self.hubert_dir, device=self.device)  # loads with a new reference
            bert = None
            if self.bert_dir.exists():
                bert = LazyChineseBert(
                    self.bert_dir, device=self.device, precision=self.precision_plan().bert
                )  # loads with the first Chinese text
            else:
                _LOGGER.warning("Chinese BERT folder %s not found: Chinese text gets zero features", self.bert_dir)
            self._encoders = (hubert, bert)
        return self._encoders

    def synthesizer(self, voice: VoiceModels | None = None) -> Synthesizer:
        """The loaded :class:`Synthesizer` for ``voice`` (the base models by default)."""
        voice = voice or self.base_voice()
        self.check_base_files(voice)
        with self._lock:
            key = voice.key()
            if key in self._voices:
                self._voices.move_to_end(key)
                return self._voices[key]
            # Loaded on the thread that will run the models (studio.inference.compute_thread).
            synth = compute_thread.run(self._load, voice)
            trim_freed_memory()  # what the load freed (fp32 copies, conversion buffers) goes back to the system
            self._voices[key] = synth
            while len(self._voices) > MAX_LOADED_VOICES:
                self._voices.popitem(last=False)
            return synth

    def _load(self, voice: VoiceModels) -> Synthesizer:
        """Read, convert and place ``voice``'s models (on the compute thread; ``_lock`` is held by the caller)."""
        from studio.models.sovits.checkpoint import load_sovits
        from studio.models.text2semantic_checkpoint import load_text2semantic

        hubert, bert = self._shared_encoders()
        gpt, _, _ = load_text2semantic(voice.gpt_path, cache=self.weights_cache)
        sovits, config, _, version = load_sovits(voice.sovits_path, cache=self.weights_cache)
        verifier = self._speaker_verifier() if config.uses_speaker_verification else None
        gpt, sovits = gpt.to(self.device).eval(), sovits.to(self.device).eval()
        plan, reload_gpt = apply_plan(gpt, sovits, self.precision_plan(), gpt_identity(voice.gpt_path))
        if reload_gpt:
            gpt = load_text2semantic(voice.gpt_path, cache=self.weights_cache)[0].to(self.device).eval()
        return Synthesizer(
            EngineModels(
                gpt=gpt,
                sovits=sovits,
                precision=plan,
                content_encoder=hubert,
                bert=bert,
                version=version,
                device=self.device,
                speaker_verifier=verifier,
            )
        )

    def precision_plan(self):
        """What each part runs in (``precision='auto'`` measures this machine once; see precision_choice)."""
        from studio.inference.precision_choice import resolve_plan

        if self._plan is None:
            self._plan = resolve_plan(self.precision, self.device)
        return self._plan

    def _speaker_verifier(self) -> object:
        """The speaker-verification model v2Pro/v2ProPlus voices need (one per device, loaded with the first timbre
        clip whose embedding is not in the reference cache); a missing file raises :class:`MissingPretrainedError`
        naming it and `studio download --version v2ProPlus`."""
        from studio.models.speaker_verification import LazySpeakerVerifier

        if self._verifier is None:
            path = self.pretrained.sv_path
            if not path.is_file():
                raise missing_error([path], self.pretrained.root, "v2ProPlus")
            self._verifier = LazySpeakerVerifier(path, self.device)
        return self._verifier

    def synthesize(self, request: SynthesisRequest, voice: VoiceModels | None = None) -> SynthesisResult:
        return self.synthesizer(voice).synthesize(request)

    def stream(self, request: SynthesisRequest, voice: VoiceModels | None = None):
        return self.synthesizer(voice).stream(request)

    def forget_loaded(self) -> None:
        """Drop every loaded model (e.g. after weights changed on disk); the next request reloads."""
        with self._lock:
            self._voices.clear()
            self._encoders = None
            self._verifier = None
