"""Reference clip → everything the models need from it (prompt tokens, timbre spectrograms).

A :class:`ReferencePrompt` is computed once per (clip, text, language) and reused across requests;
the cache is owned by the :class:`~studio.inference.synthesizer.Synthesizer` instance, keyed by the file's
identity and content, never a process-wide "last reference".
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from studio.audio.io import load_audio
from studio.audio.spectrogram import linear_spectrogram
from studio.errors import ReferenceAudioError

_LOGGER = logging.getLogger(__name__)

MIN_REFERENCE_S = 3.0
MAX_REFERENCE_S = 10.0
SILENT_RMS = 1e-3  # about −60 dBFS: nothing a person could hear as speech


@dataclass
class ReferenceAudio:
    """The clip at the two rates the models need, after checks (and optional trimming)."""

    wav16k: np.ndarray  # (N16,) float32 mono: content encoder input
    wav32k: np.ndarray  # (N32,) float32 mono: timbre spectrogram input
    path: Path
    trimmed: bool = False

    @property
    def duration_s(self) -> float:
        return len(self.wav16k) / 16000


@dataclass
class ReferencePrompt:
    """What one reference contributes to a synthesis."""

    prompt_tokens: torch.Tensor | None  # (1, P) semantic ids, None in reference-free mode
    prompt_phone_ids: list[int]  # phones of the reference transcript ([] in reference-free mode)
    prompt_bert: torch.Tensor | None  # (1024, len(prompt_phone_ids))
    specs: list[torch.Tensor]  # each (1, 1025, T_spec): main reference first, then aux references


def load_reference(path: Path, *, auto_trim: bool = False, check_length: bool = True) -> ReferenceAudio:
    """Load a reference clip, refusing what upstream refuses (outside 3–10 s) and silent clips.

    With ``auto_trim`` a clip longer than 10 s is cut to its first 10 s at the quietest point of the last
    second, instead of being refused.
    """
    path = Path(path)
    wav16k, _ = load_audio(path, 16000)
    duration = len(wav16k) / 16000
    rms = float(np.sqrt(np.mean(wav16k.astype(np.float64) ** 2))) if wav16k.size else 0.0
    if rms < SILENT_RMS:
        raise ReferenceAudioError(
            f"The reference clip {path.name} is silent.", hint="Choose a 3–10 s clip of clear speech."
        )
    trimmed = False
    if check_length and duration > MAX_REFERENCE_S and auto_trim:
        cut = _quiet_cut(wav16k, 16000, MAX_REFERENCE_S)
        wav16k, trimmed = wav16k[:cut], True
        duration = len(wav16k) / 16000
    if check_length and not (MIN_REFERENCE_S <= duration <= MAX_REFERENCE_S):
        raise ReferenceAudioError(
            f"The reference clip {path.name} is {duration:.1f} s long; it must be between "
            f"{MIN_REFERENCE_S:g} and {MAX_REFERENCE_S:g} seconds.",
            hint="Pick another clip, or turn on automatic trimming for long clips."
            if duration > MAX_REFERENCE_S
            else "Pick a longer clip (a full sentence of 3–10 s works best).",
        )
    wav32k, _ = load_audio(path, 32000)
    if trimmed:
        wav32k = wav32k[: len(wav16k) * 2]
    return ReferenceAudio(wav16k=wav16k, wav32k=wav32k, path=path, trimmed=trimmed)


def _quiet_cut(wav: np.ndarray, sr: int, max_s: float) -> int:
    """Sample index ≤ max_s where the last second before it is quietest (20 ms frames)."""
    end = int(max_s * sr)
    start = max(0, end - sr)
    hop = sr // 50
    window = wav[start:end]
    n = len(window) // hop
    if n == 0:
        return end
    energy = (window[: n * hop].reshape(n, hop) ** 2).mean(axis=1)
    return start + int(np.argmin(energy)) * hop + hop // 2


def timbre_spectrogram(wav32k: np.ndarray, device: torch.device | str = "cpu") -> torch.Tensor:
    """Linear spectrogram of a 32 kHz clip, with upstream's peak rule (peak > 1 → divide by min(2, peak))."""
    audio = torch.from_numpy(np.ascontiguousarray(wav32k, dtype=np.float32)).unsqueeze(0)
    peak = float(audio.abs().max()) if audio.numel() else 0.0
    if peak > 1.0:
        audio = audio / min(2.0, peak)
    return linear_spectrogram(audio.to(device))  # (1, 1025, T_spec)
