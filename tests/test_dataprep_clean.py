"""Cleaning: denoise raises the SNR of the noisy take; loudness lands on target; DC is removed; peaks limited."""

from __future__ import annotations

import numpy as np
import pytest

from studio.audio.io import load_audio
from studio.audio.silence import estimate_snr
from studio.dataprep.clean import CleanConfig, clean_audio, integrated_loudness, true_peak_db
from studio.errors import AudioError


@pytest.fixture(scope="module")
def noisy(voices):
    return load_audio(voices / "raw_take" / "raw_take_noisy.wav")


def test_denoise_raises_estimated_snr(noisy):
    audio, sr = noisy
    _, plain = clean_audio(audio, sr, CleanConfig(denoise=0.0))
    _, denoised = clean_audio(audio, sr, CleanConfig(denoise=0.8))
    assert denoised.snr_after_db >= plain.snr_after_db + 6.0, (plain.snr_after_db, denoised.snr_after_db)
    assert denoised.snr_after_db >= denoised.snr_before_db + 6.0


@pytest.mark.parametrize(
    ("file", "target"),
    [("raw_take/raw_take.wav", -23.0), ("raw_take/raw_take_noisy.wav", -16.0), ("bad/clipped_20db.wav", -20.0)],
)
def test_loudness_within_one_lu_and_true_peak_limited(voices, file, target):
    audio, sr = load_audio(voices / file)
    cfg = CleanConfig(target_lufs=target, true_peak_dbtp=-1.0)
    out, report = clean_audio(audio, sr, cfg)
    measured = integrated_loudness(out, cfg.sample_rate)
    assert abs(measured - target) <= 1.0
    assert abs(report.loudness_after_lufs - measured) < 1e-6
    assert true_peak_db(out, cfg.sample_rate) <= -1.0 + 0.1
    assert report.sample_rate_out == cfg.sample_rate and len(out) == pytest.approx(
        len(audio) * cfg.sample_rate / sr, abs=2
    )


def test_dc_offset_removed():
    sr = 16000
    t = np.arange(3 * sr) / sr
    audio = (0.3 * np.sin(2 * np.pi * 200 * t) * (t % 1 < 0.6) + 0.2).astype(np.float32)
    out, report = clean_audio(audio, sr, CleanConfig(sample_rate=sr, target_lufs=None))
    assert report.dc_offset == pytest.approx(np.mean(audio), abs=1e-4)
    assert abs(float(np.mean(out))) < 1e-3
    assert estimate_snr(out, sr) > 20


def test_silence_is_refused():
    with pytest.raises(AudioError, match="silent"):
        clean_audio(np.zeros(32000, dtype=np.float32), 32000)
