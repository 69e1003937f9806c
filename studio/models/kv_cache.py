"""An explicit key/value cache for the text-to-semantic GPT.

The cache is allocated once per generation call (``KVCache.for_model``) with room for the prompt plus every
token that may still be decoded; each layer writes its keys and values into its own slice. It also remembers
which cached positions are padding (left-padded text in batched decoding), so a decoding step never attends
to them.

Shapes: ``B`` sequences, ``H`` heads, ``L`` capacity (positions), ``Dh`` head width.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from studio.models.text2semantic import Text2SemanticModel


class KVCache:
    """Preallocated keys/values for every layer: ``k``/``v`` are (n_layer, B, H, L, Dh)."""

    def __init__(
        self,
        n_layer: int,
        batch_size: int,
        n_head: int,
        capacity: int,
        head_dim: int,
        *,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str = "cpu",
    ) -> None:
        shape = (n_layer, batch_size, n_head, capacity, head_dim)
        self.k = torch.zeros(shape, dtype=dtype, device=device)
        self.v = torch.zeros(shape, dtype=dtype, device=device)
        # True where a cached position must never be attended to (padding).  (B, L)
        self.blocked = torch.zeros(batch_size, capacity, dtype=torch.bool, device=device)
        self.length = 0  # positions filled so far (the same for every sequence of the batch)

    @classmethod
    def for_model(cls, model: Text2SemanticModel, batch_size: int, capacity: int) -> KVCache:
        """A cache shaped for ``model``, on its device and in its dtype (``model.kv_dtype`` when a precision mode
        set one: 16-bit keys and values halve what every decoding step reads)."""
        cfg = model.config
        weight = model.ar_predict_layer.weight
        return cls(
            cfg.n_layer,
            batch_size,
            cfg.n_head,
            capacity,
            cfg.hidden_dim // cfg.n_head,
            dtype=getattr(model, "kv_dtype", None) or weight.dtype,
            device=weight.device,
        )

    @property
    def batch_size(self) -> int:
        return self.k.shape[1]

    @property
    def capacity(self) -> int:
        return self.k.shape[3]

    def reset(self) -> None:
        """Forget every cached position (the memory is kept for the next sequence)."""
        self.length = 0
        self.blocked.zero_()

    def write(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Store ``k``/``v`` (B, H, T, Dh) at positions ``length…length+T`` of ``layer``.

        Returns the keys and values of every position filled so far, (B, H, length+T, Dh). ``length`` itself is
        advanced by :meth:`advance` once all layers have written.
        """
        start, end = self.length, self.length + k.shape[2]
        if end > self.capacity:
            raise ValueError(f"KV cache full: {end} positions needed, capacity {self.capacity}")
        self.k[layer, :, :, start:end] = k
        self.v[layer, :, :, start:end] = v
        return self.k[layer, :, :, :end], self.v[layer, :, :, :end]

    def advance(self, n: int) -> None:
        self.length += n

    def block_positions(self, mask: torch.Tensor) -> None:
        """Mark positions ``0…T`` as padding where ``mask`` (B, T) is True."""
        self.blocked[:, : mask.shape[1]] |= mask.to(self.blocked.device)

    def attention_mask(self, n_new: int) -> torch.Tensor | None:
        """Allowed-mask (B, 1, 1, length+n_new) for one decoding query, or None when nothing is blocked."""
        end = self.length + n_new
        blocked = self.blocked[:, :end]
        if not bool(blocked.any()):
            return None
        return (~blocked)[:, None, None, :]

    def keep(self, indices: torch.Tensor) -> None:
        """Keep only the batch rows ``indices`` (finished sequences leave the batch)."""
        indices = indices.to(self.k.device)
        self.k = self.k.index_select(1, indices)
        self.v = self.v.index_select(1, indices)
        self.blocked = self.blocked.index_select(0, indices)
