"""Import recordings: check that each decodes, then copy it byte for byte (the original is never touched)."""

from __future__ import annotations

import hashlib
import logging
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from studio.audio.io import MAX_DURATION_S, AudioInfo, load_audio, probe_audio
from studio.audio.silence import level_stats
from studio.dataprep.quality import ClippingMap, InputFormat, bits_per_sample, clipping_map
from studio.dataprep.slicing import safe_stem
from studio.errors import AudioError

_LOGGER = logging.getLogger(__name__)
ProgressFn = Callable[[str, float, str], None]


@dataclass(frozen=True)
class ImportedSource:
    """One imported recording: where it came from, its copy, and what it holds."""

    stem: str  # the name its clean file and slices are derived from
    original: Path
    raw_path: Path  # the byte-for-byte copy
    sha256: str
    sample_rate: int
    channels: int
    duration_s: float
    clipped_fraction: float
    bits: int | None = None  # bit depth of PCM/companded input; None for compressed or float formats
    clipping: ClippingMap | None = None  # measured on the original decode, before any cleaning

    @property
    def input_format(self) -> InputFormat:
        return InputFormat(self.sample_rate, self.bits)

    def to_dict(self) -> dict:
        return {
            "stem": self.stem,
            "original": str(self.original),
            "raw_file": self.raw_path.name,
            "sha256": self.sha256,
            "sample_rate": self.sample_rate,
            "channels": self.channels,
            "duration_s": round(self.duration_s, 3),
            "clipped_fraction": round(self.clipped_fraction, 5),
            "bits": self.bits,
            **({"clipping": self.clipping.to_dict()} if self.clipping is not None else {}),
        }


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def read_source(path: Path, max_duration_s: float = MAX_DURATION_S) -> tuple[AudioInfo, np.ndarray, int]:
    """Decode a recording to mono at its own rate; refuse silence (clear :class:`AudioError`)."""
    info = probe_audio(path)
    audio, sr = load_audio(path, max_duration_s=max_duration_s)
    if level_stats(audio, sr).speech_db < -70.0:
        raise AudioError(
            f"{Path(path).name} is silent: there is no sound in it.", hint="Check the microphone and record again."
        )
    return info, audio, sr


def import_files(
    inputs: Sequence[Path | str],
    raw_dir: Path,
    *,
    taken: set[str] | None = None,
    known: dict[str, str] | None = None,
    on_progress: ProgressFn | None = None,
) -> list[tuple[ImportedSource, np.ndarray]]:
    """Validate and copy every input into ``raw_dir``; returns each source with its decoded mono audio.

    ``taken`` holds stems already used in the project, so two files called ``take.wav`` get ``take`` and
    ``take-2``; ``known`` maps the sha256 of recordings imported before to their stem, so importing the same
    file again re-uses (and replaces) its earlier results. Any unreadable input raises :class:`AudioError` before anything else is done with it.
    """
    taken = set(taken or ())
    out: list[tuple[ImportedSource, np.ndarray]] = []
    paths = [Path(p) for p in inputs]
    if not paths:
        raise AudioError("No input files were given.", hint="Pass one or more recordings.")
    for i, path in enumerate(paths):
        if on_progress:
            on_progress("import", i / len(paths), f"reading {path.name}")
        info, audio, sr = read_source(path)
        digest = sha256_file(path)
        stem = (known or {}).get(digest) or _unique(safe_stem(path.stem), taken)
        taken.add(stem)
        raw_path = raw_dir / f"{stem}{path.suffix.lower()}"
        raw_dir.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, raw_path)
        clipping = clipping_map(audio, sr)
        source = ImportedSource(
            stem=stem,
            original=path.resolve(),
            raw_path=raw_path,
            sha256=digest,
            sample_rate=sr,
            channels=info.channels,
            duration_s=len(audio) / sr,
            clipped_fraction=clipping.damage().fraction,
            bits=bits_per_sample(info.codec),
            clipping=clipping,
        )
        _LOGGER.info("imported %s as %s (%.1f s, %d Hz)", path, stem, source.duration_s, sr)
        out.append((source, audio))
    if on_progress:
        on_progress("import", 1.0, f"imported {len(out)} file(s)")
    return out


def _unique(stem: str, taken: set[str]) -> str:
    if stem not in taken:
        return stem
    n = 2
    while f"{stem}-{n}" in taken:
        n += 1
    return f"{stem}-{n}"
