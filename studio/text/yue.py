"""Cantonese text front end: normalisation and jyutping G2P (upstream ``clean_text(text, "yue", "v2")``).

Normalisation is the Mandarin ``TextNormalizer`` (numbers, dates, units, traditional → simplified)
followed by a Cantonese punctuation mapping that differs from the Mandarin one (``~`` becomes ``-``,
not ``…``; there is no 嗯/呣 respelling and repeated marks are not collapsed). Readings come from
the ``ToJyutping`` package, which looks at whole words, so it is given the whole normalised text.

Each syllable becomes two phones, ``Y`` + initial and ``Y`` + final + tone (佢 keoi5 → ``Yk Yeoi5``);
punctuation marks stay bare and count one phone each.
"""

from __future__ import annotations

import logging
import re
from functools import lru_cache
from typing import Any

from studio.errors import TextError
from studio.text.punctuation import CJK_PUNCT_MAP, mark_replacer
from studio.text.types import CleanedText
from studio.text.zh.normalize import split_sentences, verbalize_sentence

__all__ = ["clean", "normalize", "syllable_phones"]

_LOGGER = logging.getLogger(__name__)

PUNCTUATION = "!?…,.-"

# Marks mapped onto the kept punctuation; quotes and brackets become "'" (and so are deleted below).
_map_marks = mark_replacer(
    {
        **CJK_PUNCT_MAP,
        "...": "…",
        "$": ".",
        "—": "-",
        "～": "-",
        "~": "-",
        **dict.fromkeys('“”"‘’（）()《》【】[]「」', "'"),
    }
)
_NOT_KEPT = re.compile(r"[^\u4e00-\u9fa5" + re.escape(PUNCTUATION) + r"]+")
_PUNCT_SET = frozenset(PUNCTUATION)
_ONLY_PUNCT = re.compile(f"^[{re.escape(PUNCTUATION)}]+$")
# One character may carry several syllables ("cin1 hak1"); each is letters then tone digit(s).
_JYUTPING = re.compile(r"^([a-z]+[1-6]+ ?)+$")

# Syllable onsets, matched longest first. Besides the consonants, upstream's list holds several
# zero-initial rhymes (aa, ai, ak, …) that are split like an initial + its last letter (aa3 → aa + a3).
# Its list also names aai/aak/aap/aat/aau, but after "aa" where they can never match: they are left
# out here so that longest-prefix matching gives the same split (e.g. aat3 → aa + t3).
_INITIALS = ("aa ai au ap at ak a p b e ts t dz d kw k gw g f h l m ng n s y w c z j ong on ou oi ok o uk ung").split()


def _map_punctuation(sentence: str) -> str:
    return _NOT_KEPT.sub("", _map_marks(sentence))


def normalize(text: str) -> str:
    """The normalised text: CJK ideographs U+4E00–U+9FA5 (simplified) and the marks ``! ? … , . -``."""
    return "".join(_map_punctuation(verbalize_sentence(s)) for s in split_sentences(text))


def syllable_phones(syllable: str) -> list[str]:
    """Split one jyutping syllable (``"keoi5"``) into ``["Yk", "Yeoi5"]``.

    A rhyme-only onset with nothing after it repeats its last letter as the final (``m4`` → ``Ym Ym4``,
    ``ng5`` → ``Yng Yg5``). A syllable matching no onset gives no phones (upstream drops it too).
    """
    tone = syllable[-1] if syllable[-1:].isdigit() else ""
    base = syllable[:-1] if tone else syllable
    initial = max((i for i in _INITIALS if base.startswith(i)), key=len, default=None)
    if initial is None:
        _LOGGER.warning("Cantonese syllable %r has no known initial; it is dropped", syllable)
        return []
    final = base[len(initial) :] or initial[-1]
    return [f"Y{initial}", f"Y{final}{tone}"]


@lru_cache(maxsize=1)
def _tojyutping() -> Any:
    try:
        import ToJyutping
    except ImportError as err:  # pragma: no cover - depends on the installation
        raise TextError(
            "The Cantonese front end needs the ToJyutping package.", hint="Install it with: pip install ToJyutping"
        ) from err
    return ToJyutping


def _readings(norm_text: str) -> list[str]:
    """One entry per character: its jyutping, or the punctuation mark itself."""
    readings = []
    for char, jyutping in _tojyutping().get_jyutping_list(norm_text):
        if _ONLY_PUNCT.match(char):
            readings.extend(char)
        elif jyutping is None or not _JYUTPING.match(jyutping):
            raise TextError(
                f"No Cantonese reading is known for the character {char!r}.",
                hint="Replace it with a more common character or write it out differently.",
            )
        else:
            readings.append(jyutping)
    return readings


def g2p(norm_text: str) -> tuple[list[str], list[int]]:
    """Phones and ``word2ph`` (2 per syllable, 1 per punctuation mark) of a normalised text."""
    phones: list[str] = []
    word2ph: list[int] = []
    for reading in _readings(norm_text):
        if reading in _PUNCT_SET:
            phones.append(reading)
            word2ph.append(1)
            continue
        pair = syllable_phones(reading)
        if pair:
            phones.extend(pair)
            word2ph.append(2)
    return phones, word2ph


def clean(text: str) -> CleanedText:
    """Normalise ``text`` and convert it to phones; ``sum(word2ph) == len(phones)``."""
    norm_text = normalize(text)
    phones, word2ph = g2p(norm_text)
    return CleanedText(phones=phones, word2ph=word2ph, norm_text=norm_text)
