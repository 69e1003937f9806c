"""Sentence splitting against upstream's cut0–cut5 and pre_seg_text (golden/text_split_methods.json)."""

from __future__ import annotations

import pytest
from conftest import golden_dir
from golden_utils import load_json

from studio.errors import TextError
from studio.text.sentence_split import (
    METHODS,
    UPSTREAM_NAMES,
    collapse_punctuation,
    get_split_method,
    prepare_sentences,
)

_PRE_SEG = "pre_seg_text_"


def _golden_cases() -> list[tuple[str, str]]:
    path = golden_dir() / "text_split_methods.json"
    if not path.is_file():
        return []
    data = load_json(path)
    return [
        (name, key) for name, case in data.items() for key in case if key in UPSTREAM_NAMES or key.startswith(_PRE_SEG)
    ]


@pytest.fixture(scope="module")
def split_golden(golden):
    return load_json(golden / "text_split_methods.json")


def test_golden_file_has_cases(split_golden):
    keys = {key for case in split_golden.values() for key in case}
    assert keys & set(UPSTREAM_NAMES), "no cutN outputs in text_split_methods.json"
    assert any(k.startswith(_PRE_SEG) for k in keys), "no pre_seg_text outputs in text_split_methods.json"


@pytest.mark.parametrize(("name", "key"), _golden_cases())
def test_matches_upstream(split_golden, name, key):
    case = split_golden[name]
    if key.startswith(_PRE_SEG):
        got = prepare_sentences(case["input"], case["pre_seg_lang"], key[len(_PRE_SEG) :])
    else:
        got = get_split_method(key)(case["input"])
    assert got == case[key]


def test_upstream_names_and_ours_are_the_same_functions():
    assert set(UPSTREAM_NAMES.values()) == set(METHODS)
    for upstream, ours in UPSTREAM_NAMES.items():
        assert get_split_method(upstream) is get_split_method(ours)


def test_unknown_method_is_a_clear_error():
    with pytest.raises(TextError, match="cut5"):
        get_split_method("cut9")


def test_every_four_sentences_groups_by_four_and_last_group_takes_the_rest():
    text = "一。二。三。四。五。六。七。八。九。十。"
    assert get_split_method("cut1")(text) == "一。二。三。四。\n五。六。七。八。九。十。"


def test_every_punctuation_keeps_decimal_numbers():
    assert get_split_method("every_punctuation")("Pi is 3.14. Yes, it is.") == "Pi is 3.14.\n Yes,\n it is."


def test_prepare_sentences_short_first_clause_and_final_mark():
    assert prepare_sentences("Hi, this is a fairly long sentence", "en", "cut0") == [
        ".Hi, this is a fairly long sentence."
    ]
    assert prepare_sentences("你好，今天天气很好", "zh", "cut0") == ["。你好，今天天气很好。"]


def test_prepare_sentences_resplits_very_long_sentences():
    text = "这是一个很长的句子，" * 80
    sentences = prepare_sentences(text, "zh", "cut0")
    assert len(sentences) > 1
    assert all(len(s) <= 510 for s in sentences)
    assert "".join(sentences) == text


def test_prepare_sentences_skips_symbol_only_pieces():
    assert prepare_sentences("今天天气很好。……。明天也不错。", "zh", "cut5") == ["今天天气很好。", "明天也不错。"]


def test_prepare_sentences_rejects_blank_text():
    assert prepare_sentences("\n\n", "zh", "cut1") == []
    with pytest.raises(TextError):
        prepare_sentences("...", "en", "cut0")


def test_collapse_punctuation():
    assert collapse_punctuation("Really?!... yes--no") == "Really? yes-no"


def test_prepare_sentences_cuts_a_long_run_without_marks():
    text = "啊" * 600 + "。"
    sentences = prepare_sentences(text, "zh", "cut0")
    assert "".join(sentences) == text
    assert all(sentences) and max(len(s) for s in sentences) <= 510
