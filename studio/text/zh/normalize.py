"""Mandarin text normalisation: numbers, dates, units, symbols → Chinese characters.

Behaviour follows upstream GPT-SoVITS v2 (its PaddleSpeech-derived ``TextNormalizer`` followed by
the ``chinese2`` punctuation mapping), including its quirks — e.g. ``a-b`` between numbers is read
as subtraction (减) because arithmetic is verbalised before telephone numbers and ranges. The rules
run in a fixed order; each one is a regex and a replacement function in :mod:`.verbalize`.

The result contains only CJK ideographs U+4E00–U+9FA5 and the marks ``! ? … , . -``.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from importlib import resources

from studio.text.punctuation import CJK_PUNCT_MAP, mark_replacer
from studio.text.zh import verbalize as vb

# Sentence-final marks (a closing quote may follow): the text is cut after each of them.
_SENTENCE_END = re.compile(r"([：、，；。？！,;?!][”’]?)")
# Characters dropped before any rule runs (spaces are dropped too).
_DROPPED_EARLY = re.compile(r"[—《》【】<>{}()（）#&@“”^_|\\]")
# Characters dropped after all rules ran.
_DROPPED_LATE = re.compile(r"[\-—《》【】<=>{}()（）#&@“”^_|\\]")

_FULL_TO_HALF = {0xFF10 + i: 0x30 + i for i in range(10)}
_FULL_TO_HALF.update({0xFF21 + i: 0x41 + i for i in range(26)})
_FULL_TO_HALF.update({0xFF41 + i: 0x61 + i for i in range(26)})
_FULL_TO_HALF[0x3000] = 0x20

_LATE_REPLACEMENTS = (
    ("/", "每"),
    *zip("①②③④⑤⑥⑦⑧⑨⑩", "一二三四五六七八九十"),
    ("α", "阿尔法"),
    ("β", "贝塔"),
    ("γ", "伽玛"),
    ("Γ", "伽玛"),
    ("δ", "德尔塔"),
    ("Δ", "德尔塔"),
    ("ε", "艾普西龙"),
    ("ζ", "捷塔"),
    ("η", "依塔"),
    ("θ", "西塔"),
    ("Θ", "西塔"),
    ("ι", "艾欧塔"),
    ("κ", "喀帕"),
    ("λ", "拉姆达"),
    ("Λ", "拉姆达"),
    ("μ", "缪"),
    ("ν", "拗"),
    ("ξ", "克西"),
    ("Ξ", "克西"),
    ("ο", "欧米克伦"),
    ("π", "派"),
    ("Π", "派"),
    ("ρ", "肉"),
    ("ς", "西格玛"),
    ("Σ", "西格玛"),
    ("σ", "西格玛"),
    ("τ", "套"),
    ("υ", "宇普西龙"),
    ("φ", "服艾"),
    ("Φ", "服艾"),
    ("χ", "器"),
    ("ψ", "普赛"),
    ("Ψ", "普赛"),
    ("ω", "欧米伽"),
    ("Ω", "欧米伽"),
    # Operators left over from the arithmetic rule are still read out.
    ("+", "加"),
    ("-", "减"),
    ("×", "乘"),
    ("÷", "除"),
    ("=", "等"),
)

# Punctuation of the normalised text and what the other marks become.
PUNCTUATION = "!?…,.-"
_map_marks = mark_replacer({**CJK_PUNCT_MAP, "...": "…", "$": ".", "/": ",", "—": "-", "~": "…", "～": "…"})
_NOT_KEPT = re.compile(r"[^\u4e00-\u9fa5" + re.escape(PUNCTUATION) + r"]+")
_REPEATED_PUNCT = re.compile(f"([{re.escape(PUNCTUATION)}])[{re.escape(PUNCTUATION)}]+")


@lru_cache(maxsize=1)
def _traditional_to_simplified() -> dict[int, str]:
    raw = resources.files("studio.text.zh").joinpath("data/t2s_chars.json").read_text(encoding="utf-8")
    return {ord(k): v for k, v in json.loads(raw)["map"].items()}


def split_sentences(text: str) -> list[str]:
    """Drop spaces and bracket-like symbols, then cut after every sentence or clause mark."""
    text = _DROPPED_EARLY.sub("", text.replace(" ", ""))
    text = _SENTENCE_END.sub("\\1\n", text).strip()
    return [piece.strip() for piece in re.split(r"\n+", text)]


def verbalize_sentence(sentence: str) -> str:
    """Rewrite every number-like token of one sentence in Chinese characters."""
    sentence = sentence.translate(_traditional_to_simplified()).translate(_FULL_TO_HALF)
    for rule in vb.RULES:
        sentence = rule(sentence)
    for old, new in _LATE_REPLACEMENTS:
        sentence = sentence.replace(old, new)
    return _DROPPED_LATE.sub("", sentence)


def map_punctuation(sentence: str) -> str:
    """Map Chinese/ASCII marks onto ``! ? … , . -`` and delete everything that is not a CJK ideograph."""
    sentence = sentence.replace("嗯", "恩").replace("呣", "母")
    sentence = _map_marks(sentence)
    return _NOT_KEPT.sub("", sentence)


def normalize(text: str) -> str:
    """The normalised text that G2P and the BERT tokenizer see (upstream ``text_normalize``)."""
    joined = "".join(map_punctuation(verbalize_sentence(s)) for s in split_sentences(text))
    return _REPEATED_PUNCT.sub("\\1", joined)
