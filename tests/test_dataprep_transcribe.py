"""ASR with the packaged Whisper model: close to the truth; model resolution never downloads."""

from __future__ import annotations

import csv
import unicodedata

import pytest

from studio.audio.io import load_audio
from studio.corpus import read_list
from studio.dataprep import transcribe as tr
from studio.dataprep.lint import normalise_text
from studio.dataprep.pipeline import PrepOptions, run_prep
from studio.errors import ASRModelMissingError
from studio.workspace import Workspace


def edits(ref: list, hyp: list) -> int:
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[-1]


def error_rate(pairs, unit) -> float:
    total = sum(len(unit(ref)) for ref, _ in pairs)
    return sum(edits(unit(ref), unit(hyp)) for ref, hyp in pairs) / total


def words(text: str) -> list[str]:
    return normalise_text(text.replace("'", "")).split()


def chars(text: str) -> list[str]:
    return [c for c in unicodedata.normalize("NFKC", text) if c.isalnum()]


@pytest.fixture(scope="module")
def whisper():
    try:
        model = tr.WhisperTranscriber()
    except ASRModelMissingError as exc:
        pytest.skip(f"packaged Whisper model not installed: {exc}")
    model.load()
    return model


def test_long_take_transcripts_close_to_truth(voices, whisper, tmp_path):
    with open(voices / "raw_take" / "segments.csv", encoding="utf-8") as f:
        truth = [r["text"] for r in csv.DictReader(f) if r["in_48k_stereo"] == "1"]
    ws = Workspace("asr", tmp_path)
    run_prep([voices / "raw_take" / "raw_take_48k_stereo.wav"], ws, PrepOptions(language="auto"), transcriber=whisper)
    entries = read_list(ws.dataset_list)
    assert len(entries) == len(truth)
    assert {e.language for e in entries} == {"en"}
    wer = error_rate(list(zip(truth, [e.text for e in entries], strict=True)), words)
    assert wer <= 0.08, f"WER {wer:.1%}"


@pytest.mark.parametrize(("folder", "language", "bound"), [("ja_nezumi", "ja", 0.2), ("zh_espeak", "zh", 0.3)])
def test_cjk_transcripts_close_to_truth(voices, whisper, folder, language, bound):
    entries = read_list(voices / folder / "dataset.list")[:2]
    pairs = []
    for entry in entries:
        audio, sr = load_audio(entry.audio_path)
        heard = whisper.transcribe(audio, sr, language)
        assert heard.language == language and heard.avg_logprob > -1.0
        pairs.append((entry.text, heard.text))
    cer = error_rate(pairs, chars)
    assert cer <= bound, f"CER {cer:.1%}: {pairs}"


def test_model_resolution_never_downloads(tmp_path, monkeypatch):
    with pytest.raises(ASRModelMissingError, match="not a faster-whisper model folder"):
        tr.resolve_asr_model(tmp_path)
    fake = tmp_path / "asr" / "tiny"
    fake.mkdir(parents=True)
    (fake / "model.bin").write_bytes(b"x")
    (fake / "config.json").write_text("{}")
    assert tr.resolve_asr_model("tiny", asr_dir=tmp_path / "asr") == fake.resolve()
    assert tr.resolve_asr_model(fake) == fake.resolve()
    monkeypatch.setattr(
        tr,
        "PACKAGED_MODELS",
        tr.PACKAGED_MODELS[:0] + (tr.PackagedModel("whisper-base", ("no_such_pkg_x",), ("no-such-pkg-x",)),),
    )
    with pytest.raises(ASRModelMissingError, match="pip install no-such-pkg-x"):
        tr.resolve_asr_model("base", asr_dir=tmp_path / "empty")
