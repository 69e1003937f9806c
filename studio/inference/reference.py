"""Reference clip → everything the models need from it (prompt tokens, timbre spectrograms, SV features).

A :class:`ReferencePrompt` is computed once per (clip, text, language) and reused across requests;
the cache is owned by the :class:`~studio.inference.synthesizer.Synthesizer` instance, keyed by the file's
identity and content, never a process-wide "last reference".

The timbre chain is upstream's (``TTS._get_ref_spec``), for every version: decode → mean of the
channels → windowed-sinc resampling to 32 kHz (torchaudio's resampler, :func:`sinc_resample`) → if the
peak exceeds 1, divide by ``min(2, peak)`` → linear spectrogram; for v2Pro/v2ProPlus the same
normalised 32 kHz audio is resampled to 16 kHz for the speaker-verification model. The HuBERT input
(``wav16k``) stays librosa-style soxr resampling of the decoded clip, as upstream loads it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from studio.audio.io import load_audio, resample
from studio.audio.resample import sinc_resample
from studio.audio.spectrogram import linear_spectrogram
from studio.errors import ReferenceAudioError

if TYPE_CHECKING:
    from studio.models.speaker_verification import SpeakerVerifier

_LOGGER = logging.getLogger(__name__)

MIN_REFERENCE_S = 3.0
MAX_REFERENCE_S = 10.0
SILENT_RMS = 1e-3  # about −60 dBFS: nothing a person could hear as speech
TIMBRE_SAMPLE_RATE = 32000
MAX_PEAK_DIVISOR = 2.0


@dataclass
class ReferenceAudio:
    """The clip at the two rates the models need, after checks (and optional trimming)."""

    wav16k: np.ndarray  # (N16,) float32 mono: content encoder input (soxr, as librosa.load)
    wav32k: np.ndarray  # (N32,) float32 mono, not peak-normalised: timbre input (windowed-sinc resampled)
    path: Path
    trimmed: bool = False

    @property
    def duration_s(self) -> float:
        return len(self.wav16k) / 16000


@dataclass
class ReferencePrompt:
    """What the references contribute to a synthesis: the *style* clip's tokens and transcript prompt the GPT
    (pace, emotion, prosody); the *timbre* clips' spectrograms (and SV embeddings) condition SoVITS."""

    prompt_tokens: torch.Tensor | None  # (1, P) semantic ids, None in reference-free mode
    prompt_phone_ids: list[int]  # phones of the reference transcript ([] in reference-free mode)
    prompt_bert: torch.Tensor | None  # (1024, len(prompt_phone_ids))
    specs: list[torch.Tensor]  # each (1, 1025, T_spec): the timbre references (main first, then aux)
    sv_embeddings: list[torch.Tensor] | None = None  # v2Pro/v2ProPlus: one (1, 20480) per spec, same order
    weights: tuple[float, ...] | None = None  # one per spec, summing to 1 (a timbre mix); None = plain mean


def load_reference(path: Path, *, auto_trim: bool = False, check_length: bool = True) -> ReferenceAudio:
    """Load a reference clip, refusing what upstream refuses (outside 3–10 s) and silent clips.

    With ``auto_trim`` a clip longer than 10 s is cut to its first 10 s at the quietest point of the last
    second, instead of being refused.
    """
    path = Path(path)
    decoded, rate = load_audio(path)  # (N,) mono at the file's rate, decoded once
    wav16k = resample(decoded, rate, 16000)
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
    wav32k = reference_wav32k(decoded, rate).squeeze(0).numpy()
    if trimmed:
        wav32k = wav32k[: len(wav16k) * 2]
    return ReferenceAudio(wav16k=wav16k, wav32k=wav32k, path=path, trimmed=trimmed)


def auto_trim_point(wav: np.ndarray, sr: int, max_s: float = MAX_REFERENCE_S) -> int:
    """Where ``auto_trim`` cuts a clip longer than ``max_s`` (a sample index): the studio offers the same cut."""
    return _quiet_cut(wav, sr, max_s)


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


def reference_wav32k(audio: np.ndarray | torch.Tensor, sample_rate: int) -> torch.Tensor:
    """Decoded clip (C, N) or (N,) at ``sample_rate`` → (1, N32) float32 mono at 32 kHz (before the peak rule).

    Channels are averaged first, then resampled with :func:`sinc_resample` (nothing to do at 32 kHz).
    """
    wav = torch.as_tensor(np.asarray(audio, dtype=np.float32)) if isinstance(audio, np.ndarray) else audio.float()
    if wav.dim() == 2 and wav.shape[0] > 1:
        wav = wav.mean(dim=0)
    wav = wav.reshape(1, -1)  # (1, N)
    return sinc_resample(wav, int(sample_rate), TIMBRE_SAMPLE_RATE)  # (1, N32)


def peak_normalised(audio: torch.Tensor) -> torch.Tensor:
    """Upstream's rule, applied once: a peak above 1 is divided by ``min(2, peak)`` (so peaks > 2 stay > 1)."""
    peak = float(audio.abs().max()) if audio.numel() else 0.0
    return audio / min(MAX_PEAK_DIVISOR, peak) if peak > 1.0 else audio


def _as_audio_tensor(wav32k: np.ndarray | torch.Tensor) -> torch.Tensor:
    if isinstance(wav32k, torch.Tensor):
        return wav32k.float().reshape(1, -1)
    return torch.from_numpy(np.ascontiguousarray(wav32k, dtype=np.float32)).reshape(1, -1)  # (1, N32)


def timbre_spectrogram(wav32k: np.ndarray | torch.Tensor, device: torch.device | str = "cpu") -> torch.Tensor:
    """Linear spectrogram (1, 1025, T_spec) of a 32 kHz clip, after upstream's peak rule."""
    return linear_spectrogram(peak_normalised(_as_audio_tensor(wav32k)).to(device))


def reference_sv_embedding(
    verifier: SpeakerVerifier, wav32k: np.ndarray | torch.Tensor, name: str = "reference clip"
) -> torch.Tensor:
    """v2Pro speaker feature (1, 20480) of a 32 kHz clip: peak rule → 16 kHz (windowed sinc) → fbank → network.

    A clip shorter than one fbank frame (25 ms) raises :class:`ReferenceAudioError` naming ``name``.
    """
    audio = peak_normalised(_as_audio_tensor(wav32k))  # (1, N32)
    wav16k = sinc_resample(audio, TIMBRE_SAMPLE_RATE, verifier.sample_rate)  # (1, N16)
    if wav16k.shape[-1] < verifier.min_samples:
        raise ReferenceAudioError(
            f"The {name} is too short for the voice-similarity model: it lasts "
            f"{1000 * audio.shape[-1] / TIMBRE_SAMPLE_RATE:.0f} ms, and at least "
            f"{1000 * verifier.min_samples / verifier.sample_rate:.0f} ms are needed.",
            hint="Use a clip of a few seconds of clear speech.",
        )
    return verifier.embed(wav16k)  # (1, 20480)
