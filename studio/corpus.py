"""Upstream's dataset list (``.list``): one clip per line, ``path|speaker|LANG|text`` (SPEC §9.1).

Lists made by GPT-SoVITS tools read here, and ours read there: UTF-8, ``|`` separated, the language as
one of upstream's aliases (``ZH``, ``JP``/``JA``, ``EN``, ``KO``, ``YUE`` in any of the accepted cases).
Relative paths are resolved against the list's folder; we write paths relative to it when the clip
lies inside that folder, absolute paths otherwise.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path

from studio.errors import DatasetError
from studio.workspace import atomic_write_text

_LOGGER = logging.getLogger(__name__)

#: Semantic tokens per second of audio (the 25 Hz quantizer of SoVITS v2).
SEMANTIC_TOKENS_PER_SECOND = 25
#: Speaking rates upstream's GPT training keeps (SPEC §9.3): a clip outside this band of phones per second is
#: dropped from training, and a generated sentence outside it has almost surely skipped or repeated words.
PHONES_PER_SECOND = (3.0, 25.0)


def text_for_phones(text: str) -> str:
    """A transcript as upstream's dataset preparation hands it to the text front end (``%`` and ``￥`` are
    special marks in synthesis text, not in transcripts)."""
    return text.replace("%", "-").replace("￥", ",")

#: The language column values upstream's preprocessing accepts, mapped to the G2P language code.
LANGUAGE_ALIASES: dict[str, str] = {
    "ZH": "zh",
    "zh": "zh",
    "JP": "ja",
    "jp": "ja",
    "JA": "ja",
    "ja": "ja",
    "EN": "en",
    "en": "en",
    "En": "en",
    "KO": "ko",
    "Ko": "ko",
    "ko": "ko",
    "yue": "yue",
    "YUE": "yue",
    "Yue": "yue",
}
#: What we write in the language column for each language code.
LIST_LANGUAGE: dict[str, str] = {"zh": "ZH", "ja": "JA", "en": "EN", "ko": "KO", "yue": "YUE"}


def normalize_language(code: str) -> str | None:
    """``"JP"`` → ``"ja"``; ``None`` for a value upstream would skip."""
    return LANGUAGE_ALIASES.get(code.strip())


@dataclass(frozen=True)
class DatasetEntry:
    """One line of a dataset list. ``language`` is the lowercase code (``zh``, ``ja``, ``en``, ``ko``, ``yue``)."""

    audio_path: Path
    speaker: str
    language: str
    text: str

    @property
    def name(self) -> str:
        """The clip's file name (upstream keys features by it)."""
        return self.audio_path.name

    def with_text(self, text: str) -> DatasetEntry:
        return replace(self, text=text)

    def to_line(self, base_dir: Path | None = None) -> str:
        """The list line; the path is written relative to ``base_dir`` when the clip lies inside it."""
        path = self.audio_path
        if base_dir is not None:
            try:
                path = Path(self.audio_path).resolve().relative_to(Path(base_dir).resolve())
            except ValueError:
                path = Path(self.audio_path).resolve()
        lang = LIST_LANGUAGE.get(self.language)
        if lang is None:
            raise DatasetError(
                f"Unknown language {self.language!r} for {self.name}; expected one of {sorted(LIST_LANGUAGE)}."
            )
        for what, value in (("path", path.as_posix()), ("speaker", self.speaker)):
            if "|" in value or "\n" in value or "\r" in value:
                raise DatasetError(
                    f"The {what} {value!r} contains '|' or a line break, which the list format cannot hold."
                )
        text = " ".join(self.text.replace("|", " ").split())
        return f"{path.as_posix()}|{self.speaker}|{lang}|{text}"


def parse_line(line: str, base_dir: Path, line_no: int = 0) -> DatasetEntry | None:
    """One entry, or ``None`` for a blank line. A malformed line raises :class:`DatasetError`."""
    line = line.rstrip("\r\n").lstrip("\ufeff")
    if not line.strip():
        return None
    parts = line.split("|", 3)
    if len(parts) != 4:
        raise DatasetError(
            f"Line {line_no} has {len(parts)} field(s); expected 4: path|speaker|LANG|text.",
            hint=f"Line: {line[:80]!r}",
        )
    raw_path, speaker, lang, text = (p.strip() for p in parts)
    language = normalize_language(lang)
    if language is None:
        raise DatasetError(
            f"Line {line_no}: unknown language {lang!r}.",
            hint=f"Use one of {', '.join(sorted(set(LIST_LANGUAGE.values())))}.",
        )
    if not raw_path:
        raise DatasetError(f"Line {line_no} has an empty audio path.")
    path = Path(raw_path.replace("\\", "/"))  # lists written on Windows use backslashes
    if not path.is_absolute():
        path = base_dir / path
    return DatasetEntry(audio_path=path, speaker=speaker, language=language, text=text)


def read_list(path: Path | str, *, strict: bool = True) -> list[DatasetEntry]:
    """Read a ``.list`` file. With ``strict=False`` malformed lines are skipped with a warning (as upstream does)."""
    list_path = Path(path)
    try:
        raw = list_path.read_bytes()
    except FileNotFoundError:
        raise DatasetError(f"Dataset list not found: {list_path}") from None
    try:
        content = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{list_path} is not UTF-8 text (byte {exc.start}).", hint="Save it as UTF-8.") from None
    entries: list[DatasetEntry] = []
    base = list_path.resolve().parent
    for number, line in enumerate(content.splitlines(), start=1):
        try:
            entry = parse_line(line, base, number)
        except DatasetError as exc:
            if strict:
                raise DatasetError(f"{list_path}: {exc.message}", hint=exc.hint) from None
            _LOGGER.warning("%s: skipping line %d: %s", list_path, number, exc)
            continue
        if entry is not None:
            entries.append(entry)
    return entries


def write_list(path: Path | str, entries: Iterable[DatasetEntry]) -> Path:
    """Write the list atomically (UTF-8, ``\\n`` line ends, one trailing newline)."""
    list_path = Path(path)
    base = list_path.resolve().parent
    lines = [entry.to_line(base) for entry in entries]
    return atomic_write_text(list_path, "".join(line + "\n" for line in lines))
