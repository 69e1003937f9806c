"""Load and save official SoVITS (s2) ``.pth`` weight files safely.

File format (WebUI export, SPEC §9.4): a torch zip archive of
``{"weight": {key: fp16 tensor} (no enc_q keys), "config": utils.HParams, "info": "<e>epoch_<s>iteration"}``.
Full pretrained generators (``s2G2333k.pth``, ``v2Pro/s2Gv2Pro.pth``) also carry the ``enc_q`` keys.
v2Pro/v2ProPlus exports (and LoRA ones) replace the leading ``PK`` with a 2-byte version tag (``05``/``06``);
we restore it in memory, and write it back on export. v1, v2, v2Pro and v2ProPlus load; v3/v4 files are
recognised (by tag or by their CFM keys) and refused in plain words (:mod:`studio.models.sovits.versions`).
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, NamedTuple

import torch

from studio.errors import CheckpointError
from studio.models import weights_cache
from studio.models.safe_pickle import HParamsRecord, safe_torch_load, save_torch_zip_bytes, to_plain
from studio.models.sovits.config import SoVITSConfig
from studio.models.sovits.synthesizer import SoVITSSynthesizer
from studio.models.sovits.versions import (
    EXPORT_HEADERS,
    HEADER_TAGS,
    SUPPORTED_VERSIONS,
    ZIP_MAGIC,
    SoVITSVersion,
    check_consistent,
    classify,
    unsupported_error,
    version_from_header,
    version_from_weights,
)
from studio.workspace import atomic_write_bytes

_LOGGER = logging.getLogger(__name__)

POSTERIOR_PREFIX = "enc_q."
CACHE_KIND = "sovits"  # the kind recorded in its weights cache


@dataclass
class SoVITSFileInfo:
    """What the file said about itself besides the weights."""

    path: Path
    info_text: str  # e.g. "8epoch_1200iteration"
    hparams: dict[str, Any]  # upstream config as a plain nested dict
    header: bytes  # the first two bytes on disk
    has_posterior_encoder: bool

    def __str__(self) -> str:
        return self.info_text


class LoadedSoVITS(NamedTuple):
    model: SoVITSSynthesizer
    config: SoVITSConfig
    info: SoVITSFileInfo
    version: str  # "v1", "v2", "v2Pro" or "v2ProPlus"


@dataclass
class SoVITSFile:
    weights: dict[str, torch.Tensor]
    hparams: dict[str, Any]
    info_text: str
    header: bytes


# ----------------------------------------------------------------------------- reading
def _read_bytes(path: Path) -> tuple[bytes, bytes]:
    """(file bytes, the first two bytes on disk); refuses missing, empty and non-zip files."""
    if not path.is_file():
        raise CheckpointError(f"SoVITS weight file not found: {path}", hint="Check the path in your settings.")
    data = path.read_bytes()
    if len(data) < 4:
        raise CheckpointError(f"{path}: file is empty or truncated ({len(data)} bytes).")
    header = data[:2]
    if header != ZIP_MAGIC and header not in HEADER_TAGS:
        raise CheckpointError(
            f"{path}: not a GPT-SoVITS weight file (unknown header {header!r}; expected a PyTorch zip archive)."
        )
    return data, header


def read_sovits_file(path: str | Path) -> SoVITSFile:
    """Read the raw contents of an official s2 ``.pth`` without building a model.

    A file tagged as v3/v4 (LoRA) is refused before anything is unpickled; one whose weights turn out to be a
    v3/v4 model is refused after reading (:func:`detect_sovits_version` reports both without raising).
    """
    path = Path(path)
    data, header = _read_bytes(path)
    tagged = version_from_header(header)
    if tagged is not None and tagged not in SUPPORTED_VERSIONS:
        raise unsupported_error(path, tagged)
    contents = _unpickle(path, ZIP_MAGIC + data[2:], header)
    found = classify(header, contents.weights, contents.hparams)
    if not found.supported:
        raise unsupported_error(path, found.version)
    return contents


def _unpickle(path: Path, data: bytes | Path, header: bytes) -> SoVITSFile:
    obj = safe_torch_load(data, path)
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path}: unexpected content ({type(obj).__name__}); expected a SoVITS weight dict.")
    weights = obj.get("weight")
    if weights is None and isinstance(obj.get("model"), dict):
        raise CheckpointError(
            f"{path}: this is a SoVITS training checkpoint (G_*.pth), not an exported model.",
            hint="Export the weights from training first, or pick a file from SoVITS_weights*/.",
        )
    if not isinstance(weights, dict) or not all(isinstance(v, torch.Tensor) for v in weights.values()):
        raise CheckpointError(f"{path}: no 'weight' dict of tensors found; not a SoVITS weight file.")
    _refuse_other_models(path, weights)
    hparams = to_plain(obj.get("config"))
    if hparams is None:
        hparams = {}
    if not isinstance(hparams, dict):
        raise CheckpointError(f"{path}: the embedded 'config' is a {type(hparams).__name__}, expected a mapping.")
    return SoVITSFile(weights=dict(weights), hparams=hparams, info_text=str(obj.get("info", "")), header=header)


def _refuse_other_models(path: Path, weights: dict[str, torch.Tensor]) -> None:
    keys = list(weights)
    if keys and all(k.startswith("model.") for k in keys):
        raise CheckpointError(
            f"{path}: this looks like a GPT (s1) checkpoint, not a SoVITS (s2) model.",
            hint="Load .ckpt files as the GPT model and .pth files as the SoVITS model.",
        )
    if "enc_p.text_embedding.weight" not in weights:
        raise CheckpointError(f"{path}: missing 'enc_p.text_embedding.weight'; not a SoVITS model.")


def detect_sovits_version(path: str | Path) -> SoVITSVersion:
    """Which release ``path`` holds, without building a model: the header tag when it names one (v2Pro,
    v2ProPlus, v3, v3/v4 LoRA), else the weights. ``.supported`` is False for v3/v4 (never raises for them);
    unreadable or foreign files raise :class:`CheckpointError`."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"SoVITS weight file not found: {path}", hint="Check the path in your settings.")
    with open(path, "rb") as handle:
        header = handle.read(2)
    tagged = version_from_header(header)
    if tagged is not None and tagged not in ("v1", "v2"):
        return classify(header, None)
    if header == ZIP_MAGIC:  # memory-mapped: only the key names and two shapes are needed, not 100+ MB of weights
        contents = _unpickle(path, path, header)
    else:
        data, header = _read_bytes(path)
        contents = _unpickle(path, ZIP_MAGIC + data[2:], header)
    return classify(header, contents.weights, contents.hparams)


# ----------------------------------------------------------------------------- config inference
def detect_version(weights: dict[str, torch.Tensor], hparams: dict[str, Any] | None = None) -> str:
    """The release of a state dict: v1 has a 322-row phone table, v2 732 (SPEC §9.4); ``sv_emb.*`` makes it
    v2Pro, or v2ProPlus with a first upsampling kernel of 20."""
    return version_from_weights(weights, hparams)


def config_from_weights(hparams: dict[str, Any], weights: dict[str, torch.Tensor], version: str) -> SoVITSConfig:
    """Config from the embedded hparams, with every size that shapes reveal taken from the weights."""
    config = SoVITSConfig.from_hparams(hparams, version=version) if hparams else SoVITSConfig.from_name(version)
    shape = {k: tuple(v.shape) for k, v in weights.items()}

    def dim(key: str, axis: int = 0) -> int | None:
        return shape[key][axis] if key in shape else None

    n_text_layers = len({k.split(".")[3] for k in shape if k.startswith("enc_p.encoder_text.attn_layers.")})
    inferred = {
        "n_symbols": dim("enc_p.text_embedding.weight"),
        "hidden_channels": dim("enc_p.ssl_proj.weight"),
        "inter_channels": None if "enc_p.proj.weight" not in shape else shape["enc_p.proj.weight"][0] // 2,
        "filter_channels": dim("enc_p.encoder_text.ffn_layers.0.conv_1.weight"),
        "n_layers": n_text_layers or None,
        "mrte_hidden_channels": dim("enc_p.mrte.c_pre.weight"),
        "ref_enc_in_bins": dim("ref_enc.spectral.0.fc.weight", 1),
        "style_hidden": dim("ref_enc.spectral.0.fc.weight"),
        "gin_channels": dim("ref_enc.fc.fc.weight"),
        "upsample_initial_channel": dim("dec.conv_pre.weight"),
        "ssl_dim": dim("ssl_proj.weight"),
        "codebook_size": dim("quantizer.vq.layers.0._codebook.embed"),
        "sv_dim": dim("sv_emb.weight", 1) or 0,
    }
    n_ups = len(config.upsample_rates)
    kernels = tuple(dim(f"dec.ups.{i}.weight_v", 2) for i in range(n_ups))
    changes: dict[str, Any] = {}
    if all(kernels) and kernels != config.upsample_kernel_sizes:
        changes["upsample_kernel_sizes"] = kernels
    for name, value in inferred.items():
        if value is not None and getattr(config, name) != value:
            if name not in ("n_symbols", "ref_enc_in_bins", "mrte_hidden_channels", "sv_dim"):
                _LOGGER.warning(
                    "config says %s=%s but the weights have %s; using the weights", name, getattr(config, name), value
                )
            changes[name] = int(value)
    return replace(config, **changes) if changes else config


# ----------------------------------------------------------------------------- loading
def load_sovits(path: str | Path, device: str | torch.device = "cpu", *, cache: bool = False) -> LoadedSoVITS:
    """Load an official v1/v2/v2Pro/v2ProPlus SoVITS ``.pth`` into a float32 model in eval mode.

    ``cache=True`` (inference) goes through the memory-mapped fp32 copy of :mod:`studio.models.weights_cache`,
    written on first use and rebuilt when the file changes; the model and records are the same either way.
    """
    path = Path(path)
    if cache:
        return _load_cached(path, device)
    return _assemble(path, _parse(path), device)


@dataclass
class _Parsed:
    """A checked SoVITS file: its weights and what it said about itself, with the release it holds."""

    contents: SoVITSFile
    version: str

    def record(self) -> dict[str, Any]:
        """The cache metadata that rebuilds the records without the original file."""
        c = self.contents
        return {"hparams": c.hparams, "info": c.info_text, "header": c.header.hex(), "version": self.version}


def _parse(path: Path) -> _Parsed:
    contents = read_sovits_file(path)
    found = classify(contents.header, contents.weights, contents.hparams)
    check_consistent(path, found, contents.weights)
    return _Parsed(contents, found.version)


def _load_cached(path: Path, device: str | torch.device) -> LoadedSoVITS:
    """Through the weights cache: a fresh cache is mapped; a missing, stale or refused one is (re)built from
    the original, which is used directly when no cache can be written."""
    hit = weights_cache.open_cached(path, CACHE_KIND)
    if hit is not None:
        try:
            return _assemble(path, _from_cache(hit), device, source=hit.path)
        except CheckpointError as exc:
            _LOGGER.warning("The weights cache %s was not loaded: %s", hit.path, exc)
    parsed = _parse(path)
    # fp32 made one tensor at a time as the cache is written (never the whole model twice)
    hit = weights_cache.write_cache(
        path,
        CACHE_KIND,
        lambda stored=parsed.contents.weights: ((k, v.float() if v.is_floating_point() else v) for k, v in stored.items()),
        parsed.record(),
    )  # fmt: skip
    if hit is None:
        return _assemble(path, parsed, device)
    del parsed  # the file-backed copy replaces it: free the in-memory one before building
    return _assemble(path, _from_cache(hit), device, source=hit.path)


def _from_cache(hit: weights_cache.CachedWeights) -> _Parsed:
    record = hit.record
    try:
        contents = SoVITSFile(
            weights=hit.tensors,
            hparams=dict(record["hparams"]),
            info_text=str(record["info"]),
            header=bytes.fromhex(record["header"]),
        )
        return _Parsed(contents, str(record["version"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise weights_cache.WeightsCacheError(f"The weights cache {hit.path} has an unusable record ({exc}).") from None


def _assemble(path: Path, parsed: _Parsed, device: str | torch.device, *, source: Path | None = None) -> LoadedSoVITS:
    """The eval-mode model of ``parsed``; weights read from a cache file (``source``) become the parameters
    themselves (file-backed), the others are copied in."""
    contents, version = parsed.contents, parsed.version
    weights = contents.weights
    where = source or path
    posterior_keys = [k for k in weights if k.startswith(POSTERIOR_PREFIX)]
    try:
        config = config_from_weights(contents.hparams, weights, version)
        model = _empty_model(config, bool(posterior_keys)) if source is not None else None
        model = model or SoVITSSynthesizer(config, with_posterior_encoder=bool(posterior_keys))
    except (ValueError, TypeError, KeyError, AssertionError) as exc:
        raise CheckpointError(f"{where}: cannot build a SoVITS model from its config ({exc}).") from None
    _load_weights(where, model, weights, assign=source is not None)
    if any(t.is_meta for t in [*model.parameters(), *model.buffers()]):
        raise CheckpointError(f"{where}: some SoVITS weights were not loaded.")
    info = SoVITSFileInfo(path, contents.info_text, contents.hparams, contents.header, bool(posterior_keys))
    _LOGGER.info("loaded SoVITS %s from %s (%s)", version, where, contents.info_text)
    return LoadedSoVITS(model.to(device).eval(), config, info, version)


def _empty_model(config: SoVITSConfig, with_posterior_encoder: bool) -> SoVITSSynthesizer | None:
    """The model built on the meta device (no memory for initial weights: file-backed ones are assigned next),
    or None when the structure cannot be built that way (then it is built normally)."""
    try:
        with torch.device("meta"):
            model = SoVITSSynthesizer(config, with_posterior_encoder=with_posterior_encoder)
    except Exception:  # noqa: BLE001 - any construction step that needs real numbers
        return None
    for module in model.modules():  # a plain tensor attribute would stay meta: not supported here
        if any(isinstance(v, torch.Tensor) and v.is_meta for v in vars(module).values()):
            return None
    return model


def _load_weights(
    path: Path, model: SoVITSSynthesizer, weights: dict[str, torch.Tensor], *, assign: bool = False
) -> None:
    expected = model.state_dict()
    missing = [k for k in expected if k not in weights]
    unexpected = [k for k in weights if k not in expected]
    wrong = [
        f"{k} {tuple(weights[k].shape)} != {tuple(v.shape)}"
        for k, v in expected.items()
        if k in weights and weights[k].shape != v.shape
    ]
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing (e.g. {', '.join(missing[:3])})")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected (e.g. {', '.join(unexpected[:3])})")
    if wrong:
        problems.append(f"{len(wrong)} with wrong shapes (e.g. {'; '.join(wrong[:3])})")
    if problems:
        raise CheckpointError(
            f"{path}: weights do not fit a SoVITS {model.config.version} model: " + "; ".join(problems) + "."
        )
    state = {k: (v.float() if v.is_floating_point() else v) for k, v in weights.items()}
    model.load_state_dict(state, strict=True, assign=assign)  # assign: fp32 cache tensors stay file-backed


# ----------------------------------------------------------------------------- saving
def default_hparams(config: SoVITSConfig) -> dict[str, Any]:
    """A minimal upstream-style config dict for a model that came without one."""
    return {
        "train": {"segment_size": config.segment_size * config.hop_length},
        "data": {
            "max_wav_value": 32768.0,
            "sampling_rate": config.sampling_rate,
            "filter_length": config.filter_length,
            "hop_length": config.hop_length,
            "win_length": config.win_length,
            "n_mel_channels": 128,
            "mel_fmin": 0.0,
            "mel_fmax": None,
        },
        "model": config.to_hparams_model(),
        "version": config.version,
    }


def save_sovits_official(
    model: SoVITSSynthesizer,
    hparams: dict[str, Any] | None,
    path: str | Path,
    info: str | SoVITSFileInfo,
) -> Path:
    """Write ``model`` in the exact WebUI export format (fp16, no enc_q, config as ``utils.HParams``), atomically.

    v2Pro/v2ProPlus get upstream's header: the same zip bytes (records under ``archive/``, as torch writes to
    a buffer) with ``PK`` replaced by ``05`` / ``06``; v1/v2 stay plain zip files.
    """
    path = Path(path)
    hparams = hparams if hparams is not None else default_hparams(model.config)
    weights = {k: v.detach().to("cpu", torch.float16) for k, v in model.state_dict().items() if "enc_q" not in k}
    payload = OrderedDict([("weight", weights), ("config", HParamsRecord.from_dict(hparams)), ("info", str(info))])
    data = save_torch_zip_bytes(payload)
    tag = export_header(model.config, weights)
    if tag is not None:
        data = tag + data[2:]
    atomic_write_bytes(path, data)
    _LOGGER.info("wrote SoVITS %s weights to %s", model.config.version, path)
    return path


def export_header(config: SoVITSConfig, weights: dict[str, torch.Tensor]) -> bytes | None:
    """The 2-byte tag upstream writes for this model's release instead of ``PK`` (None: keep ``PK``)."""
    if not config.uses_speaker_verification:
        return None
    return EXPORT_HEADERS.get(config.version) or EXPORT_HEADERS[version_from_weights(weights)]
