"""Typed records of the synthesis API: what the caller asks for and what comes back."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from studio.errors import StudioError
from studio.inference.pauses import PauseMap
from studio.text.user_lexicon import UserLexicon

OUTPUT_SAMPLE_RATE = 32000
MAX_TIMBRE_REFERENCES = 8
SEED_MAX = 2**32 - 1  # what every seeded generator here (torch, numpy, random) accepts alike


@dataclass(frozen=True)
class SynthesisRequest:
    """Everything one synthesis needs. Defaults follow upstream's api_v2 / WebUI defaults.

    * ``reference``: a 3–10 s clip of the voice (zero-shot prompt and timbre); ``aux_references`` are
      averaged into the timbre only. ``ref_text`` empty → reference-free mode (timbre only; best with a
      fine-tuned GPT).
    * Style apart from timbre: ``style_reference`` (3–10 s, with its transcript ``style_ref_text`` in
      ``style_ref_lang``) replaces ``reference`` as the GPT prompt: its semantic tokens and its transcript's
      phones/BERT features set pace, emotion and prosody. ``timbre_references`` ((clip, weight), …) replace
      ``reference`` as the SoVITS conditioning: ge = Σ wᵢ·geᵢ / Σ wᵢ over their per-clip vectors (after the
      speaker-verification PReLU on v2Pro/v2ProPlus, where upstream averages); ``aux_references`` join either
      set with weight 1 each. Both unset: ``reference`` does both, exactly as upstream.
    * ``pauses``: a :class:`~studio.inference.pauses.PauseMap`: the text is cut into clauses at its marks and
      each clause is followed by its mark's silence (paragraph breaks get their own). ``None``: ``pause_s``
      between sentences only, as upstream's ``fragment_interval``.
    * ``energy``: scales the output's loudness contour around its mean (1.0 = unchanged, 0 = flat,
      > 1 = livelier); applied after decoding, per sentence.
    * ``seed``: ``None`` or a negative value picks a random seed (reported in the result).
    * ``length_retries``: re-generate a sentence up to this many times when its length is implausible for
      its text (outside 3–25 phones per second: words skipped or repeated) and keep the most plausible try.
      0 = upstream's behaviour. Not applied while streaming inside a sentence (its audio is already out).
    """

    text: str
    lang: str = "auto"
    reference: Path | None = None
    ref_text: str = ""
    ref_lang: str = "auto"
    aux_references: tuple[Path, ...] = ()
    style_reference: Path | None = None  # None: ``reference`` prompts the GPT
    style_ref_text: str = ""
    style_ref_lang: str = "auto"
    timbre_references: tuple[tuple[Path, float], ...] = ()  # empty: ``reference`` (+ aux) conditions SoVITS
    pauses: PauseMap | None = None
    top_k: int | None = 15
    top_p: float = 1.0
    temperature: float = 1.0
    repetition_penalty: float = 1.35
    speed: float = 1.0
    noise_scale: float = 0.5
    energy: float = 1.0
    pause_s: float = 0.3
    split: str = "cut1"
    batch_size: int = 1
    seed: int | None = None
    auto_trim_reference: bool = False
    max_tokens_per_sentence: int = 1500
    stream_tokens: int = 0  # > 0: also stream inside a sentence, every N semantic tokens
    stream_at_silence: bool = False  # with stream_tokens: cut chunks at pause-like tokens (upstream mode 2)
    length_retries: int = 0
    lexicon: UserLexicon | None = None  # the user's own pronunciations, applied to ``text`` (not the reference)

    def validated(self) -> SynthesisRequest:
        """Check ranges; raise a clear :class:`StudioError` naming the bad setting."""
        checks = [
            (self.top_k is None or 1 <= self.top_k <= 1025, "top_k must be between 1 and 1025"),
            (0.0 < self.top_p <= 1.0, "top_p must be in (0, 1]"),
            (0.0 <= self.temperature <= 2.0, "temperature must be between 0 and 2"),
            (0.0 < self.repetition_penalty <= 4.0, "repetition_penalty must be in (0, 4]"),
            (0.25 <= self.speed <= 4.0, "speed must be between 0.25 and 4"),
            (0.0 <= self.noise_scale <= 2.0, "noise_scale must be between 0 and 2"),
            (0.0 <= self.energy <= 3.0, "energy must be between 0 and 3"),
            (0.0 <= self.pause_s <= 5.0, "pause_s must be between 0 and 5 seconds"),
            (1 <= self.batch_size <= 64, "batch_size must be between 1 and 64"),
            (1 <= self.max_tokens_per_sentence <= 1500, "max_tokens_per_sentence must be 1–1500"),
            (self.stream_tokens >= 0, "stream_tokens must be ≥ 0"),
            (0 <= self.length_retries <= 10, "length_retries must be between 0 and 10"),
            (self.seed is None or self.seed <= SEED_MAX, f"seed must be between 0 and {SEED_MAX} (-1 = random)"),
        ]
        for ok, message in checks:
            if not ok:
                raise StudioError(f"Invalid setting: {message}.")
        self.check_direction()
        return self

    def check_direction(self) -> None:
        """Style and timbre references: refusals in words (a style clip without its words, bad weights)."""
        if self.style_reference is not None and not self.style_ref_text.strip():
            raise StudioError(
                f"The style clip {Path(self.style_reference).name} has no transcript.",
                hint="Give the words spoken in the style clip (style_ref_text / --style-ref-text).",
            )
        if len(self.timbre_references) > MAX_TIMBRE_REFERENCES:
            raise StudioError(f"Invalid setting: at most {MAX_TIMBRE_REFERENCES} timbre references can be mixed.")
        weights = [w for _, w in self.timbre_references]
        if any(not isinstance(w, (int, float)) or not math.isfinite(w) or w < 0 for w in weights):
            raise StudioError(
                f"Invalid setting: a timbre weight must be a number ≥ 0 (got {', '.join(map(str, weights))}).",
                hint="Weights are relative shares, e.g. 1 and 3 for a quarter and three quarters.",
            )
        if weights and sum(weights) <= 0:
            raise StudioError(
                "Invalid setting: the timbre weights are all 0, so there is no voice to mix.",
                hint="Give at least one timbre reference a weight above 0.",
            )

    def with_seed(self, seed: int) -> SynthesisRequest:
        return replace(self, seed=seed)


@dataclass(frozen=True)
class AudioChunk:
    """A piece of the output stream: float32 mono samples in [-1, 1] at ``sample_rate``."""

    audio: np.ndarray
    sample_rate: int
    sentence_index: int
    text: str
    is_sentence_end: bool = True
    attempts: int = 1  # GPT tries this sentence took (> 1 when its first length was implausible)


@dataclass
class SynthesisResult:
    """The whole output: the concatenation of the stream, plus what produced it."""

    audio: np.ndarray
    sample_rate: int
    sentences: list[str]
    seed: int
    semantic_tokens: list[list[int]] = field(default_factory=list)
    attempts: list[int] = field(default_factory=list)  # per sentence, see ``SynthesisRequest.length_retries``
    pauses_s: list[float] = field(default_factory=list)  # per sentence (clause with a pause map): silence after it
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def duration_s(self) -> float:
        return len(self.audio) / self.sample_rate

    def to_int16(self) -> np.ndarray:
        return (np.clip(self.audio, -1.0, 1.0) * 32767.0).astype(np.int16)
