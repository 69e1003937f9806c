"""How a long text is cut into the sentences that are synthesised one at a time.

Six strategies, each a function ``str -> str`` returning the chunks joined by newlines (upstream's
``cut0`` … ``cut5``; :data:`UPSTREAM_NAMES` maps those names to ours), and :func:`prepare_sentences`,
which turns a text into the final list of sentences (upstream's ``TextPreprocessor.pre_seg_text``).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from studio.errors import TextError

# Marks after which the generic splitter cuts (full-width and ASCII).
SPLIT_MARKS = frozenset("，。？！,.?!~:：—…")
# A chunk made only of these is not worth speaking and is dropped.
PUNCTUATION = frozenset("!?…,.- ")
# Punctuation whose consecutive runs collapse to the first mark.
_COLLAPSIBLE = "!?…,.-"
# Marks after which ``every_punctuation`` cuts.
_EVERY_PUNCT_MARKS = frozenset(",.;?!、，。？！：…")

MAX_SENTENCE_CHARS = 510  # the zh BERT takes at most 512 tokens including [CLS]/[SEP]
MIN_SENTENCE_CHARS = 5  # shorter pieces are glued to their neighbours

_SPLIT_MARKS_CLASS = "[" + "".join(re.escape(m) for m in sorted(SPLIT_MARKS)) + "]"
_COLLAPSE_RE = re.compile(f"([{re.escape(_COLLAPSIBLE)}])[{re.escape(_COLLAPSIBLE)}]+")
_PERIOD_NOT_IN_NUMBER = re.compile(r"(?<!\d)\.(?!\d)")


def _only_punctuation(chunk: str) -> bool:
    return set(chunk) <= PUNCTUATION


def _join(chunks: list[str]) -> str:
    return "\n".join(c for c in chunks if not _only_punctuation(c))


def split_at_marks(text: str) -> list[str]:
    """Cut ``text`` after every split mark, keeping the mark; a missing final mark is added as ``。``."""
    text = text.replace("……", "。").replace("——", "，")
    if not text:
        return []
    if text[-1] not in SPLIT_MARKS:
        text += "。"
    pieces: list[str] = []
    start = 0
    for i, char in enumerate(text):
        if char in SPLIT_MARKS:
            pieces.append(text[start : i + 1])
            start = i + 1
    return pieces


def collapse_punctuation(text: str) -> str:
    """Runs of ``! ? … , . -`` keep only their first mark (done by upstream before :func:`prepare_sentences`)."""
    return _COLLAPSE_RE.sub(r"\1", text)


def no_split(text: str) -> str:
    """``cut0``: keep the text whole (a text of punctuation only becomes an empty line)."""
    return "\n" if _only_punctuation(text) else text


def every_four_sentences(text: str) -> str:
    """``cut1``: groups of four pieces; the last group takes everything from its start to the end."""
    text = text.strip("\n")
    pieces = split_at_marks(text)
    starts = list(range(0, len(pieces), 4))
    if len(starts) <= 1:
        return _join([text])
    bounds = starts[:-1] + [len(pieces)]
    return _join(["".join(pieces[a:b]) for a, b in zip(bounds[:-1], bounds[1:], strict=True)])


def every_50_chars(text: str) -> str:
    """``cut2``: pieces accumulate until the chunk exceeds 50 characters; a short tail joins the chunk before."""
    text = text.strip("\n")
    pieces = split_at_marks(text)
    if len(pieces) < 2:
        return text
    chunks: list[str] = []
    current = ""
    for piece in pieces:
        current += piece
        if len(current) > 50:
            chunks.append(current)
            current = ""
    if current:
        chunks.append(current)
    if len(chunks) > 1 and len(chunks[-1]) < 50:
        chunks[-2:] = [chunks[-2] + chunks[-1]]
    return _join(chunks)


def chinese_full_stop(text: str) -> str:
    """``cut3``: split at ``。`` (the mark is removed)."""
    return _join(text.strip("\n").strip("。").split("。"))


def english_period(text: str) -> str:
    """``cut4``: split at ``.`` unless a digit touches it (the mark is removed)."""
    return _join(_PERIOD_NOT_IN_NUMBER.split(text.strip("\n").strip(".")))


def every_punctuation(text: str) -> str:
    """``cut5``: cut after every punctuation mark (keeping it), except a decimal point between two digits."""
    text = text.strip("\n")
    chunks: list[str] = []
    current = ""
    for i, char in enumerate(text):
        current += char
        if char not in _EVERY_PUNCT_MARKS:
            continue
        decimal = char == "." and 0 < i < len(text) - 1 and text[i - 1].isdigit() and text[i + 1].isdigit()
        if not decimal:
            chunks.append(current)
            current = ""
    if current:
        chunks.append(current)
    return "\n".join(c for c in chunks if not set(c) <= _EVERY_PUNCT_MARKS)


SplitMethod = Callable[[str], str]

METHODS: dict[str, SplitMethod] = {
    "no_split": no_split,
    "every_four_sentences": every_four_sentences,
    "every_50_chars": every_50_chars,
    "chinese_full_stop": chinese_full_stop,
    "english_period": english_period,
    "every_punctuation": every_punctuation,
}

UPSTREAM_NAMES: dict[str, str] = {
    "cut0": "no_split",
    "cut1": "every_four_sentences",
    "cut2": "every_50_chars",
    "cut3": "chinese_full_stop",
    "cut4": "english_period",
    "cut5": "every_punctuation",
}


def get_split_method(name: str) -> SplitMethod:
    """The strategy called ``name`` (ours, e.g. ``"every_punctuation"``, or upstream's ``"cut5"``)."""
    method = METHODS.get(UPSTREAM_NAMES.get(name, name))
    if method is None:
        known = ", ".join([*METHODS, *UPSTREAM_NAMES])
        raise TextError(f"Unknown text split method {name!r}.", hint=f"Use one of: {known}.")
    return method


def _first_clause(text: str) -> str:
    return re.split(_SPLIT_MARKS_CLASS, text)[0].strip()


def _merge_short(items: list[str], threshold: int) -> list[str]:
    if len(items) < 2:
        return items
    merged: list[str] = []
    current = ""
    for item in items:
        current += item
        if len(current) >= threshold:
            merged.append(current)
            current = ""
    if current:
        if merged:
            merged[-1] += current
        else:
            merged.append(current)
    return merged


def _split_long(text: str, max_len: int = MAX_SENTENCE_CHARS) -> list[str]:
    """Upstream's re-split of a sentence over ``max_len`` characters, exactly.

    The text is cut into runs and single split marks; a piece is emitted whenever the next run or mark would
    take it over ``max_len``. So a run without marks longer than ``max_len`` stays whole, and when the text
    *starts* with one, an empty piece comes first; its closing mark, pushed over the limit, ends up alone
    ("啊" × 600 + "。" → ``["", "啊" × 600, "。"]``). Synthesis does not speak these pieces as they are: see
    :func:`studio.text.deviations.speakable_sentences`.
    """
    out: list[str] = []
    current = ""
    for part in re.split(f"({_SPLIT_MARKS_CLASS})", text):
        if len(current + part) > max_len:
            out.append(current)
            current = part
        else:
            current += part
    if current:
        out.append(current)
    return out


def prepare_sentences(text: str, lang: str, method: str = "every_four_sentences") -> list[str]:
    """The sentences to synthesise one by one, in order (upstream's ``pre_seg_text``).

    A first clause shorter than 4 characters gets a leading ``。`` (``.`` for ``en``), the text is cut
    with ``method``, pieces shorter than 5 characters are glued together, symbol-only pieces are
    skipped, every sentence ends with a split mark, and sentences over 510 characters are re-split. The
    result is upstream's list, piece for piece (the goldens check it), including the empty and mark-only
    pieces that re-splitting a long text without marks leaves; :func:`studio.text.reading.split_for_speech`
    turns it into the sentences synthesis speaks. Raises :class:`TextError` when nothing speakable is left.
    """
    split = get_split_method(method)
    stop = "." if lang == "en" else "。"
    text = text.strip("\n")
    if not text:
        return []
    if text[0] not in SPLIT_MARKS and len(_first_clause(text)) < 4:
        text = stop + text
    text = split(text)
    while "\n\n" in text:
        text = text.replace("\n\n", "\n")
    items = text.split("\n")
    if all(item in (" ", "") for item in items):
        raise TextError("The text has nothing to speak after splitting.", hint="Enter some words.")
    items = _merge_short([item for item in items if item not in (" ", "")], MIN_SENTENCE_CHARS)
    sentences: list[str] = []
    for item in items:
        if not item.strip() or not re.sub(r"\W+", "", item):
            continue
        if item[-1] not in SPLIT_MARKS:
            item += stop
        sentences.extend(_split_long(item) if len(item) > MAX_SENTENCE_CHARS else [item])
    return sentences
