"""Reading scripts: the hand-written format, plain text, Markdown, subtitles and e-books → :class:`Script`.

The hand-written format (``.script``, ``.dialogue``, or any text whose lines start with ``NAME:``)::

    # a comment: a line whose first character is '#' is skipped
    ALICE: Did you hear that?
    BOB: [style whisper] Only the wind.
    It always howls like this in March.      ← no "NAME:": Bob's line goes on (joined to it)
    [pause 1.5]                              ← 1.5 s of silence after Bob's line
                                             ← a blank line ends a paragraph (the paragraph pause)
    [style excited]
    ALICE: Then what is that light?          ← the style applies to the next speaker who talks: Alice

Rules, chosen to be what a person writing by hand expects:

* ``NAME:`` (or the full-width ``NAME：``) starts a line; NAME begins with a letter, has at most 40 characters
  and 4 words, and the colon is followed by a space or the end of the line (so "3:00" and "http://" are text).
  Names are matched without regard to case; the first spelling is kept. ``NAME:`` alone on a line switches the
  speaker for the lines below it (screenplay style). Start a line with ``\\`` to keep a leading "Word:" as text.
* A line without ``NAME:`` continues the current line of the current speaker; after a blank line it starts a
  new line of the same speaker (a new paragraph). Before any name, the speaker is ``narrator``.
* ``[pause S]`` (seconds, 0–30, "1.5" or "1.5s") ends the line there: S seconds of silence follow it instead of
  the pause map's. On its own line it lengthens the silence after the previous line (before the first line:
  silence at the start).
* ``[style NAME]`` sets the style of the speaker of the *next* spoken text and stays for that speaker until
  changed; ``[style]`` or ``[style default]`` goes back to the cast's style. Inside a line it ends the line
  there, so the rest of the sentence is spoken in the new style. A style is one of the voice's tagged
  reference clips ("calm", "excited", …), checked when the script is cast.
* ``\\[`` is a literal bracket; any other ``[...]`` is an error naming its line and column.

Other formats: ``.txt`` (one voice; a paragraph per line of the script), ``.md`` (headings are chapters and
are spoken; list markers, emphasis, links, code and tables are dropped), ``.srt``/``.vtt`` (each cue a line
with its time slot; a cue starting with ``NAME:`` names its speaker) and ``.epub`` (with the optional
``ebooklib`` package: each document of the book's reading order is a chapter).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from pathlib import Path

from studio.services.scripts.records import NARRATOR, Script, ScriptError, ScriptLine

FORMATS = ("script", "txt", "md", "srt", "vtt", "epub")
MAX_PAUSE_S = 30.0
MAX_LINES = 5000
_EXTENSIONS = {
    ".txt": "txt",
    ".text": "txt",
    ".md": "md",
    ".markdown": "md",
    ".srt": "srt",
    ".vtt": "vtt",
    ".epub": "epub",
    ".script": "script",
    ".dialogue": "script",
}
_SPEAKER = re.compile(r"(?P<name>[^\W\d_][\w.'\- ]{0,39}?)\s*(?:[:：](?=\s|$)|：)\s*")
_DIRECTIVE = re.compile(r"\[(?P<body>[^\[\]]*)\]")
_PAUSE = re.compile(r"pause\s+(?P<s>[-+]?\d+(?:\.\d+)?)\s*s?", re.IGNORECASE)
_STYLE = re.compile(r"style(?:\s+(?P<name>[\w\- ]+?))?\s*", re.IGNORECASE)
_CJK_EDGE = re.compile(r"[\u3000-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uff00-\uffef]")


def detect_format(path: Path | str, text: str | None = None) -> str:
    """The format by extension; a ``.txt`` whose lines name speakers (``NAME:``) is a hand-written script."""
    fmt = _EXTENSIONS.get(Path(path).suffix.lower(), "script")
    if fmt == "txt" and text is not None and _looks_like_dialogue(text):
        return "script"
    return fmt


def _looks_like_dialogue(text: str) -> bool:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    named = sum(1 for ln in lines if _SPEAKER.match(ln) and len(_SPEAKER.match(ln)["name"].split()) <= 4)
    return bool(lines) and named >= max(1, len(lines) // 2)


def load_script(path: Path | str, fmt: str | None = None) -> Script:
    """Read a script file; ``fmt`` overrides the format guessed from the extension."""
    path = Path(path)
    if not path.is_file():
        raise ScriptError(f"There is no script file {path}.")
    name = path.stem
    if (fmt or detect_format(path)) == "epub":
        from studio.services.scripts.epub import read_epub

        return read_epub(path, name)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ScriptError(f"{path.name} is not UTF-8 text.", hint="Save the script as UTF-8 and try again.") from exc
    return parse_script(text, fmt or detect_format(path, text), name=name)


def parse_script(text: str, fmt: str = "script", *, name: str = "script") -> Script:
    """Parse script ``text`` of format ``fmt`` (one of :data:`FORMATS`; ``auto`` guesses txt vs script)."""
    if fmt == "auto":
        fmt = "script" if _looks_like_dialogue(text) else "txt"
    readers = {"script": _parse_dialogue, "txt": _parse_plain, "md": _parse_markdown, "srt": _parse_subtitles}
    readers["vtt"] = _parse_subtitles
    if fmt not in readers:
        raise ScriptError(f"Unknown script format {fmt!r}.", hint=f"Use one of: {', '.join(FORMATS)}.")
    script = readers[fmt](text.replace("\r\n", "\n").replace("\r", "\n"), name, fmt)
    if not script.lines:
        raise ScriptError("The script has no lines to speak.", hint="Write lines like 'ALICE: Hello there.'")
    if len(script.lines) > MAX_LINES:
        raise ScriptError(f"The script has {len(script.lines)} lines; at most {MAX_LINES} can be rendered at once.")
    return script


# ------------------------------------------------------------------------------------------ hand-written


@dataclass
class _Open:
    """The line being gathered: its speaker, its text so far and where it started."""

    speaker: str
    parts: list[str] = field(default_factory=list)
    source_line: int = 0
    column: int = 1

    @property
    def text(self) -> str:
        out = ""
        for part in (p.strip() for p in self.parts):
            if part:
                cjk = out and _CJK_EDGE.match(out[-1]) and _CJK_EDGE.match(part[0])
                out += ("" if not out or cjk else " ") + part
        return out


class _DialogueReader:
    """State of the hand-written format's reader (see the module docstring for the rules)."""

    def __init__(self) -> None:
        self.lines: list[ScriptLine] = []
        self.speakers: dict[str, str] = {}  # case-folded → first spelling
        self.styles: dict[str, str | None] = {}
        self.speaker: str | None = None
        self.pending_style: tuple[str | None] | None = None  # (style,) waiting for the next spoken text
        self.open: _Open | None = None
        self.lead_in = 0.0

    def speaker_name(self, raw: str) -> str:
        name = " ".join(raw.split())
        return self.speakers.setdefault(name.casefold(), name)

    def flush(self, pause: float | None = None) -> None:
        """End the open line (if it has text); ``pause`` seconds follow it."""
        current, self.open = self.open, None
        if current is None or not current.text:
            return
        text = current.text
        if not any(c.isalnum() for c in text):
            raise ScriptError(
                f"{current.speaker}'s line has nothing to say (only punctuation): {text!r}.",
                line=current.source_line,
                column=current.column,
            )
        style = self.styles.get(current.speaker.casefold())
        self.lines.append(ScriptLine(len(self.lines), current.speaker, text, style, pause, None, current.source_line))

    def add_pause(self, seconds: float) -> None:
        if self.open is not None and self.open.text:
            self.flush(seconds)
        elif self.lines:
            last = self.lines[-1]
            self.lines[-1] = replace(last, pause_after=(last.pause_after or 0.0) + seconds)
        else:
            self.lead_in += seconds

    def add_text(self, text: str, lineno: int, column: int) -> None:
        if not text.strip():
            return
        if self.open is None:
            self.open = _Open(self.speaker or self.speaker_name(NARRATOR), source_line=lineno, column=column)
        if self.pending_style is not None and not self.open.text:
            self.styles[self.open.speaker.casefold()] = self.pending_style[0]
            self.pending_style = None
        self.open.parts.append(text)

    def end_paragraph(self) -> None:
        self.flush()
        if self.lines and not self.lines[-1].paragraph_end:
            self.lines[-1] = replace(self.lines[-1], paragraph_end=True)

    def read_line(self, raw: str, lineno: int) -> None:
        stripped = raw.strip()
        if not stripped:
            self.end_paragraph()
            return
        if stripped.startswith("#"):
            return
        offset = len(raw) - len(raw.lstrip())
        body = raw.rstrip()[offset:]
        if body.startswith("\\") and not body.startswith("\\["):
            body, offset = body[1:], offset + 1
        else:
            match = _SPEAKER.match(body)
            if match and len(match["name"].split()) <= 4:
                self.flush()
                self.speaker = self.speaker_name(match["name"])
                body, offset = body[match.end() :], offset + match.end()
        self.read_text(body, lineno, offset + 1)

    def read_text(self, body: str, lineno: int, column: int) -> None:
        """Text with directives; ``column`` is the 1-based column of ``body[0]`` in the source line."""
        pos = 0
        chunk = []
        while pos < len(body):
            if body.startswith("\\[", pos) or body.startswith("\\]", pos):
                chunk.append(body[pos + 1])
                pos += 2
                continue
            if body[pos] != "[":
                chunk.append(body[pos])
                pos += 1
                continue
            self.add_text("".join(chunk), lineno, column + pos - len(chunk))
            chunk = []
            match = _DIRECTIVE.match(body, pos)
            if match is None:
                raise ScriptError(
                    "'[' is never closed.", line=lineno, column=column + pos, hint="Write [pause 1.5] or [style calm]."
                )
            self.directive(match["body"].strip(), lineno, column + pos)
            pos = match.end()
        self.add_text("".join(chunk), lineno, column + pos - len(chunk))

    def directive(self, body: str, lineno: int, column: int) -> None:
        pause, style = _PAUSE.fullmatch(body), _STYLE.fullmatch(body)
        if pause:
            seconds = float(pause["s"])
            if not 0 <= seconds <= MAX_PAUSE_S:
                raise ScriptError(
                    f"A pause must be 0–{MAX_PAUSE_S:g} seconds (got {seconds:g}).", line=lineno, column=column
                )
            self.add_pause(seconds)
        elif style:
            self.flush()
            chosen = (style["name"] or "").strip() or None
            self.pending_style = (None if chosen and chosen.lower() in ("default", "none") else chosen,)
        elif body.split()[:1] == ["pause"] or body == "pause":
            raise ScriptError(
                f"[{body}] needs a number of seconds.", line=lineno, column=column, hint="For example [pause 1.5]."
            )
        else:
            raise ScriptError(
                f"Unknown direction [{body}].",
                line=lineno,
                column=column,
                hint="Use [pause SECONDS] or [style NAME]; write \\[ for a bracket in the text.",
            )


def _parse_dialogue(text: str, name: str, fmt: str) -> Script:
    reader = _DialogueReader()
    for lineno, raw in enumerate(text.split("\n"), 1):
        reader.read_line(raw, lineno)
    reader.end_paragraph()
    return Script(name, tuple(reader.lines), "script", reader.lead_in)


# ------------------------------------------------------------------------------------------ prose


def _paragraphs(lines: list[tuple[int, str]]) -> list[tuple[int, str]]:
    """(source line, text) per paragraph: consecutive non-blank lines joined."""
    out: list[tuple[int, str]] = []
    current = _Open(NARRATOR)
    for lineno, line in [*lines, (0, "")]:
        if line.strip():
            if not current.parts:
                current.source_line = lineno
            current.parts.append(line)
        elif current.parts:
            out.append((current.source_line, current.text))
            current = _Open(NARRATOR)
    return out


def _prose_lines(paragraphs: list[tuple[int, str, str | None]]) -> tuple[ScriptLine, ...]:
    kept = [(n, t, ch) for n, t, ch in paragraphs if any(c.isalnum() for c in t)]
    return tuple(
        ScriptLine(i, NARRATOR, t, source_line=n, paragraph_end=True, chapter=ch) for i, (n, t, ch) in enumerate(kept)
    )


def _parse_plain(text: str, name: str, fmt: str) -> Script:
    paragraphs = _paragraphs(list(enumerate(text.split("\n"), 1)))
    return Script(name, _prose_lines([(n, t, None) for n, t in paragraphs]), "txt")


_MD_DROP = [
    (re.compile(r"!\[[^\]]*\]\([^)]*\)"), ""),  # images
    (re.compile(r"\[([^\]]*)\]\([^)]*\)"), r"\1"),  # links → their text
    (re.compile(r"`([^`]*)`"), r"\1"),
    (re.compile(r"<[^>]+>"), ""),
    (re.compile(r"(\*\*|__|\*|_|~~)(?=\S)(.+?)(?<=\S)\1"), r"\2"),
]
_MD_PREFIX = re.compile(r"^\s*(?:>\s*)*(?:[-*+]\s+|\d+[.)]\s+)?")
_MD_HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")


def _md_inline(text: str) -> str:
    for pattern, repl in _MD_DROP:
        text = pattern.sub(repl, text)
    return text


def _parse_markdown(text: str, name: str, fmt: str) -> Script:
    paragraphs: list[tuple[int, str, str | None]] = []
    chapters: list[str] = []
    block: list[tuple[int, str]] = []
    fenced = False

    def close_block() -> None:
        paragraphs.extend((n, t, chapters[-1] if chapters else None) for n, t in _paragraphs(block))
        block.clear()

    for lineno, line in enumerate(text.split("\n"), 1):
        if line.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
            continue
        heading = _MD_HEADING.match(line)
        if fenced or line.lstrip().startswith("|") or re.fullmatch(r"\s*([-*_])(\s*\1){2,}\s*", line):
            close_block()
        elif heading:
            close_block()
            title = _md_inline(heading[2]).strip()
            if title:
                chapters.append(title)
                paragraphs.append((lineno, title, title))
        else:
            block.append((lineno, _md_inline(_MD_PREFIX.sub("", line, count=1)) if line.strip() else ""))
    close_block()
    return Script(name, _prose_lines(paragraphs), "md", chapters=tuple(chapters))


# ------------------------------------------------------------------------------------------ subtitles


def _parse_subtitles(text: str, name: str, fmt: str) -> Script:
    from studio.errors import SubtitleError
    from studio.services.subtitles import parse_srt, parse_vtt

    try:
        cues = parse_srt(text) if fmt == "srt" else parse_vtt(text)
    except SubtitleError as exc:
        where = re.search(r"line (\d+): ", exc.message)
        if where is None:
            raise ScriptError(exc.message, hint=exc.hint) from exc
        raise ScriptError(exc.message[where.end() :], line=int(where[1]), column=1, hint=exc.hint) from exc
    timing_lines = [n for n, ln in enumerate(text.split("\n"), 1) if "-->" in ln]
    speakers: dict[str, str] = {}
    lines = []
    for i, cue in enumerate(cues):
        body = re.sub(r"<[^>]+>", "", " ".join(cue.text.split()))
        speaker = NARRATOR
        match = _SPEAKER.match(body)
        if match and len(match["name"].split()) <= 4:
            speaker = speakers.setdefault(match["name"].casefold(), match["name"])
            body = body[match.end() :]
        source = timing_lines[i] + 1 if i < len(timing_lines) else 0
        if not any(c.isalnum() for c in body):
            raise ScriptError(f"Cue {i + 1} has nothing to say: {cue.text!r}.", line=source, column=1)
        lines.append(ScriptLine(len(lines), speaker, body.strip(), slot=(cue.start, cue.end), source_line=source))
    return Script(name, tuple(lines), fmt)
