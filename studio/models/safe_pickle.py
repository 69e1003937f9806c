"""Safe reading and writing of official GPT-SoVITS weight files (torch zip + pickle).

Official SoVITS exports pickle their config as an instance of upstream's ``utils.HParams``, which
makes ``torch.load(weights_only=True)`` refuse them and tempts people into
``weights_only=False`` (arbitrary code execution). We instead run torch's restricted
``weights_only`` unpickler — it admits only tensors, storages and plain containers — and allow
exactly one extra global: the name ``utils.HParams``, mapped to :class:`HParamsRecord`, an inert
attribute bag that we turn into a plain dict. Any other global is refused before anything runs.

For writing, :func:`save_torch_zip_bytes` pickles :class:`HParamsRecord` under the name
``utils.HParams`` so that the upstream WebUI can read our exports.
"""

from __future__ import annotations

import io
import logging
import pickle
import types
from pathlib import Path
from typing import Any

import torch

from studio.errors import CheckpointError

_LOGGER = logging.getLogger(__name__)

HPARAMS_GLOBAL = ("utils", "HParams")


class HParamsRecord:
    """Stand-in for upstream ``utils.HParams``: its attributes are the config keys (nested records)."""

    def __init__(self, **entries: Any) -> None:
        for key, value in entries.items():
            setattr(self, key, HParamsRecord.from_dict(value) if isinstance(value, dict) else value)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HParamsRecord:
        return cls(**data)

    def __setstate__(self, state: Any) -> None:
        if not isinstance(state, dict) or not all(isinstance(k, str) for k in state):
            raise pickle.UnpicklingError("utils.HParams state must be a dict with string keys")
        self.__dict__.update(state)

    def to_dict(self) -> dict[str, Any]:
        return {key: _plain(value) for key, value in vars(self).items()}


def _plain(value: Any) -> Any:
    if isinstance(value, HParamsRecord):
        return value.to_dict()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def to_plain(obj: Any) -> Any:
    """Replace every HParamsRecord inside a loaded object by a plain dict."""
    return _plain(obj)


def safe_torch_load(data: bytes | Path, source: str | Path) -> Any:
    """Unpickle a torch zip archive (bytes in memory, or a file path) with the restricted unpickler; names
    ``source`` in errors. A path is memory-mapped, so only the tensors that are touched are read from disk.

    Raises CheckpointError for a damaged archive or for a pickle naming any global that is not a
    tensor/storage/container building block or ``utils.HParams``.
    """
    allowed = [(HParamsRecord, ".".join(HPARAMS_GLOBAL))]
    in_memory = isinstance(data, (bytes, bytearray))
    try:
        with torch.serialization.safe_globals(allowed):
            target = io.BytesIO(data) if in_memory else str(data)
            return torch.load(target, map_location="cpu", weights_only=True, mmap=not in_memory)
    except pickle.UnpicklingError as exc:
        _LOGGER.warning("refused to unpickle %s: %s", source, exc)
        raise CheckpointError(
            f"{source}: refused to open — the file contains code or objects that a model file never needs "
            "(it may be malicious or not a GPT-SoVITS weight file).",
            hint="Only open weight files from sources you trust.",
        ) from None
    except (RuntimeError, EOFError, ValueError, OSError, KeyError, AttributeError, TypeError, IndexError) as exc:
        _LOGGER.debug("torch.load failed for %s: %s", source, exc)
        raise CheckpointError(
            f"{source}: not a readable PyTorch weight file (truncated or corrupt archive: {_short(exc)}).",
            hint="Download or export the file again.",
        ) from None


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:160]


class _HParamsPickler(pickle._Pickler):  # the pure-Python pickler lets us name a global we don't import
    def save_global(self, obj: Any, name: str | None = None) -> None:
        if obj is HParamsRecord:
            module, qualname = HPARAMS_GLOBAL
            self.write(pickle.GLOBAL + f"{module}\n{qualname}\n".encode())
            self.memoize(obj)
            return
        super().save_global(obj, name)


_WRITER_MODULE = types.ModuleType("studio_hparams_pickle")
_WRITER_MODULE.Pickler = _HParamsPickler  # type: ignore[attr-defined]


def save_torch_zip_bytes(obj: Any) -> bytes:
    """``torch.save`` of ``obj`` into bytes (zip format, pickle protocol 2, as upstream writes)."""
    buffer = io.BytesIO()
    torch.save(obj, buffer, pickle_module=_WRITER_MODULE, pickle_protocol=2)
    return buffer.getvalue()
