"""Spelling out numbers, money, times, units and arithmetic in English text.

Every function here takes text and returns text with one kind of numeric expression verbalised;
:func:`studio.text.en.normalizer.normalize` applies them in upstream's order.

Number words are our own implementation of inflect's ``number_to_words(n, andword="")`` (checked equal to
inflect 7.6 for every n < 200,000 and random numbers up to 10**33); inflect itself takes seconds to import.
"""

from __future__ import annotations

import re

_ONES = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen"
).split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
_SCALES = (
    "_ thousand million billion trillion quadrillion quintillion sextillion septillion octillion nonillion decillion"
).split()
_ORDINAL_WORDS = {"one": "first", "two": "second", "three": "third", "five": "fifth", "eight": "eighth"}
_ORDINAL_WORDS |= {"nine": "ninth", "twelve": "twelfth"}


def _below_hundred(number: int) -> str:
    if number < 20:
        return _ONES[number]
    tens, ones = divmod(number, 10)
    return _TENS[tens] + (f"-{_ONES[ones]}" if ones else "")


def _below_thousand(number: int) -> str:
    hundreds, rest = divmod(number, 100)
    if not hundreds:
        return _below_hundred(rest)
    return f"{_ONES[hundreds]} hundred" + (f" {_below_hundred(rest)}" if rest else "")


def spell_number(number: int) -> str:
    """Plain US English words, groups joined by ", " and no "and" (like inflect's ``number_to_words(andword='')``)."""
    if number < 0:
        return "minus " + spell_number(-number)
    if number >= 1000 ** len(_SCALES):
        return " ".join(_ONES[int(digit)] for digit in str(number))
    groups = []
    while True:
        number, group = divmod(number, 1000)
        groups.append(group)
        if not number:
            break
    parts = [
        _below_thousand(group) + (f" {_SCALES[scale]}" if scale else "")
        for scale, group in reversed(list(enumerate(groups)))
        if group
    ]
    if not parts:
        return "zero"
    if len(parts) > 1 and groups[0] and groups[0] < 100:
        return ", ".join(parts[:-1]) + " " + parts[-1]
    return ", ".join(parts)


def _year_pairs(number: int) -> str:
    """A four-digit number read as two pairs: 2023 → "twenty twenty-three", 1905 → "nineteen oh five"."""
    high, low = divmod(number, 100)
    low_words = f"oh {_ONES[low]}" if low < 10 else _below_hundred(low)
    return f"{_below_hundred(high)} {low_words}"


def cardinal(number: int) -> str:
    """A whole number as words; 1001–2999 read like years ("twenty twenty-three", "two thousand five")."""
    if 1000 < number < 3000:
        if number == 2000:
            return "two thousand"
        if 2000 < number < 2010:
            return "two thousand " + spell_number(number % 100)
        if number % 100 == 0:
            return spell_number(number // 100) + " hundred"
        return _year_pairs(number)
    return spell_number(number)


def ordinal(number: int) -> str:
    """1 → "first", 22 → "twenty-second", 1005 → "one thousand fifth"."""
    words = spell_number(number)
    cut = max(words.rfind(" "), words.rfind("-")) + 1
    head, last = words[:cut], words[cut:]
    if last in _ORDINAL_WORDS:
        return head + _ORDINAL_WORDS[last]
    if last.endswith("y"):
        return head + last[:-1] + "ieth"
    return head + last + "th"


def _digits(digits: str) -> str:
    """Each digit by name: "05" → "zero five"."""
    return " ".join(cardinal(int(digit)) for digit in digits)


def _decimal_words(whole: str, fraction: str) -> str:
    return f"{cardinal(int(whole))} point {_digits(fraction)}"


# --- "1. " at the start of a line: a list item read as an ordinal -----------------------------------------
_LIST_ITEM_RE = re.compile(r"(?m)^(\s*)(\d+)\.\s")


def expand_list_items(text: str) -> str:
    return _LIST_ITEM_RE.sub(lambda m: f"{m.group(1)}{ordinal(int(m.group(2)))} ", text)


# --- arithmetic between numbers -------------------------------------------------------------------------
_OPERATOR_WORDS = {"+": "plus", "−": "minus", "×": "times", "÷": "divided by", "=": "equals"}
_ARITHMETIC_RE = re.compile(r"(?<=\d)\s*([+−×÷=])\s*(?=[-−]?\d)")


def expand_arithmetic(text: str) -> str:
    return _ARITHMETIC_RE.sub(lambda m: f" {_OPERATOR_WORDS[m.group(1)]} ", text)


# --- negative numbers: "-5" at the start of a word ---------------------------------------------------------
_NEGATIVE_RE = re.compile(r"(?<![\w.])[-−](?=\d)")


def expand_negative(text: str) -> str:
    return _NEGATIVE_RE.sub("minus ", text)


# --- thousands separators ---------------------------------------------------------------------------------
_THOUSANDS_RE = re.compile(r"\d{1,3}(?:,\d{3})+(?!\d)")


def remove_thousands_commas(text: str) -> str:
    return _THOUSANDS_RE.sub(lambda m: m.group(0).replace(",", ""), text)


# --- clock times ------------------------------------------------------------------------------------------
_TIME_RE = re.compile(r"\b([01]?\d|2[0-3]):([0-5]\d)\b")


def _time_words(match: re.Match[str]) -> str:
    hours, minutes = int(match.group(1)), int(match.group(2))
    period = "a.m." if hours < 12 else "p.m."
    if hours > 12:
        hours -= 12
    hour_words = cardinal(hours)
    if minutes == 0:
        return f"{hour_words} o'clock {period}"
    return f"{hour_words} {cardinal(minutes)} {period}"


def expand_times(text: str) -> str:
    return _TIME_RE.sub(_time_words, text)


# --- measurement units after a number ----------------------------------------------------------------------
_UNITS = {
    "km/h": ("kilometer per hour", "kilometers per hour"),
    "km": ("kilometer", "kilometers"),
    "m": ("meter", "meters"),
    "ft": ("foot", "feet"),
    "L": ("liter", "liters"),
    "tbsp": ("tablespoon", "tablespoons"),
    "tsp": ("teaspoon", "teaspoons"),
    "h": ("hour", "hours"),
    "min": ("minute", "minutes"),
    "s": ("second", "seconds"),
    "°C": ("degree Celsius", "degrees Celsius"),
    "°F": ("degree Fahrenheit", "degrees Fahrenheit"),
}
_UNIT_ALTERNATION = "|".join(re.escape(unit) for unit in sorted(_UNITS, key=len, reverse=True))
_UNIT_RE = re.compile(rf"(?<![\d.])(\d+(?:\.\d+)?)(\s*)({_UNIT_ALTERNATION})(?![A-Za-z/])")


def _unit_words(match: re.Match[str]) -> str:
    amount, gap, unit = match.group(1), match.group(2), match.group(3)
    if unit == "s" and not gap:
        return match.group(0)  # "1990s" is a decade, not seconds
    singular, plural = _UNITS[unit]
    return f"{amount} {singular if amount == '1' else plural}"


def expand_units(text: str) -> str:
    return _UNIT_RE.sub(_unit_words, text)


# --- money ------------------------------------------------------------------------------------------------
_MONEY_RE = re.compile(r"([$£])(\d+)(?:\.(\d+))?")
_CURRENCY = {"$": (("dollar", "dollars"), ("cent", "cents")), "£": (("pound", "pounds"), ("penny", "pence"))}


def _money_words(match: re.Match[str]) -> str:
    (major_one, major_many), (minor_one, minor_many) = _CURRENCY[match.group(1)]
    major = int(match.group(2))
    minor = int(match.group(3).ljust(2, "0")[:2]) if match.group(3) else 0
    parts = []
    if major or not minor:
        parts.append(f"{cardinal(major)} {major_one if major == 1 else major_many}")
    if minor:
        parts.append(f"{cardinal(minor)} {minor_one if minor == 1 else minor_many}")
    return " and ".join(parts)


def expand_money(text: str) -> str:
    return _MONEY_RE.sub(_money_words, text)


# --- decimals, fractions, ordinals, cardinals -----------------------------------------------------------------
_DECIMAL_RE = re.compile(r"(\d+)\.(\d+)")
_FRACTION_RE = re.compile(r"(?<![\d/])(\d+)/(\d+)(?![\d/])")
_ORDINAL_RE = re.compile(r"(\d+)(st|nd|rd|th)\b", re.IGNORECASE)
_NUMBER_RE = re.compile(r"\d+")


def expand_decimals(text: str) -> str:
    return _DECIMAL_RE.sub(lambda m: _decimal_words(m.group(1), m.group(2)), text)


def _fraction_words(match: re.Match[str]) -> str:
    numerator, denominator = int(match.group(1)), int(match.group(2))
    if denominator == 0:
        return f"{cardinal(numerator)} over {cardinal(denominator)}"
    if denominator == 1:
        return f"{cardinal(numerator)} over one"
    if denominator == 2:
        name = "half" if numerator == 1 else "halves"
    elif denominator == 4:
        name = "quarter" if numerator == 1 else "quarters"
    else:
        name = ordinal(denominator) + ("" if numerator == 1 else "s")
    return f"{cardinal(numerator)} {name}"


def expand_fractions(text: str) -> str:
    return _FRACTION_RE.sub(_fraction_words, text)


def expand_ordinals(text: str) -> str:
    return _ORDINAL_RE.sub(lambda m: ordinal(int(m.group(1))), text)


def expand_cardinals(text: str) -> str:
    return _NUMBER_RE.sub(lambda m: cardinal(int(m.group(0))), text)
