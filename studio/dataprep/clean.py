"""Clean a recording: DC removal, optional denoise, loudness normalisation with true-peak limiting.

Each call returns a :class:`CleanReport` saying what it did (loudness and SNR before/after, gain, how
much the limiter worked), so the user sees why their audio changed.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

import numpy as np

from studio.audio.io import resample
from studio.audio.silence import level_stats
from studio.errors import AudioError

_LOGGER = logging.getLogger(__name__)

TRAINING_SAMPLE_RATE = 32000  # SoVITS v2 training / spectrogram rate
CONTENT_ENCODER_SAMPLE_RATE = 16000  # HuBERT input rate


@dataclass
class CleanConfig:
    """How to clean. ``denoise`` 0 = off … 1 = full spectral-gating strength."""

    sample_rate: int = TRAINING_SAMPLE_RATE
    denoise: float = 0.0
    target_lufs: float | None = -23.0  # None = keep the level
    true_peak_dbtp: float = -1.0
    remove_dc: bool = True

    def __post_init__(self) -> None:
        if not 0.0 <= float(self.denoise) <= 1.0:
            raise ValueError(f"denoise strength must be between 0 and 1, got {self.denoise}")


@dataclass(frozen=True)
class CleanReport:
    sample_rate_in: int
    sample_rate_out: int
    dc_offset: float
    denoise: float
    loudness_before_lufs: float
    loudness_after_lufs: float
    gain_db: float
    limiter_reduction_db: float  # deepest gain reduction the true-peak limiter applied (0 = untouched)
    true_peak_after_dbtp: float
    snr_before_db: float
    snr_after_db: float

    def to_dict(self) -> dict:
        return {k: (round(v, 3) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def integrated_loudness(audio: np.ndarray, sample_rate: int) -> float:
    """ITU-R BS.1770 integrated loudness (LUFS); clips shorter than one 400 ms block are padded with silence."""
    import pyloudnorm

    x = np.asarray(audio, dtype=np.float64)
    minimum = int(0.41 * sample_rate)
    if x.shape[0] < minimum:
        x = np.pad(x, (0, minimum - x.shape[0]))
    return float(pyloudnorm.Meter(sample_rate).integrated_loudness(x))


def true_peak_db(audio: np.ndarray, sample_rate: int) -> float:
    """Peak of the 4× oversampled signal in dBTP."""
    up = _oversampled_abs(audio, sample_rate)
    peak = float(up.max()) if up.size else 0.0
    return float(20.0 * np.log10(max(peak, 1e-12)))


def remove_dc(audio: np.ndarray, sample_rate: int, cutoff_hz: float = 20.0) -> tuple[np.ndarray, float]:
    """Subtract the mean and high-pass at ``cutoff_hz`` (zero-phase); returns the signal and the removed offset."""
    from scipy.signal import butter, sosfiltfilt

    offset = float(np.mean(audio))
    x = audio - offset
    if x.shape[0] > 64:
        sos = butter(2, cutoff_hz, btype="highpass", fs=sample_rate, output="sos")
        x = sosfiltfilt(sos, x)
    return x.astype(np.float32), offset


def denoise(audio: np.ndarray, sample_rate: int, strength: float) -> np.ndarray:
    """Stationary spectral gating (noisereduce); ``strength`` scales how much of the noise is removed."""
    if strength <= 0:
        return audio
    try:
        import noisereduce
    except ImportError as exc:  # pragma: no cover - declared dependency
        raise AudioError("Denoising needs the 'noisereduce' package.", hint="pip install noisereduce") from exc
    out = noisereduce.reduce_noise(
        y=audio,
        sr=sample_rate,
        y_noise=noise_profile(audio, sample_rate),
        stationary=True,
        prop_decrease=float(strength),
        n_fft=1024,
        n_jobs=1,
    )
    return np.asarray(out, dtype=np.float32)


def noise_profile(audio: np.ndarray, sample_rate: int, share: float = 0.15, min_s: float = 0.5) -> np.ndarray:
    """The quietest ``share`` of 50 ms frames (at least ``min_s`` seconds), joined: a sample of the noise alone.

    Feeding this to the spectral gate (rather than letting it guess from the whole clip) keeps it from
    treating steady speech as noise.
    """
    from studio.audio.silence import frame_rms_db

    hop = max(1, int(0.05 * sample_rate))
    n_frames = audio.shape[0] // hop
    if n_frames < 4:
        return audio
    levels = frame_rms_db(audio[: n_frames * hop], hop, win=hop)[:n_frames]
    count = max(int(share * n_frames), min(n_frames, int(np.ceil(min_s * sample_rate / hop))))
    quietest = np.sort(np.argsort(levels)[:count])
    return np.concatenate([audio[i * hop : (i + 1) * hop] for i in quietest])


def limit_true_peak(audio: np.ndarray, sample_rate: int, ceiling_dbtp: float) -> tuple[np.ndarray, float]:
    """Look-ahead peak limiter: smooth gain so the 4× oversampled peak stays under ``ceiling_dbtp``.

    Returns the limited signal and the deepest gain reduction in dB (0 when nothing was touched).
    """
    from scipy.ndimage import minimum_filter1d, uniform_filter1d

    ceiling = 10.0 ** (ceiling_dbtp / 20.0)
    x = np.asarray(audio, dtype=np.float64)
    deepest = 1.0
    for _ in range(4):
        peaks = _oversampled_abs(x, sample_rate)  # per original sample: max |x| of its 4 oversampled values
        need = np.minimum(1.0, ceiling / np.maximum(peaks, 1e-12))
        if need.min() >= 1.0:
            break
        width = max(3, int(0.005 * sample_rate) | 1)  # 5 ms attack/release window, odd
        gain = uniform_filter1d(minimum_filter1d(need, size=2 * width + 1), size=width)
        gain = np.minimum(gain, need)
        deepest = min(deepest, float(gain.min()))
        x = x * gain
    x = np.clip(x, -ceiling, ceiling)
    return x.astype(np.float32), abs(float(-20.0 * np.log10(deepest)))


def _oversampled_abs(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    x = np.asarray(audio, dtype=np.float32)
    if x.size == 0:
        return np.zeros(0)
    up = resample(x, sample_rate, sample_rate * 4)[: 4 * x.shape[0]]
    up = np.pad(up, (0, 4 * x.shape[0] - up.shape[0]))
    return np.maximum(np.abs(up).reshape(-1, 4).max(axis=1), np.abs(x)).astype(np.float64)


def clean_audio(
    audio: np.ndarray, sample_rate: int, config: CleanConfig | None = None
) -> tuple[np.ndarray, CleanReport]:
    """Mono float32 ``(T,)`` at ``sample_rate`` → cleaned ``(T',)`` at ``config.sample_rate`` and a report.

    Raises :class:`AudioError` for a signal with no sound in it (digital or near-digital silence).
    """
    config = config or CleanConfig()
    x = np.asarray(audio, dtype=np.float32)
    if x.ndim != 1:
        raise ValueError("clean_audio expects mono audio (T,)")
    before = level_stats(x, sample_rate)
    if before.speech_db < -70.0:
        raise AudioError(
            "The recording is silent (no sound above −70 dBFS).", hint="Check the microphone and record again."
        )
    if sample_rate != config.sample_rate:
        x = resample(x, sample_rate, config.sample_rate)
    sr = config.sample_rate
    offset = 0.0
    if config.remove_dc:
        x, offset = remove_dc(x, sr)
    x = denoise(x, sr, config.denoise)
    loud_before = integrated_loudness(x, sr)
    gain_db, reduction, source = 0.0, 0.0, x
    if config.target_lufs is not None and np.isfinite(loud_before):
        gain_db = float(config.target_lufs - loud_before)
    for _ in range(3):  # the limiter lowers loudness a little; correct the gain and limit again
        if config.target_lufs is not None and np.isfinite(loud_before):
            x = (source * 10.0 ** (gain_db / 20.0)).astype(np.float32)
        x, reduction = limit_true_peak(x, sr, config.true_peak_dbtp)
        if config.target_lufs is None or not np.isfinite(loud_before):
            break
        miss = float(config.target_lufs - integrated_loudness(x, sr))
        if abs(miss) < 0.2:
            break
        gain_db += miss
    after = level_stats(x, sr)
    report = CleanReport(
        sample_rate_in=sample_rate,
        sample_rate_out=sr,
        dc_offset=offset,
        denoise=float(config.denoise),
        loudness_before_lufs=loud_before,
        loudness_after_lufs=integrated_loudness(x, sr),
        gain_db=gain_db,
        limiter_reduction_db=reduction,
        true_peak_after_dbtp=float(true_peak_db(x, sr)),
        snr_before_db=before.snr_db,
        snr_after_db=after.snr_db,
    )
    _LOGGER.debug("clean: %s", report)
    return x, report
