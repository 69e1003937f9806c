"""import → clean → slice → transcribe → lint, into a workspace, all-or-nothing.

Every step writes into a hidden staging folder inside the project; only when all of them succeeded are
the files moved into ``raw/``, ``clean/``, ``slices/`` and the list and reports replaced (atomically). A
failure leaves the project exactly as it was. Importing a recording that was imported before (same
bytes) replaces its earlier slices and list lines; other recordings' lines are kept.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from studio.audio.io import save_wav
from studio.audio.silence import level_stats
from studio.corpus import LIST_LANGUAGE, DatasetEntry, read_list, write_list
from studio.dataprep.clean import CleanConfig, CleanReport, clean_audio
from studio.dataprep.importer import ImportedSource, import_files
from studio.dataprep.lint import LintConfig, LintReport, ReferencePick, lint_dataset, pick_reference
from studio.dataprep.quality import SourceFacts
from studio.dataprep.slicing import Slice, SlicerConfig, parse_slice_name, slice_audio
from studio.dataprep.transcribe import LANGUAGES, Transcriber, Transcript, WhisperTranscriber, transcribe_clips
from studio.errors import AudioError
from studio.workspace import Workspace, atomic_write_json

_LOGGER = logging.getLogger(__name__)
ProgressFn = Callable[[str, float, str], None]
SOURCES_FILE = "sources.json"


@dataclass
class PrepOptions:
    language: str = "auto"  # auto | zh | en | ja
    denoise: float = 0.0  # 0 = off … 1 = full strength
    asr_model: str | None = None
    slice: bool = True
    transcribe: bool = True
    speaker: str | None = None  # default: the project name
    adapt_threshold: bool = True  # raise the slicer threshold above a loud noise floor
    clean: CleanConfig = field(default_factory=CleanConfig)
    slicer: SlicerConfig = field(default_factory=SlicerConfig)
    lint: LintConfig = field(default_factory=LintConfig)

    def __post_init__(self) -> None:
        if self.language not in LANGUAGES:
            raise ValueError(f"language must be one of {LANGUAGES}, got {self.language!r}")
        self.clean.denoise = float(self.denoise)
        self.clean.__post_init__()


@dataclass(frozen=True)
class SourceReport:
    source: ImportedSource
    clean: CleanReport
    threshold_db: float
    slices: tuple[str, ...]

    def to_dict(self) -> dict:
        return {
            **self.source.to_dict(),
            "clean": self.clean.to_dict(),
            "threshold_db": round(self.threshold_db, 2),
            "slices": list(self.slices),
        }


@dataclass
class PrepReport:
    workspace: str
    dataset_list: Path
    sources: list[SourceReport]
    entries: int  # lines in the list after this run
    new_slices: int
    lint: LintReport
    reference: ReferencePick | None
    timings_s: dict[str, float]

    def to_dict(self) -> dict:
        return {
            "workspace": self.workspace,
            "dataset_list": str(self.dataset_list),
            "sources": [s.to_dict() for s in self.sources],
            "entries": self.entries,
            "new_slices": self.new_slices,
            "lint": self.lint.to_dict(),
            "reference": asdict(self.reference) if self.reference else None,
            "timings_s": {k: round(v, 3) for k, v in self.timings_s.items()},
        }

    def summary(self) -> str:
        """A few lines for a person."""
        counts = Counter(f.severity for f in self.lint.findings if f.clip)
        lines = [
            f"{self.new_slices} new clip(s) from {len(self.sources)} recording(s); {self.entries} in {self.dataset_list}",
            f"usable speech: {self.lint.usable_minutes:.1f} of {self.lint.total_minutes:.1f} min; "
            f"{counts.get('error', 0)} error(s), {counts.get('warning', 0)} warning(s)",
        ]
        for s in self.sources:
            c = s.clean
            lines.append(
                f"  {s.source.stem}: {s.source.duration_s:.1f} s, loudness {c.loudness_before_lufs:.1f} → "
                f"{c.loudness_after_lufs:.1f} LUFS, SNR {c.snr_before_db:.0f} → {c.snr_after_db:.0f} dB"
            )
            lines.extend(f"    [warning] {w}" for w in source_warnings(s.source))
        for f in self.lint.findings:
            if f.severity != "info" or f.clip is None:
                lines.append(f"  [{f.severity}] {f.clip or 'dataset'}: {f.message} {f.fix}")
        if self.reference:
            lines.append(
                f"suggested reference: {Path(self.reference.audio_path).name} ({'; '.join(self.reference.reasons)})"
            )
        return "\n".join(lines)


def source_warnings(source: ImportedSource) -> list[str]:
    """What is wrong with a recording as it arrived (format, clipping): said once per take in the report."""
    out = []
    fmt = source.input_format
    if fmt.problems:
        out.append(
            f"{source.original.name} is {fmt.describe()} (telephone quality or below): the voice will sound "
            "muffled. Record at 44.1/48 kHz, 16-bit or more if you can."
        )
    if source.clipped_fraction >= LintConfig().clip_warn:
        out.append(
            f"{source.original.name}: {source.clipped_fraction:.1%} of the samples are clipped (recorded too loud); "
            "the clips cut from it are flagged."
        )
    return out


def run_prep(
    inputs: Sequence[Path | str],
    workspace: Workspace,
    options: PrepOptions | None = None,
    *,
    transcriber: Transcriber | None = None,
    on_progress: ProgressFn | None = None,
) -> PrepReport:
    """Prepare ``inputs`` into ``workspace``; see the module docstring. Raises a StudioError on bad input."""
    opts = options or PrepOptions()
    progress = on_progress or (lambda stage, fraction, message: None)
    if opts.transcribe and transcriber is None:
        transcriber = WhisperTranscriber(opts.asr_model)  # fails now, before any work, if no model is found
    existed = workspace.exists()
    staging = workspace.staging_dir()
    timings: dict[str, float] = {}
    try:
        sources_state = _load_json(workspace.reports_dir / SOURCES_FILE)
        known = {v["sha256"]: k for k, v in sources_state.items()}
        t0 = time.perf_counter()
        imported = import_files(inputs, staging / "raw", taken=set(sources_state), known=known, on_progress=progress)
        timings["import"] = time.perf_counter() - t0
        reports, clips = _clean_and_slice(imported, staging, opts, progress, timings)
        asr = _transcribe(clips, transcriber, opts, progress, timings)
        speaker = opts.speaker or workspace.name
        new_entries = [_entry(workspace, name, speaker, asr.get(name), opts) for name, _, _ in clips]
        replaced = {s.source.stem for s in reports}
        old_entries = _existing_entries(workspace, replaced)
        t0 = time.perf_counter()
        progress("lint", 0.0, "checking the clips")
        staged = [_restage(e, staging) for e in new_entries]
        asr_all = {**_load_json(workspace.asr_report), **{k: v.to_dict() for k, v in asr.items()}}
        facts = SourceFacts.from_sources({**sources_state, **{r.source.stem: r.source.to_dict() for r in reports}})
        lint = lint_dataset(old_entries + staged, asr_all, opts.lint, facts)
        reference = pick_reference(old_entries + staged, lint, asr_all, opts.lint)
        if reference is not None:
            reference = _final_reference(reference, workspace)
        timings["lint"] = time.perf_counter() - t0
        progress("lint", 1.0, f"{len(lint.errors)} error(s)")
        report = PrepReport(
            workspace.name,
            workspace.dataset_list,
            reports,
            len(old_entries) + len(new_entries),
            len(new_entries),
            lint,
            reference,
            timings,
        )
        _commit(workspace, staging, old_entries + new_entries, report, asr_all, sources_state, replaced)
        progress("save", 1.0, f"saved {workspace.dataset_list}")
        return report
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        if not existed and workspace.dir.is_dir() and not any(workspace.dir.iterdir()):
            workspace.dir.rmdir()
        raise


def _clean_and_slice(
    imported: list[tuple[ImportedSource, np.ndarray]],
    staging: Path,
    opts: PrepOptions,
    progress: ProgressFn,
    timings: dict,
) -> tuple[list[SourceReport], list[tuple[str, np.ndarray, int]]]:
    reports: list[SourceReport] = []
    clips: list[tuple[str, np.ndarray, int]] = []
    t_clean = t_slice = 0.0
    for i, (source, audio) in enumerate(imported):
        progress("clean", i / len(imported), f"cleaning {source.stem}")
        t0 = time.perf_counter()
        clean, creport = clean_audio(audio, source.sample_rate, opts.clean)
        sr = opts.clean.sample_rate
        save_wav(staging / "clean" / f"{source.stem}.wav", clean, sr)
        t_clean += time.perf_counter() - t0
        progress("slice", i / len(imported), f"slicing {source.stem}")
        t0 = time.perf_counter()
        cfg = slicer_config(clean, sr, opts)
        pieces = slice_audio(clean, sr, cfg) if opts.slice else [Slice(0, len(clean), sr)]
        if not pieces:
            raise AudioError(
                f"{source.original.name}: no speech found above {cfg.threshold_db:.0f} dB.",
                hint="Record louder or closer to the microphone.",
            )
        names = []
        for piece in pieces:
            name = piece.file_name(source.stem)
            save_wav(staging / "slices" / name, clean[piece.start : piece.end], sr)
            clips.append((name, clean[piece.start : piece.end], sr))
            names.append(name)
        t_slice += time.perf_counter() - t0
        reports.append(SourceReport(source, creport, cfg.threshold_db, tuple(names)))
    timings["clean"], timings["slice"] = t_clean, t_slice
    progress("slice", 1.0, f"{len(clips)} clip(s)")
    return reports, clips


def slicer_config(clean: np.ndarray, sr: int, opts: PrepOptions) -> SlicerConfig:
    """Upstream's threshold, raised to 3 dB above the noise floor when the floor would otherwise count as sound."""
    cfg = opts.slicer
    if not opts.adapt_threshold:
        return cfg
    floor = level_stats(clean, sr).noise_db
    if floor + 3.0 > cfg.threshold_db:
        _LOGGER.info("noise floor %.1f dB: slicer threshold raised from %.1f dB", floor, cfg.threshold_db)
        return SlicerConfig(**{**asdict(cfg), "threshold_db": floor + 3.0})
    return cfg


def _transcribe(
    clips: list[tuple[str, np.ndarray, int]],
    transcriber: Transcriber | None,
    opts: PrepOptions,
    progress: ProgressFn,
    timings: dict,
) -> dict[str, Transcript]:
    out: dict[str, Transcript] = {}
    if transcriber is None or not opts.transcribe:
        return out
    t0 = time.perf_counter()
    lang = None if opts.language == "auto" else opts.language
    progress("transcribe", 0.0, f"transcribing {len(clips)} clip(s)")
    heard = transcribe_clips(
        transcriber,
        [(audio, sr) for _, audio, sr in clips],
        lang,
        lambda fraction: progress("transcribe", fraction, f"transcribing ({fraction:.0%})"),
    )
    out = {name: t for (name, _, _), t in zip(clips, heard, strict=True)}
    timings["transcribe"] = time.perf_counter() - t0
    progress("transcribe", 1.0, f"{len(out)} clip(s) transcribed")
    return out


def _entry(workspace: Workspace, name: str, speaker: str, heard: Transcript | None, opts: PrepOptions) -> DatasetEntry:
    if opts.language != "auto":
        language = opts.language
    elif heard is not None and heard.language in LIST_LANGUAGE:
        language = heard.language
    else:
        language = "en"
    return DatasetEntry(workspace.slices_dir / name, speaker, language, heard.text if heard else "")


def _restage(entry: DatasetEntry, staging: Path) -> DatasetEntry:
    return DatasetEntry(staging / "slices" / entry.name, entry.speaker, entry.language, entry.text)


def _final_reference(pick: ReferencePick, workspace: Workspace) -> ReferencePick:
    final = workspace.slices_dir / Path(pick.audio_path).name
    return ReferencePick(str(final), pick.text, pick.language, pick.duration_s, pick.score, pick.reasons, pick.notes)


def _existing_entries(workspace: Workspace, replaced: set[str]) -> list[DatasetEntry]:
    if not workspace.dataset_list.is_file():
        return []
    keep = []
    for entry in read_list(workspace.dataset_list, strict=False):
        parsed = parse_slice_name(entry.name)
        if parsed is None or parsed[0] not in replaced:
            keep.append(entry)
    return keep


def _load_json(path: Path) -> dict:
    import json

    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        _LOGGER.warning("ignoring damaged %s", path)
        return {}


def _commit(
    workspace: Workspace,
    staging: Path,
    entries: list[DatasetEntry],
    report: PrepReport,
    asr: dict,
    sources_state: dict,
    replaced: set[str],
) -> None:
    """Move the staged files into place, then replace the list and reports (each atomically)."""
    workspace.ensure()
    new_slices = {p.name for p in (staging / "slices").glob("*.wav")}
    for sub, target in (("raw", workspace.raw_dir), ("clean", workspace.clean_dir), ("slices", workspace.slices_dir)):
        for path in sorted((staging / sub).glob("*")):
            os.replace(path, target / path.name)
    write_list(workspace.dataset_list, entries)
    for stem_source in report.sources:
        sources_state[stem_source.source.stem] = stem_source.to_dict()
    live = {e.name for e in entries}
    atomic_write_json(workspace.reports_dir / SOURCES_FILE, sources_state)
    atomic_write_json(workspace.asr_report, {k: v for k, v in asr.items() if k in live})
    atomic_write_json(workspace.lint_report, report.lint.to_dict())
    atomic_write_json(workspace.prep_report, report.to_dict())
    for path in workspace.slices_dir.glob("*.wav"):  # earlier slices of re-imported recordings
        parsed = parse_slice_name(path.name)
        if parsed and parsed[0] in replaced and path.name not in new_slices:
            path.unlink()
    shutil.rmtree(staging, ignore_errors=True)
