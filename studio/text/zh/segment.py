"""Word segmentation (jieba) and raw pypinyin readings, loaded lazily once per process.

jieba's dictionary ships inside the package, so nothing is downloaded.
"""

from __future__ import annotations

import logging
import threading
from functools import lru_cache
from typing import Any

_LOGGER = logging.getLogger(__name__)
_LOCK = threading.Lock()


@lru_cache(maxsize=1)
def _jieba() -> tuple[Any, Any]:
    """``jieba_fast`` when installed (what upstream runs), else ``jieba``.

    Both give identical POS segmentation; they differ only in how the HMM splits runs of rare
    characters that form no dictionary word (search-mode cuts of nonsense such as 厩馎).
    """
    with _LOCK:
        try:
            import jieba_fast as jieba
            import jieba_fast.posseg as posseg
        except ImportError:
            import jieba
            import jieba.posseg as posseg

        jieba.setLogLevel(logging.WARNING)
        jieba.initialize()
        _LOGGER.debug("word segmentation by %s", jieba.__name__)
        return jieba, posseg


def tag_words(sentence: str) -> list[tuple[str, str]]:
    """jieba words with their part-of-speech flags (HMM on, as ``posseg.lcut`` defaults)."""
    _, posseg = _jieba()
    return [(pair.word, pair.flag) for pair in posseg.lcut(sentence)]


def cut_for_search(word: str) -> list[str]:
    jieba, _ = _jieba()
    return list(jieba.cut_for_search(word))


def initials(word: str) -> list[str]:
    """pypinyin strict initials, one per character ('' for none; non-Chinese runs stay as they are)."""
    from pypinyin import Style, lazy_pinyin

    return lazy_pinyin(word, neutral_tone_with_five=True, style=Style.INITIALS)


def finals_tone3(word: str) -> list[str]:
    """pypinyin strict finals with the tone digit appended (neutral tone = 5)."""
    from pypinyin import Style, lazy_pinyin

    return lazy_pinyin(word, neutral_tone_with_five=True, style=Style.FINALS_TONE3)
