"""Band-limited (windowed-sinc) resampling, numerically equal to torchaudio's default resampler.

Upstream GPT-SoVITS resamples the reference clip with ``torchaudio.transforms.Resample`` (to 32 kHz for
the timbre spectrogram, then 32 → 16 kHz for the v2Pro speaker-verification model), so its numbers
are what our goldens hold. There is no CPU torchaudio wheel for our torch, hence this pure-PyTorch
version of the same published method:

* rates are divided by their gcd: ``o`` input and ``n`` output samples per period;
* the low-pass cutoff is ``base = min(o, n) · rolloff`` (rolloff 0.99) in units of the reduced rate,
  the filter reaches ``width = ceil(lowpass_filter_width · o / base)`` input samples on each side;
* output phase ``k`` (0 ≤ k < n) uses the taps ``h_k(j) = sinc(π t) · cos²(π t / (2·lw)) · base / o``
  with ``t = (j / o − k / n) · base`` clamped to ``±lw`` (lw = lowpass_filter_width = 6), for
  ``j = −width … width + o − 1`` — a Hann-windowed sinc;
* the signal is zero-padded by ``width`` on the left and ``width + o`` on the right, convolved with the
  ``n`` phase filters at stride ``o``, the phases are interleaved, and the output is cut to
  ``ceil(n · N / o)`` samples.

The kernel is computed in float64 and cast to the input dtype (what ``transforms.Resample`` stores);
kernels are cached per (orig, new, dtype).

Legend: ``N`` input samples, ``M = ceil(N · new / orig)`` output samples.
"""

from __future__ import annotations

import math
import threading

import torch
import torch.nn.functional as F

__all__ = ["sinc_resample", "resampled_length"]

LOWPASS_FILTER_WIDTH = 6
ROLLOFF = 0.99

_lock = threading.Lock()
_kernels: dict[tuple[int, int, torch.dtype], tuple[torch.Tensor, int]] = {}


def _reduced(orig_sr: int, new_sr: int) -> tuple[int, int]:
    g = math.gcd(orig_sr, new_sr)
    return orig_sr // g, new_sr // g


def resampled_length(n_samples: int, orig_sr: int, new_sr: int) -> int:
    """Output length of :func:`sinc_resample` for ``n_samples`` input samples: ``ceil(new · N / orig)``."""
    if orig_sr == new_sr:
        return n_samples
    o, n = _reduced(orig_sr, new_sr)
    return math.ceil(n * n_samples / o)


def _build_kernel(o: int, n: int, dtype: torch.dtype) -> tuple[torch.Tensor, int]:
    """The (n, 1, 2·width + o) phase filters for reduced rates o → n, and ``width``."""
    base = min(o, n) * ROLLOFF
    width = math.ceil(LOWPASS_FILTER_WIDTH * o / base)
    taps = torch.arange(-width, width + o, dtype=torch.float64) / o  # (K,) input positions in periods
    # Output phase offsets k / n. torchaudio forms them from an integer arange, which rounds them through
    # float32 before they join the float64 grid; doing the same keeps us bit-close to its kernel.
    phases = (torch.arange(0, -n, -1) / n).to(torch.float64)  # (n,)
    t = (phases[:, None] + taps[None, :]) * base  # (n, K)
    t = t.clamp(-LOWPASS_FILTER_WIDTH, LOWPASS_FILTER_WIDTH)
    window = torch.cos(t * (math.pi / LOWPASS_FILTER_WIDTH / 2)) ** 2
    t = t * math.pi
    sinc = torch.where(t == 0, torch.ones_like(t), torch.sin(t) / t)
    kernel = sinc * window * (base / o)  # (n, K)
    return kernel.to(dtype).unsqueeze(1), width  # (n, 1, K)


def _kernel(o: int, n: int, dtype: torch.dtype) -> tuple[torch.Tensor, int]:
    key = (o, n, dtype)
    with _lock:
        cached = _kernels.get(key)
    if cached is None:
        cached = _build_kernel(o, n, dtype)
        with _lock:
            _kernels[key] = cached
    return cached


def sinc_resample(wav: torch.Tensor, orig_sr: int, new_sr: int) -> torch.Tensor:
    """Resample ``wav`` (..., N) from ``orig_sr`` to ``new_sr`` Hz → (..., ceil(N · new / orig)).

    Equal to ``torchaudio.functional.resample`` with its defaults (sinc_interp_hann, width 6, rolloff
    0.99) as used through ``transforms.Resample``. Equal rates return ``wav`` unchanged.
    """
    if not isinstance(wav, torch.Tensor) or not wav.is_floating_point():
        raise TypeError(f"expected a floating-point torch.Tensor waveform, got {getattr(wav, 'dtype', type(wav))}")
    if int(orig_sr) <= 0 or int(new_sr) <= 0 or orig_sr != int(orig_sr) or new_sr != int(new_sr):
        raise ValueError(f"sample rates must be positive integers, got {orig_sr} and {new_sr}")
    if orig_sr == new_sr:
        return wav
    o, n = _reduced(int(orig_sr), int(new_sr))
    kernel, width = _kernel(o, n, wav.dtype)
    shape = wav.shape
    flat = wav.reshape(-1, shape[-1])  # (B, N)
    padded = F.pad(flat, (width, width + o))  # (B, N + 2·width + o)
    phases = F.conv1d(padded.unsqueeze(1), kernel.to(wav.device), stride=o)  # (B, n, L)
    out = phases.transpose(1, 2).reshape(flat.shape[0], -1)  # (B, L·n), phases interleaved
    out = out[:, : resampled_length(shape[-1], int(orig_sr), int(new_sr))]  # (B, M)
    return out.reshape(*shape[:-1], out.shape[-1])
