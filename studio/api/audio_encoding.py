"""Audio bytes for HTTP responses: the encoders of :mod:`studio.audio.encoding` plus what HTTP adds.

Raw PCM, ADTS AAC and the 44-byte streaming WAV header have nowhere to put the AI-generated marker; the
responses carry it in a header (:data:`AI_HEADER`) instead.
"""

from __future__ import annotations

import numpy as np

from studio.audio.encoding import AI_MARKER, SOFTWARE, StreamEncoder, encode, to_int16, wav_stream_header

__all__ = [
    "AI_HEADER",
    "AI_MARKER",
    "MEDIA_TYPES",
    "SOFTWARE",
    "Int16Resampler",
    "StreamEncoder",
    "encode",
    "to_int16",
    "wav_stream_header",
]

AI_HEADER = {"X-AI-Generated": "true", "X-Generator": SOFTWARE}

# format name -> content type
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
