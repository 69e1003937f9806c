"""Text → phones: language split, sentence split, per-language cleaning and the phone tables.

Plain Python (no torch). The entry point is :func:`text_to_phones` / :class:`TextFrontend`;
:func:`prepare_sentences` cuts a long text into the sentences synthesised one by one.
"""

from __future__ import annotations

from studio.text.cleaner import clean_text, segment_langs
from studio.text.frontend import PhoneSegment, PhoneSequence, TextFrontend, text_to_phones
from studio.text.language_split import (
    LanguageSegment,
    check_lang_mode,
    split_by_mode,
    split_languages,
    supported_lang_modes,
)
from studio.text.sentence_split import (
    METHODS,
    UPSTREAM_NAMES,
    collapse_punctuation,
    get_split_method,
    prepare_sentences,
)
from studio.text.symbols import (
    ids_to_phones,
    phones_to_ids,
    symbol_table,
    version_for_table_size,
)
from studio.text.types import CleanedText

__all__ = [
    "METHODS",
    "UPSTREAM_NAMES",
    "CleanedText",
    "LanguageSegment",
    "PhoneSegment",
    "PhoneSequence",
    "TextFrontend",
    "check_lang_mode",
    "clean_text",
    "collapse_punctuation",
    "get_split_method",
    "ids_to_phones",
    "phones_to_ids",
    "prepare_sentences",
    "segment_langs",
    "split_by_mode",
    "split_languages",
    "supported_lang_modes",
    "symbol_table",
    "text_to_phones",
    "version_for_table_size",
]
