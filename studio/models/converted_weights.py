"""A module converted to a light precision, kept on disk as converted (issue 9: memory).

Converting the Chinese BERT to int8 needs its 1.3 GB of fp32 weights in memory once. Keeping the result — the
int8 matrices with their scales (or the bf16 matrices) and every tensor that stays fp32 — in a safetensors
file beside the weights cache means every later load builds the model without memory (meta tensors) and
fills it from that file: the fp32 weights are never materialised again, and the peak is what the light model
holds. The file is tied to the original's size and mtime like the fp32 cache (:mod:`weights_cache`): an
edited original makes it stale, a damaged one is refused by name and rebuilt.

Names in the file: ``<module>.__int8_q`` / ``__int8_scale`` / ``__int8_bias`` for an :class:`Int8Linear`,
``<module>.__bf16_weight`` / ``__bf16_bias`` for a :class:`Bf16Linear`, the module's own names for the rest
(parameters and *all* buffers, non-persistent ones included, so nothing is left on the meta device).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import torch
from torch import nn

from studio.models import weights_cache
from studio.models.precision import Bf16Linear, Int8Linear

_LOGGER = logging.getLogger(__name__)
_TAGS = ("__int8_q", "__int8_scale", "__int8_bias", "__bf16_weight", "__bf16_bias")


def converted_tensors(model: nn.Module) -> Iterator[tuple[str, torch.Tensor]]:
    """Every tensor that rebuilds ``model`` exactly, light layers in their converted form, one at a time (an int8
    layer's matrix is unpacked from its kernel as it is reached, so only one exists outside it at a time)."""
    light: list[str] = []
    for name, module in model.named_modules():
        if isinstance(module, Int8Linear):
            q, scale, bias = module.unpacked()
            yield f"{name}.__int8_q", q
            yield f"{name}.__int8_scale", scale
            if bias is not None:
                yield f"{name}.__int8_bias", bias
            del q
            light.append(name + ".")
        elif isinstance(module, Bf16Linear):
            yield f"{name}.__bf16_weight", module.weight_bf16
            if module.bias is not None:
                yield f"{name}.__bf16_bias", module.bias
            light.append(name + ".")
    for name, tensor in [*model.named_parameters(), *model.named_buffers()]:
        if tensor is not None and not any(name.startswith(prefix) for prefix in light):
            yield name, tensor.detach()


def _split(name: str) -> tuple[str, str]:
    parent, _, leaf = name.rpartition(".")
    return parent, leaf


def restore(model: nn.Module, tensors: dict[str, torch.Tensor]) -> nn.Module:
    """Fill ``model`` (built on the meta device) from :func:`converted_tensors`' tensors, in place. When they map
    a cache file, the int8 matrices' pages are let go once packed (:func:`weights_cache.release_pages`).

    Raises ValueError when a tensor of the model is left unfilled (the file does not fit the model)."""
    layers: dict[str, dict[str, torch.Tensor]] = {}
    for name, tensor in tensors.items():
        parent, leaf = _split(name)
        if leaf in _TAGS:
            layers.setdefault(parent, {})[leaf] = tensor
            continue
        owner = model.get_submodule(parent)
        if leaf in owner._parameters:
            owner._parameters[leaf] = nn.Parameter(tensor, requires_grad=False)
        elif leaf in owner._buffers:
            owner._buffers[leaf] = tensor
        else:
            raise ValueError(f"{name} is not a tensor of this model")
    for name, parts in layers.items():
        if "__int8_q" in parts:
            layer = Int8Linear(None, parts.get("__int8_bias"), quantized=(parts["__int8_q"], parts["__int8_scale"]))
        else:
            layer = Bf16Linear(parts["__bf16_weight"], parts.get("__bf16_bias"))
        parent, leaf = _split(name)
        setattr(model.get_submodule(parent), leaf, layer)
        if "__int8_q" in parts:  # packed for the kernel now: the file's int8 pages need not stay resident
            weights_cache.release_pages([parts["__int8_q"]])
    left = [n for n, t in [*model.named_parameters(), *model.named_buffers()] if t is not None and t.is_meta]
    if left:
        raise ValueError(f"{len(left)} tensors were not in the file (e.g. {', '.join(left[:3])})")
    return model


def load_converted(original: Path, kind: str, mode: str, empty: nn.Module) -> nn.Module | None:
    """``empty`` (meta) filled from the ``mode`` cache of ``original``; None when there is none yet, it is stale,
    or it is damaged or does not fit (logged: the caller converts from fp32 and calls :func:`save_converted`)."""
    try:
        hit = weights_cache.open_cached(original, kind, variant=mode)
    except weights_cache.WeightsCacheError as exc:
        _LOGGER.warning("%s", exc)
        return None
    if hit is None:
        return None
    try:
        return restore(empty, hit.tensors)
    except (ValueError, AttributeError, KeyError, RuntimeError) as exc:
        _LOGGER.warning("the %s weights cache %s does not fit the model (%s); converting again", mode, hit.path, exc)
        return None


def save_converted(original: Path, kind: str, mode: str, model: nn.Module) -> bool:
    """Keep ``model``'s converted weights for the next load; False (logged) when no place could be written."""
    written = weights_cache.write_cache(original, kind, lambda: converted_tensors(model), {"mode": mode}, variant=mode)
    return written is not None
