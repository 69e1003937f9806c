"""Load and save official SoVITS (s2) ``.pth`` weight files safely.

File format (WebUI export, SPEC §9.4): a torch zip archive of
``{"weight": {key: fp16 tensor} (no enc_q keys), "config": utils.HParams, "info": "<e>epoch_<s>iteration"}``.
Full pretrained generators (``s2G2333k.pth``) also carry the ``enc_q`` keys. v2Pro/v2ProPlus and LoRA
exports replace the leading ``PK`` with a 2-byte version tag; we restore it in memory and refuse the
variants we cannot run yet with a clear message.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, NamedTuple

import torch

from studio.errors import CheckpointError
from studio.models.safe_pickle import HParamsRecord, safe_torch_load, save_torch_zip_bytes, to_plain
from studio.models.sovits.config import SoVITSConfig
from studio.models.sovits.synthesizer import SoVITSSynthesizer
from studio.workspace import atomic_write_bytes

_LOGGER = logging.getLogger(__name__)

ZIP_MAGIC = b"PK"
#: 2-byte tags written instead of "PK" (SPEC §9.4) -> (version, supported)
HEADER_TAGS: dict[bytes, tuple[str, bool]] = {
    b"00": ("v1", True),
    b"01": ("v2", True),
    b"02": ("v3", False),
    b"03": ("v3 LoRA", False),
    b"04": ("v4 LoRA", False),
    b"05": ("v2Pro", False),
    b"06": ("v2ProPlus", False),
}
POSTERIOR_PREFIX = "enc_q."
V1_SYMBOLS = 322


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
    version: str  # "v1" or "v2"


@dataclass
class SoVITSFile:
    weights: dict[str, torch.Tensor]
    hparams: dict[str, Any]
    info_text: str
    header: bytes


# ----------------------------------------------------------------------------- reading
def read_sovits_file(path: str | Path) -> SoVITSFile:
    """Read the raw contents of an official s2 ``.pth`` without building a model."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"SoVITS weight file not found: {path}", hint="Check the path in your settings.")
    data = path.read_bytes()
    header = data[:2]
    if len(data) < 4:
        raise CheckpointError(f"{path}: file is empty or truncated ({len(data)} bytes).")
    if header in HEADER_TAGS:
        kind, supported = HEADER_TAGS[header]
        if not supported:
            raise CheckpointError(
                f"{path}: this is a GPT-SoVITS {kind} SoVITS model, which is not supported yet.",
                hint="Use a v1 or v2 SoVITS weight file.",
            )
        data = ZIP_MAGIC + data[2:]
    elif header != ZIP_MAGIC:
        raise CheckpointError(
            f"{path}: not a GPT-SoVITS weight file (unknown header {header!r}; expected a PyTorch zip archive)."
        )
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
    if any(k.startswith(("sv_emb.", "ge_to512.")) for k in keys):
        raise CheckpointError(f"{path}: this is a v2Pro/v2ProPlus SoVITS model, which is not supported yet.")
    if any(k.startswith(("cfm.", "bridge.", "wns1.")) for k in keys):
        raise CheckpointError(f"{path}: this is a v3/v4 SoVITS model, which is not supported yet.")
    if "enc_p.text_embedding.weight" not in weights:
        raise CheckpointError(f"{path}: missing 'enc_p.text_embedding.weight'; not a SoVITS v1/v2 model.")


# ----------------------------------------------------------------------------- config inference
def detect_version(weights: dict[str, torch.Tensor]) -> str:
    """v1 has a 322-row phone table, v2 732 (SPEC §9.4)."""
    return "v1" if weights["enc_p.text_embedding.weight"].shape[0] == V1_SYMBOLS else "v2"


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
    }
    changes = {}
    for name, value in inferred.items():
        if value is not None and getattr(config, name) != value:
            if name not in ("n_symbols", "ref_enc_in_bins", "mrte_hidden_channels"):
                _LOGGER.warning(
                    "config says %s=%s but the weights have %s; using the weights", name, getattr(config, name), value
                )
            changes[name] = int(value)
    return replace(config, **changes) if changes else config


# ----------------------------------------------------------------------------- loading
def load_sovits(path: str | Path, device: str | torch.device = "cpu") -> LoadedSoVITS:
    """Load an official v1/v2 SoVITS ``.pth`` into a float32 model in eval mode."""
    path = Path(path)
    contents = read_sovits_file(path)
    weights = contents.weights
    version = detect_version(weights)
    posterior_keys = [k for k in weights if k.startswith(POSTERIOR_PREFIX)]
    try:
        config = config_from_weights(contents.hparams, weights, version)
        model = SoVITSSynthesizer(config, with_posterior_encoder=bool(posterior_keys))
    except (ValueError, TypeError, KeyError, AssertionError) as exc:
        raise CheckpointError(f"{path}: cannot build a SoVITS model from its config ({exc}).") from None
    _load_weights(path, model, weights)
    info = SoVITSFileInfo(path, contents.info_text, contents.hparams, contents.header, bool(posterior_keys))
    _LOGGER.info("loaded SoVITS %s from %s (%s)", version, path, contents.info_text)
    return LoadedSoVITS(model.to(device).eval(), config, info, version)


def _load_weights(path: Path, model: SoVITSSynthesizer, weights: dict[str, torch.Tensor]) -> None:
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
        raise CheckpointError(f"{path}: weights do not fit a SoVITS v1/v2 model: " + "; ".join(problems) + ".")
    state = {k: (v.float() if v.is_floating_point() else v) for k, v in weights.items()}
    model.load_state_dict(state, strict=True)


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
    """Write ``model`` in the exact WebUI export format (fp16, no enc_q, config as ``utils.HParams``), atomically."""
    path = Path(path)
    hparams = hparams if hparams is not None else default_hparams(model.config)
    weights = {k: v.detach().to("cpu", torch.float16) for k, v in model.state_dict().items() if "enc_q" not in k}
    payload = OrderedDict([("weight", weights), ("config", HParamsRecord.from_dict(hparams)), ("info", str(info))])
    atomic_write_bytes(path, save_torch_zip_bytes(payload))
    _LOGGER.info("wrote SoVITS weights to %s", path)
    return path
