"""Subtitle cues: building them from word times, and writing/reading SubRip (SRT) and WebVTT.

Pure Python (no torch, no Gradio) so that the CLI, the API, script rendering and the studio share one writer
and one reader. Times are seconds (floats) in the records and whole milliseconds in the files.

Line building follows common subtitling practice: a cue ends at a sentence end, and otherwise never grows past
``max_chars`` characters or ``max_duration`` seconds; when a limit forces a break, the break goes after the last
comma-like punctuation in the line if there is one far enough in, so lines split at phrases, not mid-phrase.
Chinese/Japanese words are single characters and are joined without spaces; their length is counted in
characters like any other text.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass

from studio.errors import SubtitleError


@dataclass(frozen=True)
class Cue:
    """One subtitle: shown from ``start`` to ``end`` (seconds)."""

    start: float
    end: float
    text: str


@dataclass(frozen=True)
class WordTime:
    """One word (one character in Chinese/Japanese/Cantonese) of a take and when it is spoken (seconds)."""

    word: str
    start: float
    end: float


_SENTENCE_END = tuple(".?!。？！…‼⁉")
_PHRASE_END = tuple(",;:、，；：—–")
_CLOSERS = "\"'”’」』）)]»"
_MAX_GAP_S = 1.5  # a silence this long between words ends the cue (the line should not hang over it)
_CJK = re.compile(r"[\u3000-\u303f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef\uac00-\ud7af]")


# ------------------------------------------------------------------------------------------ line building


def _is_cjk(ch: str) -> bool:
    return bool(_CJK.match(ch))


def join_words(words: Sequence[str]) -> str:
    """Words → text: spaces between Latin words, none around CJK characters or before punctuation."""
    out = ""
    for word in words:
        word = word.strip()
        if not word:
            continue
        glue = bool(out) and not (_is_cjk(out[-1]) or _is_cjk(word[0]) or word[0] in ",.;:!?%)]}\u2019\u201d")
        out += (" " if glue else "") + word
    return out


def _ends(word: str, marks: tuple[str, ...]) -> bool:
    return word.rstrip(_CLOSERS).endswith(marks)


def _fits(words: Sequence[WordTime], max_chars: int, max_duration: float) -> bool:
    text = join_words([w.word for w in words])
    return len(text) <= max_chars and words[-1].end - words[0].start <= max_duration + 1e-9


def _cue(words: Sequence[WordTime], max_duration: float) -> Cue:
    start = words[0].start
    end = min(max(words[-1].end, start), start + max_duration)  # a single over-long word is cut at the limit
    return Cue(start, end, join_words([w.word for w in words]))


def _split_point(line: Sequence[WordTime], max_chars: int) -> int:
    """Where to end a full line: after its last phrase punctuation if that keeps a third of a line, else all."""
    for i in range(len(line) - 1, 0, -1):
        if _ends(line[i - 1].word, _PHRASE_END) and len(join_words([w.word for w in line[:i]])) >= max_chars / 3:
            return i
    return len(line)


def cues_from_words(words: Sequence[WordTime], max_chars: int = 42, max_duration: float = 6.0) -> list[Cue]:
    """Group timed words into subtitle cues (see the module docstring for the rules)."""
    if max_chars < 1 or max_duration <= 0:
        raise SubtitleError(f"Subtitle limits must be positive (max_chars={max_chars}, max_duration={max_duration}).")
    cues: list[Cue] = []
    line: list[WordTime] = []
    for word in (w for w in words if w.word.strip()):
        if line and (word.start - line[-1].end > _MAX_GAP_S or not _fits([*line, word], max_chars, max_duration)):
            cut = _split_point(line, max_chars) if word.start - line[-1].end <= _MAX_GAP_S else len(line)
            cues.append(_cue(line[:cut], max_duration))
            line = line[cut:]
            while line and not _fits([*line, word], max_chars, max_duration):  # the carried words alone + word
                cues.append(_cue(line, max_duration))
                line = []
        line.append(word)
        if _ends(word.word, _SENTENCE_END):
            cues.append(_cue(line, max_duration))
            line = []
    if line:
        cues.append(_cue(line, max_duration))
    return _no_overlap(cues)


def _no_overlap(cues: list[Cue]) -> list[Cue]:
    out: list[Cue] = []
    for cue in cues:
        if out and cue.start < out[-1].end:
            prev = out[-1]
            out[-1] = Cue(prev.start, max(prev.start, cue.start), prev.text)
        out.append(cue)
    return out


def shift(cues: Sequence[Cue], offset: float) -> list[Cue]:
    """Move every cue by ``offset`` seconds; cues pushed wholly before 0 are dropped, the rest start at ≥ 0."""
    moved = []
    for cue in cues:
        start, end = cue.start + offset, cue.end + offset
        if end <= 0:
            continue
        moved.append(Cue(max(0.0, start), end, cue.text))
    return moved


# ---------------------------------------------------------------------------------------------- writing


def _stamp(seconds: float, sep: str) -> str:
    ms = int(round(seconds * 1000))
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def _checked(cues: Sequence[Cue]) -> list[Cue]:
    kept = []
    for n, cue in enumerate(cues, 1):
        if cue.start < 0 or cue.end < cue.start:
            raise SubtitleError(f"Subtitle {n} has impossible times ({cue.start:.3f} s → {cue.end:.3f} s).")
        text = "\n".join(ln.strip() for ln in cue.text.strip().splitlines() if ln.strip())
        if text:  # an empty cue would end the block early in both formats
            kept.append(Cue(cue.start, cue.end, text))
    return kept


def to_srt(cues: Sequence[Cue]) -> str:
    """SubRip text: numbered blocks, ``HH:MM:SS,mmm --> HH:MM:SS,mmm``, blank line between blocks."""
    blocks = [
        f"{n}\n{_stamp(c.start, ',')} --> {_stamp(c.end, ',')}\n{c.text}\n" for n, c in enumerate(_checked(cues), 1)
    ]
    return "\n".join(blocks)


def to_vtt(cues: Sequence[Cue]) -> str:
    """WebVTT text: ``WEBVTT`` header, ``HH:MM:SS.mmm`` times; ``&``, ``<`` and ``>`` escaped as the format asks."""
    blocks = ["WEBVTT\n"]
    for c in _checked(cues):
        text = c.text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        blocks.append(f"{_stamp(c.start, '.')} --> {_stamp(c.end, '.')}\n{text}\n")
    return "\n".join(blocks)


# ---------------------------------------------------------------------------------------------- reading

_SRT_TIME = r"(\d+):([0-5]?\d):([0-5]?\d)[,.](\d{1,3})"
_SRT_LINE = re.compile(rf"^\s*{_SRT_TIME}\s*-->\s*{_SRT_TIME}(?:\s+.*)?$")
_VTT_TIME = r"(?:(\d+):)?([0-5]\d):([0-5]\d)\.(\d{3})"
_VTT_LINE = re.compile(rf"^\s*{_VTT_TIME}\s+-->\s+{_VTT_TIME}(?:\s+.*)?$")
_TAG = re.compile(r"<[^>]*>")  # WebVTT markup (&lt; escapes a literal "<")
_SRT_TAG = re.compile(r"</?(?:[ibu]|font)(?:\s[^>]*)?>", re.IGNORECASE)  # SubRip's only formatting tags


def _seconds(h: str | None, m: str, s: str, ms: str) -> float:
    return int(h or 0) * 3600 + int(m) * 60 + int(s) + int(ms.ljust(3, "0")) / 1000


def _lines(text: str) -> list[str]:
    return text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n").split("\n")


def _timed(match: re.Match, lineno: int, fmt: str) -> tuple[float, float]:
    g = match.groups()
    start, end = _seconds(*g[:4]), _seconds(*g[4:])
    if end < start:
        raise SubtitleError(f"{fmt} line {lineno}: the cue ends before it starts.", hint="Swap or fix the two times.")
    return start, end


def parse_srt(text: str) -> list[Cue]:
    """Read SubRip text; a malformed block raises :class:`SubtitleError` naming its line (1-based)."""
    lines, cues, i = _lines(text), [], 0
    while i < len(lines):
        if not lines[i].strip():
            i += 1
            continue
        if not lines[i].strip().isdigit():
            raise SubtitleError(
                f"SRT line {i + 1}: expected a cue number, found {lines[i].strip()[:40]!r}.",
                hint="Each SRT block is a number, a 'start --> end' line, the text and a blank line.",
            )
        if i + 1 >= len(lines) or not (match := _SRT_LINE.match(lines[i + 1])):
            found = lines[i + 1].strip()[:40] if i + 1 < len(lines) else "the end of the file"
            raise SubtitleError(
                f"SRT line {i + 2}: expected 'HH:MM:SS,mmm --> HH:MM:SS,mmm', found {found!r}.",
                hint="Times look like 00:01:02,500.",
            )
        start, end = _timed(match, i + 2, "SRT")
        j = i + 2
        while j < len(lines) and lines[j].strip():
            j += 1
        body = "\n".join(ln.strip() for ln in lines[i + 2 : j])
        if not body:
            raise SubtitleError(f"SRT line {i + 3}: cue {lines[i].strip()} has no text.")
        cues.append(Cue(start, end, _SRT_TAG.sub("", body)))
        i = j
    return cues


def parse_vtt(text: str) -> list[Cue]:
    """Read WebVTT text (NOTE/STYLE/REGION blocks skipped, tags removed, entities decoded)."""
    lines = _lines(text)
    if not re.match(r"^WEBVTT(?:[ \t].*)?$", lines[0]):
        raise SubtitleError("WebVTT line 1: the file must start with 'WEBVTT'.", hint="Is this an SRT file?")
    cues: list[Cue] = []
    i = 1
    while i < len(lines) and lines[i].strip():  # header lines after WEBVTT
        i += 1
    while i < len(lines):
        if not lines[i].strip():
            i += 1
            continue
        end_of_block = i
        while end_of_block < len(lines) and lines[end_of_block].strip():
            end_of_block += 1
        head = lines[i].strip()
        if head.startswith(("NOTE", "STYLE", "REGION")) and "-->" not in head:
            i = end_of_block
            continue
        timing = i if "-->" in head else i + 1  # an optional cue identifier comes first
        if timing >= end_of_block or not (match := _VTT_LINE.match(lines[timing])):
            found = lines[timing].strip()[:40] if timing < end_of_block else "the end of the block"
            raise SubtitleError(
                f"WebVTT line {timing + 1}: expected 'HH:MM:SS.mmm --> HH:MM:SS.mmm', found {found!r}.",
                hint="Times look like 00:01:02.500 (hours optional).",
            )
        start, end = _timed(match, timing + 1, "WebVTT")
        body = "\n".join(ln.strip() for ln in lines[timing + 1 : end_of_block])
        if not body:
            raise SubtitleError(f"WebVTT line {timing + 2}: the cue has no text.")
        cues.append(Cue(start, end, html.unescape(_TAG.sub("", body))))
        i = end_of_block
    return cues


def write_subtitles(cues: Sequence[Cue], path) -> None:
    """Write ``cues`` to ``path`` as SRT or WebVTT, chosen by the extension (``.srt`` / ``.vtt``)."""
    from pathlib import Path

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".srt", ".vtt"):
        raise SubtitleError(f"Unknown subtitle format {path.name!r}.", hint="Use a file name ending in .srt or .vtt.")
    path.write_text(to_srt(cues) if suffix == ".srt" else to_vtt(cues), encoding="utf-8")
