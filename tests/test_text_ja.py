"""Japanese front end: every Japanese ``clean_text`` call recorded in the goldens, plus user-visible behaviour."""

from __future__ import annotations

from pathlib import Path

import pytest
from golden_utils import frontend_call_params, v2_symbols

from studio.text import ja

LANG = "ja"


@pytest.mark.parametrize("call", frontend_call_params(LANG))
def test_japanese_matches_upstream_clean_text(call: dict, golden: Path) -> None:
    result = ja.clean(call["text"])
    symbols = v2_symbols(golden)
    assert result.norm_text == call["norm_text"]
    # Marks outside the symbol table (# _) become UNK in the cleaner, exactly as upstream.
    assert [p if p in symbols else "UNK" for p in result.phones] == call["phones"]
    assert result.word2ph is None


def test_sentence_has_pitch_marks_and_punctuation() -> None:
    phones = ja.clean("今日はいい天気ですね！").phones
    assert "[" in phones and "]" in phones
    assert phones[-1] == "!"
    assert "#" in phones  # accent-phrase boundary between 今日は and いい天気


def test_unvoiced_vowels_are_lower_case_and_question_mapped() -> None:
    phones = ja.clean("です？").phones
    assert phones[-1] == "?"
    assert "U" not in phones and "u" in phones


def test_percent_is_read() -> None:
    assert ja.clean("５０％").phones == ja.clean("５０パーセント").phones


def test_repeated_punctuation_collapses() -> None:
    assert ja.clean("はい!!").norm_text == "はい!"
    assert ja.clean("はい!!").phones[-1] == "!"


def test_latin_letters_are_lower_cased_before_open_jtalk() -> None:
    assert ja.clean("ＡＢＣ").phones == ja.clean("ａｂｃ").phones
