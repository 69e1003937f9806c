"""Normalised Mandarin text → phone symbols and per-character phone counts (word2ph).

Pipeline per clause (the text is cut after every punctuation mark): drop Latin letters, jieba
POS segmentation, tone-sandhi word merging, pypinyin initials/finals per word, tone sandhi,
儿 tone agreement, then each syllable becomes two symbols (initial, final+tone) and each
punctuation mark one symbol.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from importlib import resources

from studio.errors import TextError
from studio.text.zh import pinyin, segment, tone_sandhi
from studio.text.zh.normalize import PUNCTUATION

_CLAUSE_END = re.compile(r"(?<=[" + re.escape(PUNCTUATION) + r"])\s*")
_LATIN = re.compile(r"[a-zA-Z]+")
_NO_ERHUA_POS = {"a", "j", "nr"}


@lru_cache(maxsize=1)
def _erhua_lists() -> tuple[frozenset[str], frozenset[str]]:
    raw = resources.files("studio.text.zh").joinpath("data/erhua.json").read_text(encoding="utf-8")
    data = json.loads(raw)
    return frozenset(data["always_erhua"]), frozenset(data["never_erhua"])


def _erhua(initials: list[str], finals: list[str], word: str, pos: str) -> tuple[list[str], list[str]]:
    """A final 儿 takes the tone of the syllable before it (it keeps its own phones)."""
    always, never = _erhua_lists()
    if finals and word[len(finals) - 1 : len(finals)] == "儿" and finals[-1] == "er1":
        finals[-1] = "er2"
    if word not in always and (word in never or pos in _NO_ERHUA_POS):
        return initials, finals
    if len(finals) != len(word):
        return initials, finals
    last = len(word) - 1
    if last > 0 and word[last] == "儿" and finals[last] in {"er2", "er5"} and word[-2:] not in never:
        finals[last] = "er" + finals[last - 1][-1]
    return initials, finals


def _syllable_phones(initial: str, final: str, clause: str) -> list[str]:
    tone, toneless = final[-1:], final[:-1]
    phones = pinyin.table().get(pinyin.spell(initial, toneless)) if tone in {"1", "2", "3", "4", "5"} else None
    if phones is None:
        raise TextError(
            f"cannot pronounce the reading {initial + final!r} in {clause!r}",
            hint="Replace the rare character with a common one of the same sound.",
        )
    return [phones[0], phones[1] + tone]


def _clause_readings(clause: str) -> tuple[list[str], list[str]]:
    initials: list[str] = []
    finals: list[str] = []
    for word, pos in tone_sandhi.merge_words(segment.tag_words(clause)):
        if pos == "eng":
            continue
        word_initials = segment.initials(word)
        word_finals = tone_sandhi.apply_sandhi(word, pos, segment.finals_tone3(word))
        word_initials, word_finals = _erhua(word_initials, word_finals, word, pos)
        initials += word_initials
        finals += word_finals
    return initials, finals


def _readings_with_user_words(clause: str) -> list[tuple[str, str]]:
    """(initial, final) per character; words of the active user lexicon take their given reading."""
    from studio.text.user_lexicon import active

    user = active()
    words = [w for w in sorted(user.zh, key=len, reverse=True) if w in clause] if user is not None else []
    if not words:
        return list(zip(*_clause_readings(clause)))
    readings: list[tuple[str, str]] = []
    for piece in re.split("(" + "|".join(map(re.escape, words)) + ")", clause):
        if piece in user.zh:
            readings.extend(user.zh[piece])
        elif piece:
            readings.extend(zip(*_clause_readings(piece)))
    return readings


def g2p(norm_text: str) -> tuple[list[str], list[int]]:
    """Phones and word2ph of already normalised text (see :func:`studio.text.zh.normalize`)."""
    phones: list[str] = []
    word2ph: list[int] = []
    for clause in _CLAUSE_END.split(norm_text):
        if not clause.strip():
            continue
        clause = _LATIN.sub("", clause)
        for initial, final in _readings_with_user_words(clause):
            if initial == final:  # punctuation passes through pypinyin unchanged
                phones.append(initial)
                word2ph.append(1)
            else:
                phones += _syllable_phones(initial, final, clause)
                word2ph.append(2)
    return phones, word2ph
