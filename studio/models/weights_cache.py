"""A memory-mapped safetensors copy of an official checkpoint's inference weights.

Why: an official ``.ckpt``/``.pth`` is a pickled zip of fp16 tensors. Loading it reads every byte, converts
every tensor to fp32 and copies it into the model, so the whole model is resident before the first token.
The cache holds the *converted* fp32 weights in a safetensors file; the model's parameters are assigned
tensors backed by that file (``load_state_dict(assign=True)``), so pages are read from disk when they are
first touched and resident memory is what inference uses. Nothing is unpickled on a cache hit: the file's
metadata carries what the loaders need besides the weights (the GPT config, the SoVITS hparams/header/label).

Where: beside the original as ``.<name>.studio.safetensors`` when that folder can be written, otherwise in
``$STUDIO_CACHE_DIR/weights/`` (default ``$XDG_CACHE_HOME/sovits-studio`` or ``~/.cache/sovits-studio``) under a
hash of the original's absolute path. ``STUDIO_WEIGHTS_CACHE=user`` always uses the cache folder,
``STUDIO_WEIGHTS_CACHE=off`` disables the cache.

Trust rules: the cache records the original's size and ``mtime_ns``; a cache whose original changed is stale
and rebuilt (logged). A cache that cannot be parsed, is truncated or lacks our metadata is never loaded:
:func:`read_cache` raises :class:`WeightsCacheError` naming it, and :func:`open_cached` logs that and lets the
loader rebuild it from the original. A cache is always written to a temporary name and moved into place, so a
process that maps the old file keeps a valid mapping and a crash never leaves half a cache.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import struct
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from studio.errors import CheckpointError

__all__ = [
    "CachedWeights",
    "WeightsCacheError",
    "cache_candidates",
    "cache_root",
    "open_cached",
    "read_cache",
    "release_pages",
    "trim_freed_memory",
    "write_cache",
]

_LOGGER = logging.getLogger(__name__)

FORMAT = "sovits-studio-weights-cache/1"
SUFFIX = ".studio.safetensors"
ENV_DIR = "STUDIO_CACHE_DIR"
ENV_MODE = "STUDIO_WEIGHTS_CACHE"  # "auto" (default), "user" or "off"
MODES = ("auto", "user", "off")
_META_KEYS = ("format", "kind", "source_size", "source_mtime_ns", "record")


class WeightsCacheError(CheckpointError):
    """A weights cache file is truncated, corrupt or not a cache of the expected model: it is never loaded."""


@dataclass(frozen=True)
class CachedWeights:
    """An opened cache: ``tensors`` are backed by ``path`` (pages load on first touch)."""

    path: Path
    tensors: dict[str, torch.Tensor]
    record: dict[str, Any]  # what the original said besides its weights (config, label, …), JSON-decoded


# ----------------------------------------------------------------------------------------------- locations


def cache_root() -> Path:
    """The per-user cache folder of the studio: ``$STUDIO_CACHE_DIR``, else the XDG cache dir."""
    env = os.environ.get(ENV_DIR)
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "sovits-studio"


def cache_mode() -> str:
    mode = os.environ.get(ENV_MODE, "auto").strip().lower() or "auto"
    if mode not in MODES:
        _LOGGER.warning("%s=%r is not one of %s; using 'auto'", ENV_MODE, mode, ", ".join(MODES))
        return "auto"
    return mode


def cache_candidates(original: str | os.PathLike[str], variant: str = "") -> list[Path]:
    """Where the cache of ``original`` may live, in the order they are tried ([] when caching is off).
    ``variant`` names a second cache of the same file (e.g. its int8-converted weights)."""
    original = Path(original)
    mode = cache_mode()
    if mode == "off":
        return []
    absolute = original.resolve()
    digest = hashlib.sha256(str(absolute).encode("utf-8")).hexdigest()[:20]
    name = f"{original.name}.{variant}" if variant else original.name
    user = cache_root() / "weights" / f"{digest}-{name}{SUFFIX}"
    beside = original.parent / f".{name}{SUFFIX}"
    if mode == "user" or not os.access(original.parent, os.W_OK):
        return [user]
    return [beside, user]


def _stamp(original: Path) -> tuple[int, int]:
    info = original.stat()
    return info.st_size, info.st_mtime_ns


# ----------------------------------------------------------------------------------------------- reading


def read_cache(cache: Path, original: Path, kind: str) -> CachedWeights | None:
    """Open ``cache`` as the ``kind`` ("gpt", "sovits") cache of ``original``: None when it is stale (the
    original's size or mtime changed); :class:`WeightsCacheError` when it is damaged or not ours."""
    from safetensors import safe_open

    try:
        with safe_open(str(cache), framework="pt", device="cpu") as handle:
            meta = handle.metadata() or {}
            _check_meta(cache, meta, kind)
            if (int(meta["source_size"]), int(meta["source_mtime_ns"])) != _stamp(original):
                return None
            tensors = {name: handle.get_tensor(name) for name in handle.keys()}  # file-backed
    except WeightsCacheError:
        raise
    except Exception as exc:  # SafetensorError, OSError, ValueError: a damaged file, whatever the detail
        raise WeightsCacheError(
            f"The weights cache {cache} is damaged and was not loaded ({_first_line(exc)}).",
            hint="It is rebuilt from the original model file; deleting it is always safe.",
        ) from None
    try:
        record = json.loads(meta["record"])
    except ValueError:
        record = None
    if not isinstance(record, dict):
        raise WeightsCacheError(f"The weights cache {cache} has unreadable metadata and was not loaded.")
    return CachedWeights(cache, tensors, record)


def _check_meta(cache: Path, meta: dict[str, str], kind: str) -> None:
    if meta.get("format") != FORMAT or any(key not in meta for key in _META_KEYS):
        raise WeightsCacheError(
            f"{cache} is not a SoVITS Studio weights cache of format {FORMAT!r} and was not loaded.",
            hint="It is rebuilt from the original model file; deleting it is always safe.",
        )
    if meta["kind"] != kind:
        raise WeightsCacheError(
            f"The weights cache {cache} holds a {meta['kind']!r} model, not the {kind!r} model expected; "
            "it was not loaded."
        )


def open_cached(original: str | os.PathLike[str], kind: str, variant: str = "") -> CachedWeights | None:
    """The first valid, fresh cache of ``original`` (None: none yet, stale, refused or caching is off).

    Stale and refused caches are logged; the caller then loads the original and calls :func:`write_cache`.
    """
    original = Path(original)
    if not original.is_file():
        return None  # the loader reports the missing original in its own words
    for cache in cache_candidates(original, variant):
        if not cache.is_file():
            continue
        try:
            found = read_cache(cache, original, kind)
        except WeightsCacheError as exc:
            _LOGGER.warning("%s", exc)
            continue
        if found is not None:
            _LOGGER.info("using the weights cache %s of %s", cache, original)
            return found
        _LOGGER.info("%s changed since its weights cache %s was written; rebuilding it", original, cache)
    return None


def release_pages(tensors: Iterable[torch.Tensor], files: Iterable[str | os.PathLike[str]] = ()) -> int:
    """Drop the pages of ``tensors`` that map a weights cache file (``*.studio.safetensors``), or one of
    ``files`` (an original checkpoint read memory-mapped), from this process's resident memory, once their values
    have been copied where they are used (an int8 matrix packed for its kernel, a decoder's folded weights).

    The file's mapping otherwise keeps every page that was read resident for as long as any tensor of the file
    lives: loading the int8 Chinese BERT left ~300 MB of its file resident beside the packed copy. A tensor is
    released only when its resident pages are all still the file's own (checked in /proc/self/pagemap; a page
    written in place — adapters merged into a mapped weight — is private data and is kept), so a dropped page is
    read back from the file if it is ever touched: nothing is lost. Only whole pages are dropped; anything that
    does not map one of those files (or any tensor off Linux) is left alone. Returns the bytes dropped."""
    if not sys.platform.startswith("linux"):
        return 0
    import ctypes
    import mmap

    try:
        mapped = _mappings({str(Path(f).resolve()) for f in files})
        madvise = _libc().madvise
    except (OSError, AttributeError):
        return 0
    madvise.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
    page, dropped = mmap.PAGESIZE, 0
    for tensor in tensors:
        start = tensor.data_ptr()
        end = start + tensor.numel() * tensor.element_size()
        first, last = -(-start // page) * page, end // page * page
        if last <= first or not any(lo <= first and last <= hi for lo, hi in mapped):
            continue
        if not _unwritten(first, last, page):
            continue  # written in place since it was mapped (e.g. adapters merged into it): those pages are the data
        if madvise(first, last - first, mmap.MADV_DONTNEED) == 0:
            dropped += last - first
    return dropped


def _unwritten(first: int, last: int, page: int) -> bool:
    """True when no page in [first, last) holds private data: each is absent or still the file's own page
    (Linux's /proc/self/pagemap; a copy made on write is anonymous). False when that cannot be read."""
    import numpy as np

    try:
        with open("/proc/self/pagemap", "rb") as pagemap:
            pagemap.seek(first // page * 8)
            entries = np.frombuffer(pagemap.read((last - first) // page * 8), dtype=np.uint64)
    except OSError:
        return False
    if len(entries) != (last - first) // page:
        return False
    present = (entries >> np.uint64(63)) & np.uint64(1)
    file_page = (entries >> np.uint64(61)) & np.uint64(1)
    return not bool(np.any((present == 1) & (file_page == 0)))


def _mappings(files: set[str]) -> list[tuple[int, int]]:
    """(start, end) of this process's memory mappings of weights cache files and of ``files`` (resolved paths)."""
    ranges = []
    with open("/proc/self/maps", encoding="utf-8", errors="replace") as maps:
        for line in maps:
            fields = line.split(maxsplit=5)
            path = fields[5].rstrip("\n") if len(fields) == 6 else ""
            if path.endswith(SUFFIX) or path in files:
                lo, hi = (int(x, 16) for x in fields[0].split("-"))
                ranges.append((lo, hi))
    return ranges


# ----------------------------------------------------------------------------------------------- writing


def write_cache(
    original: str | os.PathLike[str],
    kind: str,
    tensors: Mapping[str, torch.Tensor] | Callable[[], Iterable[tuple[str, torch.Tensor]]],
    record: dict[str, Any],
    variant: str = "",
) -> CachedWeights | None:
    """Write the cache of ``original`` at the first writable place and open it (memory-mapped).

    ``tensors``: the weights by name, or a function giving them as (name, tensor) pairs — called twice, and each
    time the same names, dtypes and shapes in the same order — so tensors made for the file (an int8 layer's
    unpacked matrix) need exist only while each is written.

    Returns None (and logs why) when no place can be written or ``record`` is not JSON: the caller then
    keeps using the weights it read from the original.
    """
    original = Path(original)
    try:
        stamp = _stamp(original)
        meta = {
            "format": FORMAT,
            "kind": kind,
            "source": str(original.resolve()),
            "source_size": str(stamp[0]),
            "source_mtime_ns": str(stamp[1]),
            "record": json.dumps(record),
        }
    except (OSError, TypeError, ValueError) as exc:
        _LOGGER.warning("not caching %s: %s", original, exc)
        return None
    source = tensors if callable(tensors) else tensors.items
    reasons = []
    for cache in cache_candidates(original, variant):
        try:
            _save_atomic(cache, source, meta)
            found = read_cache(cache, original, kind)
        except (OSError, WeightsCacheError) as exc:
            reasons.append(f"{cache}: {_first_line(exc)}")
            continue
        if found is not None:
            _LOGGER.info("wrote the weights cache %s of %s", cache, original)
            return found
        reasons.append(f"{cache}: {original} changed while the cache was written")
    if reasons:
        _LOGGER.warning("could not write a weights cache of %s (%s); using the original", original, "; ".join(reasons))
    return None


def _save_atomic(cache: Path, source: Callable[[], Iterable[tuple[str, torch.Tensor]]], meta: dict[str, str]) -> None:
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_name(f".{cache.name}.{os.getpid()}.tmp")
    try:
        _write_safetensors(tmp, source, meta)
        os.replace(tmp, cache)
    except (OSError, ValueError, TypeError) as exc:
        raise OSError(str(exc)) from exc
    finally:
        tmp.unlink(missing_ok=True)


_SAFETENSORS_DTYPES = {
    torch.float64: "F64", torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.int64: "I64",
    torch.int32: "I32", torch.int16: "I16", torch.int8: "I8", torch.uint8: "U8", torch.bool: "BOOL",
}  # fmt: skip


def _write_safetensors(
    path: Path, source: Callable[[], Iterable[tuple[str, torch.Tensor]]], meta: dict[str, str]
) -> None:
    """A safetensors file (the format :func:`read_cache` opens with the ``safetensors`` library), written one
    tensor at a time straight from the tensor's memory.

    safetensors' own ``save_file`` first copies every tensor into one bytes object: writing the converted
    Chinese BERT held ~0.3 GB more at the end of its first load, and an fp32 cache the whole model a second time.
    Layout: an 8-byte little-endian header length, the JSON header (names, dtypes, shapes, byte ranges, and the
    ``__metadata__`` strings) padded with spaces to a multiple of 8, then the tensors' bytes in header order."""
    header: dict[str, Any] = {"__metadata__": meta}
    specs: list[tuple[str, str, list[int]]] = []
    offset = 0
    for name, tensor in source():
        if tensor.dtype not in _SAFETENSORS_DTYPES:
            raise TypeError(f"{name}: no safetensors type for {tensor.dtype}")
        if name in header:
            raise ValueError(f"{name} is given twice")
        size = tensor.numel() * tensor.element_size()
        spec = (name, _SAFETENSORS_DTYPES[tensor.dtype], list(tensor.shape))
        header[name] = {"dtype": spec[1], "shape": spec[2], "data_offsets": [offset, offset + size]}
        specs.append(spec)
        offset += size
    raw = json.dumps(header, separators=(",", ":")).encode("utf-8")
    raw += b" " * (-len(raw) % 8)
    with path.open("wb") as out:
        out.write(struct.pack("<Q", len(raw)))
        out.write(raw)
        for (name, tensor), spec in zip(source(), specs, strict=True):  # a different count raises too
            if (name, _SAFETENSORS_DTYPES.get(tensor.dtype), list(tensor.shape)) != spec:
                raise ValueError(f"the tensors changed while they were written ({name} against {spec[0]})")
            data = tensor.detach().to("cpu").contiguous().reshape(-1)
            if data.numel():
                out.write(data.view(torch.uint8).numpy().data)


def trim_freed_memory() -> None:
    """Give every free page of the allocator's heap back to the system now (glibc's ``malloc_trim``; elsewhere a
    no-op). Called once a model has loaded: the fp32 copies and conversion buffers it freed sit among live blocks,
    below the top of their heaps (the compute thread's arena too), where the trim threshold never reaches them.
    Measured at official size (int8, voice load then 10 s of English): 762–764 MiB resident after the load and
    956–973 MiB at the English peak in four runs, against 770–872 and 958–1,043 without it (whether the freed
    blocks end up at the top varies with the threads' allocation order). A conversion from an original file also
    trims after each layer (:func:`studio.models.precision.convert_linears`)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        _libc().malloc_trim(0)
    except (OSError, AttributeError) as exc:  # musl or another libc
        _LOGGER.debug("malloc_trim unavailable: %s", exc)


@functools.cache
def _libc():
    """The C library's symbols in this process, looked up once: a conversion trims after every layer, and
    ``ctypes.util.find_library`` costs ~1.5 ms a call (it asks ``ldconfig``)."""
    import ctypes

    return ctypes.CDLL(None, use_errno=True)


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0][:160] if lines else type(exc).__name__
