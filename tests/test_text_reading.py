"""`studio phones` / the pronunciation preview: what a user sees is what synthesis will feed the models."""

from __future__ import annotations

import json

from studio.cli import main
from studio.text.reading import read_text


def test_preview_spells_out_numbers_and_splits_languages():
    readings = read_text("I have 3 apples. 我有3个苹果。", "zh", split="cut5")
    assert [r.sentence.strip() for r in readings] == ["I have 3 apples.", "我有3个苹果。"]
    english, chinese = readings
    assert [s.lang for s in english.segments] == ["en"] and "three" in english.norm_text
    assert [s.lang for s in chinese.segments] == ["zh"] and "三" in chinese.norm_text
    assert "s an1" in " ".join(chinese.phones)  # 三 = san1: initial + final with tone


def test_cli_prints_the_reading_and_json(capsys):
    assert main(["phones", "--text", "The 3rd of May, 1999.", "--lang", "en"]) == 0
    out = capsys.readouterr().out
    assert "[en] The third of May, nineteen ninety-nine." in out
    assert "TH ER1 D" in out  # ARPAbet phones of "third"

    assert main(["phones", "--text", "こんにちは。", "--lang", "ja", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    (segment,) = data[0]["segments"]
    assert segment["lang"] == "ja" and len(segment["phones"]) == len(segment["phone_ids"]) > 0


def test_cli_explains_bad_input_without_traceback(capsys):
    assert main(["phones", "--text", "  ", "--lang", "en"]) == 1
    assert "There is no text to speak" in capsys.readouterr().err
    assert main(["phones", "--text", "hi", "--lang", "klingon"]) == 1
    err = capsys.readouterr().err
    assert "Unsupported language" in err and "Traceback" not in err
