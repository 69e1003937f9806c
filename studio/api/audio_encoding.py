"""Audio bytes for HTTP responses: WAV, raw PCM, Ogg/Vorbis (soundfile); AAC, MP3, Opus, FLAC (PyAV's FFmpeg).

Float audio becomes int16 the api_v2 way (× 32768) but clipped, so a sample of +1.0 gives 32767 instead
of wrapping round to −32768. Every container that has tags says the speech is AI-generated
(:data:`AI_MARKER`: WAV ``LIST/INFO`` comment, Vorbis/Opus/FLAC comments, MP3 ID3). Raw PCM, ADTS AAC and
the 44-byte streaming WAV header have nowhere to put it; the HTTP responses carry it in a header instead.
"""

from __future__ import annotations

import io
import struct

import numpy as np

from studio.errors import StudioError

AI_MARKER = "AI-generated speech (synthesised with SoVITS Studio)"
SOFTWARE = "SoVITS Studio"
AI_HEADER = {"X-AI-Generated": "true", "X-Generator": SOFTWARE}

# format name -> (content type, encoder)
MEDIA_TYPES = {
    "wav": "audio/wav",
    "raw": "audio/raw",
    "pcm": "audio/pcm",
    "ogg": "audio/ogg",
    "aac": "audio/aac",
    "mp3": "audio/mpeg",
    "opus": "audio/ogg",
    "flac": "audio/flac",
}


def to_int16(audio: np.ndarray) -> np.ndarray:
    """float32 samples in [-1, 1] → int16 (× 32768 as api_v2 does, clipped instead of wrapping)."""
    return np.clip(np.asarray(audio, dtype=np.float32) * 32768.0, -32768, 32767).astype(np.int16)


def wav_stream_header(sample_rate: int, channels: int = 1, sample_width: int = 2) -> bytes:
    """The canonical 44-byte WAV header declaring 0 data frames, sent first by streaming responses."""
    byte_rate = sample_rate * channels * sample_width
    fmt = struct.pack("<HHIIHH", 1, channels, sample_rate, byte_rate, channels * sample_width, 8 * sample_width)
    return b"RIFF" + struct.pack("<I", 36) + b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt + b"data" + b"\0\0\0\0"


def encode(audio: np.ndarray, sample_rate: int, fmt: str) -> bytes:
    """The whole of ``audio`` (float32 mono) as a file of format ``fmt`` (a key of :data:`MEDIA_TYPES`)."""
    pcm = to_int16(audio)
    if fmt in ("raw", "pcm"):
        return pcm.tobytes()
    if fmt in ("wav", "ogg", "flac"):
        return _encode_soundfile(pcm, sample_rate, fmt)
    if fmt == "aac":
        return _encode_av(pcm, sample_rate, container="adts", codec="aac", rate=sample_rate, bit_rate=192_000)
    if fmt == "mp3":
        return _encode_av(pcm, sample_rate, container="mp3", codec="libmp3lame", rate=sample_rate, bit_rate=128_000)
    if fmt == "opus":
        return _encode_av(pcm, sample_rate, container="ogg", codec="libopus", rate=48000, bit_rate=64_000)
    raise StudioError(f"Unknown audio format {fmt!r}.", hint=f"Use one of: {', '.join(MEDIA_TYPES)}.")


def _encode_soundfile(pcm: np.ndarray, sample_rate: int, fmt: str) -> bytes:
    import soundfile as sf

    subtype = {"wav": "PCM_16", "ogg": "VORBIS", "flac": "PCM_16"}[fmt]
    buffer = io.BytesIO()
    with sf.SoundFile(buffer, "w", sample_rate, 1, subtype, format=fmt.upper()) as out:
        out.comment = AI_MARKER
        out.software = SOFTWARE
        if fmt == "ogg":  # the Vorbis encoder wants floats
            out.write(pcm.astype(np.float32) / 32768.0)
        else:
            out.write(pcm)
    return buffer.getvalue()


def _encode_av(pcm: np.ndarray, sample_rate: int, *, container: str, codec: str, rate: int, bit_rate: int) -> bytes:
    import av

    buffer = io.BytesIO()
    with av.open(buffer, "w", format=container) as out:
        if container != "adts":
            out.metadata["comment"] = AI_MARKER
            out.metadata["encoder"] = SOFTWARE
        stream = out.add_stream(codec, rate=rate)
        stream.layout = "mono"
        stream.bit_rate = bit_rate
        if container != "adts":
            stream.metadata["comment"] = AI_MARKER
        resampler = av.AudioResampler(format=stream.codec_context.format, layout="mono", rate=rate)
        frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = sample_rate
        for piece in [*resampler.resample(frame), *resampler.resample(None)]:
            for packet in stream.encode(piece):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return buffer.getvalue()


class Int16Resampler:
    """Streams float chunks at ``in_rate`` as int16 bytes at ``out_rate`` without seams between chunks."""

    def __init__(self, in_rate: int, out_rate: int) -> None:
        import soxr

        self._same = in_rate == out_rate
        self._stream = None if self._same else soxr.ResampleStream(in_rate, out_rate, 1, dtype="float32")

    def push(self, audio: np.ndarray, *, last: bool = False) -> bytes:
        audio = np.asarray(audio, dtype=np.float32)
        if self._stream is not None:
            audio = self._stream.resample_chunk(audio, last=last)
        return to_int16(audio).tobytes()
