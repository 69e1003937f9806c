"""Korean front end: upstream parity on the goldens, offline operation, and the character rules."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from golden_utils import clean_text_failures, frontend_calls

from studio.text import ko, symbol_table


def _ko_calls(golden: Path) -> list[tuple[str, dict]]:
    calls = frontend_calls(golden, "ko")
    if not calls:
        pytest.skip("frontend_cases.json has no Korean clean_text calls")
    return calls


def test_golden_frontend_ko_calls(golden: Path) -> None:
    failures = clean_text_failures(_ko_calls(golden), "ko")
    assert not failures, "\n".join(failures)


def test_works_without_nltk_data_or_network(golden: Path, monkeypatch, tmp_path) -> None:
    """A fresh machine has no NLTK cmudict; g2pk2 must neither download it nor need it."""
    import nltk

    def refuse(*args, **kwargs):
        raise AssertionError("nltk.download must not be called")

    monkeypatch.setattr(nltk, "download", refuse)
    monkeypatch.setattr(nltk.data, "path", [str(tmp_path)])
    for name in [m for m in sys.modules if m == "g2pk2" or m.startswith("g2pk2.")]:
        monkeypatch.delitem(sys.modules, name)
    ko._g2pk.cache_clear()
    try:
        case_id, call = _ko_calls(golden)[0]
        assert ko.clean(call["text"]).phones == call["phones"], case_id
    finally:
        ko._g2pk.cache_clear()


def test_latin_letters_are_spelled_in_hangul() -> None:
    assert ko.latin_to_hangul("Tv") == "티브이"
    assert ko.clean("TV요").phones == ko.clean("티브이요").phones


def test_compound_vowels_and_final_clusters_are_split() -> None:
    assert ko.to_jamo("와요") == "ㅇㅗㅏㅇㅣㅗ"
    assert ko.to_jamo("ㄳ") == "ㄱㅅ"


def test_every_phone_is_a_table_symbol_with_space_and_unknown_marks() -> None:
    phones = ko.clean("사과 漢 먹어요").phones
    assert all(p in symbol_table("v2") for p in phones)
    assert phones.count("空") == 2
    assert phones.count("停") == 1


def test_full_stop_added_only_after_a_final_jamo() -> None:
    assert ko.clean("사과").phones[-1] == "."
    assert ko.clean("사과.").phones[-2:] == ["ㅏ", "."]
    assert ko.clean("사과!").phones[-2:] == ["ㅏ", "!"]


def test_rieul_after_eul_reads_as_nieun() -> None:
    phones = ko.clean("일을 라면").phones
    space = phones.index("空")
    assert phones[space - 3 : space + 2] == ["ㄹ", "ㅡ", "ㄹ", "空", "ㄴ"]
