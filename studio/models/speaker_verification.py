"""The v2Pro / v2ProPlus speaker-verification model: loading its weights and turning audio into features.

v2Pro adds a second timbre cue to SoVITS: the 20480-d ERes2NetV2 feature of the reference clip (see
:mod:`studio.models.eres2net`), projected and added to the reference-encoder vector. Upstream loads
it from ``pretrained_models/sv/pretrained_eres2netv2w24s4ep4.ckpt`` (a torch zip holding a plain
state dict); we read that file with the restricted ``weights_only`` unpickler (no code can run) and
infer the network's sizes from the weights, so reduced test models load too.

The audio path is upstream's ``compute_embedding3``: a 16 kHz float waveform in [-1, 1] → 80-bin Kaldi
fbank (one per row) → ``forward3`` → (B, 20480). Training features use :func:`sv_embedding_for_training`
(32 kHz → 16 kHz, no peak normalisation); the reference chain (with its peak rule) lives in
:mod:`studio.inference.reference`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch

from studio.audio.fbank import kaldi_fbank, min_fbank_samples
from studio.audio.resample import sinc_resample
from studio.errors import AudioError, CheckpointError, MissingPretrainedError
from studio.models.eres2net import ERes2NetV2, ERes2NetV2Config
from studio.models.safe_pickle import safe_torch_load

__all__ = [
    "SV_SAMPLE_RATE",
    "SV_TRAIN_SAMPLE_RATE",
    "SpeakerVerifier",
    "load_speaker_verifier",
    "sv_embedding_for_training",
]

_LOGGER = logging.getLogger(__name__)

SV_SAMPLE_RATE = 16000
SV_TRAIN_SAMPLE_RATE = 32000
FBANK_BINS = 80
DOWNLOAD_HINT = "Run `studio download --version v2ProPlus` to fetch it (set HF_ENDPOINT to use a mirror)."
UI_DOWNLOAD_HINT = "In Models & Settings, choose v2ProPlus and press Download missing files."


class SpeakerVerifier:
    """An eval-mode ERes2NetV2 on a device, with the fbank front end in front of it."""

    sample_rate = SV_SAMPLE_RATE

    def __init__(self, model: ERes2NetV2, device: torch.device | str = "cpu", source: Path | None = None) -> None:
        self.device = torch.device(device)
        self.model = model.to(device=self.device, dtype=torch.float32).eval()
        self.source = source

    @property
    def config(self) -> ERes2NetV2Config:
        return self.model.config

    @property
    def embedding_dim(self) -> int:
        return self.config.embedding_dim

    @property
    def min_samples(self) -> int:
        """Shortest 16 kHz input that gives one fbank frame (25 ms = 400 samples)."""
        return min_fbank_samples(self.sample_rate)

    def fbank(self, wav16k: torch.Tensor) -> torch.Tensor:
        """(B, N) or (N,) waveform at 16 kHz → (B, T, 80) fbank, one per row (as upstream stacks them)."""
        wav = _as_rows(wav16k)
        if wav.shape[-1] < self.min_samples:
            raise AudioError(
                f"The clip is too short for the speaker-verification model: {1000 * wav.shape[-1] / self.sample_rate:.1f}"
                f" ms at 16 kHz, it needs at least {1000 * self.min_samples / self.sample_rate:g} ms.",
                hint="Use a longer clip of clear speech.",
            )
        return torch.stack([kaldi_fbank(row, sample_rate=self.sample_rate, num_mel_bins=FBANK_BINS) for row in wav])

    def embed_fbank(self, fbank: torch.Tensor) -> torch.Tensor:
        """(B, T, 80) fbank → (B, embedding_dim) float32 on this verifier's device."""
        with torch.inference_mode():
            return self.model.embed_fbank(fbank.to(device=self.device, dtype=torch.float32))

    def embed(self, wav16k: torch.Tensor) -> torch.Tensor:
        """(1, N) 16 kHz waveform in [-1, 1] → (1, 20480) feature (a batch of rows gives one row each)."""
        return self.embed_fbank(self.fbank(wav16k))

    def embed_32k(self, wav32k: torch.Tensor) -> torch.Tensor:
        """(1, N32) 32 kHz waveform → (1, 20480): resampled to 16 kHz with the windowed-sinc resampler first."""
        wav = _as_rows(wav32k)
        return self.embed(sinc_resample(wav, SV_TRAIN_SAMPLE_RATE, self.sample_rate))


def _as_rows(wav: torch.Tensor) -> torch.Tensor:
    if not isinstance(wav, torch.Tensor) or not wav.is_floating_point():
        raise AudioError(f"Expected a floating-point waveform tensor, got {getattr(wav, 'dtype', type(wav).__name__)}.")
    if wav.dim() == 1:
        wav = wav.unsqueeze(0)
    if wav.dim() != 2:
        raise AudioError(f"Expected a waveform shaped (1, N), got shape {tuple(wav.shape)}.")
    if not torch.isfinite(wav).all():
        raise AudioError("The clip contains invalid samples (NaN or infinity).")
    return wav.to(torch.float32)


def sv_embedding_for_training(verifier: SpeakerVerifier, wav32k: np.ndarray | torch.Tensor) -> torch.Tensor:
    """The 20480-d feature upstream's training preparation saves per clip (``7-sv_cn/<wav>.pt``), shape (1, 20480).

    ``wav32k`` is the stored 32 kHz training wav: an int16 array (scaled by 1/32768 here) or floats
    already in [-1, 1], shaped (N,) or (1, N). There is no peak normalisation on this path.
    """
    if isinstance(wav32k, np.ndarray):
        array = wav32k.astype(np.float32) / 32768.0 if wav32k.dtype == np.int16 else wav32k.astype(np.float32)
        wav = torch.from_numpy(np.ascontiguousarray(array))
    elif isinstance(wav32k, torch.Tensor) and wav32k.dtype == torch.int16:
        wav = wav32k.to(torch.float32) / 32768.0
    else:
        wav = wav32k
    return verifier.embed_32k(wav).cpu()


# ------------------------------------------------------------------------------------------------ loading


def load_speaker_verifier(path: Path | str, device: torch.device | str = "cpu") -> SpeakerVerifier:
    """Read upstream's ERes2NetV2 checkpoint (fp16 or fp32 state dict) safely → :class:`SpeakerVerifier`.

    Raises :class:`MissingPretrainedError` when the file is absent and :class:`CheckpointError` when it is
    truncated, unsafe or not an ERes2NetV2 state dict; both name the file and say what to do.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingPretrainedError(
            f"The speaker-verification model (needed by v2Pro/v2ProPlus) is missing: {path}",
            hint=DOWNLOAD_HINT,
            ui_hint=UI_DOWNLOAD_HINT,
        )
    try:
        state = safe_torch_load(path.read_bytes(), path)
    except CheckpointError as exc:
        raise CheckpointError(
            exc.message,
            hint="Delete it, then run `studio download --version v2ProPlus` to fetch it again.",
            ui_hint="Delete the damaged file, then choose v2ProPlus in Models & Settings and press Download missing files.",
        ) from None
    model = _build_model(_state_dict(state, path), path)
    _LOGGER.info("loaded speaker-verification model %s (%s)", path, model.config)
    return SpeakerVerifier(model, device, source=path)


class LazySpeakerVerifier:
    """The speaker-verification model, loaded only when a timbre clip must really be embedded.

    Clips whose embeddings are in the reference disk cache (``studio.inference.reference_cache``) never need it,
    so a v2Pro/v2ProPlus voice whose references were heard before synthesises without it in memory. Same
    ``embed`` call as :class:`SpeakerVerifier`. The service checks that the file exists when the voice loads; the
    model loads once, under a lock, and a damaged (or since deleted) file is reported then, by
    :func:`load_speaker_verifier`.
    """

    sample_rate = SV_SAMPLE_RATE

    def __init__(self, path: Path | str, device: torch.device | str = "cpu") -> None:
        from studio.models.load_once import LoadOnce

        self.source = Path(path)
        self.device = torch.device(device)
        self._verifier = LoadOnce(
            lambda: load_speaker_verifier(self.source, self.device),
            f"loading the speaker-verification model {self.source} (a new timbre clip)",
        )

    @property
    def loaded(self) -> bool:
        return self._verifier.loaded

    @property
    def min_samples(self) -> int:
        return min_fbank_samples(self.sample_rate)

    def load(self) -> SpeakerVerifier:
        return self._verifier.get()

    def embed(self, wav16k: torch.Tensor) -> torch.Tensor:
        return self.load().embed(wav16k)

    def __getattr__(self, name: str):  # model, config, embed_32k … of the loaded verifier
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.load(), name)


def _not_sv(path: Path, why: str) -> CheckpointError:
    return CheckpointError(
        f"{path}: not a speaker-verification (ERes2NetV2) weight file — {why}.",
        hint=f"Expected upstream's sv/pretrained_eres2netv2w24s4ep4.ckpt. {DOWNLOAD_HINT}",
        ui_hint=UI_DOWNLOAD_HINT,
    )


def _state_dict(obj: object, path: Path) -> dict[str, torch.Tensor]:
    if not isinstance(obj, Mapping):
        raise _not_sv(path, f"it holds a {type(obj).__name__}, not a state dict")
    if not obj or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()):
        raise _not_sv(path, "it does not map parameter names to tensors")
    return dict(obj)


def _build_model(state: dict[str, torch.Tensor], path: Path) -> ERes2NetV2:
    try:
        config = ERes2NetV2Config.from_state_dict(state)
    except (KeyError, ValueError, IndexError, ZeroDivisionError) as exc:
        raise _not_sv(path, f"its weights do not have the ERes2NetV2 layout ({exc})") from None
    with torch.device("meta"):  # no random init of ~30-50M weights that are overwritten at once
        model = ERes2NetV2(config)
    try:
        model.load_state_dict(state, strict=True, assign=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        raise _not_sv(
            path, f"its weights do not match the network ({' '.join(first[1:2] or first[:1])[:200]})"
        ) from None
    model = model.to(torch.float32)  # fp16 files are computed in float32, as upstream does
    floats = [t for t in model.state_dict().values() if t.is_floating_point()]
    if not all(torch.isfinite(t).all() for t in floats):
        raise _not_sv(path, "some weights are NaN or infinite")
    return model
