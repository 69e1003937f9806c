"""Level analysis: frame RMS in dB, silent runs, leading/trailing silence, and a blind SNR estimate.

All levels are dB relative to full scale (a full-scale sine has RMS ≈ −3 dB). Frames are centred on
``i · hop`` samples (the signal is reflect-padded by half a window on each side).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

EPS_DB = -120.0


def frame_rms_db(audio: np.ndarray, hop: int, win: int | None = None) -> np.ndarray:
    """RMS level of each frame in dB: ``(T,)`` → ``(ceil(T / hop),)``; ``win`` defaults to ``2 · hop``."""
    x = np.asarray(audio, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError("frame_rms_db expects mono audio")
    win = int(win or 2 * hop)
    n_frames = max(1, -(-x.shape[0] // hop))
    half = win // 2
    padded = np.pad(x, (half, half + n_frames * hop), mode="constant")
    # running sum of squares gives every window's energy in O(T)
    csum = np.concatenate(([0.0], np.cumsum(padded * padded)))
    starts = np.arange(n_frames) * hop
    energy = (csum[starts + win] - csum[starts]) / win
    return np.maximum(10.0 * np.log10(np.maximum(energy, 1e-30)), EPS_DB)


def silent_runs(levels_db: np.ndarray, threshold_db: float) -> list[tuple[int, int]]:
    """Runs ``[start, end)`` of consecutive frames below ``threshold_db``."""
    quiet = np.concatenate(([False], levels_db < threshold_db, [False]))
    edges = np.flatnonzero(quiet[1:] != quiet[:-1])
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2], strict=True)]


def edge_silence_s(audio: np.ndarray, sample_rate: int, threshold_db: float = -40.0) -> tuple[float, float]:
    """Seconds of silence (frames below ``threshold_db``, 10 ms hop) before the first and after the last sound."""
    hop = max(1, sample_rate // 100)
    levels = frame_rms_db(audio, hop)
    loud = np.flatnonzero(levels >= threshold_db)
    duration = len(audio) / sample_rate
    if loud.size == 0:
        return duration, duration
    lead = loud[0] * hop / sample_rate
    trail = max(0.0, duration - (loud[-1] + 1) * hop / sample_rate)
    return float(lead), float(trail)


@dataclass(frozen=True)
class LevelStats:
    """Blind level estimate of a recording."""

    speech_db: float  # mean level of the loud frames
    noise_db: float  # mean level of the quietest frames (the noise floor)
    snr_db: float  # speech_db − noise_db, capped at ``cap_db`` (digital silence between words)
    active_fraction: float  # share of frames within 20 dB of the speech level


def level_stats(audio: np.ndarray, sample_rate: int, *, cap_db: float = 60.0) -> LevelStats:
    """Estimate speech level, noise floor and SNR from 20 ms frames.

    The noise floor is the mean power of the quietest 10 % of frames (pauses between words); the
    speech level the mean power of the loudest 30 %. A noise floor of digital silence caps the SNR at
    ``cap_db``.
    """
    hop = max(1, int(sample_rate * 0.02))
    levels = frame_rms_db(audio, hop, win=hop)
    power = np.sort(10.0 ** (levels / 10.0))
    n = power.size
    noise = float(np.mean(power[: max(1, n // 10)]))
    speech = float(np.mean(power[-max(1, (3 * n) // 10) :]))
    speech_db = 10.0 * np.log10(max(speech, 1e-12))
    noise_db = 10.0 * np.log10(max(noise, 1e-12))
    signal = max(speech - noise, 1e-12)
    snr = min(cap_db, 10.0 * np.log10(signal / max(noise, 1e-12)))
    active = float(np.mean(levels > speech_db - 20.0))
    return LevelStats(float(speech_db), float(noise_db), float(snr), active)


def estimate_snr(audio: np.ndarray, sample_rate: int) -> float:
    """Blind SNR estimate in dB (see :func:`level_stats`)."""
    return level_stats(audio, sample_rate).snr_db
