"""Korean text front end (upstream ``clean_text(text, "ko", "v2")``).

Steps: Latin letters are spelled as Hangul letter names; ``g2pk2`` (with MeCab via python-mecab-ko)
rewrites the text as it is pronounced (numbers read out, liaison, tensing, …); the result is taken
apart into compatibility jamo, compound vowels and double final consonants are split into their
parts, one known g2pk2 slip is repaired, and every character becomes one phone: punctuation is
mapped onto the shared marks, a space becomes ``空`` and anything outside the phone table ``停``.
A text ending in a jamo gets a final ``.``. There is no ``word2ph``; the text is not normalised.

g2pk2 looks for NLTK's ``cmudict`` corpus (and tries to download it) when imported, and uses it only
for English words. Those never reach it here (letters are spelled out first), so it is built without
that corpus and works offline.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from functools import lru_cache
from typing import Any

from studio.errors import TextError
from studio.text.punctuation import CJK_PUNCT_MAP
from studio.text.symbols import symbol_table
from studio.text.types import CleanedText

__all__ = ["clean", "g2p", "latin_to_hangul", "to_jamo"]

_LOGGER = logging.getLogger(__name__)

# How Korean speakers name the Latin letters.
_LETTER_NAMES = dict(
    zip(
        "abcdefghijklmnopqrstuvwxyz",
        "에이 비 시 디 이 에프 지 에이치 아이 제이 케이 엘 엠 엔 오 피 큐 아르 에스 티 유 브이 더블유 엑스 와이 제트".split(),
    )
)
_LETTER_TABLE = {ord(c): name for c, name in _LETTER_NAMES.items()}
_LETTER_TABLE.update({ord(c.upper()): name for c, name in _LETTER_NAMES.items()})
# Case-insensitive matching (as upstream does it) also catches the Kelvin sign and the long s.
_LETTER_TABLE.update({0x212A: _LETTER_NAMES["k"], 0x017F: _LETTER_NAMES["s"]})

# Compound letters → their parts (double final consonants, then diphthongs and y-vowels).
_SPLIT_LETTERS = {
    "ㄳ": "ㄱㅅ",
    "ㄵ": "ㄴㅈ",
    "ㄶ": "ㄴㅎ",
    "ㄺ": "ㄹㄱ",
    "ㄻ": "ㄹㅁ",
    "ㄼ": "ㄹㅂ",
    "ㄽ": "ㄹㅅ",
    "ㄾ": "ㄹㅌ",
    "ㄿ": "ㄹㅍ",
    "ㅀ": "ㄹㅎ",
    "ㅄ": "ㅂㅅ",
    "ㅘ": "ㅗㅏ",
    "ㅙ": "ㅗㅐ",
    "ㅚ": "ㅗㅣ",
    "ㅝ": "ㅜㅓ",
    "ㅞ": "ㅜㅔ",
    "ㅟ": "ㅜㅣ",
    "ㅢ": "ㅡㅣ",
    "ㅑ": "ㅣㅏ",
    "ㅒ": "ㅣㅐ",
    "ㅕ": "ㅣㅓ",
    "ㅖ": "ㅣㅔ",
    "ㅛ": "ㅣㅗ",
    "ㅠ": "ㅣㅜ",
}
_SPLIT_TABLE = {ord(k): v for k, v in _SPLIT_LETTERS.items()}

# g2pk2 leaves "ㄹ" at the start of a word after one ending in 을/를 (e.g. "할 일을 라면"), where it is
# said ㄴ; only the word-initial ㄹ right after the space is changed.
_RIEUL_AFTER_EUL = re.compile("([ㅇㄹ]ㅡㄹ) ㄹ")
# A text that ends in a jamo gets a full stop (``$`` as in upstream: also before a final newline).
_ENDS_IN_JAMO = re.compile("([\u3131-\u3163])$")

_PUNCT_MAP = {**CJK_PUNCT_MAP, " ": "空"}
UNKNOWN = "停"

_G2P_LOCK = threading.Lock()


def latin_to_hangul(text: str) -> str:
    """Spell every Latin letter as its Korean name (``"TV"`` → ``"티브이"``)."""
    return text.translate(_LETTER_TABLE)


def to_jamo(text: str) -> str:
    """Hangul syllables → compatibility jamo, compound letters split (``"와"`` → ``"ㅇㅗㅏ"``)."""
    from jamo import h2j, j2hcj

    return j2hcj(h2j(text)).translate(_SPLIT_TABLE)


def _no_download(*args: object, **kwargs: object) -> bool:
    _LOGGER.debug("g2pk2 asked NLTK to download %s; not needed here, skipped", args)
    return False


@lru_cache(maxsize=1)
def _g2pk() -> Any:
    """A ``g2pk2.G2p`` set up offline: MeCab from python-mecab-ko, no CMU dictionary."""
    try:
        import mecab
        import nltk
    except ImportError as err:
        raise TextError(
            "The Korean front end needs g2pk2 and python-mecab-ko.",
            hint="Install them with: pip install g2pk2 python-mecab-ko",
        ) from err
    download = nltk.download
    nltk.download = _no_download  # g2pk2 calls it at import when the cmudict corpus is absent
    try:
        from g2pk2 import g2pk2 as module
        from g2pk2.utils import get_rule_id2text, parse_table
    except ImportError as err:
        raise TextError("The Korean front end needs g2pk2.", hint="Install it with: pip install g2pk2") from err
    finally:
        nltk.download = download
    try:
        tagger = mecab.MeCab()
    except Exception as err:  # python-mecab-ko raises its own error types when the dictionary is missing
        raise TextError(
            f"MeCab could not start for the Korean front end: {err}",
            hint="Install the dictionary with: pip install python-mecab-ko-dic",
        ) from err
    # G2p.__init__ would pip-install MeCab if missing, print, and load NLTK's cmudict; fill it in ourselves.
    converter = module.G2p.__new__(module.G2p)
    converter.use_konlpy = False
    converter.mecab_path = None
    converter.mecab = tagger
    converter.table = parse_table()
    converter.cmu = {}  # only used for Latin words, which latin_to_hangul has already removed
    converter.rule2text = get_rule_id2text()
    converter.idioms_path = os.path.join(os.path.dirname(os.path.abspath(module.__file__)), "idioms.txt")
    return converter


def _phone(char: str) -> str:
    char = _PUNCT_MAP.get(char, char)
    return char if char in symbol_table("v2") else UNKNOWN


def g2p(text: str) -> list[str]:
    """Korean text → one phone per jamo, mark or space."""
    spelled = latin_to_hangul(text)
    converter = _g2pk()
    with _G2P_LOCK:
        spoken = converter(spelled)
    jamo = _RIEUL_AFTER_EUL.sub("\\1 ㄴ", to_jamo(spoken))
    jamo = _ENDS_IN_JAMO.sub("\\1.", jamo)
    return [_phone(c) for c in jamo]


def clean(text: str) -> CleanedText:
    """Phones of one Korean segment; ``norm_text`` is the input text unchanged."""
    return CleanedText(phones=g2p(text), word2ph=None, norm_text=text)
