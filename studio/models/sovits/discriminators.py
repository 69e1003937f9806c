"""Waveform discriminators for SoVITS fine-tuning (SPEC §9.4): one scale discriminator plus one period
discriminator per period (2, 3, 5, 7, 11 for v2; 2, 3, 5, 7, 11, 17, 23 for v2Pro/v2ProPlus, which is
``SoVITSConfig.mpd_periods`` — build with :meth:`MultiPeriodDiscriminator.for_config`), the HiFi-GAN design
used by VITS.

* :class:`ScaleDiscriminator` — 1-D grouped strided convs over the raw waveform.
* :class:`PeriodDiscriminator` — the waveform folded into (T / p, p) and read by 2-D convs with (k, 1)
  kernels, so each column sees every p-th sample.
* :class:`MultiPeriodDiscriminator` — ``discriminators.0`` is the scale one, ``1…`` the period ones.

Every conv is weight-normed (``torch.nn.utils.parametrizations.weight_norm``). State-dict keys of upstream's
``s2D*.pth`` use the legacy names ``…weight_g`` / ``…weight_v``; :func:`load_discriminator_state`
accepts both. (The key layout ``discriminators.<i>.convs.<j>`` / ``…conv_post`` is the VITS one; it is not
listed in our spec, so a file that does not fit is reported and the discriminator starts from scratch.)

Each discriminator returns its score map flattened to (B, n) and the list of intermediate feature maps
(for the feature-matching loss). Legend: ``B`` batch, ``N`` samples.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

from studio.models.sovits.config import SoVITSConfig

LRELU_SLOPE = 0.1
V2_PERIODS = (2, 3, 5, 7, 11)


def _conv_stack(convs: nn.ModuleList, conv_post: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Leaky-ReLU convolutions then ``conv_post``: (scores flattened to (B, n), every layer's output)."""
    maps = []
    for conv in convs:
        x = F.leaky_relu(conv(x), LRELU_SLOPE)
        maps.append(x)
    x = conv_post(x)
    maps.append(x)
    return x.flatten(1), maps


class ScaleDiscriminator(nn.Module):
    # (in, out, kernel, stride, groups, padding)
    LAYERS = (
        (1, 16, 15, 1, 1, 7),
        (16, 64, 41, 4, 4, 20),
        (64, 256, 41, 4, 16, 20),
        (256, 1024, 41, 4, 64, 20),
        (1024, 1024, 41, 4, 256, 20),
        (1024, 1024, 5, 1, 1, 2),
    )

    def __init__(self, width: float = 1.0) -> None:
        super().__init__()

        def ch(c: int) -> int:
            return c if c == 1 else max(1, int(c * width))

        self.convs = nn.ModuleList(
            weight_norm(nn.Conv1d(ch(i), ch(o), k, s, groups=min(g, ch(i)), padding=p))
            for i, o, k, s, g, p in self.LAYERS
        )
        self.conv_post = weight_norm(nn.Conv1d(ch(1024), 1, 3, 1, padding=1))

    def forward(self, wav: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """wav (B, 1, N) → scores (B, n), feature maps."""
        return _conv_stack(self.convs, self.conv_post, wav)


class PeriodDiscriminator(nn.Module):
    CHANNELS = (1, 32, 128, 512, 1024, 1024)

    def __init__(self, period: int, kernel_size: int = 5, stride: int = 3, width: float = 1.0) -> None:
        super().__init__()
        self.period = period
        chans = [c if c == 1 else max(1, int(c * width)) for c in self.CHANNELS]
        pad = (kernel_size - 1) // 2
        self.convs = nn.ModuleList(
            weight_norm(
                nn.Conv2d(chans[i], chans[i + 1], (kernel_size, 1), (stride if i < 4 else 1, 1), padding=(pad, 0))
            )
            for i in range(5)
        )
        self.conv_post = weight_norm(nn.Conv2d(chans[-1], 1, (3, 1), 1, padding=(1, 0)))

    def forward(self, wav: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """wav (B, 1, N) → scores (B, n), feature maps; N is reflect-padded to a multiple of the period."""
        b, c, n = wav.shape
        if n % self.period:
            wav = F.pad(wav, (0, self.period - n % self.period), mode="reflect")
        x = wav.view(b, c, -1, self.period)  # (B, 1, N / p, p)
        return _conv_stack(self.convs, self.conv_post, x)


class MultiPeriodDiscriminator(nn.Module):
    """The scale discriminator followed by one period discriminator per period."""

    def __init__(self, periods: tuple[int, ...] = V2_PERIODS, width: float = 1.0) -> None:
        super().__init__()
        self.periods = tuple(periods)
        self.discriminators = nn.ModuleList(
            [ScaleDiscriminator(width)] + [PeriodDiscriminator(p, width=width) for p in periods]
        )

    @classmethod
    def for_config(cls, config: SoVITSConfig, width: float = 1.0) -> MultiPeriodDiscriminator:
        """The discriminator upstream trains next to a generator of ``config`` (its ``mpd_periods``)."""
        return cls(config.mpd_periods, width)

    def forward(
        self, real: torch.Tensor, fake: torch.Tensor
    ) -> tuple[list[torch.Tensor], list[torch.Tensor], list[list[torch.Tensor]], list[list[torch.Tensor]]]:
        """real, fake (B, 1, N) → (real scores, fake scores, real feature maps, fake feature maps)."""
        real_scores, fake_scores, real_maps, fake_maps = [], [], [], []
        for d in self.discriminators:
            r, rm = d(real)
            f, fm = d(fake)
            real_scores.append(r)
            fake_scores.append(f)
            real_maps.append(rm)
            fake_maps.append(fm)
        return real_scores, fake_scores, real_maps, fake_maps


def _our_key(key: str) -> str:
    if key.endswith(".weight_g"):
        return key[: -len(".weight_g")] + ".parametrizations.weight.original0"
    if key.endswith(".weight_v"):
        return key[: -len(".weight_v")] + ".parametrizations.weight.original1"
    return key


def load_discriminator_state(model: MultiPeriodDiscriminator, state: dict[str, torch.Tensor]) -> list[str]:
    """Load weights stored with legacy (``weight_g``/``weight_v``) or current weight-norm names.

    Returns a list of problems (missing/unexpected keys, shape mismatches); the weights are loaded only when
    that list is empty.
    """
    mapped = {_our_key(k[len("module.") :] if k.startswith("module.") else k): v for k, v in state.items()}
    expected = model.state_dict()
    problems = [f"missing {k}" for k in expected if k not in mapped]
    problems += [f"unexpected {k}" for k in mapped if k not in expected]
    problems += [
        f"{k}: shape {tuple(mapped[k].shape)} != {tuple(v.shape)}"
        for k, v in expected.items()
        if k in mapped and mapped[k].shape != v.shape
    ]
    if not problems:
        model.load_state_dict({k: mapped[k].float() for k in expected}, strict=True)
    return problems
