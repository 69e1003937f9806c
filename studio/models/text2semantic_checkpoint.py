"""Loading and saving GPT (s1) weights in upstream's formats, safely.

Two layouts are read, both with ``torch.load(weights_only=True)`` (no arbitrary unpickling):

* the WebUI export (``GPT_weights_v2/<exp>-e<epoch>.ckpt``, also the pretrained ``s1bert25hz-….ckpt``):
  ``{"weight": {"model.<key>": fp16 tensor}, "config": {...}, "info": "GPT-e<epoch>"}``;
* a Lightning training checkpoint: ``{"state_dict": {"model.<key>": tensor}, …}`` (config under ``config``
  or ``hyper_parameters.config`` when present, otherwise the sizes are read from the tensor shapes).

Our :class:`~studio.models.text2semantic.Text2SemanticModel` has the same keys *without* the ``model.``
prefix; it is stripped here on load and added back by :func:`save_text2semantic_official`.
"""

from __future__ import annotations

import logging
import os
import pickle
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import torch

from studio.errors import CheckpointError
from studio.models import weights_cache
from studio.models.sovits.versions import HEADER_TAGS
from studio.models.text2semantic import PRESETS, Text2SemanticConfig, Text2SemanticModel, sine_table

_LOGGER = logging.getLogger(__name__)

PREFIX = "model."
CACHE_KIND = "gpt"  # the kind recorded in its weights cache
# First two bytes upstream writes over the zip header of SoVITS files (SPEC §9.4): a sure sign of a SoVITS file.
_SOVITS_HEADERS = HEADER_TAGS
_SOVITS_KEY_MARKERS = ("enc_p.", "dec.", "flow.", "ref_enc.", "quantizer.", "ssl_proj.")


@dataclass(frozen=True)
class Text2SemanticCheckpointInfo:
    """Where the weights came from. ``config`` is the stored upstream config dict (kept for re-export)."""

    path: Path
    version: str  # "v1" (512-row phone table) or "v2" (732)
    kind: str  # "export" or "lightning"
    info: str | None = None  # upstream's label, e.g. "GPT-e15"
    stored_dtype: torch.dtype = torch.float16
    config: dict[str, Any] = field(default_factory=dict)


class LoadedText2Semantic(NamedTuple):
    model: Text2SemanticModel
    config: Text2SemanticConfig
    info: Text2SemanticCheckpointInfo


def _read(path: Path) -> Any:
    what = f"GPT model file {path}"
    if not path.is_file():
        raise CheckpointError(f"{what} does not exist.", hint="Check the path or re-export the model.")
    with open(path, "rb") as f:
        head = f.read(2)
    if not head:
        raise CheckpointError(f"{what} is empty.", hint="Copy or download the file again.")
    if head != b"PK" and head[:1] != b"\x80" and head not in _SOVITS_HEADERS:  # zip, or a legacy pickle
        raise CheckpointError(
            f"{what} is not a PyTorch checkpoint (expected a zip archive starting with 'PK').",
            hint="Choose the .ckpt file that GPT training exported.",
        )
    if head in _SOVITS_HEADERS:
        raise CheckpointError(
            f"{path} is a SoVITS {_SOVITS_HEADERS[head]} model (.pth), not a GPT model (.ckpt).",
            hint="Choose the file from GPT_weights*/ for the GPT slot.",
        )
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "HParams" in str(exc):
            raise CheckpointError(
                f"{path} is a SoVITS model (.pth), not a GPT model (.ckpt).",
                hint="Choose the file from GPT_weights*/ for the GPT slot.",
            ) from None
        raise CheckpointError(
            f"{what} is not a GPT checkpoint: it holds data that cannot be loaded safely ({_first_line(exc)})."
        ) from None
    except Exception as exc:  # torch raises RuntimeError/EOFError/ValueError/… for damaged files
        raise CheckpointError(
            f"{what} cannot be read: it is truncated or corrupt ({_first_line(exc)}).",
            hint="Copy or download the file again.",
        ) from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:120] if text else type(exc).__name__


def _extract(obj: Any, path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any] | None, str, str | None]:
    """(state dict without prefix, config dict or None, kind, info label)."""
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path} is not a GPT checkpoint: expected a dict, found {type(obj).__name__}.")
    if "weight" in obj:
        kind, weights = "export", obj["weight"]
    elif "state_dict" in obj:
        kind, weights = "lightning", obj["state_dict"]
    else:
        raise CheckpointError(
            f"{path} is not a GPT checkpoint: expected a 'weight' (exported model) or 'state_dict' (training "
            f"checkpoint) entry, found {sorted(map(str, obj))[:8]}."
        )
    if not isinstance(weights, dict) or not all(isinstance(v, torch.Tensor) for v in weights.values()):
        raise CheckpointError(f"{path}: the '{kind}' weights are not a mapping of tensors.")
    if any(k.startswith(_SOVITS_KEY_MARKERS) for k in weights):
        raise CheckpointError(
            f"{path} is a SoVITS model (.pth), not a GPT model (.ckpt).",
            hint="Choose the file from GPT_weights*/ for the GPT slot.",
        )
    state = {k[len(PREFIX) :] if k.startswith(PREFIX) else k: v for k, v in weights.items()}
    config = obj.get("config")
    if config is None and isinstance(obj.get("hyper_parameters"), dict):
        config = obj["hyper_parameters"].get("config")
    info = obj.get("info")
    return state, config if isinstance(config, dict) else None, kind, info if isinstance(info, str) else None


def _config_from_shapes(state: dict[str, torch.Tensor], path: Path) -> Text2SemanticConfig:
    """Sizes from tensor shapes; the head count cannot be seen in shapes, so it comes from a preset of the
    same width."""
    try:
        phones, dim = state["ar_text_embedding.word_embeddings.weight"].shape
        vocab = state["ar_audio_embedding.word_embeddings.weight"].shape[0]
    except KeyError as exc:
        raise CheckpointError(f"{path} has no config and no GPT embedding tables (missing {exc}).") from None
    n_layer = len({k.split(".")[2] for k in state if k.startswith("h.layers.")})
    heads = [p.n_head for p in PRESETS.values() if p.hidden_dim == dim]
    if not heads:
        raise CheckpointError(
            f"{path} has no config and its width {dim} matches no known preset, so the number of attention "
            "heads is unknown."
        )
    _LOGGER.warning("%s has no config; assuming %d heads for width %d", path, heads[0], dim)
    return Text2SemanticConfig(
        embedding_dim=dim, hidden_dim=dim, n_head=heads[0], n_layer=n_layer, vocab_size=vocab, phoneme_vocab_size=phones
    )


def _check_shapes(model: Text2SemanticModel, state: dict[str, torch.Tensor], path: Path) -> None:
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    if missing:
        raise CheckpointError(
            f"{path} is missing {len(missing)} GPT weight(s), e.g. {', '.join(PREFIX + k for k in missing[:3])}.",
            hint="The file is incomplete or not a GPT-SoVITS GPT checkpoint.",
        )
    wrong = [(k, tuple(state[k].shape), tuple(v.shape)) for k, v in expected.items() if state[k].shape != v.shape]
    if wrong:
        k, got, want = wrong[0]
        raise CheckpointError(
            f"{path}: weight {PREFIX}{k} has shape {list(got)} but its config expects {list(want)} "
            f"({len(wrong)} mismatching tensor(s))."
        )
    extra = sorted(set(state) - set(expected))
    if extra:
        _LOGGER.warning("%s: ignoring %d unexpected key(s), e.g. %s", path, len(extra), extra[:3])


def load_text2semantic(
    path: str | os.PathLike[str],
    *,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
    cache: bool = False,
) -> LoadedText2Semantic:
    """Load an official/WebUI GPT ``.ckpt`` or a Lightning training checkpoint into an eval-mode model.

    Stored fp16 weights are cast to ``dtype`` (float32 by default). Raises :class:`CheckpointError` for a
    missing, truncated or corrupt file, a SoVITS file, missing keys or mismatching shapes.

    ``cache=True`` (inference) goes through the memory-mapped fp32 copy of :mod:`studio.models.weights_cache`,
    written on first use and rebuilt when the file changes; the model and records are the same either way.
    """
    path = Path(path)
    if cache:
        return _load_cached(path, device, dtype)
    return _build(path, _parse(path), device, dtype)


def _load_cached(path: Path, device: torch.device | str, dtype: torch.dtype) -> LoadedText2Semantic:
    """Through the weights cache: a fresh cache is mapped; a missing, stale or refused one is (re)built from
    the original, which is used directly when no cache can be written."""
    hit = weights_cache.open_cached(path, CACHE_KIND)
    if hit is not None:
        try:
            return _build(path, _from_cache(path, hit), device, dtype, assign=True)
        except weights_cache.WeightsCacheError as exc:
            _LOGGER.warning("%s", exc)
    parsed = _parse(path)
    # The converted inference weights, made one at a time as the cache is written (never all of them at once)
    hit = weights_cache.write_cache(
        path, CACHE_KIND, lambda state=parsed.state: ((k, v.to(torch.float32)) for k, v in state.items()), parsed.record()
    )
    if hit is None:
        return _build(path, parsed, device, dtype)
    del parsed  # the file-backed copy replaces it: free the in-memory one before building
    return _build(path, _from_cache(path, hit), device, dtype, assign=True)


@dataclass
class _Parsed:
    """What a GPT file holds, checked: the model's weights (in the stored dtype) and what the file said."""

    state: dict[str, torch.Tensor]
    config: Text2SemanticConfig
    raw_config: dict[str, Any] | None
    kind: str
    label: str | None
    stored_dtype: torch.dtype

    def record(self) -> dict[str, Any]:
        """The cache metadata that rebuilds this record without the original file."""
        dtype_name = str(self.stored_dtype).removeprefix("torch.")
        return {"config": self.raw_config, "kind": self.kind, "info": self.label, "stored_dtype": dtype_name}


def _parse(path: Path) -> _Parsed:
    state, raw_config, kind, label = _extract(_read(path), path)
    config = _config_of(path, state, raw_config)
    stored_dtype = next(iter(state.values())).dtype
    return _Parsed(_checked_state(config, state, path), config, raw_config, kind, label, stored_dtype)


def _checked_state(config: Text2SemanticConfig, state: dict[str, torch.Tensor], where: Path) -> dict[str, torch.Tensor]:
    """The model's entries of ``state``, in its order, after the key and shape checks (on a meta-device model:
    shapes without allocating the weights)."""
    with torch.device("meta"):
        shapes = Text2SemanticModel(config)
    _check_shapes(shapes, state, where)
    return {k: state[k] for k in shapes.state_dict()}


def _config_of(path: Path, state: dict[str, torch.Tensor], raw_config: dict[str, Any] | None) -> Text2SemanticConfig:
    if raw_config is None:
        return _config_from_shapes(state, path)
    try:
        return Text2SemanticConfig.from_checkpoint_config(raw_config)
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: the stored GPT config is unusable ({exc}).") from None


def _from_cache(path: Path, hit: weights_cache.CachedWeights) -> _Parsed:
    """The parsed form of a cache hit; a cache whose record or tensors do not fit is refused."""
    record = hit.record
    try:
        raw_config = record["config"]
        stored_dtype = getattr(torch, str(record["stored_dtype"]))
        config = _config_of(hit.path, hit.tensors, raw_config)
        state = _checked_state(config, hit.tensors, hit.path)
        return _Parsed(state, config, raw_config, str(record["kind"]), record["info"], stored_dtype)
    except (KeyError, TypeError, AttributeError, CheckpointError) as exc:
        raise weights_cache.WeightsCacheError(
            f"The weights cache {hit.path} of {path} does not fit a GPT model ({exc}); it was not loaded."
        ) from None


def _build(
    path: Path, parsed: _Parsed, device: torch.device | str, dtype: torch.dtype, *, assign: bool = False
) -> LoadedText2Semantic:
    """The eval-mode model; ``assign`` keeps fp32 file-backed tensors as the parameters (no copy)."""
    config = parsed.config
    if assign and dtype == torch.float32:
        # Built without memory (meta tensors), then every parameter *is* a file-backed cache tensor: no 300 MB of
        # random initial weights counts in the peak. The positional tables are not saved: computed afresh.
        with torch.device("meta"):
            model = Text2SemanticModel(config)
        model.load_state_dict({k: parsed.state[k] for k in model.state_dict()}, strict=True, assign=True)
        for positions in (model.ar_text_position, model.ar_audio_position):
            positions.table = sine_table(positions.table.shape[0], positions.dim)
        assert not any(t.is_meta for t in [*model.parameters(), *model.buffers()]), "a GPT tensor was not loaded"
    else:
        model = Text2SemanticModel(config)
        expected = model.state_dict()
        model.load_state_dict({k: parsed.state[k].to(dtype) for k in expected}, strict=True)
    model.to(device=device, dtype=dtype).eval()
    info = Text2SemanticCheckpointInfo(
        path=path,
        version=config.version,
        kind=parsed.kind,
        info=parsed.label,
        stored_dtype=parsed.stored_dtype,
        config=parsed.raw_config or {},
    )
    _LOGGER.info("loaded GPT %s (%s, %s) from %s", config.version, parsed.kind, parsed.label, path)
    return LoadedText2Semantic(model, config, info)


def save_text2semantic_official(
    model: Text2SemanticModel,
    config: dict[str, Any] | Text2SemanticConfig | None,
    path: str | os.PathLike[str],
    info: str,
) -> Path:
    """Write the WebUI export format: ``{"weight": OrderedDict("model.<key>" → fp16), "config", "info"}``.

    ``config`` is the full upstream config dict to embed (None → the model's own sizes in upstream's keys).
    The file is written to a temporary name and moved into place, so a crash never leaves half a file.
    """
    path = Path(path)
    if config is None or isinstance(config, Text2SemanticConfig):
        config = (config or model.config).to_checkpoint_config()
    weight = OrderedDict((PREFIX + k, v.detach().to("cpu", torch.float16)) for k, v in model.state_dict().items())
    payload = OrderedDict([("weight", weight), ("config", config), ("info", info)])
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        torch.save(payload, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
