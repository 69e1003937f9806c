"""The autoregressive text-to-semantic GPT (upstream's "s1"; SPEC §5).

A decoder-only transformer reads the phones of a sentence (plus 1024-d BERT features per phone) as a prefix
and continues a sequence of 25 Hz semantic tokens until it emits EOS. Parameter names and shapes equal the
official checkpoints *without* their ``model.`` prefix (the loader in ``text2semantic_checkpoint.py`` strips
and re-adds it).

Reading order: config → positional encoding → attention → layer → stack → model.

Legend: ``B`` batch, ``T_text`` phones, ``T_sem`` semantic tokens, ``S = T_text + T_sem``, ``D`` model width,
``H`` heads, ``Dh = D / H``, ``V`` semantic vocabulary (1024 codes + EOS).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from studio.models.kv_cache import KVCache
from studio.models.meta_init import embedding


@dataclass(frozen=True)
class Text2SemanticConfig:
    """Sizes of the GPT. ``dropout`` is upstream's ``model.dropout`` value (stored, not applied by upstream)."""

    embedding_dim: int = 512
    hidden_dim: int = 512
    n_head: int = 16
    n_layer: int = 24
    vocab_size: int = 1025  # 1024 semantic codes + EOS
    phoneme_vocab_size: int = 732  # v2 phone table; v1: 512
    eos: int = 1024
    bert_dim: int = 1024
    dropout: float = 0.0
    position_dropout: float = 0.1  # dropout after adding the positional table (training only)
    layer_dropout: float = 0.1  # attention / FFN dropout inside each layer (training only)
    norm_eps: float = 1e-5
    max_positions: int = 4000  # rows of the precomputed positional table (extended on demand)

    def __post_init__(self) -> None:
        if self.embedding_dim != self.hidden_dim:
            raise ValueError(f"embedding_dim ({self.embedding_dim}) must equal hidden_dim ({self.hidden_dim})")
        if self.hidden_dim % self.n_head:
            raise ValueError(f"hidden_dim {self.hidden_dim} is not divisible by {self.n_head} heads")
        if self.eos != self.vocab_size - 1:
            raise ValueError(f"EOS must be the last id (vocab_size - 1 = {self.vocab_size - 1}), got {self.eos}")

    @property
    def ffn_dim(self) -> int:
        return 4 * self.hidden_dim  # upstream ignores ``linear_units``

    @property
    def version(self) -> str:
        return "v1" if self.phoneme_vocab_size == 512 else "v2"

    @classmethod
    def from_name(cls, name: str) -> Text2SemanticConfig:
        try:
            return PRESETS[name]
        except KeyError:
            raise ValueError(f"unknown Text2SemanticConfig preset {name!r}; known: {sorted(PRESETS)}") from None

    @classmethod
    def v2(cls) -> Text2SemanticConfig:
        return PRESETS["v2"]

    @classmethod
    def from_checkpoint_config(cls, config: dict[str, Any]) -> Text2SemanticConfig:
        """Read upstream's config dict (the full training config, or only its ``model`` section)."""
        model = config.get("model", config)
        if not isinstance(model, dict):
            raise ValueError("the checkpoint config has no 'model' section")
        vocab = int(model.get("vocab_size", 1025))
        return cls(
            embedding_dim=int(model["embedding_dim"]),
            hidden_dim=int(model.get("hidden_dim", model["embedding_dim"])),
            n_head=int(model["head"]),
            n_layer=int(model["n_layer"]),
            vocab_size=vocab,
            phoneme_vocab_size=int(model.get("phoneme_vocab_size", 512)),
            eos=int(model.get("EOS", vocab - 1)),
            dropout=float(model.get("dropout", 0.0)),
        )

    def to_checkpoint_config(self) -> dict[str, Any]:
        """The ``model`` section in upstream's key names (what official exports carry in ``config``)."""
        return {
            "model": {
                "vocab_size": self.vocab_size,
                "phoneme_vocab_size": self.phoneme_vocab_size,
                "embedding_dim": self.embedding_dim,
                "hidden_dim": self.hidden_dim,
                "head": self.n_head,
                "linear_units": self.ffn_dim,
                "n_layer": self.n_layer,
                "dropout": self.dropout,
                "EOS": self.eos,
            }
        }

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


PRESETS: dict[str, Text2SemanticConfig] = {
    "v2": Text2SemanticConfig(),
    "v1": Text2SemanticConfig(phoneme_vocab_size=512),
    "tiny": Text2SemanticConfig(embedding_dim=32, hidden_dim=32, n_head=2, n_layer=2),
}


def sine_table(n_positions: int, dim: int) -> torch.Tensor:
    """The sinusoidal table (n_positions, dim): even columns sin(p·div_i), odd columns cos(p·div_i), float32."""
    position = torch.arange(0, n_positions, dtype=torch.float32).unsqueeze(1)
    div = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * -(math.log(10000.0) / dim))
    table = torch.zeros(n_positions, dim)
    table[:, 0::2] = torch.sin(position * div)
    table[:, 1::2] = torch.cos(position * div)
    return table


class SinePositionalEncoding(nn.Module):
    """x + alpha · table[start : start+T] (no √d input scaling), alpha a learnable scalar."""

    def __init__(self, dim: int, dropout: float, n_positions: int) -> None:
        super().__init__()
        self.dim = dim
        self.alpha = nn.Parameter(torch.ones(1))
        self.dropout = nn.Dropout(dropout)
        table = torch.empty(n_positions, dim)
        if not table.is_meta:  # on the meta device (a checkpoint load) its loader fills it in: see meta_init
            table = sine_table(n_positions, dim)
        self.register_buffer("table", table, persistent=False)

    def rows(self, start: int, n: int) -> torch.Tensor:
        if start + n > self.table.shape[0]:
            grown = sine_table(max(start + n, 2 * self.table.shape[0]), self.dim)
            self.table = grown.to(device=self.table.device, dtype=self.table.dtype)
        return self.table[start : start + n]

    def forward(self, x: torch.Tensor, start: int = 0) -> torch.Tensor:
        # x: (B, T, D)
        pe = self.rows(start, x.shape[1]).to(x.dtype)
        return self.dropout(x + self.alpha * pe)


class TokenEmbedding(nn.Module):
    """An embedding table; the wrapper exists only to keep upstream's ``…word_embeddings.weight`` key."""

    def __init__(self, n_tokens: int, dim: int) -> None:
        super().__init__()
        self.word_embeddings = embedding(n_tokens, dim)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.word_embeddings(ids)


class SelfAttention(nn.Module):
    """Multi-head self-attention with a packed q/k/v projection (``in_proj_weight`` is (3D, D))."""

    def __init__(self, dim: int, n_head: int, dropout: float) -> None:
        super().__init__()
        self.n_head = n_head
        self.dropout = dropout
        self.in_proj_weight = nn.Parameter(torch.empty(3 * dim, dim))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * dim))
        self.out_proj = nn.Linear(dim, dim)
        nn.init.xavier_uniform_(self.in_proj_weight)
        nn.init.zeros_(self.out_proj.bias)
        # A faster stand-in for the packed projection (``studio.models.precision``); None → the fp32 weights.
        self.in_proj: nn.Module | None = None

    def qkv(self, x: torch.Tensor) -> torch.Tensor:
        """The packed projection: x (…, D) → (…, 3D), queries then keys then values."""
        if self.in_proj is not None:
            return self.in_proj(x)
        return F.linear(x, self.in_proj_weight, self.in_proj_bias)

    def forward(
        self, x: torch.Tensor, allowed: torch.Tensor | None, cache: KVCache | None = None, layer: int = 0
    ) -> torch.Tensor:
        """x (B, T, D); ``allowed`` (B|1, 1, T, S) True where a query may attend; S = cached + T positions."""
        B, T, D = x.shape
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        q, k, v = (t.view(B, T, self.n_head, D // self.n_head).transpose(1, 2) for t in (q, k, v))  # (B, H, T, Dh)
        if cache is not None:
            k, v = cache.write(layer, k, v)  # (B, H, S, Dh), in the cache's dtype (bf16 in light precisions)
        p = self.dropout if self.training else 0.0
        out = F.scaled_dot_product_attention(q.to(k.dtype), k, v, attn_mask=allowed, dropout_p=p)  # (B, H, T, Dh)
        return self.out_proj(out.to(x.dtype).transpose(1, 2).reshape(B, T, D))


class DecoderLayer(nn.Module):
    """Post-norm layer: x ← LN1(x + MHA(x)); x ← LN2(x + W2·ReLU(W1·x))."""

    def __init__(self, config: Text2SemanticConfig) -> None:
        super().__init__()
        d, p = config.hidden_dim, config.layer_dropout
        self.self_attn = SelfAttention(d, config.n_head, p)
        self.linear1 = nn.Linear(d, config.ffn_dim)
        self.linear2 = nn.Linear(config.ffn_dim, d)
        self.norm1 = nn.LayerNorm(d, eps=config.norm_eps)
        self.norm2 = nn.LayerNorm(d, eps=config.norm_eps)
        self.dropout = nn.Dropout(p)

    def forward(self, x: torch.Tensor, allowed: torch.Tensor | None, cache: KVCache | None, layer: int) -> torch.Tensor:
        x = self.norm1(x + self.dropout(self.self_attn(x, allowed, cache, layer)))
        ff = self.linear2(self.dropout(F.relu(self.linear1(x))))
        return self.norm2(x + self.dropout(ff))


class DecoderStack(nn.Module):
    def __init__(self, config: Text2SemanticConfig) -> None:
        super().__init__()
        self.layers = nn.ModuleList(DecoderLayer(config) for _ in range(config.n_layer))
        # The int8 mode's step on ONNX Runtime (``studio.models.onnx_step``), built from these weights at load.
        self.onnx_step: Any = None

    def can_step_lean(self) -> bool:
        """True when :meth:`step` may run: inference (no autograd, eval) and no hooks (LoRA adds some)."""
        if self.training or torch.is_grad_enabled():
            return False
        return not any(m._forward_pre_hooks or m._forward_hooks for m in self.modules())

    def step(self, x: torch.Tensor, allowed: torch.Tensor | None, cache: KVCache) -> torch.Tensor:
        """One decoding position for every row, x (B, 1, D) → (B, 1, D): the same products in the same order as
        :meth:`forward` with a cache, minus the per-call bookkeeping (dropout modules, head-split views, the
        module-call machinery) that costs as much as the attention at batch 1. Inference only."""
        if self.onnx_step is not None and self.onnx_step.accepts(x, allowed, cache):
            return self.onnx_step(x, allowed, cache)
        B, _, D = x.shape
        layer0 = self.layers[0].self_attn
        H = layer0.n_head
        for i, layer in enumerate(self.layers):
            attn = layer.self_attn
            q, k, v = attn.qkv(x).view(B, 3, H, 1, D // H).unbind(1)  # each (B, H, 1, Dh)
            k, v = cache.write(i, k, v)  # (B, H, S, Dh)
            a = F.scaled_dot_product_attention(q.to(k.dtype), k, v, attn_mask=allowed)  # (B, H, 1, Dh)
            a = attn.out_proj.forward(a.to(x.dtype).reshape(B, 1, D))
            n1, n2 = layer.norm1, layer.norm2
            x = F.layer_norm(x + a, n1.normalized_shape, n1.weight, n1.bias, n1.eps)
            ff = layer.linear2.forward(F.relu(layer.linear1.forward(x)))
            x = F.layer_norm(x + ff, n2.normalized_shape, n2.weight, n2.bias, n2.eps)
        cache.advance(1)
        return x

    def forward(self, x: torch.Tensor, allowed: torch.Tensor | None, cache: KVCache | None = None) -> torch.Tensor:
        if cache is not None and x.shape[1] == 1 and self.onnx_step is not None and self.can_step_lean():
            return self.step(x, allowed, cache)  # a batched decoding step (studio.models.batch_decode)
        for i, layer in enumerate(self.layers):
            x = layer(x, allowed, cache, i)
        if cache is not None:
            cache.advance(x.shape[1])
        return x


def prefix_causal_blocked(n_text: int, n_sem: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """Blocked-mask (S, S): text rows see all text and no semantic column; semantic rows see all text and
    the semantic positions up to themselves."""
    S = n_text + n_sem
    blocked = torch.zeros(S, S, dtype=torch.bool, device=device)
    blocked[:n_text, n_text:] = True
    blocked[n_text:, n_text:] = torch.ones(n_sem, n_sem, dtype=torch.bool, device=device).triu(1)
    return blocked


def attention_allowed(
    n_text: int, n_sem: int, key_padding: torch.Tensor | None = None, device: torch.device | str = "cpu"
) -> torch.Tensor | None:
    """Allowed-mask (B|1, 1, S, S) for SDPA; ``key_padding`` (B, S) True marks columns nobody may see.
    Returns None when every position may see every other (reference-free prefill without padding)."""
    blocked = prefix_causal_blocked(n_text, n_sem, device).unsqueeze(0)  # (1, S, S)
    if key_padding is not None:
        blocked = blocked | key_padding[:, None, :].to(device)  # (B, S, S)
    if not bool(blocked.any()):
        return None
    return (~blocked).unsqueeze(1)


class Text2SemanticModel(nn.Module):
    """The GPT. ``forward`` runs a whole [text ; semantic] sequence; ``prefill``/``decode_step`` use a KV cache."""

    def __init__(self, config: Text2SemanticConfig) -> None:
        super().__init__()
        self.config = config
        e = config.embedding_dim
        self.bert_proj = nn.Linear(config.bert_dim, e)
        self.ar_text_embedding = TokenEmbedding(config.phoneme_vocab_size, e)
        self.ar_text_position = SinePositionalEncoding(e, config.position_dropout, config.max_positions)
        self.ar_audio_embedding = TokenEmbedding(config.vocab_size, e)
        self.ar_audio_position = SinePositionalEncoding(e, config.position_dropout, config.max_positions)
        self.h = DecoderStack(config)
        self.ar_predict_layer = nn.Linear(config.hidden_dim, config.vocab_size, bias=False)

    @classmethod
    def from_name(cls, name: str) -> Text2SemanticModel:
        return cls(Text2SemanticConfig.from_name(name))

    # ---- embeddings -------------------------------------------------------------------------------------
    def embed_text(self, phone_ids: torch.Tensor, bert: torch.Tensor) -> torch.Tensor:
        """phone_ids (B, T_text), bert (B, bert_dim, T_text) → (B, T_text, D), positions from 0."""
        x = self.ar_text_embedding(phone_ids) + self.bert_proj(bert.transpose(1, 2))
        return self.ar_text_position(x)

    def embed_semantic(self, tokens: torch.Tensor, start: int = 0) -> torch.Tensor:
        """tokens (B, T_sem) sitting at semantic positions start… → (B, T_sem, D)."""
        return self.ar_audio_position(self.ar_audio_embedding(tokens), start)

    # ---- full sequence (training, invariants) -------------------------------------------------------------
    def forward(
        self,
        phone_ids: torch.Tensor,
        bert: torch.Tensor,
        semantic: torch.Tensor,
        *,
        key_padding: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Logits (B, S, V) for every position of [text ; semantic] under the prefix/causal mask.

        ``key_padding`` (B, S) marks positions (text or semantic) that no query may attend to.
        """
        x = self.embed_text(phone_ids, bert)  # (B, T_text, D)
        y = self.embed_semantic(semantic)  # (B, T_sem, D)
        allowed = attention_allowed(x.shape[1], y.shape[1], key_padding, x.device)
        h = self.h(torch.cat([x, y], dim=1), allowed)  # (B, S, D)
        return self.ar_predict_layer(h)

    # ---- cached inference --------------------------------------------------------------------------------
    def prefill(
        self,
        text_emb: torch.Tensor,
        prompt: torch.Tensor | None,
        cache: KVCache,
        *,
        text_padding: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Run [text ; prompt] through the stack, filling ``cache`` from position 0; logits of the last
        position (B, V).

        text_emb (B, T_text, D) from :meth:`embed_text` (left-padded with zeros in batched decoding, with
        ``text_padding`` (B, T_text) True at the pads); prompt (B, P) semantic ids or None (reference-free).
        """
        cache.reset()
        B, n_text = text_emb.shape[:2]
        parts = [text_emb]
        if prompt is not None and prompt.shape[1] > 0:
            parts.append(self.embed_semantic(prompt))  # (B, P, D)
        xy = torch.cat(parts, dim=1)  # (B, S, D)
        key_padding = None
        if text_padding is not None:
            key_padding = F.pad(text_padding.to(torch.bool), (0, xy.shape[1] - n_text), value=False)  # (B, S)
            cache.block_positions(key_padding)
        allowed = attention_allowed(n_text, xy.shape[1] - n_text, key_padding, xy.device)
        h = self.h(xy, allowed, cache)
        return self.ar_predict_layer(h[:, -1])

    def decode_step(self, tokens: torch.Tensor, position: int, cache: KVCache) -> torch.Tensor:
        """One new token per sequence: tokens (B, 1) at semantic position ``position`` → logits (B, V).
        The query attends to every cached position that is not padding."""
        return self.step_logits(self.embed_semantic(tokens, position), cache)

    def step_logits(self, y: torch.Tensor, cache: KVCache) -> torch.Tensor:
        """Embedded new positions y (B, 1, D) through the decoder stack and the output layer → logits (B, V); the
        cache advanced by one. Rows may sit at different positions (batched decoding): ``y`` carries them."""
        mask = cache.attention_mask(1)
        fast = self.h.onnx_step
        if fast is not None and not self.training and not torch.is_grad_enabled() and fast.accepts(y, mask, cache):
            return fast.run(y, cache, mask)[1]  # the whole step, output layer included, in one call
        if self.h.can_step_lean():
            h = self.h.step(y, mask, cache)
        else:
            h = self.h(y, mask, cache)
        return self.ar_predict_layer(h[:, -1])
