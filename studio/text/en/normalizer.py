"""English text normalisation (GPT-SoVITS v2 ``english.text_normalize`` behaviour).

Order: CJK sentence marks → ASCII, numeric expressions spelled out, accents stripped, ``%`` → "percent",
every character outside ``[ A-Za-z'.,?!-]`` removed, "i.e."/"e.g." expanded, a space inserted before an
upper-case letter that neither starts the text nor follows whitespace ("OpenAI" → "Open A I"), and runs of
punctuation collapsed.

One deliberate departure, the named rule :data:`studio.text.deviations.LETTER_PLURALS`: a plural of spelled
letters is written with an apostrophe first ("TVs" → "T V's", read T IY1 V IY1 Z, where upstream reads "T versus").

Only ``。！？`` are mapped to ASCII. Upstream's table also lists ``;:：，；"’`` but never applies them, so
those characters are simply removed (the goldens show "photo，" → "photo").
"""

from __future__ import annotations

import re
import unicodedata

from studio.text import deviations
from studio.text.en import numbers

_CJK_MARKS = str.maketrans({"。": ".", "！": "!", "？": "?"})

_NUMERIC_STEPS = (
    numbers.expand_list_items,
    numbers.expand_arithmetic,
    numbers.expand_negative,
    numbers.remove_thousands_commas,
    numbers.expand_times,
    numbers.expand_units,
    numbers.expand_money,
    numbers.expand_decimals,
    numbers.expand_fractions,
    numbers.expand_ordinals,
    numbers.expand_cardinals,
)

_NOT_KEPT_RE = re.compile(r"[^ A-Za-z'.,?!\-]")
_IE_RE = re.compile(r"i\.e\.", re.IGNORECASE)
_EG_RE = re.compile(r"e\.g\.", re.IGNORECASE)
_INNER_CAPITAL_RE = re.compile(r"(?<=\S)([A-Z])")
# A punctuation mark (or a space) followed by more marks keeps only the first character.
_REPEATED_PUNCT_RE = re.compile(r"([!?…,.\s])([!?…,.])+")


def strip_accents(text: str) -> str:
    """ "café" → "cafe": decompose and drop combining marks."""
    return "".join(ch for ch in unicodedata.normalize("NFD", text) if unicodedata.category(ch) != "Mn")


def normalize(text: str) -> str:
    """Normalise English ``text`` the way upstream does before G2P (returns the ``norm_text``)."""
    text = deviations.write_letter_plurals(text.translate(_CJK_MARKS))
    for step in _NUMERIC_STEPS:
        text = step(text)
    text = strip_accents(text)
    text = text.replace("%", " percent")
    text = _NOT_KEPT_RE.sub("", text)
    text = _IE_RE.sub("that is", text)
    text = _EG_RE.sub("for example", text)
    text = _INNER_CAPITAL_RE.sub(r" \1", text)
    return _REPEATED_PUNCT_RE.sub(r"\1", text)
