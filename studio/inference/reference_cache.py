"""Disk cache of what a reference clip gives, so a repeated reference never goes through HuBERT (or the
speaker-verification model) again.

Why: the GPT's prompt tokens of a reference are HuBERT features (the content encoder, ~95 M parameters) quantised
by SoVITS's ``ssl_proj`` + codebook. That is the costliest part of preparing a reference, and it is
deterministic: the same clip through the same weights on the same kind of device gives the same tokens. The
in-memory cache of :class:`~studio.inference.conditioning.ReferenceConditioner` lives as long as one loaded
voice; this one survives a voice switch, a new process and a restart. A v2Pro/v2ProPlus voice also needs each
timbre clip's speaker-verification embedding (ERes2NetV2): kept here the same way, so a known clip needs no
verifier in memory.

Key of the prompt tokens: the clip's content hash (a changed file at the same path is a new entry), the
auto-trim flag, the content encoder's identity (its folder, the size and mtime of its files, its module types
and dtypes: a precision mode that swaps modules is another encoder), a hash of the SoVITS quantiser's weights
(``ssl_proj`` + codebook: every voice fine-tuned from the same base shares it) and the device type. Key of an
embedding: the clip's content hash, how it was loaded (trimmed, length-checked), the verifier's weight file (path,
size, mtime) and the device type. Entries are small safetensors files in ``$STUDIO_CACHE_DIR/references/`` (see
:func:`studio.models.weights_cache.cache_root`); deleting the folder is always safe. A damaged entry is ignored
(logged) and overwritten.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path

import torch

from studio.models.weights_cache import cache_root

_LOGGER = logging.getLogger(__name__)

FORMAT = "sovits-studio-reference-tokens/1"
_TENSOR = "prompt_tokens"
SV_FORMAT = "sovits-studio-reference-sv/1"
_SV_TENSOR = "sv_embedding"
_ENCODER_FILES = ("config.json", "model.safetensors", "pytorch_model.bin")


def _tokens_ok(tensor: torch.Tensor) -> bool:
    return tensor.dim() == 2 and tensor.dtype == torch.int64


def _embedding_ok(tensor: torch.Tensor) -> bool:
    return tensor.dim() == 2 and tensor.shape[0] == 1 and tensor.dtype == torch.float32


class ReferenceFeatureCache:
    """Prompt tokens (1, T_sem) and speaker embeddings (1, E) by key, on disk. ``folder`` None →
    ``cache_root()/references`` at each use."""

    def __init__(self, folder: str | os.PathLike[str] | None = None) -> None:
        self._folder = Path(folder) if folder is not None else None
        self.hits = 0
        self.misses = 0
        self._lock = threading.Lock()

    @property
    def folder(self) -> Path:
        return self._folder if self._folder is not None else cache_root() / "references"

    def _path(self, key: str) -> Path:
        return self.folder / f"{key}.safetensors"

    def get(self, key: str) -> torch.Tensor | None:
        """The cached tokens (CPU, int64) of ``key``, or None (a damaged entry counts as absent)."""
        return self._read(key, FORMAT, _TENSOR, _tokens_ok)

    def put(self, key: str, tokens: torch.Tensor) -> None:
        """Store ``tokens`` (1, T_sem) atomically; a failure is logged, never raised (the cache is optional)."""
        self._write(key, FORMAT, _TENSOR, tokens.detach().to("cpu", torch.int64))

    def get_embedding(self, key: str) -> torch.Tensor | None:
        """The cached speaker embedding (CPU, float32, (1, E)) of ``key``, or None."""
        return self._read(key, SV_FORMAT, _SV_TENSOR, _embedding_ok)

    def put_embedding(self, key: str, embedding: torch.Tensor) -> None:
        """Store a speaker embedding (1, E) atomically; a failure is logged, never raised."""
        self._write(key, SV_FORMAT, _SV_TENSOR, embedding.detach().to("cpu", torch.float32))

    def _read(self, key: str, fmt: str, name: str, valid: Callable[[torch.Tensor], bool]) -> torch.Tensor | None:
        from safetensors import safe_open

        path = self._path(key)
        found = None
        if path.is_file():
            try:
                with safe_open(str(path), framework="pt", device="cpu") as handle:
                    if (handle.metadata() or {}).get("format") == fmt:
                        found = handle.get_tensor(name).clone()
            except Exception as exc:  # a damaged entry: whatever safetensors says, it is computed again
                _LOGGER.warning("ignoring the damaged reference cache entry %s (%s)", path, exc)
            if found is not None and not valid(found):
                _LOGGER.warning("ignoring the reference cache entry %s: unexpected %s %s", path, name, found.shape)
                found = None
        with self._lock:
            if found is None:
                self.misses += 1
            else:
                self.hits += 1
        return found

    def _write(self, key: str, fmt: str, name: str, tensor: torch.Tensor) -> None:
        from safetensors.torch import save_file

        path = self._path(key)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            save_file({name: tensor.contiguous()}, str(tmp), {"format": fmt})
            os.replace(tmp, path)
        except Exception as exc:  # OSError or safetensors' own error: synthesis goes on without the cache
            _LOGGER.warning("could not write the reference cache entry %s (%s)", path, exc)
        finally:
            tmp.unlink(missing_ok=True)


def prompt_tokens_key(
    audio_digest: str, auto_trim: bool, encoder: object, sovits: torch.nn.Module, device: torch.device
) -> str | None:
    """The cache key of a clip's prompt tokens; None when the encoder or SoVITS model cannot be identified."""
    encoder_id, quantizer_id = encoder_identity(encoder), quantizer_identity(sovits)
    if encoder_id is None or quantizer_id is None:
        return None
    parts = {
        "format": FORMAT,
        "audio": audio_digest,
        "auto_trim": bool(auto_trim),
        "encoder": encoder_id,
        "quantizer": quantizer_id,
        "device": torch.device(device).type,
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode("utf-8")).hexdigest()


def encoder_identity(encoder: object) -> str | None:
    """What makes one content encoder's output differ from another's: its ``cache_identity`` when it has one,
    else its weight folder (files with size and mtime), module types and parameter dtypes; None when unknown."""
    custom = getattr(encoder, "cache_identity", None)
    if custom is not None:
        return str(custom)
    folder, model = getattr(encoder, "folder", None), getattr(encoder, "model", None)
    if folder is None or not isinstance(model, torch.nn.Module):
        return None
    folder = Path(folder).resolve()
    files = []
    for name in _ENCODER_FILES:
        if (folder / name).is_file():
            info = (folder / name).stat()
            files.append([name, info.st_size, info.st_mtime_ns])
    described = {
        "class": type(encoder).__qualname__,
        "folder": str(folder),
        "files": files,
        "modules": sorted({type(m).__qualname__ for m in model.modules()}),
        "dtypes": sorted({str(p.dtype) for p in model.parameters()}),
    }
    return json.dumps(described, sort_keys=True)


def quantizer_identity(sovits: torch.nn.Module) -> str | None:
    """sha256 of the weights that turn HuBERT features into tokens (``ssl_proj`` and the quantiser, ~6 MB)."""
    parts = [(name, getattr(sovits, name, None)) for name in ("ssl_proj", "quantizer")]
    if any(not isinstance(module, torch.nn.Module) for _, module in parts):
        return None
    digest = hashlib.sha256()
    for prefix, module in parts:
        digest.update(type(module).__qualname__.encode())
        for name, tensor in module.state_dict().items():
            flat = tensor.detach().to("cpu").contiguous().reshape(-1)
            digest.update(f"{prefix}.{name}:{flat.dtype}:{tuple(tensor.shape)}".encode())
            digest.update(flat.view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def sv_embedding_key(
    audio_digest: str, auto_trim: bool, checked: bool, verifier: object, device: torch.device
) -> str | None:
    """The cache key of a timbre clip's speaker embedding; None when the verifier cannot be identified."""
    verifier_id = verifier_identity(verifier)
    if verifier_id is None:
        return None
    parts = {
        "format": SV_FORMAT,
        "audio": audio_digest,
        "auto_trim": bool(auto_trim),
        "checked": bool(checked),
        "verifier": verifier_id,
        "device": torch.device(device).type,
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode("utf-8")).hexdigest()


def verifier_identity(verifier: object) -> str | None:
    """What makes one speaker-verification model's embeddings differ from another's: its weight file (resolved
    path, size, mtime), known without loading it; None when it has no file."""
    source = getattr(verifier, "source", None)  # a SpeakerVerifier's file, or a LazySpeakerVerifier's
    if source is None or not Path(source).is_file():
        return None
    info = Path(source).stat()
    return f"sv|{Path(source).resolve()}|{info.st_size}|{info.st_mtime_ns}"
