"""Lint a user can trust: clipping seen through loudness normalisation, doubtful transcripts flagged (real
Whisper on the real noisy take), telephone-quality input warned about, short clips after a split flagged, and
the reference pick never a clipped or doubtful clip."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from studio.audio.io import load_audio
from studio.corpus import read_list
from studio.dataprep.pipeline import PrepOptions, run_prep
from studio.dataprep.proofread import Proofreader
from studio.dataprep.transcribe import Transcript
from studio.errors import ASRModelMissingError
from studio.services.dataset_prep import DatasetPrepService
from studio.workspace import Workspace

REPO = Path(__file__).resolve().parents[1]


class TruthTranscriber:
    """Returns the true text of the en_joe clip it is given (matched by length), confidently."""

    def __init__(self, texts_by_length: dict[int, str]):
        self.texts = texts_by_length

    def transcribe(self, audio, sample_rate, language=None):
        seconds = round(len(audio) / sample_rate)
        return Transcript(self.texts.get(seconds, "hello there"), "en", 0.99, -0.1, 0.01)


def _studio(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "studio", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )


def _clipped_copy(source: Path, target: Path, gain: float = 10.0) -> float:
    """The clip made 20 dB too loud and hard-clipped at full scale, as a too-hot microphone records it."""
    audio, sr = load_audio(source)
    clipped = np.clip(audio * gain, -1.0, 1.0)
    sf.write(target, clipped, sr, subtype="PCM_16")
    return float(np.mean(np.abs(clipped) >= 0.999))


def test_cli_flags_clipping_that_normalisation_hides(voices, tmp_path):
    share = _clipped_copy(voices / "en_joe" / "clips" / "en_joe_000.wav", tmp_path / "hot.wav")
    assert share > 0.05
    done = _studio(
        "prep", "hot.wav", "--name", "hot", "--workspace", "ws", "--no-asr", "--no-slice", "--json", cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    clip_findings = [f for f in report["lint"]["findings"] if f["code"] == "clipping"]
    assert clip_findings and clip_findings[0]["severity"] == "error", report["lint"]["findings"]
    assert "original recording" in clip_findings[0]["message"] and clip_findings[0]["fix"]
    # the normalised clip on disk no longer shows flat tops: only the measurement on the import saw it
    clean, _ = load_audio(next((tmp_path / "ws" / "hot" / "slices").glob("*.wav")))
    assert np.max(np.abs(clean)) < 0.95
    summary = _studio("prep", "hot.wav", "--name", "hot2", "--workspace", "ws", "--no-asr", "--no-slice", cwd=tmp_path)
    assert "clipped" in summary.stdout


def test_reference_is_never_a_clipped_clip(voices, tmp_path):
    rows = list(csv.DictReader(open(voices / "en_joe" / "metadata.csv", encoding="utf-8")))
    src = [voices / "en_joe" / r["file"] for r in rows[:3]]
    _clipped_copy(src[0], tmp_path / "loud.wav")
    texts = {round(load_audio(p)[0].size / load_audio(p)[1]): r["text"] for p, r in zip(src, rows, strict=False)}
    ws = Workspace("mix", tmp_path / "ws")
    report = run_prep(
        [tmp_path / "loud.wav", src[1], src[2]],
        ws,
        PrepOptions(language="en", slice=False),
        transcriber=TruthTranscriber(texts),
    )
    loud = next(c.name for c in report.lint.clips if c.name.startswith("loud"))
    assert "clipping" in report.lint.codes(loud)
    assert report.reference is not None and not Path(report.reference.audio_path).name.startswith("loud")
    assert "no clipping in the original recording" in report.reference.reasons
    # the same verdicts after a reload (the service re-lints from what import stored)
    lint, pick = DatasetPrepService(tmp_path / "ws").lint("mix")
    assert "clipping" in lint.codes(loud) and Path(pick.audio_path).name == Path(report.reference.audio_path).name


def test_telephone_quality_input_is_warned_about(voices, tmp_path):
    done = _studio(
        "prep", str(voices / "bad" / "8khz_8bit.wav"), "--name", "phone", "--workspace", "ws", "--no-asr",
        "--no-slice", cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "8 kHz, 8-bit" in done.stdout and "telephone" in done.stdout
    lint, _ = DatasetPrepService(tmp_path / "ws").lint("phone")
    (clip,) = [c.name for c in lint.clips]
    assert {"low_sample_rate", "low_bit_depth"} <= lint.codes(clip)
    assert all(f.fix for f in lint.for_clip(clip))


def test_a_split_that_makes_short_clips_is_flagged(voices, tmp_path):
    src = voices / "en_joe" / "clips" / "en_joe_001.wav"
    ws = Workspace("cut", tmp_path / "ws")
    run_prep([src], ws, PrepOptions(language="en", slice=False), transcriber=TruthTranscriber({}))
    service = DatasetPrepService(tmp_path / "ws")
    before, _ = service.lint("cut")
    assert "too_short" not in before.codes()
    left, right = Proofreader(ws).split(0, 2.4)
    after, pick = service.lint("cut")
    assert "too_short" in after.codes(left.name)
    assert pick is None or Path(pick.audio_path).name not in (left.name,)


@pytest.fixture(scope="module")
def whisper():
    from studio.dataprep.transcribe import WhisperTranscriber

    try:
        model = WhisperTranscriber()
    except ASRModelMissingError as exc:
        pytest.skip(f"packaged Whisper model not installed: {exc}")
    return model


def _truth(voices: Path) -> list[dict]:
    with open(voices / "raw_take" / "segments.csv", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _misheard(name: str, text: str, truth: list[dict]) -> bool:
    from studio.dataprep.lint_checks import disputed_words
    from studio.dataprep.slicing import parse_slice_name

    _, start, end = parse_slice_name(name)
    said = " ".join(r["text"] for r in truth if float(r["start_s"]) < end / 32000 and float(r["end_s"]) > start / 32000)
    return bool(disputed_words(said, text, "en"))


def test_doubtful_transcripts_of_the_noisy_take_are_flagged(voices, whisper, tmp_path):
    truth = _truth(voices)
    flagged = {}
    for take in ("raw_take_noisy.wav", "raw_take.wav"):
        ws = Workspace(take.split(".")[0], tmp_path)
        report = run_prep([voices / "raw_take" / take], ws, PrepOptions(language="auto"), transcriber=whisper)
        entries = read_list(ws.dataset_list)
        doubtful = {e.name for e in entries if "low_confidence" in report.lint.codes(e.name)}
        flagged[take] = (doubtful, entries)
        assert report.reference is None or Path(report.reference.audio_path).name not in doubtful
    noisy, noisy_entries = flagged["raw_take_noisy.wav"]
    heard = json.loads(Workspace("raw_take_noisy", tmp_path).asr_report.read_text(encoding="utf-8"))
    # a flagged clip is one the recogniser really misheard in one of its two listens
    assert any(
        _misheard(e.name, e.text, truth) or _misheard(e.name, heard[e.name].get("second_opinion", ""), truth)
        for e in noisy_entries
        if e.name in noisy
    ), noisy
    clean, clean_entries = flagged["raw_take.wav"]
    assert len(clean) <= 2, clean  # clean speech is mostly left alone
    # correcting (or confirming) the text clears the doubt
    if noisy:
        ws = Workspace("raw_take_noisy", tmp_path)
        index = next(i for i, e in enumerate(noisy_entries) if e.name in noisy)
        Proofreader(ws).edit_text(index, noisy_entries[index].text)
        lint, _ = DatasetPrepService(tmp_path).lint("raw_take_noisy")
        assert "low_confidence" not in lint.codes(noisy_entries[index].name)
