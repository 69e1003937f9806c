"""The user's own pronunciations: names, brands and words the front end reads wrongly.

A plain text file, one entry per line (``#`` starts a comment)::

    en | SoVITS | S OW1 V IH0 T S          ARPAbet with stress digits, as in CMUdict
    zh | 曾小贤 | zeng1 xiao3 xian2        pinyin with tone digits (5 = neutral), one syllable per character

English entries match whole words, case-insensitively, before normalisation (so ``SoVITS`` is not spelled out
letter by letter); Chinese entries match the normalised text and override segmentation, sandhi and polyphone
choice for those characters. Japanese, Korean and Cantonese are not covered (their readers take no user words).

The lexicon is applied while it is *active* (:func:`using`), a context-local setting, so concurrent requests with
different lexicons never see each other's. With none active the front end is exactly upstream's.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path

from studio.errors import TextError

LANGS = ("en", "zh")
_PLACEHOLDER_LETTERS = "abcdefghijklmnopqrstuvwxyz"
_HAN = re.compile(r"^[\u3400-\u4dbf\u4e00-\u9fff]+$")
_EN_WORD = re.compile(r"^[A-Za-z][A-Za-z'\-]*$")


@dataclass(frozen=True)
class UserLexicon:
    """Parsed entries: English word (lower case) → ARPAbet phones; Chinese word → (initial, final+tone) pairs."""

    en: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    zh: Mapping[str, tuple[tuple[str, str], ...]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.en) + len(self.zh)

    def english_placeholders(self) -> dict[str, str]:
        """A letters-only stand-in per English entry, which normalisation and tokenisation leave whole."""
        return {word: "zqlex" + _letters(i) for i, word in enumerate(sorted(self.en))}


def _letters(n: int) -> str:
    out = ""
    while True:
        n, r = divmod(n, 26)
        out = _PLACEHOLDER_LETTERS[r] + out
        if n == 0:
            return out
        n -= 1


_ACTIVE: ContextVar[UserLexicon | None] = ContextVar("studio_user_lexicon", default=None)


def active() -> UserLexicon | None:
    """The lexicon the front end applies right now (``None`` outside :func:`using`)."""
    return _ACTIVE.get()


@contextmanager
def using(lexicon: UserLexicon | None) -> Iterator[None]:
    """Apply ``lexicon`` to the text processed inside the ``with`` block (``None`` or empty: no change)."""
    token = _ACTIVE.set(lexicon if lexicon else None)
    try:
        yield
    finally:
        _ACTIVE.reset(token)


# ------------------------------------------------------------------------------------------------ parsing


def parse_lexicon(text: str, source: str = "pronunciations") -> UserLexicon:
    """Parse the file format above; a bad line raises :class:`TextError` naming the line and the fix."""
    en: dict[str, tuple[str, ...]] = {}
    zh: dict[str, tuple[tuple[str, str], ...]] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        where = f"{source}, line {number} ({raw.strip()!r})"
        parts = [p.strip() for p in line.split("|")]
        if len(parts) != 3 or not all(parts):
            raise TextError(
                f"{where}: expected three parts, 'language | word | reading'.",
                hint="For example: en | SoVITS | S OW1 V IH0 T S",
            )
        lang, word, reading = parts
        lang = lang.lower()
        if lang == "en":
            en[word.lower()] = _english_reading(word, reading, where)
        elif lang == "zh":
            zh[word] = _chinese_reading(word, reading, where)
        else:
            raise TextError(f"{where}: language {lang!r} is not supported here.", hint="Use en or zh.")
    return UserLexicon(en=en, zh=zh)


def _english_reading(word: str, reading: str, where: str) -> tuple[str, ...]:
    from studio.text.en.g2p import KNOWN_PHONES

    if not _EN_WORD.match(word):
        raise TextError(f"{where}: {word!r} is not one English word (letters, ' and - only).")
    phones = tuple(reading.upper().split())
    unknown = [p for p in phones if p not in KNOWN_PHONES or not p[0].isalpha() or p == "UNK"]
    if unknown:
        raise TextError(
            f"{where}: {', '.join(unknown)} is not an ARPAbet phone.",
            hint="Use CMUdict phones with a stress digit on vowels, e.g. S OW1 V IH0 T S.",
        )
    return phones


def _chinese_reading(word: str, reading: str, where: str) -> tuple[tuple[str, str], ...]:
    from pypinyin.contrib.tone_convert import to_finals_tone3, to_initials

    from studio.text.zh.pinyin import spell, table

    if not _HAN.match(word):
        raise TextError(f"{where}: {word!r} must be Chinese characters only.")
    syllables = reading.lower().replace("ü", "v").split()
    if len(syllables) != len(word):
        raise TextError(
            f"{where}: {len(word)} character(s) need {len(word)} syllable(s), got {len(syllables)}.",
            hint="Give one pinyin syllable with a tone digit per character, e.g. zeng1 xiao3 xian2.",
        )
    pairs = []
    for syllable in syllables:
        if not re.fullmatch(r"[a-z]+[1-5]", syllable):
            raise TextError(f"{where}: {syllable!r} needs a tone digit 1–5 (5 = neutral), e.g. zhong1.")
        initial = to_initials(syllable, strict=True)
        final = to_finals_tone3(syllable, strict=True, neutral_tone_with_five=True)
        if spell(initial, final[:-1]) not in table():
            raise TextError(f"{where}: {syllable!r} is not a Mandarin syllable.")
        pairs.append((initial, final))
    return tuple(pairs)


def load_lexicon(path: Path) -> UserLexicon:
    """The lexicon in ``path``; an empty one when the file does not exist."""
    path = Path(path)
    if not path.is_file():
        return UserLexicon()
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise TextError(f"Cannot read the pronunciation list {path}: {exc}.") from exc
    return parse_lexicon(text, source=path.name)
