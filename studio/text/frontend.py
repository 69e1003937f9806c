"""Text → phone ids for the models (upstream's ``get_phones_and_bert`` without the BERT model).

The text is split into language runs for the chosen mode, each run is cleaned on its own, and the
phones are concatenated. A result of fewer than 6 phones is redone once with ``"."`` in front of the
text. Only ``zh`` runs get BERT features; :attr:`PhoneSequence.zh_bert_mask` and the segments tell the
model layer which phones those are (the others get zero vectors).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from studio.errors import TextError
from studio.text.cleaner import clean_text
from studio.text.language_split import check_lang_mode, split_by_mode
from studio.text.symbols import phones_to_ids, table_version
from studio.text.user_lexicon import UserLexicon, using

MIN_PHONES = 6  # fewer phones than this: retry once with "." prepended
BERT_LANG = "zh"  # the only language whose phones get features from the Chinese BERT

_MULTI_SPACE = re.compile(r" {2,}")
_SPEAKABLE = re.compile(r"[^\W_]")  # a letter, digit or ideograph in any script


@dataclass(frozen=True)
class PhoneSegment:
    """One language run of a :class:`PhoneSequence`; its phones start at ``start`` in the whole sequence."""

    lang: str
    text: str
    phones: list[str]
    phone_ids: list[int]
    word2ph: list[int] | None
    norm_text: str
    start: int

    @property
    def end(self) -> int:
        return self.start + len(self.phones)

    @property
    def needs_bert(self) -> bool:
        """True when this run's phone features come from the Chinese BERT (zh only)."""
        return self.lang == BERT_LANG


@dataclass(frozen=True)
class PhoneSequence:
    """The phones of a whole text, ready for the models.

    ``word2ph`` is the concatenation of the segments' ``word2ph`` when every segment has one
    (zh/yue only), else ``None``. ``retried_with_dot`` tells that the short-text rule fired.
    """

    text: str
    lang_mode: str
    version: str
    phones: list[str]
    phone_ids: list[int]
    word2ph: list[int] | None
    norm_text: str
    segments: list[PhoneSegment]
    retried_with_dot: bool = False

    def __len__(self) -> int:
        return len(self.phone_ids)

    @property
    def zh_bert_mask(self) -> list[int]:
        """Per phone: 1 where the feature comes from the Chinese BERT, 0 where it is zeros."""
        return [int(seg.needs_bert) for seg in self.segments for _ in seg.phones]


class TextFrontend:
    """Turns user text into a :class:`PhoneSequence` for one model version (``"v1"`` or ``"v2"``)."""

    def __init__(self, version: str = "v2") -> None:
        table_version(version)  # fail early on an unknown version
        self.version = version

    def to_phones(self, text: str, lang_mode: str) -> PhoneSequence:
        lang_mode = _check_inputs(text, lang_mode, self.version)
        original, text = text, _MULTI_SPACE.sub(" ", text)
        sequence = self._convert(text, lang_mode, original)
        if len(sequence.phones) < MIN_PHONES:
            sequence = replace(self._convert("." + text, lang_mode, original), retried_with_dot=True)
        if not sequence.phones:
            raise TextError(f"No phones could be made from the text {original!r}.", hint="Enter some words.")
        return sequence

    def _convert(self, text: str, lang_mode: str, original: str) -> PhoneSequence:
        segments: list[PhoneSegment] = []
        start = 0
        for run in split_by_mode(text, lang_mode, self.version):
            cleaned = clean_text(run.text, run.lang, self.version)
            ids = phones_to_ids(cleaned.phones, self.version)
            segments.append(
                PhoneSegment(run.lang, run.text, cleaned.phones, ids, cleaned.word2ph, cleaned.norm_text, start)
            )
            start += len(ids)
        word2phs = [seg.word2ph for seg in segments]
        word2ph = [n for w in word2phs for n in w] if segments and None not in word2phs else None
        return PhoneSequence(
            text=original,
            lang_mode=lang_mode,
            version=self.version,
            phones=[p for seg in segments for p in seg.phones],
            phone_ids=[i for seg in segments for i in seg.phone_ids],
            word2ph=word2ph,
            norm_text="".join(seg.norm_text for seg in segments),
            segments=segments,
        )


def _check_inputs(text: str, lang_mode: str, version: str) -> str:
    if not isinstance(text, str) or not text.strip():
        raise TextError("The text to speak is empty.", hint="Enter some words.")
    if not isinstance(lang_mode, str):
        raise TextError(f"The language must be a code such as 'zh' or 'auto', not {lang_mode!r}.")
    lang_mode = check_lang_mode(lang_mode.strip().lower(), version)
    if not _SPEAKABLE.search(text):
        raise TextError(
            f"The text {text!r} has only punctuation or symbols; there is nothing to speak.",
            hint="Enter some words.",
        )
    return lang_mode


#: phones that make no sound of speech: punctuation, pauses, padding, unknown
SILENT_PHONES = frozenset({",", ".", "!", "?", "…", "-", "'", "_", "SP", "SP2", "SP3", "UNK"})


def ensure_speakable(sequence: PhoneSequence) -> PhoneSequence:
    """Refuse text whose phones are only punctuation in the chosen language (e.g. Cyrillic with ``en``: the
    front end keeps only ", ." and the model would babble for seconds). Synthesis calls this for every
    sentence, so the CLI, the API and the studio all refuse such text in the same words."""
    if any(p not in SILENT_PHONES for p in sequence.phones):
        return sequence
    lang = sequence.lang_mode
    raise TextError(
        f"Nothing in {sequence.text!r} can be spoken with language {lang!r}: the model reads none of its "
        "letters, so only punctuation is left.",
        hint="Choose the text's language, or write it in a script the model speaks (Chinese, English, "
        "Japanese, Korean, Cantonese).",
    )


def text_to_phones(text: str, lang_mode: str, version: str = "v2", lexicon: UserLexicon | None = None) -> PhoneSequence:
    """Phones and phone ids of ``text`` in language mode ``lang_mode`` (``auto``, ``zh``, ``all_ja``, …).

    ``lexicon``: the user's own pronunciations (:mod:`studio.text.user_lexicon`), applied to this text only.

    Raises :class:`~studio.errors.TextError` for empty or symbol-only text and
    :class:`~studio.errors.UnsupportedLanguageError` for an unknown language code.
    """
    if lexicon is None:  # whatever lexicon is active (none by default)
        return TextFrontend(version).to_phones(text, lang_mode)
    with using(lexicon):
        return TextFrontend(version).to_phones(text, lang_mode)
