"""Japanese text → phones with pitch-accent marks (GPT-SoVITS v2 ``japanese`` cleaner behaviour).

``clean(text)`` returns raw phones: Open JTalk phones, ``[``/``]`` pitch rise/fall, ``#`` accent-phrase
boundary, ``_`` pause, and punctuation mapped to ``, . ! ? …``. ``#`` and ``_`` are not in the v2
symbol table; the cleaner turns them into ``UNK`` exactly as upstream's models were trained.

The Open JTalk dictionary ships inside the ``pyopenjtalk-plus`` wheel, so nothing is downloaded.
"""

from __future__ import annotations

import logging
import re
from functools import lru_cache

from studio.errors import TextError
from studio.text.ja.prosody import labels_to_prosody_phones
from studio.text.punctuation import CJK_PUNCT_MAP
from studio.text.types import CleanedText

_LOGGER = logging.getLogger(__name__)

# Characters Open JTalk reads. Everything else splits the text and is kept as a "mark".
# (Full-width digits start at １: upstream's class leaves out ０, which therefore acts as a mark.)
_JA_CHARS = "A-Za-z\\d\u3005\u3040-\u30ff\u4e00-\u9fff\uff11-\uff19\uff21-\uff3a\uff41-\uff5a\uff66-\uff9d"
_JA_CHAR_RE = re.compile(f"[{_JA_CHARS}]")
_MARK_RE = re.compile(f"[^{_JA_CHARS}]")

# Consecutive ASCII sentence punctuation (and …) collapses to the first mark.
_REPEATED_PUNCT_RE = re.compile(r"([!?…,.])([!?…,.])+")

_MARK_MAP = {**CJK_PUNCT_MAP, "...": "…"}


def normalize(text: str) -> str:
    """Japanese normalisation: only runs of punctuation collapse to their first mark."""
    return _REPEATED_PUNCT_RE.sub(r"\1", text)


@lru_cache(maxsize=1)
def _openjtalk():
    try:
        import pyopenjtalk
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise TextError(
            "Japanese text needs the 'pyopenjtalk-plus' package, which is not installed.",
            hint="Run: pip install pyopenjtalk-plus",
        ) from exc
    return pyopenjtalk


def _chunk_phones(chunk: str) -> list[str]:
    """Prosody phones of one run of Japanese characters, without the sentence start/end marks."""
    jtalk = _openjtalk()
    labels = jtalk.make_label(jtalk.run_frontend(chunk))
    if not labels:
        return []
    return labels_to_prosody_phones(labels)[1:-1]


def g2p(norm_text: str) -> list[str]:
    """Phones of normalised Japanese text; marks between Japanese runs become phones (spaces are dropped)."""
    text = norm_text.replace("％", "パーセント").lower()
    chunks = _MARK_RE.split(text)
    marks = _MARK_RE.findall(text)
    phones: list[str] = []
    for index, chunk in enumerate(chunks):
        if chunk and _JA_CHAR_RE.match(chunk):
            phones.extend(_chunk_phones(chunk))
        if index < len(marks) and marks[index] != " ":
            phones.append(marks[index])
    return [_MARK_MAP.get(phone, phone) for phone in phones]


def clean(text: str) -> CleanedText:
    """Normalise and convert Japanese ``text``; ``word2ph`` is ``None`` for Japanese."""
    norm_text = normalize(text)
    phones = g2p(norm_text)
    _LOGGER.debug("ja %r -> %s", norm_text, phones)
    return CleanedText(phones=phones, word2ph=None, norm_text=norm_text)


__all__ = ["clean", "g2p", "normalize"]
