"""Proofreading a project's dataset list: edit text, delete, merge neighbours, split at a time, undo.

Every operation is saved at once (list written atomically, new audio written before the list that
names it). Before each operation the current list and every file the operation removes are kept in
``.history/<n>/``, so :meth:`Proofreader.undo` can put the last operation back, even after a restart.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np

from studio.audio.io import load_audio, save_wav
from studio.corpus import DatasetEntry, read_list, write_list
from studio.dataprep.slicing import parse_slice_name, slice_file_name
from studio.errors import DatasetError
from studio.workspace import Workspace, atomic_write_json

MAX_UNDO = 20
_NO_SPACE_LANGS = ("zh", "ja", "yue")


class Proofreader:
    """Edits ``workspace.dataset_list`` and its clips in ``workspace.slices_dir``."""

    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace
        if not workspace.dataset_list.is_file():
            raise DatasetError(
                f"Project {workspace.name!r} has no dataset list yet.",
                hint="Run `studio prep` first.",
                ui_hint="Prepare the recordings in the Prepare tab first.",
            )
        self.entries: list[DatasetEntry] = read_list(workspace.dataset_list)

    # ---- operations ---------------------------------------------------------------------------
    def edit_text(self, index: int, text: str) -> DatasetEntry:
        """Save the clip's text; saving also marks it as checked by a person (no longer a doubtful transcript)."""
        entry = self._get(index)
        self._checkpoint("edit", removed=[])
        self.entries[index] = entry.with_text(" ".join(text.split()))
        self._save()
        self._mark_proofread(entry.name)
        return self.entries[index]

    def delete(self, index: int) -> None:
        entry = self._get(index)
        self._checkpoint("delete", removed=[entry.audio_path])
        del self.entries[index]
        self._save()
        self._remove_files([entry.audio_path])

    def merge_next(self, index: int) -> DatasetEntry:
        """Join clip ``index`` with clip ``index + 1`` (audio and text) into one clip."""
        first, second = self._get(index), self._get(index + 1)
        a, sr = load_audio(first.audio_path)
        b, sr_b = load_audio(second.audio_path, sample_rate=sr)
        pa, pb = parse_slice_name(first.name), parse_slice_name(second.name)
        if pa and pb and pa[0] == pb[0] and pa[2] <= pb[1]:
            gap = np.zeros(pb[1] - pa[2], dtype=np.float32)  # the pause the slicer had removed
            name = slice_file_name(pa[0], pa[1], pb[2])
        else:
            gap = np.zeros(int(0.3 * sr), dtype=np.float32)
            name = f"{first.audio_path.stem}+{second.audio_path.stem}.wav"
        target = self.workspace.slices_dir / name
        sep = "" if first.language in _NO_SPACE_LANGS else " "
        merged = DatasetEntry(target, first.speaker, first.language, f"{first.text}{sep}{second.text}".strip())
        self._checkpoint("merge", removed=[first.audio_path, second.audio_path], created=[target])
        self.workspace.slices_dir.mkdir(parents=True, exist_ok=True)
        save_wav(target, np.concatenate([a, gap, b]), sr)
        self.entries[index : index + 2] = [merged]
        self._save()
        self._remove_files([p for p in (first.audio_path, second.audio_path) if p != target])
        return merged

    def split(self, index: int, at_s: float, texts: tuple[str, str] | None = None) -> tuple[DatasetEntry, DatasetEntry]:
        """Cut clip ``index`` at ``at_s`` seconds; the text is divided in proportion unless ``texts`` is given."""
        entry = self._get(index)
        audio, sr = load_audio(entry.audio_path)
        cut = int(round(at_s * sr))
        if not 0 < cut < len(audio):
            raise DatasetError(f"Cannot split {entry.name} at {at_s:.2f} s: it is {len(audio) / sr:.2f} s long.")
        parsed = parse_slice_name(entry.name)
        if parsed:
            names = (
                slice_file_name(parsed[0], parsed[1], parsed[1] + cut),
                slice_file_name(parsed[0], parsed[1] + cut, parsed[2]),
            )
        else:
            names = (f"{entry.audio_path.stem}-a.wav", f"{entry.audio_path.stem}-b.wav")
        left_text, right_text = texts or _divide_text(entry.text, cut / len(audio), entry.language)
        paths = [self.workspace.slices_dir / n for n in names]
        self._checkpoint("split", removed=[entry.audio_path], created=paths)
        save_wav(paths[0], audio[:cut], sr)
        save_wav(paths[1], audio[cut:], sr)
        pieces = (
            DatasetEntry(paths[0], entry.speaker, entry.language, left_text),
            DatasetEntry(paths[1], entry.speaker, entry.language, right_text),
        )
        self.entries[index : index + 1] = list(pieces)
        self._save()
        self._remove_files([entry.audio_path])
        return pieces

    def undo(self) -> str | None:
        """Revert the last operation; returns its name, or ``None`` when there is nothing to undo."""
        steps = self._steps()
        if not steps:
            return None
        step = steps[-1]
        meta = json.loads((step / "op.json").read_text(encoding="utf-8"))
        for name in meta["removed"]:
            kept = step / "files" / name
            if kept.is_file():
                os.replace(kept, self.workspace.slices_dir / name)
        os.replace(step / "dataset.list", self.workspace.dataset_list)
        restored = {e.name for e in read_list(self.workspace.dataset_list)}
        for name in meta["created"]:
            path = self.workspace.slices_dir / name
            if name not in restored and path.is_file():
                path.unlink()
        shutil.rmtree(step)
        self.entries = read_list(self.workspace.dataset_list)
        return str(meta["op"])

    # ---- internals ----------------------------------------------------------------------------
    def _get(self, index: int) -> DatasetEntry:
        if not 0 <= index < len(self.entries):
            raise DatasetError(f"There is no clip number {index} (the list has {len(self.entries)}).")
        return self.entries[index]

    def _steps(self) -> list[Path]:
        folder = self.workspace.history_dir
        steps = [p for p in folder.iterdir() if p.is_dir() and p.name.isdigit()] if folder.is_dir() else []
        return sorted(steps, key=lambda p: int(p.name))

    def _checkpoint(self, op: str, removed: list[Path], created: list[Path] | None = None) -> None:
        steps = self._steps()
        number = int(steps[-1].name) + 1 if steps else 1
        step = self.workspace.history_dir / f"{number:06d}"
        (step / "files").mkdir(parents=True)
        shutil.copyfile(self.workspace.dataset_list, step / "dataset.list")
        for path in removed:
            if path.is_file() and self.workspace.contains(path):
                shutil.copyfile(path, step / "files" / path.name)
        atomic_write_json(
            step / "op.json",
            {"op": op, "removed": [p.name for p in removed], "created": [p.name for p in created or []]},
        )
        for old in steps[: max(0, len(steps) + 1 - MAX_UNDO)]:
            shutil.rmtree(old, ignore_errors=True)

    def _save(self) -> None:
        write_list(self.workspace.dataset_list, self.entries)

    def _mark_proofread(self, name: str) -> None:
        path = self.workspace.asr_report
        try:
            records = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return
        if isinstance(records, dict) and isinstance(records.get(name), dict):
            records[name]["proofread"] = True
            atomic_write_json(path, records)

    def _remove_files(self, paths: list[Path]) -> None:
        live = {e.audio_path.resolve() for e in self.entries}
        for path in paths:
            if path.resolve() not in live and self.workspace.contains(path):
                path.unlink(missing_ok=True)


def _divide_text(text: str, fraction: float, language: str) -> tuple[str, str]:
    """Split ``text`` at about ``fraction`` of its length, on a word boundary where words are spaced."""
    if language in _NO_SPACE_LANGS:
        k = int(round(len(text) * fraction))
        return text[:k].strip(), text[k:].strip()
    words = text.split()
    k = min(max(1, int(round(len(words) * fraction))), max(1, len(words) - 1)) if len(words) > 1 else len(words)
    return " ".join(words[:k]), " ".join(words[k:])
