"""Takes: the raw recordings of a voice project before they are prepared, plus what the UI shows about them.

A take is one microphone recording or one uploaded file, kept byte for byte in ``workspace/<name>/recordings/``
with an index ``takes.json`` (source, original name, length, levels). Preparation (``DatasetPrepService.prepare``)
reads them from there, so nothing recorded in the browser lives only in the browser.

Also here, because the Record and Prepare screens need them and the CLI may too:

* :func:`measure_levels`: peak / RMS of a take and a verdict (clipping, too quiet, too short, noisy);
* :meth:`RecordingService.preview_clean`: a take's first seconds before and after cleaning at a denoise strength;
* :meth:`RecordingService.preview_slices`: where the slicer would cut a take with given parameters;
* the consent record (speaker name + statement + tick) that training requires and the voice pack carries.
"""

from __future__ import annotations

import json
import logging
import shutil
import threading
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from studio.audio.io import load_audio, probe_audio, save_wav
from studio.audio.silence import level_stats
from studio.dataprep.clean import CleanConfig, CleanReport, clean_audio
from studio.dataprep.importer import sha256_file
from studio.dataprep.lint import clipped_fraction
from studio.dataprep.pipeline import SOURCES_FILE, PrepOptions, slicer_config
from studio.dataprep.slicing import Slice, SlicerConfig, safe_stem, slice_audio
from studio.errors import AudioError, StudioError, WorkspaceError
from studio.workspace import Workspace, atomic_write_json

_LOGGER = logging.getLogger(__name__)

INDEX_FILE = "takes.json"
PREVIEW_DIR = ".preview"
CONSENT_FILE = "consent.json"
PREVIEW_SECONDS = 20.0

# Level verdict thresholds (dBFS unless stated).
CLIP_FRACTION = 0.001
QUIET_PEAK_DB = -20.0
QUIET_SPEECH_DB = -38.0
MIN_TAKE_S = 1.0
NOISY_SNR_DB = 15.0
#: Every code :func:`measure_levels` can report.
ISSUES = ("silent", "clipping", "too_quiet", "noisy", "too_short")


@dataclass(frozen=True)
class TakeLevels:
    """How loud a take is and what is wrong with it. ``issues`` are codes the UI translates."""

    duration_s: float
    peak_db: float
    rms_db: float  # RMS of the loud (speech) frames
    noise_db: float
    snr_db: float
    clipped_fraction: float
    issues: tuple[str, ...] = ()  # "clipping" | "too_quiet" | "too_short" | "noisy" | "silent"

    @property
    def ok(self) -> bool:
        return not self.issues


@dataclass(frozen=True)
class Take:
    name: str  # file name inside takes/
    path: Path
    source: str  # "mic" | "upload"
    original_name: str
    added: str
    levels: TakeLevels


@dataclass(frozen=True)
class CleanPreview:
    before: Path
    after: Path
    report: CleanReport


@dataclass(frozen=True)
class SlicePreview:
    take: str
    sample_rate: int
    threshold_db: float
    slices: tuple[Slice, ...]
    envelope_t: np.ndarray = field(repr=False)  # (N,) seconds
    envelope: np.ndarray = field(repr=False)  # (N,) peak amplitude per window, 0…1
    duration_s: float = 0.0


@dataclass(frozen=True)
class ConsentStatement:
    speaker_name: str
    statement: str
    confirmed: bool
    date: str


def measure_levels(audio: np.ndarray, sample_rate: int) -> TakeLevels:
    """Peak, speech RMS, noise floor and the verdict for mono float ``audio`` ``(T,)``."""
    x = np.asarray(audio, dtype=np.float32)
    duration = x.shape[0] / sample_rate if sample_rate else 0.0
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    peak_db = 20.0 * float(np.log10(max(peak, 1e-9)))
    stats = level_stats(x, sample_rate) if x.size else None
    rms_db = stats.speech_db if stats else -120.0
    clipped = clipped_fraction(x)
    issues: list[str] = []
    if stats is None or rms_db < -70.0:
        issues.append("silent")
    else:
        if clipped > CLIP_FRACTION:  # flat runs at the peak; a peak of 1.0 alone is normalised audio, not clipping
            issues.append("clipping")
        if peak_db < QUIET_PEAK_DB or rms_db < QUIET_SPEECH_DB:
            issues.append("too_quiet")
        if stats.snr_db < NOISY_SNR_DB:
            issues.append("noisy")
    if duration < MIN_TAKE_S:
        issues.append("too_short")
    return TakeLevels(
        duration_s=round(duration, 3),
        peak_db=round(peak_db, 2),
        rms_db=round(rms_db, 2),
        noise_db=round(stats.noise_db if stats else -120.0, 2),
        snr_db=round(stats.snr_db if stats else 0.0, 2),
        clipped_fraction=round(clipped, 5),
        issues=tuple(issues),
    )


class RecordingService:
    """Takes, previews and consent of the voice projects under ``workspace_root``."""

    def __init__(self, workspace_root: Path) -> None:
        self.workspace_root = Path(workspace_root)
        self._lock = threading.Lock()

    # ---- layout ----------------------------------------------------------------------------------
    def workspace(self, project: str) -> Workspace:
        if not project or not str(project).strip():
            raise WorkspaceError("No voice project is selected.", hint="Type a name for your voice project first.")
        return Workspace(str(project), self.workspace_root)

    def takes_dir(self, project: str) -> Path:
        return self.workspace(project).recordings_dir

    def _index_path(self, project: str) -> Path:
        return self.takes_dir(project) / INDEX_FILE

    def _read_index(self, project: str) -> dict[str, dict]:
        path = self._index_path(project)
        if not path.is_file():
            return {}
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            _LOGGER.warning("ignoring damaged %s", path)
            return {}
        return data if isinstance(data, dict) else {}

    # ---- takes -----------------------------------------------------------------------------------
    def list_takes(self, project: str) -> list[Take]:
        """The project's takes in the order they were added (missing files are left out)."""
        folder = self.takes_dir(project)
        takes = []
        for name, meta in self._read_index(project).items():
            path = folder / name
            if not path.is_file():
                continue
            try:
                levels = TakeLevels(**{**meta["levels"], "issues": tuple(meta["levels"].get("issues", ()))})
                takes.append(
                    Take(
                        name,
                        path,
                        meta.get("source", "upload"),
                        meta.get("original_name", name),
                        meta.get("added", ""),
                        levels,
                    )
                )
            except (KeyError, TypeError):
                _LOGGER.warning("skipping damaged take entry %s", name)
        return takes

    @staticmethod
    def measure_file(path: Path | str) -> TakeLevels:
        """Levels of a recording that is not (yet) a take, e.g. the microphone's last recording."""
        audio, sr = load_audio(path)
        return measure_levels(audio, sr)

    def take_paths(self, project: str) -> list[Path]:
        return [t.path for t in self.list_takes(project)]

    def unprepared_takes(self, project: str) -> list[Take]:
        """Takes whose audio is not in the project's dataset yet (preparing only these keeps earlier corrections)."""
        sources = self.workspace(project).reports_dir / SOURCES_FILE
        try:
            prepared = {v.get("sha256") for v in json.loads(sources.read_text(encoding="utf-8")).values()}
        except (OSError, ValueError, AttributeError):
            prepared = set()
        index = self._read_index(project)
        return [
            t for t in self.list_takes(project) if (index[t.name].get("sha256") or sha256_file(t.path)) not in prepared
        ]

    def get_take(self, project: str, name: str) -> Take:
        for take in self.list_takes(project):
            if take.name == name:
                return take
        raise AudioError(f"There is no take named {name!r} in {project!r}.", hint="Pick one from the list of takes.")

    def add_take(
        self, project: str, source_path: Path | str, *, source: str = "upload", original_name: str | None = None
    ) -> Take:
        """Check that ``source_path`` decodes, then copy it into the project's takes (bytes unchanged)."""
        src = Path(source_path)
        original = original_name or src.name
        try:
            info = probe_audio(src)
            audio, sr = load_audio(src)
        except AudioError as exc:
            raise AudioError(
                f"{original} could not be used: {exc.message}",
                hint=exc.hint or "Use a WAV, FLAC, MP3, M4A, OGG or WebM recording.",
            ) from None
        levels = measure_levels(audio, sr)
        if "silent" in levels.issues:
            raise AudioError(
                f"{original} is silent: there is no sound in it.",
                hint="Check that the right microphone is selected, then record again.",
            )
        with self._lock:
            folder = self.takes_dir(project)
            folder.mkdir(parents=True, exist_ok=True)
            index = self._read_index(project)
            stem = "take" if source == "mic" else safe_stem(Path(original).stem)
            suffix = src.suffix.lower() or ".wav"
            name = _unique_name(stem, suffix, set(index) | {p.name for p in folder.iterdir()}, numbered=source == "mic")
            shutil.copyfile(src, folder / name)
            added = datetime.now(timezone.utc).replace(microsecond=0).isoformat()
            index[name] = {
                "sha256": sha256_file(folder / name),
                "source": source,
                "original_name": original,
                "added": added,
                "sample_rate": info.sample_rate,
                "channels": info.channels,
                "levels": asdict(levels),
            }
            atomic_write_json(self._index_path(project), index)
        _LOGGER.info("added take %s to %s (%.1f s)", name, project, levels.duration_s)
        return Take(name, folder / name, source, original, added, levels)

    def delete_take(self, project: str, name: str) -> None:
        with self._lock:
            index = self._read_index(project)
            if name not in index:
                raise AudioError(f"There is no take named {name!r} in {project!r}.")
            del index[name]
            atomic_write_json(self._index_path(project), index)
            (self.takes_dir(project) / Path(name).name).unlink(missing_ok=True)

    # ---- previews (Prepare screen) ---------------------------------------------------------------
    def _load_excerpt(self, project: str, name: str, seconds: float | None) -> tuple[np.ndarray, int]:
        take = self.get_take(project, name)
        audio, sr = load_audio(take.path)
        if seconds is not None:
            audio = audio[: int(seconds * sr)]
        return audio, sr

    def preview_clean(self, project: str, name: str, denoise: float, seconds: float = PREVIEW_SECONDS) -> CleanPreview:
        """The first ``seconds`` of a take as recorded and as preparation would clean it (written as WAVs)."""
        audio, sr = self._load_excerpt(project, name, seconds)
        cleaned, report = clean_audio(audio, sr, CleanConfig(denoise=float(denoise)))
        folder = self.takes_dir(project) / PREVIEW_DIR
        stem = Path(name).stem
        before = save_wav(folder / f"{stem}.before.wav", audio, sr)
        after = save_wav(folder / f"{stem}.after-{int(round(denoise * 100)):03d}.wav", cleaned, report.sample_rate_out)
        return CleanPreview(before, after, report)

    def preview_slices(self, project: str, name: str, options: PrepOptions | None = None) -> SlicePreview:
        """Where preparation would cut the take: the same cleaning, threshold adaptation and slicer as ``prepare``."""
        opts = options or PrepOptions()
        audio, sr = self._load_excerpt(project, name, None)
        cleaned, report = clean_audio(audio, sr, opts.clean)
        out_sr = report.sample_rate_out
        cfg: SlicerConfig = slicer_config(cleaned, out_sr, opts)
        pieces = slice_audio(cleaned, out_sr, cfg) if opts.slice else [Slice(0, len(cleaned), out_sr)]
        hop = max(1, out_sr // 100)  # 10 ms windows for the drawing
        n = len(cleaned) // hop
        env = np.abs(cleaned[: n * hop]).reshape(n, hop).max(axis=1) if n else np.zeros(0, np.float32)
        return SlicePreview(
            name, out_sr, cfg.threshold_db, tuple(pieces), np.arange(n) * hop / out_sr, env, len(cleaned) / out_sr
        )

    # ---- consent ---------------------------------------------------------------------------------
    def save_consent(self, project: str, speaker_name: str, statement: str, confirmed: bool) -> ConsentStatement:
        """Store who is speaking and their statement; refuses an unticked box or an empty name."""
        if not confirmed:
            raise StudioError("Please confirm that this is your voice or that you have permission to use it.")
        if not speaker_name.strip():
            raise StudioError("Please enter the name of the person whose voice this is.")
        if not statement.strip():
            raise StudioError("Please keep or write the consent statement.")
        record = ConsentStatement(
            speaker_name.strip(), statement.strip(), True, datetime.now(timezone.utc).replace(microsecond=0).isoformat()
        )
        workspace = self.workspace(project)
        workspace.dir.mkdir(parents=True, exist_ok=True)
        atomic_write_json(workspace.dir / CONSENT_FILE, asdict(record))
        return record

    def load_consent(self, project: str) -> ConsentStatement | None:
        path = self.workspace(project).dir / CONSENT_FILE
        if not path.is_file():
            return None
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return ConsentStatement(
                str(data["speaker_name"]), str(data["statement"]), bool(data["confirmed"]), str(data.get("date", ""))
            )
        except (OSError, ValueError, KeyError, TypeError):
            _LOGGER.warning("ignoring damaged %s", path)
            return None


def _unique_name(stem: str, suffix: str, taken: set[str], numbered: bool) -> str:
    if not numbered and f"{stem}{suffix}" not in taken:
        return f"{stem}{suffix}"
    n = 1
    while f"{stem}-{n:03d}{suffix}" in taken:
        n += 1
    return f"{stem}-{n:03d}{suffix}"
