"""Check a dataset clip by clip and as a whole; pick the best zero-shot reference clip.

Every :class:`Finding` has a severity (``error`` = the clip will hurt training or be dropped,
``warning`` = likely to lower quality, ``info``) and a plain-language fix. Its words come from a message key
and parameters (:mod:`studio.dataprep.lint_text`): English here and in the reports, the interface language in
the studio's page.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from studio.audio.io import load_audio
from studio.audio.silence import edge_silence_s, level_stats
from studio.corpus import DatasetEntry
from studio.dataprep.lint_text import message, render
from studio.dataprep.quality import NO_SOURCES, ClipDamage, InputFormat, SourceFacts, clipped_fraction, clipped_runs
from studio.errors import AudioError

_LOGGER = logging.getLogger(__name__)

ERROR, WARNING, INFO = "error", "warning", "info"
NOT_FOR_REFERENCE = ("clipping", "low_confidence", "low_sample_rate", "low_bit_depth", "no_text")


@dataclass
class LintConfig:
    min_s: float = 0.6  # upstream drops shorter clips from training
    short_s: float = 3.0  # the slicer aims for 4–10 s; a split or a stray fragment can be shorter
    long_s: float = 12.0
    max_s: float = 25.0
    min_snr_db: float = 15.0
    bad_snr_db: float = 8.0
    silent_db: float = -60.0
    edge_silence_s: float = 1.0
    clip_warn: float = 0.001  # share of clipped samples
    clip_error: float = 0.01
    clip_run_warn_ms: float = 1.0  # one flat top this long is an audible crack even when the share is tiny
    min_avg_logprob: float = -0.8
    min_language_probability: float = 0.6
    min_word_probability: float = 0.2  # calibrated on shared/voices: see lint_checks.py
    max_no_speech_prob: float = 0.6
    max_compression_ratio: float = 2.4
    min_usable_minutes: float = 1.0
    reference_range_s: tuple[float, float] = (3.0, 10.0)


@dataclass(frozen=True)
class Finding:
    code: str  # e.g. "clipping", "too_long"
    severity: str  # "error" | "warning" | "info"
    message: str
    fix: str
    clip: str | None = None  # clip file name; None for set-level findings
    key: str = ""  # message key in lint_text.MESSAGES (the fix is ``fix_key``)
    fix_key: str = ""
    params: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)


def finding(key: str, severity: str, clip: str | None = None, *, fix: str | None = None, **params: Any) -> Finding:
    """A finding from its message key (its code is the key's first part) and parameters."""
    fix_key = fix or f"{key}.fix"
    return Finding(
        key.split(".")[0], severity, render(key, params), render(fix_key, {}), clip, key, fix_key, dict(params)
    )


@dataclass(frozen=True)
class ClipStats:
    name: str
    duration_s: float
    peak: float
    clipped_fraction: float
    speech_db: float
    snr_db: float
    lead_silence_s: float
    trail_silence_s: float
    longest_clip_ms: float = 0.0  # longest flat run at the peak, in the clip itself
    original_clipped: float | None = None  # share clipped in this span of the original take (None: unknown)
    original_clip_ms: float = 0.0
    sample_rate_in: int = 0  # format the audio arrived in (the original take's, when known)
    bits_in: int | None = None

    @property
    def clipping(self) -> float:
        """The worse of the clip's own and its original's clipped share (normalising hides clipping)."""
        return max(self.clipped_fraction, self.original_clipped or 0.0)


@dataclass(frozen=True)
class ReferencePick:
    audio_path: str
    text: str
    language: str
    duration_s: float
    score: float
    reasons: tuple[str, ...]  # English, for the CLI and reports
    notes: tuple[dict, ...] = ()  # the same reasons as lint_text messages, for the page's language


@dataclass
class LintReport:
    findings: list[Finding] = field(default_factory=list)
    clips: list[ClipStats] = field(default_factory=list)
    total_minutes: float = 0.0
    usable_minutes: float = 0.0

    def for_clip(self, name: str) -> list[Finding]:
        return [f for f in self.findings if f.clip == name]

    def codes(self, name: str | None = None) -> set[str]:
        return {f.code for f in self.findings if name is None or f.clip == name}

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == ERROR]

    def to_dict(self) -> dict:
        return {
            "total_minutes": round(self.total_minutes, 3),
            "usable_minutes": round(self.usable_minutes, 3),
            "findings": [asdict(f) for f in self.findings],
            "clips": [
                {k: (round(v, 4) if isinstance(v, float) else v) for k, v in asdict(c).items()} for c in self.clips
            ],
        }


def analyse_clip(
    audio: np.ndarray,
    sample_rate: int,
    name: str = "",
    original: ClipDamage | None = None,
    input_format: InputFormat | None = None,
) -> ClipStats:
    """Measure a clip; ``original``: clipping of its span in the take it was cut from (measured before
    cleaning), ``input_format``: the format that take (or the clip file itself) arrived in."""
    levels = level_stats(audio, sample_rate)
    lead, trail = edge_silence_s(audio, sample_rate, threshold_db=max(-50.0, levels.noise_db + 6.0))
    runs = clipped_runs(audio)
    fmt = input_format or InputFormat(sample_rate, None)
    return ClipStats(
        name=name,
        duration_s=len(audio) / sample_rate,
        peak=float(np.max(np.abs(audio))) if audio.size else 0.0,
        clipped_fraction=clipped_fraction(audio),
        speech_db=levels.speech_db,
        snr_db=levels.snr_db,
        lead_silence_s=lead,
        trail_silence_s=trail,
        longest_clip_ms=max((1000.0 * (e - s) / sample_rate for s, e in runs), default=0.0),
        original_clipped=original.fraction if original else None,
        original_clip_ms=original.longest_run_ms if original else 0.0,
        sample_rate_in=fmt.sample_rate,
        bits_in=fmt.bits,
    )


def lint_clip(
    stats: ClipStats, entry: DatasetEntry | None = None, asr: Mapping | None = None, config: LintConfig | None = None
) -> list[Finding]:
    """Findings for one clip from its measurements, list entry and ASR confidences (any may be missing)."""
    c = config or LintConfig()
    out: list[Finding] = []

    def add(key: str, severity: str, **params: Any) -> None:
        out.append(finding(key, severity, stats.name, **params))

    if stats.speech_db < c.silent_db:
        add("silent", ERROR)
        return out
    d = stats.duration_s
    if d < c.min_s:
        add("too_short.error", ERROR, seconds=d, limit=c.min_s)
    elif d < c.short_s:
        add("too_short.warning", WARNING, seconds=d)
    if d > c.max_s:
        add("too_long.error", ERROR, seconds=d, limit=c.max_s)
    elif d > c.long_s:
        add("too_long.warning", WARNING, seconds=d)
    from studio.dataprep.lint_checks import clipping_findings, format_findings

    out.extend(clipping_findings(stats, c))
    out.extend(format_findings(stats))
    if stats.snr_db < c.min_snr_db:
        sev = ERROR if stats.snr_db < c.bad_snr_db else WARNING
        add("noisy", sev, snr=stats.snr_db)
    if stats.lead_silence_s > c.edge_silence_s or stats.trail_silence_s > c.edge_silence_s:
        add("edge_silence", WARNING, lead=stats.lead_silence_s, trail=stats.trail_silence_s)
    if entry is not None:
        out.extend(_text_findings(entry, asr, c))
        if stats.duration_s >= c.min_s and stats.speech_db >= c.silent_db:
            from studio.dataprep.lint_checks import speaking_rate_findings

            out.extend(speaking_rate_findings(entry, stats.duration_s))
    return out


def _text_findings(entry: DatasetEntry, asr: Mapping | None, c: LintConfig) -> list[Finding]:
    out: list[Finding] = []
    name = entry.name
    if not normalise_text(entry.text):
        out.append(finding("no_text", ERROR, name))
        return out
    script = text_script(entry.text)
    if script and script != entry.language and not (script == "zh" and entry.language in ("ja", "yue")):
        out.append(
            finding("language_mismatch.text", WARNING, name, script=script.upper(), language=entry.language.upper())
        )
    if asr:
        detected, prob = asr.get("language"), float(asr.get("language_probability", 1.0))
        if detected and prob < 1.0 and detected != entry.language and prob >= c.min_language_probability:
            out.append(
                finding(
                    "language_mismatch.heard",
                    WARNING,
                    name,
                    detected=detected.upper(),
                    probability=prob,
                    language=entry.language.upper(),
                )
            )
    from studio.dataprep.lint_checks import asr_findings

    out.extend(asr_findings(entry, asr, c))
    return out


def normalise_text(text: str) -> str:
    """Lower-case letters and digits only (for duplicate detection and error rates)."""
    folded = unicodedata.normalize("NFKC", text).lower()
    return "".join(ch for ch in folded if ch.isalnum() or ch.isspace()).strip()


_KANA = re.compile(r"[\u3040-\u30ff]")
_HAN = re.compile(r"[\u4e00-\u9fff\u3400-\u4dbf]")
_LATIN = re.compile(r"[A-Za-z]")


def text_script(text: str) -> str | None:
    """Rough language of the writing: ``ja`` with kana, ``zh`` with only Han, ``en`` with only Latin letters."""
    if _KANA.search(text):
        return "ja"
    han, latin = len(_HAN.findall(text)), len(_LATIN.findall(text))
    if han and han >= latin:
        return "zh"
    if latin and not han:
        return "en"
    return None


def lint_dataset(
    entries: Sequence[DatasetEntry],
    asr: Mapping[str, Mapping] | None = None,
    config: LintConfig | None = None,
    sources: SourceFacts = NO_SOURCES,
) -> LintReport:
    """Load every clip of ``entries`` and lint each one and the set (duplicates, usable minutes).

    ``sources``: what import measured on the original takes (clipping, format), found by the clips' names."""
    c = config or LintConfig()
    report = LintReport()
    seen: dict[str, str] = {}
    for entry in entries:
        try:
            audio, sr = load_audio(entry.audio_path)
        except AudioError as exc:
            report.findings.append(finding("unreadable", ERROR, entry.name, error=str(exc)))
            continue
        original, fmt = sources.for_clip(entry.name)
        stats = analyse_clip(audio, sr, entry.name, original, fmt or _file_format(entry.audio_path, sr))
        report.clips.append(stats)
        findings = lint_clip(stats, entry, (asr or {}).get(entry.name), c)
        key = normalise_text(entry.text)
        if key and key in seen:
            findings.append(finding("duplicate_text", WARNING, entry.name, other=seen[key]))
        seen.setdefault(key, entry.name)
        report.findings.extend(findings)
        report.total_minutes += stats.duration_s / 60
        if not any(f.severity == ERROR for f in findings):
            report.usable_minutes += stats.duration_s / 60
    if report.usable_minutes < c.min_usable_minutes:
        severity = WARNING if report.usable_minutes > 0 else ERROR
        report.findings.append(finding("too_little_audio", severity, minutes=report.usable_minutes))
    else:
        report.findings.append(finding("usable_minutes", INFO, minutes=report.usable_minutes))
    return report


def _file_format(path, sample_rate: int) -> InputFormat:
    from studio.audio.io import probe_audio
    from studio.dataprep.quality import bits_per_sample

    return InputFormat(sample_rate, bits_per_sample(probe_audio(path).codec))


def pick_reference(
    entries: Sequence[DatasetEntry],
    report: LintReport,
    asr: Mapping[str, Mapping] | None = None,
    config: LintConfig | None = None,
) -> ReferencePick | None:
    """The best clip for zero-shot use: 3–10 s, clean, confidently transcribed, ending in silence.

    Never a clip with an error, clipping, a doubtful transcript or a telephone-quality source: a zero-shot
    voice copies whatever its reference holds."""
    c = config or LintConfig()
    stats = {s.name: s for s in report.clips}
    best: ReferencePick | None = None
    lo, hi = c.reference_range_s
    for entry in entries:
        s = stats.get(entry.name)
        found = report.for_clip(entry.name)
        if (
            s is None
            or not lo <= s.duration_s <= hi
            or any(f.severity == ERROR or f.code in NOT_FOR_REFERENCE for f in found)
        ):
            continue
        notes = [message("reference.length", seconds=s.duration_s, low=lo, high=hi)]
        score = min(s.snr_db, 50.0) / 50.0
        notes.append(message("reference.snr", snr=s.snr_db))
        conf = (asr or {}).get(entry.name)
        if conf is not None:
            score += float(np.clip(1.0 + float(conf.get("avg_logprob", -1.0)), 0.0, 1.0))
            notes.append(
                message("reference.confidence", confidence=float(np.exp(float(conf.get("avg_logprob", -1.0)))))
            )
        if s.trail_silence_s >= 0.1:
            score += 0.5
            notes.append(message("reference.ends_in_silence", seconds=s.trail_silence_s))
        score -= 0.5 * len(report.for_clip(entry.name)) + 0.05 * abs(s.duration_s - 6.5)
        if s.clipping == 0 and s.original_clipped is not None:
            notes.append(message("reference.no_clipping"))
        if best is None or score > best.score:
            reasons = tuple(render(n["key"], n["params"]) for n in notes)
            best = ReferencePick(
                str(entry.audio_path), entry.text, entry.language, s.duration_s, round(score, 3), reasons, tuple(notes)
            )
    return best
