"""One training run on disk: ``workspace/<name>/runs/<run_id>/`` and the records it holds.

Layout::

    runs/<run_id>/
        run.json                 RunConfig: everything the child process needs (written once by the service)
        events.jsonl             one JSON object per line (see :mod:`studio.training.events`), append-only
        job.log                  the child process's stdout/stderr (tracebacks of unexpected crashes)
        pid                      process id of the running job (removed when it ends)
        STOP                     created by the service to ask the job to stop at the next step
        checkpoints/gpt.pt       resumable state of a stage (replaced atomically; see checkpoints.py)
        checkpoints/sovits.pt
        samples/<stage>_e<epoch>.wav   a short sample after each epoch (32 kHz mono PCM16)
        epochs/<stage>_e<epoch>.safetensors   the stage's output weights after each epoch (epoch_weights.py)
        epochs.json              per-epoch listening scores and the recommended epoch (services/epoch_choice.py)
        gpt_lora.safetensors     final outputs, present once a stage finished (see below)
        sovits_lora.safetensors
        result.json              written last, when every requested stage has finished

Final outputs (what ``studio export`` turns into a voice pack):

* **LoRA mode** — ``gpt_lora.safetensors`` / ``sovits_lora.safetensors`` hold the adapter matrices alone,
  float32, under the canonical keys of :func:`studio.models.lora.lora_state_dict` (``<module>.lora_A`` (r, in[, k])
  and ``<module>.lora_B`` (out, r); ``<module>.<param>.lora_A`` for the GPT's packed ``in_proj_weight``). To
  rebuild a model: load the base file named in ``result.json`` (``load_text2semantic`` / ``load_sovits``),
  ``add_lora(model, LoRAConfig.from_dict(stage["lora"]))``, ``load_lora_state_dict(model, file)``, then
  ``merge_lora(model)`` for plain weights with the official keys.
* **full mode** — ``gpt_full.safetensors`` / ``sovits_full.safetensors`` hold the complete state dict
  (float32) in our model's keys: the GPT without upstream's ``model.`` prefix, SoVITS without ``enc_q``
  (training-only). Load them with ``model.load_state_dict`` into a model built from the stage's config.

``result.json`` (``RESULT_FORMAT`` 1)::

    {"format": 1, "name", "run_id", "finished_at", "language": the dataset's main language,
     "dataset": {"utterances", "seconds"}, "settings": the RunConfig (run.json contents; its "base" names the
     base version, v2 when absent),
     "stages": {"gpt"|"sovits": {"mode": "lora"|"full", "weights": file name, "lora": LoRAConfig.to_dict() | null,
                "base": {"path", "sha256", "size"}, "model_config": our config dataclass as a dict,
                "upstream_config": the base file's own config dict (GPT) / hparams (SoVITS),
                "trainable_parameters", "epochs", "steps", "final_loss": {loss name: value},
                "sample": path of the last sample WAV relative to the run folder | null}}}

A stage missing from ``stages`` was not trained in this run: use the base model for it.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from studio.errors import TrainingError
from studio.pretrained import BASE_VERSIONS
from studio.workspace import Workspace, atomic_write_json

RESULT_FORMAT = 1
STAGES = ("gpt", "sovits")


def new_run_id() -> str:
    """Sortable and unique: ``20250101-120000-ab12``."""
    return time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(2)


@dataclass(frozen=True)
class RunPaths:
    """Every path of one run."""

    dir: Path

    @classmethod
    def of(cls, workspace: Workspace, run_id: str) -> RunPaths:
        if not run_id or "/" in run_id or "\\" in run_id or run_id.startswith("."):
            raise TrainingError(f"Invalid run id {run_id!r}.")
        return cls(workspace.runs_dir / run_id)

    @property
    def run_id(self) -> str:
        return self.dir.name

    @property
    def run_json(self) -> Path:
        return self.dir / "run.json"

    @property
    def events(self) -> Path:
        return self.dir / "events.jsonl"

    @property
    def log(self) -> Path:
        return self.dir / "job.log"

    @property
    def pid_file(self) -> Path:
        return self.dir / "pid"

    @property
    def stop_file(self) -> Path:
        return self.dir / "STOP"

    @property
    def checkpoints_dir(self) -> Path:
        return self.dir / "checkpoints"

    def checkpoint(self, stage: str) -> Path:
        return self.checkpoints_dir / f"{stage}.pt"

    @property
    def samples_dir(self) -> Path:
        return self.dir / "samples"

    def sample(self, stage: str, epoch: int) -> Path:
        return self.samples_dir / f"{stage}_e{epoch}.wav"

    def weights(self, stage: str, lora: bool) -> Path:
        return self.dir / f"{stage}_{'lora' if lora else 'full'}.safetensors"

    def stage_result(self, stage: str) -> Path:
        """Per-stage summary written when a stage finishes (merged into result.json at the end)."""
        return self.dir / f"{stage}_result.json"

    @property
    def result_json(self) -> Path:
        return self.dir / "result.json"


@dataclass
class RunConfig:
    """The contents of ``run.json``: one training job, fully specified (the service fills in the preset)."""

    name: str
    workspace_root: str
    pretrained_root: str
    run_id: str
    stages: list[str] = field(default_factory=lambda: list(STAGES))
    base: str = "v2"  # base model version trained from: v2, v2Pro or v2ProPlus (runs before it existed: v2)
    lora_rank: int | None = 16  # None: full fine-tuning
    lora_alpha: float | None = None  # None: equal to the rank (scale 1)
    preset: str = "balanced"
    gpt_epochs: int = 8
    gpt_batch_size: int = 4
    gpt_lr: float = 1e-3
    sovits_epochs: int = 4
    sovits_batch_size: int = 2
    sovits_lr: float = 1e-4
    text_low_lr_rate: float = 0.4  # SoVITS text encoder / MRTE learning-rate factor (upstream's UI default)
    max_steps: int | None = None  # per stage; cuts a stage short (tests, quick trials)
    device: str = "cpu"
    precision: str = "auto"  # "auto" (bf16/fp16 autocast on CUDA, fp32 on CPU) or "fp32"
    seed: int = 1234
    checkpoint_every: int = 50  # steps; a checkpoint is also written at the end of each epoch
    sample_text: str | None = None  # None: a fixed sentence in the dataset's language
    sample_max_tokens: int = 250  # cap on semantic tokens of the epoch sample (10 s)
    warmup_steps: int = 10
    epoch_choice: bool = True  # after training, score every saved epoch by listening (services/epoch_choice.py)

    def __post_init__(self) -> None:
        bad = [s for s in self.stages if s not in STAGES]
        if bad or not self.stages:
            raise TrainingError(f"Unknown training stage(s) {bad or self.stages}; expected gpt and/or sovits.")
        if self.base not in BASE_VERSIONS:
            raise TrainingError(
                f"Unknown base model version {self.base!r}; expected one of {', '.join(BASE_VERSIONS)}."
            )
        if self.lora_rank is not None and self.lora_rank < 1:
            raise TrainingError(f"The LoRA rank must be at least 1, got {self.lora_rank}.")

    @property
    def lora(self) -> bool:
        return self.lora_rank is not None

    @property
    def workspace(self) -> Workspace:
        return Workspace(self.name, Path(self.workspace_root))

    @property
    def paths(self) -> RunPaths:
        return RunPaths.of(self.workspace, self.run_id)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise TrainingError(f"run.json has unknown settings: {', '.join(unknown)}.")
        try:
            return cls(**data)
        except TypeError as exc:
            raise TrainingError(f"run.json is incomplete: {exc}.") from None

    def save(self, path: Path | None = None) -> Path:
        return atomic_write_json(path or self.paths.run_json, self.to_dict())

    @classmethod
    def load(cls, path: Path) -> RunConfig:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise TrainingError(f"No run configuration at {path}.") from None
        except (OSError, ValueError) as exc:
            raise TrainingError(f"{path} is not valid JSON ({exc}).") from None
        if not isinstance(data, dict):
            raise TrainingError(f"{path} does not hold a run configuration.")
        return cls.from_dict(data)


def partial_stages(result: dict[str, Any]) -> dict[str, tuple[int, int]]:
    """Stages of a finished run (its ``result.json``) that stopped short of their plan, e.g. by ``--max-steps``:
    stage → (steps done, steps planned). Empty for a run that trained every planned step."""
    from studio.training.datasets import steps_per_epoch

    settings, stages = result.get("settings") or {}, result.get("stages") or {}
    items = int((result.get("dataset") or {}).get("utterances") or 0)
    out = {}
    for stage, summary in stages.items():
        if not isinstance(summary, dict) or not items:
            continue
        epochs, batch = settings.get(f"{stage}_epochs"), settings.get(f"{stage}_batch_size")
        if not isinstance(epochs, int) or not isinstance(batch, int):
            continue
        planned = epochs * steps_per_epoch(items, batch)
        done = int(summary.get("steps") or 0)
        if done < planned:
            out[stage] = (done, planned)
    return out


def read_json(path: Path) -> dict[str, Any] | None:
    """A JSON object from ``path``, or None when it is missing or unreadable."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
