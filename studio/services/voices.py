"""The voice library: every voice the studio can speak with, by name.

A voice lives in ``<workspace>/voices/<name>/``::

    voice.json     name, languages, reference transcript and language, origin, created, model version
    gpt.ckpt       GPT stage in the official GPT-SoVITS export format (merged weights)
    sovits.pth     SoVITS stage in the official GPT-SoVITS export format (merged weights)
    reference.wav  the default reference clip (3–10 s)

Keeping the official formats on disk means a voice here is also a voice for GPT-SoVITS, and the same safe
loaders serve both. Voice packs (zip) are the exchange format; importing one writes such a folder.
"""

from __future__ import annotations

import functools
import json
import shutil
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath

from studio.errors import StudioError, VoicePackError, WorkspaceError
from studio.workspace import atomic_write_text, validate_name

VOICE_FILE = "voice.json"


@dataclass(frozen=True)
class VoiceModels:
    """The two model files of a voice: a GPT (.ckpt) and a SoVITS generator (.pth)."""

    gpt_path: Path
    sovits_path: Path

    def key(self) -> tuple[str, str, float, float]:
        return (
            str(self.gpt_path.resolve()),
            str(self.sovits_path.resolve()),
            self.gpt_path.stat().st_mtime,
            self.sovits_path.stat().st_mtime,
        )


def _safe_relative(rel: str) -> Path:
    """A relative path inside a voice folder; refuses absolute paths, ``..`` and reserved file names."""
    parts = PurePosixPath(rel).parts
    if not parts or PurePosixPath(rel).is_absolute() or "\\" in rel or any(p in ("", ".", "..") for p in parts):
        raise VoicePackError(f"Invalid file name inside a voice folder: {rel!r}.")
    if parts[0] in ("gpt.ckpt", "sovits.pth", "reference.wav", VOICE_FILE):
        raise VoicePackError(f"{rel!r} would replace a voice's own file.")
    return Path(*parts)


@functools.lru_cache(maxsize=256)
def _detected_version(path: str, mtime_ns: int, size: int) -> str:
    """The release of a SoVITS file, read once per file version (mtime and size are the cache key; the picker
    asks on every refresh)."""
    from studio.models.sovits.checkpoint import detect_sovits_version

    return detect_sovits_version(path).version


class VoiceNotFoundError(StudioError):
    """No voice of that name in the library."""


@dataclass
class VoiceInfo:
    name: str
    folder: Path
    reference_text: str = ""
    reference_lang: str = "auto"
    languages: list[str] = field(default_factory=list)
    origin: str = "trained"  # trained | imported-pack | imported-official
    created: str = ""
    description: str = ""
    # more reference clips besides reference.wav: {"file": "references/<f>", "text", "language", "emotion"}
    references: list[dict] = field(default_factory=list)
    consent: dict | None = None  # {"speaker_name", "statement", "date", "confirmed"} (voice pack consent record)
    base_model: dict = field(default_factory=dict)  # stage → {"file", "sha256"} of the base it was trained on
    training: dict = field(default_factory=dict)  # training summary (epochs, steps, losses, …)
    source: dict = field(default_factory=dict)  # where it came from, e.g. {"workspace": …, "run_id": …}
    model_version: str = ""  # SoVITS release: v1, v2, v2Pro, v2ProPlus ("" in voices added before it was kept)

    @property
    def gpt_path(self) -> Path:
        return self.folder / "gpt.ckpt"

    @property
    def sovits_path(self) -> Path:
        return self.folder / "sovits.pth"

    @property
    def reference_audio(self) -> Path:
        return self.folder / "reference.wav"

    @property
    def models(self) -> VoiceModels:
        return VoiceModels(self.gpt_path, self.sovits_path)

    def to_json(self) -> str:
        data = asdict(self)
        data.pop("folder")
        return json.dumps(data, ensure_ascii=False, indent=2)


class VoiceLibrary:
    """Lists, reads, adds and deletes voices under ``<workspace>/voices``."""

    def __init__(self, workspace_root: Path) -> None:
        self.root = Path(workspace_root) / "voices"

    def list(self) -> list[VoiceInfo]:
        if not self.root.is_dir():
            return []
        voices = []
        for folder in sorted(self.root.iterdir()):
            if (folder / VOICE_FILE).is_file():
                try:
                    voices.append(self._read(folder))
                except StudioError:
                    continue  # a damaged entry is skipped, never fatal for the listing
        return voices

    def names(self) -> list[str]:
        return [v.name for v in self.list()]

    def get(self, name: str) -> VoiceInfo:
        folder = self.root / validate_name(name)
        if not (folder / VOICE_FILE).is_file():
            known = ", ".join(self.names()) or "none yet"
            raise VoiceNotFoundError(f"There is no voice named {name!r} (voices: {known}).")
        return self._read(folder)

    def _read(self, folder: Path) -> VoiceInfo:
        try:
            data = json.loads((folder / VOICE_FILE).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise VoicePackError(f"The voice in {folder} has a damaged {VOICE_FILE}: {exc}") from exc
        known = {k: data[k] for k in VoiceInfo.__dataclass_fields__ if k in data and k != "folder"}
        return VoiceInfo(folder=folder, **known)

    def add(
        self,
        info: VoiceInfo,
        *,
        gpt: Path,
        sovits: Path,
        reference: Path,
        overwrite: bool = False,
        extra_files: Mapping[str, Path] | None = None,
    ) -> VoiceInfo:
        """Copy the files of a voice into the library (atomically: a half-added voice never appears).

        ``extra_files`` maps a relative path inside the voice folder (``references/01.wav``) to a file to copy.
        """
        name = validate_name(info.name)
        _check_reference_length(name, reference)
        extras = {_safe_relative(rel): Path(src) for rel, src in (extra_files or {}).items()}
        target = self.root / name
        if target.exists() and not overwrite:
            raise WorkspaceError(
                f"A voice named {name!r} already exists.", hint="Pick another name or delete it first."
            )
        self.root.mkdir(parents=True, exist_ok=True)
        staging = self.root / f".{name}.adding"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
        try:
            shutil.copyfile(gpt, staging / "gpt.ckpt")
            shutil.copyfile(sovits, staging / "sovits.pth")
            shutil.copyfile(reference, staging / "reference.wav")
            for rel, src in extras.items():
                (staging / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src, staging / rel)
            info = VoiceInfo(**{**asdict(info), "folder": target, "name": name})
            atomic_write_text(staging / VOICE_FILE, info.to_json())
            if target.exists():
                shutil.rmtree(target)
            staging.rename(target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return info

    def model_version(self, info: VoiceInfo) -> str:
        """The voice's release (``v2``, ``v2ProPlus``, …): as recorded, else read from its SoVITS file's header
        and weights (voices added before the version was kept); ``"?"`` when the file cannot be read."""
        if info.model_version:
            return info.model_version
        try:
            st = info.sovits_path.stat()
            return _detected_version(str(info.sovits_path), st.st_mtime_ns, st.st_size)
        except (OSError, StudioError):
            return "?"

    def reference_clips(self, info: VoiceInfo) -> list[tuple[Path, dict]]:
        """Every reference clip of a voice, the default first: (path, {"text", "language", "emotion"})."""
        clips = [(info.reference_audio, {"text": info.reference_text, "language": info.reference_lang, "emotion": ""})]
        for entry in info.references:
            if isinstance(entry, dict) and isinstance(entry.get("file"), str):
                path = info.folder / _safe_relative(entry["file"])
                if path.is_file():
                    clips.append((path, {k: str(entry.get(k, "")) for k in ("text", "language", "emotion")}))
        return clips

    def delete(self, name: str) -> None:
        info = self.get(name)
        shutil.rmtree(info.folder)


def _check_reference_length(name: str, reference: Path) -> None:
    """A voice's reference must be at least 3 s: a shorter one is refused by every synthesis (the 3–10 s rule),
    so a voice added with it could never speak. A longer one is kept: synthesis can trim it."""
    from studio.audio.io import probe_audio
    from studio.inference.reference import MAX_REFERENCE_S, MIN_REFERENCE_S

    seconds = probe_audio(reference).duration_s
    if seconds < MIN_REFERENCE_S:
        raise VoicePackError(
            f"Voice {name!r}: its reference clip is {seconds:.1f} s long; a reference must be "
            f"{MIN_REFERENCE_S:g}–{MAX_REFERENCE_S:g} s of the voice.",
            hint="Add a 3–10 s recording of the voice as its reference, then import it again.",
        )
