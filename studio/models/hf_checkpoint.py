"""A Hugging Face folder's weight file read as it is, into a network of ours built on the meta device.

The two encoders we run from Hugging Face folders (:mod:`studio.models.bert_encoder`,
:mod:`studio.models.hubert_encoder`) are plain PyTorch with the Hugging Face parameter names. Their weights are
the file's own tensors: a ``model.safetensors`` or a zip-format ``pytorch_model.bin`` stays memory-mapped (pages
are read when first touched, and can be let go again: :func:`studio.models.weights_cache.release_pages`); only a
legacy (pre-zip) ``.bin`` is read into memory.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn


def open_tensors(weight_file: Path) -> dict[str, torch.Tensor]:
    """Every tensor of ``weight_file`` by its stored name, memory-mapped where the format allows."""
    if weight_file.suffix == ".safetensors":
        from safetensors import safe_open

        with safe_open(str(weight_file), framework="pt", device="cpu") as handle:
            return {name: handle.get_tensor(name) for name in handle.keys()}
    try:
        return torch.load(str(weight_file), map_location="cpu", weights_only=True, mmap=True)
    except RuntimeError:  # legacy (non-zip) serialisation cannot be memory-mapped
        return torch.load(str(weight_file), map_location="cpu", weights_only=True)


def assign_checked(model: nn.Module, state: dict[str, torch.Tensor]) -> list[str]:
    """Give ``model`` (built on the meta device) the fp32 tensors of ``state`` by name, without a copy where they
    are fp32 already; returns the problems instead when a weight is missing or misshapen (nothing is assigned)."""
    own = model.state_dict()
    problems = [f"{k} missing" for k in own if k not in state]
    problems += [
        f"{k} {tuple(state[k].shape)} ≠ {tuple(own[k].shape)}"
        for k in own
        if k in state and state[k].shape != own[k].shape
    ]
    if not problems:
        model.load_state_dict({k: state[k].float() for k in own}, strict=True, assign=True)
    return problems
