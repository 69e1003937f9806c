"""The synthesis facade: text + reference → 32 kHz speech, streamed sentence by sentence.

Ladder of stages, each callable on its own (style habit 8):
``text_features`` → ``reference_prompt`` → ``generate_tokens`` → ``decode_tokens`` → ``stream`` →
``synthesize`` (= the concatenation of ``stream``).
"""

from __future__ import annotations

import functools
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import torch

from studio.errors import StudioError
from studio.inference import compute_thread
from studio.inference.conditioning import ReferenceConditioner
from studio.inference.length_check import length_gap
from studio.inference.pauses import Piece, pieces_with_pauses
from studio.inference.postprocess import apply_energy, normalize_peak, silence
from studio.inference.reference import ReferencePrompt
from studio.inference.requests import OUTPUT_SAMPLE_RATE, AudioChunk, SynthesisRequest, SynthesisResult
from studio.inference.runtime import trim_freed_memory
from studio.text.user_lexicon import UserLexicon

_LOGGER = logging.getLogger(__name__)
T = TypeVar("T")

EARLY_STOP_TOKENS = 50 * 54  # upstream passes 50 × max_sec; it never triggers before the step cap
STREAM_CONTEXT_TOKENS = 8  # left context re-decoded with every streamed chunk
FIRST_STREAM_TOKENS = 4  # the first streamed chunk of a sentence (then 8, 16, … up to stream_tokens)
BERT_DIM = 1024


@dataclass
class TextFeatures:
    """Phones of one sentence and their BERT matrix."""

    phone_ids: list[int]
    bert: torch.Tensor  # (1024, len(phone_ids))
    norm_text: str


@dataclass
class EngineModels:
    """The loaded models of one voice on one device."""

    gpt: torch.nn.Module
    sovits: torch.nn.Module
    content_encoder: object  # studio.models.content_encoder.ContentEncoder
    bert: object | None  # studio.models.text_features.ChineseBertFeatures, None → zeros for Chinese too
    version: str = "v2"  # the SoVITS file's version: v1, v2, v2Pro or v2ProPlus (the text front end follows it)
    device: torch.device = torch.device("cpu")
    speaker_verifier: object | None = None  # studio.models.speaker_verification.SpeakerVerifier (v2Pro/v2ProPlus)
    precision: object | None = None  # studio.models.precision.PrecisionPlan the models were converted to

    @property
    def needs_speaker_verification(self) -> bool:
        """True for a v2Pro/v2ProPlus SoVITS: every reference also needs its speaker-verification embedding."""
        return bool(getattr(getattr(self.sovits, "config", None), "uses_speaker_verification", False))


class Synthesizer:
    """Turns :class:`SynthesisRequest` s into audio with one set of loaded models.

    Thread-safe: the models work on the compute thread (:mod:`studio.inference.compute_thread`), under a lock
    (one model instance per device); the reference cache is per instance and keyed by file content, so
    concurrent callers never get each other's voice.
    """

    # A studio.inference.batching.TokenBatcher: when set, the GPT stage joins the shared decoding batch of the
    # model (it takes the lock per step itself) instead of decoding alone under the lock.
    batcher = None

    def __init__(self, models: EngineModels) -> None:
        self.models = models
        self._lock = threading.RLock()
        self._conditioner = ReferenceConditioner(models, self._lock, self.text_features)

    def on_models(self, fn: Callable[[], T]) -> T:
        """``fn()`` on the compute thread, holding the model lock, in inference mode; returns what it returns.
        The caller must not hold the lock (see :mod:`studio.inference.compute_thread`)."""

        def locked() -> T:
            with self._lock, torch.inference_mode():
                return fn()

        return compute_thread.run(locked)

    @property
    def sample_rate(self) -> int:
        return OUTPUT_SAMPLE_RATE

    # ------------------------------------------------------------------------------------------ stages

    def text_features(self, text: str, lang: str, lexicon: UserLexicon | None = None) -> TextFeatures:
        """Phone ids and the 1024-d BERT matrix of ``text`` (zeros except for Chinese segments)."""
        from studio.text.frontend import ensure_speakable, text_to_phones

        seq = ensure_speakable(text_to_phones(text, lang, version=self.models.version, lexicon=lexicon))

        def matrix() -> torch.Tensor:  # tensors of this size run in parallel: on the compute thread
            blocks = []
            for seg in seq.segments:
                if seg.lang == "zh" and self.models.bert is not None:
                    loading = not getattr(self.models.bert, "loaded", True)  # its first Chinese text loads it
                    with self._lock, torch.inference_mode():
                        feats = self.models.bert.phone_features(seg.norm_text, seg.word2ph)
                    if loading:
                        trim_freed_memory()
                    if feats.shape[0] != BERT_DIM:
                        raise StudioError(
                            f"The Chinese BERT model gives {feats.shape[0]}-d features but the GPT expects {BERT_DIM}.",
                            hint="Use chinese-roberta-wwm-ext-large (see pretrained/README.md).",
                        )
                    blocks.append(feats.float().cpu())
                else:
                    blocks.append(torch.zeros(BERT_DIM, len(seg.phones)))
            return torch.cat(blocks, dim=1) if blocks else torch.zeros(BERT_DIM, 0)

        return TextFeatures(phone_ids=list(seq.phone_ids), bert=compute_thread.run(matrix), norm_text=seq.norm_text)

    def reference_prompt(self, request: SynthesisRequest) -> ReferencePrompt:
        """Prompt tokens and phones of the style clip, timbre spectrograms, (v2Pro/v2ProPlus) speaker-verification
        embeddings and mix weights of the timbre clips (see :mod:`studio.inference.conditioning`); cached."""
        return self._conditioner.prompt(request)

    def generate_tokens(
        self,
        feats: TextFeatures,
        prompt: ReferencePrompt,
        request: SynthesisRequest,
        generator: torch.Generator,
    ) -> list[int]:
        """Semantic tokens for one sentence (the GPT stage)."""
        from studio.models.generate import generate_semantic

        kwargs = dict(self._sampling_kwargs(request), generator=generator)
        if self.batcher is None:
            result = self.on_models(
                lambda: generate_semantic(self.models.gpt, *self._gpt_inputs(feats, prompt), **kwargs)
            )
        else:  # waits here while the shared batch steps on the compute thread (studio.inference.batching)
            inputs = compute_thread.run(self._gpt_inputs, feats, prompt)
            result = self.batcher.generate(self.models.gpt, *inputs, **kwargs, lock=self._lock)
        return [int(t) for t in result.tokens]

    def _gpt_inputs(self, feats: TextFeatures, prompt: ReferencePrompt) -> tuple:
        """(phone ids (1, T_text), BERT (1, 1024, T_text), prompt tokens (1, P) or None) on the models' device for
        [reference text ; sentence]; called on the compute thread."""
        dev = self.models.device
        phone_ids = prompt.prompt_phone_ids + feats.phone_ids
        bert = feats.bert if prompt.prompt_bert is None else torch.cat([prompt.prompt_bert, feats.bert], dim=1)
        tokens = None if prompt.prompt_tokens is None else prompt.prompt_tokens.to(dev)
        return torch.tensor([phone_ids], dtype=torch.long, device=dev), bert.unsqueeze(0).to(dev), tokens

    def decode_tokens(
        self,
        tokens: list[int],
        feats: TextFeatures,
        prompt: ReferencePrompt,
        request: SynthesisRequest,
        generator: torch.Generator,
    ) -> np.ndarray:
        """32 kHz float32 audio for one sentence's tokens (the SoVITS stage), with peak and energy touches."""
        dev = self.models.device
        codes = torch.tensor([[tokens]], dtype=torch.long, device=dev)  # (1, 1, T_sem)
        phones = torch.tensor([feats.phone_ids], dtype=torch.long, device=dev)  # (1, T_text)
        decode = functools.partial(
            self.models.sovits.decode,
            codes,
            phones,
            prompt.specs,
            noise_scale=request.noise_scale,
            speed=request.speed,
            generator=generator,
            sv_emb=prompt.sv_embeddings,
            weights=prompt.weights,
        )
        wav = self.on_models(lambda: decode().reshape(-1).float().cpu())  # (T_wav,)
        audio = wav.numpy()
        audio = normalize_peak(audio)
        return apply_energy(audio, request.energy, OUTPUT_SAMPLE_RATE)

    # ------------------------------------------------------------------------------------------ driving

    def sentences(self, request: SynthesisRequest) -> list[str]:
        """The pieces spoken one by one: sentences, or clauses when the request has a pause map."""
        return [piece.text for piece in self.pieces(request)]

    def pieces(self, request: SynthesisRequest) -> list[Piece]:
        """Each piece spoken in one go with the silence after it: upstream's sentences with ``pause_s`` between
        them, or (with ``request.pauses``) clauses cut at the mapped marks with each mark's pause."""
        from studio.text.reading import split_for_speech

        if request.pauses is not None:
            return pieces_with_pauses(request.text, request.lang, request.split, request.pauses)
        sentences = split_for_speech(request.text, request.lang, request.split)
        return [Piece(s, request.pause_s if i < len(sentences) - 1 else 0.0) for i, s in enumerate(sentences)]

    def stream(
        self,
        request: SynthesisRequest,
        *,
        on_tokens: Callable[[int, list[int]], None] | None = None,
    ) -> Iterator[AudioChunk]:
        """Yield audio sentence by sentence (or every ``stream_tokens`` tokens inside a sentence).

        The last chunk of each sentence but the final one ends with the pause that follows it.
        """
        request = request.validated()
        seed = _resolve_seed(request.seed)
        pieces = self.pieces(request)
        sentences = [p.text for p in pieces]
        feats = [self.text_features(s, request.lang, request.lexicon) for s in sentences]  # fail early on bad text
        prompt = self.reference_prompt(request)
        generator = torch.Generator(device=self.models.device).manual_seed(seed)

        def chunk(index: int, audio: np.ndarray, is_end: bool, attempts: int = 1) -> AudioChunk:
            if is_end and pieces[index].pause_s > 0:
                audio = np.concatenate([audio, silence(pieces[index].pause_s, OUTPUT_SAMPLE_RATE)])
            return AudioChunk(audio, OUTPUT_SAMPLE_RATE, index, sentences[index], is_end, attempts)

        if request.stream_tokens > 0:
            for index, feat in enumerate(feats):
                for audio, is_end in self._stream_sentence(index, feat, prompt, request, generator, on_tokens):
                    yield chunk(index, audio, is_end)
            return
        for start in range(0, len(feats), request.batch_size):
            group = list(range(start, min(start + request.batch_size, len(feats))))
            token_lists = self._generate_group([feats[i] for i in group], prompt, request, generator)
            for index, tokens in zip(group, token_lists, strict=True):
                tokens, attempts = self._retry_implausible(tokens, feats[index], prompt, request, generator)
                if on_tokens:
                    on_tokens(index, tokens)
                audio = self.decode_tokens(tokens, feats[index], prompt, request, generator)
                yield chunk(index, audio, True, attempts)

    def _retry_implausible(
        self,
        tokens: list[int],
        feat: TextFeatures,
        prompt: ReferencePrompt,
        request: SynthesisRequest,
        generator: torch.Generator,
    ) -> tuple[list[int], int]:
        """Re-generate while the length is implausible (up to ``request.length_retries`` times); the most
        plausible try wins, the earliest among equals. Returns (tokens, number of tries)."""
        n_phones = len(feat.phone_ids)
        best, best_gap, attempts = tokens, length_gap(n_phones, len(tokens)), 1
        while best_gap > 0 and attempts <= request.length_retries:
            attempts += 1
            candidate = self.generate_tokens(feat, prompt, request, generator)
            gap = length_gap(n_phones, len(candidate))
            if gap < best_gap:
                best, best_gap = candidate, gap
        if attempts > 1:
            _LOGGER.info(
                "sentence %r: %d tries for a plausible length (%d phones → %d tokens)",
                feat.norm_text[:40],
                attempts,
                n_phones,
                len(best),
            )
        return best, attempts

    def _generate_group(
        self, feats: list[TextFeatures], prompt: ReferencePrompt, request: SynthesisRequest, generator: torch.Generator
    ) -> list[list[int]]:
        """Tokens for several sentences; more than one → upstream's batched decoding with a shared prompt."""
        if len(feats) == 1 or prompt.prompt_tokens is None:
            return [self.generate_tokens(f, prompt, request, generator) for f in feats]
        from studio.models.generate import generate_semantic_batch

        def generate() -> list:
            inputs = [self._gpt_inputs(f, prompt) for f in feats]  # each (phone ids, BERT, prompt tokens)
            return generate_semantic_batch(
                self.models.gpt,
                [(phone_ids, bert) for phone_ids, bert, _ in inputs],
                inputs[0][2],
                **self._sampling_kwargs(request),
                generator=generator,
            )

        results = self.on_models(generate)
        return [[int(t) for t in r.tokens] for r in results]

    def _sampling_kwargs(self, request: SynthesisRequest) -> dict:
        return {
            "top_k": request.top_k,
            "top_p": request.top_p,
            "temperature": request.temperature,
            "repetition_penalty": request.repetition_penalty,
            "early_stop_num": EARLY_STOP_TOKENS,
            "max_steps": request.max_tokens_per_sentence,
        }

    def _stream_sentence(
        self,
        index: int,
        feat: TextFeatures,
        prompt: ReferencePrompt,
        request: SynthesisRequest,
        generator: torch.Generator,
        on_tokens: Callable[[int, list[int]], None] | None,
    ) -> Iterator[tuple[np.ndarray, bool]]:
        """Audio of one sentence while its tokens are still being generated.

        Each new token chunk is decoded together with ``STREAM_CONTEXT_TOKENS`` already-emitted tokens of left
        context; the audio of the newest token is held back and cross-faded into the next chunk's decode, so the
        joins are smooth even though later tokens slightly change earlier audio.
        """
        from studio.models.generate import stream_semantic

        tokens: list[int] = []
        emitted_tokens = 0  # tokens whose audio has been yielded (except the held-back tail)
        tail = np.zeros(0, dtype=np.float32)
        chunks = stream_semantic(
            self.models.gpt,
            *compute_thread.run(self._gpt_inputs, feat, prompt),
            chunk_size=request.stream_tokens,
            **self._sampling_kwargs(request),
            generator=generator,
            cut_at_silence=request.stream_at_silence,
            first_chunk_size=FIRST_STREAM_TOKENS,
        )
        while True:
            # The lock is held only while the model works, never across a yield: a caller that abandons the
            # stream cannot block other requests. The KV cache belongs to this generator alone.
            piece = self.on_models(lambda: next(chunks, None))
            if piece is None:
                break
            tokens.extend(int(t) for t in piece.tokens)
            if not tokens or (not piece.final and len(tokens) - emitted_tokens < 2):
                continue
            ctx = max(0, emitted_tokens - STREAM_CONTEXT_TOKENS)
            audio = self.decode_tokens(tokens[ctx:], feat, prompt, request, generator)
            per_token = len(audio) / (len(tokens) - ctx)
            start = int(round((emitted_tokens - ctx) * per_token))
            end = len(audio) if piece.final else int(round((len(tokens) - 1 - ctx) * per_token))
            fresh = audio[start:end]  # starts at the held-back token, which `tail` also covers
            out = _crossfade(tail, fresh)
            tail = np.zeros(0, dtype=np.float32) if piece.final else audio[end:]
            emitted_tokens = len(tokens) if piece.final else len(tokens) - 1
            yield out, piece.final
        if on_tokens:
            on_tokens(index, tokens)

    def synthesize(self, request: SynthesisRequest) -> SynthesisResult:
        """The whole utterance: exactly the concatenation of :meth:`stream`."""
        seed = _resolve_seed(request.seed)
        request = request.with_seed(seed)
        tokens: list[list[int]] = []
        start = time.perf_counter()
        first_audio = None
        pieces = []
        sentences: dict[int, str] = {}
        attempts: dict[int, int] = {}
        for chunk in self.stream(request, on_tokens=lambda _i, t: tokens.append(t)):
            if first_audio is None:
                first_audio = time.perf_counter() - start
            pieces.append(chunk.audio)
            sentences[chunk.sentence_index] = chunk.text
            if chunk.is_sentence_end:
                attempts[chunk.sentence_index] = chunk.attempts
        audio = np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.float32)
        return SynthesisResult(
            audio=audio.astype(np.float32),
            sample_rate=OUTPUT_SAMPLE_RATE,
            sentences=[sentences[i] for i in sorted(sentences)],
            seed=seed,
            semantic_tokens=tokens,
            attempts=[attempts[i] for i in sorted(attempts)],
            pauses_s=[p.pause_s for p in self.pieces(request)],
            timings={"total_s": time.perf_counter() - start, "first_audio_s": first_audio or 0.0},
        )


def _crossfade(tail: np.ndarray, fresh: np.ndarray) -> np.ndarray:
    """Blend ``tail`` (held-back audio) into the first ``len(tail)`` samples of ``fresh`` (same time span)."""
    n = min(len(tail), len(fresh))
    if n == 0:
        return np.concatenate([tail, fresh]).astype(np.float32)
    ramp = np.linspace(0.0, 1.0, n, dtype=np.float32)
    head = tail[:n] * (1.0 - ramp) + fresh[:n] * ramp
    return np.concatenate([head, fresh[n:]]).astype(np.float32)


def _resolve_seed(seed: int | None) -> int:
    return seed if seed is not None and seed >= 0 else random.randrange(2**31)
