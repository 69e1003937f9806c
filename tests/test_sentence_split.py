"""Sentence splitting against upstream's cut0–cut5 and pre_seg_text (golden/text_split_methods.json)."""

from __future__ import annotations

import re

import pytest
from conftest import golden_dir
from golden_utils import load_json

from studio.errors import TextError
from studio.text import deviations
from studio.text.reading import split_for_speech
from studio.text.sentence_split import (
    MAX_SENTENCE_CHARS,
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


# Upstream's re-split of a sentence over 510 characters (SPEC §3) cuts only at split marks: a piece is emitted
# when the next run or mark would take it over 510. A run without marks stays whole; when the sentence starts
# with such a run the first piece emitted is empty, and the closing mark that pre_seg_text appended is pushed
# into a piece of its own.
_RUN = "我们今天一起去公园散步然后回家吃饭" * 40  # 680 characters, no split mark


@pytest.mark.parametrize("method", ["cut0", "cut1", "cut5"])  # the methods that keep a mark-free text whole
def test_a_long_text_without_marks_gives_upstreams_pieces(method):
    assert prepare_sentences(_RUN, "zh", method) == ["", _RUN, "。"]
    assert prepare_sentences(_RUN + "。", "zh", method) == ["", _RUN, "。"]  # its own closing mark: the same


def test_a_long_run_after_a_clause_gives_no_empty_piece():
    assert prepare_sentences("今天天气很好，" + _RUN, "zh", "cut0") == ["今天天气很好，", _RUN, "。"]


def test_the_re_split_threshold_is_510_characters_with_the_closing_mark():
    fits = _RUN[:509]
    assert prepare_sentences(fits, "zh", "cut0") == [fits + "。"]  # 510 with its mark: not re-split
    just_over = _RUN[:510]
    assert prepare_sentences(just_over, "zh", "cut0") == [just_over, "。"]  # 511: the mark alone, no empty piece


def test_a_long_english_text_without_marks_ends_with_a_lone_period():
    words = " ".join(["seven"] * 120)  # 719 characters
    assert prepare_sentences(words, "en", "cut0") == ["", words, "."]


def test_synthesis_speaks_no_empty_or_lone_mark_piece_and_none_over_510():
    for text in (_RUN, _RUN + "。", "。" + _RUN, _RUN[:510]):
        sentences = split_for_speech(text, "zh", "cut1")
        assert all(re.search(r"\w", s) for s in sentences), sentences
        assert max(len(s) for s in sentences) <= MAX_SENTENCE_CHARS
        assert "".join(sentences) == "".join(prepare_sentences(text, "zh", "cut1"))  # nothing lost or added
        assert len(sentences) == 2 and abs(len(sentences[0]) - len(sentences[1])) <= 1  # equal parts
        assert sentences[-1].endswith("。")


def test_synthesis_cuts_a_long_english_run_between_words():
    words = " ".join(["seven"] * 120)
    sentences = split_for_speech(words, "en", "cut0")
    assert len(sentences) == 2 and max(len(s) for s in sentences) <= MAX_SENTENCE_CHARS
    assert "".join(sentences) == words + "."
    assert sentences[0].endswith("seven ") and sentences[1].startswith("seven")  # no word cut in two


def test_ordinary_text_is_spoken_as_upstream_cuts_it():
    text = "今天天气很好，我们去公园散步吧。明天也许会下雨！" * 30  # long, with marks: re-split by upstream
    pieces = prepare_sentences(text, "zh", "cut0")
    assert len(pieces) > 1 and not [r for p in pieces for r in deviations.covering(p, deviations.SENTENCE)]
    assert split_for_speech(text, "zh", "cut0") == pieces


def test_sentence_rules_name_what_they_act_on():
    assert [r.name for r in deviations.covering("", deviations.SENTENCE)] == ["pieces-with-nothing-to-say"]
    assert [r.name for r in deviations.covering("。", deviations.SENTENCE)] == ["pieces-with-nothing-to-say"]
    assert [r.name for r in deviations.covering(_RUN, deviations.SENTENCE)] == ["over-long-sentences"]
    assert deviations.covering(_RUN[:510], deviations.SENTENCE) == []
