"""The records of a parsed script: what each line says, who says it, how, and what follows it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

from studio.errors import StudioError

NARRATOR = "narrator"  # the speaker of lines that name none (.txt, .md, .epub, unnamed .srt cues)


class ScriptError(StudioError):
    """A script cannot be read: the message names the line and column (1-based) of the first problem."""

    def __init__(
        self, message: str, *, line: int | None = None, column: int | None = None, hint: str | None = None
    ) -> None:
        where = f"line {line}, column {column}: " if line is not None and column is not None else ""
        where = where or (f"line {line}: " if line is not None else "")
        super().__init__(f"{where}{message}", hint=hint)
        self.line = line
        self.column = column


@dataclass(frozen=True)
class ScriptLine:
    """One thing one speaker says, rendered as one take.

    * ``style``: the speaker's style tag at this line (``[style excited]``), ``None`` = the cast's style.
    * ``pause_after``: seconds of silence written after the line by ``[pause S]``; ``None`` = the pause map's
      (the paragraph pause after the last line of a paragraph, else the pause of the line's final mark).
    * ``slot``: ``(start, end)`` seconds the line must fit (``.srt`` cues), else ``None``.
    * ``source_line``: the 1-based line of the source file where the line starts (errors and the report).
    """

    index: int
    speaker: str
    text: str
    style: str | None = None
    pause_after: float | None = None
    slot: tuple[float, float] | None = None
    source_line: int = 0
    paragraph_end: bool = False
    chapter: str | None = None  # the heading (.md/.epub chapter) the line belongs to

    def to_dict(self) -> dict:
        data = asdict(self)
        data["slot"] = list(self.slot) if self.slot else None
        return data

    @classmethod
    def from_dict(cls, data: dict) -> ScriptLine:
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        if known.get("slot") is not None:
            known["slot"] = (float(known["slot"][0]), float(known["slot"][1]))
        return cls(**known)

    def edited(self, **changes) -> ScriptLine:
        return replace(self, **changes)


@dataclass(frozen=True)
class Script:
    """A parsed script: its lines in order, the speakers in order of appearance, and where it came from."""

    name: str
    lines: tuple[ScriptLine, ...]
    format: str = "script"  # script | txt | md | srt | epub
    lead_in: float = 0.0  # seconds of silence before the first line (a ``[pause S]`` before any line)
    chapters: tuple[str, ...] = field(default=())

    @property
    def speakers(self) -> list[str]:
        return list(dict.fromkeys(line.speaker for line in self.lines))

    @property
    def timed(self) -> bool:
        """True when the lines have slots (a subtitle file): the mix places them on the clock."""
        return any(line.slot for line in self.lines)

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "format": self.format,
            "lead_in": self.lead_in,
            "chapters": list(self.chapters),
            "lines": [line.to_dict() for line in self.lines],
        }

    @classmethod
    def from_dict(cls, data: dict) -> Script:
        return cls(
            name=str(data["name"]),
            lines=tuple(ScriptLine.from_dict(d) for d in data["lines"]),
            format=str(data.get("format", "script")),
            lead_in=float(data.get("lead_in", 0.0)),
            chapters=tuple(data.get("chapters", ())),
        )
