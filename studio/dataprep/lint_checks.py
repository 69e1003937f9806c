"""Lint rules about how a clip was recorded (clipping, input format) and how sure the recogniser was.

Split from :mod:`studio.dataprep.lint` (which builds the report and calls these per clip).

**Doubtful transcripts.** Whisper's own confidences barely separate its mistakes from right words on real
takes: on the sample takes in ``shared/voices`` a misheard word ("sock chairs" for "soft chairs") scored
0.43 while right words scored 0.31, and a clip-level average logprob ranked misheard clips no lower than good
ones. What does separate them is a **second listen**: each clip is transcribed once inside a shared window
and once on its own (:class:`~studio.dataprep.transcribe.WhisperTranscriber` ``cross_check``); words the two
passes disagree on are where the recogniser was guessing. A clip is doubtful when the passes disagree, when
a word scored below ``min_word_probability`` (0.2: nearly always a wrong word), or on the classic
segment signals (average logprob, no-speech probability, repetition, uncertain language). A clip whose text
the user has edited or confirmed is not doubtful any more.
"""

from __future__ import annotations

import difflib
import unicodedata
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from studio.corpus import DatasetEntry
    from studio.dataprep.lint import ClipStats, Finding, LintConfig

_NO_SPACE = ("zh", "ja", "yue")


def clipping_findings(stats: ClipStats, c: LintConfig) -> list[Finding]:
    """Clipping in the clip or in its span of the original take, graded by the share of clipped samples."""
    from studio.dataprep.lint import ERROR, WARNING, finding

    share = stats.clipping
    longest = max(stats.longest_clip_ms, stats.original_clip_ms)
    if share < c.clip_warn and longest < c.clip_run_warn_ms:
        return []
    severity = ERROR if share >= c.clip_error else WARNING
    hidden = (stats.original_clipped or 0.0) > stats.clipped_fraction
    key = "clipping.hidden" if hidden else "clipping"
    fix = "clipping.warning.fix" if severity == WARNING else "clipping.fix"
    return [finding(key, severity, stats.name, fix=fix, share=share, longest_ms=longest)]


def format_findings(stats: ClipStats) -> list[Finding]:
    """A recording that arrived at a low sample rate or bit depth (telephone quality) cannot sound better."""
    from studio.dataprep.lint import WARNING, finding
    from studio.dataprep.quality import InputFormat

    fmt = InputFormat(stats.sample_rate_in or 32000, stats.bits_in)
    out = []
    if "low_sample_rate" in fmt.problems:
        out.append(finding("low_sample_rate", WARNING, stats.name, khz=fmt.sample_rate / 1000))
    if "low_bit_depth" in fmt.problems:
        out.append(finding("low_bit_depth", WARNING, stats.name, bits=fmt.bits))
    return out


def speaking_rate_findings(entry: DatasetEntry, duration_s: float) -> list[Finding]:
    """A transcript far too long or short for its clip: the text and the audio do not say the same thing.

    Same band and same measure as the GPT training filter (phones of the transcript per second of clip), so a
    clip flagged here is one training would skip.
    """
    from studio.corpus import PHONES_PER_SECOND, text_for_phones
    from studio.dataprep.lint import WARNING, finding
    from studio.errors import StudioError
    from studio.text.frontend import text_to_phones

    try:
        n_phones = len(text_to_phones(text_for_phones(entry.text), entry.language).phones)
    except StudioError:
        return []  # an unspeakable transcript is reported by the text checks
    rate = n_phones / duration_s
    low, high = PHONES_PER_SECOND
    if rate > high:
        key = "text_length_mismatch.long"
    elif rate < low:
        key = "text_length_mismatch.short"
    else:
        return []
    return [finding(key, WARNING, entry.name, seconds=duration_s, rate=rate)]


def doubt_reasons(entry: DatasetEntry, asr: Mapping[str, Any], c: LintConfig) -> list[str]:
    """Why the recogniser's transcript of ``entry`` is doubtful (empty: it is not, or the user checked it)."""
    from studio.dataprep.lint_text import render

    return [render(m["key"], m["params"]) for m in doubt_notes(entry, asr, c)]


def doubt_notes(entry: DatasetEntry, asr: Mapping[str, Any], c: LintConfig) -> list[dict]:
    """:func:`doubt_reasons` as lint_text messages (key + parameters), for the page's language."""
    from studio.dataprep.lint_text import message

    heard = str(asr.get("text", entry.text))
    if asr.get("proofread") or _tokens(heard, entry.language) != _tokens(entry.text, entry.language):
        return []  # the user has corrected or confirmed the text
    reasons = []
    disputed = disputed_words(heard, asr.get("second_opinion"), entry.language)
    if disputed:
        pairs = [message("doubt.pair", heard=b, written=a) for a, b in disputed[:3]]
        reasons.append(message("doubt.second_listen", pairs=pairs))
    unsure = [str(w) for w, p in asr.get("words", ()) if float(p) < c.min_word_probability]
    if unsure:
        reasons.append(message("doubt.unsure_words", words=[message("doubt.word", word=w) for w in unsure[:3]]))
    if float(asr.get("avg_logprob", 0.0)) < c.min_avg_logprob:
        reasons.append(message("doubt.low_confidence"))
    if float(asr.get("no_speech_prob", 0.0)) > c.max_no_speech_prob:
        reasons.append(message("doubt.no_speech"))
    if float(asr.get("compression_ratio", 0.0)) > c.max_compression_ratio:
        reasons.append(message("doubt.repeats"))
    if float(asr.get("language_probability", 1.0)) < c.min_language_probability:
        reasons.append(message("doubt.language"))
    return reasons


def asr_findings(entry: DatasetEntry, asr: Mapping[str, Any] | None, c: LintConfig) -> list[Finding]:
    from studio.dataprep.lint import WARNING, finding

    reasons = doubt_notes(entry, asr, c) if asr else []
    if not reasons:
        return []
    return [finding("low_confidence", WARNING, entry.name, reasons=reasons)]


def disputed_words(first: str, second: str | None, language: str) -> list[tuple[str, str]]:
    """(first pass, second pass) pieces where two transcripts of one clip differ (case and punctuation aside)."""
    if not second:
        return []
    a, b = _tokens(first, language), _tokens(second, language)
    out = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if op != "equal":
            sep = "" if language in _NO_SPACE else " "
            out.append((sep.join(a[i1:i2]) or "…", sep.join(b[j1:j2]) or "…"))
    return out


def _tokens(text: str, language: str) -> list[str]:
    folded = unicodedata.normalize("NFKC", text).lower().replace("'", "").replace("’", "")
    cleaned = "".join(ch if ch.isalnum() else " " for ch in folded)
    if language in _NO_SPACE:
        return [ch for ch in cleaned if not ch.isspace()]
    return cleaned.split()
