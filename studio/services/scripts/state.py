"""The records of a script render: its cast and settings, each line's outcome, the whole job's status.

Everything here is plain data that round-trips through JSON (``project.json`` and ``report.json`` in the render
folder), so a render can stop anywhere (even ``kill -9``) and go on later from what is on disk.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, fields

from studio.errors import StudioError
from studio.services.scripts.records import ScriptError, ScriptLine
from studio.services.take_qa import LOW_SIMILARITY, UNCLEAR_CER

EVERYONE = "*"  # the cast entry for every speaker not cast by name

# line status: pending (not rendered yet) → ok (✓ passed the checks) | warn (⚠ kept the best take, which failed
# a check: ``reason`` says which) | unchecked (✓ rendered with checks off) | error (⚠ could not be rendered)
PENDING, OK, WARN, UNCHECKED, ERROR = "pending", "ok", "warn", "unchecked", "error"
SYMBOLS = {PENDING: "·", OK: "✓", WARN: "⚠", UNCHECKED: "✓", ERROR: "⚠"}


@dataclass(frozen=True)
class CastMember:
    """Who speaks a speaker's lines: a voice of the library and, optionally, one of its style tags."""

    speaker: str  # the script's name for the speaker, or EVERYONE
    voice: str
    style: str | None = None


def parse_cast(items: Iterable[str]) -> dict[str, CastMember]:
    """``NAME=voice[,style]`` items (the CLI's ``--cast``); an item without ``NAME=`` casts every other speaker.

    Keys are case-folded speaker names (scripts match names without regard to case).
    """
    cast: dict[str, CastMember] = {}
    for item in items:
        speaker, sep, rest = item.partition("=")
        if not sep:
            speaker, rest = EVERYONE, item
        voice, _, style = rest.partition(",")
        speaker, voice, style = speaker.strip(), voice.strip(), style.strip()
        if not speaker or not voice:
            raise StudioError(
                f"Cannot read the cast entry {item!r}.", hint="Write NAME=voice or NAME=voice,style (e.g. ALICE=joe)."
            )
        cast[speaker.casefold()] = CastMember(speaker, voice, style or None)
    return cast


def cast_for(cast: dict[str, CastMember], speaker: str) -> CastMember | None:
    return cast.get(speaker.casefold()) or cast.get(EVERYONE)


@dataclass(frozen=True)
class RenderSettings:
    """How a script is rendered. The synthesis knobs default to the engine's; the checks to take QA's flags.

    * ``retries``: a line failing a check is synthesized again with a new seed up to this many times; the best
      take (fewest failed checks, then lowest CER, then highest similarity) is kept.
    * ``seed``: ≥ 0 makes the whole render repeatable (each line's seeds derive from it and the line's
      content); -1 = random seeds (recorded in the report either way).
    * ``check``: off = no Whisper, no speaker similarity, no length check and so no retries (status "unchecked").
    * ``max_cer`` / ``min_similarity`` / ``check_length``: what counts as a failure.
    * ``pauses``: the pause-map preset (natural, audiobook, fast) between and inside lines.
    * ``max_fit_speed``: a subtitle line longer than its slot is sped up to at most this factor (never slowed:
      a shorter line is followed by silence); beyond it the line is flagged. ``min_fit_speed`` bounds a
      user's own slower speed when fitting.
    """

    lang: str = "auto"
    retries: int = 2
    seed: int = -1
    check: bool = True
    max_cer: float = UNCLEAR_CER
    min_similarity: float = LOW_SIMILARITY
    check_length: bool = True
    pauses: str = "natural"
    speed: float = 1.0
    temperature: float = 1.0
    top_k: int = 15
    top_p: float = 1.0
    noise_scale: float = 0.5
    length_retries: int = 1
    max_sentence_s: float = 60.0  # cap on each sentence's length (25 semantic tokens a second; upstream: 60 s)
    min_fit_speed: float = 0.8
    max_fit_speed: float = 1.25

    def validated(self) -> RenderSettings:
        if not 0 <= self.retries <= 10:
            raise StudioError(f"Invalid setting: retries must be 0–10 (got {self.retries}).")
        if not 0 <= self.max_cer <= 10 or not -1 <= self.min_similarity <= 1:
            raise StudioError("Invalid setting: max_cer must be 0–10 and min_similarity between -1 and 1.")
        if not 0.2 <= self.max_sentence_s <= 60:
            raise StudioError(f"Invalid setting: max_sentence_s must be 0.2–60 seconds (got {self.max_sentence_s}).")
        if not 0.25 <= self.min_fit_speed <= 1 <= self.max_fit_speed <= 4:
            raise StudioError("Invalid setting: the fitting speeds must satisfy 0.25 ≤ min ≤ 1 ≤ max ≤ 4.")
        from studio.inference.pauses import PauseMap

        PauseMap.preset(self.pauses)  # an unknown preset is named now, not after the first line
        return self

    def audio_key(self) -> dict:
        """The settings that change a line's audio (what its content hash covers; the checks do not)."""
        keep = (
            "lang",
            "seed",
            "speed",
            "temperature",
            "top_k",
            "top_p",
            "noise_scale",
            "length_retries",
            "max_sentence_s",
        )
        return {k: getattr(self, k) for k in keep} | {"fit": [self.min_fit_speed, self.max_fit_speed]}

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> RenderSettings:
        return cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data})


@dataclass(frozen=True)
class LineOverride:
    """One line's own settings (set when a line is edited): each ``None`` keeps the script's."""

    voice: str | None = None
    style: str | None = None
    speed: float | None = None
    seed: int | None = None  # the first try's seed (later tries derive new ones)
    lang: str | None = None

    def to_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None}

    @classmethod
    def from_dict(cls, data: dict | None) -> LineOverride:
        data = data or {}
        unknown = sorted(set(data) - {f.name for f in fields(cls)})
        if unknown:
            raise StudioError(
                f"Unknown line setting(s): {', '.join(unknown)} (known: voice, style, speed, seed, lang)."
            )
        return cls(**data)


@dataclass
class Attempt:
    """One try at a line: its seed, what the checks measured and why it failed (empty: it passed)."""

    seed: int
    duration_s: float
    speed: float
    cer: float | None = None
    similarity: float | None = None
    flags: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    transcript: str | None = None
    notes: list[str] = field(default_factory=list)  # why a measure is missing (e.g. no Whisper model)
    file: str = ""  # relative to the render folder (takes/<hash>/<n>.wav)


@dataclass
class LineReport:
    """A line's outcome in ``report.json``: the kept take and every try."""

    index: int
    text: str
    speaker: str
    voice: str = ""
    style: str | None = None
    status: str = PENDING
    reason: str = ""
    seed: int | None = None
    attempts: int = 0
    cer: float | None = None
    similarity: float | None = None
    flags: list[str] = field(default_factory=list)
    duration_s: float = 0.0
    start_s: float | None = None  # where the line sits in the joined audio
    end_s: float | None = None
    speed: float = 1.0
    slot: list[float] | None = None
    source_line: int = 0
    hash: str = ""
    chosen: int = 0  # which try is kept (index into ``tries``)
    tries: list[Attempt] = field(default_factory=list)
    file: str = ""  # lines/NNNN.wav once rendered

    @property
    def symbol(self) -> str:
        return SYMBOLS.get(self.status, "?")

    @property
    def finished(self) -> bool:
        return self.status in (OK, WARN, UNCHECKED)

    @property
    def rerendered(self) -> bool:
        return self.attempts > 1

    def to_dict(self) -> dict:
        return asdict(self) | {"symbol": self.symbol}

    @classmethod
    def from_dict(cls, data: dict) -> LineReport:
        keep = {f.name: data[f.name] for f in fields(cls) if f.name in data and f.name != "tries"}
        tries = [Attempt(**{k: v for k, v in t.items() if k in Attempt.__dataclass_fields__}) for t in data["tries"]]
        return cls(**keep, tries=tries)


@dataclass(frozen=True)
class RenderProgress:
    """What a progress callback receives after every line (and before each try)."""

    done: int
    total: int
    eta_s: float | None
    line: int | None = None
    message: str = ""


@dataclass
class ScriptStatus:
    """A render at a glance (``GET /v1/scripts/{id}``, the Script tab, the CLI's summary)."""

    name: str
    state: str  # idle | rendering | done | cancelled | failed
    total: int
    done: int
    ok: int
    warned: int
    rerendered: int
    eta_s: float | None
    lines: list[LineReport]
    audio: str | None = None  # the joined WAV (absolute path) once every line is rendered
    subtitles: str | None = None
    error: str | None = None

    def to_dict(self) -> dict:
        data = asdict(self)
        data["lines"] = [line.to_dict() for line in self.lines]
        return data


def line_hash(line: ScriptLine, voice: str, style: str | None, settings: RenderSettings, override: LineOverride) -> str:
    """The content hash of a line: text, speaker's voice and style, the audio settings and the line's own.

    A finished line whose hash is unchanged is never rendered again (resume, and edits of other lines).
    """
    slot = None if line.slot is None else round(line.slot[1] - line.slot[0], 3)
    payload = {
        "text": line.text,
        "voice": voice,
        "style": style,
        "settings": settings.audio_key(),
        "override": override.to_dict(),
        "slot": slot,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:16]


def line_seed(render_seed: int, content_hash: str, attempt: int, override: LineOverride) -> int:
    """The seed of a line's try: the line's own seed first; else derived from the render's seed and the line's
    content (repeatable, independent of the line's position); random when the render's seed is -1."""
    if attempt == 0 and override.seed is not None and override.seed >= 0:
        return int(override.seed)
    base = override.seed if override.seed is not None and override.seed >= 0 else render_seed
    if base < 0:
        return random.SystemRandom().randrange(2**31)
    digest = hashlib.sha256(f"{base}:{content_hash}:{attempt}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def line_error(line: ScriptLine, message: str, hint: str | None = None) -> ScriptError:
    return ScriptError(f"{line.speaker}: {message}", line=line.source_line or None, hint=hint)
