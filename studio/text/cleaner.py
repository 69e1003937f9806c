"""One language segment → phones: per-language dispatch, the zh silence marks and ``UNK`` (SPEC §2.2).

The per-language modules (``studio.text.zh``, ``en``, ``ja``, ``ko``, ``yue``) each expose
``clean(text) -> CleanedText`` and are imported only when a segment of that language is met.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from studio.errors import UnsupportedLanguageError
from studio.text.symbols import UNK, symbol_table, table_version
from studio.text.types import CleanedText

# Per-segment languages each phone table supports (v1 predates Korean and Cantonese).
SEGMENT_LANGS = {"v1": ("zh", "ja", "en"), "v2": ("zh", "ja", "en", "ko", "yue")}

# Special marks in Chinese text: the mark is read as a comma, then every comma phone of the
# segment becomes the given pause symbol. Only the first mark found is honoured.
_SPECIAL_MARKS = (("￥", "zh", "SP2"), ("^", "zh", "SP3"))


def segment_langs(version: str = "v2") -> tuple[str, ...]:
    """The per-segment language codes :func:`clean_text` handles for ``version``."""
    return SEGMENT_LANGS[table_version(version)]


def _language_module(lang: str) -> ModuleType:
    name = f"studio.text.{lang}"
    try:
        module = importlib.import_module(name)
    except ModuleNotFoundError as err:
        if err.name != name:
            raise
        module = None
    if not callable(getattr(module, "clean", None)):
        raise UnsupportedLanguageError(
            f"The text front end for language {lang!r} is not available in this installation."
        )
    return module


def clean_text(text: str, lang: str, version: str = "v2") -> CleanedText:
    """Normalise and convert one single-language segment to phones (upstream's ``clean_text``).

    A language the version does not know is treated as English with the text ``" "`` (upstream
    behaviour); phones missing from the version's table become ``UNK``.
    """
    if lang not in segment_langs(version):
        lang, text = "en", " "
    mark = next(((m, pause) for m, mark_lang, pause in _SPECIAL_MARKS if m in text and lang == mark_lang), None)
    module = _language_module(lang)
    if mark is None:
        cleaned = module.clean(text)
        phones = list(cleaned.phones)
    else:
        special, pause = mark
        text = text.replace(special, ",")
        for other, _, _ in _SPECIAL_MARKS:
            text = text.replace(other, "")  # the zh normaliser deletes them anyway; keep the module off its own path
        cleaned = module.clean(text)
        phones = [pause if p == "," else p for p in cleaned.phones]
    table = symbol_table(version)
    phones = [p if p in table else UNK for p in phones]
    word2ph = list(cleaned.word2ph) if cleaned.word2ph is not None else None
    return CleanedText(phones=phones, word2ph=word2ph, norm_text=cleaned.norm_text)
