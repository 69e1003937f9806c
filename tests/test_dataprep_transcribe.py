"""ASR with the packaged Whisper model: close to the truth; model resolution never downloads."""

from __future__ import annotations

import csv
import unicodedata
from types import SimpleNamespace

import numpy as np
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


def test_packed_windows_put_each_text_on_its_own_clip(voices, whisper):
    """Clips share Whisper windows, yet each transcript matches its own utterance (noisy take, true boundaries)."""
    audio, sr = load_audio(voices / "raw_take" / "raw_take_noisy.wav")
    with open(voices / "raw_take" / "segments.csv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    clips = [(audio[int((float(r["start_s"]) - 0.2) * sr) : int((float(r["end_s"]) + 0.2) * sr)], sr) for r in rows]
    heard = whisper.transcribe_many(clips, "en")
    assert len(heard) == len(rows)
    for row, h in zip(rows, heard, strict=True):
        assert error_rate([(row["text"], h.text)], words) <= 0.25, (row["text"], h.text)
        assert h.language == "en" and h.avg_logprob > -1.0 and h.no_speech_prob < 0.5
    assert error_rate([(r["text"], h.text) for r, h in zip(rows, heard, strict=True)], words) <= 0.08


def test_auto_language_is_per_clip_inside_packed_windows(voices, whisper):
    """A Japanese clip among English ones is detected and transcribed as Japanese; its neighbours stay English."""
    en = read_list(voices / "en_joe" / "dataset.list")[:3]
    ja = read_list(voices / "ja_nezumi" / "dataset.list")[0]
    entries = [en[0], en[1], ja, en[2]]
    heard = whisper.transcribe_many([load_audio(e.audio_path) for e in entries], "auto")
    assert [h.language for h in heard] == ["en", "en", "ja", "en"]
    assert all(h.language_probability > 0.5 for h in heard)
    assert error_rate([(ja.text, heard[2].text)], chars) <= 0.3, heard[2].text
    en_pairs = [(e.text, h.text) for e, h in zip(entries, heard, strict=True) if e is not ja]
    assert error_rate(en_pairs, words) <= 0.15, en_pairs


def test_token_cap_limits_runaway_output(voices, whisper):
    """A decode can never run past its token cap (the guard against hallucination loops)."""
    entry = read_list(voices / "en_joe" / "dataset.list")[0]
    audio, sr = load_audio(entry.audio_path)
    full = whisper.transcribe(audio, sr, "en")
    capped = whisper.transcribe(audio, sr, "en", max_new_tokens=5)
    assert len(words(capped.text)) < len(words(full.text)) <= len(words(entry.text)) + 2
    assert whisper.token_cap(2.0) < whisper.token_cap(8.0) <= whisper.token_cap(300.0) <= tr.MAX_NEW_TOKENS
    assert tr.token_cap_for_text("short") < tr.token_cap_for_text("a much longer sentence " * 4)
    assert tr.token_cap_for_text("你好世界") > tr.token_cap_for_text("abcd")
    assert tr.token_cap_for_text("x" * 100_000) == tr.MAX_NEW_TOKENS


class _FakeTokenizer:
    def encode(self, text, add_special_tokens=False):
        return SimpleNamespace(ids=text.split())


def test_looping_clip_in_a_window_is_transcribed_again_alone(tmp_path, monkeypatch):
    """When Whisper loops on one packed clip, that clip is decoded again on its own; its neighbour is kept."""
    (tmp_path / "model.bin").write_bytes(b"x")
    (tmp_path / "config.json").write_text("{}")
    t = tr.WhisperTranscriber(tmp_path, cross_check=False)  # the loop guard alone, without the second listen
    monkeypatch.setattr(t, "load", lambda: SimpleNamespace(hf_tokenizer=_FakeTokenizer()))
    loop = [
        SimpleNamespace(word=" again", start=4.0 + i * 0.05, end=4.04 + i * 0.05, probability=0.9) for i in range(60)
    ]
    good = [SimpleNamespace(word=f" w{i}", start=i * 0.5, end=i * 0.5 + 0.3, probability=0.9) for i in range(5)]
    segment = SimpleNamespace(words=good + loop, avg_logprob=-0.3, no_speech_prob=0.01)
    monkeypatch.setattr(t, "_decode", lambda *a, **k: ([segment], SimpleNamespace(language="en")))
    alone = []

    def one(x, lang, cap):
        alone.append((len(x) / tr.ASR_SAMPLE_RATE, lang, cap))
        return tr.Transcript("again", lang, 1.0, -0.5, 0.02)

    monkeypatch.setattr(t, "_transcribe_one", one)
    clips = [(np.zeros(48000, np.float32), 16000), (np.zeros(32000, np.float32), 16000)]
    heard = t.transcribe_many(clips, "en")
    assert heard[0].text == "w0 w1 w2 w3 w4" and heard[0].avg_logprob == pytest.approx(-0.3)
    assert heard[1].text == "again" and len(alone) == 1
    assert alone[0][0] == pytest.approx(2.0) and alone[0][2] == t.token_cap(2.0)


def test_fake_transcriber_without_batching_still_works():
    class OneByOne:
        def transcribe(self, audio, sample_rate, language=None):
            return tr.Transcript(f"{len(audio)}", language or "en", 1.0, -0.1, 0.0)

    seen = []
    out = tr.transcribe_clips(OneByOne(), [(np.zeros(n, np.float32), 16000) for n in (10, 20)], "en", seen.append)
    assert [t.text for t in out] == ["10", "20"] and seen == [0.5, 1.0]
