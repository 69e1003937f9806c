"""Phones with prosody marks from Open JTalk full-context labels (the ESPnet "prosody" scheme).

Marks, placed after the phone they follow:

* ``[`` pitch rises (after the first mora of an accent phrase whose second mora is high),
* ``]`` pitch falls (after the accent nucleus),
* ``#`` accent-phrase boundary, ``_`` pause,
* ``^`` / ``$`` / ``?`` sentence start / end / question end (the caller drops first and last).

Unvoiced vowels (upper case in Open JTalk's labels) are written in lower case.
"""

from __future__ import annotations

import re

_PHONE_RE = re.compile(r"-(.*?)\+")
_A1_RE = re.compile(r"/A:([0-9\-]+)\+")
_A2_RE = re.compile(r"\+(\d+)\+")
_A3_RE = re.compile(r"\+(\d+)/")
_E3_RE = re.compile(r"!(\d+)_")
_F1_RE = re.compile(r"/F:(\d+)_")

_VOWELS_AND_MORAIC = frozenset("aeiouAEIOU") | {"N", "cl"}


def _feature(regex: re.Pattern[str], label: str) -> int:
    """An integer field of a label, or -50 where Open JTalk wrote ``xx`` (no value)."""
    match = regex.search(label)
    return -50 if match is None else int(match.group(1))


def _phone(label: str) -> str:
    return _PHONE_RE.search(label).group(1)


def labels_to_prosody_phones(labels: list[str]) -> list[str]:
    """Turn full-context labels into phones plus ``[ ] # _ ^ $ ?`` marks (first ``^`` and last mark included)."""
    out: list[str] = []
    for index, label in enumerate(labels):
        phone = _phone(label)
        if phone in ("A", "E", "I", "O", "U"):
            phone = phone.lower()  # unvoiced vowel
        if phone == "sil":
            if index == 0:
                out.append("^")
            elif index == len(labels) - 1:
                end_kind = _feature(_E3_RE, label)
                if end_kind == 0:
                    out.append("$")
                elif end_kind == 1:
                    out.append("?")
            continue
        if phone == "pau":
            out.append("_")
            continue
        out.append(phone)

        mora_accent = _feature(_A1_RE, label)  # position relative to the accent nucleus
        mora_pos = _feature(_A2_RE, label)  # mora index in the accent phrase, from 1
        mora_left = _feature(_A3_RE, label)  # morae until the phrase ends
        phrase_len = _feature(_F1_RE, label)
        next_pos = _feature(_A2_RE, labels[index + 1])
        if mora_left == 1 and next_pos == 1 and phone in _VOWELS_AND_MORAIC:
            out.append("#")
        elif mora_accent == 0 and next_pos == mora_pos + 1 and mora_pos != phrase_len:
            out.append("]")
        elif mora_pos == 1 and next_pos == 2:
            out.append("[")
    return out
