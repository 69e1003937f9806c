"""Choosing the training epoch to keep by listening to it, not by its loss.

A fine-tune's loss keeps falling long after the voice stops getting better: on a minute of data the later
epochs start to over-fit (words skipped or slurred, a duller or odder timbre). So after training, every saved
epoch speaks a few sentences that were **not** in the training transcripts
(:mod:`studio.services.epoch_scoring` does the synthesis and measuring), and two numbers are kept per epoch:

* **CER** — the character error rate of a Whisper transcript of the output against the sentence (the same
  recogniser and comparison as take QA), averaged over the sentences, each capped at 1: "does it still read
  the text?"
* **similarity** — the cosine between the speaker embedding of the output and the mean embedding of several of
  the user's own clips: "does it sound like me?"

**The rule** (one number, ``score``, higher is better; the recommendation is the epoch with the highest):

    score = similarity − CER_PENALTY × max(0, CER − (best CER of the run + CER_TOLERANCE))

Epochs whose CER is within ``CER_TOLERANCE`` (5 points) of the best epoch's read the text about as well
(Whisper itself varies by that much on synthetic speech), and among them the most similar voice wins. An epoch
clearly worse at reading is pushed down by 0.1 of similarity per point of CER beyond that margin, so it wins
only by sounding far more like the user. Ties go to the lower CER, then the later epoch. A missing measure
(no recogniser, no speaker encoder) leaves the other to decide; with neither, the last epoch is recommended.

**Pairing the stages.** The GPT and SoVITS stages are trained one after the other, often for different numbers
of epochs (the balanced preset: 8 and 4). Scoring every combination would cost their product; instead the
candidates follow both stages through training together: candidate ``k`` of ``K = max(G, S)`` uses the GPT
epoch at ``ceil(k·G/K)`` and the SoVITS epoch at ``ceil(k·S/K)`` (positions in the lists of saved epochs), so
candidate 1 is both stages' first epoch and candidate K both stages' last — "the voice after the same share of
training". A stage that this run did not train uses the base model. At most ``MAX_CANDIDATES`` candidates are
scored, evenly spread and always including the last.

The report is ``runs/<id>/epochs.json`` (written atomically after each candidate, so a stop keeps the work
done); scoring again reuses every stored candidate measured the same way (same sentences, seed and embedder)
and measures only the new ones.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from studio.training.run_layout import read_json

REPORT_FILE = "epochs.json"
REPORT_FORMAT = 1
CER_TOLERANCE = 0.05
CER_PENALTY = 10.0
MAX_CANDIDATES = 10

# English wording of the reasons (the CLI; the studio shows train.epochs.reason.<code> from its locale tables)
REASONS = {
    "closest": "Epoch {epoch} sounds most like you (similarity {similarity}) and reads the test sentences "
    "about as well as the best epoch (error rate {cer}; best {best_cer}).",
    "closest_no_cer": "Epoch {epoch} sounds most like you (similarity {similarity}); the test sentences could not "
    "be transcribed.",
    "clearest": "Epoch {epoch} reads the test sentences best (error rate {cer}); the voice similarity could not "
    "be measured.",
    "overtrained": "Later epochs misread more words (epoch {later}: {later_cer}), a sign of over-training.",
    "single": "Only the final weights of this run were kept, so there is no other epoch to choose.",
    "unscored": "The epochs could not be scored, so the last one is used.",
}


@dataclass(frozen=True)
class Candidate:
    """One voice to score: a GPT epoch paired with a SoVITS epoch (None: the stage was not trained)."""

    number: int  # 1-based; what the user sees as "epoch"
    gpt_epoch: int | None
    sovits_epoch: int | None
    gpt_weights: Path | None = None
    sovits_weights: Path | None = None

    @property
    def key(self) -> tuple[int | None, int | None]:
        return (self.gpt_epoch, self.sovits_epoch)


@dataclass
class EpochScore:
    """The measures of one candidate. ``samples`` are WAVs relative to the run folder, to listen to."""

    number: int
    gpt_epoch: int | None
    sovits_epoch: int | None
    cer: float | None = None
    similarity: float | None = None
    score: float | None = None
    transcripts: list[str] = field(default_factory=list)
    samples: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def key(self) -> tuple[int | None, int | None]:
        return (self.gpt_epoch, self.sovits_epoch)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EpochScore:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


@dataclass
class Reason:
    """Why an epoch is recommended: reason codes (REASONS / locale keys) and their formatted values."""

    codes: list[str] = field(default_factory=list)
    params: dict[str, str] = field(default_factory=dict)

    def english(self) -> str:
        return " ".join(REASONS[c].format(**self.params) for c in self.codes if c in REASONS)


@dataclass
class EpochReport:
    """``runs/<id>/epochs.json``: what was measured and which epoch to keep."""

    run_id: str
    language: str
    sentences: list[str]
    embedder: str  # "resemblyzer" or "sv-eres2netv2": similarities of different embedders are not comparable
    seed: int
    scores: list[EpochScore] = field(default_factory=list)
    recommended: int | None = None
    reason: Reason = field(default_factory=Reason)
    format: int = REPORT_FORMAT

    def score_of(self, number: int) -> EpochScore | None:
        return next((s for s in self.scores if s.number == number), None)

    @property
    def best(self) -> EpochScore | None:
        return self.score_of(self.recommended) if self.recommended is not None else None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EpochReport:
        reason = data.get("reason") if isinstance(data.get("reason"), dict) else {}
        return cls(
            run_id=str(data["run_id"]),
            language=str(data.get("language", "")),
            sentences=[str(s) for s in data.get("sentences", [])],
            embedder=str(data.get("embedder", "")),
            seed=int(data.get("seed", 0)),
            scores=[EpochScore.from_dict(s) for s in data.get("scores", []) if isinstance(s, dict)],
            recommended=data.get("recommended"),
            reason=Reason(list(reason.get("codes", [])), dict(reason.get("params", {}))),
            format=int(data.get("format", REPORT_FORMAT)),
        )


# ----------------------------------------------------------------------------------------- pairing


def pair_epochs(
    gpt: dict[int, Path] | None, sovits: dict[int, Path] | None, limit: int = MAX_CANDIDATES
) -> list[Candidate]:
    """The candidates of a run from each stage's saved epochs (epoch → weights file; None: not trained)."""
    g, s = sorted((gpt or {}).items()), sorted((sovits or {}).items())
    total = max(len(g), len(s), 1)

    def at(items: list[tuple[int, Path]], k: int) -> tuple[int | None, Path | None]:
        return items[math.ceil(k * len(items) / total) - 1] if items else (None, None)

    numbers = range(1, total + 1)
    if total > limit:
        numbers = sorted({round(1 + i * (total - 1) / (limit - 1)) for i in range(limit)})
    out = []
    for k in numbers:
        (ge, gw), (se, sw) = at(g, k), at(s, k)
        out.append(Candidate(k, ge, se, gw, sw))
    return out


def run_candidates(run_dir: Path, result: dict[str, Any], limit: int = MAX_CANDIDATES) -> list[Candidate]:
    """The candidates of a finished run (``result`` = its result.json); a stage's last epoch is its own
    float32 output file, earlier ones the per-epoch files (none for runs made before they were kept)."""
    from studio.training.epoch_weights import saved_epochs
    from studio.training.run_layout import RunPaths

    paths = RunPaths(Path(run_dir))
    by_stage: dict[str, dict[int, Path] | None] = {}
    for stage in ("gpt", "sovits"):
        summary = result.get("stages", {}).get(stage)
        if not isinstance(summary, dict):
            by_stage[stage] = None
            continue
        files = saved_epochs(paths, stage)
        final = int(summary.get("epochs") or max(files, default=1))
        files = {e: p for e, p in files.items() if e < final}
        files[final] = paths.dir / str(summary["weights"])
        by_stage[stage] = files
    return pair_epochs(by_stage["gpt"], by_stage["sovits"], limit)


def pick_candidate(run_dir: Path, result: dict[str, Any], number: int | None) -> tuple[Candidate, bool]:
    """The candidate to turn into a voice: ``number`` if given, else the report's recommendation, else the last
    one; and whether it is the recommended one. An unknown number is refused, naming the valid ones."""
    from studio.errors import TrainingError

    candidates = {c.number: c for c in run_candidates(run_dir, result)}
    report = load_report(run_dir)
    recommended = report.recommended if report is not None else None
    wanted = number if number is not None else recommended
    if wanted is None:
        wanted = max(candidates)
    if wanted not in candidates:
        raise TrainingError(
            f"This run has no epoch {wanted} to use.", hint=f"Choose one of: {', '.join(map(str, candidates))}."
        )
    return candidates[wanted], wanted == recommended


# ----------------------------------------------------------------------------------------- the rule


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def recommend(scores: list[EpochScore]) -> tuple[int | None, Reason]:
    """Fill in each ``score`` and pick the epoch to keep (see the module docstring); (number, reason)."""
    if not scores:
        return None, Reason(["unscored"])
    cers = [s.cer for s in scores if s.cer is not None]
    best_cer = min(cers) if cers else None
    for s in scores:
        if s.cer is None and s.similarity is None:
            s.score = None
            continue
        excess = max(0.0, s.cer - best_cer - CER_TOLERANCE) if s.cer is not None and best_cer is not None else 0.0
        s.score = round((s.similarity if s.similarity is not None else 0.0) - CER_PENALTY * excess, 4)
    scored = [s for s in scores if s.score is not None]
    last = max(scores, key=lambda s: s.number)
    if len(scores) == 1:
        return last.number, Reason(["single"])
    if not scored:
        return last.number, Reason(["unscored"])
    best = max(scored, key=lambda s: (s.score, -(s.cer if s.cer is not None else 1.0), s.number))
    params = {"epoch": str(best.number)}
    if best.similarity is not None:
        params["similarity"] = f"{best.similarity:.2f}"
    if best.cer is not None and best_cer is not None:
        params.update(cer=_pct(best.cer), best_cer=_pct(best_cer))
    if best.similarity is None:
        codes = ["clearest"]
    else:
        codes = ["closest" if best.cer is not None else "closest_no_cer"]
    later = [s for s in scored if s.number > best.number and s.cer is not None and best_cer is not None]
    worse = [s for s in later if s.cer > best_cer + CER_TOLERANCE]
    if worse:
        worst = max(worse, key=lambda s: s.cer)
        codes.append("overtrained")
        params.update(later=str(worst.number), later_cer=_pct(worst.cer))
    return best.number, Reason(codes, params)


# ----------------------------------------------------------------------------------------- storage and display


def report_path(run_dir: Path) -> Path:
    return Path(run_dir) / REPORT_FILE


def load_report(run_dir: Path) -> EpochReport | None:
    """The stored report of a run, or None (none yet, or unreadable: it is then simply recomputed)."""
    data = read_json(report_path(run_dir))
    if not data or data.get("format") != REPORT_FORMAT:
        return None
    try:
        return EpochReport.from_dict(data)
    except (KeyError, TypeError, ValueError):
        return None


def save_report(run_dir: Path, report: EpochReport) -> Path:
    from studio.workspace import atomic_write_json

    return atomic_write_json(report_path(run_dir), report.to_dict())


def format_table(report: EpochReport) -> str:
    """Plain-text table, aligned columns, ★ on the recommended epoch (what ``studio train`` prints)."""
    header = ("", "epoch", "GPT", "SoVITS", "CER", "similarity", "score")
    rows = [header]
    for s in sorted(report.scores, key=lambda s: s.number):
        rows.append(
            (
                "★" if s.number == report.recommended else "",
                str(s.number),
                "base" if s.gpt_epoch is None else str(s.gpt_epoch),
                "base" if s.sovits_epoch is None else str(s.sovits_epoch),
                "—" if s.cer is None else f"{100 * s.cer:.1f}%",
                "—" if s.similarity is None else f"{s.similarity:.3f}",
                "—" if s.score is None else f"{s.score:.3f}",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = [
        "  ".join(cell.rjust(w) if i else cell.ljust(w) for i, (cell, w) in enumerate(zip(r, widths))) for r in rows
    ]
    text = "\n".join(line.rstrip() for line in lines)
    if report.recommended is not None:
        text += f"\n★ recommended: epoch {report.recommended}. {report.reason.english()}"
    return text
