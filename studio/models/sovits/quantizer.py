"""Residual vector quantizer over SSL features (frozen; n_q = 1 codebook of 1024 × 768 in v2).

Shape legend: B batch, D feature dim (768), T frames (25 Hz), Q number of codebooks, K codebook size.
Buffer names follow the official checkpoints:
``vq.layers.{i}._codebook.{inited, cluster_size, embed, embed_avg}``. Only ``embed`` is used for
encoding/decoding; the EMA statistics are kept so files round-trip unchanged (upstream never
updates them while fine-tuning because the quantizer is frozen).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from studio.models.meta_init import randn


class EuclideanCodebook(nn.Module):
    def __init__(self, dim: int, codebook_size: int) -> None:
        super().__init__()
        self.register_buffer("inited", torch.ones(1))
        self.register_buffer("cluster_size", torch.zeros(codebook_size))
        self.register_buffer("embed", randn(codebook_size, dim))
        self.register_buffer("embed_avg", self.embed.clone())

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(..., D) -> (...) index of the nearest codeword (Euclidean)."""
        flat = x.reshape(-1, x.shape[-1])  # (N, D)
        embed_t = self.embed.t()  # (D, K)
        neg_dist = -(flat.pow(2).sum(1, keepdim=True) - 2 * flat @ embed_t + embed_t.pow(2).sum(0, keepdim=True))
        return neg_dist.max(dim=-1).indices.view(*x.shape[:-1])

    def decode(self, indices: torch.Tensor) -> torch.Tensor:
        """(...) -> (..., D)"""
        return F.embedding(indices, self.embed)


class VectorQuantization(nn.Module):
    def __init__(self, dim: int, codebook_size: int) -> None:
        super().__init__()
        self._codebook = EuclideanCodebook(dim, codebook_size)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(B, D, T) -> (B, T)"""
        return self._codebook.encode(x.transpose(1, 2))

    def decode(self, indices: torch.Tensor) -> torch.Tensor:
        """(B, T) -> (B, D, T)"""
        return self._codebook.decode(indices).transpose(1, 2)


class ResidualVectorQuantization(nn.Module):
    def __init__(self, dim: int, codebook_size: int, n_q: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(VectorQuantization(dim, codebook_size) for _ in range(n_q))


class ResidualVectorQuantizer(nn.Module):
    """x (B, D, T) <-> codes (Q, B, T)."""

    def __init__(self, dim: int = 768, codebook_size: int = 1024, n_q: int = 1) -> None:
        super().__init__()
        self.n_q = n_q
        self.vq = ResidualVectorQuantization(dim, codebook_size, n_q)

    def encode(self, x: torch.Tensor, n_q: int | None = None) -> torch.Tensor:
        """(B, D, T) -> codes (Q, B, T); each stage quantizes the residual of the previous ones."""
        residual = x
        codes = []
        for layer in self.vq.layers[: n_q or self.n_q]:
            indices = layer.encode(residual)  # (B, T)
            residual = residual - layer.decode(indices)
            codes.append(indices)
        return torch.stack(codes)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """codes (Q', B, T) with Q' ≤ Q -> (B, D, T), the sum of the stages' codewords."""
        out = None
        for layer, indices in zip(self.vq.layers, codes):
            part = layer.decode(indices)
            out = part if out is None else out + part
        assert out is not None, "no codebooks given"
        return out

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Quantize without gradient through the codebook (frozen): returns (quantized (B, D, T), codes (Q, B, T))."""
        codes = self.encode(x)
        return self.decode(codes), codes
