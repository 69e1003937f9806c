"""The training job's entry point: ``python -m studio.services.training_job --config runs/<id>/run.json``.

:mod:`studio.training.job` trains; this module adds the last stage that needs the service layer (which the
training package must not import): scoring every saved epoch by listening
(:mod:`studio.services.epoch_choice`), with progress as ``epochs`` events in ``events.jsonl``, unless the run
was started with ``epoch_choice`` off (``studio train --no-epoch-choice``).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from studio.training.events import EventWriter
from studio.training.run_layout import RunConfig

STAGE = "epochs"


def score_after_training(cfg: RunConfig, emit: EventWriter, should_stop: Callable[[], bool]) -> None:
    """Score the finished run's epochs (skipped when the run asked not to)."""
    if not cfg.epoch_choice:
        return
    from studio.pretrained import PretrainedAssets
    from studio.services.epoch_choice import REPORT_FILE
    from studio.services.epoch_scoring import EpochScorer

    emit("stage", stage=STAGE, message="comparing the epochs by listening to them")
    assets = PretrainedAssets(Path(cfg.pretrained_root))
    scorer = EpochScorer(assets, device=cfg.device, workspace_root=Path(cfg.workspace_root))  # its Whisper choice

    def progress(done: int, total: int, message: str) -> None:
        emit("step", stage=STAGE, step=done, total_steps=total, message=message)

    report = scorer.score_run(cfg.paths.dir, on_progress=progress, should_stop=should_stop)
    message = f"recommended epoch {report.recommended}: {report.reason.english()}"
    emit("stage_done", stage=STAGE, path=REPORT_FILE, message=message)


def main(argv: list[str] | None = None) -> int:
    from studio.training.job import main as job_main

    return job_main(argv, after_training=score_after_training)


if __name__ == "__main__":
    sys.exit(main())
