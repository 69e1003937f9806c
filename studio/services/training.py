"""Training use case: start, watch, stop and resume fine-tuning jobs of a voice project.

Each job runs as ``python -m studio.training.job --config <run.json>`` in a child process (argv list, no
shell), so GPU memory is released when it ends and a crash cannot take the caller down. Everything the caller
needs is on disk under ``workspace/<name>/runs/<run_id>/`` (see :mod:`studio.training.run_layout`); the
service only adds process handles, so a new service instance (or another process) can watch old runs.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from studio.errors import DatasetError, StudioError, TrainingError
from studio.pretrained import PretrainedAssets
from studio.training.events import EventPage, TrainingEvent, read_event_page, read_events, unique_steps
from studio.training.lock import ProjectLock
from studio.training.outcome import NO_REASON, exit_reason, watch_exit
from studio.training.presets import choose_plan
from studio.training.run_layout import STAGES, RunConfig, RunPaths, new_run_id, read_json
from studio.workspace import Workspace

_LOGGER = logging.getLogger(__name__)


@dataclass
class TrainingOptions:
    """What the user chose; None means "from the preset"."""

    stages: tuple[str, ...] = STAGES
    base: str | None = None  # "v2", "v2Pro", "v2ProPlus"; None: the best base present (see base_choice)
    lora_rank: int | None = 16  # None together with full=True: full fine-tuning
    full: bool = False
    lora_alpha: float | None = None
    preset: str = "balanced"
    epochs: int | None = None  # both stages
    gpt_epochs: int | None = None
    sovits_epochs: int | None = None
    batch_size: int | None = None  # both stages
    gpt_lr: float | None = None
    sovits_lr: float | None = None
    max_steps: int | None = None
    device: str | None = None
    seed: int = 1234
    checkpoint_every: int = 50
    sample_text: str | None = None
    sample_max_tokens: int = 250
    epoch_choice: bool = True  # score every saved epoch after training (services/epoch_choice.py)


@dataclass
class RunStatus:
    run_id: str
    state: str  # "running", "done", "error", "cancelled", "interrupted" (killed without a last word), "pending"
    stage: str | None = None
    step: int | None = None
    total_steps: int | None = None
    epoch: int | None = None
    losses: dict[str, float] = field(default_factory=dict)
    eta_s: float | None = None
    message: str | None = None
    last_sample: Path | None = None

    @property
    def finished(self) -> bool:
        return self.state in ("done", "error", "cancelled", "interrupted")


@dataclass(frozen=True)
class BaseChoice:
    """Which base model version a run starts from, and why (``reason`` is a code the CLI and UI put in words):
    ``requested`` (the user named it), ``best_present`` (the best base whose files are all here),
    ``none_present`` (no complete base: v2, whose missing files training will name)."""

    version: str
    reason: str
    present: tuple[str, ...]  # every base version whose required files are all here, best first

    def describe(self) -> str:
        """English sentence for the command line."""
        if self.reason == "requested":
            return f"base {self.version} (requested)"
        if self.reason == "best_present":
            others = [v for v in self.present if v != self.version]
            also = f"; also present: {', '.join(others)}" if others else ""
            return f"base {self.version} (the best base whose files are all in pretrained/{also})"
        return f"base {self.version} (no complete base found in pretrained/)"


@dataclass
class RunOutputs:
    """A finished run's outputs: ``result`` is result.json; weights maps stage → file."""

    run_dir: Path
    result: dict[str, Any]
    weights: dict[str, Path]


class TrainingService:
    def __init__(self, workspace_root: Path | str, pretrained: PretrainedAssets, device: str = "cpu") -> None:
        self.workspace_root = Path(workspace_root)
        self.pretrained = pretrained
        self.device = device
        self._procs: dict[str, subprocess.Popen] = {}

    # ------------------------------------------------------------------------------------------ checks
    def _workspace(self, name: str) -> Workspace:
        return Workspace(name, self.workspace_root)

    def base_choice(self, requested: str | None = None) -> BaseChoice:
        """The base a run uses: ``requested`` when given, else the best one present (v2ProPlus, v2Pro, v2)."""
        from studio.pretrained import BASE_PREFERENCE, files_for

        present = tuple(v for v in BASE_PREFERENCE if self.pretrained.has_base(v))
        if requested:
            files_for(requested)  # refuses an unknown name
            return BaseChoice(requested, "requested", present)
        if present:
            return BaseChoice(present[0], "best_present", present)
        return BaseChoice("v2", "none_present", present)

    def _check_base_models(self, need_bert: bool, version: str = "v2") -> None:
        from studio.pretrained import download_command

        p = self.pretrained
        base = p.base(version)
        needed = [base.gpt, base.sovits, p.hubert_dir / "config.json"] + ([p.bert_dir] if need_bert else [])
        needed += [base.speaker_verification] if base.speaker_verification else []
        absent = [x for x in needed if not x.exists()]
        if absent:
            listing = ", ".join(str(x) for x in absent)
            raise TrainingError(
                f"Cannot train from the {version} base: files are missing: {listing}.",
                hint=f"Run `{download_command(version)}` to fetch them into {p.root}.",
                ui_hint="Open Models & Settings and press Download, or point the studio at a folder that has them.",
            )

    def dataset_seconds(self, name: str) -> tuple[float, int, bool]:
        """(seconds of audio, clips, any Chinese line) of the project's dataset list."""
        from studio.audio.io import probe_audio
        from studio.corpus import read_list

        ws = self._workspace(name)
        if not ws.dataset_list.is_file():
            raise TrainingError(
                f"The project {name!r} has no prepared dataset ({ws.dataset_list}).",
                hint="Run `studio prep` first.",
                ui_hint="Prepare the recordings in the Prepare tab first.",
            )
        seconds, clips, zh, untexted = 0.0, 0, False, 0
        for entry in read_list(ws.dataset_list, strict=False):
            try:
                seconds += probe_audio(entry.audio_path).duration_s
            except StudioError:
                continue
            clips += 1
            zh = zh or entry.language == "zh"
            untexted += not entry.text.strip()
        if clips and untexted == clips:
            raise TrainingError(
                f"None of the {clips} clip(s) of {name!r} has a transcript; training learns from audio and text "
                "together.",
                hint="Transcribe them (studio prep without --no-asr) or type the texts, then train.",
                ui_hint="Transcribe the clips in the Prepare tab, or type their texts, then train.",
            )
        return seconds, clips, zh

    # ------------------------------------------------------------------------------------------ control
    def plan(self, name: str, options: TrainingOptions) -> RunConfig:
        """The run configuration ``start`` would use (refuses too little data and missing base models)."""
        seconds, clips, zh = self.dataset_seconds(name)
        base = self.base_choice(options.base).version
        self._check_base_models(zh, base)
        device = options.device or self.device
        lora = not options.full
        try:
            plan = choose_plan(options.preset, seconds, clips, device=device, memory_gib=_gpu_gib(device), lora=lora)
        except DatasetError as exc:
            raise TrainingError(exc.message, hint=exc.hint, ui_hint=exc.ui_hint) from None
        plan = plan.with_overrides(
            gpt_epochs=options.gpt_epochs or options.epochs,
            sovits_epochs=options.sovits_epochs or options.epochs,
            gpt_batch_size=options.batch_size,
            sovits_batch_size=options.batch_size,
            gpt_lr=options.gpt_lr,
            sovits_lr=options.sovits_lr,
        )
        return RunConfig(
            name=self._workspace(name).name,
            workspace_root=str(self.workspace_root.resolve()),
            pretrained_root=str(Path(self.pretrained.root).resolve()),
            run_id=new_run_id(),
            stages=list(options.stages),
            base=base,
            lora_rank=(options.lora_rank or 16) if lora else None,
            lora_alpha=options.lora_alpha,
            preset=plan.preset,
            gpt_epochs=plan.gpt_epochs,
            gpt_batch_size=plan.gpt_batch_size,
            gpt_lr=plan.gpt_lr,
            sovits_epochs=plan.sovits_epochs,
            sovits_batch_size=plan.sovits_batch_size,
            sovits_lr=plan.sovits_lr,
            max_steps=options.max_steps,
            device=device,
            seed=options.seed,
            checkpoint_every=options.checkpoint_every,
            sample_text=options.sample_text,
            sample_max_tokens=options.sample_max_tokens,
            epoch_choice=options.epoch_choice,
        )

    def start(self, name: str, options: TrainingOptions | None = None) -> str:
        """Start a new run in a child process; returns its run id."""
        cfg = self.plan(name, options or TrainingOptions())
        self._lock(cfg.paths).acquire(os.getpid(), cfg.run_id)  # refuses a second training of the project
        cfg.paths.dir.mkdir(parents=True, exist_ok=True)
        cfg.save()
        self._spawn(cfg.paths)
        return cfg.run_id

    def resume(self, run_id: str) -> str:
        """Continue a stopped, failed or killed run from its last checkpoints."""
        paths = self._paths(run_id)
        if self._alive(paths):
            raise TrainingError(f"Run {run_id} is still running.")
        if paths.result_json.is_file():
            raise TrainingError(f"Run {run_id} has already finished.", hint="Start a new run to train more.")
        paths.stop_file.unlink(missing_ok=True)
        self._spawn(paths)
        return run_id

    def stop(self, run_id: str) -> None:
        """Ask the job to stop after the current step (it saves a checkpoint first)."""
        paths = self._paths(run_id)
        paths.stop_file.touch()
        pid = self._pid(paths)
        if pid is not None and self._alive(paths):
            try:
                os.kill(pid, signal.SIGTERM)
            except OSError:
                pass

    def wait(self, run_id: str, timeout: float | None = None, poll: float = 0.5) -> RunStatus:
        """Block until the run ends (or ``timeout`` seconds pass); returns its status."""
        end = None if timeout is None else time.monotonic() + timeout
        while True:
            status = self.status(run_id)
            if status.finished or (end is not None and time.monotonic() > end):
                return status
            time.sleep(poll)

    # ------------------------------------------------------------------------------------------ watching
    def events(self, run_id: str, since: int = 0) -> EventPage:
        """Events from number ``since``; each step once (files of older resumed runs may hold it twice)."""
        page = read_event_page(self._paths(run_id).events, since)
        return EventPage(unique_steps(page.events), page.next_since)

    def status(self, run_id: str) -> RunStatus:
        paths = self._paths(run_id)
        events = read_events(paths.events)
        starts = [i for i, e in enumerate(events) if e.kind == "start"]
        current = events[starts[-1] :] if starts else events
        alive = self._alive(paths)
        status = RunStatus(run_id, "pending" if not events and alive else "running")
        for e in current:
            _apply(status, e, paths)
        terminal = next((e for e in reversed(current) if e.terminal), None)
        if terminal is not None and terminal.kind == "interrupted" and alive:
            terminal = None  # resumed: its new start event is not written yet
        if terminal is not None:
            status.state = terminal.kind
        elif not alive:
            status.state = "interrupted" if events or paths.run_json.is_file() else "pending"
            if status.state == "interrupted":  # killed: say how, when this process started it
                proc = self._procs.get(run_id)
                status.message = exit_reason(proc.returncode) if proc is not None else NO_REASON
        return status

    def list_runs(self, name: str) -> list[RunStatus]:
        runs_dir = self._workspace(name).runs_dir
        if not runs_dir.is_dir():
            return []
        ids = sorted((p.name for p in runs_dir.iterdir() if (p / "run.json").is_file()), reverse=True)
        return [self.status(i) for i in ids]

    def latest_outputs(self, name: str) -> RunOutputs | None:
        """The newest run that finished (has result.json), or None."""
        runs_dir = self._workspace(name).runs_dir
        if not runs_dir.is_dir():
            return None
        for run_dir in sorted(runs_dir.iterdir(), reverse=True):
            result = read_json(run_dir / "result.json")
            if result:
                weights = {s: run_dir / v["weights"] for s, v in result.get("stages", {}).items()}
                return RunOutputs(run_dir, result, weights)
        return None

    def run_dir(self, run_id: str) -> Path:
        return self._paths(run_id).dir

    def epoch_report(self, run_id: str):
        """The run's stored per-epoch scores (:class:`~studio.services.epoch_choice.EpochReport`), or None."""
        from studio.services.epoch_choice import load_report

        return load_report(self._paths(run_id).dir)

    def score_epochs(self, run_id: str, on_progress=None):
        """Score a finished run's epochs now, in this process (older runs; only new epochs are measured)."""
        from studio.services.epoch_scoring import EpochScorer

        paths = self._paths(run_id)
        if self._alive(paths):
            raise TrainingError(f"Run {run_id} is still running; its epochs are scored when it finishes.")
        scorer = EpochScorer(self.pretrained, device=self.device, workspace_root=self.workspace_root)
        return scorer.score_run(paths.dir, on_progress=on_progress)

    # ------------------------------------------------------------------------------------------ processes
    def _paths(self, run_id: str) -> RunPaths:
        if not run_id or "/" in run_id or "\\" in run_id or run_id.startswith("."):
            raise TrainingError(f"Invalid run id {run_id!r}.")
        found = sorted(self.workspace_root.glob(f"*/runs/{run_id}/run.json"))
        if not found:
            raise TrainingError(f"No training run {run_id!r} under {self.workspace_root}.")
        return RunPaths(found[0].parent)

    @staticmethod
    def _lock(paths: RunPaths) -> ProjectLock:
        return ProjectLock(paths.dir.parent, paths.dir.parent.parent.name)

    def _spawn(self, paths: RunPaths) -> None:
        """Start the job process holding the project's training lock; a watcher thread records why it ended
        when it could not say so itself (killed)."""
        lock = self._lock(paths)
        lock.acquire(os.getpid(), paths.run_id)
        argv = [sys.executable, "-m", "studio.services.training_job", "--config", str(paths.run_json)]
        try:
            with open(paths.log, "ab") as log:
                proc = subprocess.Popen(
                    argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
                )
        except BaseException:
            lock.release(os.getpid())
            raise
        lock.hand_over(proc.pid, paths.run_id)
        self._procs[paths.run_id] = proc
        watch_exit(proc, paths)
        _LOGGER.info("started training job %s (pid %d)", paths.run_id, proc.pid)

    @staticmethod
    def _pid(paths: RunPaths) -> int | None:
        try:
            return int(paths.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None

    def _alive(self, paths: RunPaths) -> bool:
        proc = self._procs.get(paths.run_id)
        if proc is not None:
            return proc.poll() is None
        pid = self._pid(paths)
        if pid is None:
            return False
        try:
            os.kill(pid, 0)
        except OSError:
            return False
        return True


def _apply(status: RunStatus, e: TrainingEvent, paths: RunPaths) -> None:
    if e.stage:
        status.stage = e.stage
    if e.kind in ("step", "epoch", "stage", "stage_done"):
        status.step, status.total_steps = e.step, e.total_steps
        status.epoch = e.epoch or status.epoch
        status.losses = e.losses or status.losses
        status.eta_s = e.eta_s
    if e.kind == "sample" and e.path:
        status.last_sample = paths.dir / e.path
    if e.message:
        status.message = e.message


def _gpu_gib(device: str) -> float | None:
    if not device.startswith("cuda"):
        return None
    import torch

    if not torch.cuda.is_available():
        return None
    return torch.cuda.get_device_properties(0).total_memory / 2**30
