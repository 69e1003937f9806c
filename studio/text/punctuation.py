"""Punctuation shared by the per-language text modules (zh, yue, ja, ko).

Every CJK front end first maps the same full-width and list marks onto the ASCII marks of the phone table;
each module adds its own marks to :data:`CJK_PUNCT_MAP` (the order of its entries is kept).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

# Full-width colon, semicolon, comma, full stop, exclamation and question marks, newline, middle dot and
# the enumeration comma, as every CJK front end maps them.
CJK_PUNCT_MAP: Mapping[str, str] = {
    "：": ",",
    "；": ",",
    "，": ",",
    "。": ".",
    "！": "!",
    "？": "?",
    "\n": ".",
    "·": ",",
    "、": ",",
}


def mark_replacer(mapping: Mapping[str, str]) -> Callable[[str], str]:
    """A function replacing every key of ``mapping`` in one left-to-right pass (earlier keys win a tie)."""
    pattern = re.compile("|".join(re.escape(k) for k in mapping))

    def replace(text: str) -> str:
        return pattern.sub(lambda m: mapping[m.group()], text)

    return replace
