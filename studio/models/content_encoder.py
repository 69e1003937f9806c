"""The HuBERT content encoder (chinese-hubert-base) and the waveform preparation around it.

SoVITS does not hear audio directly: a 16 kHz waveform goes through HuBERT-base and its last hidden
state (768-d, 50 Hz) is what ``extract_latent`` quantises into semantic tokens (SPEC §4).

* Reference clips (inference): 3–10 s at 16 kHz, then ``int(32000 · 0.3)`` zeros appended (0.6 s at
  16 kHz), then the **raw** waveform into HuBERT — no zero-mean / unit-variance normalisation.
* Training clips (feature extraction, SPEC §4 last paragraph): the 32 kHz clip is peak-filtered
  (> 2.2 is rejected) and re-scaled twice: once into the int16 training wav, once (to amplitudes in
  the hundreds) before the 32 → 16 kHz soxr "HQ" resample that feeds HuBERT.

Legend: ``B`` batch, ``N`` samples at 16 kHz, ``T_ssl`` 50 Hz frames = floor((N − 400) / 320) + 1.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from studio.errors import AudioError, CheckpointError, MissingPretrainedError, ReferenceAudioError
from studio.models.weights_cache import release_pages

__all__ = [
    "ContentEncoder",
    "TrainingWaveforms",
    "check_reference_length",
    "reference_ssl_input",
    "training_waveforms",
    "SSL_SAMPLE_RATE",
]

SSL_SAMPLE_RATE = 16000
TRAIN_SAMPLE_RATE = 32000
REFERENCE_MIN_SECONDS = 3.0
REFERENCE_MAX_SECONDS = 10.0
DEFAULT_PAUSE_SECONDS = 0.3  # the padding count uses the 32 kHz rate: 0.3 s → 9600 zeros = 0.6 s at 16 kHz
TRAIN_MAX_PEAK = 2.2
_TRAIN_MIX = 0.5  # half peak-normalised, half original
_TRAIN_TARGET_PEAK = 0.95
_INT16_SCALE = 32768.0
_HUBERT_SCALE = 1145.14
_MIN_SSL_SAMPLES = 400  # receptive field of the conv feature encoder

_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


# ----------------------------------------------------------------------------------------------
# waveform preparation


def check_reference_length(n_samples_16k: int, sample_rate: int = SSL_SAMPLE_RATE) -> None:
    """Raise :class:`ReferenceAudioError` unless the reference lasts 3–10 s (checked before padding)."""
    seconds = n_samples_16k / sample_rate
    low, high = int(REFERENCE_MIN_SECONDS * sample_rate), int(REFERENCE_MAX_SECONDS * sample_rate)
    if not low <= n_samples_16k <= high:
        raise ReferenceAudioError(
            f"The reference audio lasts {seconds:.2f} s; it must last between "
            f"{REFERENCE_MIN_SECONDS:g} and {REFERENCE_MAX_SECONDS:g} seconds.",
            hint="Pick or trim a clip of 3 to 10 seconds.",
        )


def reference_ssl_input(wav16k: np.ndarray, pause_seconds: float = DEFAULT_PAUSE_SECONDS) -> torch.Tensor:
    """The HuBERT input for a reference clip: ``wav16k`` (N,) + ``int(32000 · pause)`` zeros → (1, N + pad) float32.

    The length check is the caller's (:func:`check_reference_length`), done on the unpadded clip.
    """
    wav = np.asarray(wav16k, dtype=np.float32)
    if wav.ndim != 1:
        raise AudioError(f"Expected a mono 16 kHz waveform shaped (N,), got shape {wav.shape}.")
    pad = int(TRAIN_SAMPLE_RATE * pause_seconds)
    padded = np.concatenate([wav, np.zeros(pad, dtype=np.float32)])
    return torch.from_numpy(padded).unsqueeze(0)  # (1, N + pad)


class TrainingWaveforms(NamedTuple):
    """The two waveforms feature extraction derives from one 32 kHz training clip."""

    wav32k_int16: np.ndarray  # (N32,) int16: the stored training wav (5-wav32k)
    wav16k_scaled: np.ndarray  # (N16,) float32, amplitudes in the hundreds: the HuBERT input
    peak: float  # max |x| of the input clip


def training_waveforms(x32k: np.ndarray) -> TrainingWaveforms:
    """Scale a 32 kHz mono float clip the way the upstream training preparation does (float32 arithmetic).

    Raises :class:`AudioError` for an empty, silent or non-finite clip, or one whose peak exceeds 2.2.
    Unlike upstream (whose int16 cast wraps around for peaks above ≈ 1.05) the int16 wav is clipped.
    """
    x = np.asarray(x32k, dtype=np.float32)
    if x.ndim != 1 or x.size == 0:
        raise AudioError(f"Expected a non-empty mono 32 kHz waveform shaped (N,), got shape {x.shape}.")
    if not np.isfinite(x).all():
        raise AudioError("The training clip contains NaN or infinite samples.")
    peak = np.abs(x).max()  # float32 scalar
    if peak > TRAIN_MAX_PEAK:
        raise AudioError(
            f"The training clip peaks at {float(peak):.2f}, above the accepted {TRAIN_MAX_PEAK} (badly clipped audio).",
            hint="Re-export the clip without clipping or leave it out of the dataset.",
        )
    if peak == 0:
        raise AudioError("The training clip is silent (all samples are zero).")
    a32 = x / peak * (_TRAIN_TARGET_PEAK * _TRAIN_MIX * _INT16_SCALE) + ((1 - _TRAIN_MIX) * _INT16_SCALE) * x
    wav_int16 = np.clip(a32, -32768.0, 32767.0).astype(np.int16)  # truncation toward zero
    b32 = x / peak * (_TRAIN_TARGET_PEAK * _TRAIN_MIX * _HUBERT_SCALE) + ((1 - _TRAIN_MIX) * _HUBERT_SCALE) * x
    wav16k = _resample_hq(b32.astype(np.float32), TRAIN_SAMPLE_RATE, SSL_SAMPLE_RATE)
    return TrainingWaveforms(wav32k_int16=wav_int16, wav16k_scaled=wav16k, peak=float(peak))


def _resample_hq(x: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
    """soxr "HQ" resampling, trimmed / zero-padded to ceil(N · ratio) samples (what librosa's soxr_hq returns)."""
    import soxr

    n_out = int(np.ceil(x.shape[-1] * float(target_sr) / orig_sr))
    y = soxr.resample(x, orig_sr, target_sr, quality="soxr_hq")
    if y.shape[-1] >= n_out:
        y = y[:n_out]
    else:
        y = np.pad(y, (0, n_out - y.shape[-1]))
    return np.asarray(y, dtype=x.dtype)


# ----------------------------------------------------------------------------------------------
# the model


def _check_folder(folder: Path) -> Path:
    expected = "config.json and one of " + " / ".join(_WEIGHT_FILES)
    if not folder.is_dir():
        raise MissingPretrainedError(
            f"The HuBERT content encoder folder {folder} does not exist (expected {expected}).",
            hint="Download chinese-hubert-base into that folder.",
        )
    if not (folder / "config.json").is_file():
        raise MissingPretrainedError(f"{folder} has no config.json (expected {expected}).")
    for name in _WEIGHT_FILES:
        if (folder / name).is_file():
            return folder / name
    raise MissingPretrainedError(f"{folder} has no weight file (expected {expected}).")


class ContentEncoder:
    """HuBERT-base loaded from a local chinese-hubert-base style folder, in eval mode (plain PyTorch:
    :mod:`studio.models.hubert_encoder`, its weights memory-mapped from the folder's file).

    ``ContentEncoder(folder, device="cpu", dtype=torch.float32)``; ``encode(wav16k)`` returns the
    last hidden state as (B, 768, T_ssl).
    """

    def __init__(self, folder: str | Path, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32):
        from studio.models.hubert_encoder import load_hubert_encoder

        self.folder = Path(folder)
        self.weights = _check_folder(self.folder)
        try:
            model, problems = load_hubert_encoder(self.folder, self.weights)
        except Exception as exc:  # an unreadable config or weight file, whatever the detail
            raise CheckpointError(f"Cannot load the HuBERT model from {self.folder}: {exc}") from exc
        if problems:
            raise CheckpointError(
                f"{self.weights} does not match its config.json: {len(problems)} weights missing or of the wrong "
                f"shape (e.g. {', '.join(problems[:5])})."
            )
        self.model = model.to(device=device, dtype=dtype)

    @property
    def dim(self) -> int:
        """Feature size of ``encode`` (768 for HuBERT-base, which SoVITS requires)."""
        return int(self.model.sizes.hidden_size)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.model.parameters()).dtype

    def to(self, device: str | torch.device | None = None, dtype: torch.dtype | None = None) -> ContentEncoder:
        self.model.to(device=device, dtype=dtype)
        return self

    def _prepare(self, wav16k: torch.Tensor | np.ndarray) -> torch.Tensor:
        wav = torch.as_tensor(wav16k)
        if wav.dim() == 1:
            wav = wav.unsqueeze(0)
        if wav.dim() != 2:
            raise AudioError(f"Expected a 16 kHz waveform shaped (B, N), got shape {tuple(wav.shape)}.")
        if wav.shape[-1] < _MIN_SSL_SAMPLES:
            raise AudioError(
                f"The waveform has {wav.shape[-1]} samples; HuBERT needs at least {_MIN_SSL_SAMPLES} (25 ms at 16 kHz)."
            )
        return wav.to(device=self.device, dtype=self.dtype)  # (B, N)

    @torch.no_grad()
    def encode(self, wav16k: torch.Tensor | np.ndarray, *, release_weights: bool = False) -> torch.Tensor:
        """Raw 16 kHz waveform (B, N) → SSL features (B, 768, T_ssl). No input normalisation.

        ``release_weights``: each block's weight pages leave resident memory as soon as the block has run (see
        :meth:`release_memory`), so the pass never holds all ~380 MB at once — what a reference clip needs,
        once, in a process that also holds a voice. The features are the same."""
        wav = self._prepare(wav16k)
        if release_weights:
            hidden = self.model(wav, done=self._release_block)
            self.release_memory()
        else:
            hidden = self.model(wav)  # (B, T_ssl, 768)
        return hidden.transpose(1, 2)  # (B, 768, T_ssl)

    def _release_block(self, block: torch.nn.Module) -> None:
        release_pages(list(block.parameters()), files=[self.weights])

    @torch.no_grad()
    def conv_features(self, wav16k: torch.Tensor | np.ndarray) -> torch.Tensor:
        """Output of the convolutional feature encoder (B, C_conv, T_ssl), for debugging."""
        return self.model.feature_extractor(self._prepare(wav16k))

    def release_memory(self) -> int:
        """Let the weights' pages leave resident memory until they are next used (they map the checkpoint file, so
        they are read back from it — from the page cache, usually — by the next ``encode``). Called once a reference
        clip is encoded: ~380 MB at official size that a voice whose references are cached never needs again.
        Returns the bytes let go (0 for weights that are not the file's: a fp16 checkpoint, a GPU copy)."""
        return release_pages([*self.model.parameters(), *self.model.buffers()], files=[self.weights])


class LazyContentEncoder:
    """HuBERT (~380 MB of fp32 weights), loaded only when a reference clip must really be encoded.

    References whose prompt tokens are in the disk cache (``studio.inference.reference_cache``) never need it, so
    a voice whose reference was heard before synthesises without HuBERT in memory. Same ``encode`` call as
    :class:`ContentEncoder`; the folder is checked up front; the model loads once, under a lock.
    """

    def __init__(self, folder: str | Path, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32):
        from studio.models.load_once import LoadOnce

        self.folder = Path(folder)
        _check_folder(self.folder)
        self._device, self._dtype = device, dtype
        self._encoder = LoadOnce(
            lambda: ContentEncoder(self.folder, device=self._device, dtype=self._dtype),
            f"loading HuBERT from {self.folder} (a new reference clip)",
        )

    @property
    def loaded(self) -> bool:
        return self._encoder.loaded

    @property
    def cache_identity(self) -> str:
        """What the reference cache keys on, known without loading: the folder's files and the dtype."""
        files = sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in self.folder.iterdir() if p.is_file())
        return f"hubert|{self.folder.resolve()}|{files}|{self._dtype}"

    def load(self) -> ContentEncoder:
        return self._encoder.get()

    def encode(self, wav16k: torch.Tensor | np.ndarray, *, release_weights: bool = False) -> torch.Tensor:
        return self.load().encode(wav16k, release_weights=release_weights)

    def __getattr__(self, name: str):  # dim, device, dtype, model, conv_features … of the loaded encoder
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.load(), name)
