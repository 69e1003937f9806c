"""Shared SoVITS building blocks (VITS family), leaf blocks first.

Shape legend: B batch, C channels, T time frames (any rate), H heads, D channels per head,
M = 2T−1 relative offsets. Masks are (B, 1, T) floats of 0/1.

Weight-normed convolutions keep the legacy ``weight_g`` / ``weight_v`` parameter names of the
official checkpoints: weight = g · v / ‖v‖, the norm taken over every dim except 0.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from studio.models.meta_init import randn


def sequence_mask(lengths: torch.Tensor, max_length: int | None = None) -> torch.Tensor:
    """(B,) lengths -> (B, T) bool, True where t < length."""
    max_length = int(lengths.max()) if max_length is None else max_length
    steps = torch.arange(max_length, dtype=lengths.dtype, device=lengths.device)
    return steps.unsqueeze(0) < lengths.unsqueeze(1)


def same_padding(kernel_size: int, dilation: int = 1) -> int:
    return (kernel_size * dilation - dilation) // 2


class ChannelLayerNorm(nn.Module):
    """LayerNorm over the channel axis of a (B, C, T) tensor; parameters named gamma / beta."""

    def __init__(self, channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.channels = channels
        self.eps = eps
        self.gamma = nn.Parameter(torch.ones(channels))
        self.beta = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.transpose(1, -1)  # (B, T, C)
        x = F.layer_norm(x, (self.channels,), self.gamma, self.beta, self.eps)
        return x.transpose(1, -1)  # (B, C, T)


def _weight_from_g_v(weight_g: torch.Tensor, weight_v: torch.Tensor) -> torch.Tensor:
    norm = weight_v.norm(2, dim=tuple(range(1, weight_v.dim())), keepdim=True)
    return weight_v * (weight_g / norm)


def _split_weight(conv: nn.Module) -> None:
    """Replace ``conv.weight`` (d0, d1, k) by ``weight_g`` (its norm over dims 1, 2) and ``weight_v`` (a copy)."""
    weight = conv.weight.detach()
    del conv.weight
    if weight.is_meta:  # shapes only, for a checkpoint to fill in (no norm to take: see studio.models.meta_init)
        conv.weight_g = nn.Parameter(torch.empty(weight.shape[0], 1, 1, device=weight.device))
        conv.weight_v = nn.Parameter(weight)
        return
    conv.weight_g = nn.Parameter(weight.norm(2, dim=(1, 2), keepdim=True))
    conv.weight_v = nn.Parameter(weight.clone())


class _FoldableWeightNorm:
    """Inference shortcut shared by the weight-normed convs: :meth:`fold` computes g·v/‖v‖ once (and may store
    it in a lighter dtype); :meth:`unfold` goes back to recomputing it from the parameters at every call."""

    folded: torch.Tensor | None = None

    def fold(self, dtype: torch.dtype | None = None) -> None:
        with torch.no_grad():
            weight = _weight_from_g_v(self.weight_g, self.weight_v)
        self.folded = weight.to(dtype or weight.dtype).contiguous()

    def unfold(self) -> None:
        self.folded = None

    def current_weight(self) -> torch.Tensor:
        if self.folded is not None:
            return self.folded
        return _weight_from_g_v(self.weight_g, self.weight_v)


class WeightNormConv1d(_FoldableWeightNorm, nn.Conv1d):
    """Conv1d whose weight is stored as (weight_g [out,1,1], weight_v [out,in,k])."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        _split_weight(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(x, self.current_weight(), self.bias)


class WeightNormConvTranspose1d(_FoldableWeightNorm, nn.ConvTranspose1d):
    """ConvTranspose1d with weight (weight_g [in,1,1], weight_v [in,out,k]) — norm over dim 0 as stored."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        _split_weight(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv_transpose1d(
            x, self.current_weight(), self.bias, self.stride, self.padding, self.output_padding, self.groups,
            self.dilation,
        )


class MultiHeadAttention(nn.Module):
    """Conv1d-projected multi-head attention, optionally with shared relative-position embeddings.

    With ``window_size`` set (self-attention only) the scores get q·rel_kᵀ/√D for offsets in
    [−window, window] and the values get the matching rel_v rows (VITS formulation).
    """

    def __init__(
        self, channels: int, out_channels: int, n_heads: int, p_dropout: float = 0.0, window_size: int | None = None
    ) -> None:
        super().__init__()
        assert channels % n_heads == 0
        self.n_heads = n_heads
        self.head_dim = channels // n_heads
        self.window_size = window_size
        if window_size is not None:
            scale = self.head_dim**-0.5
            self.emb_rel_k = nn.Parameter(randn(1, 2 * window_size + 1, self.head_dim, scale=scale))
            self.emb_rel_v = nn.Parameter(randn(1, 2 * window_size + 1, self.head_dim, scale=scale))
        self.conv_q = nn.Conv1d(channels, channels, 1)
        self.conv_k = nn.Conv1d(channels, channels, 1)
        self.conv_v = nn.Conv1d(channels, channels, 1)
        self.conv_o = nn.Conv1d(channels, out_channels, 1)
        self.drop = nn.Dropout(p_dropout)

    def forward(self, x: torch.Tensor, context: torch.Tensor, attn_mask: torch.Tensor | None) -> torch.Tensor:
        """x (B, C, T_q) queries, context (B, C, T_k) keys/values, attn_mask (B, 1, T_q, T_k) -> (B, C_out, T_q)."""
        q, k, v = self.conv_q(x), self.conv_k(context), self.conv_v(context)
        b, c, t_q = q.shape
        t_k = k.shape[2]
        q = q.view(b, self.n_heads, self.head_dim, t_q).transpose(2, 3)  # (B, H, T_q, D)
        k = k.view(b, self.n_heads, self.head_dim, t_k).transpose(2, 3)  # (B, H, T_k, D)
        v = v.view(b, self.n_heads, self.head_dim, t_k).transpose(2, 3)
        q = q / math.sqrt(self.head_dim)
        scores = q @ k.transpose(-2, -1)  # (B, H, T_q, T_k)
        if self.window_size is not None:
            assert t_q == t_k, "relative attention is self-attention only"
            rel_k = self._relative_embeddings(self.emb_rel_k, t_k)  # (1, M, D)
            rel_logits = q @ rel_k.unsqueeze(0).transpose(-2, -1)  # (B, H, T, M)
            scores = scores + _relative_to_absolute(rel_logits)
        if attn_mask is not None:
            scores = scores.masked_fill(attn_mask == 0, -1e4)
        p_attn = self.drop(torch.softmax(scores, dim=-1))  # (B, H, T_q, T_k)
        out = p_attn @ v  # (B, H, T_q, D)
        if self.window_size is not None:
            rel_v = self._relative_embeddings(self.emb_rel_v, t_k)
            out = out + _absolute_to_relative(p_attn) @ rel_v.unsqueeze(0)
        out = out.transpose(2, 3).contiguous().view(b, c, t_q)
        return self.conv_o(out)

    def _relative_embeddings(self, table: torch.Tensor, length: int) -> torch.Tensor:
        """(1, 2W+1, D) -> (1, 2·length−1, D): offsets −(length−1)…(length−1), zero outside the window."""
        window = self.window_size
        pad = max(length - (window + 1), 0)
        start = max((window + 1) - length, 0)
        if pad > 0:
            table = F.pad(table, (0, 0, pad, pad))
        return table[:, start : start + 2 * length - 1]


def _relative_to_absolute(x: torch.Tensor) -> torch.Tensor:
    """(B, H, T, 2T−1) scores by offset -> (B, H, T, T): out[i, j] = x[i, j − i + T − 1]."""
    t = x.shape[2]
    idx = torch.arange(t, device=x.device)
    offsets = (idx.view(1, t) - idx.view(t, 1) + t - 1).expand(*x.shape[:2], t, t)
    return torch.gather(x, 3, offsets)


def _absolute_to_relative(x: torch.Tensor) -> torch.Tensor:
    """(B, H, T, T) weights -> (B, H, T, 2T−1): out[i, r] = x[i, i + r − (T−1)] (0 where outside)."""
    b, h, t, _ = x.shape
    out = x.new_zeros(b, h, t, 2 * t - 1)
    idx = torch.arange(t, device=x.device)
    offsets = (idx.view(1, t) - idx.view(t, 1) + t - 1).expand(b, h, t, t)
    return out.scatter(3, offsets, x)


class FFN(nn.Module):
    """Conv(k, same pad) -> ReLU -> Conv(k), masked before each conv."""

    def __init__(
        self, in_channels: int, out_channels: int, filter_channels: int, kernel_size: int, p_dropout: float = 0.0
    ) -> None:
        super().__init__()
        self.pad = ((kernel_size - 1) // 2, kernel_size // 2)
        self.conv_1 = nn.Conv1d(in_channels, filter_channels, kernel_size)
        self.conv_2 = nn.Conv1d(filter_channels, out_channels, kernel_size)
        self.drop = nn.Dropout(p_dropout)

    def forward(self, x: torch.Tensor, x_mask: torch.Tensor) -> torch.Tensor:
        x = self.conv_1(F.pad(x * x_mask, self.pad))  # (B, C_filter, T)
        x = self.drop(torch.relu(x))
        x = self.conv_2(F.pad(x * x_mask, self.pad))  # (B, C_out, T)
        return x * x_mask


class AttentionEncoder(nn.Module):
    """Post-norm transformer stack: x = LN(x + attn(x)); x = LN(x + FFN(x)). (B, C, T) -> (B, C, T)."""

    def __init__(
        self,
        hidden_channels: int,
        filter_channels: int,
        n_heads: int,
        n_layers: int,
        kernel_size: int,
        p_dropout: float,
        window_size: int = 4,
    ) -> None:
        super().__init__()
        self.n_layers = n_layers
        self.drop = nn.Dropout(p_dropout)
        self.attn_layers = nn.ModuleList(
            MultiHeadAttention(hidden_channels, hidden_channels, n_heads, p_dropout, window_size)
            for _ in range(n_layers)
        )
        self.norm_layers_1 = nn.ModuleList(ChannelLayerNorm(hidden_channels) for _ in range(n_layers))
        self.ffn_layers = nn.ModuleList(
            FFN(hidden_channels, hidden_channels, filter_channels, kernel_size, p_dropout) for _ in range(n_layers)
        )
        self.norm_layers_2 = nn.ModuleList(ChannelLayerNorm(hidden_channels) for _ in range(n_layers))

    def forward(self, x: torch.Tensor, x_mask: torch.Tensor) -> torch.Tensor:
        attn_mask = x_mask.unsqueeze(2) * x_mask.unsqueeze(-1)  # (B, 1, T, T)
        x = x * x_mask
        for attn, norm1, ffn, norm2 in zip(self.attn_layers, self.norm_layers_1, self.ffn_layers, self.norm_layers_2):
            x = norm1(x + self.drop(attn(x, x, attn_mask)))
            x = norm2(x + self.drop(ffn(x, x_mask)))
        return x * x_mask


class WN(nn.Module):
    """WaveNet-style stack of gated dilated convs with global conditioning g (B, gin, 1)."""

    def __init__(
        self,
        hidden_channels: int,
        kernel_size: int,
        dilation_rate: int,
        n_layers: int,
        gin_channels: int = 0,
        p_dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.hidden_channels = hidden_channels
        self.n_layers = n_layers
        self.in_layers = nn.ModuleList()
        self.res_skip_layers = nn.ModuleList()
        self.drop = nn.Dropout(p_dropout)
        if gin_channels:
            self.cond_layer = WeightNormConv1d(gin_channels, 2 * hidden_channels * n_layers, 1)
        for i in range(n_layers):
            dilation = dilation_rate**i
            self.in_layers.append(
                WeightNormConv1d(
                    hidden_channels,
                    2 * hidden_channels,
                    kernel_size,
                    dilation=dilation,
                    padding=same_padding(kernel_size, dilation),
                )
            )
            res_skip = 2 * hidden_channels if i < n_layers - 1 else hidden_channels
            self.res_skip_layers.append(WeightNormConv1d(hidden_channels, res_skip, 1))

    def forward(self, x: torch.Tensor, x_mask: torch.Tensor, g: torch.Tensor | None = None) -> torch.Tensor:
        hidden = self.hidden_channels
        output = torch.zeros_like(x)  # (B, C, T)
        if g is not None:
            g = self.cond_layer(g)  # (B, 2·C·n_layers, 1)
        for i, (in_layer, res_skip_layer) in enumerate(zip(self.in_layers, self.res_skip_layers)):
            x_in = in_layer(x)  # (B, 2C, T)
            if g is not None:
                x_in = x_in + g[:, i * 2 * hidden : (i + 1) * 2 * hidden, :]
            acts = self.drop(torch.tanh(x_in[:, :hidden]) * torch.sigmoid(x_in[:, hidden:]))  # (B, C, T)
            res_skip = res_skip_layer(acts)
            if i < self.n_layers - 1:
                x = (x + res_skip[:, :hidden]) * x_mask
                output = output + res_skip[:, hidden:]
            else:
                output = output + res_skip
        return output * x_mask
