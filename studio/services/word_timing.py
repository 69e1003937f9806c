"""When each word of a take is spoken: Whisper's word timestamps mapped onto the text that was asked for.

Why Whisper and not the engine: GPT-SoVITS has no aligner. The GPT emits 25 Hz semantic tokens from the text
with no text-to-token alignment exposed, and the only text/audio attention, SoVITS's MRTE (content frames
attending to phones), is not trained to be monotonic; we have not shown it gives dependable word boundaries,
so the studio does not use it. Take QA already transcribes every take with faster-whisper using word
timestamps, so the times come from there.

Why map onto the intended text: subtitles should show what was meant to be said, not Whisper's spelling
(numbers, homophones, traditional characters, a missed word). The recognised words are aligned to the text's
words with an edit-distance alignment; a text word matched (or substituted) takes the time of the heard word;
text words Whisper missed get times interpolated between their matched neighbours (by length in characters);
heard words the text does not have are dropped. Chinese/Japanese text is timed per character: Whisper's
multi-character words are split with their time shared evenly between the characters.

Display units keep their punctuation ("Hello," / "好，") so that subtitle lines can break at it; matching uses
the normalised form (case, width and punctuation removed).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

from studio.services.subtitles import WordTime

# Han, kana, CJK punctuation/full-width forms: timed per character; Hangul keeps its space-separated words
_CJK_CHAR = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3005\u3006]")
_PARTS = re.compile(rf"{_CJK_CHAR.pattern}|(?:(?!{_CJK_CHAR.pattern}).)+")
# a substitution costs more than a deletion but less than a deletion + insertion: a misheard word still takes
# the heard word's time, while a missed word next to an extra heard word does not shift its neighbours
_SUB = 1.5
_MIN_WORD_S = 0.06  # a missed word squeezed into less than this gets room from its neighbours
_S_PER_CHAR = 0.07  # about 14 characters a second: the length guessed for missed words at either end


def _key(unit: str) -> str:
    text = unicodedata.normalize("NFKC", unit).lower()
    return "".join(c for c in text if unicodedata.category(c)[0] not in "PSZC")


def display_units(text: str) -> list[str]:
    """Text → timed units: words, single CJK characters; punctuation stays with the unit before it."""
    units: list[str] = []
    pending = ""  # punctuation before a unit (an opening quote) waits for it
    for piece in text.split():
        for k, part in enumerate(_PARTS.findall(piece)):
            if not (_CJK_CHAR.match(part) or _key(part)):
                if units and not pending and not _opens(part, k == 0):
                    units[-1] += part
                else:
                    pending += part
                continue
            lead = len(part) - len(part.lstrip("".join(c for c in part if not _key(c))))
            if k > 0 and lead and units and not pending:  # "好，Apple": the comma closes "好"
                units[-1] += part[:lead]
                part = part[lead:]
            units.append(pending + part)
            pending = ""
    if pending and units:
        units[-1] += pending
    return units


def _opens(part: str, starts_piece: bool) -> bool:
    """Opening punctuation ("「", "(", a straight quote at the start of a word) belongs to the next unit."""
    return all(unicodedata.category(c) in ("Ps", "Pi") or (starts_piece and c in "\"'") for c in part)


def _heard_units(words: Sequence[WordTime]) -> list[WordTime]:
    """Whisper's words split like the text (CJK per character, time shared evenly), empty ones dropped."""
    out: list[WordTime] = []
    for w in words:
        parts = [u for u in display_units(w.word) if _key(u)]
        if not parts:
            continue
        step = max(0.0, w.end - w.start) / len(parts)
        out.extend(WordTime(p, w.start + k * step, w.start + (k + 1) * step) for k, p in enumerate(parts))
    return out


def _match(ref: Sequence[str], hyp: Sequence[str]) -> list[int | None]:
    """For each ref token, the index of the hyp token it is aligned with (match or substitution), else None."""
    n, m = len(ref), len(hyp)
    cost = [[0.0] * (m + 1) for _ in range(n + 1)]  # (n+1, m+1) edit costs
    for i in range(n + 1):
        cost[i][0] = i
    for j in range(m + 1):
        cost[0][j] = j
    for i in range(1, n + 1):
        row, prev = cost[i], cost[i - 1]
        for j in range(1, m + 1):
            row[j] = min(prev[j - 1] + _SUB * (ref[i - 1] != hyp[j - 1]), prev[j] + 1, row[j - 1] + 1)
    pairs: list[int | None] = [None] * n
    i, j = n, m
    while i > 0 and j > 0:
        if cost[i][j] == cost[i - 1][j - 1] + _SUB * (ref[i - 1] != hyp[j - 1]):
            pairs[i - 1] = j - 1
            i, j = i - 1, j - 1
        elif cost[i][j] == cost[i - 1][j] + 1:
            i -= 1
        else:
            j -= 1
    return pairs


def _spread(units: Sequence[str], lo: float, hi: float) -> list[tuple[float, float]]:
    """Share [lo, hi] between ``units`` in proportion to their length."""
    weights = [max(1, len(_key(u))) for u in units]
    total, t, spans = sum(weights), lo, []
    for w in weights:
        step = (hi - lo) * w / total
        spans.append((t, t + step))
        t += step
    return spans


def word_times_for_take(
    intended_text: str, lang: str, whisper_words: Sequence[WordTime], *, duration: float | None = None
) -> list[WordTime]:
    """Times of the intended text's units, monotonic and inside ``[0, duration]`` (see the module docstring).

    ``lang`` is the take's language; the split into words/characters follows the script of each part of the
    text, so "auto" and mixed Japanese/English text work the same way.
    """
    del lang  # the script decides (see display_units); kept in the signature for callers' clarity
    units = display_units(intended_text)
    if not units:
        return []
    heard = _heard_units(whisper_words)
    end_of_audio = duration if duration is not None else max((w.end for w in heard), default=0.0)
    pairs = _match([_key(u) for u in units], [_key(h.word) for h in heard])
    times: list[tuple[float, float] | None] = [(heard[j].start, heard[j].end) if j is not None else None for j in pairs]
    i = 0
    while i < len(units):
        if times[i] is not None:
            i += 1
            continue
        j = i
        while j < len(units) and times[j] is None:
            j += 1
        times = _fill(units, times, i, j, end_of_audio)
        i = j
    return _monotonic(units, times, end_of_audio)


def _fill(units, times, i: int, j: int, end_of_audio: float) -> list:
    """Times for the missed units i..j-1 between their matched neighbours (widened if there is no room).

    Before the first or after the last heard word the run gets an estimated length (a typical speaking rate),
    so a missed first word does not stretch back to the start of the file.
    """
    estimate = _S_PER_CHAR * sum(max(1, len(_key(u))) for u in units[i:j])
    before, after = i > 0, j < len(units)
    if not before and not after:
        lo, hi = 0.0, end_of_audio if end_of_audio > 0 else estimate
    elif not before:
        hi = times[j][0]
        lo = max(0.0, hi - estimate)
    elif not after:
        lo = times[i - 1][1]
        hi = max(lo, min(end_of_audio, lo + estimate))
    else:
        lo, hi = times[i - 1][1], max(times[i - 1][1], times[j][0])
    first, last = i, j
    if hi - lo < _MIN_WORD_S * (j - i):  # no room: share the neighbours' time too
        if before:
            first, lo = i - 1, times[i - 1][0]
        if after:
            last, hi = j + 1, max(hi, times[j][1])
    times = list(times)
    times[first:last] = _spread(units[first:last], lo, max(lo, hi))
    return times


def _monotonic(units, times, end_of_audio: float) -> list[WordTime]:
    out: list[WordTime] = []
    prev_end = 0.0
    for unit, (start, end) in zip(units, times, strict=True):
        start = min(max(start, prev_end), end_of_audio)
        end = min(max(end, start), end_of_audio)
        out.append(WordTime(unit, round(start, 3), round(end, 3)))
        prev_end = end
    return out


def transcribe_word_times(transcriber, audio, sample_rate: int, text: str, lang: str) -> list[WordTime]:
    """Run the take check's Whisper pass on ``audio`` (mono float, ``(T,)``) and time ``text``'s words with it.

    ``transcriber`` is a :class:`studio.dataprep.transcribe.WhisperTranscriber` (the caller picks the model the
    same way take QA does). Raises :class:`SubtitleError` when nothing could be transcribed.
    """
    from studio.errors import SubtitleError
    from studio.services.take_qa import TakeChecker

    qa = TakeChecker(lambda: transcriber).check(audio, sample_rate, text, lang)
    if qa.transcript is None:
        raise SubtitleError("No subtitles: the audio could not be transcribed. " + " ".join(qa.notes))
    heard = [WordTime(str(w), float(a), float(b)) for w, a, b in qa.heard_words]
    return word_times_for_take(text, lang, heard, duration=len(audio) / sample_rate)
