"""Random initial weights that are skipped on the meta device.

Every model that loads a checkpoint is first built on the meta device (shapes without memory), then given the
file's tensors. PyTorch's first random operation on a meta tensor in a process (``normal_``, ``randn``) imports
its reference-operator machinery: ~0.9 s (measured here, more on a busy machine) of every process's first voice
load, for values that do not exist. These helpers make an empty tensor there instead, and draw exactly what
``torch.randn`` / ``nn.Embedding`` would draw anywhere else (same calls, same random stream).
"""

from __future__ import annotations

import torch
from torch import nn


def randn(*shape: int, scale: float = 1.0) -> torch.Tensor:
    """``torch.randn(*shape) * scale`` on the current default device; uninitialised on the meta device (where even
    the multiplication would import that machinery)."""
    tensor = torch.empty(*shape)
    if tensor.is_meta:
        return tensor
    tensor.normal_()
    return tensor if scale == 1.0 else tensor.mul_(scale)


def embedding(num_embeddings: int, dim: int) -> nn.Embedding:
    """``nn.Embedding(num_embeddings, dim)`` with its N(0, 1) initial weights (none on the meta device)."""
    return nn.Embedding(num_embeddings, dim, _weight=randn(num_embeddings, dim))
