"""Write a voice pack zip: manifest + safetensors weights + reference audio, atomically."""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import tempfile
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePosixPath

import torch
from safetensors.torch import save as safetensors_save

from studio.errors import VoicePackError
from studio.voicepack.manifest import (
    MANIFEST_NAME,
    REFERENCES_DIR,
    STAGES,
    WEIGHTS_DIR,
    FileRef,
    VoiceManifest,
    sha256_file,
)

_LOGGER = logging.getLogger(__name__)


def _weights_bytes(stage: str, tensors: Mapping[str, torch.Tensor], kind: str) -> bytes:
    # clone: safetensors refuses tensors that share storage (views, tied weights)
    plain = {k: t.detach().to("cpu").contiguous().clone() for k, t in tensors.items()}
    return safetensors_save(plain, metadata={"stage": stage, "kind": kind})


def _match_references(manifest: VoiceManifest, reference_files: Sequence[Path]) -> list[tuple[Path, int]]:
    """Pair each reference file with the clip that names it (by file name); all must pair up one to one."""
    by_name = {Path(p).name: Path(p) for p in reference_files}
    if len(by_name) != len(reference_files):
        raise VoicePackError("Two reference files have the same name; rename one before exporting.")
    clip_names = [PurePosixPath(c.file).name for c in manifest.references]
    if sorted(clip_names) != sorted(by_name):
        raise VoicePackError(
            f"The reference files {sorted(by_name)} do not match the manifest's reference clips {sorted(clip_names)}."
        )
    pairs = []
    for index, name in enumerate(clip_names):
        path = by_name[name]
        if not path.is_file():
            raise VoicePackError(f"Reference clip not found: {path}")
        pairs.append((path, index))
    return pairs


def write_voicepack(
    out_zip: Path,
    manifest: VoiceManifest,
    weights: Mapping[str, Mapping[str, torch.Tensor]],
    reference_files: Sequence[Path],
) -> VoiceManifest:
    """Write ``out_zip`` and return the manifest as written (file paths and sha256 filled in).

    Args:
        out_zip: destination; written to a temporary file next to it and moved into place, so a crash never
            leaves a half-written pack under this name.
        manifest: the voice's record; ``weights.files`` and the clips' ``sha256`` are filled in here.
            Reference clips may name their file by bare name (``ref.wav``) or as ``references/ref.wav``.
        weights: stage ("gpt" / "sovits") → state dict (adapter weights for kind "lora", full weights for "merged").
        reference_files: the audio files the manifest's reference clips name (matched by file name).
    """
    unknown = sorted(set(weights) - set(STAGES))
    if unknown or not weights:
        raise ValueError(f"weights must map some of the stages {STAGES} to state dicts, got {sorted(weights)}")
    pairs = _match_references(manifest, reference_files)

    blobs = {stage: _weights_bytes(stage, weights[stage], manifest.weights.kind) for stage in sorted(weights)}
    files = {
        stage: FileRef(f"{WEIGHTS_DIR}/{stage}.safetensors", hashlib.sha256(blob).hexdigest())
        for stage, blob in blobs.items()
    }
    clips = list(manifest.references)
    for path, index in pairs:
        clips[index] = dataclasses.replace(clips[index], file=f"{REFERENCES_DIR}/{path.name}", sha256=sha256_file(path))
    final = dataclasses.replace(
        manifest, weights=dataclasses.replace(manifest.weights, files=files), references=tuple(clips)
    )
    text = final.to_json()
    final = VoiceManifest.from_json(text)  # never write a pack that the reader would refuse

    out_zip = Path(out_zip)
    out_zip.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{out_zip.name}.", suffix=".tmp", dir=out_zip.parent)
    try:
        with os.fdopen(fd, "wb") as raw, zipfile.ZipFile(raw, "w") as zf:
            zf.writestr(MANIFEST_NAME, text, compress_type=zipfile.ZIP_DEFLATED)
            for stage, blob in blobs.items():  # weights barely compress: store them
                zf.writestr(files[stage].file, blob, compress_type=zipfile.ZIP_STORED)
            for path, index in pairs:
                zf.write(path, final.references[index].file, compress_type=zipfile.ZIP_STORED)
            zf.close()
            raw.flush()
            os.fsync(raw.fileno())
        os.replace(tmp_name, out_zip)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    _LOGGER.info("wrote voice pack %s (%d weight file(s), %d reference clip(s))", out_zip, len(blobs), len(pairs))
    return final
