"""Silence-based slicing of a long recording into training clips.

Behaviour (upstream's slicer parameters and defaults, SPEC §10 0b; the code is ours):

* the RMS level is measured every ``hop_ms`` (10 ms); frames under ``threshold_db`` (−34 dB) are quiet;
* a quiet run of at least ``min_interval_ms`` (300 ms) is a candidate cut; a cut is made only once the
  clip since the previous cut is at least ``min_length_ms`` (4 s) long, so short phrases are merged;
* at most ``max_sil_kept_ms`` (500 ms) of each pause stays attached to the clips on either side; the
  cut itself falls on the quietest frame;
* on top of upstream: no clip exceeds ``max_length_ms`` (10 s): longer ones are split at their quietest
  point, and a trailing fragment shorter than ``min_fragment_ms`` is merged into its neighbour when the
  result still fits the cap;
* clips are named ``<source>_<start>_<end>.wav`` with 10-digit sample offsets in the (clean) source, so
  a re-run with the same input and settings gives the same names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from studio.audio.silence import frame_rms_db, silent_runs


@dataclass
class SlicerConfig:
    threshold_db: float = -34.0
    min_length_ms: int = 4000
    min_interval_ms: int = 300
    hop_ms: int = 10
    max_sil_kept_ms: int = 500
    max_length_ms: int = 10000
    min_fragment_ms: int = 1000

    def __post_init__(self) -> None:
        if not self.min_length_ms >= self.min_interval_ms >= self.hop_ms > 0:
            raise ValueError("slicer needs min_length_ms >= min_interval_ms >= hop_ms > 0")
        if self.max_sil_kept_ms < self.hop_ms or self.max_length_ms < self.min_length_ms:
            raise ValueError("slicer needs max_sil_kept_ms >= hop_ms and max_length_ms >= min_length_ms")


@dataclass(frozen=True)
class Slice:
    """One clip: samples ``[start, end)`` of the source."""

    start: int
    end: int
    sample_rate: int

    @property
    def duration_s(self) -> float:
        return (self.end - self.start) / self.sample_rate

    @property
    def start_s(self) -> float:
        return self.start / self.sample_rate

    @property
    def end_s(self) -> float:
        return self.end / self.sample_rate

    def file_name(self, source_stem: str) -> str:
        return slice_file_name(source_stem, self.start, self.end)


def slice_file_name(source_stem: str, start: int, end: int) -> str:
    return f"{safe_stem(source_stem)}_{start:010d}_{end:010d}.wav"


_NAME_RE = re.compile(r"^(?P<stem>.+)_(?P<start>\d{10})_(?P<end>\d{10})\.wav$")


def parse_slice_name(name: str) -> tuple[str, int, int] | None:
    """``"take_0000032000_0000160000.wav"`` → ``("take", 32000, 160000)``; ``None`` for other names."""
    m = _NAME_RE.match(name)
    return (m["stem"], int(m["start"]), int(m["end"])) if m else None


def safe_stem(stem: str) -> str:
    """A file-name-safe version of a source name (unicode letters kept; separators and reserved characters → ``_``)."""
    cleaned = re.sub(r'[<>:"/\\|?*\x00-\x1f\s]+', "_", stem).strip("._")
    return cleaned[:80] or "audio"


def slice_audio(audio: np.ndarray, sample_rate: int, config: SlicerConfig | None = None) -> list[Slice]:
    """Cut mono ``(T,)`` audio at pauses; returns the clips in order (none if the audio is all quiet)."""
    cfg = config or SlicerConfig()
    hop = max(1, round(sample_rate * cfg.hop_ms / 1000))
    levels = frame_rms_db(audio, hop)
    n_frames = levels.shape[0]
    ms = lambda value: max(1, round(value / cfg.hop_ms))  # noqa: E731 - frames in a duration
    min_interval, keep = ms(cfg.min_interval_ms), ms(cfg.max_sil_kept_ms)
    if (levels >= cfg.threshold_db).sum() == 0:
        return []
    # Sound regions [a, b) in frames, separated by pauses long enough to cut at.
    cuts: list[tuple[int, int, int, int]] = []  # (end of the clip before a pause, start of the next, pause start, end)
    head, tail = 0, n_frames
    for start, end in silent_runs(levels, cfg.threshold_db):
        if start == 0:
            head = _quietest(levels, max(0, end - keep), end)
        elif end == n_frames:
            tail = _quietest(levels, start, min(n_frames, start + keep)) + 1
        elif end - start >= min_interval:
            if end - start <= 2 * keep:
                q = _quietest(levels, start, end)
                cuts.append((q, q, start, end))
            else:
                cuts.append(
                    (_quietest(levels, start, start + keep) + 1, _quietest(levels, end - keep, end), start, end)
                )
    lens = (ms(cfg.min_length_ms), ms(cfg.max_length_ms), ms(cfg.min_fragment_ms))
    pieces = _split((head, tail, 0, n_frames), cuts, levels, lens)
    pieces = _merge_fragments(pieces, ms(cfg.min_fragment_ms), ms(cfg.max_length_ms))
    total = audio.shape[0]
    return [
        Slice(min(a * hop, total), min(b * hop, total), sample_rate) for a, b in pieces if min(b * hop, total) > a * hop
    ]


def _quietest(levels: np.ndarray, a: int, b: int) -> int:
    b = max(b, a + 1)
    return a + int(np.argmin(levels[a:b]))


def _split(
    span: tuple[int, int, int, int],
    cuts: list[tuple[int, int, int, int]],
    levels: np.ndarray,
    lens: tuple[int, int, int],
) -> list[tuple[int, int]]:
    """Split the clip ``span = (a, b, pause before a starts, pause after b ends)`` recursively, longest pause first.

    A pause is used when both sides, with their pauses counted (as upstream's slicer counts them), stay at
    least ``min_len`` long, so short phrases stay merged with a neighbour; a clip still over ``max_len`` is
    split at its longest pause that leaves ``min_frag`` on each side, else at its quietest frame.
    """
    a, b, ext_a, ext_b = span
    min_len, max_len, min_frag = lens
    inside = [c for c in cuts if a < c[0] and c[1] < b]
    good = [c for c in inside if c[3] - ext_a >= min_len and ext_b - c[2] >= min_len]
    if not good and b - a > max_len:
        good = [c for c in inside if c[0] - a >= min_frag and b - c[1] >= min_frag]
        if not good:
            margin = min(min_frag, (b - a) // 4)
            cut = _quietest(levels, a + margin, b - margin)
            good = [(cut, cut, cut, cut)]
    if not good:
        return [(a, b)]
    end_here, next_start, pause_start, pause_end = max(good, key=lambda c: (c[3] - c[2], -abs((a + b) // 2 - c[0])))
    left = _split((a, end_here, ext_a, pause_end), cuts, levels, lens)
    return left + _split((next_start, b, pause_start, ext_b), cuts, levels, lens)


def _merge_fragments(pieces: list[tuple[int, int]], min_frag: int, max_len: int) -> list[tuple[int, int]]:
    """Join a fragment shorter than ``min_frag`` to a neighbour when the joined clip fits in ``max_len``."""
    out: list[tuple[int, int]] = []
    for a, b in pieces:
        if out and (b - a < min_frag or out[-1][1] - out[-1][0] < min_frag) and b - out[-1][0] <= max_len:
            out[-1] = (out[-1][0], b)
        else:
            out.append((a, b))
    return out
