"""What a recording was before cleaning: clipping and the quality of the input format.

Loudness normalisation and the true-peak limiter smooth away the flat tops that clipping leaves, so a clip
cut from a clipped take can look clean afterwards while the distortion stays audible. Clipping is therefore
measured on the **original** decode at import (:func:`clipping_map`), stored with the source in
``reports/sources.json``, and looked up for any span of it later (a slice, a split or merged clip: slice names
carry their offsets in the source). The sample rate and bit depth of the original are kept the same way, so a
telephone-quality take is flagged on every clip cut from it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

MIN_RUN = 3  # consecutive samples at the peak: a single peak sample is normal audio, a flat top is clipping
NEAR_PEAK = 0.999  # "at full scale": within 0.1 % of the signal's peak (also catches clipped-then-rescaled audio)
MIN_SAMPLE_RATE = 16000  # below this the voice loses its consonants (telephone audio is 8 kHz)
MIN_BITS = 16
_BITS = {"PCM_S8": 8, "PCM_U8": 8, "ULAW": 8, "ALAW": 8, "PCM_16": 16, "PCM_24": 24, "PCM_32": 32}
_AV_BITS = {"pcm_u8": 8, "pcm_s8": 8, "pcm_mulaw": 8, "pcm_alaw": 8, "pcm_s16le": 16, "pcm_s16be": 16}


@dataclass(frozen=True)
class ClipDamage:
    """Clipping in one span: the share of its samples in flat runs at the peak, and the longest such run."""

    fraction: float
    longest_run_ms: float
    runs: int


@dataclass(frozen=True)
class ClippingMap:
    """Where a recording is clipped, as ``[start, end)`` sample runs of the original at ``sample_rate``."""

    sample_rate: int
    length: int
    runs: tuple[tuple[int, int], ...]

    def damage(self, start_s: float = 0.0, end_s: float | None = None) -> ClipDamage:
        """Clipping within ``start_s``–``end_s`` seconds of the original (the whole take by default)."""
        lo = max(0, int(round(start_s * self.sample_rate)))
        hi = self.length if end_s is None else min(self.length, int(round(end_s * self.sample_rate)))
        if hi <= lo:
            return ClipDamage(0.0, 0.0, 0)
        lengths = [min(e, hi) - max(s, lo) for s, e in self.runs if s < hi and e > lo]
        clipped = sum(lengths)
        longest = max(lengths, default=0)
        return ClipDamage(clipped / (hi - lo), 1000.0 * longest / self.sample_rate, len(lengths))

    def to_dict(self) -> dict[str, Any]:
        return {"sample_rate": self.sample_rate, "length": self.length, "runs": [list(r) for r in self.runs]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ClippingMap:
        runs = tuple((int(s), int(e)) for s, e in data.get("runs", ()))
        return cls(int(data["sample_rate"]), int(data["length"]), runs)


def clipped_runs(audio: np.ndarray) -> list[tuple[int, int]]:
    """``[start, end)`` runs of at least ``MIN_RUN`` samples whose magnitude is at the signal's peak."""
    x = np.abs(np.asarray(audio, dtype=np.float32))
    peak = float(x.max()) if x.size else 0.0
    if peak < 0.05 or x.size < MIN_RUN:
        return []
    at_peak = np.concatenate([[False], x >= peak * NEAR_PEAK, [False]])
    edges = np.flatnonzero(np.diff(at_peak.astype(np.int8)))
    starts, ends = edges[0::2], edges[1::2]  # (R,), (R,)
    keep = ends - starts >= MIN_RUN
    return [(int(s), int(e)) for s, e in zip(starts[keep], ends[keep], strict=True)]


def clipping_map(audio: np.ndarray, sample_rate: int) -> ClippingMap:
    return ClippingMap(int(sample_rate), int(len(audio)), tuple(clipped_runs(audio)))


def clipped_fraction(audio: np.ndarray) -> float:
    """Share of samples in flat runs (≥ 3 samples) at the signal's peak: hard clipping, even after rescaling."""
    x = np.asarray(audio)
    return sum(e - s for s, e in clipped_runs(x)) / x.size if x.size else 0.0


def bits_per_sample(codec: str) -> int | None:
    """Bit depth of an uncompressed or companded codec name from :func:`studio.audio.io.probe_audio`; None for
    lossy or float formats, where it says nothing about quality."""
    name = codec[3:] if codec.startswith("av:") else codec
    return _AV_BITS.get(name) if codec.startswith("av:") else _BITS.get(name.upper())


@dataclass(frozen=True)
class InputFormat:
    """The format a recording arrived in (before conversion to 32 kHz float)."""

    sample_rate: int
    bits: int | None  # None: compressed or float, unknown/irrelevant

    @property
    def problems(self) -> tuple[str, ...]:
        """``"low_sample_rate"`` and/or ``"low_bit_depth"``."""
        out = []
        if self.sample_rate < MIN_SAMPLE_RATE:
            out.append("low_sample_rate")
        if self.bits is not None and self.bits < MIN_BITS:
            out.append("low_bit_depth")
        return tuple(out)

    def describe(self) -> str:
        """E.g. ``8 kHz, 8-bit``."""
        rate = f"{self.sample_rate / 1000:g} kHz"
        return f"{rate}, {self.bits}-bit" if self.bits else rate


def source_spans(name: str) -> tuple[str, float, float] | None:
    """(source stem, start s, end s) of a clip whose name carries its offsets (a slice, a split or a merge)."""
    from studio.dataprep.clean import TRAINING_SAMPLE_RATE
    from studio.dataprep.slicing import parse_slice_name

    parsed = parse_slice_name(name)
    if parsed is None:
        return None
    stem, start, end = parsed
    return stem, start / TRAINING_SAMPLE_RATE, end / TRAINING_SAMPLE_RATE


@dataclass(frozen=True)
class SourceFacts:
    """What lint needs to know about a project's original recordings, by stem (from ``sources.json``)."""

    clipping: Mapping[str, ClippingMap]
    formats: Mapping[str, InputFormat]

    @classmethod
    def from_sources(cls, sources: Mapping[str, Mapping[str, Any]]) -> SourceFacts:
        clipping, formats = {}, {}
        for stem, record in sources.items():
            if isinstance(record.get("clipping"), Mapping):
                clipping[stem] = ClippingMap.from_dict(record["clipping"])
            if record.get("sample_rate"):
                formats[stem] = InputFormat(int(record["sample_rate"]), record.get("bits"))
        return cls(clipping, formats)

    def for_clip(self, name: str) -> tuple[ClipDamage | None, InputFormat | None]:
        """Clipping of the clip's span in its original and the original's format; None where not known."""
        span = source_spans(name)
        if span is None:
            return None, None
        stem, start, end = span
        damage = self.clipping[stem].damage(start, end) if stem in self.clipping else None
        return damage, self.formats.get(stem)


NO_SOURCES = SourceFacts({}, {})
