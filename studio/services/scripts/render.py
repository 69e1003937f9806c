"""Rendering a script: every line synthesized with its speaker's voice, checked, re-rendered on failure, joined.

The render folder holds everything, so a render survives ``kill -9`` and an edit costs one line::

    project.json        the script's lines, the cast, the settings and each edited line's own settings
    report.json         per line: text, speaker, voice, style, status ✓/⚠ and why, seed, tries, CER, similarity,
                        flags, duration, place in the joined audio (rewritten atomically after every line)
    takes/<hash>/<n>.wav every try of a line, by the line's content hash (A/B any two of them)
    lines/NNNN.wav      the kept take of line NNNN
    <name>.wav, <name>.srt   the joined recording and its line-level subtitles (once no line is pending)
A line is rendered again only when its content hash (text, voice, style, audio settings, its own settings)
changed or its files are gone; a line moved by an edit elsewhere reuses its takes. Synthesis goes through
:class:`~studio.services.synthesis.SynthesisService` as ``studio synth --voice`` does; ``run`` wraps each
line's work: the HTTP API sends every line through its inference queue that way.
"""

from __future__ import annotations

import json
import logging
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from studio.errors import StudioError
from studio.services.scripts import quality
from studio.services.scripts.mix import file_stem, save_take
from studio.services.scripts.records import Script
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
    line_seed,
)
from studio.workspace import atomic_write_json

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
        quality.check_cast(script, cast, services["voices"])
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
            fresh.hash, fresh.slot, fresh.source_line = (
                self._hash(line.index),
                list(line.slot) if line.slot else None,
                line.source_line,
            )
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
        return self.folder / f"{file_stem(self.script.name)}.wav"

    @property
    def subtitles_path(self) -> Path:
        return self.folder / f"{file_stem(self.script.name)}.srt"

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
            quality.check_voice_style(line, self._member(index), self.voices)
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
            seed = line_seed(self.settings.seed, report.hash, k, override)
            audio, rate, attempt = job.synthesize(self.synthesis, seed)
            if checking:
                quality.check(attempt, audio, rate, job, self.checker, self.synthesis)
            attempt.file = str((folder / f"{k}.wav").relative_to(self.folder))
            save_take(self._file(attempt.file), audio, rate, line.text)
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

    # ---------------------------------------------------------------------------------------- joining

    def mixdown(self) -> tuple[Path, Path]:
        """Join the rendered lines (with the pause map) into ``<name>.wav`` and write ``<name>.srt``."""
        from studio.services.scripts.mix import write_mix

        with self._lock:
            files = [self._file(r.file) if r.finished else None for r in self.reports]
            spans = write_mix(self.script, files, self.settings.pauses, self.audio_path, self.subtitles_path)
            for report, (start, end) in zip(self.reports, spans):
                report.start_s, report.end_s = round(start, 3), round(end, 3)
            self._save_report()
        return self.audio_path, self.subtitles_path

    def subtitles(self, fmt: str = "srt") -> str:
        """The joined recording's line-level subtitles as SRT or WebVTT text."""
        from studio.services.scripts.mix import subtitles_text

        spans = [(r.start_s, r.end_s) if r.finished and r.end_s is not None else None for r in self.reports]
        return subtitles_text(self.script, spans, fmt)

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
