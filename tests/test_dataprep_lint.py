"""Lint flags the broken clips in voices/bad and picks a sensible reference clip."""

from __future__ import annotations

import csv
from pathlib import Path

from studio.corpus import DatasetEntry, read_list
from studio.dataprep.lint import ERROR, lint_dataset, pick_reference

EXPECTED = {
    "clipped_20db.wav": "clipping",
    "silent_2s.wav": "silent",
    "long_30s.wav": "too_long",
    "short_0.3s.wav": "too_short",
    "not_audio.wav": "unreadable",
    "empty.wav": "unreadable",
    "zero_frames.wav": "unreadable",
}


def _bad_entries(voices):
    with open(voices / "bad" / "defects.csv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return [DatasetEntry(Path(voices / "bad" / r["file"]), "bad", "en", r["text"] or "-") for r in rows]


def test_bad_clips_are_flagged(voices):
    report = lint_dataset(_bad_entries(voices))
    for name, code in EXPECTED.items():
        assert code in report.codes(name), (name, report.for_clip(name))
        assert all(f.fix for f in report.for_clip(name))
    assert not any(f.severity == ERROR for f in report.for_clip("8khz_8bit.wav"))
    assert report.usable_minutes < 0.2


def test_clean_set_passes_and_reference_is_picked(voices, tmp_path):
    entries = read_list(voices / "en_joe" / "dataset.list")
    asr = {e.name: {"language": "en", "language_probability": 0.99, "avg_logprob": -0.2} for e in entries}
    asr[entries[0].name] = {"language": "ja", "language_probability": 0.9, "avg_logprob": -1.5}
    dup = DatasetEntry(tmp_path / "copy.wav", "x", "en", entries[1].text.upper() + "!")
    dup.audio_path.write_bytes(entries[2].audio_path.read_bytes())
    report = lint_dataset([*entries, DatasetEntry(entries[3].audio_path, "x", "zh", entries[3].text)], asr)
    assert not report.errors
    assert {"language_mismatch", "low_confidence"} <= report.codes(entries[0].name)
    assert "language_mismatch" in report.codes(entries[3].name)
    assert report.usable_minutes > 0.9
    pick = pick_reference(entries, report, asr)
    assert pick is not None and 3.0 <= pick.duration_s <= 10.0
    assert Path(pick.audio_path).name != entries[0].name and pick.reasons
    assert "duplicate_text" in lint_dataset([entries[1], dup]).codes("copy.wav")


def test_a_transcript_that_does_not_fit_its_clip_is_flagged(voices, tmp_path):
    """Whisper hallucinations and mis-cut slices: the text is far too long or short for the audio."""
    import shutil

    entries = read_list(voices / "en_joe" / "dataset.list")
    first, second = entries[0], entries[1]
    shutil.copyfile(first.audio_path, tmp_path / "long_text.wav")
    shutil.copyfile(second.audio_path, tmp_path / "short_text.wav")
    too_long = DatasetEntry(tmp_path / "long_text.wav", "x", "en", " ".join([first.text] * 8))
    too_short = DatasetEntry(tmp_path / "short_text.wav", "x", "en", "Hi.")
    report = lint_dataset([first, too_long, too_short])
    assert "text_length_mismatch" not in report.codes(first.name)  # the true transcript fits
    (long_finding,) = [f for f in report.for_clip("long_text.wav") if f.code == "text_length_mismatch"]
    (short_finding,) = [f for f in report.for_clip("short_text.wav") if f.code == "text_length_mismatch"]
    assert "training skips" in long_finding.message and long_finding.fix
    assert "not written down" in short_finding.message and short_finding.fix
