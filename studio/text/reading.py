"""How a text will be read: its sentences, their language runs, normalised text and phones.

A preview users ask for (GPT-SoVITS#1437): before spending time on synthesis, see where the text is cut, which
language each run was given, how numbers and symbols were spelled out and which phones the models receive.
It runs exactly the code synthesis runs (sentence splitting, then :func:`text_to_phones` per sentence).
"""

from __future__ import annotations

from dataclasses import dataclass

from studio.errors import TextError
from studio.text.deviations import speakable_sentences
from studio.text.frontend import PhoneSegment, text_to_phones
from studio.text.sentence_split import collapse_punctuation, prepare_sentences
from studio.text.user_lexicon import UserLexicon


@dataclass(frozen=True)
class SentenceReading:
    """One sentence as the models will receive it."""

    sentence: str
    norm_text: str
    segments: tuple[PhoneSegment, ...]

    @property
    def phones(self) -> list[str]:
        return [p for seg in self.segments for p in seg.phones]


def split_for_speech(text: str, lang: str, split: str = "cut1") -> list[str]:
    """The sentences synthesis speaks one by one: upstream's pieces with the named rules for pieces applied (no
    piece without words, none over 510 characters); :class:`TextError` when there is nothing to say."""
    text = text.strip()
    if not text:
        raise TextError("There is no text to speak.", hint="Type a sentence first.")
    sentences = speakable_sentences(prepare_sentences(collapse_punctuation(text), lang, split))
    if not sentences:
        raise TextError("The text has nothing that can be spoken (only punctuation or symbols).")
    return sentences


def read_text(
    text: str, lang: str, split: str = "cut1", version: str = "v2", lexicon: UserLexicon | None = None
) -> list[SentenceReading]:
    """Every sentence of ``text`` with its language runs and phones (the same as synthesis will use)."""
    readings = []
    for sentence in split_for_speech(text, lang, split):
        seq = text_to_phones(sentence, lang, version=version, lexicon=lexicon)
        readings.append(SentenceReading(sentence, seq.norm_text, tuple(seq.segments)))
    return readings


def format_reading(readings: list[SentenceReading]) -> str:
    """Plain text, one block per sentence: the sentence, then one line per language run."""
    blocks = []
    for i, reading in enumerate(readings, 1):
        lines = [f"{i}. {reading.sentence}"]
        for seg in reading.segments:
            lines.append(f"   [{seg.lang}] {seg.norm_text}")
            lines.append(f"        {' '.join(seg.phones)}")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)
