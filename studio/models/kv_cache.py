"""An explicit key/value cache for the text-to-semantic GPT.

The cache is allocated once per generation call (``KVCache.for_model``) with room for the prompt plus every
token that may still be decoded; each layer writes its keys and values into its own slice. It also remembers
which cached positions are padding (left-padded text in batched decoding), so a decoding step never attends
to them.

8-bit caches (the int8 mode's decoding step on ONNX Runtime, :mod:`studio.models.onnx_step`): keys and values are
stored as int8 with one fp32 scale per layer, head and channel (``scales``), value ≈ q · scale, and :meth:`write`
hands back the dequantized fp32 keys/values for the prefill's attention. Every step then reads a quarter of the
bytes: at 8 rows and ~300 cached positions the fp32 cache is ~280 MB per step, and the attention, not the weights,
bounds a batched step.

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
        scales: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> None:
        if (dtype == torch.int8) != (scales is not None):
            raise ValueError("an int8 KV cache needs its (key, value) scales, and only an int8 cache takes scales")
        # (n_layer, H, Dh) each: value ≈ q · scale per layer, head and channel (int8 caches only)
        self.scales = scales
        shape = (n_layer, batch_size, n_head, capacity, head_dim)
        self.k = torch.zeros(shape, dtype=dtype, device=device)
        self.v = torch.zeros(shape, dtype=dtype, device=device)
        # True where a cached position must never be attended to (padding).  (B, L)
        self.blocked = torch.zeros(batch_size, capacity, dtype=torch.bool, device=device)
        self.length = 0  # positions filled so far (the same for every sequence of the batch)

    @classmethod
    def for_model(cls, model: Text2SemanticModel, batch_size: int, capacity: int) -> KVCache:
        """A cache shaped for ``model``, on its device and in its dtype (``model.kv_dtype`` when a precision mode
        set one: 16-bit keys and values halve what every decoding step reads; int8 ones, with ``model.kv_scales``,
        quarter it)."""
        cfg = model.config
        weight = model.ar_predict_layer.weight
        dtype = getattr(model, "kv_dtype", None) or weight.dtype
        return cls(
            cfg.n_layer,
            batch_size,
            cfg.n_head,
            capacity,
            cfg.hidden_dim // cfg.n_head,
            dtype=dtype,
            device=weight.device,
            scales=getattr(model, "kv_scales", None) if dtype == torch.int8 else None,
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

        Returns the keys and values of every position filled so far, (B, H, length+T, Dh) (dequantized to fp32
        from an int8 cache). ``length`` itself is advanced by :meth:`advance` once all layers have written.
        """
        start, end = self.length, self.length + k.shape[2]
        if end > self.capacity:
            raise ValueError(f"KV cache full: {end} positions needed, capacity {self.capacity}")
        if self.scales is None:
            self.k[layer, :, :, start:end] = k
            self.v[layer, :, :, start:end] = v
            return self.k[layer, :, :, :end], self.v[layer, :, :, :end]
        k_scale, v_scale = (s[layer][:, None, :] for s in self.scales)  # (H, 1, Dh)
        self.k[layer, :, :, start:end] = quantize_int8(k, k_scale)
        self.v[layer, :, :, start:end] = quantize_int8(v, v_scale)
        return self.k[layer, :, :, :end] * k_scale, self.v[layer, :, :, :end] * v_scale

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

    # ---- continuous batching (``studio.models.batch_decode``) ----------------------------------------------
    # Rows there are right-aligned: every row's last cached position is ``length - 1`` and the positions in front
    # of a row's own are blocked. The GPT adds its positions to the embeddings before the layers, so where a key
    # sits in the cache does not matter, only which keys a query may see.

    def reserve(self, n_new: int) -> None:
        """Make room for ``n_new`` more positions, growing the buffers (by half at least) when they are full."""
        need = self.length + n_new
        if need <= self.capacity:
            return
        extra = max(need, self.capacity + max(64, self.capacity // 2)) - self.capacity
        self.k = self._pad_positions(self.k, 0, extra, dim=3)
        self.v = self._pad_positions(self.v, 0, extra, dim=3)
        self.blocked = self._pad_positions(self.blocked, 0, extra, dim=1)

    def add_rows(self, other: KVCache) -> None:
        """Append ``other``'s rows (their ``other.length`` positions) so that they end at this cache's write
        pointer; when ``other`` is longer, every row already here first moves right (blocked in front). An int8
        cache takes rows only from a cache with the same scales (one model's)."""
        if (self.scales is not None or other.scales is not None) and self.scales is not other.scales:
            raise ValueError("int8 KV cache rows can only move between caches with the same scales")
        n = other.length
        if self.batch_size == 0:
            self.length = 0
        if n > self.length:
            self.shift_right(n - self.length)
        self.reserve(0)
        L, pad = self.capacity, self.length - n
        rows_k = self._pad_positions(other.k[:, :, :, :n].to(self.k.dtype), pad, L - self.length, dim=3)
        rows_v = self._pad_positions(other.v[:, :, :, :n].to(self.v.dtype), pad, L - self.length, dim=3)
        blocked = self._pad_positions(other.blocked[:, :n], pad, L - self.length, dim=1, front_value=True)
        self.k = torch.cat([self.k, rows_k.to(self.k.device)], dim=1)
        self.v = torch.cat([self.v, rows_v.to(self.v.device)], dim=1)
        self.blocked = torch.cat([self.blocked, blocked.to(self.blocked.device)], dim=0)

    def shift_right(self, n: int) -> None:
        """Move every row's positions ``n`` places right; the ``n`` new front positions are blocked."""
        self.reserve(n)
        L = self.capacity
        self.k = self._pad_positions(self.k[:, :, :, : self.length], n, L - self.length - n, dim=3)
        self.v = self._pad_positions(self.v[:, :, :, : self.length], n, L - self.length - n, dim=3)
        self.blocked = self._pad_positions(
            self.blocked[:, : self.length], n, L - self.length - n, dim=1, front_value=True
        )
        self.length += n

    def trim_front(self) -> int:
        """Drop the leading positions that every row blocks (after rows left); returns how many went."""
        if self.batch_size == 0:
            self.length = 0
            return 0
        open_columns = (~self.blocked[:, : self.length]).any(dim=0).nonzero()
        n = int(open_columns[0]) if len(open_columns) else self.length
        if n:
            self.k = self.k[:, :, :, n:].contiguous()
            self.v = self.v[:, :, :, n:].contiguous()
            self.blocked = self.blocked[:, n:].contiguous()
            self.length -= n
        return n

    @staticmethod
    def _pad_positions(
        t: torch.Tensor, front: int, back: int, *, dim: int, front_value: float | bool = 0
    ) -> torch.Tensor:
        """``t`` with ``front``/``back`` positions added along ``dim``: zeros (not blocked) behind, ``front_value``
        in front (True = blocked for the mask)."""
        parts = []
        for n, value in ((front, front_value), (back, 0)):
            shape = list(t.shape)
            shape[dim] = n
            parts.append(torch.full(shape, value, dtype=t.dtype, device=t.device))
        return torch.cat([parts[0], t, parts[1]], dim=dim)


def quantize_int8(x: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """Symmetric int8 of ``x`` with ``scale`` (broadcast): round half to even, clipped to [−128, 127] — as ONNX
    Runtime's attention writes the new position's keys/values into an int8 cache (tested)."""
    return torch.round(x.float() / scale).clamp_(-128, 127).to(torch.int8)
