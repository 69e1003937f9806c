"""One line of a script: the synthesis request for its voice and style, fitting it to a time slot, the checks
that decide whether it is re-rendered, and which try is kept.

A try *fails* when its CER is above ``max_cer``, its speaker similarity below ``min_similarity`` or its length
implausible for its text (outside the 3–25 phones per second every training clip speaks: words skipped or
repeated). A measure that could not be taken (no Whisper model) fails nothing and is noted in the reason. The
kept try is the one with the fewest failures, then the lowest CER, then the highest similarity; the line is ✓
when it passed, ⚠ with the reasons when even the kept try failed.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import numpy as np

from studio.services.scripts.records import Script, ScriptError, ScriptLine
from studio.services.scripts.state import (
    OK,
    UNCHECKED,
    WARN,
    Attempt,
    CastMember,
    LineOverride,
    LineReport,
    RenderSettings,
    cast_for,
    line_error,
)

FLAG_LENGTH = "implausible length"
FLAG_SLOT = "longer than its slot"


def style_clip(voices, info, style: str, line: ScriptLine) -> tuple:
    """The voice's reference clip tagged ``style``: (path, {"text", "language", "emotion"})."""
    clips = [(p, meta) for p, meta in voices.reference_clips(info) if meta.get("emotion")]
    for path, meta in clips:
        if meta["emotion"].casefold() == style.casefold():
            return path, meta
    known = ", ".join(sorted({m["emotion"] for _, m in clips})) or "none"
    raise line_error(
        line,
        f"voice {info.name!r} has no reference clip tagged {style!r} (its styles: {known}).",
        hint="Tag a reference clip of the voice with that style, or use one of its styles.",
    )


@dataclass
class LineJob:
    """What one line needs to be synthesized: its text, voice, style and settings."""

    line: ScriptLine
    info: object  # studio.services.voices.VoiceInfo
    member: CastMember
    override: LineOverride
    settings: RenderSettings
    voices: object
    lexicon: object = None

    @property
    def lang(self) -> str:
        return self.override.lang or self.settings.lang

    def request(self, seed: int, speed: float):
        """The engine request: the voice's own reference for the timbre; a style's tagged clip prompts the GPT
        (as the style reference where the engine takes one, else as the reference itself)."""
        from studio.inference.pauses import PauseMap
        from studio.inference.requests import SynthesisRequest

        known = {f.name for f in fields(SynthesisRequest)}
        s, info = self.settings, self.info
        extra: dict = {}
        reference, ref_text, ref_lang = info.reference_audio, info.reference_text, info.reference_lang or "auto"
        if self.member.style:
            clip, meta = style_clip(self.voices, info, self.member.style, self.line)
            style = (clip, meta.get("text", ""), meta.get("language") or ref_lang)
            if "style_reference" in known:
                extra = {"style_reference": style[0], "style_ref_text": style[1], "style_ref_lang": style[2]}
            else:
                reference, ref_text, ref_lang = style
        pauses = PauseMap.preset(s.pauses)
        if "pauses" in known:
            extra["pauses"] = pauses
        return SynthesisRequest(
            text=self.line.text,
            lang=self.lang,
            reference=reference,
            ref_text=ref_text,
            ref_lang=ref_lang,
            top_k=s.top_k,
            top_p=s.top_p,
            temperature=s.temperature,
            speed=speed,
            noise_scale=s.noise_scale,
            pause_s=pauses.full_stop,
            seed=seed,
            length_retries=s.length_retries,
            max_tokens_per_sentence=max(1, min(1500, int(round(s.max_sentence_s * 25)))),
            lexicon=self.lexicon,
            **extra,
        ).validated()

    def synthesize(self, synthesis, seed: int) -> tuple[np.ndarray, int, Attempt]:
        """One try; a line with a time slot that comes out longer is synthesized again (same seed) faster, up
        to ``max_fit_speed``, and flagged when even that does not fit."""
        speed = self.override.speed or self.settings.speed
        result = synthesis.synthesize(self.request(seed, speed), self.info.models)
        attempt = Attempt(seed=result.seed, duration_s=round(result.duration_s, 3), speed=speed)
        slot = self.line.slot
        if slot is not None and result.duration_s > slot[1] - slot[0] > 0:
            length = slot[1] - slot[0]
            needed = speed * result.duration_s / length
            fit = min(max(needed, self.settings.min_fit_speed), self.settings.max_fit_speed)
            result = synthesis.synthesize(self.request(result.seed, fit), self.info.models)
            attempt.speed, attempt.duration_s = round(fit, 3), round(result.duration_s, 3)
            if result.duration_s > length + 0.05:
                attempt.flags.append(FLAG_SLOT)
                attempt.failures.append(
                    f"needs {needed:.2f}× to fit its {length:.2f} s slot (at most {self.settings.max_fit_speed:g}×): "
                    f"{result.duration_s - length:.2f} s over"
                )
        attempt.tokens, attempt.sentences = result.semantic_tokens, result.sentences  # length check only
        return result.audio, result.sample_rate, attempt


def check(attempt: Attempt, audio: np.ndarray, rate: int, job: LineJob, checker, synthesis) -> None:
    """Run take QA on one try and record its measures and failures on ``attempt``."""
    s = job.settings
    qa = checker.check(audio, rate, job.line.text, job.lang, job.info.reference_audio)
    attempt.cer, attempt.similarity, attempt.transcript = qa.cer, qa.similarity, qa.transcript
    attempt.flags += [f for f in qa.flags if f not in attempt.flags]
    notes = list(qa.notes)
    if qa.cer is not None and qa.cer > s.max_cer:
        attempt.failures.append(f"CER {qa.cer:.2f} > {s.max_cer:.2f}")
    if qa.similarity is not None and qa.similarity < s.min_similarity:
        attempt.failures.append(f"similarity {qa.similarity:.2f} < {s.min_similarity:.2f}")
    if s.check_length:
        rate_pps = _phones_per_second(attempt, job, synthesis)
        if rate_pps is not None and not (3.0 <= rate_pps <= 25.0):
            attempt.flags.append(FLAG_LENGTH)
            attempt.failures.append(f"implausible length ({rate_pps:.1f} phones/s; 3–25 expected)")
    attempt.notes = notes


def _phones_per_second(attempt: Attempt, job: LineJob, synthesis) -> float | None:
    """The speaking rate the try's semantic tokens imply for its phones (the engine's own length rule)."""
    from studio.inference.length_check import phones_per_second

    tokens = getattr(attempt, "tokens", None)
    get = getattr(synthesis, "synthesizer", None)
    if not tokens or get is None:
        return None
    synth = get(job.info.models)
    sentences = getattr(attempt, "sentences", None) or [job.line.text]
    n_phones = sum(len(synth.text_features(s, job.lang, job.lexicon).phone_ids) for s in sentences)
    return phones_per_second(n_phones, sum(len(t) for t in tokens))


def _rank(attempt: Attempt) -> tuple:
    cer = attempt.cer if attempt.cer is not None else 1.0
    sim = attempt.similarity if attempt.similarity is not None else -1.0
    return (len(attempt.failures), round(cer, 4), -sim)


def finish(report: LineReport, checked: bool, settings: RenderSettings) -> LineReport:
    """Pick the best try and fill in the line's status, reason and measures."""
    best = min(range(len(report.tries)), key=lambda i: _rank(report.tries[i]))
    report = apply_choice(report, best, settings)
    if not checked and report.status == OK:  # a line over its slot stays ⚠ with the checks off
        report.status, report.reason = UNCHECKED, "not checked"
    return report


def apply_choice(report: LineReport, chosen: int, settings: RenderSettings) -> LineReport:
    """The line's fields from try ``chosen`` (the automatic pick, or the listener's)."""
    kept = report.tries[chosen]
    report = replace(report, chosen=chosen, attempts=len(report.tries))
    report.seed, report.cer, report.similarity = kept.seed, kept.cer, kept.similarity
    report.flags, report.duration_s, report.speed = list(kept.flags), kept.duration_s, kept.speed
    retried = f" after {len(report.tries)} tries" if len(report.tries) > 1 else ""
    first = report.tries[0].failures
    if kept.failures:
        report.status, report.reason = WARN, "; ".join(kept.failures) + retried
    elif first and chosen > 0:
        report.status, report.reason = OK, f"re-rendered: try 1 failed ({'; '.join(first)})"
    else:
        report.status, report.reason = OK, "; ".join(kept.notes)  # e.g. why a measure is missing
    return report


def check_cast(script: Script, cast: dict[str, CastMember], voices) -> None:
    """Every speaker has a voice of the library, and every style asked for is one of that voice's tags."""
    missing = [s for s in script.speakers if cast_for(cast, s) is None]
    if missing:
        raise ScriptError(
            f"No voice for {', '.join(missing)}.",
            hint="Give every speaker a voice: NAME=voice (a voice without NAME= speaks for everyone not named).",
        )
    for line in script.lines:
        member = cast_for(cast, line.speaker)
        check_voice_style(line, CastMember(line.speaker, member.voice, line.style or member.style), voices)


def check_voice_style(line, member: CastMember, voices) -> None:
    info = voices.get(member.voice)  # VoiceNotFoundError names the library's voices
    if member.style:
        style_clip(voices, info, member.style, line)
