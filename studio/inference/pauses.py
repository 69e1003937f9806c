"""Pauses by punctuation: how long the silence after each kind of mark lasts, inside and between sentences.

How it works, and why: GPT-SoVITS speaks a whole sentence in one go and renders its inner punctuation as
whatever short breath the GPT happens to sample, so a silence cannot be set at a comma after the fact (finding
the comma's pause in the audio again is guesswork). Instead the text is cut at every mark the map names, each
clause keeps its mark (so the GPT still ends it with the mark's intonation) and is synthesised as a sentence
of its own, and exactly the mapped seconds of silence follow it. Blank lines are paragraph breaks: the clause
that ends a paragraph is followed by the paragraph pause instead of its mark's. The model's own short breath
at the mark stays, as in upstream's ``fragment_interval``; the mapped silence is added after it.

Marks (ASCII and CJK forms): comma ``, ; : 、 ，；：``; full stop ``. 。 ．`` (an ASCII ``.`` only before a
space, a closing quote or the end, so "3.5" stays whole; "Mr. Smith" is cut too); an ASCII comma between two
digits ("1,000") is no mark; question/exclamation ``? ! ？ ！``; ellipsis
``… ⋯ ...``; dash ``— ― –`` and `` - `` / ``--`` between words. A cut the split method makes elsewhere (a very
long clause) gets the comma pause.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from studio.errors import StudioError, TextError

MAX_PAUSE_S = 5.0

_CLOSERS = "\"'”’」』)）"  # inside a character class below
_MARK = (
    r"(?:(?P<ellipsis>(?:\.{3,}|[…⋯]+))"
    r"|(?P<question>[?!？！]+)"
    r"|(?P<dash>(?:—|―|–)+|\s-{1,2}\s|--)"
    rf"|(?P<full_stop>(?:[。．]|\.(?=[\s{_CLOSERS}]|$))+)"
    r"|(?P<comma>(?<!\d)[,;:]|[,;:](?!\d)|[、，；：]))"
    rf"[{_CLOSERS}]*"  # a closing quote or bracket stays with its clause
)
_MARK_RE = re.compile(_MARK)
_PARAGRAPH_RE = re.compile(r"\n[ \t]*\n\s*")


@dataclass(frozen=True)
class PauseMap:
    """Seconds of silence after each kind of mark (0–5 s each); ``paragraph`` is the pause at a blank line."""

    comma: float = 0.15
    full_stop: float = 0.35
    question: float = 0.4  # question and exclamation marks
    ellipsis: float = 0.6
    dash: float = 0.3
    paragraph: float = 0.8

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, (int, float)) or not math.isfinite(value) or not 0 <= value <= MAX_PAUSE_S:
                raise StudioError(
                    f"Invalid setting: the pause after a {f.name.replace('_', ' ')} must be between 0 and "
                    f"{MAX_PAUSE_S:g} seconds (got {value!r}).",
                    hint="Give each pause in seconds, e.g. 0.3.",
                )

    @classmethod
    def preset(cls, name: str) -> PauseMap:
        """``natural`` (conversational), ``audiobook`` (unhurried reading), ``fast`` (tight, for dialogue)."""
        try:
            return PRESETS[name.strip().lower()]
        except KeyError:
            raise StudioError(
                f"There is no pause preset named {name!r}.",
                hint=f"Use one of: {', '.join(PRESETS)} (or a JSON file of seconds per mark).",
            ) from None

    def to_dict(self) -> dict[str, float]:
        return {k: float(v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict) -> PauseMap:
        """A map from ``{"comma": 0.2, ...}``; missing marks keep the "natural" seconds, unknown keys are refused."""
        if not isinstance(data, dict):
            raise StudioError('A pause map must be an object of seconds per mark, e.g. {"comma": 0.2}.')
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise StudioError(
                f"Unknown mark(s) in the pause map: {', '.join(map(str, unknown))}.",
                hint=f"The marks are: {', '.join(sorted(known))}.",
            )
        try:
            values = {k: float(v) for k, v in data.items()}
        except (TypeError, ValueError):
            raise StudioError("Every pause in the pause map must be a number of seconds.") from None
        return cls(**values)

    @classmethod
    def parse(cls, value: str | dict | PauseMap) -> PauseMap:
        """A preset name, a JSON file of seconds per mark, a dict, or a map (as the CLI, API and tab give it)."""
        if isinstance(value, PauseMap):
            return value
        if isinstance(value, dict):
            return cls.from_dict(value)
        if str(value).strip().lower() in PRESETS:
            return cls.preset(str(value))
        path = Path(value)
        if path.suffix.lower() != ".json" or not path.is_file():
            return cls.preset(str(value))  # the error names the presets
        try:
            return cls.from_dict(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, json.JSONDecodeError) as exc:
            raise StudioError(f"Cannot read the pause map {path.name}: {exc}.") from exc


PRESETS: dict[str, PauseMap] = {
    "natural": PauseMap(),
    "audiobook": PauseMap(comma=0.25, full_stop=0.6, question=0.65, ellipsis=0.9, dash=0.45, paragraph=1.5),
    "fast": PauseMap(comma=0.05, full_stop=0.15, question=0.2, ellipsis=0.3, dash=0.1, paragraph=0.4),
}


@dataclass(frozen=True)
class Piece:
    """One clause synthesised on its own, and the silence that follows it (0 after the last)."""

    text: str
    pause_s: float


def clauses(paragraph: str) -> list[tuple[str, str | None]]:
    """A paragraph cut after each mark: (clause text with its mark, kind of mark or None for the tail)."""
    out: list[tuple[str, str | None]] = []
    start = 0
    for match in _MARK_RE.finditer(paragraph):
        text = paragraph[start : match.end()].strip()
        if text:
            out.append((text, match.lastgroup))
        start = match.end()
    tail = paragraph[start:].strip()
    if tail:
        out.append((tail, None))
    return out


def pieces_with_pauses(text: str, lang: str, split: str, pauses: PauseMap) -> list[Piece]:
    """The pieces synthesis speaks, each with its pause: paragraphs → clauses at the mapped marks → the split
    method's pieces (normally one per clause). A clause with nothing speakable ("—" alone) lends its pause to the
    piece before it (the longer one wins). :class:`TextError` when the whole text has nothing to say."""
    from studio.text.reading import split_for_speech

    out: list[Piece] = []
    for paragraph in _PARAGRAPH_RE.split(text.strip()):
        start = len(out)
        for clause, kind in clauses(paragraph):
            mark_pause = getattr(pauses, kind) if kind else pauses.comma
            try:
                parts = split_for_speech(clause, lang, split)
            except TextError:
                if out:
                    out[-1] = Piece(out[-1].text, max(out[-1].pause_s, mark_pause))
                continue
            out += [Piece(p, pauses.comma) for p in parts[:-1]] + [Piece(parts[-1], mark_pause)]
        if len(out) > start:
            out[-1] = Piece(out[-1].text, pauses.paragraph)
    if not out:
        split_for_speech(text, lang, split)  # raises the usual "nothing to say" error
    out[-1] = Piece(out[-1].text, 0.0)
    return out
