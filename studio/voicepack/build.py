"""Build a voice pack from a voice's models, and turn an opened pack back into models.

Two kinds of pack (see :mod:`studio.voicepack.manifest`):

* **lora** — from a training run that trained adapters: the adapters alone (a few MB) plus the identity (file name
  and sha256) of both base models. Opening it needs the same base files.
* **merged** — from any voice in the library: the full fp16 weights of both stages (what the official files hold)
  with upstream's config dicts. Opening it needs nothing else.

Every pack carries a consent record; :func:`confirmed_consent` refuses to build one without an explicit
confirmation from the person exporting.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from studio.errors import VoicePackError
from studio.voicepack.manifest import (
    STAGES,
    ConsentRecord,
    FileRef,
    ReferenceClip,
    VoiceManifest,
    WeightsInfo,
    is_safe_member_name,
    sha256_file,
)
from studio.voicepack.official import (
    FoundReference,
    OfficialStage,
    merged_gpt,
    merged_sovits,
    stage_from_weights,
    stage_state_dict,
)
from studio.voicepack.reader import VoicePack
from studio.voicepack.writer import write_voicepack

_LOGGER = logging.getLogger(__name__)

INFO_KEY = "official_info"  # training-summary key holding each stage's upstream ``info`` label
_UNSAFE = re.compile(r"[^\w\-]+")


def confirmed_consent(consent: ConsentRecord | None, voice: str) -> ConsentRecord:
    """Return ``consent`` if it is complete and confirmed; otherwise raise a :class:`VoicePackError` saying why."""
    hint = (
        "Confirm that the speaker agreed to this voice being shared: give their name and statement "
        "(CLI: --speaker NAME --statement TEXT --confirm-consent)."
    )
    ui_hint = "Under Export, give the speaker's name and what they agreed to, and tick the confirmation box."
    if consent is None:
        raise VoicePackError(
            f"Voice '{voice}' has no consent record, so it cannot be exported.", hint=hint, ui_hint=ui_hint
        )
    if not consent.confirmed:
        raise VoicePackError(
            f"The speaker's consent for voice '{voice}' was not confirmed; not exporting.", hint=hint, ui_hint=ui_hint
        )
    if not consent.speaker_name.strip() or not consent.statement.strip():
        raise VoicePackError(
            f"The consent record of voice '{voice}' lacks the speaker's name or statement; not exporting.",
            hint=hint,
            ui_hint=ui_hint,
        )
    return consent


def base_identity(path: Path) -> FileRef:
    """A base model file by name and sha256."""
    return FileRef(Path(path).name, sha256_file(Path(path)))


def _json_safe(config: Mapping[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(config, default=str))


def _languages(references: Sequence[FoundReference], languages: Sequence[str]) -> tuple[str, ...]:
    out = [lang for lang in languages if lang]
    out += [c.language for c in references if c.language and c.language not in out]
    concrete = [lang for lang in out if lang != "auto"]
    return tuple(concrete or out or ["auto"])


def _stage_references(references: Sequence[FoundReference], folder: Path) -> list[tuple[Path, ReferenceClip]]:
    """Copy the clips under pack-safe, unique names (``reference.wav``, ``reference_1.wav``, …)."""
    if not references:
        raise VoicePackError("A voice pack needs at least one reference clip.")
    out = []
    for index, clip in enumerate(references):
        if not clip.path.is_file():
            raise VoicePackError(f"Reference clip not found: {clip.path}")
        suffix = _UNSAFE.sub("", clip.path.suffix.lstrip(".").lower())[:8] or "wav"
        name = f"reference.{suffix}" if index == 0 else f"reference_{index}.{suffix}"
        assert is_safe_member_name(f"references/{name}")
        shutil.copyfile(clip.path, folder / name)
        out.append((folder / name, ReferenceClip(name, clip.text, clip.language or "auto")))
    return out


def _write(
    out_zip: Path,
    manifest: VoiceManifest,
    weights: Mapping[str, Mapping[str, torch.Tensor]],
    references: Sequence[FoundReference],
) -> VoiceManifest:
    with tempfile.TemporaryDirectory(prefix="voicepack-refs-") as tmp:
        staged = _stage_references(references, Path(tmp))
        manifest = dataclasses.replace(manifest, references=tuple(c for _, c in staged))
        return write_voicepack(Path(out_zip), manifest, weights, [p for p, _ in staged])


def build_merged_pack(
    out_zip: Path,
    *,
    name: str,
    stages: Mapping[str, OfficialStage],
    references: Sequence[FoundReference],
    consent: ConsentRecord | None,
    languages: Sequence[str] = (),
    training: Mapping[str, Any] | None = None,
    base_model: Mapping[str, FileRef] | None = None,
) -> VoiceManifest:
    """Write a pack of kind "merged" holding the full fp16 weights of both stages; returns its manifest (whose
    ``model_version`` is the SoVITS model's)."""
    consent = confirmed_consent(consent, name)
    if set(stages) != set(STAGES):
        raise ValueError(f"a merged pack needs both stages {STAGES}, got {sorted(stages)}")
    summary = dict(training or {})
    summary[INFO_KEY] = {s: stages[s].info for s in STAGES}
    manifest = VoiceManifest(
        name=name,
        languages=_languages(references, languages),
        base_model=dict(base_model or {}),
        configs={s: _json_safe(stages[s].upstream_config) for s in STAGES},
        weights=WeightsInfo(kind="merged"),
        references=(),
        consent=consent,
        training=summary,
        model_version=_model_version(stages["sovits"].model),
    )
    weights = {s: stage_state_dict(s, stages[s].model) for s in STAGES}
    return _write(out_zip, manifest, weights, references)


def build_lora_pack(
    out_zip: Path,
    *,
    name: str,
    base: Mapping[str, Path],
    adapters: Mapping[str, Mapping[str, torch.Tensor]],
    lora: Mapping[str, Mapping[str, Any]],
    references: Sequence[FoundReference],
    consent: ConsentRecord | None,
    configs: Mapping[str, Mapping[str, Any]] | None = None,
    languages: Sequence[str] = (),
    training: Mapping[str, Any] | None = None,
    model_version: str = "v2",
) -> VoiceManifest:
    """Write a pack of kind "lora": the adapters of the trained stages and the identity of both base files
    (``model_version``: the base's release, v2/v2Pro/v2ProPlus, so the importer looks for the right files)."""
    consent = confirmed_consent(consent, name)
    missing = [s for s in STAGES if s not in base]
    if missing:
        raise ValueError(f"a LoRA pack names both base models; missing {missing}")
    if not adapters or set(adapters) - set(lora):
        raise ValueError("every adapter set needs its LoRA settings")
    manifest = VoiceManifest(
        name=name,
        languages=_languages(references, languages),
        base_model={s: base_identity(base[s]) for s in STAGES},
        configs={s: _json_safe(c) for s, c in (configs or {}).items()},
        weights=WeightsInfo(kind="lora", lora={s: dict(lora[s]) for s in adapters}),
        references=(),
        consent=consent,
        training=dict(training or {}),
        model_version=model_version,
    )
    return _write(out_zip, manifest, {s: dict(a) for s, a in adapters.items()}, references)


def _model_version(sovits: torch.nn.Module) -> str:
    config = getattr(sovits, "config", None)
    return str(getattr(config, "version", None) or "v2")


# ----------------------------------------------------------------------------------------------- pack → models


def _check_base(stage: str, expected: FileRef, path: Path | None, version: str = "v2") -> Path:
    fetch = "studio download" if version == "v2" else f"studio download --version {version}"
    hint = f"Put the base model '{expected.file}' this voice was trained on into pretrained/ ({fetch})."
    ui_hint = "Open Models & Settings and download the base models of this voice's version (or choose the folder that has them)."
    if path is None or not Path(path).is_file():
        raise VoicePackError(
            f"This voice pack needs the base {stage} model '{expected.file}', which is missing.",
            hint=hint,
            ui_hint=ui_hint,
        )
    if sha256_file(Path(path)) != expected.sha256:
        raise VoicePackError(
            f"This voice pack was made on another base {stage} model ('{expected.file}', sha256 "
            f"{expected.sha256[:12]}…) than {path}.",
            hint=hint,
            ui_hint=ui_hint,
        )
    return Path(path)


def pack_to_official(pack: VoicePack, base_paths: Mapping[str, Path | None]) -> dict[str, OfficialStage]:
    """The models of an opened pack, ready for :func:`studio.voicepack.official.write_official`.

    "merged" stages are rebuilt from their weights and config; "lora" stages merge their adapters into the base
    file named in the manifest (``base_paths[stage]``, checked by sha256); a stage without weights is its base.
    """
    manifest = pack.manifest
    labels = manifest.training.get(INFO_KEY, {}) if isinstance(manifest.training, dict) else {}
    epochs, steps = _int(manifest.training.get("epochs")), _int(manifest.training.get("steps"))
    out: dict[str, OfficialStage] = {}
    for stage in STAGES:
        if manifest.weights.kind == "merged" and stage in manifest.weights.files:
            label = labels.get(stage) if isinstance(labels, dict) else None
            default = f"GPT-e{epochs}" if stage == "gpt" else f"{epochs}epoch_{steps}iteration"
            config = manifest.configs.get(stage)
            if config is None:
                raise VoicePackError(f"The voice pack has merged {stage} weights but no {stage} config.")
            out[stage] = stage_from_weights(stage, config, pack.load_weights(stage), str(label or default))
            continue
        base = _check_base(stage, manifest.base_model[stage], base_paths.get(stage), manifest.model_version)
        adapters = pack.load_weights(stage) if stage in manifest.weights.files else None
        lora = manifest.weights.lora.get(stage)
        if stage == "gpt":
            out[stage] = merged_gpt(base, adapters, lora, epoch=epochs)
        else:
            out[stage] = merged_sovits(base, adapters, lora, epoch=epochs, step=steps)
    return out


def _int(value: Any) -> int:
    if isinstance(value, dict):  # per-stage summaries: take the largest
        value = max((v for v in value.values() if isinstance(v, int)), default=0)
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0
