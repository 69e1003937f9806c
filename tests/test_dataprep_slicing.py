"""The slicer on the long take: cuts land at the true sentence boundaries; caps and names behave."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from studio.audio.io import load_audio
from studio.dataprep.clean import CleanConfig, clean_audio
from studio.dataprep.slicing import SlicerConfig, parse_slice_name, slice_audio

TOLERANCE_S = 0.3


def _segments(voices, column=None):
    with open(voices / "raw_take" / "segments.csv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return [(float(r["start_s"]), float(r["end_s"])) for r in rows if column is None or r[column] == "1"]


def recovered(slices, truth, keep_s):
    """True utterances whose slice starts and ends within 0.3 s of the boundary (plus the silence the slicer keeps)."""
    hits = 0
    for start, end in truth:
        if any(
            start - keep_s - TOLERANCE_S <= s.start_s <= start + TOLERANCE_S
            and end - TOLERANCE_S <= s.end_s <= end + keep_s + TOLERANCE_S
            for s in slices
        ):
            hits += 1
    return hits


@pytest.mark.parametrize(
    ("file", "denoise", "subset"),
    [
        ("raw_take.wav", 0.0, None),
        ("raw_take_noisy.wav", 0.0, None),
        ("raw_take_noisy.wav", 0.8, None),
        ("raw_take_48k_stereo.wav", 0.0, "in_48k_stereo"),
    ],
)
def test_long_take_is_cut_at_true_boundaries(voices, file, denoise, subset):
    audio, sr = load_audio(voices / "raw_take" / file)
    clean, _ = clean_audio(audio, sr, CleanConfig(denoise=denoise))
    cfg = SlicerConfig()
    slices = slice_audio(clean, CleanConfig().sample_rate, cfg)
    truth = _segments(voices, subset)
    hits = recovered(slices, truth, cfg.max_sil_kept_ms / 1000)
    assert hits >= len(truth) - 1, f"{hits}/{len(truth)} utterances recovered within {TOLERANCE_S} s"
    assert all(s.duration_s <= cfg.max_length_ms / 1000 for s in slices)


def test_hard_cap_and_stable_names():
    sr = 16000
    rng = np.random.default_rng(0)
    speech = (0.3 * rng.standard_normal(25 * sr)).astype(np.float32)  # 25 s with no pause at all
    speech[12 * sr : 12 * sr + 800] *= 0.001  # one short dip: the quietest point
    cfg = SlicerConfig()
    slices = slice_audio(speech, sr, cfg)
    assert len(slices) >= 3 and all(s.duration_s <= cfg.max_length_ms / 1000 for s in slices)
    assert slices[0].start == 0 and slices[-1].end == len(speech)
    assert all(a.end == b.start for a, b in zip(slices, slices[1:], strict=False))
    names = [s.file_name("my take") for s in slices]
    assert names == [s.file_name("my take") for s in slice_audio(speech, sr, cfg)]
    assert [parse_slice_name(n) for n in names] == [("my_take", s.start, s.end) for s in slices]


def test_short_phrases_are_merged_and_silence_gives_nothing():
    sr = 16000
    rng = np.random.default_rng(1)
    parts = []
    for _ in range(6):  # six 1.2 s phrases with 0.5 s pauses: each alone is under the 4 s minimum
        parts += [0.3 * rng.standard_normal(int(1.2 * sr)), np.zeros(int(0.5 * sr))]
    audio = np.concatenate(parts).astype(np.float32)
    slices = slice_audio(audio, sr)
    assert 1 <= len(slices) <= 3
    assert all(s.duration_s >= 3.5 for s in slices)
    assert slice_audio(np.zeros(sr * 3, dtype=np.float32), sr) == []
