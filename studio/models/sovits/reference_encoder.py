"""Style encoder ``ref_enc``: a linear spectrogram -> one global style vector ge.

Shape legend: B batch, F input bins (704 for v2, 1025 for v1), T spectrogram frames,
C style hidden (128), G output (gin) channels. Parameter names follow the official files
(``spectral.0.fc``, ``temporal.0.conv1.conv``, ``slf_attn.w_qs``, ``fc.fc``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class LinearNorm(nn.Module):
    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.fc = nn.Linear(in_features, out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x)


class Mish(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.tanh(F.softplus(x))


class ConvNorm(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, kernel_size: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(in_channels, out_channels, kernel_size, padding=(kernel_size - 1) // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class Conv1dGLU(nn.Module):
    """x + a·σ(b) with [a; b] = conv(x). (B, C, T) -> (B, C, T)."""

    def __init__(self, channels: int, kernel_size: int, dropout: float) -> None:
        super().__init__()
        self.channels = channels
        self.conv1 = ConvNorm(channels, 2 * channels, kernel_size)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = torch.split(self.conv1(x), self.channels, dim=1)
        return x + self.dropout(a * torch.sigmoid(b))


class StyleSelfAttention(nn.Module):
    """Multi-head self-attention with a residual; scores are divided by √d_model (not √d_head)."""

    def __init__(self, n_heads: int, d_model: int, dropout: float) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.head_dim = d_model // n_heads
        self.temperature = math.sqrt(d_model)
        self.w_qs = nn.Linear(d_model, d_model)
        self.w_ks = nn.Linear(d_model, d_model)
        self.w_vs = nn.Linear(d_model, d_model)
        self.fc = nn.Linear(d_model, d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, pad_mask: torch.Tensor | None) -> torch.Tensor:
        """x (B, T, C), pad_mask (B, T) True at padding -> (B, T, C)."""
        b, t, _ = x.shape
        h, d = self.n_heads, self.head_dim

        def heads(y: torch.Tensor) -> torch.Tensor:
            return y.view(b, t, h, d).transpose(1, 2)  # (B, H, T, D)

        q, k, v = heads(self.w_qs(x)), heads(self.w_ks(x)), heads(self.w_vs(x))
        scores = q @ k.transpose(-2, -1) / self.temperature  # (B, H, T, T)
        if pad_mask is not None:
            scores = scores.masked_fill(pad_mask[:, None, None, :], -math.inf)
        attn = self.dropout(torch.softmax(scores, dim=-1))
        out = (attn @ v).transpose(1, 2).reshape(b, t, h * d)  # (B, T, C)
        return self.dropout(self.fc(out)) + x


class MelStyleEncoder(nn.Module):
    def __init__(
        self,
        in_bins: int,
        out_channels: int,
        hidden: int = 128,
        kernel_size: int = 5,
        n_heads: int = 2,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.spectral = nn.Sequential(
            LinearNorm(in_bins, hidden),
            Mish(),
            nn.Dropout(dropout),
            LinearNorm(hidden, hidden),
            Mish(),
            nn.Dropout(dropout),
        )
        self.temporal = nn.Sequential(Conv1dGLU(hidden, kernel_size, dropout), Conv1dGLU(hidden, kernel_size, dropout))
        self.slf_attn = StyleSelfAttention(n_heads, hidden, dropout)
        self.fc = LinearNorm(hidden, out_channels)

    def forward(self, spec: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """spec (B, F, T), mask (B, 1, T) of 0/1 -> ge (B, G, 1), the masked mean over time."""
        pad = (mask.int() == 0).squeeze(1) if mask is not None else None  # (B, T)
        x = self.spectral(spec.transpose(1, 2))  # (B, T, C)
        x = self.temporal(x.transpose(1, 2)).transpose(1, 2)  # (B, T, C)
        if pad is not None:
            x = x.masked_fill(pad.unsqueeze(-1), 0)
        x = self.fc(self.slf_attn(x, pad))  # (B, T, G)
        if pad is None:
            return x.mean(dim=1).unsqueeze(-1)
        x = x.masked_fill(pad.unsqueeze(-1), 0)
        frames = (~pad).sum(dim=1, keepdim=True)  # (B, 1)
        return (x.sum(dim=1) / frames).unsqueeze(-1)  # (B, G, 1)
