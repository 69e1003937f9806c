"""Language split: the golden splits of frontend_cases.json, the post-processing rules, and no network."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap

import pytest
from conftest import REPO_ROOT, golden_dir
from golden_utils import load_json

from studio.errors import UnsupportedLanguageError
from studio.text import language_split
from studio.text.language_split import LanguageSegment, split_by_mode, split_languages


def _frontend_cases() -> list[dict]:
    path = golden_dir() / "frontend_cases.json"
    return load_json(path)["cases"] if path.is_file() else []


@pytest.mark.parametrize("case", _frontend_cases(), ids=lambda c: c["id"])
def test_golden_split(case):
    """Every clean_text call upstream made, in order, came from our split (both attempts when retried)."""
    text = re.sub(" {2,}", " ", case["input"])
    segments = split_by_mode(text, case["lang_mode"])
    if case["short_text_retry_with_dot_prefix"]:
        segments += split_by_mode("." + text, case["lang_mode"])
    expected = [(call["lang"], call["text"]) for call in case["g2p_calls"]]
    assert [(s.lang, s.text) for s in segments] == expected


# ---------------------------------------------------------------------------------------------
# The post-processing rules, on hand-made raw splits (independent of the language-ID model)


@pytest.fixture
def raw(monkeypatch):
    """Make split-lang "return" the given runs."""

    def set_runs(*runs: tuple[str, str]) -> None:
        monkeypatch.setattr(language_split, "_raw_split", lambda text: [list(r) for r in runs])

    return set_runs


def _pairs(segments: list[LanguageSegment]) -> list[tuple[str, str]]:
    return [(s.lang, s.text) for s in segments]


def test_english_looking_runs_become_en(raw):
    raw(("zh", "我用"), ("ja", "iPhone，"), ("zh", "拍照"))
    assert _pairs(split_languages("x")) == [("zh", "我用"), ("en", "iPhone，"), ("zh", "拍照")]


def test_default_language_takes_everything_but_english(raw):
    raw(("ja", "你好"), ("digit", "123"), ("en", "Hello"), ("ko", "世界"))
    assert _pairs(split_languages("x", "zh")) == [("zh", "你好123"), ("en", "Hello"), ("zh", "世界")]


def test_kana_and_hangul_are_carved_out(raw):
    raw(("zh", "我说こんにちは、然后안녕하세요。好"))
    assert _pairs(split_languages("x")) == [
        ("zh", "我说"),
        ("ja", "こんにちは、"),
        ("zh", "然后"),
        ("ko", "안녕하세요。"),
        ("zh", "好"),
    ]


def test_unknown_runs_keep_their_cjk_part_as_zh(raw):
    raw(("x", "這個«問題»"), ("en", "ok"))
    assert _pairs(split_languages("x")) == [("zh", "這個問題"), ("en", "ok")]


def test_unknown_runs_without_cjk_take_a_neighbour(raw):
    raw(("en", "Hello"), ("x", "«»"), ("zh", "你好"))
    assert _pairs(split_languages("x")) == [("en", "Hello«»"), ("zh", "你好")]
    raw(("x", "«»"), ("zh", "你好"))
    assert _pairs(split_languages("x")) == [("zh", "«»你好")]


@pytest.mark.parametrize(
    ("runs", "expected"),
    [
        ([("digit", "12")], [("zh", "12")]),
        ([("en", "Room "), ("digit", "12")], [("en", "Room 12")]),
        ([("digit", "12"), ("ja", "です")], [("ja", "12です")]),
        ([("zh", "我有"), ("digit", "3"), ("zh", "个")], [("zh", "我有3个")]),
        ([("zh", "你好。"), ("digit", "3"), ("en", "apples")], [("zh", "你好。"), ("en", "3apples")]),
        ([("zh", "你好"), ("digit", "3"), ("en", ", ok")], [("zh", "你好3"), ("en", ", ok")]),
        ([("zh", "你好呀"), ("digit", "3"), ("en", "ab")], [("zh", "你好呀3"), ("en", "ab")]),
        ([("zh", "你"), ("digit", "3"), ("en", "apples")], [("zh", "你"), ("en", "3apples")]),
    ],
)
def test_digit_runs_join_a_neighbour(raw, runs, expected):
    raw(*runs)
    assert _pairs(split_languages("x")) == expected


def test_blank_text_has_no_segments():
    assert split_languages("") == []
    assert split_languages("  \n") == []


# ---------------------------------------------------------------------------------------------
# Modes


def test_mode_en_never_splits():
    assert _pairs(split_by_mode("Hello 你好", "en")) == [("en", "Hello 你好")]


def test_mixed_mode_glues_non_english_under_the_users_language(raw):
    raw(("zh", "你好"), ("ja", "です"), ("en", "OK"), ("ko", "中"))
    assert _pairs(split_by_mode("x", "ja")) == [("ja", "你好です"), ("en", "OK"), ("ja", "中")]


def test_yue_modes_relabel_chinese(raw):
    raw(("zh", "佢"), ("en", "OK"))
    assert _pairs(split_by_mode("x", "all_yue")) == [("yue", "佢"), ("en", "OK")]
    assert _pairs(split_by_mode("x", "auto_yue")) == [("yue", "佢"), ("en", "OK")]


def test_unknown_mode_lists_the_supported_codes():
    with pytest.raises(UnsupportedLanguageError, match="all_zh"):
        split_by_mode("你好", "fr")
    with pytest.raises(UnsupportedLanguageError, match="v1"):
        split_by_mode("안녕", "ko", version="v1")


def test_split_uses_the_bundled_lite_model_and_no_network(tmp_path):
    """In a fresh process with sockets disabled and an empty model cache, splitting still works."""
    script = textwrap.dedent(
        """
        import socket, sys
        def refuse(*a, **k):
            raise RuntimeError("network access attempted")
        socket.socket.connect = refuse
        socket.create_connection = refuse
        from studio.text.language_split import split_by_mode
        segs = split_by_mode("Hello大家好，こんにちは、안녕하세요。", "auto")
        print(sorted({s.lang for s in segs}))
        """
    )
    env = {"FTLANG_CACHE": str(tmp_path), "PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO_ROOT)}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "['en', 'ja', 'ko', 'zh']"
    assert list(tmp_path.iterdir()) == [], "a language model was downloaded into the cache"
