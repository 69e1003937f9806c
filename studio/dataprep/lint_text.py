"""The words of the lint: every finding and reference reason is a message key with parameters.

The CLI and the JSON reports show the English text built here; the studio's page renders the same key and
parameters through its locale tables (``lint.<key>`` in ``studio/ui/locales/lint.<lang>.json``), so that a
finding reads in the interface language. A new finding only needs an entry in :data:`MESSAGES` and one line per
language in those tables (a test checks that every key has a translation with the same placeholders).

Parameters are plain JSON values; a parameter that is itself a message (``{"key": …, "params": …}``) or a list
of them is rendered the same way, in the same language, and lists are joined with the ``list_separator`` key.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

#: key → English template (``str.format`` names; the same names in every language)
MESSAGES: dict[str, str] = {
    "list_separator": "; ",
    "silent": "The clip is silent: no speech in it.",
    "silent.fix": "Delete it, or check the microphone and record again.",
    "too_short.error": "Only {seconds:.1f} s long; clips under {limit:g} s are dropped from training.",
    "too_short.error.fix": "Delete it or merge it with its neighbour.",
    "too_short.warning": "Only {seconds:.1f} s long: shorter than the 4–10 s clips the slicer makes; very short "
    "clips teach little and cannot be a reference.",
    "too_short.warning.fix": "Merge it with the clip before or after (or undo the split).",
    "too_long.error": "{seconds:.1f} s long; clips over {limit:.0f} s waste memory and hurt training.",
    "too_long.error.fix": "Split it at pauses into 3–10 s pieces.",
    "too_long.warning": "{seconds:.1f} s long; 3–10 s clips train best.",
    "too_long.warning.fix": "Split it at a pause.",
    "noisy": "Background noise is high (estimated SNR {snr:.0f} dB).",
    "noisy.fix": "Turn on denoise, or record in a quieter room.",
    "edge_silence": "{lead:.1f} s of silence before and {trail:.1f} s after the speech.",
    "edge_silence.fix": "Trim the silence (re-run the slicer or split the clip).",
    "no_text": "The transcript is empty.",
    "no_text.fix": "Type what is said, or delete the clip.",
    "language_mismatch.text": "The text looks like {script} but the clip is marked {language}.",
    "language_mismatch.text.fix": "Fix the language column or the transcript.",
    "language_mismatch.heard": "The recogniser heard {detected} ({probability:.0%} sure) but the clip is marked "
    "{language}.",
    "language_mismatch.heard.fix": "Check the language of the clip.",
    "unreadable": "The clip cannot be read: {error}",
    "unreadable.fix": "Remove the line or restore the file.",
    "duplicate_text": "Same text as {other}.",
    "duplicate_text.fix": "Keep one of them, or fix the transcript.",
    "too_little_audio": "Only {minutes:.1f} usable minute(s) of speech.",
    "too_little_audio.fix": "Record more: 1 minute works for a first try, 5–30 minutes give a much better voice.",
    "usable_minutes": "{minutes:.1f} usable minute(s) of speech.",
    "usable_minutes.fix": "Nothing to do.",
    "clipping": "{share:.1%} of the samples are clipped: the input level was too high, so the peaks were cut flat "
    "(longest flat stretch {longest_ms:.1f} ms). Clipped audio sounds harsh and the voice learns the crackle.",
    "clipping.hidden": "{share:.1%} of the samples are clipped in the original recording (loudness normalisation "
    "hides it, but the distortion stays): the input level was too high, so the peaks were cut flat (longest flat "
    "stretch {longest_ms:.1f} ms). Clipped audio sounds harsh and the voice learns the crackle.",
    "clipping.fix": "Record this part again with the microphone level turned down (keep the level meter out of "
    "the red).",
    "clipping.warning.fix": "Record this part again with the microphone level turned down (keep the level meter "
    "out of the red). Or delete the clip if you have enough others.",
    "low_sample_rate": "Recorded at {khz:g} kHz (telephone quality): the high sounds of the voice (s, f, t) are "
    "missing, and the trained voice will sound muffled.",
    "low_sample_rate.fix": "Record again at 44.1 or 48 kHz (the default of most microphones and recording apps).",
    "low_bit_depth": "Stored with {bits}-bit samples: audible hiss and grain under the voice.",
    "low_bit_depth.fix": "Record or export at 16-bit or more (WAV/FLAC), or as a good-quality MP3/M4A.",
    "text_length_mismatch.long": "The transcript is too long for this {seconds:.1f} s clip ({rate:.0f} sounds per "
    "second): part of the text is probably not in the recording. GPT training skips this clip.",
    "text_length_mismatch.long.fix": "Listen to the clip and remove what is not said, or re-slice the recording.",
    "text_length_mismatch.short": "The transcript is too short for this {seconds:.1f} s clip ({rate:.1f} sounds "
    "per second): part of the speech is probably not written down. GPT training skips this clip.",
    "text_length_mismatch.short.fix": "Listen to the clip and add what is missing from the transcript, or split "
    "the clip.",
    "low_confidence": "The recogniser was unsure of this transcript ({reasons}).",
    "low_confidence.fix": "Listen to the clip, correct the text and save it (saving marks it as checked).",
    "doubt.second_listen": "a second listen heard {pairs}",
    "doubt.pair": "“{heard}” for “{written}”",
    "doubt.unsure_words": "unsure of {words}",
    "doubt.word": "“{word}”",
    "doubt.low_confidence": "low confidence over the whole clip",
    "doubt.no_speech": "it may not be speech",
    "doubt.repeats": "the text repeats itself",
    "doubt.language": "unsure of the language",
    "reference.length": "{seconds:.1f} s long (fits the {low:.0f}–{high:.0f} s reference range)",
    "reference.snr": "estimated SNR {snr:.0f} dB",
    "reference.confidence": "transcript confidence {confidence:.0%}",
    "reference.ends_in_silence": "ends in {seconds:.2f} s of silence",
    "reference.no_clipping": "no clipping in the original recording",
}


def message(key: str, **params: Any) -> dict[str, Any]:
    """A message as a plain value (it can be a parameter of another message and goes into JSON as is)."""
    if key not in MESSAGES:
        raise KeyError(f"no lint message {key!r}")
    return {"key": key, "params": params}


def render(key: str, params: Mapping[str, Any], lookup: Callable[[str], str | None] | None = None) -> str:
    """The text of ``key`` with ``params``; ``lookup(key)`` gives the template in another language (None: use
    the English one). Nested messages and lists of them are rendered with the same lookup."""

    def template(k: str) -> str:
        found = lookup(k) if lookup else None
        return found if found is not None else MESSAGES[k]

    def value(v: Any) -> Any:
        if isinstance(v, Mapping) and "key" in v:
            return render(v["key"], v.get("params", {}), lookup)
        if isinstance(v, list | tuple):
            return template("list_separator").join(str(value(x)) for x in v)
        return v

    values = {name: value(v) for name, v in params.items()}
    try:
        return template(key).format(**values)
    except (KeyError, IndexError, ValueError):  # a broken translation never hides the finding
        return MESSAGES[key].format(**values)


def english_templates() -> list[str]:
    """Every English template (for tests that look for English left on a translated page)."""
    return [v for k, v in MESSAGES.items() if k != "list_separator"]
