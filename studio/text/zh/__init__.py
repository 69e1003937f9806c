"""Mandarin text front end: normalisation and G2P (upstream ``clean_text(text, "zh", "v2")``).

``clean(text)`` returns raw phone symbols (not ids, unknowns not replaced), one ``word2ph`` entry
per character of the normalised text, and the normalised text itself (what BERT tokenises).
Readings come from pypinyin + tone sandhi (upstream's non-g2pW path).
"""

from __future__ import annotations

from studio.text.types import CleanedText
from studio.text.zh.normalize import normalize

__all__ = ["clean", "normalize"]

# A special character in the input marks pauses: it is read as a comma, and then every comma
# phone of the text becomes the given silence symbol. Only the first mark found is honoured.
_SILENCE_MARKS = (("￥", "SP2"), ("^", "SP3"))


def clean(text: str) -> CleanedText:
    """Normalise ``text`` and convert it to phones; ``sum(word2ph) == len(phones)``."""
    from studio.text.zh.g2p import g2p

    for mark, silence in _SILENCE_MARKS:
        if mark in text:
            norm_text = normalize(text.replace(mark, ","))
            phones, word2ph = g2p(norm_text)
            phones = [silence if p == "," else p for p in phones]
            return CleanedText(phones=phones, word2ph=word2ph, norm_text=norm_text)
    norm_text = normalize(text)
    phones, word2ph = g2p(norm_text)
    return CleanedText(phones=phones, word2ph=word2ph, norm_text=norm_text)
