"""Mandarin tone sandhi on segmented words (the PaddleSpeech rules upstream uses).

Two stages, applied by :mod:`.g2p`:

* :func:`merge_words` joins jieba words whose tones interact: 不 + next word, reduplication with
  一 (看一看), a lone 一 + next word, repeated words, neighbouring third-tone words, 儿.
* :func:`apply_sandhi` rewrites the TONE3 finals of one word: 不 (bu2 before tone 4), 一 (yi2 /
  yi4 / yi5), neutral-tone words and particles, and third-tone sandhi (3-3 → 2-3).

A word is a ``[text, pos]`` pair; finals are pypinyin TONE3 finals with neutral tone ``5``.
"""

from __future__ import annotations

import json
import logging
from functools import lru_cache
from importlib import resources

from studio.text.zh import segment

_LOGGER = logging.getLogger(__name__)

_PARTICLES = "吧呢哈啊呐噻嘛吖嗨呐哦哒额滴哩哟喽啰耶喔诶"
_STRUCTURAL = "的地得"
_ASPECT = "了着过"
_PLURAL_OR_SUFFIX = "们子"
_LOCATIVE = "上下里"
_DIRECTIONAL = "来去"
_BEFORE_DIRECTIONAL = "上下进出回过起开"
_BEFORE_GE = "几有两半多各整每做是"
_PUNCT = "：，；。？！“”‘’':,;.?!"

Word = list  # [text: str, pos: str]


@lru_cache(maxsize=1)
def _word_lists() -> tuple[frozenset[str], frozenset[str]]:
    raw = resources.files("studio.text.zh").joinpath("data/neutral_tone_words.json").read_text(encoding="utf-8")
    data = json.loads(raw)
    return frozenset(data["neutral_tone_words"]), frozenset(data["never_neutral_words"])


def _with_tone(final: str, tone: str) -> str:
    return final[:-1] + tone


def _all_third(finals: list[str]) -> bool:
    return all(f[-1] == "3" for f in finals)


def _is_reduplication(word: str) -> bool:
    return len(word) == 2 and word[0] == word[1]


def _split_in_two(word: str) -> list[str]:
    """Cut a word in two at its shortest search-mode sub-word (e.g. 蒙古包 → 蒙古 | 包)."""
    pieces = sorted(segment.cut_for_search(word), key=len)
    first = pieces[0]
    if word.find(first) == 0:
        return [first, word[len(first) :]]
    return [word[: -len(first)], first]


# --- pre-merge of the jieba words ---------------------------------------------------------------


def _merge_bu(words: list[Word]) -> list[Word]:
    merged: list[Word] = []
    previous = ""
    for text, pos in words:
        if previous == "不":
            text = previous + text
        if text != "不":
            merged.append([text, pos])
        previous = text
    if previous == "不":
        merged.append([previous, "d"])
    return merged


def _merge_yi(words: list[Word]) -> list[Word]:
    """看/一/看 → 看一看 (verbs only), then a lone 一 absorbs the next word.

    Upstream indexes its output list with the *input* position when merging a reduplication, so
    a second 看一看-pattern after an earlier merge raises; the caller then keeps the words as they
    were. We reproduce that (IndexError).
    """
    merged: list[Word] = []
    for i, (text, pos) in enumerate(words):
        if 0 < i < len(words) - 1 and text == "一" and words[i - 1][0] == words[i + 1][0] and words[i - 1][1] == "v":
            merged[i - 1][0] = merged[i - 1][0] + "一" + merged[i - 1][0]
        elif i >= 2 and words[i - 1][0] == "一" and words[i - 2][0] == text and pos == "v":
            continue
        else:
            merged.append([text, pos])
    result: list[Word] = []
    for text, pos in merged:
        if result and result[-1][0] == "一":
            result[-1][0] = result[-1][0] + text
        else:
            result.append([text, pos])
    return result


def _merge_repeats(words: list[Word]) -> list[Word]:
    merged: list[Word] = []
    for text, pos in words:
        if merged and text == merged[-1][0]:
            merged[-1][0] = merged[-1][0] + text
        else:
            merged.append([text, pos])
    return merged


def _merge_third_tones(words: list[Word], *, whole_words: bool) -> list[Word]:
    """Join two neighbours (≤ 3 characters together) whose tones are all third (``whole_words``) or
    that meet with a third tone on both sides of the boundary."""
    finals = [segment.finals_tone3(text) for text, _ in words]
    merged: list[Word] = []
    merged_into_previous = [False] * len(words)
    for i, (text, pos) in enumerate(words):
        if i > 0:
            # Same evaluation order as upstream: an empty final raises IndexError here.
            if whole_words:
                meets = _all_third(finals[i - 1]) and _all_third(finals[i])
            else:
                meets = finals[i - 1][-1][-1] == "3" and finals[i][0][-1] == "3"
            previous = words[i - 1][0]
            can_merge = not merged_into_previous[i - 1] and not _is_reduplication(previous)
            if meets and can_merge and len(previous) + len(text) <= 3:
                merged[-1][0] = merged[-1][0] + text
                merged_into_previous[i] = True
                continue
        merged.append([text, pos])
    return merged


def _merge_er(words: list[Word]) -> list[Word]:
    merged: list[Word] = []
    for i, (text, pos) in enumerate(words):
        if i > 0 and text == "儿" and words[i - 1][0] != "#":
            merged[-1][0] = merged[-1][0] + text
        else:
            merged.append([text, pos])
    return merged


def merge_words(words: list[tuple[str, str]]) -> list[Word]:
    """Upstream ``pre_merge_for_modify``: steps that fail on odd input are skipped, as upstream does."""
    merged = _merge_bu([list(w) for w in words])
    steps = (
        _merge_yi,
        _merge_repeats,
        lambda ws: _merge_third_tones(ws, whole_words=True),
        lambda ws: _merge_third_tones(ws, whole_words=False),
    )
    for number, step in enumerate(steps):
        try:
            merged = step([list(w) for w in merged])
        except IndexError:
            _LOGGER.debug("tone-sandhi merge step %d skipped for %r", number, merged)
    return _merge_er(merged)


# --- tone rewriting of one word -----------------------------------------------------------------


def _bu(word: str, finals: list[str]) -> list[str]:
    if len(word) == 3 and word[1] == "不":  # 看不懂
        finals[1] = _with_tone(finals[1], "5")
        return finals
    for i, char in enumerate(word):
        if char == "不" and i + 1 < len(word) and finals[i + 1][-1] == "4":
            finals[i] = _with_tone(finals[i], "2")
    return finals


def _yi(word: str, finals: list[str]) -> list[str]:
    if "一" in word and all(ch.isnumeric() for ch in word if ch != "一"):
        return finals  # inside a number: 一零零, 二一零
    if len(word) == 3 and word[1] == "一" and word[0] == word[-1]:
        finals[1] = _with_tone(finals[1], "5")  # 看一看
    elif word.startswith("第一"):
        finals[1] = _with_tone(finals[1], "1")
    else:
        for i, char in enumerate(word):
            if char == "一" and i + 1 < len(word):
                if finals[i + 1][-1] == "4":
                    finals[i] = _with_tone(finals[i], "2")
                elif word[i + 1] not in _PUNCT:
                    finals[i] = _with_tone(finals[i], "4")
    return finals


def _neutral(word: str, pos: str, finals: list[str]) -> list[str]:
    neutral_words, never_neutral = _word_lists()
    for j in range(1, len(word)):
        if word[j] == word[j - 1] and pos[0] in "nva" and word not in never_neutral:
            finals[j] = _with_tone(finals[j], "5")
    ge = word.find("个")
    last = word[-1] if word else ""
    if last and last in _PARTICLES:
        finals[-1] = _with_tone(finals[-1], "5")
    elif last and last in _STRUCTURAL:
        finals[-1] = _with_tone(finals[-1], "5")
    elif len(word) == 1 and word in _ASPECT and pos in {"ul", "uz", "ug"}:
        finals[-1] = _with_tone(finals[-1], "5")
    elif len(word) > 1 and last in _PLURAL_OR_SUFFIX and pos in {"r", "n"} and word not in never_neutral:
        finals[-1] = _with_tone(finals[-1], "5")
    elif len(word) > 1 and last in _LOCATIVE and pos in {"s", "l", "f"}:
        finals[-1] = _with_tone(finals[-1], "5")
    elif len(word) > 1 and last in _DIRECTIONAL and word[-2] in _BEFORE_DIRECTIONAL:
        finals[-1] = _with_tone(finals[-1], "5")
    elif (ge >= 1 and (word[ge - 1].isnumeric() or word[ge - 1] in _BEFORE_GE)) or word == "个":
        finals[ge] = _with_tone(finals[ge], "5")
    elif word in neutral_words or word[-2:] in neutral_words:
        finals[-1] = _with_tone(finals[-1], "5")

    parts = _split_in_two(word)
    halves = [finals[: len(parts[0])], finals[len(parts[0]) :]]
    for half, part in zip(halves, parts):
        if part in neutral_words or part[-2:] in neutral_words:
            half[-1] = _with_tone(half[-1], "5")
    return halves[0] + halves[1]


def _third(word: str, finals: list[str]) -> list[str]:
    if len(word) == 2 and _all_third(finals):
        finals[0] = _with_tone(finals[0], "2")
    elif len(word) == 3:
        parts = _split_in_two(word)
        if _all_third(finals):
            if len(parts[0]) == 2:  # 蒙古/包
                finals[0] = _with_tone(finals[0], "2")
                finals[1] = _with_tone(finals[1], "2")
            elif len(parts[0]) == 1:  # 纸/老虎
                finals[1] = _with_tone(finals[1], "2")
        else:
            halves = [finals[: len(parts[0])], finals[len(parts[0]) :]]
            for i, half in enumerate(halves):
                if _all_third(half) and len(half) == 2:  # 所有/人
                    half[0] = _with_tone(half[0], "2")
                elif i == 1 and not _all_third(half) and half[0][-1] == "3" and halves[0][-1][-1] == "3":
                    halves[0][-1] = _with_tone(halves[0][-1], "2")  # 好/喜欢
            finals = halves[0] + halves[1]
    elif len(word) == 4:  # idioms: two pairs
        for start in (0, 2):
            if _all_third(finals[start : start + 2]):
                finals[start] = _with_tone(finals[start], "2")
    return finals


def apply_sandhi(word: str, pos: str, finals: list[str]) -> list[str]:
    """Upstream ``modified_tone``: 不, 一, neutral tone, then third-tone sandhi."""
    finals = _bu(word, list(finals))
    finals = _yi(word, finals)
    finals = _neutral(word, pos, finals)
    return _third(word, finals)
