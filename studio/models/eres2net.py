"""ERes2NetV2: the speaker-verification network whose features v2Pro / v2ProPlus add to the timbre vector.

A ResNet-34-shaped stack (3, 4, 6, 3 blocks) over an 80-bin fbank "image" (1 channel, frequency ×
time). Each block is a Res2Net bottleneck: a 1×1 conv to ``scale`` groups of ``width`` channels, then
group i is convolved (3×3) after adding the previous group's output to it — a running sum in layers
1–2, an attentional feature fusion (AFF) in layers 3–4 — and a 1×1 conv back to ``planes ·
expansion`` channels plus the shortcut. Activations inside the blocks are Hardtanh(0, 20) (a ReLU
clipped at 20); the stem uses a plain ReLU. Layer 3's output is also downsampled by a 3×3 stride-2
conv (``layer3_ds``) and fused with layer 4's by another AFF (``fuse34``).

What v2Pro consumes is not the 192-d speaker embedding (``seg_1``, present in the weights but unused
here) but the fused feature map flattened over (channel, frequency) — index ``c · F' + f`` — and
averaged over time: 2048 · 10 = 20480 values for the official size (upstream ``forward3``).

Key names follow upstream's state dict exactly (1001 keys, same order), so its checkpoint loads
strictly. Legend: ``B`` batch, ``T`` fbank frames, ``C`` channels, ``F`` frequency rows (80 → 40 → 20 → 10).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["AFF", "ERes2NetV2", "ERes2NetV2Block", "ERes2NetV2Config", "STAGES"]

#: names of the intermediate outputs :meth:`ERes2NetV2.stage_outputs` returns (bn1 = before its ReLU)
STAGES = ("bn1", "layer1", "layer2", "layer3", "layer4", "layer3_ds", "fuse34")


@dataclass(frozen=True)
class ERes2NetV2Config:
    """Sizes of an ERes2NetV2; ``official()`` is upstream's ``ERes2NetV2(baseWidth=24, scale=4, expansion=4)``."""

    num_blocks: tuple[int, int, int, int] = (3, 4, 6, 3)
    m_channels: int = 64  # stem channels; stage i has planes m · 2^i
    feat_dim: int = 80  # only sizes seg_1 (the unused 192-d head)
    embedding_size: int = 192
    base_width: int = 24  # group width = floor(planes · base_width / 64)
    scale: int = 4  # groups per block
    expansion: int = 4  # block output = planes · expansion
    aff_reduction: int = 4  # AFF bottleneck = channels // aff_reduction
    fbank_bins: int = 80  # rows of the input fbank (fixed by the front end, not by the weights)

    @classmethod
    def official(cls) -> ERes2NetV2Config:
        return cls()

    def planes(self, stage: int) -> int:
        return self.m_channels * 2**stage

    def width(self, planes: int) -> int:
        return int(math.floor(planes * (self.base_width / 64.0)))

    @property
    def embedding_dim(self) -> int:
        """Length of :meth:`ERes2NetV2.embed_fbank`'s output (20480 for the official size)."""
        rows = self.fbank_bins
        for _ in range(3):  # layers 2–4 halve the frequency rows (rounding up)
            rows = (rows + 1) // 2
        return self.planes(3) * self.expansion * rows

    @classmethod
    def from_state_dict(cls, state: Mapping[str, torch.Tensor]) -> ERes2NetV2Config:
        """Infer the sizes from a state dict's shapes; KeyError / ValueError when it is not an ERes2NetV2."""
        m_channels = int(state["conv1.weight"].shape[0])
        expansion, rest = divmod(int(state["layer1.0.conv3.weight"].shape[0]), m_channels)
        width = int(state["layer1.0.convs.0.weight"].shape[0])
        scale = sum(1 for k in state if re.fullmatch(r"layer1\.0\.convs\.\d+\.weight", k))
        blocks = tuple(
            len({m.group(1) for k in state if (m := re.match(rf"layer{i}\.(\d+)\.", k))}) for i in range(1, 5)
        )
        stats = int(state["seg_1.weight"].shape[1]) // 2  # mean ‖ std of (C · feat_dim / 8) rows
        feat_dim = 8 * stats // (m_channels * 8 * max(expansion, 1))
        width3 = int(state["layer3.0.convs.0.weight"].shape[0])
        inter = int(state["layer3.0.fuse_models.0.local_att.0.weight"].shape[0])
        config = cls(
            num_blocks=blocks,  # type: ignore[arg-type]
            m_channels=m_channels,
            feat_dim=feat_dim,
            embedding_size=int(state["seg_1.weight"].shape[0]),
            base_width=math.ceil(width * 64 / m_channels),
            scale=scale,
            expansion=expansion,
            aff_reduction=width3 // max(inter, 1),
        )
        if rest or expansion < 1 or scale < 2 or len(blocks) != 4 or min(blocks) < 1 or feat_dim < 8:
            raise ValueError(f"state dict does not describe an ERes2NetV2 (inferred {config})")
        return config


class AFF(nn.Module):
    """Attentional feature fusion: a learned per-position gate g ∈ (0, 2) mixes ``x·g + y·(2 − g)``."""

    def __init__(self, channels: int, reduction: int = 4) -> None:
        super().__init__()
        inner = channels // reduction
        self.local_att = nn.Sequential(
            nn.Conv2d(channels * 2, inner, kernel_size=1),
            nn.BatchNorm2d(inner),
            nn.SiLU(),
            nn.Conv2d(inner, channels, kernel_size=1),
            nn.BatchNorm2d(channels),
        )

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:  # (B, C, F, T) each
        gate = 1.0 + torch.tanh(self.local_att(torch.cat((x, y), dim=1)))
        return x * gate + y * (2.0 - gate)


class ERes2NetV2Block(nn.Module):
    """Res2Net bottleneck; ``fuse=True`` joins the groups with AFF (layers 3–4) instead of a sum."""

    def __init__(self, in_planes: int, planes: int, stride: int, config: ERes2NetV2Config, *, fuse: bool) -> None:
        super().__init__()
        width, scale = config.width(planes), config.scale
        out_planes = planes * config.expansion
        self.width = width
        self.conv1 = nn.Conv2d(in_planes, width * scale, kernel_size=1, stride=stride, bias=False)
        self.bn1 = nn.BatchNorm2d(width * scale)
        self.convs = nn.ModuleList(nn.Conv2d(width, width, 3, padding=1, bias=False) for _ in range(scale))
        self.bns = nn.ModuleList(nn.BatchNorm2d(width) for _ in range(scale))
        self.fuse_models = nn.ModuleList(AFF(width, config.aff_reduction) for _ in range(scale - 1)) if fuse else None
        self.conv3 = nn.Conv2d(width * scale, out_planes, kernel_size=1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_planes)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_planes != out_planes:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm2d(out_planes),
            )
        self.act = nn.Hardtanh(0.0, 20.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C_in, F, T) → (B, planes·expansion, F/s, T/s)
        groups = torch.split(self.act(self.bn1(self.conv1(x))), self.width, dim=1)  # scale × (B, width, F, T)
        outs: list[torch.Tensor] = []
        current = groups[0]
        for i, group in enumerate(groups):
            if i > 0:  # the previous group's output joins this group's input
                current = self.fuse_models[i - 1](current, group) if self.fuse_models is not None else current + group
            current = self.act(self.bns[i](self.convs[i](current)))
            outs.append(current)
        out = self.bn3(self.conv3(torch.cat(outs, dim=1)))
        return self.act(out + self.shortcut(x))


class ERes2NetV2(nn.Module):
    """The network; :meth:`embed_fbank` is upstream's ``forward3`` (what v2Pro uses)."""

    def __init__(self, config: ERes2NetV2Config | None = None) -> None:
        super().__init__()
        self.config = config = config or ERes2NetV2Config.official()
        m, exp = config.m_channels, config.expansion
        self.conv1 = nn.Conv2d(1, m, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(m)
        in_planes = m
        for stage, blocks in enumerate(config.num_blocks):
            planes = config.planes(stage)
            layer = []
            for b in range(blocks):
                stride = 2 if stage > 0 and b == 0 else 1
                layer.append(ERes2NetV2Block(in_planes, planes, stride, config, fuse=stage >= 2))
                in_planes = planes * exp
            self.add_module(f"layer{stage + 1}", nn.Sequential(*layer))
        self.layer3_ds = nn.Conv2d(config.planes(2) * exp, config.planes(3) * exp, 3, stride=2, padding=1, bias=False)
        self.fuse34 = AFF(config.planes(3) * exp, config.aff_reduction)
        stats_dim = (config.feat_dim // 8) * m * 8 * exp
        self.seg_1 = nn.Linear(stats_dim * 2, config.embedding_size)  # 192-d head: kept for strict loading only

    def _trunk(self, fbank: torch.Tensor, taps: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        """(B, T, F) fbank → fused map (B, C', F', T'); records each stage in ``taps`` when given."""
        x = fbank.transpose(1, 2).unsqueeze(1)  # (B, 1, F, T)
        stem = self.bn1(self.conv1(x))  # (B, m, F, T)
        out1 = self.layer1(F.relu(stem))
        out2 = self.layer2(out1)
        out3 = self.layer3(out2)
        out4 = self.layer4(out3)
        out3_ds = self.layer3_ds(out3)
        fused = self.fuse34(out4, out3_ds)
        if taps is not None:
            taps.update(bn1=stem, layer1=out1, layer2=out2, layer3=out3, layer4=out4, layer3_ds=out3_ds, fuse34=fused)
        return fused

    def embed_fbank(self, fbank: torch.Tensor) -> torch.Tensor:
        """fbank (B, T, 80) → (B, C'·F') time-averaged features, flattened channel-major (c · F' + f)."""
        fused = self._trunk(fbank)  # (B, C', F', T')
        return fused.flatten(1, 2).mean(dim=-1)

    def stage_outputs(self, fbank: torch.Tensor) -> dict[str, torch.Tensor]:
        """Every stage of :data:`STAGES` for ``fbank`` (B, T, 80): for locating a numerical mismatch."""
        taps: dict[str, torch.Tensor] = {}
        self._trunk(fbank, taps)
        return taps
