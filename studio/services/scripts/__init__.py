"""Scripts: long texts with several speakers, parsed, cast to library voices, rendered line by line and checked.

* :mod:`.records`  — :class:`Script`, :class:`ScriptLine`, :class:`ScriptError` (pure Python).
* :mod:`.parser`   — the hand-written format (``NAME: line``), ``.txt``, ``.md``, ``.srt`` and ``.epub`` (no torch).
* :mod:`.render`   — :class:`ScriptRenderer`: synthesis + take QA + retries per line, resumable, one-line edits.

Only the records and the parser are imported here, so reading a script never loads the engine.
"""

from studio.services.scripts.parser import FORMATS, load_script, parse_script
from studio.services.scripts.records import Script, ScriptError, ScriptLine

__all__ = ["FORMATS", "Script", "ScriptError", "ScriptLine", "load_script", "parse_script"]
