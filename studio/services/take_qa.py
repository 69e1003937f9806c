"""Automatic checks of a synthesized take: did it say the text, and does it sound like the voice?

* **Intelligibility**: the take is transcribed by Whisper (the data-prep recogniser) and compared with the input
  text: character error rate (CER) and word error rate (WER) after normalisation (case, punctuation, width).
* **Skips and repeats**: the alignment behind the error rates names the words the take left out, and a
  doubled run of words (or characters in Chinese/Japanese) that the text does not have marks a repetition —
  GPT-SoVITS's best-known failure.
* **Speaker similarity**: the cosine of two speaker embeddings (take vs. the voice's reference clip) from the
  Resemblyzer d-vector encoder. Its weights ship inside the ``resemblyzer`` package; we read only that file and
  run the encoder here, so the package's VAD dependency (``webrtcvad``) is not needed at run time.

"Best of N" ranks checked takes by these numbers (fewest flags, then lowest CER, then highest similarity).
"""

from __future__ import annotations

import importlib.util
import logging
import re
import threading
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from studio.dataprep.transcribe import token_cap_for_text
from studio.errors import ASRModelMissingError, AudioError, StudioError
from studio.inference import compute_thread

_LOGGER = logging.getLogger(__name__)

UNCLEAR_CER = 0.5  # above this the take is flagged as hard to understand
LOW_SIMILARITY = 0.70  # Resemblyzer cosine: same speaker ≈ 0.8–0.95, other speakers mostly below 0.75
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")

FLAG_SKIPPED = "skipped words"
FLAG_REPEATED = "repeated words"
FLAG_UNCLEAR = "hard to understand"
FLAG_VOICE = "voice differs from the reference"


# ----------------------------------------------------------------------------------------- text comparison


def normalize_text(text: str) -> str:
    """NFKC, lower case, punctuation and symbols → spaces, whitespace collapsed."""
    text = unicodedata.normalize("NFKC", text).lower()
    kept = [" " if unicodedata.category(c)[0] in "PSZC" else c for c in text]
    return " ".join("".join(kept).split())


def uses_characters(text: str, lang: str) -> bool:
    """Chinese and Japanese are compared per character (no spaces between words); others per word."""
    if lang in ("zh", "ja", "yue"):
        return True
    if lang in ("en", "ko"):
        return False
    return bool(_CJK.search(text))


def tokenize(text: str, by_char: bool) -> list[str]:
    norm = normalize_text(text)
    return [c for c in norm if c != " "] if by_char else norm.split()


@dataclass(frozen=True)
class EditOp:
    kind: str  # "ok" | "sub" | "del" (in the text, not heard) | "ins" (heard, not in the text)
    ref: str | None
    hyp: str | None


def align(ref: Sequence[str], hyp: Sequence[str]) -> list[EditOp]:
    """Levenshtein alignment of two token lists (unit costs), as a list of operations in order."""
    n, m = len(ref), len(hyp)
    cost = np.zeros((n + 1, m + 1), dtype=np.int32)  # (n+1, m+1)
    cost[:, 0] = np.arange(n + 1)
    cost[0, :] = np.arange(m + 1)
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            diag = cost[i - 1, j - 1] + (ref[i - 1] != hyp[j - 1])
            cost[i, j] = min(diag, cost[i - 1, j] + 1, cost[i, j - 1] + 1)
    ops: list[EditOp] = []
    i, j = n, m
    while i > 0 or j > 0:  # prefer matches, then gaps, then substitutions: skips show up as deletions
        if i > 0 and j > 0 and ref[i - 1] == hyp[j - 1] and cost[i, j] == cost[i - 1, j - 1]:
            ops.append(EditOp("ok", ref[i - 1], hyp[j - 1]))
            i, j = i - 1, j - 1
        elif i > 0 and cost[i, j] == cost[i - 1, j] + 1:
            ops.append(EditOp("del", ref[i - 1], None))
            i -= 1
        elif j > 0 and cost[i, j] == cost[i, j - 1] + 1:
            ops.append(EditOp("ins", None, hyp[j - 1]))
            j -= 1
        else:
            ops.append(EditOp("sub", ref[i - 1], hyp[j - 1]))
            i, j = i - 1, j - 1
    return ops[::-1]


def error_rate(ref: Sequence[str], hyp: Sequence[str]) -> float:
    """(substitutions + deletions + insertions) / len(ref); 0 for two empty lists, 1 for an empty ref."""
    if not ref:
        return 0.0 if not hyp else 1.0
    errors = sum(op.kind != "ok" for op in align(ref, hyp))
    return errors / len(ref)


def skipped_runs(ops: Sequence[EditOp], min_run: int, gap: int = 0, sep: str = " ") -> list[str]:
    """Runs of at least ``min_run`` text tokens that were not heard; a run may bridge ``gap`` other tokens
    (alignment ties can split "天气" into 天 … 气 around a repeated character)."""
    runs: list[list[str]] = []
    current: list[str] = []
    others = 0
    for op in [*ops, *[EditOp("ok", None, None)] * (gap + 1)]:
        if op.kind == "del":
            current.append(op.ref or "")
            others = 0
            continue
        others += 1
        if others > gap:
            if len(current) >= min_run:
                runs.append(current)
            current = []
    return [sep.join(r) for r in runs]


def repeated_runs(ref: Sequence[str], hyp: Sequence[str], max_n: int = 6) -> list[str]:
    """Runs that ``hyp`` says twice or more in a row where ``ref`` does not (e.g. "the cat the cat").

    Each repetition is reported once, by its shortest unit, with the count when above two: "i m sorry ×40".
    """

    def unit_at(tokens: Sequence[str], i: int) -> int:
        return next(
            (
                n
                for n in range(1, max_n + 1)
                if tokens[i : i + n] == tokens[i + n : i + 2 * n] and i + 2 * n <= len(tokens)
            ),
            0,
        )

    ref_doubles = {tuple(ref[i : i + n]) for i in range(len(ref)) for n in [unit_at(ref, i)] if n}
    found: list[str] = []
    i = 0
    while i < len(hyp):
        n = unit_at(hyp, i)
        if not n:
            i += 1
            continue
        unit, count = list(hyp[i : i + n]), 1
        while hyp[i + count * n : i + (count + 1) * n] == unit:
            count += 1
        if tuple(unit) not in ref_doubles:
            text = " ".join(unit) + (f" ×{count}" if count > 2 else "")
            if text not in found:
                found.append(text)
        i += count * n
    return found


# ----------------------------------------------------------------------------------------- speaker similarity


class SpeakerEncoder:
    """Resemblyzer's d-vector encoder (3-layer LSTM over 40 mel bands at 16 kHz → 256-d, L2-normed).

    The weights are the ``pretrained.pt`` shipped in the ``resemblyzer`` package; the package itself is not
    imported. Embeddings average partial windows of 1.6 s taken 1.3 times a second, as Resemblyzer does.
    """

    SAMPLE_RATE = 16000
    N_MELS = 40
    WINDOW = 400  # 25 ms
    HOP = 160  # 10 ms
    PARTIAL_FRAMES = 160  # 1.6 s
    TARGET_DBFS = -30.0

    def __init__(self, weights: Path | None = None, device: str = "cpu") -> None:
        self.weights = Path(weights) if weights else self.packaged_weights()
        self.device = device
        self._model = None
        self._lock = threading.Lock()

    @staticmethod
    def packaged_weights() -> Path:
        spec = importlib.util.find_spec("resemblyzer")
        if spec is None or not spec.submodule_search_locations:
            raise StudioError(
                "Speaker similarity needs the resemblyzer package (it ships the encoder's weights).",
                hint="pip install resemblyzer",
            )
        return Path(next(iter(spec.submodule_search_locations))) / "pretrained.pt"

    def _load(self):
        import torch

        with self._lock:
            if self._model is None:
                lstm = torch.nn.LSTM(self.N_MELS, 256, 3, batch_first=True)
                linear = torch.nn.Linear(256, 256)
                state = torch.load(self.weights, map_location="cpu", weights_only=True)["model_state"]
                lstm.load_state_dict({k[5:]: v for k, v in state.items() if k.startswith("lstm.")})
                linear.load_state_dict({k[7:]: v for k, v in state.items() if k.startswith("linear.")})
                self._model = (lstm.to(self.device).eval(), linear.to(self.device).eval())
            return self._model

    def _prepare(self, audio: np.ndarray, sample_rate: int) -> np.ndarray:
        from studio.audio.io import resample

        wav = resample(np.asarray(audio, dtype=np.float32), sample_rate, self.SAMPLE_RATE)
        loud = np.flatnonzero(np.abs(wav) > 0.01)
        if loud.size:
            wav = wav[loud[0] : loud[-1] + 1]
        rms = float(np.sqrt(np.mean(wav**2))) if wav.size else 0.0
        if rms < 1e-5:
            raise AudioError("The clip is silent, so its voice cannot be compared.")
        return wav * (10 ** (self.TARGET_DBFS / 20) / rms)

    def embed(self, audio: np.ndarray, sample_rate: int) -> np.ndarray:
        """Mono float32 ``(T,)`` → unit 256-d embedding."""
        import librosa

        wav = self._prepare(audio, sample_rate)
        n_frames = int(np.ceil((len(wav) + 1) / self.HOP))
        step = int(round(self.SAMPLE_RATE / 1.3 / self.HOP))
        starts = list(range(0, max(1, n_frames - self.PARTIAL_FRAMES + step + 1), step))
        if len(starts) > 1 and (len(wav) - starts[-1] * self.HOP) / (self.PARTIAL_FRAMES * self.HOP) < 0.75:
            starts = starts[:-1]
        need = (starts[-1] + self.PARTIAL_FRAMES) * self.HOP
        wav = np.pad(wav, (0, max(0, need - len(wav))))
        mel = librosa.feature.melspectrogram(
            y=wav, sr=self.SAMPLE_RATE, n_fft=self.WINDOW, hop_length=self.HOP, n_mels=self.N_MELS
        ).T.astype(np.float32)  # (T_mel, 40)
        mels = np.stack([mel[s : s + self.PARTIAL_FRAMES] for s in starts])  # (P, 160, 40)
        mean = compute_thread.run(self._encode, mels)  # the models' thread (see studio.inference.compute_thread)
        return mean / max(float(np.linalg.norm(mean)), 1e-9)

    def _encode(self, mels: np.ndarray) -> np.ndarray:
        """(P, 160, 40) log-mel partials → the mean of their unit embeddings (256,)."""
        import torch

        lstm, linear = self._load()
        with torch.no_grad():
            _, (hidden, _) = lstm(torch.from_numpy(mels).to(self.device))
            partial = torch.relu(linear(hidden[-1]))  # (P, 256)
            partial = partial / partial.norm(dim=1, keepdim=True).clamp_min(1e-9)
        return partial.mean(0).cpu().numpy()

    def similarity(self, a: np.ndarray, a_rate: int, b: np.ndarray, b_rate: int) -> float:
        return float(np.dot(self.embed(a, a_rate), self.embed(b, b_rate)))


# ----------------------------------------------------------------------------------------- the check


@dataclass
class TakeQA:
    """The result of checking one take."""

    transcript: str | None = None
    heard_language: str | None = None
    cer: float | None = None
    wer: float | None = None
    similarity: float | None = None
    skipped: list[str] = field(default_factory=list)
    repeated: list[str] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # why a measure is missing
    # Whisper's words with their times, [word, start s, end s]: the raw material of the take's word timing
    heard_words: list[list] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> TakeQA:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})

    def rank_key(self) -> tuple[float, float, float]:
        """Smaller is better: fewest flags, then lowest CER, then highest similarity."""
        cer = self.cer if self.cer is not None else 1.0
        sim = self.similarity if self.similarity is not None else 0.0
        return (float(len(self.flags)), round(cer, 4), -sim)


def compare_text(expected: str, heard: str, lang: str) -> TakeQA:
    """CER, WER, skips and repeats of a transcript ``heard`` against the ``expected`` text."""
    by_char = uses_characters(expected, lang)
    ref_chars, hyp_chars = tokenize(expected, True), tokenize(heard, True)
    ref_words, hyp_words = tokenize(expected, False), tokenize(heard, False)
    ref, hyp = (ref_chars, hyp_chars) if by_char else (ref_words, hyp_words)
    ops = align(ref, hyp)
    wer = None if by_char else error_rate(ref_words, hyp_words)  # no spaces between words in zh/ja
    qa = TakeQA(transcript=heard, cer=error_rate(ref_chars, hyp_chars), wer=wer)
    qa.skipped = skipped_runs(ops, 2, gap=1, sep="") if by_char else skipped_runs(ops, 1)
    qa.repeated = repeated_runs(ref, hyp, max_n=8 if by_char else 6)
    if qa.skipped and len(hyp) > 0:
        qa.flags.append(FLAG_SKIPPED)
    if qa.repeated:
        qa.flags.append(FLAG_REPEATED)
    if qa.cer >= UNCLEAR_CER:
        qa.flags.append(FLAG_UNCLEAR)
    return qa


class TakeChecker:
    """Runs the checks; the recogniser and the speaker encoder load on first use and are then kept."""

    def __init__(self, transcriber: Callable[[], object], speaker: SpeakerEncoder | None = None) -> None:
        self._transcriber = transcriber  # returns a studio.dataprep.transcribe.Transcriber
        self.speaker = speaker or SpeakerEncoder()

    def check(self, audio: np.ndarray, sample_rate: int, text: str, lang: str, reference: Path | None = None) -> TakeQA:
        qa = self._intelligibility(audio, sample_rate, text, lang)
        if reference is not None:
            try:
                from studio.audio.io import load_audio

                ref, ref_rate = load_audio(reference)
                qa.similarity = round(self.speaker.similarity(audio, sample_rate, ref, ref_rate), 4)
                if qa.similarity < LOW_SIMILARITY:
                    qa.flags.append(FLAG_VOICE)
            except StudioError as exc:
                qa.notes.append(f"Speaker similarity unavailable: {exc.message}")
        return qa

    def _intelligibility(self, audio: np.ndarray, sample_rate: int, text: str, lang: str) -> TakeQA:
        asr_lang = lang if lang in ("zh", "en", "ja") else "auto"
        try:
            # cap Whisper's output near the expected length: a hallucination loop can't stall the check
            transcript = self._transcriber().transcribe(
                audio, sample_rate, asr_lang, max_new_tokens=token_cap_for_text(text), word_times=True
            )
        except (ASRModelMissingError, AudioError) as exc:
            return TakeQA(notes=[f"Transcript unavailable: {exc}"])
        qa = compare_text(text, transcript.text, lang)
        qa.heard_language = transcript.language
        qa.heard_words = [[w, round(a, 3), round(b, 3)] for w, a, b in getattr(transcript, "word_times", ())]
        return qa


def best_take(candidates: Sequence[tuple[str, TakeQA | None]]) -> str | None:
    """The id of the best checked take among ``(id, qa)`` pairs; ``None`` if none was checked."""
    checked = [(qa.rank_key(), take_id) for take_id, qa in candidates if qa is not None and qa.transcript is not None]
    return min(checked)[1] if checked else None
