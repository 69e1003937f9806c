"""Open a voice pack safely: validate the manifest, check every entry, extract atomically, verify checksums.

A voice pack comes from someone else, so the zip is treated as hostile. Before anything is written the reader
refuses: unknown format versions, more than ``max_entries`` entries, duplicate names (case-insensitively),
names that are absolute, carry a drive letter, a backslash or a ``..`` part, symlinks and other non-regular
entries (Unix mode in ``external_attr``), encrypted entries, files that exceed the per-file or total size limits
as declared, compression ratios above ``max_ratio``, and files the manifest does not name. While extracting it
counts the bytes actually decompressed (a lying header cannot push past the limits) and hashes them; the
extraction goes to a temporary folder next to ``extract_to`` which is renamed into place only when every sha256
matches, so a failure leaves nothing behind.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import stat
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from studio.errors import VoicePackError
from studio.voicepack.manifest import MANIFEST_NAME, ReferenceClip, VoiceManifest, is_safe_member_name

_LOGGER = logging.getLogger(__name__)
_CHUNK = 1 << 20


@dataclass(frozen=True)
class ExtractLimits:
    """Upper bounds for what a voice pack may contain."""

    max_entries: int = 64
    max_file_bytes: int = 768 << 20  # a merged fp32 GPT is ~310 MB
    max_total_bytes: int = 1536 << 20
    max_manifest_bytes: int = 1 << 20
    max_ratio: float = 100.0  # uncompressed / compressed, checked for entries above ratio_min_bytes
    ratio_min_bytes: int = 1 << 20


DEFAULT_LIMITS = ExtractLimits()


@dataclass(frozen=True)
class VoicePack:
    """An opened, verified voice pack extracted under ``root``."""

    root: Path
    manifest: VoiceManifest

    def weights_path(self, stage: str) -> Path | None:
        ref = self.manifest.weights.files.get(stage)
        return self.root / ref.file if ref else None

    def load_weights(self, stage: str) -> dict[str, torch.Tensor]:
        """The state dict of one stage (adapters or merged weights, see ``manifest.weights.kind``)."""
        path = self.weights_path(stage)
        if path is None:
            raise VoicePackError(f"The voice pack '{self.manifest.name}' has no {stage} weights.")
        try:
            return load_file(path)
        except (SafetensorError, OSError) as e:
            raise VoicePackError(f"The {stage} weights in voice pack '{self.manifest.name}' cannot be read: {e}") from e

    def reference_paths(self) -> list[tuple[Path, ReferenceClip]]:
        return [(self.root / clip.file, clip) for clip in self.manifest.references]


# ----------------------------------------------------------------------------------------------- checks


def _entry_problem(info: zipfile.ZipInfo) -> str | None:
    """Why this entry must not be extracted, or None."""
    name = info.filename
    if "\x00" in name or "\\" in name:
        return "has a backslash or NUL in its name"
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        return "is an absolute path"
    if ".." in PurePosixPath(name).parts:
        return "points outside the pack (..)"
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        return "is a symbolic link"
    if mode and stat.S_IFMT(mode) not in (0, stat.S_IFREG, stat.S_IFDIR):
        return "is not a regular file"
    if info.flag_bits & 0x1:
        return "is encrypted"
    if not info.is_dir() and not is_safe_member_name(name):
        return "has a name that is not a plain relative path"
    return None


def _check_entries(zf: zipfile.ZipFile, limits: ExtractLimits) -> list[zipfile.ZipInfo]:
    infos = zf.infolist()
    if len(infos) > limits.max_entries:
        raise VoicePackError(f"The voice pack has {len(infos)} entries; at most {limits.max_entries} are allowed.")
    seen: set[str] = set()
    total = 0
    for info in infos:
        problem = _entry_problem(info)
        if problem:
            raise VoicePackError(f"Refusing the voice pack: entry {info.filename!r} {problem}.")
        key = info.filename.rstrip("/").lower()
        if key in seen:
            raise VoicePackError(f"Refusing the voice pack: entry {info.filename!r} appears twice.")
        seen.add(key)
        if info.file_size > limits.max_file_bytes:
            raise VoicePackError(
                f"Refusing the voice pack: entry {info.filename!r} declares {info.file_size} bytes "
                f"(limit {limits.max_file_bytes})."
            )
        total += info.file_size
        if info.file_size > limits.ratio_min_bytes and info.file_size > limits.max_ratio * max(info.compress_size, 1):
            raise VoicePackError(
                f"Refusing the voice pack: entry {info.filename!r} expands {info.file_size / max(info.compress_size, 1):.0f}"
                f" times (a zip bomb?)."
            )
    if total > limits.max_total_bytes:
        raise VoicePackError(
            f"Refusing the voice pack: it declares {total} bytes in all (limit {limits.max_total_bytes})."
        )
    return [i for i in infos if not i.is_dir()]


def _read_manifest(zf: zipfile.ZipFile, limits: ExtractLimits) -> VoiceManifest:
    try:
        info = zf.getinfo(MANIFEST_NAME)
    except KeyError:
        raise VoicePackError(f"This zip is not a voice pack: it has no {MANIFEST_NAME}.") from None
    if info.file_size > limits.max_manifest_bytes:
        raise VoicePackError(f"The voice pack's {MANIFEST_NAME} is too large ({info.file_size} bytes).")
    with zf.open(info) as f:
        data = f.read(limits.max_manifest_bytes + 1)
    if len(data) > limits.max_manifest_bytes:
        raise VoicePackError(f"The voice pack's {MANIFEST_NAME} is larger than it declares.")
    return VoiceManifest.from_json(data)


# ----------------------------------------------------------------------------------------------- extraction


def _extract_one(zf: zipfile.ZipFile, info: zipfile.ZipInfo, dest_root: Path, budget: list[int], per_file: int) -> str:
    """Stream one entry to ``dest_root``, counting real bytes; returns its sha256."""
    target = dest_root.joinpath(*PurePosixPath(info.filename).parts)
    if os.path.commonpath([dest_root.resolve(), target.resolve()]) != str(dest_root.resolve()):
        raise VoicePackError(f"Refusing the voice pack: entry {info.filename!r} points outside the pack.")
    target.parent.mkdir(parents=True, exist_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
    digest, written = hashlib.sha256(), 0
    with zf.open(info) as src, os.fdopen(os.open(target, flags, 0o644), "wb") as dst:
        while chunk := src.read(_CHUNK):
            written += len(chunk)
            budget[0] -= len(chunk)
            if written > info.file_size or written > per_file or budget[0] < 0:
                raise VoicePackError(
                    f"Refusing the voice pack: entry {info.filename!r} holds more data than it declares or allows."
                )
            digest.update(chunk)
            dst.write(chunk)
    return digest.hexdigest()


def _prepare_destination(extract_to: Path) -> None:
    if extract_to.is_symlink() or (extract_to.exists() and (not extract_to.is_dir() or any(extract_to.iterdir()))):
        raise VoicePackError(f"Cannot open the voice pack into {extract_to}: it already exists and is not empty.")
    extract_to.parent.mkdir(parents=True, exist_ok=True)


def open_voicepack(path: Path, extract_to: Path, *, limits: ExtractLimits = DEFAULT_LIMITS) -> VoicePack:
    """Validate the pack at ``path``, extract it to ``extract_to`` (absent or empty) and return it.

    Raises :class:`studio.errors.VoicePackError` for anything unknown, inconsistent or unsafe; in that case
    ``extract_to`` is left as it was.
    """
    path, extract_to = Path(path), Path(extract_to)
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as e:
        raise VoicePackError(f"Cannot open the voice pack {path}: {e}") from e
    with zf:
        members = _check_entries(zf, limits)
        manifest = _read_manifest(zf, limits)
        expected = manifest.member_files()
        names = {i.filename for i in members} - {MANIFEST_NAME}
        if names != set(expected):
            extra, missing = sorted(names - set(expected)), sorted(set(expected) - names)
            raise VoicePackError(
                f"The voice pack's files do not match its manifest (unexpected: {extra}, missing: {missing})."
            )
        _prepare_destination(extract_to)
        staging = Path(tempfile.mkdtemp(prefix=f".{extract_to.name}.", suffix=".partial", dir=extract_to.parent))
        try:
            budget = [limits.max_total_bytes]
            for info in members:
                sha = _extract_one(zf, info, staging, budget, limits.max_file_bytes)
                if info.filename != MANIFEST_NAME and sha != expected[info.filename]:
                    raise VoicePackError(
                        f"The voice pack is damaged or was altered: {info.filename} does not match its checksum."
                    )
            if extract_to.exists():
                extract_to.rmdir()  # empty, checked above
            os.replace(staging, extract_to)
        except zipfile.BadZipFile as e:
            shutil.rmtree(staging, ignore_errors=True)
            raise VoicePackError(f"The voice pack {path} is corrupt: {e}") from e
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    _LOGGER.info("opened voice pack '%s' into %s", manifest.name, extract_to)
    return VoicePack(root=extract_to, manifest=manifest)
