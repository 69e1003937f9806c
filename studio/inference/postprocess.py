"""Signal-level touches applied to each decoded sentence: peak safety and the energy control."""

from __future__ import annotations

import numpy as np

ENERGY_FRAME_S = 0.02  # loudness contour resolution
ENERGY_FLOOR_DB = -60.0  # frames quieter than this (pauses) are left alone


def normalize_peak(audio: np.ndarray) -> np.ndarray:
    """Upstream rule: if the sentence peaks above 1.0, divide by its peak."""
    peak = float(np.abs(audio).max()) if audio.size else 0.0
    return audio / peak if peak > 1.0 else audio


def apply_energy(audio: np.ndarray, energy: float, sample_rate: int) -> np.ndarray:
    """Scale the loudness contour of ``audio`` around its mean level, in decibels.

    The short-time RMS level L(t) (20 ms frames, voiced frames only) is mapped to
    ``mean + energy · (L(t) − mean)``: 1.0 leaves the audio untouched, 0 flattens the dynamics to an even
    level, values above 1 exaggerate emphasis. The gain curve is interpolated per sample, so no clicks
    are introduced, and the result is peak-limited to ±1.
    """
    if energy == 1.0 or audio.size == 0:
        return audio
    hop = max(1, int(sample_rate * ENERGY_FRAME_S))
    n_frames = int(np.ceil(audio.size / hop))
    padded = np.pad(audio.astype(np.float64), (0, n_frames * hop - audio.size))
    rms = np.sqrt(np.mean(padded.reshape(n_frames, hop) ** 2, axis=1) + 1e-12)
    level_db = 20.0 * np.log10(rms)
    voiced = level_db > ENERGY_FLOOR_DB
    if not voiced.any():
        return audio
    mean_db = float(level_db[voiced].mean())
    gain_db = np.where(voiced, (energy - 1.0) * (level_db - mean_db), 0.0)
    centers = (np.arange(n_frames) + 0.5) * hop
    gain = 10.0 ** (np.interp(np.arange(audio.size), centers, gain_db) / 20.0)
    out = audio * gain.astype(np.float32)
    peak = float(np.abs(out).max())
    return (out / peak * 0.999).astype(np.float32) if peak > 1.0 else out.astype(np.float32)


def silence(seconds: float, sample_rate: int) -> np.ndarray:
    return np.zeros(int(round(seconds * sample_rate)), dtype=np.float32)
