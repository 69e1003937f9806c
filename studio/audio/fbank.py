"""Kaldi-style log mel filterbank features: the input of the v2Pro speaker-verification model.

Equal to ``torchaudio.compliance.kaldi.fbank(wave, num_mel_bins=80, sample_frequency=16000,
dither=0)`` with every other option at its default, which is what upstream's ``sv.py`` computes.
Each step matters (MANIFEST §5 of the v2Pro goldens lists how much each mistake costs):

1. frames of 25 ms every 10 ms, only those that fit entirely (``snip_edges``):
   ``1 + (N − 400) // 160`` frames at 16 kHz;
2. per frame: subtract its mean (DC removal), then pre-emphasis ``x[j] − 0.97·x[j−1]`` with the first
   sample using itself as its predecessor;
3. the "povey" window ``hann(400, symmetric) ** 0.85``, zero-padding to the next power of two (512);
4. power spectrum ``|rfft|²`` (257 bins) projected onto Kaldi's mel bank: triangles equally spaced on
   ``mel(f) = 1127·ln(1 + f/700)`` between 20 Hz and Nyquist, with no area normalisation, over the
   first 256 bins (the Nyquist bin gets weight 0);
5. ``log(max(energy, float32 eps))``.

The input is a float waveform in [-1, 1] (not int16 scale). The mel bank is built in float32, the
way torchaudio builds it, and cached.

Legend: ``N`` samples, ``T`` frames, ``M`` mel bins.
"""

from __future__ import annotations

import math
import threading

import torch
import torch.nn.functional as F

__all__ = ["kaldi_fbank", "fbank_frames", "kaldi_mel_banks", "min_fbank_samples"]

_EPSILON = torch.finfo(torch.float32).eps
_lock = threading.Lock()
_banks: dict[tuple[int, int, float, float, float], torch.Tensor] = {}
_windows: dict[tuple[int, torch.dtype], torch.Tensor] = {}


def _frame_sizes(sample_rate: float, frame_length_ms: float, frame_shift_ms: float) -> tuple[int, int, int]:
    """(window samples, shift samples, padded FFT size) as Kaldi truncates them."""
    size = int(sample_rate * frame_length_ms * 0.001)
    shift = int(sample_rate * frame_shift_ms * 0.001)
    return size, shift, 1 << max(0, (size - 1).bit_length())


def fbank_frames(
    n_samples: int, sample_rate: float = 16000, frame_length_ms: float = 25.0, frame_shift_ms: float = 10.0
) -> int:
    """Frames :func:`kaldi_fbank` yields for ``n_samples`` samples (0 when shorter than one window)."""
    size, shift, _ = _frame_sizes(sample_rate, frame_length_ms, frame_shift_ms)
    return 0 if n_samples < size else 1 + (n_samples - size) // shift


def min_fbank_samples(sample_rate: float = 16000, frame_length_ms: float = 25.0) -> int:
    """Shortest input giving one frame: one window (400 samples at 16 kHz)."""
    return _frame_sizes(sample_rate, frame_length_ms, frame_length_ms)[0]


def _mel(freq: torch.Tensor | float) -> torch.Tensor | float:
    if isinstance(freq, torch.Tensor):
        return 1127.0 * (1.0 + freq / 700.0).log()
    return 1127.0 * math.log(1.0 + freq / 700.0)


def kaldi_mel_banks(
    num_bins: int, padded_size: int, sample_rate: float, low_freq: float, high_freq: float
) -> torch.Tensor:
    """Kaldi's triangular mel filters (M, padded_size // 2 + 1) in float32; the last (Nyquist) column is 0.

    ``high_freq <= 0`` counts down from Nyquist (0 → Nyquist itself).
    """
    key = (num_bins, padded_size, float(sample_rate), float(low_freq), float(high_freq))
    with _lock:
        bank = _banks.get(key)
    if bank is not None:
        return bank
    nyquist = 0.5 * sample_rate
    high = high_freq + nyquist if high_freq <= 0.0 else high_freq
    if not 0.0 <= low_freq < high <= nyquist:
        raise ValueError(f"mel bank needs 0 <= low_freq < high_freq <= Nyquist, got {low_freq}, {high}, {nyquist}")
    mel_low, mel_high = _mel(float(low_freq)), _mel(float(high))
    delta = (mel_high - mel_low) / (num_bins + 1)
    index = torch.arange(num_bins).unsqueeze(1)  # (M, 1)
    left = mel_low + index * delta  # (M, 1) float32, as torchaudio
    center = mel_low + (index + 1.0) * delta
    right = mel_low + (index + 2.0) * delta
    fft_mel = _mel(sample_rate / padded_size * torch.arange(padded_size // 2, dtype=torch.float32)).unsqueeze(0)
    up = (fft_mel - left) / (center - left)  # (M, padded/2)
    down = (right - fft_mel) / (right - center)
    bank = torch.clamp(torch.minimum(up, down), min=0.0)
    bank = F.pad(bank, (0, 1))  # (M, padded/2 + 1): the Nyquist bin is not used
    with _lock:
        _banks[key] = bank
    return bank


def _povey(size: int, dtype: torch.dtype) -> torch.Tensor:
    key = (size, dtype)
    with _lock:
        window = _windows.get(key)
        if window is None:
            window = torch.hann_window(size, periodic=False, dtype=dtype).pow(0.85)
            _windows[key] = window
    return window


def kaldi_fbank(
    wave: torch.Tensor,
    *,
    sample_rate: int = 16000,
    num_mel_bins: int = 80,
    frame_length_ms: float = 25.0,
    frame_shift_ms: float = 10.0,
    preemphasis: float = 0.97,
    low_freq: float = 20.0,
    high_freq: float = 0.0,
) -> torch.Tensor:
    """Log mel filterbank of ``wave`` (1, N) or (N,) in [-1, 1] → (T, num_mel_bins), T = 1 + (N − 400) // 160.

    Raises ValueError when ``wave`` is shorter than one frame (25 ms): callers turn that into a message
    about the clip (see ``studio.models.speaker_verification``).
    """
    if not isinstance(wave, torch.Tensor) or not wave.is_floating_point():
        raise TypeError(f"expected a floating-point torch.Tensor waveform, got {getattr(wave, 'dtype', type(wave))}")
    if wave.dim() == 2:
        wave = wave[0]  # Kaldi reads the first channel
    if wave.dim() != 1:
        raise ValueError(f"expected a waveform shaped (1, N) or (N,), got shape {tuple(wave.shape)}")
    size, shift, padded = _frame_sizes(sample_rate, frame_length_ms, frame_shift_ms)
    if wave.shape[0] < size:
        raise ValueError(
            f"waveform of {wave.shape[0]} samples is shorter than one {frame_length_ms:g} ms frame ({size})"
        )
    frames = wave.unfold(0, size, shift)  # (T, size)
    frames = frames - frames.mean(dim=1, keepdim=True)
    previous = torch.cat([frames[:, :1], frames[:, :-1]], dim=1)  # each sample's predecessor (first: itself)
    frames = frames - preemphasis * previous
    frames = frames * _povey(size, frames.dtype).to(frames.device)
    frames = F.pad(frames, (0, padded - size))  # (T, padded)
    power = torch.fft.rfft(frames).abs().pow(2.0)  # (T, padded/2 + 1)
    bank = kaldi_mel_banks(num_mel_bins, padded, sample_rate, low_freq, high_freq)
    energies = torch.mm(power, bank.to(device=power.device, dtype=power.dtype).T)  # (T, M)
    return torch.clamp(energies, min=_EPSILON).log()
