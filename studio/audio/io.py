"""Decode any common audio file, resample, and save WAV files atomically.

* wav / flac / ogg (and whatever else libsndfile reads) → ``soundfile``; mp3, m4a/aac, opus, webm and
  anything libsndfile refuses → PyAV (``pip install av``, ships its own FFmpeg; no system ffmpeg).
* Samples come back as float32 in [-1, 1] (int16 / 32768, as librosa does); ``mono=True`` averages
  the channels; resampling uses soxr "HQ" and fixes the length to ``ceil(n · target / source)``, so
  ``load_audio(path, 16000)`` equals ``librosa.load(path, sr=16000)`` (what upstream feeds HuBERT).
* Files longer than an hour are refused before they are decoded (split them first).
"""

from __future__ import annotations

import io
import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from studio.errors import AudioError
from studio.workspace import atomic_write_bytes

_LOGGER = logging.getLogger(__name__)

MAX_DURATION_S = 3600.0
#: Extensions that go straight to PyAV (libsndfile cannot read them, or reads them badly).
AV_EXTENSIONS = frozenset({".mp3", ".m4a", ".aac", ".mp4", ".opus", ".webm", ".mkv", ".wma", ".amr", ".3gp", ".mov"})
#: INFO keys ``save_wav`` can store (libsndfile's string fields).
WAV_METADATA_KEYS = ("title", "copyright", "software", "artist", "comment", "date", "album", "license", "genre")


@dataclass(frozen=True)
class AudioInfo:
    """What a file holds, found without decoding all of it."""

    path: Path
    sample_rate: int
    channels: int
    frames: int
    codec: str

    @property
    def duration_s(self) -> float:
        return self.frames / self.sample_rate if self.sample_rate else 0.0


def probe_audio(path: Path | str) -> AudioInfo:
    """Sample rate, channels, length and codec of ``path``; :class:`AudioError` if it is not readable audio."""
    path = _check_file(path)
    if path.suffix.lower() not in AV_EXTENSIONS:
        import soundfile as sf

        try:
            info = sf.info(str(path))
            return AudioInfo(
                path, int(info.samplerate), int(info.channels), int(info.frames), info.subtype or info.format
            )
        except (sf.LibsndfileError, RuntimeError, TypeError):
            pass
    return _probe_av(path)


def load_audio(
    path: Path | str,
    sample_rate: int | None = None,
    mono: bool = True,
    *,
    max_duration_s: float = MAX_DURATION_S,
) -> tuple[np.ndarray, int]:
    """Decode ``path`` → ``(samples, rate)``: float32 ``(T,)`` if ``mono`` else ``(C, T)``.

    ``sample_rate=None`` keeps the file's rate. Raises :class:`AudioError` for a missing, empty, non-audio,
    zero-length or over-long file.
    """
    if sample_rate is not None and (not isinstance(sample_rate, int) or sample_rate <= 0):
        raise AudioError(f"Invalid target sample rate {sample_rate!r}; expected a positive integer.")
    info = probe_audio(path)
    _check_length(info, max_duration_s)
    if info.path.suffix.lower() not in AV_EXTENSIONS and not info.codec.startswith("av:"):
        audio, rate = _decode_soundfile(info.path)  # (C, T)
    else:
        audio, rate = _decode_av(info.path, max_duration_s)
    if audio.shape[-1] == 0:
        raise AudioError(f"{info.path.name} contains no audio samples.", hint="Record or export the file again.")
    if not np.isfinite(audio).all():
        raise AudioError(f"{info.path.name} contains invalid samples (NaN or infinity).")
    if mono:
        audio = np.mean(audio, axis=0) if audio.shape[0] > 1 else audio[0]
    if sample_rate is not None and sample_rate != rate:
        audio = resample(audio, rate, sample_rate)
        rate = sample_rate
    return np.ascontiguousarray(audio, dtype=np.float32), rate


def resample(audio: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
    """soxr "HQ" resampling along the last axis, length fixed to ``ceil(T · target / orig)`` (as librosa)."""
    if orig_sr == target_sr:
        return audio
    import soxr

    audio = np.asarray(audio, dtype=np.float32)
    n_out = int(math.ceil(audio.shape[-1] * target_sr / orig_sr))
    if audio.ndim == 1:
        out = soxr.resample(audio, orig_sr, target_sr, quality="HQ")
    else:
        out = np.stack([soxr.resample(ch, orig_sr, target_sr, quality="HQ") for ch in audio])
    if out.shape[-1] > n_out:
        out = out[..., :n_out]
    elif out.shape[-1] < n_out:
        pad = [(0, 0)] * (out.ndim - 1) + [(0, n_out - out.shape[-1])]
        out = np.pad(out, pad)
    return np.ascontiguousarray(out, dtype=np.float32)


def to_pcm16(audio: np.ndarray) -> np.ndarray:
    """float [-1, 1] → int16 (×32767, rounded, clipped); int16 input passes through."""
    arr = np.asarray(audio)
    if arr.dtype == np.int16:
        return arr
    return np.round(np.clip(arr.astype(np.float32), -1.0, 1.0) * 32767.0).astype(np.int16)


def encode_wav(audio: np.ndarray, sample_rate: int, metadata: dict[str, str] | None = None) -> bytes:
    """PCM16 WAV bytes of ``audio`` (``(T,)`` or ``(C, T)``), with optional INFO fields (e.g. ``comment``)."""
    import soundfile as sf

    pcm = to_pcm16(audio)
    if pcm.ndim == 2:
        pcm = pcm.T  # (T, C) for soundfile
    unknown = set(metadata or {}) - set(WAV_METADATA_KEYS)
    if unknown:
        raise AudioError(f"Unsupported WAV metadata field(s) {sorted(unknown)}; use {', '.join(WAV_METADATA_KEYS)}.")
    buffer = io.BytesIO()
    channels = 1 if pcm.ndim == 1 else pcm.shape[1]
    with sf.SoundFile(buffer, "w", samplerate=int(sample_rate), channels=channels, format="WAV", subtype="PCM_16") as f:
        for key, value in (metadata or {}).items():
            setattr(f, key, str(value))
        f.write(pcm)
    return buffer.getvalue()


def save_wav(path: Path | str, audio: np.ndarray, sample_rate: int, metadata: dict[str, str] | None = None) -> Path:
    """Write a PCM16 WAV atomically. ``metadata={"comment": "AI-generated"}`` marks synthesized audio."""
    return atomic_write_bytes(path, encode_wav(audio, sample_rate, metadata))


def read_wav_metadata(path: Path | str) -> dict[str, str]:
    """The INFO fields of a WAV file written by :func:`save_wav` (empty fields left out)."""
    import soundfile as sf

    with sf.SoundFile(str(path)) as f:
        return {k: v for k, v in f.copy_metadata().items() if v}


# ---- internals -----------------------------------------------------------------------------------
def _check_file(path: Path | str) -> Path:
    p = Path(path)
    if not p.exists():
        raise AudioError(f"Audio file not found: {p}")
    if not p.is_file():
        raise AudioError(f"{p} is not a file.")
    if p.stat().st_size == 0:
        raise AudioError(f"{p.name} is empty (0 bytes).", hint="Record or export the file again.")
    return p


def _check_length(info: AudioInfo, max_duration_s: float) -> None:
    if info.frames == 0:
        raise AudioError(f"{info.path.name} contains no audio (0 frames).", hint="Record or export the file again.")
    if info.duration_s > max_duration_s:
        raise AudioError(
            f"{info.path.name} is {_fmt_duration(info.duration_s)} long; the limit is {_fmt_duration(max_duration_s)}.",
            hint="Split it into shorter recordings first (10–30 minutes of speech is plenty for a voice).",
        )


def _fmt_duration(seconds: float) -> str:
    if seconds >= 3600:
        return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60)} min"
    if seconds >= 60:
        return f"{int(seconds // 60)} min {int(seconds % 60)} s"
    return f"{seconds:.1f} s"


def _decode_soundfile(path: Path) -> tuple[np.ndarray, int]:
    import soundfile as sf

    try:
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)  # (T, C)
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise AudioError(
            f"Cannot decode {path.name}: {exc}", hint="The file may be damaged; export it again."
        ) from None
    return np.ascontiguousarray(data.T), int(rate)


def _not_audio(path: Path) -> AudioError:
    return AudioError(
        f"{path.name} is not an audio file that can be read.",
        hint="Use wav, flac, ogg, opus, mp3, m4a/aac or webm.",
    )


def _probe_av(path: Path) -> AudioInfo:
    import av

    try:
        with av.open(str(path), metadata_errors="ignore") as container:
            if not container.streams.audio:
                raise AudioError(f"{path.name} has no audio track.", hint="Use a file with sound in it.")
            stream = container.streams.audio[0]
            rate = int(stream.codec_context.sample_rate or stream.rate or 0)
            channels = int(stream.codec_context.channels or 1)
            seconds = None
            if stream.duration is not None and stream.time_base is not None:
                seconds = float(stream.duration * stream.time_base)
            elif container.duration is not None:
                seconds = container.duration / 1_000_000
            frames = int(round((seconds or 0.0) * rate)) if seconds is not None else -1
            return AudioInfo(path, rate, channels, frames, f"av:{stream.codec_context.name}")
    except AudioError:
        raise
    except (av.error.FFmpegError, OSError, ValueError, UnicodeDecodeError):
        raise _not_audio(path) from None


def _decode_av(path: Path, max_duration_s: float) -> tuple[np.ndarray, int]:
    import av

    chunks: list[np.ndarray] = []
    total = 0
    try:
        with av.open(str(path), metadata_errors="ignore") as container:
            stream = container.streams.audio[0]
            resampler = av.AudioResampler(format="fltp")
            rate = int(stream.codec_context.sample_rate)
            limit = int(max_duration_s * rate)
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    arr = out.to_ndarray()  # (C, n) planar float32
                    chunks.append(arr)
                    total += arr.shape[1]
                if total > limit:
                    info = AudioInfo(path, rate, chunks[0].shape[0], total, "av")
                    _check_length(info, max_duration_s)
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray())
    except AudioError:
        raise
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        if not chunks:
            raise _not_audio(path) from None
        _LOGGER.warning("%s: decoding stopped early (%s); keeping what was decoded", path.name, exc)
    if not chunks:
        raise AudioError(f"{path.name} contains no audio samples.", hint="Record or export the file again.")
    return np.concatenate(chunks, axis=1).astype(np.float32), rate
