"""Prior encoder ``enc_p``: semantic (SSL) frames + phones + style vector -> prior mean / log-scale.

Shape legend: B batch, C hidden channels, T frames at 50 Hz (2 × T_sem), T_text phones,
G style channels (gin), O output (inter) channels.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from studio.models.meta_init import embedding
from studio.models.sovits.config import SoVITSConfig
from studio.models.sovits.layers import AttentionEncoder, MultiHeadAttention, sequence_mask


class MRTE(nn.Module):
    """Cross attention from content frames (queries) to phones (keys/values), plus the style vector."""

    def __init__(self, channels: int, hidden_channels: int, n_heads: int) -> None:
        super().__init__()
        self.cross_attention = MultiHeadAttention(hidden_channels, hidden_channels, n_heads)
        self.c_pre = nn.Conv1d(channels, hidden_channels, 1)
        self.text_pre = nn.Conv1d(channels, hidden_channels, 1)
        self.c_post = nn.Conv1d(hidden_channels, channels, 1)

    def forward(
        self,
        ssl: torch.Tensor,
        ssl_mask: torch.Tensor,
        text: torch.Tensor,
        text_mask: torch.Tensor,
        ge: torch.Tensor,
    ) -> torch.Tensor:
        """ssl (B, C, T), text (B, C, T_text), ge (B, G=hidden, 1) -> (B, C, T)."""
        attn_mask = text_mask.unsqueeze(2) * ssl_mask.unsqueeze(-1)  # (B, 1, T, T_text)
        ssl = self.c_pre(ssl * ssl_mask)  # (B, hidden, T)
        text = self.text_pre(text * text_mask)  # (B, hidden, T_text)
        x = self.cross_attention(ssl * ssl_mask, text * text_mask, attn_mask) + ssl + ge
        return self.c_post(x * ssl_mask)  # (B, C, T)


class TextEncoder(nn.Module):
    def __init__(self, config: SoVITSConfig) -> None:
        super().__init__()
        c = config
        self.out_channels = c.inter_channels
        self.ssl_proj = nn.Conv1d(c.ssl_dim, c.hidden_channels, 1)
        layer_args = (c.hidden_channels, c.filter_channels, c.n_heads)
        tail = (c.kernel_size, c.p_dropout, c.window_size)
        self.encoder_ssl = AttentionEncoder(*layer_args, c.n_layers // 2, *tail)
        self.encoder_text = AttentionEncoder(*layer_args, c.n_layers, *tail)
        self.text_embedding = embedding(c.n_symbols, c.hidden_channels)
        self.mrte = MRTE(c.hidden_channels, c.mrte_hidden_channels, c.mrte_n_heads)
        self.encoder2 = AttentionEncoder(*layer_args, c.n_layers // 2, *tail)
        self.proj = nn.Conv1d(c.hidden_channels, c.inter_channels * 2, 1)

    def forward(
        self,
        ssl: torch.Tensor,
        ssl_lengths: torch.Tensor,
        text: torch.Tensor,
        text_lengths: torch.Tensor,
        ge: torch.Tensor,
        speed: float = 1.0,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """ssl (B, D_ssl, T) quantized content, text (B, T_text) ids, ge (B, G, 1).

        Returns (hidden (B, C, T'), m_p (B, O, T'), logs_p (B, O, T'), mask (B, 1, T')) where
        T' = T, or int(T / speed) + 1 when speed != 1 (linear resampling of the encoder output).
        """
        ssl_mask = sequence_mask(ssl_lengths, ssl.size(2)).unsqueeze(1).to(ssl.dtype)  # (B, 1, T)
        x = self.ssl_proj(ssl * ssl_mask) * ssl_mask  # (B, C, T)
        x = self.encoder_ssl(x * ssl_mask, ssl_mask)

        text_mask = sequence_mask(text_lengths, text.size(1)).unsqueeze(1).to(x.dtype)  # (B, 1, T_text)
        t = self.text_embedding(text).transpose(1, 2)  # (B, C, T_text)
        t = self.encoder_text(t * text_mask, text_mask)

        x = self.mrte(x, ssl_mask, t, text_mask, ge)
        x = self.encoder2(x * ssl_mask, ssl_mask)  # (B, C, T)
        if speed != 1:
            x = F.interpolate(x, size=int(x.shape[-1] / speed) + 1, mode="linear")  # (B, C, T')
            ssl_mask = F.interpolate(ssl_mask, size=x.shape[-1], mode="nearest")
        stats = self.proj(x) * ssl_mask  # (B, 2·O, T')
        m_p, logs_p = torch.split(stats, self.out_channels, dim=1)
        return x, m_p, logs_p, ssl_mask
