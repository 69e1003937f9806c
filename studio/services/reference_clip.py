"""Check a reference clip the moment it is chosen, and cut a 3–10 s span out of a longer one.

The engine refuses references outside 3–10 s (upstream's rule) only when synthesis starts; the studio says so as
soon as the clip is picked and offers the engine's own auto-trim (the quietest point of the last second before
10 s) or any span the user picks. A cut clip is a new WAV file named after the original (``take-3.0-9.5s.wav``)
in ``<workspace>/takes/trimmed/``; the original is never changed.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from studio.audio.io import load_audio, save_wav
from studio.errors import ReferenceAudioError
from studio.inference.reference import MAX_REFERENCE_S, MIN_REFERENCE_S, auto_trim_point

__all__ = ["MAX_REFERENCE_S", "MIN_REFERENCE_S", "ReferenceCheck", "check_reference", "cut_reference"]
CUT_RATE = 32000  # the SoVITS rate: a cut clip loses nothing the models use


@dataclass(frozen=True)
class ReferenceCheck:
    """How long a clip is and, for one that is too long, where auto-trim would cut it."""

    duration_s: float
    auto_end_s: float

    @property
    def ok(self) -> bool:
        return MIN_REFERENCE_S <= self.duration_s <= MAX_REFERENCE_S

    @property
    def too_long(self) -> bool:
        return self.duration_s > MAX_REFERENCE_S


def check_reference(path: Path | str) -> ReferenceCheck:
    """The clip's length (cached per file version: the page asks on every keystroke of the text box)."""
    path = Path(path)
    stat = path.stat()
    return _check(str(path), stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=32)
def _check(path: str, _mtime: int, _size: int) -> ReferenceCheck:
    wav, rate = load_audio(path, 16000)  # (T,) float32
    end = auto_trim_point(wav, rate) if len(wav) > MAX_REFERENCE_S * rate else len(wav)
    return ReferenceCheck(duration_s=len(wav) / rate, auto_end_s=end / rate)


def cut_reference(path: Path | str, start_s: float, end_s: float, folder: Path) -> Path:
    """``[start_s, end_s)`` of ``path`` as a new WAV in ``folder``; a span outside 3–10 s is refused."""
    path = Path(path)
    length = float(end_s) - float(start_s)
    if not MIN_REFERENCE_S <= round(length, 3) <= MAX_REFERENCE_S:
        raise ReferenceAudioError(
            f"The chosen span is {length:.1f} s long; a reference must be between "
            f"{MIN_REFERENCE_S:g} and {MAX_REFERENCE_S:g} seconds.",
            hint="Move the start or the end.",
        )
    wav, rate = load_audio(path, CUT_RATE)  # (T,) float32
    first, last = int(float(start_s) * rate), min(len(wav), int(float(end_s) * rate))
    stem = path.stem.split("-trim-")[0]
    target = Path(folder) / f"{stem}-trim-{float(start_s):.1f}-{float(end_s):.1f}s.wav"
    target.parent.mkdir(parents=True, exist_ok=True)
    return save_wav(target, wav[max(0, first) : last], rate)
