"""Posterior encoder ``enc_q`` (training only): linear spectrogram -> latent z.

Shape legend: B batch, F spectrogram bins (1025), T frames, C hidden, O inter channels, G gin.
"""

from __future__ import annotations

import torch
from torch import nn

from studio.models.sovits.layers import WN, sequence_mask


class PosteriorEncoder(nn.Module):
    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        hidden_channels: int,
        kernel_size: int,
        dilation_rate: int,
        n_layers: int,
        gin_channels: int = 0,
    ) -> None:
        super().__init__()
        self.out_channels = out_channels
        self.pre = nn.Conv1d(in_channels, hidden_channels, 1)
        self.enc = WN(hidden_channels, kernel_size, dilation_rate, n_layers, gin_channels=gin_channels)
        self.proj = nn.Conv1d(hidden_channels, out_channels * 2, 1)

    def forward(
        self, spec: torch.Tensor, lengths: torch.Tensor, g: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """spec (B, F, T) -> (z, m_q, logs_q (B, O, T) each, mask (B, 1, T)); g is not back-propagated into."""
        if g is not None:
            g = g.detach()
        mask = sequence_mask(lengths, spec.size(2)).unsqueeze(1).to(spec.dtype)
        x = self.pre(spec) * mask  # (B, C, T)
        x = self.enc(x, mask, g=g)
        stats = self.proj(x) * mask  # (B, 2·O, T)
        m, logs = torch.split(stats, self.out_channels, dim=1)
        z = (m + torch.randn_like(m) * torch.exp(logs)) * mask
        return z, m, logs, mask
