"""Linear and mel magnitude spectrograms, shared by SoVITS inference (reference input) and training.

Both follow SPEC §6.2: the waveform is reflect-padded by ``(n_fft - hop) / 2`` on each side and
framed with ``center=False`` and a periodic Hann window, so a signal of ``N`` samples gives
``floor((N - hop) / hop) + 1`` frames (``N / hop`` for multiples of ``hop``). The magnitude is
``sqrt(re² + im² + 1e-8)``; there is no log on the linear variant. The mel variant projects the
magnitude onto a Slaney mel basis (``librosa.filters.mel``) and takes ``log(clamp(x, 1e-5))``.

Legend: ``B`` batch, ``N`` samples, ``F`` = n_fft // 2 + 1 frequency bins, ``T_spec`` frames, ``M`` mel bins.
"""

from __future__ import annotations

import threading

import torch
import torch.nn.functional as F

__all__ = ["linear_spectrogram", "mel_spectrogram", "spec_to_mel", "spectrogram_frames"]

_MAGNITUDE_EPS = 1e-8
_LOG_CLAMP = 1e-5

_lock = threading.Lock()
_windows: dict[tuple[str, torch.dtype, int], torch.Tensor] = {}
_mel_bases: dict[tuple[str, torch.dtype, int, int, int, float, float | None], torch.Tensor] = {}


def spectrogram_frames(n_samples: int, hop: int = 640) -> int:
    """Number of frames :func:`linear_spectrogram` yields for ``n_samples`` samples."""
    return (n_samples - hop) // hop + 1


def _hann(win: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    key = (str(device), dtype, win)
    with _lock:
        window = _windows.get(key)
        if window is None:
            window = torch.hann_window(win, periodic=True, dtype=dtype, device=device)
            _windows[key] = window
    return window


def _mel_basis(
    sample_rate: int, n_fft: int, n_mels: int, fmin: float, fmax: float | None, device: torch.device, dtype: torch.dtype
) -> torch.Tensor:
    key = (str(device), dtype, sample_rate, n_fft, n_mels, float(fmin), None if fmax is None else float(fmax))
    with _lock:
        basis = _mel_bases.get(key)
    if basis is None:
        import librosa  # heavy: imported on first use only

        # (M, F) Slaney-style triangular filters with Slaney area normalisation (librosa defaults)
        mel = librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax)
        basis = torch.from_numpy(mel).to(device=device, dtype=dtype)
        with _lock:
            _mel_bases[key] = basis
    return basis


def _as_batch(wav: torch.Tensor) -> torch.Tensor:
    if not isinstance(wav, torch.Tensor):
        raise TypeError(f"expected a torch.Tensor waveform, got {type(wav).__name__}")
    if wav.dim() == 1:
        wav = wav.unsqueeze(0)
    if wav.dim() != 2:
        raise ValueError(f"expected a waveform shaped (B, N) or (N,), got shape {tuple(wav.shape)}")
    if not wav.is_floating_point():
        raise TypeError(f"expected a floating-point waveform, got dtype {wav.dtype}")
    return wav


def linear_spectrogram(wav: torch.Tensor, n_fft: int = 2048, hop: int = 640, win: int = 2048) -> torch.Tensor:
    """Magnitude STFT of ``wav`` (B, N) → (B, n_fft // 2 + 1, T_spec), SPEC §6.2.

    A 1-D waveform is treated as a batch of one. The padding is reflective, so ``N`` must exceed
    ``(n_fft - hop) / 2`` samples.
    """
    wav = _as_batch(wav)  # (B, N)
    pad = (n_fft - hop) // 2
    if wav.shape[-1] <= pad:
        raise ValueError(f"waveform of {wav.shape[-1]} samples is too short for a spectrogram (need > {pad})")
    padded = F.pad(wav.unsqueeze(1), (pad, pad), mode="reflect").squeeze(1)  # (B, N + 2·pad)
    window = _hann(win, wav.device, wav.dtype)
    stft = torch.stft(
        padded,
        n_fft,
        hop_length=hop,
        win_length=win,
        window=window,
        center=False,
        normalized=False,
        onesided=True,
        return_complex=True,
    )  # (B, F, T_spec) complex
    parts = torch.view_as_real(stft)  # (B, F, T_spec, 2)
    return torch.sqrt(parts.pow(2).sum(-1) + _MAGNITUDE_EPS)  # (B, F, T_spec)


def spec_to_mel(
    spec: torch.Tensor,
    n_fft: int = 2048,
    n_mels: int = 128,
    sample_rate: int = 32000,
    fmin: float = 0.0,
    fmax: float | None = None,
) -> torch.Tensor:
    """Project a linear magnitude spectrogram (B, F, T_spec) onto mel bins → log mel (B, M, T_spec)."""
    basis = _mel_basis(sample_rate, n_fft, n_mels, fmin, fmax, spec.device, spec.dtype)  # (M, F)
    mel = torch.matmul(basis, spec)  # (B, M, T_spec)
    return torch.log(torch.clamp(mel, min=_LOG_CLAMP))


def mel_spectrogram(
    wav: torch.Tensor,
    n_fft: int = 2048,
    n_mels: int = 128,
    sample_rate: int = 32000,
    hop: int = 640,
    win: int = 2048,
    fmin: float = 0.0,
    fmax: float | None = None,
) -> torch.Tensor:
    """Log mel spectrogram of ``wav`` (B, N) → (B, n_mels, T_spec): the SoVITS training reconstruction target."""
    spec = linear_spectrogram(wav, n_fft=n_fft, hop=hop, win=win)  # (B, F, T_spec)
    return spec_to_mel(spec, n_fft=n_fft, n_mels=n_mels, sample_rate=sample_rate, fmin=fmin, fmax=fmax)
