"""Low-rank adapters (LoRA) as a transformation of a plain model.

The models in :mod:`studio.models` know nothing about LoRA. :func:`add_lora` rewrites a built model in place,
:func:`merge_lora` folds the adapters back so the model has exactly the module types and state-dict keys it had
before (the official key tables match again), and :func:`lora_state_dict` / :func:`load_lora_state_dict` move
the adapter weights alone.

An adapter adds a low-rank update to a frozen weight ``W`` (shape ``(out, in)`` or ``(out, in, k)``)::

    W_eff = W + scale · B · A        A: (r, in[, k]) Kaiming-uniform,  B: (out, r) zeros,  scale = alpha / r

so a freshly added adapter changes nothing. Two mechanisms apply it:

* **Module wrappers** (:class:`LoRALinear`, :class:`LoRAConv1d`) replace an ``nn.Linear`` / ``nn.Conv1d`` and add
  the low-rank path on the activations: ``y = base(x) + scale · B(A(dropout(x)))``. The base layer is kept whole,
  so weight-normed convolutions work too: the legacy ``torch.nn.utils.weight_norm`` (``weight_g`` / ``weight_v``
  + a forward pre-hook), layers that keep ``weight_g`` / ``weight_v`` themselves (SoVITS ``WeightNormConv1d``)
  and ``torch.nn.utils.parametrizations.weight_norm`` (``original0`` / ``original1``). On merge the new weight is written back as ``v = W_eff`` and ``g = ‖W_eff‖`` (per output
  channel), which reproduces ``W_eff`` exactly and keeps the ``g``/``v`` keys. Grouped convolutions are skipped
  (with a log line); ``ConvTranspose1d`` and embeddings are never targeted.
* **Weight parametrisation** (:class:`LoRAParametrization`, via ``torch.nn.utils.parametrize``) for weights that
  the owning module reads directly instead of calling a sub-module: the packed ``in_proj_weight`` (q, k, v stacked,
  ``(3C, C)``) of ``nn.MultiheadAttention`` — one adapter on the packed matrix — and the ``out_proj`` linear of an
  ``nn.MultiheadAttention``, whose ``forward`` passes ``out_proj.weight`` to a functional kernel. Dropout does not
  apply here (there is no activation path).

Adapter keys are canonical, independent of the mechanism: ``<module>.lora_A`` / ``<module>.lora_B`` for a layer
target and ``<module>.<param>.lora_A`` for a parameter target (e.g. ``h.layers.0.self_attn.in_proj_weight.lora_A``).
"""

from __future__ import annotations

import fnmatch
import logging
import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

from studio.errors import CheckpointError

_LOGGER = logging.getLogger(__name__)

LORA_A = "lora_A"
LORA_B = "lora_B"


# ----------------------------------------------------------------------------------------------- config / presets


@dataclass(frozen=True)
class LoRATargets:
    """Which layers get adapters: glob patterns (``fnmatch``, ``*`` also spans dots) over qualified names.

    A pattern matches a name exactly or as a dotted suffix, so ``h.layers.*.linear1`` also matches
    ``model.h.layers.3.linear1``.

    Attributes:
        modules: patterns over module names; matching ``nn.Linear`` / ``nn.Conv1d`` layers get an adapter,
            other module types are ignored (so ``enc_p.mrte.*`` is a valid way to say "every conv in MRTE").
        parameters: patterns over parameter names for packed 2-D weights that are not a layer's own
            ``weight``, e.g. ``nn.MultiheadAttention.in_proj_weight``.
    """

    modules: tuple[str, ...] = ()
    parameters: tuple[str, ...] = ()

    def union(self, other: LoRATargets) -> LoRATargets:
        return LoRATargets(self.modules + other.modules, self.parameters + other.parameters)


GPT_DEFAULT_TARGETS = LoRATargets(
    modules=("h.layers.*.self_attn.out_proj", "h.layers.*.linear1", "h.layers.*.linear2"),
    parameters=("h.layers.*.self_attn.in_proj_weight",),
)
"""Text-to-semantic GPT: every attention projection (packed q/k/v and output) and both feed-forward layers of all
transformer layers. Embeddings, ``bert_proj``, the position alphas, layer norms and ``ar_predict_layer`` stay as
the pretrained model has them: they map between vocabularies, which a minute of one speaker does not change."""

SOVITS_DEFAULT_TARGETS = LoRATargets(
    modules=(
        "enc_p.ssl_proj",
        "enc_p.encoder*.attn_layers.*.conv_[qkvo]",
        "enc_p.encoder*.ffn_layers.*.conv_[12]",
        "enc_p.mrte.*",
        "enc_p.proj",
        "flow.flows.*.enc.in_layers.*",
        "flow.flows.*.enc.res_skip_layers.*",
        "flow.flows.*.enc.cond_layer",
    ),
)
"""SoVITS v2: the prior path, from the quantised content to the flow.

* ``enc_p`` — the three relative-attention encoders (``encoder_ssl``, ``encoder_text``, ``encoder2``; attention
  ``conv_q/k/v/o`` and FFN ``conv_1/2``), MRTE (the cross-attention that fuses text, content and the speaker
  vector), its input conv ``enc_p.ssl_proj`` and the output ``proj`` to ``(m_p, logs_p)``. This is where a
  speaker's pronunciation and rhythm live; upstream fine-tuning moves exactly these layers (MRTE and the text
  encoder at a reduced learning rate, which the training loop can keep by parameter group).
* ``flow`` — the weight-normed WN convs of the coupling layers (conditioned on the speaker vector); they shape the
  latent the decoder sees.

Left frozen: the top-level ``ssl_proj`` and the ``quantizer`` (as upstream: semantic tokens must stay the ones the
GPT was trained on), embedding tables, layer norms and relative-position tables, ``ref_enc`` (small; a training
loop may unfreeze it fully), ``enc_q`` (training-only posterior encoder, dropped from every exported file, so an
adapter there would be thrown away) and the HiFi-GAN decoder ``dec`` (its upsamplers are ``ConvTranspose1d``;
adapting the vocoder with adversarial losses on a minute of audio is the least stable part of fine-tuning —
opt in with :data:`SOVITS_DECODER_TARGETS`). v2Pro/v2ProPlus models get their adapters in the same places; their
speaker-verification layers (``sv_emb``, ``prelu``, ``ge_to512``) stay frozen: they map any speaker's embedding
into the style space, which one voice's minute of audio should not re-learn."""

SOVITS_DECODER_TARGETS = LoRATargets(modules=("dec.conv_pre", "dec.cond", "dec.resblocks.*.convs[12].*"))
"""Opt-in extra for SoVITS: the decoder's input convs and its (weight-normed) residual-block convs."""


@dataclass(frozen=True)
class LoRAConfig:
    """Rank, scale and placement of the adapters (scale = ``alpha / rank``)."""

    rank: int = 16
    alpha: float = 16.0
    dropout: float = 0.0
    targets: LoRATargets = field(default_factory=LoRATargets)

    def __post_init__(self) -> None:
        if self.rank < 1:
            raise ValueError(f"LoRA rank must be >= 1, got {self.rank}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"LoRA dropout must be in [0, 1), got {self.dropout}")

    @property
    def scale(self) -> float:
        return self.alpha / self.rank

    def to_dict(self) -> dict:
        d = asdict(self)
        d["targets"] = {"modules": list(self.targets.modules), "parameters": list(self.targets.parameters)}
        return d

    @classmethod
    def from_dict(cls, d: dict) -> LoRAConfig:
        """Inverse of :meth:`to_dict`; raises :class:`studio.errors.CheckpointError` for malformed settings."""
        try:
            t = d.get("targets", {})
            targets = LoRATargets(tuple(map(str, t.get("modules", ()))), tuple(map(str, t.get("parameters", ()))))
            return cls(int(d["rank"]), float(d["alpha"]), float(d.get("dropout", 0.0)), targets)
        except (AttributeError, KeyError, TypeError, ValueError) as e:
            raise CheckpointError(f"Invalid LoRA settings {d!r:.120}: {e}") from e


# ----------------------------------------------------------------------------------------------- weight helpers


def _weight_norm_state(layer: nn.Module) -> tuple[str, int] | None:
    """How ``layer`` stores a weight-normed weight, with the norm's dim; None for a plain ``weight``.

    "legacy": ``torch.nn.utils.weight_norm`` (``weight_g``/``weight_v`` + a pre-hook that sets ``weight``);
    "gv": a layer that keeps ``weight_g``/``weight_v`` itself and builds the weight in its forward (the
    SoVITS ``WeightNormConv1d``); "parametrized": ``torch.nn.utils.parametrizations.weight_norm``.
    """
    for hook in layer._forward_pre_hooks.values():
        if type(hook).__name__ == "WeightNorm" and getattr(hook, "name", None) == "weight":
            return "legacy", hook.dim
    own = dict(layer.named_parameters(recurse=False))
    if "weight_g" in own and "weight_v" in own and "weight" not in own:
        g, v = own["weight_g"], own["weight_v"]
        return "gv", next((d for d in range(g.dim()) if g.shape[d] == v.shape[d] != 1), 0)
    if parametrize.is_parametrized(layer, "weight"):
        chain = layer.parametrizations["weight"]
        if len(chain) == 1 and type(chain[0]).__name__ == "_WeightNorm":
            return "parametrized", chain[0].dim
        raise ValueError(f"unsupported parametrisation on {type(layer).__name__}.weight: {list(chain)}")
    return None


def _base_weight(layer: nn.Module) -> torch.Tensor:
    """The weight the layer uses now (a legacy weight-normed layer only refreshes ``.weight`` inside forward)."""
    wn = _weight_norm_state(layer)
    if wn is not None and wn[0] in ("legacy", "gv"):
        return torch._weight_norm(layer.weight_v, layer.weight_g, wn[1])
    return layer.weight


@torch.no_grad()
def _write_weight(layer: nn.Module, new_weight: torch.Tensor) -> None:
    """Store ``new_weight`` (float32) in the layer's own parameters, keeping their names, dtypes and objects."""
    wn = _weight_norm_state(layer)
    if wn is None:
        layer.weight.copy_(new_weight.to(layer.weight.dtype))
        return
    kind, dim = wn
    if kind == "parametrized":
        g, v = layer.parametrizations.weight.original0, layer.parametrizations.weight.original1
    else:
        g, v = layer.weight_g, layer.weight_v
    v.copy_(new_weight.to(v.dtype))
    g.copy_(torch.norm_except_dim(new_weight, 2, dim).to(g.dtype))
    if kind == "legacy":  # keep the cached plain attribute consistent until the next forward
        layer.weight = torch._weight_norm(v, g, dim)


# ----------------------------------------------------------------------------------------------- adapter modules


class _LoRAWrapper(nn.Module):
    """Frozen ``base`` layer + trainable ``lora_A`` / ``lora_B``; subclasses define the low-rank path."""

    def __init__(self, base: nn.Module, a_shape: tuple[int, ...], out_features: int, config: LoRAConfig) -> None:
        super().__init__()
        self.base = base
        weight = _base_weight(base)
        self.lora_A = nn.Parameter(torch.empty(a_shape, dtype=weight.dtype, device=weight.device))
        self.lora_B = nn.Parameter(torch.zeros(out_features, config.rank, dtype=weight.dtype, device=weight.device))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
        self.scale = config.scale
        self.dropout = nn.Dropout(config.dropout) if config.dropout > 0 else nn.Identity()
        self.base_requires_grad = {n: p.requires_grad for n, p in base.named_parameters()}
        base.requires_grad_(False)

    def delta_weight(self) -> torch.Tensor:
        """``scale · B · A`` in the shape of the base weight, float32."""
        b, a = self.lora_B.float(), self.lora_A.float()
        return self.scale * torch.einsum("or,ri...->oi...", b, a)

    @property
    def weight(self) -> torch.Tensor:
        """The effective weight, for code that reads ``layer.weight`` instead of calling the layer (no dropout)."""
        w = _base_weight(self.base)
        return w + self.delta_weight().to(w.dtype)

    @property
    def bias(self) -> torch.Tensor | None:
        return self.base.bias

    def merged_base(self) -> nn.Module:
        """Fold the adapter into the base layer and return it (same object, keys and requires_grad as before)."""
        with torch.no_grad():
            _write_weight(self.base, _base_weight(self.base).float() + self.delta_weight())
        for name, p in self.base.named_parameters():
            p.requires_grad_(self.base_requires_grad.get(name, True))
        return self.base


class LoRALinear(_LoRAWrapper):
    """``nn.Linear`` + adapter: ``y = base(x) + scale · (dropout(x) Aᵀ) Bᵀ``."""

    def __init__(self, base: nn.Linear, config: LoRAConfig) -> None:
        super().__init__(base, (config.rank, base.in_features), base.out_features, config)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        low = F.linear(self.dropout(x), self.lora_A)  # (..., r)
        return self.base(x) + self.scale * F.linear(low, self.lora_B)


class LoRAConv1d(_LoRAWrapper):
    """``nn.Conv1d`` (plain or weight-normed, groups = 1) + adapter.

    ``A`` is a conv ``(r, C_in, k)`` with the base layer's stride, padding, dilation and padding mode; ``B`` is a
    pointwise conv ``(C_out, r)``. By linearity this equals one conv with weight ``scale · B · A``.
    """

    def __init__(self, base: nn.Conv1d, config: LoRAConfig) -> None:
        super().__init__(base, (config.rank, base.in_channels, base.kernel_size[0]), base.out_channels, config)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (B, C_in, T)
        low = self.base._conv_forward(self.dropout(x), self.lora_A, None)  # (B, r, T')
        return self.base(x) + self.scale * F.conv1d(low, self.lora_B.unsqueeze(-1))  # (B, C_out, T')


class LoRAParametrization(nn.Module):
    """``W ↦ W + scale · B · A`` on a 2-D weight that its module reads directly (``torch.nn.utils.parametrize``)."""

    def __init__(self, weight: torch.Tensor, config: LoRAConfig, original_requires_grad: bool) -> None:
        super().__init__()
        out_features, in_features = weight.shape
        self.lora_A = nn.Parameter(torch.empty(config.rank, in_features, dtype=weight.dtype, device=weight.device))
        self.lora_B = nn.Parameter(torch.zeros(out_features, config.rank, dtype=weight.dtype, device=weight.device))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
        self.scale = config.scale
        self.original_requires_grad = original_requires_grad

    def delta_weight(self) -> torch.Tensor:
        return self.scale * (self.lora_B.float() @ self.lora_A.float())

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return weight + (self.scale * (self.lora_B @ self.lora_A)).to(weight.dtype)


# ----------------------------------------------------------------------------------------------- transformations


def _matches(name: str, patterns: tuple[str, ...]) -> bool:
    return any(fnmatch.fnmatchcase(name, p) or fnmatch.fnmatchcase(name, "*." + p) for p in patterns)


def _split(name: str) -> tuple[str, str]:
    parent, _, attr = name.rpartition(".")
    return parent, attr


def _canonical(module_name: str, param: str) -> str:
    if param == "weight":
        return module_name
    return f"{module_name}.{param}" if module_name else param


def _parametrize(module: nn.Module, param: str, config: LoRAConfig) -> None:
    weight = getattr(module, param)
    if not isinstance(weight, nn.Parameter) or weight.dim() != 2:
        raise ValueError(f"LoRA parameter target {type(module).__name__}.{param} must be a 2-D parameter")
    adapter = LoRAParametrization(weight, config, weight.requires_grad)
    parametrize.register_parametrization(module, param, adapter, unsafe=False)
    module.parametrizations[param].original.requires_grad_(False)


def _has_lora_parametrization(module: nn.Module, param: str) -> bool:
    if not parametrize.is_parametrized(module, param):
        return False
    return any(isinstance(item, LoRAParametrization) for item in module.parametrizations[param])


def _plan(model: nn.Module, config: LoRAConfig) -> tuple[list[str], list[tuple[str, str]]]:
    """Module names to wrap, and (module name, parameter) pairs to parametrise."""
    modules = dict(model.named_modules())
    wrap: list[str] = []
    params: list[tuple[str, str]] = []
    inside_adapter = tuple(f"{n}." for n, m in modules.items() if isinstance(m, _LoRAWrapper | LoRAParametrization))
    for name, module in modules.items():
        if (name + ".").startswith(inside_adapter) or not name:
            continue
        if _has_lora_parametrization(module, "weight"):
            continue
        if isinstance(module, nn.Linear | nn.Conv1d) and _matches(name, config.targets.modules):
            if isinstance(module, nn.Conv1d) and module.groups != 1:
                _LOGGER.info("LoRA: skipping grouped conv %s (groups=%d)", name, module.groups)
                continue
            parent = modules[_split(name)[0]]
            if isinstance(parent, nn.MultiheadAttention):  # its forward reads out_proj.weight, not out_proj(x)
                params.append((name, "weight"))
            else:
                wrap.append(name)
        for pname, _ in module.named_parameters(recurse=False):
            qualified = f"{name}.{pname}"
            if pname not in ("weight", "bias") and _matches(qualified, config.targets.parameters):
                params.append((name, pname))
    return wrap, params


def add_lora(model: nn.Module, config: LoRAConfig) -> list[str]:
    """Put adapters on every layer of ``model`` that ``config.targets`` names; returns their canonical names.

    The targeted base weights are frozen; nothing else changes ``requires_grad`` (see
    :func:`mark_only_lora_trainable`). Raises ``ValueError`` when no layer matches.
    """
    wrap, params = _plan(model, config)
    if not wrap and not params:
        raise ValueError(f"no layer of {type(model).__name__} matches the LoRA targets {config.targets}")
    for name in wrap:
        parent_name, attr = _split(name)
        parent = model.get_submodule(parent_name)
        base = getattr(parent, attr)
        _weight_norm_state(base)  # raises for parametrisations other than weight norm
        wrapper = LoRALinear(base, config) if isinstance(base, nn.Linear) else LoRAConv1d(base, config)
        setattr(parent, attr, wrapper)
    for module_name, pname in params:
        _parametrize(model.get_submodule(module_name), pname, config)
    names = sorted(wrap + [_canonical(m, p) for m, p in params])
    _LOGGER.debug("LoRA: %d adapters (rank %d, alpha %g)", len(names), config.rank, config.alpha)
    return names


def _adapters(model: nn.Module) -> Iterator[tuple[str, nn.Module, str | None]]:
    """(canonical name, adapter module, parametrised parameter or None for a wrapper) for every adapter."""
    for name, module in model.named_modules():
        if isinstance(module, _LoRAWrapper):
            yield name, module, None
        elif parametrize.is_parametrized(module):
            for pname, chain in module.parametrizations.items():
                for item in chain:
                    if isinstance(item, LoRAParametrization):
                        yield _canonical(name, pname), item, pname


def merge_lora(model: nn.Module) -> list[str]:
    """Fold every adapter into its base weight, in place; returns the merged canonical names.

    Afterwards the model has exactly the module types, parameter objects and state-dict keys it had before
    :func:`add_lora`, with ``W ← W + scale · B · A``.
    """
    found = list(_adapters(model))
    for name, adapter, pname in found:
        if pname is None:
            parent_name, attr = _split(name)
            setattr(model.get_submodule(parent_name), attr, adapter.merged_base())
            continue
        module = model.get_submodule(name if pname == "weight" else _split(name)[0])
        if len(module.parametrizations[pname]) != 1:
            raise ValueError(f"cannot merge {name}: other parametrisations are stacked on it")
        with torch.no_grad():
            merged = module.parametrizations[pname].original.float() + adapter.delta_weight()
        parametrize.remove_parametrizations(module, pname, leave_parametrized=False)
        original = getattr(module, pname)
        with torch.no_grad():
            original.copy_(merged.to(original.dtype))
        original.requires_grad_(adapter.original_requires_grad)
    return [name for name, _, _ in found]


def lora_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The adapter weights alone, under canonical keys (``<target>.lora_A`` / ``<target>.lora_B``)."""
    out: dict[str, torch.Tensor] = {}
    for name, adapter, _ in _adapters(model):
        out[f"{name}.{LORA_A}"] = adapter.lora_A.detach()
        out[f"{name}.{LORA_B}"] = adapter.lora_B.detach()
    return out


def load_lora_state_dict(model: nn.Module, state_dict: dict[str, torch.Tensor]) -> None:
    """Copy adapter weights into a model prepared with the same :func:`add_lora` config.

    Raises :class:`studio.errors.CheckpointError` when keys or shapes do not match (a different rank or targets).
    """
    params: dict[str, nn.Parameter] = {}
    for name, adapter, _ in _adapters(model):
        params[f"{name}.{LORA_A}"] = adapter.lora_A
        params[f"{name}.{LORA_B}"] = adapter.lora_B
    missing, unexpected = sorted(params.keys() - state_dict.keys()), sorted(state_dict.keys() - params.keys())
    if missing or unexpected:
        raise CheckpointError(
            f"The adapter weights do not fit this model: {len(missing)} missing (e.g. {missing[:3]}), "
            f"{len(unexpected)} unexpected (e.g. {unexpected[:3]}).",
            hint="They were trained with other LoRA targets or for another model.",
        )
    for key, param in params.items():
        tensor = state_dict[key]
        if tuple(tensor.shape) != tuple(param.shape):
            raise CheckpointError(
                f"Adapter weight {key} has shape {list(tensor.shape)}, the model expects {list(param.shape)}.",
                hint="The adapters were trained with another LoRA rank.",
            )
        with torch.no_grad():
            param.copy_(tensor.to(param.dtype))


def lora_parameters(model: nn.Module) -> list[nn.Parameter]:
    """Every adapter parameter (``lora_A`` and ``lora_B``), e.g. for an optimiser."""
    return [p for _, adapter, _ in _adapters(model) for p in (adapter.lora_A, adapter.lora_B)]


def mark_only_lora_trainable(model: nn.Module) -> int:
    """Freeze everything except the adapters; returns the number of trainable values."""
    model.requires_grad_(False)
    trainable = lora_parameters(model)
    for p in trainable:
        p.requires_grad_(True)
    return sum(p.numel() for p in trainable)
