"""Which clips condition which model, and the cache of what they give.

A request names a *style* source (the clip whose semantic tokens and transcript prompt the GPT) and a *timbre*
set (the clips whose spectrograms, and SV embeddings for v2Pro/v2ProPlus, condition SoVITS, each with a
weight). By default ``reference`` is both, with ``aux_references`` added to the timbre at weight 1: exactly
upstream. :class:`ReferenceConditioner` turns that into a :class:`ReferencePrompt`, cached per instance and
keyed by the files' content (never a process-wide "last reference"); the style clip's prompt tokens (HuBERT →
quantiser, the costly part) are also kept on disk (:mod:`studio.inference.reference_cache`), so a repeated
reference skips HuBERT after a voice switch or a restart too.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from studio.errors import StudioError
from studio.inference import compute_thread
from studio.inference.reference import ReferenceAudio, ReferencePrompt, load_reference, timbre_spectrogram
from studio.inference.reference_cache import ReferenceFeatureCache, prompt_tokens_key, sv_embedding_key
from studio.inference.requests import SynthesisRequest
from studio.inference.runtime import trim_freed_memory

REFERENCE_CACHE_SIZE = 8
SPLIT_MARKS = ",.;?!、，。？！;：…"


@dataclass(frozen=True)
class StyleSource:
    """The clip and transcript that prompt the GPT (``text`` empty → reference-free mode)."""

    path: Path
    text: str
    lang: str


@dataclass(frozen=True)
class TimbreClip:
    """One clip of the timbre mix; ``checked`` clips must be 3–10 s (the main reference), the others not."""

    path: Path
    weight: float
    checked: bool


def style_source(request: SynthesisRequest) -> StyleSource:
    """``style_reference`` with its transcript when given, else ``reference`` with ``ref_text``."""
    if request.style_reference is not None:
        return StyleSource(Path(request.style_reference), request.style_ref_text, request.style_ref_lang)
    if request.reference is None:
        raise StudioError("No reference clip was given.", hint="Choose a 3–10 s clip of the voice to imitate.")
    return StyleSource(Path(request.reference), request.ref_text, request.ref_lang)


def timbre_clips(request: SynthesisRequest) -> list[TimbreClip]:
    """``timbre_references`` (weighted) when given, else ``reference``; then ``aux_references`` at weight 1."""
    if request.timbre_references:
        main = [TimbreClip(Path(p), float(w), False) for p, w in request.timbre_references]
    elif request.reference is not None:
        main = [TimbreClip(Path(request.reference), 1.0, True)]
    else:
        raise StudioError(
            "No timbre reference was given.", hint="Choose a clip of the voice (reference or timbre references)."
        )
    return main + [TimbreClip(Path(p), 1.0, False) for p in request.aux_references]


def mix_weights(clips: list[TimbreClip]) -> tuple[float, ...] | None:
    """Weights normalised to sum 1; None when they are all equal (the plain mean, bit for bit as upstream)."""
    weights = [c.weight for c in clips]
    if len(set(weights)) <= 1:
        return None
    total = sum(weights)
    return tuple(w / total for w in weights)


class ReferenceConditioner:
    """Builds (and caches) the :class:`ReferencePrompt` of a request with one set of loaded models.

    ``text_features`` is the synthesizer's (phones + BERT of a text); ``lock`` serialises model use;
    ``disk_cache`` keeps prompt tokens across instances and processes (default: the user's cache folder).
    """

    def __init__(
        self,
        models,
        lock: threading.RLock,
        text_features: Callable,
        disk_cache: ReferenceFeatureCache | None = None,
    ) -> None:
        self.models = models
        self._lock = lock
        self._text_features = text_features
        self._cache: OrderedDict[tuple, ReferencePrompt] = OrderedDict()
        self.disk_cache = disk_cache if disk_cache is not None else ReferenceFeatureCache()

    def prompt(self, request: SynthesisRequest) -> ReferencePrompt:
        style, timbre = style_source(request), timbre_clips(request)
        key = (
            _file_identity(style.path),
            style.text,
            style.lang,
            tuple((_file_identity(c.path), c.weight, c.checked) for c in timbre),
            request.auto_trim_reference,
        )
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None:
                self._cache.move_to_end(key)
                return cached
        prompt = compute_thread.run(  # clips decoded, HuBERT and spectrograms computed on the models' thread
            self._build,
            style,
            timbre,
            request.auto_trim_reference,
            style_digest=key[0][1],
            timbre_digests=[t[0][1] for t in key[3]],
        )
        with self._lock:
            self._cache[key] = prompt
            while len(self._cache) > REFERENCE_CACHE_SIZE:
                self._cache.popitem(last=False)
        return prompt

    def _build(
        self,
        style: StyleSource,
        timbre: list[TimbreClip],
        auto_trim: bool,
        *,
        style_digest: str,
        timbre_digests: list[str],
    ) -> ReferencePrompt:
        dev = self.models.device
        loaded: dict[tuple[Path, bool], ReferenceAudio] = {}

        def load(path: Path, checked: bool) -> ReferenceAudio:
            if (path, checked) not in loaded:
                loaded[(path, checked)] = load_reference(path, auto_trim=auto_trim and checked, check_length=checked)
            return loaded[(path, checked)]

        clips = [load(c.path, c.checked) for c in timbre]
        specs = [timbre_spectrogram(clip.wav32k, dev) for clip in clips]  # each (1, 1025, T_spec)
        sv = self._sv_embeddings(timbre, clips, timbre_digests, auto_trim)
        weights = mix_weights(timbre)
        ref_text = style.text.strip()
        if not ref_text:  # reference-free mode: timbre only
            return ReferencePrompt(None, [], None, specs, sv_embeddings=sv, weights=weights)
        ref = load(style.path, True)  # the GPT prompt clip obeys upstream's 3–10 s rule
        if ref_text[-1] not in SPLIT_MARKS:
            ref_text += "." if style.lang == "en" else "。"
        feats = self._text_features(ref_text, style.lang)
        return ReferencePrompt(
            prompt_tokens=self._prompt_tokens(ref, style_digest, auto_trim),  # (1, T_sem)
            prompt_phone_ids=feats.phone_ids,
            prompt_bert=feats.bert,
            specs=specs,
            sv_embeddings=sv,
            weights=weights,
        )

    def _prompt_tokens(self, ref: ReferenceAudio, digest: str, auto_trim: bool) -> torch.Tensor:
        """The style clip's semantic tokens (1, T_sem): from the disk cache when this clip went through the same
        content encoder and quantiser before, else HuBERT → ``extract_latent`` (and stored)."""
        from studio.models.content_encoder import reference_ssl_input

        dev = self.models.device
        key = prompt_tokens_key(digest, auto_trim, self.models.content_encoder, self.models.sovits, dev)
        tokens = self.disk_cache.get(key) if key is not None else None
        if tokens is None:
            with self._lock, torch.inference_mode():
                # HuBERT's weights map its file: each block's pages leave memory once it has run, until the next
                # new clip (~380 MB in all); its activations, freed among live blocks, go back too (~80 MB)
                wav = reference_ssl_input(ref.wav16k).to(dev)
                ssl = self.models.content_encoder.encode(wav, release_weights=True)  # (1, 768, T_ssl)
                tokens = self.models.sovits.extract_latent(ssl)[0].long()  # (n_q, 1, T_sem) → (1, T_sem)
                trim_freed_memory()
            if key is not None:
                self.disk_cache.put(key, tokens)
        return tokens.to(dev)

    def _sv_embeddings(
        self, timbre: list[TimbreClip], clips: list[ReferenceAudio], digests: list[str], auto_trim: bool
    ) -> list[torch.Tensor] | None:
        """One (1, 20480) speaker-verification embedding per timbre clip for a v2Pro/v2ProPlus SoVITS
        (upstream averages the per-reference style vectors, each with its own embedding); None otherwise. From the
        disk cache when the clip went through the same verifier before (then the verifier need not load)."""
        if not self.models.needs_speaker_verification:
            return None
        verifier = self.models.speaker_verifier
        if verifier is None:
            raise StudioError(
                f"This {self.models.version} voice needs the speaker-verification model, which is not loaded.",
                hint="Run `studio download --version v2ProPlus` to fetch it into pretrained/sv/.",
                ui_hint="In Models & Settings, choose v2ProPlus and press Download missing files.",
            )
        from studio.inference.reference import reference_sv_embedding

        dev = self.models.device
        embeddings = []
        for entry, clip, digest in zip(timbre, clips, digests, strict=True):
            key = sv_embedding_key(digest, auto_trim and entry.checked, entry.checked, verifier, dev)
            embedding = self.disk_cache.get_embedding(key) if key is not None else None
            if embedding is None:
                with self._lock:
                    embedding = reference_sv_embedding(verifier, clip.wav32k, f"reference clip {clip.path.name}")
                if key is not None:
                    self.disk_cache.put_embedding(key, embedding)
            embeddings.append(embedding.to(dev))
        return embeddings


def _file_identity(path: Path) -> tuple[str, str]:
    """(resolved path, sha1 of the content): two different clips never share a cache entry."""
    path = Path(path)
    try:
        digest = hashlib.sha1(path.read_bytes()).hexdigest()
    except OSError as exc:
        raise StudioError(f"Cannot read the reference clip {path}: {exc.strerror or exc}.") from exc
    return str(path.resolve()), digest
