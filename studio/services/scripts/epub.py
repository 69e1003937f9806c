"""E-books (``.epub``) as scripts, through the optional ``ebooklib`` package (``pip install "sovits-studio[epub]"``).

Each document of the book's reading order (its spine) is a chapter: its first heading names the chapter and is
spoken; every paragraph (``<p>``, list item, heading) is a line of the narrator. Documents without text (covers,
tables of contents with links only) are skipped.
"""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

from studio.services.scripts.records import NARRATOR, Script, ScriptError, ScriptLine

_BLOCKS = {"p", "li", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "dd", "dt"}
_SKIP = {"script", "style", "nav", "head"}


class _Paragraphs(HTMLParser):
    """(tag, text) of every block element of an XHTML document."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.blocks: list[tuple[str, str]] = []
        self._tag: str | None = None
        self._text: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag, attrs):
        if tag in _SKIP:
            self._skip += 1
        elif tag in _BLOCKS:
            self._close()
            self._tag = tag

    def handle_endtag(self, tag):
        if tag in _SKIP:
            self._skip = max(0, self._skip - 1)
        elif tag in _BLOCKS:
            self._close()

    def handle_data(self, data):
        if not self._skip and self._tag:
            self._text.append(data)

    def _close(self) -> None:
        text = " ".join("".join(self._text).split())
        if self._tag and any(c.isalnum() for c in text):
            self.blocks.append((self._tag, text))
        self._tag, self._text = None, []


def read_epub(path: Path, name: str) -> Script:
    try:
        import ebooklib
        from ebooklib import epub
    except ImportError as exc:
        raise ScriptError(
            "Reading .epub books needs the optional ebooklib package.",
            hint='Install it with: pip install "sovits-studio[epub]" (or pip install ebooklib).',
        ) from exc
    try:
        book = epub.read_epub(str(path), options={"ignore_ncx": True})
    except Exception as exc:  # ebooklib raises its own and zipfile/lxml errors for a damaged book
        raise ScriptError(f"{path.name} cannot be read as an EPUB book: {exc}") from exc
    lines: list[ScriptLine] = []
    chapters: list[str] = []
    for item_id, _linear in book.spine:
        item = book.get_item_with_id(item_id)
        if item is None or item.get_type() != ebooklib.ITEM_DOCUMENT:
            continue
        reader = _Paragraphs()
        reader.feed(item.get_content().decode("utf-8", errors="replace"))
        reader.close()
        if not reader.blocks:
            continue
        title = next((t for tag, t in reader.blocks if tag.startswith("h")), f"Chapter {len(chapters) + 1}")
        chapters.append(title)
        for n, (_tag, text) in enumerate(reader.blocks, 1):
            lines.append(ScriptLine(len(lines), NARRATOR, text, source_line=n, paragraph_end=True, chapter=title))
    if not lines:
        raise ScriptError(f"{path.name} has no text to read.")
    return Script(name, tuple(lines), "epub", chapters=tuple(chapters))
