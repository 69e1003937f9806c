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
    stand_ins = _user_stand_ins()
    originals: list[tuple[str, str]] = []
    if stand_ins:
        text, originals = _swap_in(text, stand_ins)
    norm_text = normalize(text)
    phones = _g2p.g2p(norm_text)
    for stand_in, original in originals:  # show the user's words, as written, in the normalised text
        norm_text = norm_text.replace(stand_in, original, 1)
    if len(phones) < MIN_PHONES:
        phones = [",", *phones]
    _LOGGER.debug("en %r -> %s", norm_text, phones)
    return CleanedText(phones=phones, word2ph=None, norm_text=norm_text)


def _user_stand_ins() -> dict[str, str]:
    from studio.text.user_lexicon import active

    user = active()
    return user.english_placeholders() if user is not None and user.en else {}


def _swap_in(text: str, stand_ins: dict[str, str]) -> tuple[str, list[tuple[str, str]]]:
    """Replace each user word (whole word, any case) by its letters-only stand-in; also returns
    (stand-in, original spelling) per replacement, in order."""
    import re

    words = sorted(stand_ins, key=len, reverse=True)
    pattern = re.compile(r"(?<![A-Za-z'])(" + "|".join(map(re.escape, words)) + r")(?![A-Za-z])", re.IGNORECASE)
    originals: list[tuple[str, str]] = []

    def swap(match: re.Match[str]) -> str:
        stand_in = stand_ins[match.group(1).lower()]
        originals.append((stand_in, match.group(1)))
        after = match.string[match.end() : match.end() + 1]
        return stand_in + (" " if after.isdigit() else "")  # "GPT4": keep the number a word of its own

    return pattern.sub(swap, text), originals


__all__ = ["clean", "normalize"]
