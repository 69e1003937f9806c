"""English text → ARPAbet phones (GPT-SoVITS v2 ``english`` cleaner behaviour).

``normalize(text)`` spells out numbers, money, times and units and tidies punctuation; ``clean(text)``
normalises and converts to phones. Results with fewer than 4 phones get a leading ``,`` (upstream does
this so that very short English still has a pause token). Phones outside the symbol table are dropped.
"""

from __future__ import annotations

import logging

from studio.text.en import g2p as _g2p
from studio.text.en.normalizer import normalize
from studio.text.types import CleanedText

_LOGGER = logging.getLogger(__name__)

MIN_PHONES = 4


def clean(text: str) -> CleanedText:
    """Normalise and convert English ``text``; ``word2ph`` is ``None`` for English."""
    norm_text = normalize(text)
    phones = _g2p.g2p(norm_text)
    if len(phones) < MIN_PHONES:
        phones = [",", *phones]
    _LOGGER.debug("en %r -> %s", norm_text, phones)
    return CleanedText(phones=phones, word2ph=None, norm_text=norm_text)


__all__ = ["clean", "normalize"]
