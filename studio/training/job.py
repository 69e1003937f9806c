"""A training job: ``python -m studio.training.job --config runs/<id>/run.json``, run in a child process.

Steps: features (cached) → GPT stage → SoVITS stage (those requested) → ``result.json``. Progress goes to
``events.jsonl`` only (see :mod:`studio.training.events`). The job stops cleanly — checkpoint, then a
``cancelled`` event — when the ``STOP`` file appears in the run folder or on SIGTERM. Starting it again on the
same run.json resumes from the last checkpoints (also after ``kill -9``).

Exit codes: 0 done, 1 a user-fixable problem (``error`` event with the message), 2 an unexpected crash
(``error`` event; the traceback is in job.log), 3 cancelled.
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from studio.errors import StudioError, TrainingError
from studio.pretrained import BasePaths, PretrainedAssets, sha256_of
from studio.training.events import EventWriter
from studio.training.lock import ProjectLock
from studio.training.loop import TrainingCancelled, run_stage
from studio.training.outcome import OUTCOMES, WHY, crash_message, remove_stale_temp
from studio.training.run_layout import RESULT_FORMAT, RunConfig, read_json
from studio.workspace import atomic_write_json

_LOGGER = logging.getLogger(__name__)

EXIT_DONE, EXIT_USER_ERROR, EXIT_CRASH, EXIT_CANCELLED = 0, 1, 2, 3


def resolve_device(name: str) -> torch.device:
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise TrainingError(
            "CUDA was requested but no NVIDIA GPU is available.",
            hint="Train with --device cpu.",
            ui_hint="Restart the studio without choosing a GPU so that it trains on the CPU, or check the NVIDIA driver.",
        )
    return torch.device(name)


def file_record(path: Path) -> dict[str, Any]:
    return {"path": str(path), "sha256": sha256_of(path), "size": path.stat().st_size}


class _StopWatch:
    """True once SIGTERM arrived or the STOP file exists."""

    def __init__(self, stop_file: Path) -> None:
        self.stop_file, self.signalled = stop_file, False

    def handler(self, signum, frame) -> None:  # noqa: ARG002 - signal signature
        self.signalled = True

    def __call__(self) -> bool:
        return self.signalled or self.stop_file.exists()


class _Models:
    """Models used only for the epoch samples, loaded once and on demand."""

    def __init__(self, cfg: RunConfig, base: BasePaths, device: torch.device) -> None:
        self.cfg, self.base, self.device = cfg, base, device
        self.gpt = self.sovits = None

    def base_sovits(self):
        if self.sovits is None:
            from studio.models.sovits import load_sovits

            self.sovits = load_sovits(self.base.sovits, device=self.device).model.eval()
        return self.sovits

    def trained_gpt(self, summary: dict[str, Any] | None):
        if self.gpt is None:
            from studio.training.gpt_trainer import load_trained_gpt

            self.gpt = load_trained_gpt(self.base.gpt, self.cfg.paths.dir, summary, self.device)
        return self.gpt


def run_job(cfg: RunConfig, emit: EventWriter, should_stop) -> dict[str, Any]:
    from studio.text.user_lexicon import load_lexicon
    from studio.training.datasets import load_utterances
    from studio.training.features import extract_features
    from studio.training.presets import check_data_amount
    from studio.training.samples import sample_spec, synthesize_sample
    from studio.workspace import PRONUNCIATIONS_FILE

    device = resolve_device(cfg.device)
    pretrained = PretrainedAssets(Path(cfg.pretrained_root))
    base = pretrained.base(cfg.base)
    sv = [base.speaker_verification] if base.speaker_verification else []
    pretrained.require([base.gpt, base.sovits, pretrained.hubert_dir, *sv], version=cfg.base)
    emit("stage", stage="features", message=f"extracting features (base {cfg.base})")
    lexicon = load_lexicon(Path(cfg.workspace_root) / PRONUNCIATIONS_FILE)
    features = extract_features(
        cfg.workspace,
        pretrained,
        device=str(device),
        lexicon=lexicon,
        base=base,
        on_progress=lambda done, total, name: emit(
            "step", stage="features", step=done, total_steps=total, message=name
        ),
    )
    check_data_amount(features.seconds, len(features.items), features.skipped)
    utterances = load_utterances(features)
    language = features.main_language
    emit(
        "log",
        stage="features",
        message=f"{len(utterances)} clips, {features.seconds:.1f} s, {language} "
        f"({features.computed} computed, {features.reused} reused, {len(features.skipped)} skipped)",
    )
    bert = None
    if language == "zh" and pretrained.bert_dir.is_dir():
        from studio.models.text_features import ChineseBertFeatures

        bert = ChineseBertFeatures(pretrained.bert_dir, device=device)
    spec = sample_spec(utterances, language, cfg.sample_text, cfg.seed, cfg.sample_max_tokens, bert)
    models = _Models(cfg, base, device)
    summaries: dict[str, Any] = {}
    for index, stage in enumerate(cfg.stages):
        torch.manual_seed(cfg.seed + index)
        random.seed(cfg.seed + index)
        if stage == "gpt":
            from studio.training.gpt_trainer import GPTTrainer

            trainer = GPTTrainer(
                cfg,
                base.gpt,
                utterances,
                device,
                sample_fn=lambda gpt, _, path: synthesize_sample(spec, gpt, models.base_sovits(), path),
            )
            summaries["gpt"] = run_stage(trainer, cfg, emit, should_stop)
            summaries["gpt"]["base"] = file_record(base.gpt)
            models.gpt = trainer.model
        else:
            from studio.training.sovits_trainer import SoVITSTrainer

            def sovits_sample(_, sovits, path):
                return synthesize_sample(spec, models.trained_gpt(summaries.get("gpt")), sovits, path)

            trainer = SoVITSTrainer(
                cfg,
                base.sovits,
                base.discriminator,
                utterances,
                device,
                sample_fn=sovits_sample,
            )
            summaries["sovits"] = run_stage(trainer, cfg, emit, should_stop)
            summaries["sovits"]["base"] = file_record(base.sovits)
        del trainer
    result = {
        "format": RESULT_FORMAT,
        "name": cfg.name,
        "run_id": cfg.run_id,
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "language": language,
        "dataset": {"utterances": len(utterances), "seconds": round(features.seconds, 3)},
        "settings": cfg.to_dict(),
        "stages": summaries,
    }
    atomic_write_json(cfg.paths.result_json, result)
    return result


AfterTraining = Callable[[RunConfig, EventWriter, Callable[[], bool]], None]


def main(argv: list[str] | None = None, after_training: AfterTraining | None = None) -> int:
    """Run the job of ``--config``. ``after_training(cfg, emit, should_stop)`` runs once ``result.json`` is
    written and before the ``done`` event (a last stage the service layer supplies: training must not import
    it); its failure is logged as an event and never undoes the finished training."""
    parser = argparse.ArgumentParser(prog="python -m studio.training.job", description="Run one training job.")
    parser.add_argument("--config", required=True, type=Path, help="the run's run.json")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        cfg = RunConfig.load(args.config)
    except StudioError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    paths = cfg.paths
    emit = EventWriter(paths.events)
    lock = ProjectLock(cfg.workspace.runs_dir, cfg.name)
    try:
        lock.acquire(os.getpid(), cfg.run_id)
    except TrainingError as exc:
        emit("error", message=str(exc))
        return EXIT_USER_ERROR
    stop = _StopWatch(paths.stop_file)
    signal.signal(signal.SIGTERM, stop.handler)
    paths.pid_file.write_text(str(os.getpid()))
    stale = remove_stale_temp(paths)
    resumed = any(paths.checkpoint(s).is_file() for s in cfg.stages)
    emit("start", message=f"{'resuming' if resumed else 'starting'} run {cfg.run_id} on {cfg.device}")
    if stale:
        emit("log", message=f"removed {len(stale)} half-written file(s) left by the previous attempt")
    try:
        run_job(cfg, emit, stop)
        if after_training is not None:
            _after(after_training, cfg, emit, stop)
        emit("done", path=paths.result_json.name)
        return EXIT_DONE
    except TrainingCancelled:
        who = WHY["user"] if paths.stop_file.exists() else WHY["sigterm"]
        emit("cancelled", message=OUTCOMES["stopped"].format(why=who))
        return EXIT_CANCELLED
    except StudioError as exc:
        emit("error", message=str(exc))
        return EXIT_USER_ERROR
    except Exception as exc:
        _LOGGER.exception("training crashed")
        emit("error", message=crash_message(exc))
        return EXIT_CRASH
    finally:
        lock.release(os.getpid())
        paths.stop_file.unlink(missing_ok=True)
        try:
            if paths.pid_file.read_text().strip() == str(os.getpid()):
                paths.pid_file.unlink()
        except OSError:
            pass


def _after(hook: AfterTraining, cfg: RunConfig, emit: EventWriter, should_stop: Callable[[], bool]) -> None:
    try:
        hook(cfg, emit, should_stop)
    except Exception as exc:  # the trained voice is saved: a failing last stage must not turn it into an error
        _LOGGER.exception("the step after training failed")
        emit("log", message=f"after training: {type(exc).__name__}: {exc}")


def stage_summary(run_dir: Path, stage: str) -> dict[str, Any] | None:
    return read_json(Path(run_dir) / f"{stage}_result.json")


if __name__ == "__main__":
    sys.exit(main())
