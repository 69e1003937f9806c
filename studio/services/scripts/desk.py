"""The studio's script renders by name, each rendered in a background thread: what the Script tab drives.

A render lives in ``<workspace>/scripts/<name>/`` (the folder layout of ``studio render --out``), so the page can be
reloaded, or the studio restarted, without losing anything: the tab reads the render's status from this desk (the
thread and its progress while the server runs, the report on disk after a restart) and a stopped render goes on
from its finished lines. Only one piece of work runs per render at a time (a whole render, or one edited line);
edits and take choices are refused while it runs instead of racing it.
"""

from __future__ import annotations

import json
import logging
import threading
import zipfile
from collections.abc import Callable, Iterable
from pathlib import Path

from studio.errors import StudioError
from studio.services.scripts.parser import FORMATS, detect_format, load_script, parse_script
from studio.services.scripts.records import Script, ScriptError
from studio.services.scripts.state import EVERYONE, CastMember, LineOverride, RenderSettings, ScriptStatus

_LOGGER = logging.getLogger(__name__)

EXPORTS = ("wav", "mp3", "flac", "srt", "vtt", "zip")  # what a finished render can be exported as
UPLOADS = (".txt", ".text", ".script", ".dialogue", ".md", ".markdown", ".srt", ".vtt", ".epub")
MAX_UPLOAD_BYTES = 20 * 1024 * 1024
SOURCE_FILE = "source.json"  # the script as the user wrote it, next to project.json


def read_script(text: str, fmt: str = "auto", name: str = "script") -> Script:
    """A pasted script parsed (``fmt``: ``auto`` or one of :data:`FORMATS`); errors name the line and column."""
    if not (text or "").strip():
        raise ScriptError("There is no script yet.", hint="Paste a script or upload a file.")
    if fmt != "auto" and fmt not in FORMATS:
        raise ScriptError(f"Unknown script format {fmt!r}.", hint=f"Use auto or one of: {', '.join(FORMATS)}.")
    return parse_script(text, fmt, name=name)


def read_upload(path: Path | str) -> tuple[str, str]:
    """An uploaded script file as (text for the editor, its format). An e-book becomes its paragraphs (one per
    blank-line-separated block, format ``txt``), so what will be spoken can be read and edited before rendering."""
    path = Path(path)
    if path.suffix.lower() not in UPLOADS:
        raise ScriptError(
            f"{path.name} is not a script file.", hint=f"Upload one of: {', '.join(sorted(set(UPLOADS)))}."
        )
    if path.stat().st_size > MAX_UPLOAD_BYTES:
        raise ScriptError(f"{path.name} is larger than {MAX_UPLOAD_BYTES // 2**20} MB.")
    fmt = detect_format(path)
    if fmt == "epub":
        book = load_script(path, "epub")
        return "\n\n".join(line.text for line in book.lines) + "\n", "txt"
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ScriptError(f"{path.name} is not UTF-8 text.", hint="Save the script as UTF-8 and try again.") from exc
    return text, detect_format(path, text)


def make_cast(assignments: Iterable[tuple[str, str | None, str | None]], everyone: str | None) -> dict:
    """The cast from (speaker, voice, style) rows and the voice for every speaker not cast by name."""
    cast: dict[str, CastMember] = {}
    for speaker, voice, style in assignments:
        if speaker and voice:
            cast[speaker.casefold()] = CastMember(speaker, voice, style or None)
    if everyone:
        cast[EVERYONE] = CastMember(EVERYONE, everyone, None)
    return cast


class ScriptDesk:
    """Script renders of one workspace; ``services()`` gives what a renderer needs (``Studio.script_services``)."""

    def __init__(self, root: Path, services: Callable[[], dict]) -> None:
        self.root = Path(root)
        self._services = services
        self._renderers: dict[str, object] = {}
        self._threads: dict[str, threading.Thread] = {}
        self._cancels: dict[str, threading.Event] = {}
        self._lock = threading.Lock()

    # ------------------------------------------------------------------------------------------ renders

    def names(self) -> list[str]:
        """The renders in the workspace, the most recently changed first."""
        if not self.root.is_dir():
            return []
        found = [p for p in self.root.iterdir() if (p / "project.json").is_file()]

        def changed(folder: Path) -> float:
            return max((folder / f).stat().st_mtime for f in ("project.json", "report.json") if (folder / f).is_file())

        return [p.name for p in sorted(found, key=changed, reverse=True)]

    def folder(self, name: str) -> Path:
        from studio.workspace import validate_name

        return self.root / validate_name((name or "").strip())

    def renderer(self, name: str):
        """The render ``name`` (opened from disk the first time)."""
        from studio.services.scripts.render import ScriptRenderer

        folder = self.folder(name)
        with self._lock:
            if folder.name not in self._renderers:
                if not (folder / "project.json").is_file():
                    raise StudioError(f"There is no script render named {folder.name!r}.")
                self._renderers[folder.name] = ScriptRenderer.open(folder, **self._services())
            return self._renderers[folder.name]

    def running(self, name: str) -> bool:
        thread = self._threads.get(self.folder(name).name)
        return thread is not None and thread.is_alive()

    def status(self, name: str) -> ScriptStatus:
        status = self.renderer(name).status()
        if status.state == "rendering" and not self.running(name):
            status.state = "idle"  # a thread of an earlier server that stopped mid-line
        return status

    def project(self, name: str) -> dict:
        """The render's saved project (script, cast, settings): to show what it was made with."""
        return json.loads((self.folder(name) / "project.json").read_text(encoding="utf-8"))

    # ------------------------------------------------------------------------------------------ work

    def source(self, name: str) -> tuple[str, str] | None:
        """(text, format) the render was started from in the studio (``None`` for one made elsewhere)."""
        path = self.folder(name) / SOURCE_FILE
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return str(data["text"]), str(data.get("format", "auto"))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def line_settings(self, name: str, index: int) -> LineOverride:
        """The own settings of line ``index`` (empty when it has none)."""
        return self.renderer(name).overrides.get(index, LineOverride())

    def start(
        self, name: str, script: Script, cast: dict, settings: RenderSettings, source: tuple[str, str] | None = None
    ) -> None:
        """Render ``script`` as ``name`` in the background. A render of that name keeps every finished line whose
        content did not change (press Render again to resume, or after editing the script). ``source`` (the text
        as written and its format) is kept so that the tab shows it again after a reload."""
        from studio.services.scripts.render import ScriptRenderer
        from studio.workspace import atomic_write_json

        folder = self.folder(name)
        self._refuse_while_running(folder.name)
        renderer = ScriptRenderer.create(folder, script, cast, settings, **self._services())
        if source is not None:
            atomic_write_json(folder / SOURCE_FILE, {"text": source[0], "format": source[1]})
        with self._lock:
            self._renderers[folder.name] = renderer
        self._launch(folder.name, lambda cancel: renderer.render(cancel=cancel))

    def resume(self, name: str) -> None:
        """Go on with a stopped render (its finished lines are kept)."""
        renderer = self.renderer(name)
        self._refuse_while_running(self.folder(name).name)
        self._launch(self.folder(name).name, lambda cancel: renderer.render(cancel=cancel))

    def cancel(self, name: str) -> None:
        """Stop after the current try; finished lines stay."""
        event = self._cancels.get(self.folder(name).name)
        if event is not None:
            event.set()

    def edit_line(self, name: str, index: int, text: str | None, override: LineOverride | None) -> None:
        """Re-render line ``index`` alone in the background with its new text and/or its own settings."""
        renderer = self.renderer(name)
        self._refuse_while_running(self.folder(name).name)
        total = len(renderer.script.lines)
        if not 0 <= index < total:
            raise StudioError(f"There is no line {index + 1}; the script has {total} line(s).")
        self._launch(self.folder(name).name, lambda _cancel: renderer.rerender_line(index, text, override))

    def choose_take(self, name: str, index: int, attempt: int):
        """Keep try ``attempt`` of line ``index`` (the other's A/B loser stays in ``takes/``) and join again."""
        self._refuse_while_running(self.folder(name).name)
        return self.renderer(name).choose_take(index, attempt)

    def _refuse_while_running(self, key: str) -> None:
        thread = self._threads.get(key)
        if thread is not None and thread.is_alive():
            raise StudioError(
                "This script is still rendering.", hint="Wait until it has finished, or press Stop first."
            )

    def _launch(self, key: str, work: Callable[[threading.Event], object]) -> None:
        renderer = self._renderers[key]
        cancel = threading.Event()

        def target() -> None:
            try:
                work(cancel)
            except Exception as exc:  # kept on the renderer: the tab shows it; the server goes on
                _LOGGER.exception("script render %s failed", key)
                renderer.state, renderer.error = "failed", str(exc)
            else:
                if renderer.state == "rendering":
                    renderer.state = "done"

        with self._lock:
            renderer.state, renderer.error = "rendering", None
            self._cancels[key] = cancel
            thread = self._threads[key] = threading.Thread(target=target, name=f"script-{key}", daemon=True)
        thread.start()

    # ------------------------------------------------------------------------------------------ export

    def export(self, name: str, fmt: str) -> Path:
        """The whole render as ``fmt`` (one of :data:`EXPORTS`) in ``<render>/export/``; refused until every line
        is rendered (the joined recording exists)."""
        if fmt not in EXPORTS:
            raise StudioError(f"Cannot export as {fmt!r}.", hint=f"Use one of: {', '.join(EXPORTS)}.")
        renderer = self.renderer(name)
        status = self.status(name)
        if status.audio is None or status.state == "rendering":
            raise StudioError(
                f"The script is not fully rendered yet ({status.done} of {status.total} lines).",
                hint="Render it (or wait for the render to finish), then export.",
            )
        from studio.services.scripts.mix import file_stem
        from studio.workspace import atomic_write_text

        target = self.folder(name) / "export" / f"{file_stem(renderer.script.name)}.{fmt}"
        target.parent.mkdir(parents=True, exist_ok=True)
        if fmt in ("srt", "vtt"):
            atomic_write_text(target, renderer.subtitles(fmt))
        elif fmt == "zip":
            _write_stems(target, renderer, status)
        else:
            _write_audio(target, Path(status.audio), fmt)
        return target


def _write_audio(target: Path, source: Path, fmt: str) -> None:
    """The joined WAV as ``fmt`` through the studio's encoders (the AI-generated marker in its metadata)."""
    from studio.audio.encoding import encode
    from studio.audio.io import load_audio

    audio, rate = load_audio(source)
    staging = target.with_name(f".{target.name}.part")
    staging.write_bytes(encode(audio, rate, fmt))
    staging.replace(target)


def _write_stems(target: Path, renderer, status: ScriptStatus) -> None:
    """A zip of one WAV per line (``0001-ALICE.wav`` …), the line-level SRT and the report."""
    from studio.services.scripts.mix import file_stem

    staging = target.with_name(f".{target.name}.part")
    with zipfile.ZipFile(staging, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for line in status.lines:
            if line.finished:
                archive.write(renderer.folder / line.file, f"{line.index + 1:04d}-{file_stem(line.speaker)}.wav")
        archive.writestr(f"{file_stem(renderer.script.name)}.srt", renderer.subtitles("srt"))
        archive.write(renderer.folder / "report.json", "report.json")
    staging.replace(target)


def voice_styles(voices, name: str | None) -> list[str]:
    """The style tags of voice ``name`` (its reference clips tagged "calm", "excited", …), in the library's order."""
    if not name:
        return []
    info = voices.get(name)
    return list(dict.fromkeys(meta["emotion"] for _, meta in voices.reference_clips(info) if meta.get("emotion")))
