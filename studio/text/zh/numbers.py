"""Reading Arabic numerals as Chinese characters.

Two readings exist: *digit by digit* (``2024`` → 二零二四, used for years, codes and phone
numbers, where 一 may be said 幺) and *cardinal* (``2024`` → 二千零二十四, with 十/百/千/万/亿
units and the 一十 → 十 abbreviation).
"""

from __future__ import annotations

DIGIT_CHARS = "零一二三四五六七八九"

# Power of ten → unit character. Cardinals are split at the largest unit below their length.
_UNITS = ((8, "亿"), (4, "万"), (3, "千"), (2, "百"), (1, "十"))


def read_digits(digits: str, *, yao: bool = False) -> str:
    """``"0105"`` → ``"零一零五"``; with ``yao`` every 一 becomes 幺 (telephone style)."""
    text = "".join(DIGIT_CHARS[int(d)] for d in digits)
    return text.replace("一", "幺") if yao else text


def _cardinal_parts(digits: str) -> list[str]:
    """Unit-by-unit reading of ``digits`` (which may carry leading zeros marking a gap)."""
    significant = digits.lstrip("0")
    if not significant:
        return []
    if len(significant) == 1:
        # A lone digit after a gap ("05" inside "105") is read with a 零 in front.
        gap = [DIGIT_CHARS[0]] if len(significant) < len(digits) else []
        return [*gap, DIGIT_CHARS[int(significant)]]
    power, unit = next((p, u) for p, u in _UNITS if p < len(significant))
    head, tail = digits[:-power], digits[-power:]
    return _cardinal_parts(head) + [unit] + _cardinal_parts(tail)


def read_cardinal(digits: str) -> str:
    """``"105"`` → 一百零五, ``"12"`` → 十二, ``"0"`` → 零, ``""`` → ``""``."""
    if not digits:
        return ""
    digits = digits.lstrip("0")
    if not digits:
        return DIGIT_CHARS[0]
    parts = _cardinal_parts(digits)
    if len(parts) >= 2 and parts[0] == "一" and parts[1] == "十":
        parts = parts[1:]
    return "".join(parts)


def read_number(number: str) -> str:
    """A non-negative decimal string: ``"12.50"`` → 十二点五, ``".5"`` → 零点五.

    Raises ValueError for more than one decimal point (never produced by our regexes).
    """
    pieces = number.split(".")
    if len(pieces) > 2:
        raise ValueError(f"not a number: {number!r}")
    integer = pieces[0]
    fraction = pieces[1].rstrip("0") if len(pieces) == 2 else ""
    text = read_cardinal(integer)
    if fraction:
        text = (text or DIGIT_CHARS[0]) + "点" + read_digits(fraction)
    return text
