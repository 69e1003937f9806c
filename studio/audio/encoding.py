"""Audio files as bytes, whole or streamed: WAV, raw PCM, Ogg/Vorbis, FLAC (soundfile); AAC, MP3, Opus (PyAV).

Float audio becomes int16 the api_v2 way (× 32768) but clipped, so a sample of +1.0 gives 32767 instead
of wrapping round to −32768. Every container that has tags says the speech is AI-generated
(:data:`AI_MARKER`: WAV ``LIST/INFO`` comment, Vorbis/Opus/FLAC comments, MP3 ID3).

Streams (:class:`StreamEncoder`) are single, readable files however they are cut: WAV declares an unknown
size (0xFFFFFFFF in the RIFF and data sizes, the convention of streaming writers, read to the end by
libsndfile, FFmpeg and Python's ``wave``), Ogg is one Vorbis stream from one encoder kept open, AAC is
ADTS frames (self-delimiting, so pieces simply follow each other).
"""

from __future__ import annotations

import io
import struct

import numpy as np

from studio.errors import StudioError

AI_MARKER = "AI-generated speech (synthesised with SoVITS Studio)"
SOFTWARE = "SoVITS Studio"
UNKNOWN_SIZE = 0xFFFFFFFF
FORMATS = ("wav", "raw", "pcm", "ogg", "aac", "mp3", "opus", "flac")
#: file extension → format, for writers that pick the format from a file name
EXTENSIONS = {".wav": "wav", ".mp3": "mp3", ".ogg": "ogg", ".oga": "ogg", ".flac": "flac", ".opus": "opus"}


def to_int16(audio: np.ndarray) -> np.ndarray:
    """float32 samples in [-1, 1] → int16 (× 32768 as api_v2 does, clipped instead of wrapping)."""
    return np.clip(np.asarray(audio, dtype=np.float32) * 32768.0, -32768, 32767).astype(np.int16)


def wav_stream_header(sample_rate: int, channels: int = 1, sample_width: int = 2) -> bytes:
    """The canonical 44-byte WAV header of a stream whose length is not known yet (sizes 0xFFFFFFFF)."""
    byte_rate = sample_rate * channels * sample_width
    fmt = struct.pack("<HHIIHH", 1, channels, sample_rate, byte_rate, channels * sample_width, 8 * sample_width)
    size = struct.pack("<I", UNKNOWN_SIZE)
    return b"RIFF" + size + b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt + b"data" + size


def encode(audio: np.ndarray, sample_rate: int, fmt: str) -> bytes:
    """The whole of ``audio`` (float32 mono) as a file of format ``fmt`` (one of :data:`FORMATS`)."""
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
    raise StudioError(f"Unknown audio format {fmt!r}.", hint=f"Use one of: {', '.join(FORMATS)}.")


def format_for_path(name: str) -> str:
    """The format a file name asks for by its extension, or a :class:`StudioError` naming the known ones."""
    from pathlib import PurePath

    suffix = PurePath(name).suffix.lower()
    if suffix in EXTENSIONS:
        return EXTENSIONS[suffix]
    known = ", ".join(sorted(EXTENSIONS))
    raise StudioError(
        f"Cannot write audio as {suffix or 'a file without an extension'!r} ({name}).",
        hint=f"End the file name with one of: {known}.",
    )


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


class _AppendOnlySink:
    """A file object for libsndfile that hands out each byte once; a writer seeking back is a bug here."""

    def __init__(self) -> None:
        self._data = bytearray()
        self._taken = 0

    def write(self, data: bytes) -> int:
        self._data += data
        return len(data)

    def tell(self) -> int:
        return self._taken + len(self._data)

    def seek(self, offset: int, whence: int = 0) -> int:
        end = self.tell()
        if (whence == 0 and offset != end) or (whence in (1, 2) and offset != 0):
            raise OSError("this stream cannot seek")
        return end

    def read(self, size: int = -1) -> bytes:
        return b""

    def take(self) -> bytes:
        out = bytes(self._data)
        self._taken += len(out)
        self._data.clear()
        return out


class StreamEncoder:
    """Encodes a stream of float32 chunks into one file of ``fmt`` (wav, raw, ogg or aac), piece by piece.

    ``push(chunk)`` returns the bytes ready so far; ``finish()`` the rest. Concatenated, they are one file.
    """

    def __init__(self, fmt: str, sample_rate: int) -> None:
        if fmt not in ("wav", "raw", "ogg", "aac"):
            raise StudioError(f"Cannot stream audio as {fmt!r}.", hint="Stream wav, raw, ogg or aac.")
        self.fmt = fmt
        self.sample_rate = sample_rate
        self._header = wav_stream_header(sample_rate) if fmt == "wav" else b""
        self._sink: _AppendOnlySink | None = None
        self._vorbis = None

    def _take_header(self) -> bytes:
        header, self._header = self._header, b""
        return header

    def push(self, audio: np.ndarray) -> bytes:
        if self.fmt in ("wav", "raw"):
            return self._take_header() + to_int16(audio).tobytes()
        if self.fmt == "aac":
            return encode(audio, self.sample_rate, "aac")
        if self._vorbis is None:
            import soundfile as sf

            self._sink = _AppendOnlySink()
            self._vorbis = sf.SoundFile(self._sink, "w", self.sample_rate, 1, "VORBIS", format="OGG")
            self._vorbis.comment = AI_MARKER
            self._vorbis.software = SOFTWARE
        self._vorbis.write(to_int16(audio).astype(np.float32) / 32768.0)
        self._vorbis.flush()
        return self._sink.take()

    def finish(self) -> bytes:
        """The end of the file: the WAV header if nothing was pushed, the last Ogg pages."""
        if self.fmt == "ogg":
            if self._vorbis is None:
                self.push(np.zeros(0, np.float32))
            self._vorbis.close()
            return self._sink.take()
        return self._take_header()
