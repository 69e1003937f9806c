"""The workspace's pronunciation list (``<workspace>/pronunciations.txt``): read, check, save.

Synthesis everywhere (studio, CLI, HTTP API) applies it to the text being spoken; the format and what it covers
are described in :mod:`studio.text.user_lexicon`.
"""

from __future__ import annotations

import threading
from pathlib import Path

from studio.text.user_lexicon import UserLexicon, load_lexicon, parse_lexicon
from studio.workspace import PRONUNCIATIONS_FILE, atomic_write_text

TEMPLATE = """# Your own pronunciations, one per line:  language | word | how to read it
# en: ARPAbet phones with stress digits (as in CMUdict).  zh: pinyin with tone digits, one syllable per character.
# en | SoVITS | S OW1 V IH0 T S
# zh | 曾小贤 | zeng1 xiao3 xian2
"""


class PronunciationService:
    """One workspace's list; :meth:`lexicon` re-reads the file only when it changed on disk."""

    def __init__(self, workspace_root: Path) -> None:
        self.path = Path(workspace_root) / PRONUNCIATIONS_FILE
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._cached = UserLexicon()

    def text(self, template: str = TEMPLATE) -> str:
        """The file's text, or a commented ``template`` when there is none yet (the page passes one in the
        interface language; comment lines are ignored when the list is read)."""
        return self.path.read_text(encoding="utf-8") if self.path.is_file() else template

    def lexicon(self) -> UserLexicon:
        with self._lock:
            try:
                stat = self.path.stat()
            except FileNotFoundError:
                self._stamp, self._cached = None, UserLexicon()
                return self._cached
            stamp = (stat.st_mtime_ns, stat.st_size)
            if stamp != self._stamp:
                self._cached, self._stamp = load_lexicon(self.path), stamp
            return self._cached

    def save(self, text: str) -> UserLexicon:
        """Check ``text`` and write it; a bad line raises :class:`TextError` and the file stays as it was."""
        lexicon = parse_lexicon(text, source=PRONUNCIATIONS_FILE)
        atomic_write_text(self.path, text if text.endswith("\n") else text + "\n")
        return lexicon
