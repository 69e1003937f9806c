"""Where the text front end departs from upstream GPT-SoVITS on purpose: each departure is a named rule.

Everything else in :mod:`studio.text` reproduces upstream, quirks included (the goldens check it; gaps in offline
data such as g2pW are not departures by choice). Where upstream's behaviour is a bug a listener would notice, the
fix lives here as a :class:`NamedRule`: a stable name, a predicate over the input saying whether the rule acts on
it, and the reason. The front end calls the fixes below, so a golden case can be checked against the predicates
and skipped, with the rule's reason, exactly when one of them acts on its input. The README lists the rules.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass

from studio.text.sentence_split import MAX_SENTENCE_CHARS

ENGLISH_TEXT = "English text"  # the text ``studio.text.en`` receives, before normalisation
SENTENCE = "sentence"  # one piece of :func:`studio.text.sentence_split.prepare_sentences`


@dataclass(frozen=True)
class NamedRule:
    """One deliberate departure from upstream.

    ``applies(text)`` is true exactly when the rule changes the result for ``text``, an input of kind ``reads``
    (:data:`ENGLISH_TEXT` or :data:`SENTENCE`).
    """

    name: str
    reads: str
    why: str
    applies: Callable[[str], bool]

    def __str__(self) -> str:
        return f"named rule {self.name!r}: {self.why}"


# "TVs": upstream's inner-capital split makes it "T Vs" and then reads "Vs" as a word ("versus"); likewise
# "APIs" → "A P Is" ("is"), "GPUs" → "G P Us" ("us"), "CDs" → "C Ds" (D, S spelled). A capital letter that
# follows a letter and is followed by a lone "s" is a plural of letters.
_LETTER_PLURAL_RE = re.compile(r"(?<=[A-Za-z])([A-Z])s(?![A-Za-z'’])")

LETTER_PLURALS = NamedRule(
    name="en-letter-plurals",
    reads=ENGLISH_TEXT,
    why=(
        "a plural of spelled letters ('TVs', 'APIs', 'PhDs') is read as the letters plus a plural ending "
        "(T V's → T IY1 V IY1 Z); upstream splits it into 'T Vs' and reads 'Vs' as the word 'versus'"
    ),
    applies=lambda text: _LETTER_PLURAL_RE.search(text) is not None,
)


def write_letter_plurals(text: str) -> str:
    """:data:`LETTER_PLURALS`: "TVs" → "TV's", which the dictionary reads as letter plurals ("V's" → V IY1 Z)."""
    return _LETTER_PLURAL_RE.sub(r"\1's", text)


def _nothing_to_say(piece: str) -> bool:
    return not re.sub(r"\W+", "", piece)


NOTHING_TO_SAY = NamedRule(
    name="pieces-with-nothing-to-say",
    reads=SENTENCE,
    why=(
        "a piece with no word in it (the empty first piece and the lone closing mark that upstream's re-split of "
        "a long mark-free text leaves) is not spoken on its own: a mark joins the piece next to it"
    ),
    applies=_nothing_to_say,
)

OVER_LONG_SENTENCE = NamedRule(
    name="over-long-sentences",
    reads=SENTENCE,
    why=(
        f"a piece longer than {MAX_SENTENCE_CHARS} characters (a run without split marks, which upstream's "
        "re-split cannot cut) is cut into equal parts, at a space where there is one; the Chinese BERT takes "
        "no more, and upstream fails on it"
    ),
    applies=lambda piece: len(piece) > MAX_SENTENCE_CHARS,
)

RULES: tuple[NamedRule, ...] = (LETTER_PLURALS, NOTHING_TO_SAY, OVER_LONG_SENTENCE)


def covering(text: str, reads: str) -> list[NamedRule]:
    """The rules that act on ``text`` (an input of kind ``reads``): why a result may differ from upstream's."""
    return [rule for rule in RULES if rule.reads == reads and rule.applies(text)]


def speakable_sentences(pieces: list[str]) -> list[str]:
    """Upstream's sentence pieces → the sentences synthesis speaks (:data:`NOTHING_TO_SAY`, then
    :data:`OVER_LONG_SENTENCE`). Pieces neither rule acts on pass unchanged and in order; the text is kept whole."""
    joined: list[str] = []
    carry = ""  # marks before the first piece with words
    for piece in pieces:
        if not NOTHING_TO_SAY.applies(piece):
            joined.append(carry + piece)
            carry = ""
        elif joined:
            joined[-1] += piece
        else:
            carry += piece
    out: list[str] = []
    for sentence in joined:
        out.extend(_cut_evenly(sentence) if OVER_LONG_SENTENCE.applies(sentence) else [sentence])
    return out


def _cut_evenly(text: str, max_len: int = MAX_SENTENCE_CHARS) -> list[str]:
    """Parts of at most ``max_len`` characters, about equal in length; a cut moves back to just after a space
    when one lies in the second half of the part (English words stay whole)."""
    parts: list[str] = []
    while len(text) > max_len:
        size = math.ceil(len(text) / math.ceil(len(text) / max_len))
        space = text.rfind(" ", size // 2, size)
        cut = space + 1 if space > 0 else size
        parts.append(text[:cut])
        text = text[cut:]
    return [*parts, text]
