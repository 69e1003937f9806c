"""Lint findings speak the interface language in the page and English in the CLI/JSON reports.

Every message key of the lint has a Chinese and a Japanese template with the same placeholders; a real finding
(a clipped clip, a doubtful transcript) renders through those tables, and its report entry keeps English text.
"""

from __future__ import annotations

import json
import re
import string
from pathlib import Path

import numpy as np
import pytest

from studio.corpus import DatasetEntry
from studio.dataprep.lint import LintConfig, analyse_clip, lint_clip
from studio.dataprep.lint_checks import asr_findings
from studio.dataprep.lint_text import MESSAGES, render
from studio.ui.i18n import load_locale


def _names(template: str) -> set[str]:
    return {name.split(".")[0] for _, name, _, _ in string.Formatter().parse(template) if name}


@pytest.mark.parametrize("lang", ["zh", "ja"])
def test_every_lint_message_has_a_translation_with_the_same_placeholders(lang):
    table = load_locale(lang)
    missing = [k for k in MESSAGES if "lint." + k not in table]
    assert not missing, f"lint messages without a {lang} text: {missing}"
    wrong = [k for k, v in MESSAGES.items() if _names(table["lint." + k]) != _names(v)]
    assert not wrong, f"{lang} templates whose placeholders differ from English: {wrong}"
    words = [k for k, v in MESSAGES.items() if re.search("[A-Za-z]", re.sub(r"{[^}]*}", "", v))]
    assert not [k for k in words if table["lint." + k] == MESSAGES[k]], "left in English"


def test_a_clipped_clip_reads_in_chinese_and_stays_english_in_the_report():
    sr = 32000
    t = np.arange(sr * 4) / sr
    audio = np.clip(3.0 * np.sin(2 * np.pi * 220 * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t)), -1, 1)
    stats = analyse_clip(audio.astype(np.float32), sr, "loud.wav")
    found = [f for f in lint_clip(stats) if f.code == "clipping"]
    assert found, "a hard-clipped sine must be flagged"
    clip = found[0]
    zh = load_locale("zh")
    chinese = render(clip.key, clip.params, lambda k: zh.get("lint." + k))
    assert "削波" in chinese and f"{clip.params['share']:.1%}" in chinese
    assert "clipped" in clip.message and "削波" not in clip.message  # the CLI / JSON text stays English
    record = json.loads(json.dumps(clip.__dict__))
    assert record["key"] == clip.key and record["params"]["share"] == pytest.approx(clip.params["share"])


def test_a_doubtful_transcript_names_the_disputed_words_in_japanese():
    entry = DatasetEntry(audio_path=Path("clip.wav"), speaker="s", language="en", text="Soft chairs are nice.")
    asr = {"text": entry.text, "second_opinion": "Sock chairs are nice.", "avg_logprob": -0.2}
    (finding,) = asr_findings(entry, asr, LintConfig())
    ja = load_locale("ja")
    text = render(finding.key, finding.params, lambda k: ja.get("lint." + k))
    assert "「soft」が「sock」" in text and "自信がありません" in text
    assert "a second listen heard “sock” for “soft”" in finding.message
