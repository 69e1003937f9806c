"""Mandarin front end: upstream parity on the goldens, plus behaviour a listener would notice."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import spec_dir
from golden_utils import frontend_calls, load_json

from studio.errors import TextError
from studio.text.zh import clean, normalize
from studio.text.zh import pinyin as zh_pinyin


@pytest.fixture(scope="module")
def symbols() -> dict:
    return load_json(spec_dir() / "symbols_v2.json")


def _phone_ids(phones: list[str], table: list[str]) -> list[int]:
    index = {s: i for i, s in enumerate(table)}
    return [index.get(p, index["UNK"]) for p in phones]


def test_golden_frontend_zh_calls(golden: Path, symbols: dict) -> None:
    calls = frontend_calls(golden, "zh")
    assert calls, "frontend_cases.json has no zh clean_text calls"
    table = symbols["v2"]["symbols"]
    failures = []
    for case_id, call in calls:
        got = clean(call["text"])
        want = (call["norm_text"], call["phones"], call["word2ph"])
        if (got.norm_text, got.phones, got.word2ph) != want:
            failures.append(f"{case_id} {call['text']!r}: got {got} want {want}")
        elif _phone_ids(got.phones, table) != call["phone_ids"]:
            failures.append(f"{case_id} {call['text']!r}: phone ids differ")
    assert not failures, "\n".join(failures)


def test_golden_bert_cases(golden: Path, symbols: dict) -> None:
    cases = load_json(golden / "golden_hf_meta.json")["bert_cases"]
    assert cases
    table = symbols["v2"]["symbols"]
    for case in cases:
        got = clean(case["input"])
        assert got.norm_text == case["norm_text"], case["id"]
        assert normalize(case["input"]) == case["norm_text"], case["id"]
        assert got.word2ph == case["word2ph"], case["id"]
        assert _phone_ids(got.phones, table) == case["phone_ids"], case["id"]


# --- behaviour ---------------------------------------------------------------------------------


def _pinyin_of(text: str) -> list[str]:
    """Syllables as initial+final strings, punctuation dropped: 'n i2' → 'ni2'."""
    phones = clean(text).phones
    return [phones[i] + phones[i + 1] for i in range(0, len(phones) - 1, 2) if phones[i] not in ",.!?…-"]


@pytest.mark.parametrize(
    ("text", "norm"),
    [
        ("2024年", "二零二四年"),
        ("我有2只猫", "我有两只猫"),
        ("电话13812345678", "电话幺三八幺二三四五六七八"),
        ("增长了50%", "增长了百分之五十"),
        ("气温-5°C", "气温零下五度"),
        ("3/4", "四分之三"),
        ("12:30", "十二点半"),
        ("國語", "国语"),
        ("ＡＢ１２", "十二"),
        ("好的……吗？？", "好的…吗?"),
    ],
)
def test_normalization_reads_numbers_and_symbols(text: str, norm: str) -> None:
    assert normalize(text) == norm


def test_third_tone_sandhi_makes_ni_hao_rising() -> None:
    assert clean("你好").phones == ["n", "i2", "h", "ao3"]


def test_yi_and_bu_sandhi() -> None:
    assert _pinyin_of("一个")[0] == "yi2"  # before a fourth tone
    assert _pinyin_of("一天")[0] == "yi4"  # before other tones
    assert _pinyin_of("不对")[0] == "bu2"
    assert _pinyin_of("看一看")[1] == "yi5"


def test_erhua_takes_previous_tone() -> None:
    assert _pinyin_of("玩儿") == ["wan2", "EEer2"]


def test_word2ph_covers_every_character() -> None:
    result = clean("今天是2024年1月1日，天气不错！你吃了吗？")
    assert len(result.word2ph) == len(result.norm_text)
    assert sum(result.word2ph) == len(result.phones)


def test_silence_marks_turn_every_comma_into_a_pause() -> None:
    yen = clean("你好￥世界，再见")
    assert "," not in yen.phones and yen.phones.count("SP2") == 2
    caret = clean("你好^世界")
    assert caret.phones.count("SP3") == 1


def test_all_produced_symbols_are_in_the_v2_table(symbols: dict) -> None:
    table = set(symbols["v2"]["symbols"])
    text = "女儿去月球旅游，用云计算看熊猫；自从知识是日常，一二三四五六七八九十。"
    assert set(clean(text).phones) <= table


def test_pinyin_table_follows_the_rules_and_uses_known_symbols(symbols: dict) -> None:
    parts = symbols["component_lists_v2"]
    initials, finals = set(parts["c"]), {v[:-1] for v in parts["v"]}
    table = zh_pinyin.table()
    assert len(table) > 400
    for syllable, phones in table.items():
        assert zh_pinyin.syllable_phones(syllable) == phones, syllable
        assert phones[0] in initials and phones[1] in finals, syllable
    assert table["yan"] == ("y", "En") and table["zhi"] == ("zh", "ir") and table["er"] == ("EE", "er")


def test_unpronounceable_reading_is_a_clear_error() -> None:
    with pytest.raises(TextError, match="噷"):
        clean("噷")


def test_empty_and_symbol_only_text() -> None:
    assert clean("").phones == []
    assert clean("《》").word2ph == []
