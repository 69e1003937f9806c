"""Upstream's own file formats on both sides of a voice: merge → official export, and official/GSVI → import.

Export: LoRA adapters are folded into their base model (:func:`merged_gpt` / :func:`merged_sovits`) and the result
is written in the WebUI export formats of SPEC §9.3–9.4 (``.ckpt`` for the GPT, ``.pth`` for SoVITS, fp16 weights,
upstream's config and ``info`` label; v2Pro/v2ProPlus SoVITS files with upstream's ``05``/``06`` header), so the
files load in GPT-SoVITS as they are.

Import: community voices come as a file pair (``*.ckpt`` + ``*.pth``) with reference clips, often in the folder
layout of GPT-SoVITS-Inference ("GSVI"): clips sorted into language folders (``参考音频/中文/…``,
``reference_audios/en/…``), optionally an emotion folder below that, and the transcript in the file name
(``开心-今天天气真好.wav``, ``【开心】今天天气真好.wav``, ``happy-Hello there.wav``). :func:`scan_official_source`
finds the pair and the clips, reads transcript, language and emotion, and picks the default reference.
"""

from __future__ import annotations

import logging
import re
import shutil
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from studio.errors import CheckpointError, VoicePackError
from studio.models.lora import LoRAConfig, add_lora, load_lora_state_dict, merge_lora
from studio.models.sovits.checkpoint import (
    POSTERIOR_PREFIX,
    config_from_weights,
    default_hparams,
    detect_version,
    load_sovits,
    save_sovits_official,
)
from studio.models.sovits.synthesizer import SoVITSSynthesizer
from studio.models.text2semantic import Text2SemanticConfig, Text2SemanticModel
from studio.models.text2semantic_checkpoint import load_text2semantic, save_text2semantic_official

_LOGGER = logging.getLogger(__name__)

GPT_SUFFIX = ".ckpt"
SOVITS_SUFFIX = ".pth"
AUDIO_SUFFIXES = (".wav", ".flac", ".mp3", ".ogg", ".opus", ".m4a")
MAX_SCAN_FILES = 2000
MAX_SCAN_DEPTH = 6
MAX_SIDECAR_BYTES = 4096
GOOD_REFERENCE_S = (3.0, 10.0)

#: language folder names (casefolded) → language code of the text front end
LANGUAGE_FOLDERS: dict[str, str] = {
    **dict.fromkeys(("中文", "汉语", "普通话", "国语", "简体中文", "zh", "zh-cn", "cn", "chinese", "all_zh"), "zh"),
    **dict.fromkeys(("英文", "英语", "en", "en-us", "english", "all_en"), "en"),
    **dict.fromkeys(("日文", "日语", "日本語", "ja", "jp", "japanese", "all_ja"), "ja"),
    **dict.fromkeys(("粤语", "廣東話", "广东话", "yue", "cantonese", "all_yue"), "yue"),
    **dict.fromkeys(("韩文", "韩语", "한국어", "ko", "kr", "korean", "all_ko"), "ko"),
    **dict.fromkeys(("多语种混合", "中英混合", "日英混合", "多语种", "mixed", "auto", "multilingual"), "auto"),
}
NEUTRAL_EMOTIONS = frozenset({"默认", "中立", "平静", "正常", "普通", "neutral", "default", "normal", "calm", "平常"})
KNOWN_EMOTIONS = NEUTRAL_EMOTIONS | frozenset(
    {
        "开心", "高兴", "快乐", "难过", "伤心", "悲伤", "生气", "愤怒", "惊讶", "吃惊", "害怕", "恐惧", "激动", "温柔",
        "害羞", "疑惑", "厌恶", "撒娇", "严肃", "喜", "怒", "哀", "乐", "惊", "恐",
        "happy", "sad", "angry", "surprised", "surprise", "fear", "afraid", "scared", "excited", "gentle", "shy",
        "disgust", "disgusted", "serious", "whisper", "cheerful", "tender", "confused",
        "嬉しい", "悲しい", "怒り", "驚き", "普通の",
    }
)  # fmt: skip
_BRACKETED = re.compile(r"^\s*[【\[(（]([^】\])）]{1,16})[】\])）]\s*(.*)$")
_DASHED = re.compile(r"^([^\s\-]{1,12})-(.+)$")
_NOT_A_TRANSCRIPT = re.compile(
    r"^[A-Za-z0-9_\-.]*[_\d][A-Za-z0-9_\-.]*$|^(ref|reference|audio|sample|clip|voice)$", re.I
)


# ----------------------------------------------------------------------------------------------- merging


def _lora_config(lora: LoRAConfig | Mapping[str, Any], stage: str) -> LoRAConfig:
    if isinstance(lora, LoRAConfig):
        return lora
    try:
        return LoRAConfig.from_dict(dict(lora))
    except (CheckpointError, ValueError) as e:
        raise VoicePackError(f"The {stage} LoRA settings are invalid: {e}") from e


def apply_adapters(
    model: torch.nn.Module, adapters: Mapping[str, torch.Tensor], lora: LoRAConfig | Mapping[str, Any], stage: str
) -> torch.nn.Module:
    """Fold ``adapters`` (canonical LoRA keys) into ``model`` in place: add → load → merge. Returns ``model``.

    Raises :class:`VoicePackError` when the adapters do not fit the model (other targets, rank or base model).
    """
    config = _lora_config(lora, stage)
    try:
        add_lora(model, config)
    except ValueError as e:
        raise VoicePackError(f"The {stage} adapters target layers this base model does not have ({e}).") from e
    try:
        load_lora_state_dict(model, dict(adapters))
    except CheckpointError as e:
        raise VoicePackError(f"The {stage} adapters do not fit the base model: {e}") from e
    merge_lora(model)
    return model


@dataclass
class OfficialStage:
    """One stage ready to be written in upstream's format: the model, upstream's config dict, and the label."""

    model: torch.nn.Module
    upstream_config: dict[str, Any]
    info: str


def merged_gpt(
    base: Path,
    adapters: Mapping[str, torch.Tensor] | None = None,
    lora: LoRAConfig | Mapping[str, Any] | None = None,
    *,
    epoch: int = 0,
) -> OfficialStage:
    """The base GPT from ``base`` (``.ckpt``) with ``adapters`` merged in (none: the base as it is)."""
    model, config, info = load_text2semantic(base)
    if adapters:
        if lora is None:
            raise VoicePackError("GPT adapters were given without their LoRA settings.")
        apply_adapters(model, adapters, lora, "GPT")
    return OfficialStage(model.eval(), dict(info.config) or config.to_checkpoint_config(), f"GPT-e{epoch}")


def merged_sovits(
    base: Path,
    adapters: Mapping[str, torch.Tensor] | None = None,
    lora: LoRAConfig | Mapping[str, Any] | None = None,
    *,
    epoch: int = 0,
    step: int = 0,
) -> OfficialStage:
    """The base SoVITS generator from ``base`` (``.pth``) with ``adapters`` merged in."""
    model, config, info, _ = load_sovits(base)
    if adapters:
        if lora is None:
            raise VoicePackError("SoVITS adapters were given without their LoRA settings.")
        apply_adapters(model, adapters, lora, "SoVITS")
    hparams = dict(info.hparams) or default_hparams(config)
    return OfficialStage(model.eval(), hparams, f"{epoch}epoch_{step}iteration")


# ----------------------------------------------------------------------------------------------- weights ↔ models


def official_weights(stage: str, path: Path) -> OfficialStage:
    """Read an official file back as an :class:`OfficialStage` (fp32 model, config, label)."""
    if stage == "gpt":
        model, config, info = load_text2semantic(path)
        return OfficialStage(model, dict(info.config) or config.to_checkpoint_config(), info.info or "GPT-e0")
    model, config, info, _ = load_sovits(path)
    return OfficialStage(model, dict(info.hparams) or default_hparams(config), info.info_text or "0epoch_0iteration")


def stage_state_dict(stage: str, model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The weights an official file of ``stage`` holds, in our keys, fp16 (SoVITS without ``enc_q``)."""
    state = model.state_dict()
    if stage == "sovits":
        state = {k: v for k, v in state.items() if not k.startswith(POSTERIOR_PREFIX)}
    return {k: v.detach().to("cpu", torch.float16 if v.is_floating_point() else v.dtype) for k, v in state.items()}


def _load_exact(model: torch.nn.Module, weights: Mapping[str, torch.Tensor], what: str) -> None:
    expected = model.state_dict()
    missing, extra = sorted(set(expected) - set(weights)), sorted(set(weights) - set(expected))
    wrong = [k for k in expected if k in weights and tuple(weights[k].shape) != tuple(expected[k].shape)]
    if missing or extra or wrong:
        raise VoicePackError(
            f"The {what} weights do not fit its config: {len(missing)} missing (e.g. {missing[:2]}), "
            f"{len(extra)} unexpected (e.g. {extra[:2]}), {len(wrong)} of the wrong shape (e.g. {wrong[:2]})."
        )
    model.load_state_dict({k: weights[k].to(v.dtype) for k, v in expected.items()}, strict=True)


def stage_from_weights(
    stage: str, upstream_config: dict[str, Any], weights: Mapping[str, torch.Tensor], info: str
) -> OfficialStage:
    """Rebuild a model from merged weights (our keys) and upstream's config dict of that stage."""
    try:
        if stage == "gpt":
            model: torch.nn.Module = Text2SemanticModel(Text2SemanticConfig.from_checkpoint_config(upstream_config))
        else:
            if "enc_p.text_embedding.weight" not in weights:
                raise VoicePackError("The SoVITS weights lack 'enc_p.text_embedding.weight'.")
            version = detect_version(dict(weights), upstream_config)  # v1, v2, v2Pro or v2ProPlus
            config = config_from_weights(upstream_config, dict(weights), version)
            model = SoVITSSynthesizer(config, with_posterior_encoder=False)
    except (KeyError, TypeError, ValueError, AssertionError) as e:
        raise VoicePackError(f"The voice pack's {stage} config cannot build a model ({e}).") from e
    _load_exact(model, weights, stage)
    return OfficialStage(model.eval(), upstream_config, info)


def write_official(stage: str, official: OfficialStage, path: Path) -> Path:
    """Write one stage in upstream's WebUI export format (fp16), atomically."""
    if stage == "gpt":
        if not isinstance(official.model, Text2SemanticModel):
            raise TypeError("the GPT stage needs a Text2SemanticModel")
        return save_text2semantic_official(official.model, official.upstream_config, path, official.info)
    if not isinstance(official.model, SoVITSSynthesizer):
        raise TypeError("the SoVITS stage needs a SoVITSSynthesizer")
    return save_sovits_official(official.model, official.upstream_config, path, official.info)


def official_file_names(name: str, epoch: int = 0, step: int = 0) -> tuple[str, str]:
    """Upstream's export names: ``<name>-e<epoch>.ckpt`` and ``<name>_e<epoch>_s<step>.pth``."""
    return f"{name}-e{epoch}{GPT_SUFFIX}", f"{name}_e{epoch}_s{step}{SOVITS_SUFFIX}"


# ----------------------------------------------------------------------------------------------- GSVI folder export


@dataclass(frozen=True)
class FoundReference:
    """A reference clip found on disk, with what is said, its language and (optional) emotion."""

    path: Path
    text: str
    language: str = "auto"
    emotion: str = ""


_FILE_FORBIDDEN = re.compile(r'[<>:"/\\|?*\x00-\x1f]')


def _clip_file_name(clip: FoundReference, index: int) -> str:
    text = _FILE_FORBIDDEN.sub(" ", clip.text).strip(" .")[:80].strip(" .")
    stem = f"{clip.emotion}-{text}" if clip.emotion and text else text
    return f"{stem or f'reference_{index:02d}'}{clip.path.suffix.lower() or '.wav'}"


def export_official_folder(
    out_dir: Path,
    name: str,
    gpt: Path,
    sovits: Path,
    references: Sequence[FoundReference],
    *,
    epoch: int = 0,
    step: int = 0,
) -> tuple[Path, Path]:
    """Copy an official pair into ``out_dir`` under upstream's names, with the reference clips in the GSVI layout
    ``reference_audios/<language>/<emotion>-<transcript>.<ext>`` (plus a ``.lab`` sidecar holding the exact
    transcript, in case the file name had to drop characters). Returns the (``.ckpt``, ``.pth``) paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    gpt_name, sovits_name = official_file_names(name, epoch, step)
    targets = (out_dir / gpt_name, out_dir / sovits_name)
    shutil.copyfile(gpt, targets[0])
    shutil.copyfile(sovits, targets[1])
    used: set[str] = set()
    for index, clip in enumerate(references):
        folder = out_dir / "reference_audios" / (clip.language or "auto")
        folder.mkdir(parents=True, exist_ok=True)
        file_name = _clip_file_name(clip, index)
        if file_name.lower() in used:
            file_name = f"{Path(file_name).stem} ({index}){Path(file_name).suffix}"
        used.add(file_name.lower())
        shutil.copyfile(clip.path, folder / file_name)
        if clip.text:
            (folder / file_name).with_suffix(".lab").write_text(clip.text, encoding="utf-8")
    _LOGGER.info("exported official files of %s to %s", name, out_dir)
    return targets


# ----------------------------------------------------------------------------------------------- official / GSVI import


@dataclass(frozen=True)
class OfficialSource:
    """An official file pair with its reference clips; ``references[0]`` is the default reference."""

    gpt: Path
    sovits: Path
    references: tuple[FoundReference, ...]
    name_hint: str


def _walk(root: Path) -> list[Path]:
    """Regular files under ``root`` (no symlinks followed or returned), depth- and count-limited."""
    found: list[Path] = []
    stack = [(root, 0)]
    while stack:
        folder, depth = stack.pop()
        for entry in sorted(folder.iterdir()):
            if entry.is_symlink() or entry.name.startswith("."):
                continue
            if entry.is_dir() and depth < MAX_SCAN_DEPTH:
                stack.append((entry, depth + 1))
            elif entry.is_file():
                found.append(entry)
                if len(found) > MAX_SCAN_FILES:
                    raise VoicePackError(f"{root} holds more than {MAX_SCAN_FILES} files; point to the voice's folder.")
    return sorted(found)


def _split_emotion(stem: str, dashed_ok: bool) -> tuple[str, str]:
    """(emotion, rest) of a GSVI file stem; emotion "" when there is none."""
    m = _BRACKETED.match(stem)
    if m:
        return m.group(1).strip(), m.group(2).strip()
    m = _DASHED.match(stem)
    if m and (dashed_ok or unicodedata.normalize("NFKC", m.group(1)).casefold() in KNOWN_EMOTIONS):
        return m.group(1), m.group(2).strip()
    return "", stem.strip()


def _read_sidecar(audio: Path) -> str | None:
    for suffix in (".lab", ".txt"):
        side = audio.with_suffix(suffix)
        if side.is_file() and side.stat().st_size <= MAX_SIDECAR_BYTES:
            try:
                return " ".join(side.read_text(encoding="utf-8-sig").split())
            except (OSError, UnicodeDecodeError):
                _LOGGER.warning("cannot read transcript %s", side)
    return None


def _language_of(audio: Path, root: Path, fallback: str) -> tuple[str, list[str]]:
    """Language from the nearest language-named folder between ``root`` and the clip; other folder names
    below it (an emotion folder) are returned too."""
    try:
        parts = audio.parent.relative_to(root).parts
    except ValueError:  # a file given on its own, outside the scanned folder
        parts = (audio.parent.name,)
    for i in range(len(parts) - 1, -1, -1):
        code = LANGUAGE_FOLDERS.get(unicodedata.normalize("NFKC", parts[i]).casefold())
        if code:
            return code, list(parts[i + 1 :])
    return fallback, []


def _describe_clip(audio: Path, root: Path, fallback_lang: str, dashed_ok: bool) -> FoundReference:
    language, below = _language_of(audio, root, fallback_lang)
    emotion, text = _split_emotion(audio.stem, dashed_ok)
    emotion = emotion or next((p for p in reversed(below) if p.casefold() != "emotions"), "")
    sidecar = _read_sidecar(audio)
    if sidecar is not None:
        text = sidecar
    elif _NOT_A_TRANSCRIPT.match(text):
        _LOGGER.info("%s: the file name is not a transcript; the clip is used without text", audio.name)
        text = ""
    return FoundReference(audio, text, language, emotion)


def _clip_duration(path: Path) -> float | None:
    from studio.audio.io import probe_audio

    try:
        return probe_audio(path).duration_s
    except Exception:  # noqa: BLE001 - any unreadable clip simply ranks last
        return None


def _default_first(clips: list[FoundReference]) -> tuple[FoundReference, ...]:
    """Order clips so the best default comes first: neutral emotion, has a transcript, 3–10 s; else file order."""

    def rank(item: tuple[int, FoundReference]) -> tuple:
        index, clip = item
        neutral = not clip.emotion or unicodedata.normalize("NFKC", clip.emotion).casefold() in NEUTRAL_EMOTIONS
        duration = _clip_duration(clip.path)
        good_length = duration is not None and GOOD_REFERENCE_S[0] <= duration <= GOOD_REFERENCE_S[1]
        return (not good_length, not clip.text, not neutral, index)

    if not clips:
        return ()
    best = min(enumerate(clips), key=rank)[1]
    return (best, *[c for c in clips if c is not best])


def _pick_one(files: list[Path], kind: str, root: Path) -> Path:
    if not files:
        raise VoicePackError(
            f"No {kind} found in {root}.",
            hint="A GPT-SoVITS voice needs a GPT file (.ckpt) and a SoVITS file (.pth).",
        )
    if len(files) > 1:
        top = [f for f in files if f.parent == root]
        if len(top) == 1:
            return top[0]
        listing = ", ".join(str(f.relative_to(root)) for f in files[:6])
        raise VoicePackError(f"{root} holds {len(files)} {kind}s ({listing}); import one voice at a time.")
    return files[0]


def _name_hint(path: Path) -> str:
    stem = re.sub(r"(-e\d+|_e\d+(_s\d+)?)$", "", path.stem)
    return stem.strip() or "imported voice"


def scan_official_source(paths: Iterable[Path], *, default_language: str = "auto") -> OfficialSource:
    """Find the ``.ckpt`` + ``.pth`` pair and the reference clips in ``paths`` (files and/or one folder).

    Transcripts come from a ``.lab`` / ``.txt`` sidecar, else from the file name (GSVI style; an emotion prefix
    ``开心-`` / ``【开心】`` is split off — a bare ``word-`` prefix counts as an emotion when it is a known emotion
    word or when every clip in the folder has such a prefix). Names that look like ids (``ref_01``) give no text.
    Raises :class:`VoicePackError` when there is no pair or more than one candidate for a slot.
    """
    paths = [Path(p) for p in paths]
    folders = [p for p in paths if p.is_dir()]
    if len(folders) > 1:
        raise VoicePackError("Give one voice folder at a time.")
    missing = [p for p in paths if not p.exists()]
    if missing:
        raise VoicePackError(f"Not found: {', '.join(map(str, missing))}.")
    root = folders[0] if folders else Path(paths[0]).parent
    files = _walk(root) if folders else []
    files += [p for p in paths if p.is_file()]
    gpt = _pick_one([f for f in files if f.suffix.lower() == GPT_SUFFIX], "GPT model file (.ckpt)", root)
    sovits = _pick_one([f for f in files if f.suffix.lower() == SOVITS_SUFFIX], "SoVITS model file (.pth)", root)
    audio = [f for f in files if f.suffix.lower() in AUDIO_SUFFIXES]
    by_folder: dict[Path, list[Path]] = {}
    for clip in audio:
        by_folder.setdefault(clip.parent, []).append(clip)
    clips = []
    for folder_clips in by_folder.values():
        dashed_ok = len(folder_clips) > 1 and all(_DASHED.match(c.stem) for c in folder_clips)
        clips += [_describe_clip(c, root, default_language, dashed_ok) for c in folder_clips]
    name = root.name if folders else _name_hint(gpt)
    return OfficialSource(gpt, sovits, _default_first(clips), name)
