"""Rendering a script: every line synthesized with its speaker's voice, checked, re-rendered on failure, joined.

The render folder holds everything, so a render survives anything (``kill -9`` included) and an edit costs
one line::

    project.json        the script's lines, the cast, the settings and each edited line's own settings
    report.json         per line: text, speaker, voice, style, status ✓/⚠ and why, seed, tries, CER, similarity,
                        flags, duration, place in the joined audio (rewritten atomically after every line)
    takes/<hash>/<n>.wav every try of a line, by the line's content hash (A/B any two of them)
    lines/NNNN.wav      the kept take of line NNNN
    <name>.wav, <name>.srt   the joined recording and its line-level subtitles (once no line is pending)

A line is rendered again only when its content hash (text, voice, style, audio settings, its own settings)
changed or its files are gone; a line moved by an edit elsewhere reuses its takes.

The synthesis goes through :class:`~studio.services.synthesis.SynthesisService` (``synthesize(request,
voice.models)``, as ``studio synth --voice`` and the Synthesize tab do); ``run`` wraps each line's work, which is
how the HTTP API sends every line through its inference queue instead of around it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from studio.errors import StudioError
from studio.services.scripts import quality
from studio.services.scripts.records import Script, ScriptError
from studio.services.scripts.state import (
    ERROR,
    OK,
    PENDING,
    UNCHECKED,
    WARN,
    CastMember,
    LineOverride,
    LineReport,
    RenderProgress,
    RenderSettings,
    ScriptStatus,
    cast_for,
    line_error,
    line_hash,
)
from studio.workspace import atomic_write_json, atomic_write_text

_LOGGER = logging.getLogger(__name__)

PROJECT_FILE, REPORT_FILE = "project.json", "report.json"
ProgressFn = Callable[[RenderProgress], None]
Runner = Callable[[Callable[[], Any]], Any]


class RenderCancelled(StudioError):
    """The render was cancelled; finished lines are kept and a new render goes on from them."""


class ScriptRenderer:
    """One render folder: create it from a script (:meth:`create`), or open an existing one (:meth:`open`).

    ``synthesis`` is a :class:`~studio.services.synthesis.SynthesisService`; ``voices`` a
    :class:`~studio.services.voices.VoiceLibrary`; ``checker`` a :class:`~studio.services.take_qa.TakeChecker`
    (or anything with its ``check`` method; ``None`` means no checks whatever the settings say); ``lexicon`` a
    callable returning the user's pronunciations; ``run(fn)`` runs one line's work (default: right here).
    """

    def __init__(self, folder: Path, *, synthesis, voices, checker=None, lexicon=None, run: Runner | None = None):
        self.folder = Path(folder)
        self.synthesis, self.voices, self.checker = synthesis, voices, checker
        self.lexicon = lexicon or (lambda: None)
        self.run: Runner = run or (lambda fn: fn())
        self._lock = threading.RLock()
        self.state = "idle"
        self.error: str | None = None
        self._line_seconds: list[float] = []
        data = self._read_json(PROJECT_FILE)
        if data is None:
            raise StudioError(f"{self.folder} is not a script render folder (no {PROJECT_FILE}).")
        self.script = Script.from_dict(data["script"])
        self.cast = {k: CastMember(**v) for k, v in data["cast"].items()}
        self.settings = RenderSettings.from_dict(data["settings"])
        self.overrides = {int(k): LineOverride.from_dict(v) for k, v in data.get("overrides", {}).items()}
        self.reports = self._load_reports()

    # ---------------------------------------------------------------------------------------- set up

    @classmethod
    def create(
        cls, folder: Path, script: Script, cast: dict[str, CastMember], settings: RenderSettings, **services
    ) -> ScriptRenderer:
        """Write the render folder's project for ``script`` (checking the cast first) and open it.

        An existing render in ``folder`` keeps every finished line whose content is unchanged: running the
        same command again resumes, and an edited script re-renders only its changed lines.
        """
        settings.validated()
        _check_cast(script, cast, services["voices"])
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        project = {
            "version": 1,
            "script": script.to_dict(),
            "cast": {k: vars(v) for k, v in cast.items()},
            "settings": settings.to_dict(),
            "overrides": {},
        }
        atomic_write_json(folder / PROJECT_FILE, project)
        return cls(folder, **services)

    @classmethod
    def open(cls, folder: Path, **services) -> ScriptRenderer:
        return cls(folder, **services)

    def _read_json(self, name: str) -> dict | None:
        path = self.folder / name
        try:
            return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
        except (OSError, json.JSONDecodeError) as exc:
            _LOGGER.warning("ignoring damaged %s: %s", path, exc)
            return None

    def _save_project(self) -> None:
        data = self._read_json(PROJECT_FILE) or {}
        data |= {
            "script": self.script.to_dict(),
            "overrides": {str(i): o.to_dict() for i, o in self.overrides.items() if o.to_dict()},
        }
        atomic_write_json(self.folder / PROJECT_FILE, data)

    def _load_reports(self) -> list[LineReport]:
        """The report for the current lines: a stored entry is kept when its hash still matches (by index,
        else any entry of that hash, whose takes are then copied into this line's file)."""
        stored = [LineReport.from_dict(d) for d in (self._read_json(REPORT_FILE) or {}).get("lines", [])]
        by_hash = {r.hash: r for r in stored if r.finished}
        reports = []
        for line in self.script.lines:
            member = self._member(line.index)
            fresh = LineReport(line.index, line.text, line.speaker, member.voice, member.style)
            fresh.hash, fresh.slot, fresh.source_line = self._hash(line.index), _slot(line), line.source_line
            old = stored[line.index] if line.index < len(stored) else None
            if old is not None and old.hash == fresh.hash and old.finished and self._file(old.file).is_file():
                reports.append(old)
                continue
            moved = by_hash.get(fresh.hash)
            if moved is not None and moved.tries and self._file(moved.tries[moved.chosen].file).is_file():
                reports.append(self._adopt(moved, line.index))
                continue
            reports.append(fresh)
        return reports

    def _adopt(self, old: LineReport, index: int) -> LineReport:
        report = replace(old, index=index, file=_line_file(index))
        self._copy_take(report)
        return report

    # ---------------------------------------------------------------------------------------- status

    def status(self) -> ScriptStatus:
        with self._lock:
            lines = [replace(r) for r in self.reports]
        done = sum(r.finished or r.status == ERROR for r in lines)
        mixed = done == len(lines) and self.audio_path.is_file()
        return ScriptStatus(
            name=self.script.name,
            state=self.state,
            total=len(lines),
            done=done,
            ok=sum(r.status in (OK, UNCHECKED) for r in lines),
            warned=sum(r.status in (WARN, ERROR) for r in lines),
            rerendered=sum(r.rerendered for r in lines),
            eta_s=self._eta(len(lines) - done),
            lines=lines,
            audio=str(self.audio_path) if mixed else None,
            subtitles=str(self.subtitles_path) if mixed else None,
            error=self.error,
        )

    @property
    def audio_path(self) -> Path:
        return self.folder / f"{_file_stem(self.script.name)}.wav"

    @property
    def subtitles_path(self) -> Path:
        return self.folder / f"{_file_stem(self.script.name)}.srt"

    def line_audio(self, index: int) -> Path:
        """The kept take of line ``index`` (raises when it is not rendered)."""
        report = self._report(index)
        if not report.finished:
            raise StudioError(f"Line {index + 1} is not rendered yet.")
        return self._file(report.file)

    def take_audio(self, index: int, attempt: int) -> Path:
        """Try ``attempt`` (0-based) of line ``index``, e.g. to compare two takes of a line."""
        report = self._report(index)
        if not 0 <= attempt < len(report.tries):
            raise StudioError(f"Line {index + 1} has {len(report.tries)} take(s); there is no take {attempt + 1}.")
        return self._file(report.tries[attempt].file)

    def _eta(self, remaining: int) -> float | None:
        if not self._line_seconds:
            return None
        return round(remaining * sum(self._line_seconds) / len(self._line_seconds), 1)

    def _report(self, index: int) -> LineReport:
        if not 0 <= index < len(self.reports):
            raise StudioError(f"There is no line {index + 1}; the script has {len(self.reports)} line(s).")
        return self.reports[index]

    def _file(self, rel: str) -> Path:
        return self.folder / rel if rel else self.folder / "missing"

    # ---------------------------------------------------------------------------------------- rendering

    def render(self, on_progress: ProgressFn | None = None, cancel: threading.Event | None = None) -> ScriptStatus:
        """Render every line not yet rendered (in order), then join them. Returns the final status.

        ``cancel`` set → stops after the current try; what is finished stays (``state`` "cancelled").
        """
        self.state, self.error = "rendering", None
        total = len(self.reports)
        try:
            for report in list(self.reports):
                done = sum(r.finished or r.status == ERROR for r in self.reports)
                if cancel is not None and cancel.is_set():
                    raise RenderCancelled("The render was cancelled.")
                if report.finished or report.status == ERROR:
                    continue
                if on_progress:
                    on_progress(RenderProgress(done, total, self._eta(total - done), report.index, report.text))
                self.render_line(report.index, cancel=cancel)
            self.mixdown()
            self.state = "done"
        except RenderCancelled:
            self.state = "cancelled"
        except Exception as exc:
            self.state, self.error = "failed", str(exc)
            raise
        finally:
            self._save_report()
        if on_progress:
            left = total - sum(r.finished or r.status == ERROR for r in self.reports)
            on_progress(RenderProgress(total - left, total, self._eta(left), None, self.state))
        return self.status()

    def render_line(self, index: int, *, cancel: threading.Event | None = None) -> LineReport:
        """Render line ``index`` now (tries, checks, retries), store it and save the report."""
        started = time.monotonic()
        try:
            report = self.run(lambda: self._render_work(index, cancel))
        except (StudioError, OSError) as exc:
            if isinstance(exc, RenderCancelled):
                raise
            report = replace(self._report(index), status=ERROR, reason=str(exc), tries=[], attempts=0)
        with self._lock:
            self.reports[index] = report
            self._save_report()
        self._line_seconds.append(time.monotonic() - started)
        return report

    def rerender_line(self, index: int, text: str | None = None, settings: LineOverride | dict | None = None):
        """Edit line ``index`` (its text and/or its own settings), render it alone and join again."""
        line = self._line(index)
        if text is not None:
            if not any(c.isalnum() for c in text):
                raise line_error(line, "the new text has nothing to say.")
            line = replace(line, text=" ".join(text.split()))
            lines = list(self.script.lines)
            lines[index] = line
            self.script = replace(self.script, lines=tuple(lines))
        if settings is not None:
            override = settings if isinstance(settings, LineOverride) else LineOverride.from_dict(settings)
            self.overrides[index] = override
            _check_voice_style(line, self._member(index), self.voices)
        self._save_project()
        member = self._member(index)
        report = self._report(index)
        fresh = replace(report, text=line.text, voice=member.voice, style=member.style, status=PENDING)
        fresh.hash = self._hash(index)
        if fresh.hash == report.hash and report.finished and text is None and settings is None:
            return report
        self.reports[index] = replace(fresh, tries=[], attempts=0, reason="", chosen=0)
        report = self.render_line(index)
        if all(r.finished or r.status == ERROR for r in self.reports):
            self.mixdown()
        return report

    def choose_take(self, index: int, attempt: int) -> LineReport:
        """Keep try ``attempt`` of line ``index`` instead of the one chosen automatically; join again."""
        self.take_audio(index, attempt)
        with self._lock:
            report = quality.apply_choice(self._report(index), attempt, self.settings)
            self.reports[index] = report
            self._copy_take(report)
            self._save_report()
        if all(r.finished or r.status == ERROR for r in self.reports):
            self.mixdown()
        return report

    def _render_work(self, index: int, cancel: threading.Event | None) -> LineReport:
        line, member = self._line(index), self._member(index)
        override = self.overrides.get(index, LineOverride())
        info = self.voices.get(member.voice)
        job = quality.LineJob(
            line=line,
            info=info,
            member=member,
            override=override,
            settings=self.settings,
            voices=self.voices,
            lexicon=self.lexicon(),
        )
        checking = self.settings.check and self.checker is not None
        report = replace(self._report(index), voice=member.voice, style=member.style, tries=[], attempts=0)
        report.hash = self._hash(index)
        folder = self.folder / "takes" / report.hash
        for k in range(1 + (self.settings.retries if checking else 0)):
            if cancel is not None and cancel.is_set() and report.tries:
                break
            if cancel is not None and cancel.is_set():
                raise RenderCancelled("The render was cancelled.")
            seed = self._seed(report.hash, k, override)
            audio, rate, attempt = job.synthesize(self.synthesis, seed)
            if checking:
                quality.check(attempt, audio, rate, job, self.checker, self.synthesis)
            attempt.file = str((folder / f"{k}.wav").relative_to(self.folder))
            _save_take(self._file(attempt.file), audio, rate, line.text)
            report.tries.append(attempt)
            if not attempt.failures:
                break
        report = quality.finish(report, checking, self.settings)
        report.file = _line_file(index)
        self._copy_take(report)
        return report

    def _copy_take(self, report: LineReport) -> None:
        source = self._file(report.tries[report.chosen].file)
        target = self.folder / _line_file(report.index)
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = target.with_name(f".{target.name}.part")
        shutil.copyfile(source, staging)
        staging.replace(target)
        report.file = _line_file(report.index)

    def _seed(self, content_hash: str, attempt: int, override: LineOverride) -> int:
        """The seed of a try: the line's own seed first; else derived from the render's seed and the line's
        content (repeatable, independent of the line's position); random when the render's seed is -1."""
        if attempt == 0 and override.seed is not None and override.seed >= 0:
            return int(override.seed)
        base = override.seed if override.seed is not None and override.seed >= 0 else self.settings.seed
        if base < 0:
            return random.SystemRandom().randrange(2**31)
        digest = hashlib.sha256(f"{base}:{content_hash}:{attempt}".encode()).digest()
        return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF

    # ---------------------------------------------------------------------------------------- joining

    def mixdown(self) -> tuple[Path, Path]:
        """Join the rendered lines (with the pause map) into ``<name>.wav`` and write ``<name>.srt``."""
        from studio.audio.io import load_audio, save_wav
        from studio.inference.pauses import PauseMap
        from studio.inference.requests import OUTPUT_SAMPLE_RATE
        from studio.services.scripts.mix import join, line_cues, place_lines
        from studio.services.subtitles import to_srt

        with self._lock:
            clips = []
            for report in self.reports:
                ok = report.finished and self._file(report.file).is_file()
                clips.append(load_audio(self._file(report.file), OUTPUT_SAMPLE_RATE)[0] if ok else np.zeros(0))
            spans = place_lines(
                self.script, [len(c) / OUTPUT_SAMPLE_RATE for c in clips], PauseMap.preset(self.settings.pauses)
            )
            for report, (start, end) in zip(self.reports, spans):
                report.start_s, report.end_s = round(start, 3), round(end, 3)
            save_wav(
                self.audio_path,
                join(clips, spans, OUTPUT_SAMPLE_RATE),
                OUTPUT_SAMPLE_RATE,
                metadata={"comment": "AI-generated speech (SoVITS Studio)", "title": self.script.name[:120]},
            )
            cues = [c for c, r in zip(line_cues(self.script, spans), self.reports) if r.finished]
            atomic_write_text(self.subtitles_path, to_srt(cues))
            self._save_report()
        return self.audio_path, self.subtitles_path

    def subtitles(self, fmt: str = "srt") -> str:
        """The joined recording's line-level subtitles as SRT or WebVTT text."""
        from studio.services.scripts.mix import line_cues
        from studio.services.subtitles import to_srt, to_vtt

        if fmt not in ("srt", "vtt"):
            raise StudioError(f"Unknown subtitle format {fmt!r}; use srt or vtt.")
        spans = [(r.start_s or 0.0, r.end_s or 0.0) for r in self.reports]
        cues = [c for c, r in zip(line_cues(self.script, spans), self.reports) if r.finished and r.end_s is not None]
        return to_srt(cues) if fmt == "srt" else to_vtt(cues)

    # ---------------------------------------------------------------------------------------- helpers

    def _line(self, index: int):
        self._report(index)
        return self.script.lines[index]

    def _member(self, index: int) -> CastMember:
        line = self.script.lines[index]
        member = cast_for(self.cast, line.speaker) or CastMember(line.speaker, "")
        override = self.overrides.get(index, LineOverride())
        style = override.style if override.style is not None else (line.style or member.style)
        return CastMember(line.speaker, override.voice or member.voice, style or None)

    def _hash(self, index: int) -> str:
        member = self._member(index)
        override = self.overrides.get(index, LineOverride())
        return line_hash(self.script.lines[index], member.voice, member.style, self.settings, override)

    def _save_report(self) -> None:
        status = {"name": self.script.name, "state": self.state, "settings": self.settings.to_dict()}
        atomic_write_json(self.folder / REPORT_FILE, status | {"lines": [r.to_dict() for r in self.reports]})


def _line_file(index: int) -> str:
    return f"lines/{index:04d}.wav"


def _slot(line) -> list[float] | None:
    return list(line.slot) if line.slot else None


def _file_stem(name: str) -> str:
    stem = "".join(c if c.isalnum() or c in "-_ ." else "_" for c in name).strip(" .")
    return stem or "script"


def _save_take(path: Path, audio: np.ndarray, rate: int, text: str) -> None:
    from studio.audio.io import save_wav

    path.parent.mkdir(parents=True, exist_ok=True)
    save_wav(path, audio, rate, metadata={"comment": "AI-generated speech (SoVITS Studio)", "title": text[:120]})


def _check_cast(script: Script, cast: dict[str, CastMember], voices) -> None:
    """Every speaker has a voice of the library, and every style asked for is one of that voice's tags."""
    missing = [s for s in script.speakers if cast_for(cast, s) is None]
    if missing:
        raise ScriptError(
            f"No voice for {', '.join(missing)}.",
            hint="Give every speaker a voice: NAME=voice (a voice without NAME= speaks for everyone not named).",
        )
    for line in script.lines:
        member = cast_for(cast, line.speaker)
        _check_voice_style(line, CastMember(line.speaker, member.voice, line.style or member.style), voices)


def _check_voice_style(line, member: CastMember, voices) -> None:
    info = voices.get(member.voice)  # VoiceNotFoundError names the library's voices
    if member.style:
        quality.style_clip(voices, info, member.style, line)
