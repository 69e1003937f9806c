"""The epoch/step loop shared by both stages: resume, checkpoints, events, stop requests, step caps, samples.

A stage is a :class:`StageTrainer` (``gpt_trainer.GPTTrainer``, ``sovits_trainer.SoVITSTrainer``): it knows how
to make one optimizer step from a list of item indices; :func:`run_stage` owns everything around it.
Batches of an epoch are a pure function of (seed, epoch), so resuming at (epoch, batch) with the RNG states
of the checkpoint continues the very same run.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

import torch

from studio.training.checkpoints import StageState, load_checkpoint, restore, save_checkpoint
from studio.training.events import EventWriter
from studio.training.run_layout import RunConfig, RunPaths

_LOGGER = logging.getLogger(__name__)


class TrainingCancelled(Exception):
    """Raised inside the loop when a stop was requested; the checkpoint is already saved."""


class Precision:
    """Autocast on CUDA (bf16 where supported, else fp16 with a gradient scaler); float32 on CPU."""

    def __init__(self, device: torch.device, mode: str = "auto") -> None:
        self.device = device
        self.dtype: torch.dtype | None = None
        if mode == "auto" and device.type == "cuda":
            self.dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        self.scaler = torch.amp.GradScaler("cuda") if self.dtype == torch.float16 else None

    def autocast(self):
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    def backward_step(self, loss: torch.Tensor, optimizer: torch.optim.Optimizer) -> None:
        if self.scaler is None:
            loss.backward()
            optimizer.step()
        else:
            self.scaler.scale(loss).backward()
            self.scaler.step(optimizer)

    def update(self) -> None:
        if self.scaler is not None:
            self.scaler.update()

    @property
    def name(self) -> str:
        return "fp32" if self.dtype is None else str(self.dtype).replace("torch.", "")


class StageTrainer:
    """What :func:`run_stage` needs from a stage. Subclasses set the attributes and implement the methods."""

    stage: str
    epochs: int
    batch_size: int
    optimizers: dict[str, torch.optim.Optimizer]
    schedulers: dict[str, Any]

    def lengths(self) -> list[int]:  # pragma: no cover - interface
        raise NotImplementedError

    def train_step(self, indices: list[int]) -> dict[str, float]:  # pragma: no cover - interface
        raise NotImplementedError

    def end_epoch(self) -> None:
        for sched in self.schedulers.values():
            sched.step()

    def lr(self) -> float:
        return float(next(iter(self.optimizers.values())).param_groups[0]["lr"])

    def trainable_state(self) -> dict[str, torch.Tensor]:  # pragma: no cover - interface
        raise NotImplementedError

    def output_weights(self) -> dict[str, torch.Tensor]:
        """What the stage's output file holds (also saved after each epoch: see epoch_weights.py)."""
        return self.trainable_state()

    def load_trainable_state(self, state: dict[str, torch.Tensor]) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def write_outputs(self, paths: RunPaths, state: StageState) -> dict[str, Any]:  # pragma: no cover
        raise NotImplementedError

    def sample(self, path) -> bool:  # pragma: no cover - interface
        """Write a short sample WAV with the current weights; False when no sample could be made."""
        return False


def planned_steps(trainer: StageTrainer, max_steps: int | None) -> int:
    from studio.training.datasets import steps_per_epoch

    total = trainer.epochs * steps_per_epoch(len(trainer.lengths()), trainer.batch_size)
    return min(total, max_steps) if max_steps else total


def run_stage(
    trainer: StageTrainer,
    cfg: RunConfig,
    emit: EventWriter,
    should_stop: Callable[[], bool],
) -> dict[str, Any]:
    """Train one stage to the end (or resume it); returns the stage summary written to ``<stage>_result.json``."""
    from studio.training.datasets import epoch_batches
    from studio.workspace import atomic_write_json

    paths, stage = cfg.paths, trainer.stage
    ckpt_path = paths.checkpoint(stage)
    loaded = load_checkpoint(ckpt_path)
    state = StageState()
    if loaded is not None:
        state = restore(loaded, trainer.load_trainable_state, trainer.optimizers, trainer.schedulers)
        _LOGGER.info("resuming %s at epoch %d batch %d (step %d)", stage, state.epoch, state.batch, state.step)
    total = planned_steps(trainer, cfg.max_steps)
    lengths = trainer.lengths()
    emit_new = _skip_replayed(emit, paths.events, stage)  # also after a kill before the first checkpoint

    def save(kind: str | None = None) -> None:
        save_checkpoint(ckpt_path, state, trainer.trainable_state(), trainer.optimizers, trainer.schedulers)
        if kind:
            emit(
                "checkpoint",
                stage=stage,
                epoch=state.epoch,
                step=state.step,
                path=str(ckpt_path.relative_to(paths.dir)),
            )

    if state.finished and paths.stage_result(stage).is_file():
        emit("stage_done", stage=stage, step=state.step, total_steps=total, message="already finished")
        return _read_summary(paths.stage_result(stage))
    emit(
        "stage",
        stage=stage,
        epoch=state.epoch + 1,
        step=state.step,
        total_steps=total,
        message=f"{trainer.epochs} epoch(s), batch size {trainer.batch_size}, resumed"
        if loaded
        else f"{trainer.epochs} epoch(s), batch size {trainer.batch_size}",
    )
    t0, done_here, items_here = time.monotonic(), 0, 0
    sampled_epoch, last_sample = -1, None
    while state.epoch < trainer.epochs and state.step < total:
        batches = epoch_batches(lengths, trainer.batch_size, cfg.seed, state.epoch)
        while state.batch < len(batches) and state.step < total:
            if should_stop():
                save("stopped")
                raise TrainingCancelled
            indices = batches[state.batch]
            losses = trainer.train_step(indices)
            state.batch += 1
            state.step += 1
            state.last_losses = losses
            done_here += 1
            items_here += len(indices)
            elapsed = max(time.monotonic() - t0, 1e-6)
            emit_new(
                "step",
                stage=stage,
                epoch=state.epoch + 1,
                step=state.step,
                total_steps=total,
                losses=losses,
                lr=trainer.lr(),
                samples_per_s=round(items_here / elapsed, 3),
                eta_s=round((total - state.step) * elapsed / done_here, 1),
            )
            if cfg.checkpoint_every and state.step % cfg.checkpoint_every == 0:
                save("checkpoint")
        if state.batch >= len(batches):
            trainer.end_epoch()
            state.epoch += 1
            state.batch = 0
            emit_new(
                "epoch", stage=stage, epoch=state.epoch, step=state.step, total_steps=total, losses=state.last_losses
            )
            last_sample = _sample(trainer, paths, state.epoch, emit_new) or last_sample
            sampled_epoch = state.epoch
            _save_epoch(trainer, cfg, state.epoch)
            save("checkpoint")
    if sampled_epoch != state.epoch + 1 and state.batch > 0:  # stopped inside an epoch by the step cap
        last_sample = _sample(trainer, paths, state.epoch + 1, emit_new) or last_sample
        _save_epoch(trainer, cfg, state.epoch + 1)
    if done_here >= 1:  # remember this computer's speed for the next estimate (a running mean smooths one short run)
        from studio.training.estimate import record_speed

        record_speed(cfg.workspace_root, cfg.device, stage, items_here / max(time.monotonic() - t0, 1e-6))
    summary = trainer.write_outputs(paths, state)
    summary.update(
        epochs=state.epoch + (1 if state.batch else 0),
        steps=state.step,
        final_loss=state.last_losses,
        sample=last_sample or _latest_sample(paths, trainer.stage),
    )
    atomic_write_json(paths.stage_result(stage), summary)
    state.finished = True
    save()
    emit(
        "stage_done",
        stage=stage,
        step=state.step,
        total_steps=total,
        losses=state.last_losses,
        path=summary.get("weights"),
    )
    return summary


def _skip_replayed(emit: EventWriter, events_path, stage: str) -> Callable[..., Any]:
    """``emit`` for a resumed stage: the steps after the last checkpoint are trained again (same batches, same
    RNG), but their step/epoch/sample events were logged before the kill, so they are not written twice."""
    from studio.training.events import read_events

    logged = read_events(events_path)
    last_step = max((e.step or 0 for e in logged if e.kind == "step" and e.stage == stage), default=0)
    seen = {(e.kind, e.epoch) for e in logged if e.kind in ("epoch", "sample") and e.stage == stage}

    def emit_new(kind: str, **fields: Any) -> Any:
        if kind == "step" and (fields.get("step") or 0) <= last_step:
            return None
        if kind in ("epoch", "sample") and (kind, fields.get("epoch")) in seen:
            return None
        return emit(kind, **fields)

    return emit_new


def _sample(trainer: StageTrainer, paths: RunPaths, epoch: int, emit: EventWriter) -> str | None:
    path = paths.sample(trainer.stage, epoch)
    try:
        made = trainer.sample(path)
    except Exception as exc:  # a sample must never end a training run
        _LOGGER.warning("could not synthesize the %s epoch %d sample: %s", trainer.stage, epoch, exc)
        emit("log", stage=trainer.stage, epoch=epoch, message=f"sample failed: {exc}")
        return None
    if not made:
        return None
    rel = str(path.relative_to(paths.dir))
    emit("sample", stage=trainer.stage, epoch=epoch, path=rel)
    return rel


def _save_epoch(trainer: StageTrainer, cfg: RunConfig, epoch: int) -> None:
    """Keep this epoch's weights for choosing the best epoch later (before the checkpoint that passes it)."""
    from studio.training.epoch_weights import save_epoch_weights

    save_epoch_weights(cfg.paths, trainer.stage, epoch, trainer.output_weights(), cfg.lora)


def _latest_sample(paths: RunPaths, stage: str) -> str | None:
    found = sorted(paths.samples_dir.glob(f"{stage}_e*.wav"), key=lambda p: int(p.stem.rsplit("_e", 1)[1]))
    return str(found[-1].relative_to(paths.dir)) if found else None


def _read_summary(path) -> dict[str, Any]:
    import json

    return json.loads(path.read_text(encoding="utf-8"))
