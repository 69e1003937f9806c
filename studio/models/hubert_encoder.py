"""HuBERT-base (chinese-hubert-base) as plain PyTorch, read from its Hugging Face folder.

What the content encoder needs in eval mode: the convolutional feature encoder, the feature projection, the
weight-normed positional convolution and the post-norm transformer layers, exact (erf) GELU; no SpecAugment, no
masking, no dropout. Module and parameter names equal the Hugging Face ``HubertModel`` names
(``feature_extractor.conv_layers.0.conv.weight``, ``encoder.layers.0.attention.q_proj.weight``, …), so a
released ``pytorch_model.bin``/``model.safetensors`` loads as it is; the positional convolution's weight norm
(stored as ``weight_g``/``weight_v``, or as ``parametrizations.weight.original0/1`` by newer writers) is folded
into one weight at load.

Why not ``transformers``: importing its HuBERT modelling code costs ~210 MB of resident memory (measured), and
its loader copies the weights out of the file. Here the parameters are the checkpoint's own tensors, memory-mapped
(:func:`load_hubert_encoder`), so once a reference clip is encoded their pages can be let go
(:meth:`studio.models.content_encoder.ContentEncoder.release_memory`) and the ~380 MB of weights leave resident
memory until the next new clip.

Legend: ``B`` batch, ``N`` samples at 16 kHz, ``T`` 50 Hz frames, ``H`` hidden size.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from studio.models.hf_checkpoint import assign_checked, open_tensors

_POS_CONV = "encoder.pos_conv_embed.conv."


@dataclass(frozen=True)
class HubertSizes:
    """What ``config.json`` says about the network (the fields the eval-mode encoder uses)."""

    conv_dim: tuple[int, ...]
    conv_kernel: tuple[int, ...]
    conv_stride: tuple[int, ...]
    conv_bias: bool
    group_norm: bool  # feat_extract_norm "group" (first conv only) or "layer" (every conv)
    feat_proj_layer_norm: bool
    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    intermediate_size: int
    layer_norm_eps: float
    pos_kernel: int
    pos_groups: int

    @classmethod
    def from_folder(cls, folder: Path) -> HubertSizes:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        norm = str(config.get("feat_extract_norm", "group"))
        sizes = cls(
            conv_dim=tuple(int(x) for x in config["conv_dim"]),
            conv_kernel=tuple(int(x) for x in config["conv_kernel"]),
            conv_stride=tuple(int(x) for x in config["conv_stride"]),
            conv_bias=bool(config.get("conv_bias", False)),
            group_norm=norm == "group",
            feat_proj_layer_norm=bool(config.get("feat_proj_layer_norm", True)),
            hidden_size=int(config["hidden_size"]),
            num_hidden_layers=int(config["num_hidden_layers"]),
            num_attention_heads=int(config["num_attention_heads"]),
            intermediate_size=int(config["intermediate_size"]),
            layer_norm_eps=float(config.get("layer_norm_eps", 1e-5)),
            pos_kernel=int(config["num_conv_pos_embeddings"]),
            pos_groups=int(config["num_conv_pos_embedding_groups"]),
        )
        unsupported = [
            f"{key} = {config.get(key)!r}"
            for key, ok in (
                ("feat_extract_norm", norm in ("group", "layer")),
                ("feat_extract_activation", config.get("feat_extract_activation", "gelu") == "gelu"),
                ("hidden_act", config.get("hidden_act", "gelu") == "gelu"),
                ("do_stable_layer_norm", not config.get("do_stable_layer_norm", False)),
                ("conv_pos_batch_norm", not config.get("conv_pos_batch_norm", False)),
            )
            if not ok
        ]
        if unsupported:
            raise ValueError(
                f"this HuBERT configuration is not supported ({', '.join(unsupported)}); "
                "GPT-SoVITS uses chinese-hubert-base"
            )
        if not len(sizes.conv_dim) == len(sizes.conv_kernel) == len(sizes.conv_stride):
            raise ValueError("conv_dim, conv_kernel and conv_stride differ in length")
        return sizes


class _ConvLayer(nn.Module):
    """Conv1d → (GroupNorm on the first layer | LayerNorm over channels | nothing) → GELU."""

    def __init__(self, s: HubertSizes, i: int) -> None:
        super().__init__()
        c_in = 1 if i == 0 else s.conv_dim[i - 1]
        c_out = s.conv_dim[i]
        self.conv = nn.Conv1d(c_in, c_out, s.conv_kernel[i], stride=s.conv_stride[i], bias=s.conv_bias)
        self.norm_kind = ("group" if i == 0 else None) if s.group_norm else "layer"
        if self.norm_kind == "group":
            self.layer_norm = nn.GroupNorm(c_out, c_out, affine=True)
        elif self.norm_kind == "layer":
            self.layer_norm = nn.LayerNorm(c_out, elementwise_affine=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        if self.norm_kind == "group":
            x = self.layer_norm(x)
        elif self.norm_kind == "layer":
            x = self.layer_norm(x.transpose(1, 2)).transpose(1, 2)
        return F.gelu(x)


class _FeatureExtractor(nn.Module):
    def __init__(self, s: HubertSizes) -> None:
        super().__init__()
        self.conv_layers = nn.ModuleList(_ConvLayer(s, i) for i in range(len(s.conv_dim)))

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        """(B, N) → (B, C_conv, T)."""
        x = wav.unsqueeze(1)
        for layer in self.conv_layers:
            x = layer(x)
        return x


class _FeatureProjection(nn.Module):
    def __init__(self, s: HubertSizes) -> None:
        super().__init__()
        self.has_norm = s.feat_proj_layer_norm
        if self.has_norm:
            self.layer_norm = nn.LayerNorm(s.conv_dim[-1], eps=s.layer_norm_eps)
        self.projection = nn.Linear(s.conv_dim[-1], s.hidden_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.projection(self.layer_norm(x) if self.has_norm else x)


class _PositionalConv(nn.Module):
    """Grouped Conv1d over time (weight norm folded at load), the last frame dropped for an even kernel, GELU."""

    def __init__(self, s: HubertSizes) -> None:
        super().__init__()
        self.conv = nn.Conv1d(
            s.hidden_size, s.hidden_size, s.pos_kernel, padding=s.pos_kernel // 2, groups=s.pos_groups
        )
        self.drop_last = s.pos_kernel % 2 == 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, H) → (B, T, H)."""
        y = self.conv(x.transpose(1, 2))
        if self.drop_last:
            y = y[:, :, :-1]
        return F.gelu(y).transpose(1, 2)


class _Attention(nn.Module):
    def __init__(self, s: HubertSizes) -> None:
        super().__init__()
        self.heads = s.num_attention_heads
        self.q_proj, self.k_proj, self.v_proj, self.out_proj = (
            nn.Linear(s.hidden_size, s.hidden_size) for _ in range(4)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, H = x.shape
        q, k, v = (
            proj(x).view(B, T, self.heads, H // self.heads).transpose(1, 2)
            for proj in (self.q_proj, self.k_proj, self.v_proj)
        )
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(H // self.heads)  # (B, heads, T, T)
        out = torch.matmul(torch.softmax(scores, dim=-1), v)
        return self.out_proj(out.transpose(1, 2).reshape(B, T, H))


class _FeedForward(nn.Module):
    def __init__(self, s: HubertSizes) -> None:
        super().__init__()
        self.intermediate_dense = nn.Linear(s.hidden_size, s.intermediate_size)
        self.output_dense = nn.Linear(s.intermediate_size, s.hidden_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.output_dense(F.gelu(self.intermediate_dense(x)))


class _Layer(nn.Module):
    """Post-norm: LayerNorm(x + attention(x)), then LayerNorm(h + feed_forward(h))."""

    def __init__(self, s: HubertSizes) -> None:
        super().__init__()
        self.attention = _Attention(s)
        self.layer_norm = nn.LayerNorm(s.hidden_size, eps=s.layer_norm_eps)
        self.feed_forward = _FeedForward(s)
        self.final_layer_norm = nn.LayerNorm(s.hidden_size, eps=s.layer_norm_eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.layer_norm(x + self.attention(x))
        return self.final_layer_norm(h + self.feed_forward(h))


class _Encoder(nn.Module):
    def __init__(self, s: HubertSizes) -> None:
        super().__init__()
        self.pos_conv_embed = _PositionalConv(s)
        self.layer_norm = nn.LayerNorm(s.hidden_size, eps=s.layer_norm_eps)
        self.layers = nn.ModuleList(_Layer(s) for _ in range(s.num_hidden_layers))

    def forward(self, x: torch.Tensor, done: Callable[[nn.Module], None] = lambda _: None) -> torch.Tensor:
        x = self.layer_norm(x + self.pos_conv_embed(x))
        done(self.pos_conv_embed)
        for layer in self.layers:
            x = layer(x)
            done(layer)
        return x


class HubertEncoder(nn.Module):
    """``model(wav)`` (B, N) raw 16 kHz → last hidden state (B, T, H)."""

    def __init__(self, sizes: HubertSizes) -> None:
        super().__init__()
        self.sizes = sizes
        self.feature_extractor = _FeatureExtractor(sizes)
        self.feature_projection = _FeatureProjection(sizes)
        self.encoder = _Encoder(sizes)

    def forward(self, wav: torch.Tensor, done: Callable[[nn.Module], None] = lambda _: None) -> torch.Tensor:
        """``done(block)`` is called once each block has run and its weights are no longer needed for this pass
        (the reference path lets their pages go as it goes: see ``ContentEncoder.encode``)."""
        features = self.feature_extractor(wav).transpose(1, 2)  # (B, T, C_conv)
        done(self.feature_extractor)
        features = self.feature_projection(features)
        done(self.feature_projection)
        return self.encoder(features, done)


def folded_positional_weight(state: dict[str, torch.Tensor]) -> torch.Tensor | None:
    """The positional convolution's weight with its weight norm applied (w = g · v / ‖v‖, the norm over every
    axis but the kernel's, as ``weight_norm(dim=2)``), from the legacy or the parametrized names; or the plain
    weight; None when the checkpoint has neither."""
    g = state.get(_POS_CONV + "weight_g", state.get(_POS_CONV + "parametrizations.weight.original0"))
    v = state.get(_POS_CONV + "weight_v", state.get(_POS_CONV + "parametrizations.weight.original1"))
    if g is not None and v is not None:
        v = v.float()
        dims = [d for d in range(v.dim()) if g.shape[d] == 1]
        return v * (g.float() / v.norm(dim=dims, keepdim=True))
    plain = state.get(_POS_CONV + "weight")
    return None if plain is None else plain.float()


def load_hubert_encoder(folder: Path, weight_file: Path) -> tuple[HubertEncoder, list[str]]:
    """(the encoder in fp32 eval mode, problems): problems name missing or misshapen weights (empty: fine).

    Built on the meta device; the checkpoint's fp32 tensors are taken as they are (memory-mapped, no copy)."""
    with torch.device("meta"):
        model = HubertEncoder(HubertSizes.from_folder(folder))
    state = {name.removeprefix("hubert."): tensor for name, tensor in open_tensors(weight_file).items()}
    folded = folded_positional_weight(state)
    if folded is not None:
        state[_POS_CONV + "weight"] = folded
    problems = assign_checked(model, state)
    return model.eval().requires_grad_(False), problems
