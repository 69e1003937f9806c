"""Joining rendered lines into one recording, and the line-level subtitles that go with it.

Untimed scripts are joined in order: the lead-in silence, then each line followed by its pause (the line's own
``[pause S]``, else the pause map's paragraph pause after a paragraph's last line, else the pause of the line's
final mark). Timed scripts (subtitles) put each line at its slot's start, or right after the previous line
when that one ran over.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from studio.errors import StudioError
from studio.inference.pauses import PauseMap, clauses
from studio.services.scripts.records import Script, ScriptLine
from studio.services.subtitles import Cue, to_srt, to_vtt


def gap_after(line: ScriptLine, pauses: PauseMap) -> float:
    """Seconds of silence after ``line`` (before the next one) in an untimed script."""
    if line.pause_after is not None:
        return line.pause_after
    if line.paragraph_end:
        return pauses.paragraph
    parts = clauses(line.text)
    kind = parts[-1][1] if parts else None
    return getattr(pauses, kind) if kind else pauses.full_stop


def place_lines(script: Script, durations: Sequence[float], pauses: PauseMap) -> list[tuple[float, float]]:
    """(start, end) seconds of every line in the joined recording."""
    spans: list[tuple[float, float]] = []
    clock = script.lead_in
    for line, duration in zip(script.lines, durations):
        if line.slot is not None:
            start = max(line.slot[0], spans[-1][1] if spans else 0.0)
        else:
            start = clock
        spans.append((start, start + duration))
        clock = start + duration + (0.0 if line.slot is not None else gap_after(line, pauses))
    return spans


def join(clips: Sequence[np.ndarray], spans: Sequence[tuple[float, float]], sample_rate: int) -> np.ndarray:
    """The clips laid at their start times on one float32 track ``(T,)``."""
    starts = [int(round(s * sample_rate)) for s, _ in spans]
    length = max((st + len(c) for st, c in zip(starts, clips)), default=0)
    track = np.zeros(length, dtype=np.float32)
    for start, clip in zip(starts, clips):
        track[start : start + len(clip)] += clip.astype(np.float32)
    return np.clip(track, -1.0, 1.0)


def line_cues(script: Script, spans: Sequence[tuple[float, float]]) -> list[Cue]:
    """One cue per line, from its start to its end in the joined recording."""
    return [Cue(round(s, 3), round(e, 3), line.text) for line, (s, e) in zip(script.lines, spans)]


def write_mix(
    script: Script, files: Sequence[Path | None], pauses: str, audio_path: Path, subtitles_path: Path
) -> list[tuple[float, float]]:
    """Join the lines' WAVs (``None``: a line without audio) into ``audio_path`` and write the SRT; returns
    every line's (start, end) in the joined recording."""
    from studio.audio.io import load_audio, save_wav
    from studio.inference.requests import OUTPUT_SAMPLE_RATE
    from studio.workspace import atomic_write_text

    rate = OUTPUT_SAMPLE_RATE
    clips = [load_audio(f, rate)[0] if f is not None and f.is_file() else np.zeros(0, np.float32) for f in files]
    spans = place_lines(script, [len(c) / rate for c in clips], PauseMap.preset(pauses))
    meta = {"comment": "AI-generated speech (SoVITS Studio)", "title": script.name[:120]}
    save_wav(audio_path, join(clips, spans, rate), rate, metadata=meta)
    cues = [c for c, f in zip(line_cues(script, spans), files) if f is not None]
    atomic_write_text(subtitles_path, to_srt(cues))
    return spans


def subtitles_text(script: Script, spans: Sequence[tuple[float, float] | None], fmt: str = "srt") -> str:
    """SRT or WebVTT text of the lines that have a place in the joined recording."""
    if fmt not in ("srt", "vtt"):
        raise StudioError(f"Unknown subtitle format {fmt!r}; use srt or vtt.")
    cues = [Cue(round(s[0], 3), round(s[1], 3), ln.text) for ln, s in zip(script.lines, spans) if s is not None]
    return to_srt(cues) if fmt == "srt" else to_vtt(cues)


def file_stem(name: str) -> str:
    stem = "".join(c if c.isalnum() or c in "-_ ." else "_" for c in name).strip(" .")
    return stem or "script"


def save_take(path: Path, audio: np.ndarray, rate: int, text: str) -> None:
    from studio.audio.io import save_wav

    path.parent.mkdir(parents=True, exist_ok=True)
    save_wav(path, audio, rate, metadata={"comment": "AI-generated speech (SoVITS Studio)", "title": text[:120]})
