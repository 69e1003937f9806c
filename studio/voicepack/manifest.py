"""The voice pack's ``manifest.json``: a versioned record that names and checksums every file in the zip.

Layout of a pack (format version 1)::

    manifest.json
    weights/<stage>.safetensors      one per fine-tuned stage ("gpt", "sovits"): adapters or merged weights
    references/<file>                the reference clip(s) the voice speaks from

A stage without a weights file runs on its base model, so the base identity (file name + sha256) of such a stage
is required; with ``kind == "lora"`` the base of every stage is required and each weights file has the
:class:`studio.models.lora.LoRAConfig` dict it was trained with. ``model_version`` names the GPT-SoVITS release
of the voice (``v1``, ``v2``, ``v2Pro``, ``v2ProPlus``: which base files a LoRA pack needs, and that a v2Pro voice
needs the speaker-verification model); manifests written before it existed lack it and mean ``v2``.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import Any

from studio.errors import VoicePackError

FORMAT_VERSION = 1
SUPPORTED_VERSIONS = (1,)
MANIFEST_NAME = "manifest.json"
STAGES = ("gpt", "sovits")
MODEL_VERSIONS = ("v1", "v2", "v2Pro", "v2ProPlus")
DEFAULT_MODEL_VERSION = "v2"  # what a manifest without "model_version" means (packs before v2Pro)
WEIGHT_KINDS = ("lora", "merged")
WEIGHTS_DIR = "weights"
REFERENCES_DIR = "references"

_SHA256 = re.compile(r"[0-9a-f]{64}")
_FORBIDDEN_CHARS = set('<>:"/\\|?*')
_WINDOWS_RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(10)), *(f"LPT{i}" for i in range(10))}


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _is_safe_part(part: str) -> bool:
    if not part or len(part) > 128 or part in (".", "..") or part.endswith((".", " ")) or part.startswith(" "):
        return False
    if any(ord(ch) < 32 or ch in _FORBIDDEN_CHARS for ch in part):
        return False
    return part.split(".")[0].upper() not in _WINDOWS_RESERVED


def is_safe_member_name(name: str) -> bool:
    """True for short ``folder/file`` paths of plain names (any script): no ``..``, no absolute or drive paths,
    no backslashes or characters Windows forbids, no reserved device names."""
    if not name or len(name) > 255 or name.startswith("/"):
        return False
    parts = name.split("/")
    return len(parts) <= 4 and all(_is_safe_part(p) for p in parts)


# ----------------------------------------------------------------------------------------------- records


@dataclass(frozen=True)
class FileRef:
    """A file by name and sha256 (hex); inside a pack ``file`` is the path in the zip."""

    file: str
    sha256: str = ""


@dataclass(frozen=True)
class ReferenceClip:
    """A reference recording: its file in the pack, what is said and in which language."""

    file: str
    text: str
    language: str
    sha256: str = ""


@dataclass(frozen=True)
class ConsentRecord:
    """Who recorded the voice and what they agreed to; ``confirmed`` is the exporter's explicit tick."""

    speaker_name: str
    statement: str
    date: str
    confirmed: bool


@dataclass(frozen=True)
class WeightsInfo:
    """What the weight files hold: ``kind`` "lora" (adapters) or "merged" (full weights), one file per stage."""

    kind: str
    files: dict[str, FileRef] = field(default_factory=dict)  # stage → weights/<stage>.safetensors
    lora: dict[str, dict] = field(default_factory=dict)  # stage → LoRAConfig.to_dict() (kind "lora")


def _now() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


@dataclass(frozen=True)
class VoiceManifest:
    """Everything needed to rebuild the voice from the pack plus its base models."""

    name: str
    languages: tuple[str, ...]
    base_model: dict[str, FileRef]  # stage → base file identity
    configs: dict[str, dict]  # stage → model config dict
    weights: WeightsInfo
    references: tuple[ReferenceClip, ...]
    consent: ConsentRecord
    training: dict[str, Any] = field(default_factory=dict)  # summary: steps, epochs, data seconds, losses, …
    created: str = field(default_factory=_now)
    format_version: int = FORMAT_VERSION
    model_version: str = DEFAULT_MODEL_VERSION

    def to_dict(self) -> dict[str, Any]:
        return {
            "format_version": self.format_version,
            "name": self.name,
            "model_version": self.model_version,
            "created": self.created,
            "languages": list(self.languages),
            "base_model": {s: _ref_dict(r) for s, r in self.base_model.items()},
            "configs": self.configs,
            "training": self.training,
            "weights": {
                "kind": self.weights.kind,
                "files": {s: _ref_dict(r) for s, r in self.weights.files.items()},
                "lora": self.weights.lora,
            },
            "references": [
                {"file": c.file, "text": c.text, "language": c.language, "sha256": c.sha256} for c in self.references
            ],
            "consent": {
                "speaker_name": self.consent.speaker_name,
                "statement": self.consent.statement,
                "date": self.consent.date,
                "confirmed": self.consent.confirmed,
            },
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=2, sort_keys=False) + "\n"

    @classmethod
    def from_json(cls, text: str | bytes) -> VoiceManifest:
        try:
            data = json.loads(text)
        except (ValueError, UnicodeDecodeError) as e:
            raise VoicePackError(f"The voice pack's {MANIFEST_NAME} is not valid JSON ({e}).") from e
        return cls.from_dict(data)

    @classmethod
    def from_dict(cls, data: Any) -> VoiceManifest:
        """Parse and validate; raises :class:`VoicePackError` naming the first bad field."""
        d = _Fields(data, MANIFEST_NAME)
        version = d.get("format_version", int)
        if version not in SUPPORTED_VERSIONS:
            raise VoicePackError(
                f"This voice pack has format version {version}; this studio reads version(s) "
                f"{', '.join(map(str, SUPPORTED_VERSIONS))}.",
                hint="Update SoVITS Studio to open it." if version > max(SUPPORTED_VERSIONS) else None,
            )
        w = _Fields(d.get("weights", dict), "weights")
        manifest = cls(
            format_version=version,
            name=d.get("name", str),
            model_version=_as(d.data.get("model_version", DEFAULT_MODEL_VERSION), str, "model_version"),
            created=d.get("created", str),
            languages=tuple(_str_list(d.get("languages", list), "languages")),
            base_model={s: _ref(v, f"base_model.{s}") for s, v in _stage_dict(d.get("base_model", dict), "base_model")},
            configs={s: _as(v, dict, f"configs.{s}") for s, v in _stage_dict(d.get("configs", dict), "configs")},
            training=d.get("training", dict),
            weights=WeightsInfo(
                kind=w.get("kind", str),
                files={s: _ref(v, f"weights.files.{s}") for s, v in _stage_dict(w.get("files", dict), "weights.files")},
                lora={
                    s: _as(v, dict, f"weights.lora.{s}") for s, v in _stage_dict(w.get("lora", dict), "weights.lora")
                },
            ),
            references=tuple(_clip(c, i) for i, c in enumerate(d.get("references", list))),
            consent=_consent(d.get("consent", dict)),
        )
        manifest.validate()
        return manifest

    def validate(self) -> None:
        """Cross-field rules (a pack that breaks them cannot be used)."""
        if not self.name.strip():
            raise VoicePackError("The voice pack has an empty name.")
        if not self.languages:
            raise VoicePackError("The voice pack lists no languages.")
        if self.model_version not in MODEL_VERSIONS:
            raise VoicePackError(
                f"This voice pack is a GPT-SoVITS {self.model_version} voice; this studio runs "
                f"{', '.join(MODEL_VERSIONS)}.",
                hint="v3/v4 voices are not supported yet.",
            )
        if self.weights.kind not in WEIGHT_KINDS:
            raise VoicePackError(f"Unknown weights kind {self.weights.kind!r}; expected one of {WEIGHT_KINDS}.")
        for stage in STAGES:
            merged_here = self.weights.kind == "merged" and stage in self.weights.files
            if not merged_here and stage not in self.base_model:
                raise VoicePackError(f"The voice pack does not say which base {stage} model it needs.")
        if self.weights.kind == "lora":
            missing = sorted(set(self.weights.files) - set(self.weights.lora))
            if missing:
                raise VoicePackError(f"The voice pack has LoRA weights for {missing} but no LoRA settings for them.")
        names = [r.file for r in self.weights.files.values()] + [c.file for c in self.references]
        for stage, ref in self.weights.files.items():
            _check_member(ref.file, f"weights.files.{stage}", WEIGHTS_DIR)
        for clip in self.references:
            _check_member(clip.file, "references", REFERENCES_DIR)
        if len({n.lower() for n in names}) != len(names):
            raise VoicePackError("The voice pack's manifest names the same file twice.")

    def member_files(self) -> dict[str, str]:
        """Every file the manifest names (path in the zip → sha256)."""
        out = {ref.file: ref.sha256 for ref in self.weights.files.values()}
        out.update({c.file: c.sha256 for c in self.references})
        return out


# ----------------------------------------------------------------------------------------------- parsing helpers


class _Fields:
    """Typed access to a JSON object, with errors that name the field."""

    def __init__(self, data: Any, where: str) -> None:
        self.data = _as(data, dict, where)
        self.where = where

    def get(self, key: str, kind: type) -> Any:
        if key not in self.data:
            raise VoicePackError(f"The voice pack's manifest lacks '{self._path(key)}'.")
        return _as(self.data[key], kind, self._path(key))

    def _path(self, key: str) -> str:
        return key if self.where == MANIFEST_NAME else f"{self.where}.{key}"


def _as(value: Any, kind: type, where: str) -> Any:
    ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
    if not ok:
        raise VoicePackError(f"In the voice pack's manifest, '{where}' should be {kind.__name__}, got {value!r:.60}.")
    return value


def _str_list(values: list, where: str) -> list[str]:
    return [_as(v, str, f"{where}[{i}]") for i, v in enumerate(values)]


def _stage_dict(data: dict, where: str) -> list[tuple[str, Any]]:
    unknown = sorted(set(data) - set(STAGES))
    if unknown:
        raise VoicePackError(f"In the voice pack's manifest, '{where}' has unknown stage(s) {unknown}.")
    return list(data.items())


def _ref(data: Any, where: str) -> FileRef:
    d = _Fields(data, where)
    ref = FileRef(file=d.get("file", str), sha256=d.get("sha256", str))
    _check_sha(ref.sha256, where)
    return ref


def _ref_dict(ref: FileRef) -> dict[str, str]:
    return {"file": ref.file, "sha256": ref.sha256}


def _clip(data: Any, index: int) -> ReferenceClip:
    where = f"references[{index}]"
    d = _Fields(data, where)
    clip = ReferenceClip(d.get("file", str), d.get("text", str), d.get("language", str), d.get("sha256", str))
    _check_sha(clip.sha256, where)
    return clip


def _consent(data: dict) -> ConsentRecord:
    d = _Fields(data, "consent")
    return ConsentRecord(
        d.get("speaker_name", str), d.get("statement", str), d.get("date", str), d.get("confirmed", bool)
    )


def _check_sha(value: str, where: str) -> None:
    if not _SHA256.fullmatch(value):
        raise VoicePackError(f"In the voice pack's manifest, '{where}.sha256' is not a sha256 hex digest.")


def _check_member(name: str, where: str, folder: str) -> None:
    if not is_safe_member_name(name) or PurePosixPath(name).parent != PurePosixPath(folder):
        raise VoicePackError(f"In the voice pack's manifest, '{where}' names {name!r}, not a file in {folder}/.")
