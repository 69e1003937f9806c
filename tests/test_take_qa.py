"""Auto-QA of synthesized takes: error rates, skipped/repeated words, speaker similarity (real models)."""

from __future__ import annotations

import csv

import pytest

from studio.audio.io import load_audio
from studio.services.take_qa import (
    FLAG_REPEATED,
    FLAG_SKIPPED,
    FLAG_UNCLEAR,
    SpeakerEncoder,
    TakeChecker,
    best_take,
    compare_text,
)

SENTENCE = "the quick brown fox jumps over the lazy dog near the river bank"


def test_a_faithful_take_has_no_flags():
    qa = compare_text(SENTENCE, "The quick brown fox jumps over the lazy dog, near the river bank.", "en")
    assert qa.cer == 0 and qa.wer == 0 and qa.flags == []


def test_skipped_words_are_flagged_and_named():
    qa = compare_text(SENTENCE, "the quick fox jumps over the dog near the river bank", "en")
    assert FLAG_SKIPPED in qa.flags
    assert any("brown" in run for run in qa.skipped) and any("lazy" in run for run in qa.skipped)


def test_repeated_words_are_flagged():
    qa = compare_text(SENTENCE, "the quick brown fox jumps over the lazy dog dog dog dog near the river bank", "en")
    assert FLAG_REPEATED in qa.flags


def test_chinese_is_scored_by_character():
    qa = compare_text("今天天气很好，我们去公园散步吧。", "今天天气很好我们去公园吧", "zh")
    assert qa.wer is None and 0 < qa.cer < 0.3
    assert FLAG_SKIPPED in qa.flags


def test_gibberish_is_hard_to_understand():
    assert FLAG_UNCLEAR in compare_text(SENTENCE, "blah", "en").flags


def test_best_take_prefers_the_cleanest():
    good = compare_text(SENTENCE, SENTENCE, "en")
    bad = compare_text(SENTENCE, "the quick fox", "en")
    assert best_take([("a", bad), ("b", good), ("c", None)]) == "b"


def _clips(voices, folder):
    with open(voices / folder / "metadata.csv", encoding="utf-8") as fh:
        return [(voices / folder / row["file"], row["text"]) for row in csv.DictReader(fh)]


@pytest.mark.slow
def test_speaker_similarity_tells_voices_apart(voices):
    encoder = SpeakerEncoder()
    joe = [load_audio(p) for p, _ in _clips(voices, "en_joe")[:2]]
    other = load_audio(_clips(voices, "ja_nezumi")[0][0])
    same = encoder.similarity(*joe[0], *joe[1])
    different = encoder.similarity(*joe[0], *other)
    assert same > different + 0.1


@pytest.mark.slow
def test_checker_hears_a_real_recording(voices):
    from studio.dataprep.transcribe import WhisperTranscriber

    transcriber = WhisperTranscriber()
    clip, text = _clips(voices, "en_joe")[0]
    audio, sr = load_audio(clip)
    qa = TakeChecker(lambda: transcriber).check(audio, sr, text, "en", reference=clip)
    assert qa.cer is not None and qa.cer < 0.1
    assert qa.similarity is not None and qa.similarity > 0.9  # the clip against itself
    assert FLAG_SKIPPED not in qa.flags and FLAG_REPEATED not in qa.flags
