"""Cantonese front end: upstream parity on the goldens, plus behaviour a listener would notice."""

from __future__ import annotations

from pathlib import Path

import pytest
from golden_utils import clean_text_failures, frontend_calls

from studio.errors import TextError
from studio.text import symbol_table
from studio.text.yue import clean, normalize, syllable_phones


def _yue_calls(golden: Path) -> list[tuple[str, dict]]:
    calls = frontend_calls(golden, "yue")
    if not calls:
        pytest.skip("frontend_cases.json has no Cantonese clean_text calls")
    return calls


def test_golden_frontend_yue_calls(golden: Path) -> None:
    failures = clean_text_failures(_yue_calls(golden), "yue")
    assert not failures, "\n".join(failures)


def test_golden_word2ph_matches_text_and_phones(golden: Path) -> None:
    for _, call in _yue_calls(golden):
        got = clean(call["text"])
        assert len(got.word2ph) == len(got.norm_text)
        assert sum(got.word2ph) == len(got.phones)


def test_every_phone_of_the_goldens_is_in_the_table(golden: Path) -> None:
    table = symbol_table("v2")
    for _, call in _yue_calls(golden):
        assert all(p in table for p in clean(call["text"]).phones), call["text"]


def test_traditional_text_is_simplified_and_marks_mapped() -> None:
    assert normalize("「你好」，飲茶～") == "你好,饮茶-"
    assert normalize("好！！") == "好!!"  # Cantonese keeps repeated marks


def test_numbers_are_read_out() -> None:
    got = clean("3個")
    assert got.norm_text == "三个"
    assert got.phones == ["Ys", "Yaam1", "Yg", "Yo3"]


def test_rhyme_only_syllables_repeat_their_last_letter() -> None:
    assert syllable_phones("m4") == ["Ym", "Ym4"]
    assert syllable_phones("ng5") == ["Yng", "Yg5"]
    assert syllable_phones("aa3") == ["Yaa", "Ya3"]
    # "aa" wins over the longer aa-rhymes, as upstream's initial list has it.
    assert syllable_phones("aat3") == ["Yaa", "Yt3"]
    assert syllable_phones("gwong2") == ["Ygw", "Yong2"]


def test_character_without_reading_is_a_text_error() -> None:
    with pytest.raises(TextError, match="Cantonese reading"):
        clean("艹")


def test_empty_after_normalisation_gives_no_phones() -> None:
    got = clean("abc")
    assert (got.phones, got.word2ph, got.norm_text) == ([], [], "")
