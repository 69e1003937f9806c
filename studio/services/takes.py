"""Takes: every synthesized clip is kept, with what made it, its automatic check and blind A/B picks.

On disk (``<workspace>/takes/``), so nothing is lost when the page reloads or the studio restarts::

    <id>.wav          the audio (PCM16, INFO comment "AI-generated …")
    <id>.json         the Take record: voice, text, every setting, seed, duration, QA
    ab_trials.json    blind comparisons: which take was played as A and as B, and the listener's pick
    ab/<trial>/A.wav  copies under neutral names, so the file name does not give the answer away

:class:`TakeService` is the use case shared by the studio UI and the CLI: generate N takes (optionally
checked), pick the best, run blind comparisons.
"""

from __future__ import annotations

import json
import logging
import random
import shutil
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import datetime, timezone
from pathlib import Path

from studio.errors import ReferenceAudioError, StudioError, TextError
from studio.inference.reference import load_reference
from studio.inference.requests import SynthesisRequest as _ENGINE  # the engine's defaults are the take defaults
from studio.services.subtitles import WordTime, cues_from_words, write_subtitles
from studio.services.take_qa import TakeChecker, TakeQA, best_take
from studio.services.word_timing import word_times_for_take
from studio.text.user_lexicon import UserLexicon
from studio.workspace import atomic_write_json

_LOGGER = logging.getLogger(__name__)

ZERO_SHOT = ""  # the voice name of takes made with the base models from any reference clip
AI_MARKER = "AI-generated speech (SoVITS Studio)"
PICKS = ("A", "B", "same")


class TakeNotFoundError(StudioError):
    """No take with that id."""


@dataclass
class TakeSettings:
    """The synthesis knobs a user sets for a batch of takes (defaults as upstream's)."""

    text: str
    lang: str = "auto"
    voice: str = ZERO_SHOT  # library voice name; ZERO_SHOT = base models
    reference: str | None = None  # None → the voice's own reference clip
    ref_text: str | None = None  # None → the voice's own reference transcript
    ref_lang: str = "auto"
    noise_scale: float = _ENGINE.noise_scale
    speed: float = _ENGINE.speed
    energy: float = _ENGINE.energy
    temperature: float = _ENGINE.temperature
    top_k: int = _ENGINE.top_k
    top_p: float = _ENGINE.top_p
    repetition_penalty: float = _ENGINE.repetition_penalty
    seed: int = -1  # < 0 → a random seed per take; else take i uses seed + i
    max_sentence_s: float = 60.0  # cap on each sentence's length (upstream: 1500 tokens = 60 s)
    length_retries: int = 2  # re-generate a sentence of implausible length (skipped/repeated words); 0 = upstream
    split: str = _ENGINE.split  # how long text is cut into sentences (cut0–cut5 or a method name)
    pause_s: float = _ENGINE.pause_s  # silence between sentences
    # Directing the voice (see SynthesisRequest); the defaults are today's take
    style_reference: str | None = None  # e.g. one of the voice's tagged references ("calm", "excited")
    style_ref_text: str = ""
    style_ref_lang: str = "auto"
    timbre_mix: list[tuple[str, float]] = field(default_factory=list)  # (clip, weight); empty → the reference
    pauses: dict[str, float] | None = None  # PauseMap.to_dict(); None → pause_s between sentences


@dataclass
class Take:
    id: str
    number: int
    created: str
    batch: str
    seed: int
    duration_s: float
    settings: TakeSettings
    reference: str  # the clip actually used
    qa: TakeQA | None = None
    words: list[WordTime] | None = None  # when each word is spoken (from the check); None: not checked / older take
    wav: str = ""  # absolute path, filled in by the store

    def to_dict(self) -> dict:
        data = asdict(self)
        data.pop("wav")
        return data

    @classmethod
    def from_dict(cls, data: dict, wav: Path) -> Take:
        settings = TakeSettings(
            **{f.name: data["settings"][f.name] for f in fields(TakeSettings) if f.name in data["settings"]}
        )
        qa = TakeQA.from_dict(data["qa"]) if data.get("qa") else None
        words = [WordTime(**w) for w in data["words"]] if data.get("words") is not None else None
        skip = ("settings", "qa", "words", "wav")
        keep = {f.name: data[f.name] for f in fields(cls) if f.name in data and f.name not in skip}
        return cls(**keep, settings=settings, qa=qa, words=words, wav=str(wav))

    def subtitle_path(self, ext: str) -> Path:
        """Where the take's subtitles are written: next to its audio, ``<id>.srt`` / ``<id>.vtt``."""
        return Path(self.wav).with_suffix(f".{ext}")

    @property
    def label(self) -> str:
        voice = self.settings.voice or "zero-shot"
        return f"#{self.number} · {voice} · seed {self.seed}"


@dataclass
class ABTrial:
    id: str
    first: str  # take id played as "A"
    second: str  # take id played as "B"
    created: str
    pick: str | None = None  # "A" | "B" | "same"
    picked_at: str | None = None

    @property
    def winner(self) -> str | None:
        return {"A": self.first, "B": self.second}.get(self.pick or "")


def _now() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


class TakeStore:
    """Takes and A/B trials under one folder (``<workspace>/takes``)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _json(self, take_id: str) -> Path:
        if not take_id or "/" in take_id or "\\" in take_id or take_id.startswith("."):
            raise TakeNotFoundError(f"There is no take {take_id!r}.")
        return self.root / f"{take_id}.json"

    def list(self, voice: str | None = None) -> list[Take]:
        """Every take, newest first (``voice`` filters by voice name; ``ZERO_SHOT`` = base-model takes)."""
        takes = []
        for path in self.root.glob("*.json") if self.root.is_dir() else []:
            if path.name == "ab_trials.json":
                continue
            try:
                take = Take.from_dict(json.loads(path.read_text(encoding="utf-8")), path.with_suffix(".wav"))
            except (OSError, ValueError, KeyError, TypeError) as exc:
                _LOGGER.warning("skipping damaged take record %s: %s", path, exc)
                continue
            if Path(take.wav).is_file() and (voice is None or take.settings.voice == voice):
                takes.append(take)
        return sorted(takes, key=lambda t: (t.number, t.created), reverse=True)

    def get(self, take_id: str) -> Take:
        path = self._json(take_id)
        if not path.is_file():
            raise TakeNotFoundError(f"There is no take {take_id!r}; it may have been deleted.")
        return Take.from_dict(json.loads(path.read_text(encoding="utf-8")), path.with_suffix(".wav"))

    def add(self, audio, sample_rate: int, *, settings: TakeSettings, seed: int, batch: str, reference: Path) -> Take:
        from studio.audio.io import save_wav

        number = max((t.number for t in self.list()), default=0) + 1
        take_id = f"{datetime.now().strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
        wav = self.root / f"{take_id}.wav"
        meta = {"comment": AI_MARKER, "software": "SoVITS Studio", "title": settings.text[:120], "date": _now()}
        save_wav(wav, audio, sample_rate, metadata=meta)
        take = Take(take_id, number, _now(), batch, seed, round(len(audio) / sample_rate, 3), settings, str(reference))
        take.wav = str(wav)
        atomic_write_json(self._json(take_id), take.to_dict())
        return take

    def keep_reference(self, path: Path) -> Path:
        """A copy of a zero-shot reference clip inside the store, so the take's history keeps working."""
        from studio.voicepack.manifest import sha256_file

        source = Path(path)
        if not source.is_file():
            raise ReferenceAudioError(f"The reference clip {source.name} is gone.", hint="Upload it again.")
        target = self.root / "references" / f"{sha256_file(source)[:16]}{source.suffix.lower() or '.wav'}"
        if not target.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
        return target

    def set_qa(self, take_id: str, qa: TakeQA, words: list[WordTime] | None = None) -> Take:
        """Store the check (and the word times made from it); with word times, write the SRT and VTT files."""
        take = replace(self.get(take_id), qa=qa, words=words)
        atomic_write_json(self._json(take_id), take.to_dict())
        if words:
            cues = cues_from_words(words)
            for ext in ("srt", "vtt"):
                write_subtitles(cues, take.subtitle_path(ext))
        return take

    def delete(self, take_id: str) -> None:
        take = self.get(take_id)
        for ext in ("srt", "vtt"):
            take.subtitle_path(ext).unlink(missing_ok=True)
        Path(take.wav).unlink(missing_ok=True)
        self._json(take_id).unlink(missing_ok=True)

    # ---------------------------------------------------------------------------------------- blind A/B

    def _trials_path(self) -> Path:
        return self.root / "ab_trials.json"

    def trials(self) -> list[ABTrial]:
        path = self._trials_path()
        if not path.is_file():
            return []
        try:
            return [ABTrial(**t) for t in json.loads(path.read_text(encoding="utf-8"))]
        except (OSError, ValueError, TypeError) as exc:
            _LOGGER.warning("ignoring damaged %s: %s", path, exc)
            return []

    def _save_trials(self, trials: list[ABTrial]) -> None:
        atomic_write_json(self._trials_path(), [asdict(t) for t in trials])

    def start_trial(self, take_a: str, take_b: str, rng: random.Random | None = None) -> ABTrial:
        """A new blind comparison of two different takes, played in a random order."""
        if take_a == take_b:
            raise StudioError("Pick two different takes to compare.")
        first, second = self.get(take_a), self.get(take_b)
        if (rng or random.SystemRandom()).random() < 0.5:
            first, second = second, first
        trial = ABTrial(uuid.uuid4().hex[:10], first.id, second.id, _now())
        folder = self.root / "ab" / trial.id
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(first.wav, folder / "A.wav")
        shutil.copyfile(second.wav, folder / "B.wav")
        self._save_trials([*self.trials(), trial])
        return trial

    def trial_clips(self, trial: ABTrial) -> tuple[Path, Path]:
        folder = self.root / "ab" / trial.id
        return folder / "A.wav", folder / "B.wav"

    def open_trial(self) -> ABTrial | None:
        """The newest comparison still waiting for a pick (it survives a reload)."""
        waiting = [t for t in self.trials() if t.pick is None and all(self.trial_clips(t)[i].is_file() for i in (0, 1))]
        return waiting[-1] if waiting else None

    def record_pick(self, trial_id: str, pick: str) -> ABTrial:
        if pick not in PICKS:
            raise StudioError(f"Unknown choice {pick!r}; expected one of {', '.join(PICKS)}.")
        trials = self.trials()
        for i, trial in enumerate(trials):
            if trial.id == trial_id:
                if trial.pick is not None:
                    raise StudioError("This comparison was already decided; start a new one.")
                trials[i] = replace(trial, pick=pick, picked_at=_now())
                self._save_trials(trials)
                return trials[i]
        raise StudioError("That comparison no longer exists; start a new one.")

    def wins(self) -> dict[str, int]:
        """How many blind comparisons each take won."""
        counts: dict[str, int] = {}
        for trial in self.trials():
            if trial.winner:
                counts[trial.winner] = counts.get(trial.winner, 0) + 1
        return counts


ProgressFn = Callable[[int, int, str], None]  # (takes done, takes asked for, message)


@dataclass
class Batch:
    """The outcome of one "generate N takes"."""

    id: str
    takes: list[Take] = field(default_factory=list)
    best: str | None = None


class TakeService:
    """Generate, check and compare takes. ``synthesis``/``voices`` are the studio's services."""

    def __init__(
        self,
        store: TakeStore,
        synthesis_factory: Callable[[], object],
        voices,
        checker: TakeChecker,
        lexicon: Callable[[], UserLexicon | None] = lambda: None,
    ) -> None:
        self.store = store
        self._synthesis = synthesis_factory
        self.voices = voices
        self.checker = checker
        self.lexicon = lexicon

    def _request(self, settings: TakeSettings):

        if not settings.text.strip():
            raise TextError("There is no text to speak.", hint="Type a sentence in the text box.")
        models, reference, ref_text = None, settings.reference, settings.ref_text
        if settings.voice != ZERO_SHOT:
            info = self.voices.get(settings.voice)
            models = info.models
            reference = reference or str(info.reference_audio)
            ref_text = info.reference_text if ref_text is None else ref_text
            ref_lang = info.reference_lang if settings.reference is None else settings.ref_lang
        else:
            ref_lang = settings.ref_lang
        if not reference:
            raise ReferenceAudioError(
                "Zero-shot needs a reference clip of the voice.", hint="Upload or record 3–10 s of clean speech."
            )
        request = _ENGINE(
            text=settings.text,
            lang=settings.lang,
            reference=Path(reference),
            ref_text=ref_text or "",
            ref_lang=ref_lang,
            top_k=int(settings.top_k),
            top_p=float(settings.top_p),
            temperature=float(settings.temperature),
            repetition_penalty=float(settings.repetition_penalty),
            speed=float(settings.speed),
            noise_scale=float(settings.noise_scale),
            energy=float(settings.energy),
            max_tokens_per_sentence=max(1, min(1500, int(round(float(settings.max_sentence_s) * 25)))),
            length_retries=int(settings.length_retries),
            split=settings.split or _ENGINE.split,
            pause_s=float(settings.pause_s),
            lexicon=self.lexicon(),
            **_direction(settings),
        ).validated()
        return request, models

    def generate(
        self, settings: TakeSettings, n: int = 1, *, check: bool = True, on_progress: ProgressFn | None = None
    ) -> Iterator[Take]:
        """Synthesize ``n`` takes one after another, yielding each as soon as it is saved (and checked)."""
        if not 1 <= n <= 16:
            raise StudioError("Generate between 1 and 16 takes at a time.")
        if settings.voice == ZERO_SHOT and settings.reference:
            # checked before the copy, so that an error names the user's clip, not the store's hashed file name
            load_reference(Path(settings.reference))
            settings = replace(settings, reference=str(self.store.keep_reference(Path(settings.reference))))
        request, models = self._request(settings)
        batch = uuid.uuid4().hex[:8]
        synthesis = self._synthesis()
        for i in range(n):
            seed = settings.seed + i if settings.seed >= 0 else random.SystemRandom().randrange(2**31)
            if on_progress:
                on_progress(i, n, f"Generating take {i + 1} of {n}…")
            result = synthesis.synthesize(request.with_seed(seed), models)
            take = self.store.add(
                result.audio,
                result.sample_rate,
                settings=settings,
                seed=result.seed,
                batch=batch,
                reference=request.reference,
            )
            if check:
                if on_progress:
                    on_progress(i, n, f"Checking take {i + 1} of {n}…")
                take = self.check(take.id)
            yield take

    def check(self, take_id: str) -> Take:
        """Transcribe the take, compare with its text and its reference voice; store and return the result."""
        from studio.audio.io import load_audio

        take = self.store.get(take_id)
        audio, rate = load_audio(take.wav)
        qa = self.checker.check(audio, rate, take.settings.text, take.settings.lang, Path(take.reference))
        words = None
        if qa.transcript is not None:  # Whisper ran: its word times, mapped onto the take's own text
            heard = [WordTime(str(w), float(a), float(b)) for w, a, b in qa.heard_words]
            words = word_times_for_take(take.settings.text, take.settings.lang, heard, duration=len(audio) / rate)
        return self.store.set_qa(take_id, qa, words)

    def best_of(self, takes: list[Take]) -> str | None:
        return best_take([(t.id, t.qa) for t in takes])


def _direction(settings: TakeSettings) -> dict:
    """The request fields of a take's style clip, timbre mix and pause map (none set: today's take)."""
    from studio.inference.pauses import PauseMap

    fields_: dict = {"timbre_references": tuple((Path(p), float(w)) for p, w in settings.timbre_mix or ())}
    if settings.style_reference:
        fields_ |= {
            "style_reference": Path(settings.style_reference),
            "style_ref_text": settings.style_ref_text,
            "style_ref_lang": settings.style_ref_lang,
        }
    if settings.pauses is not None:
        fields_["pauses"] = PauseMap.from_dict(dict(settings.pauses))
    return fields_
