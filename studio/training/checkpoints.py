"""Resumable training state of one stage (``runs/<id>/checkpoints/<stage>.pt``), written atomically.

A checkpoint holds the trainable weights (adapters, or the full trainable state), every optimizer and
scheduler state, the RNG states (Python, torch CPU, CUDA) and the counters (epoch, batch within the epoch,
optimizer step), plus ``finished`` once the stage is complete. It is written to a temp file in the same
folder, fsync'ed and moved over the previous one, so a kill at any moment leaves the old or the new file,
never half of one. It is read back with ``torch.load(weights_only=True)``: only tensors and plain
containers are stored.

These files are for resuming only; final outputs are the ``*.safetensors`` next to them (run_layout.py).
"""

from __future__ import annotations

import io
import logging
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from studio.errors import TrainingError
from studio.workspace import atomic_write_bytes

_LOGGER = logging.getLogger(__name__)

CHECKPOINT_FORMAT = 1


@dataclass
class StageState:
    """Counters of a stage. ``batch`` is the number of batches of ``epoch`` already consumed."""

    epoch: int = 0  # 0-based epoch in progress
    batch: int = 0
    step: int = 0  # optimizer steps done
    finished: bool = False
    last_losses: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "epoch": self.epoch,
            "batch": self.batch,
            "step": self.step,
            "finished": self.finished,
            "last_losses": dict(self.last_losses),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StageState:
        return cls(
            int(data["epoch"]),
            int(data["batch"]),
            int(data["step"]),
            bool(data["finished"]),
            {str(k): float(v) for k, v in dict(data.get("last_losses", {})).items()},
        )


def rng_state() -> dict[str, Any]:
    version, state, gauss = random.getstate()
    out: dict[str, Any] = {
        "python": [version, list(state), gauss],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        out["cuda"] = torch.cuda.get_rng_state_all()
    return out


def set_rng_state(state: dict[str, Any]) -> None:
    version, inner, gauss = state["python"]
    random.setstate((int(version), tuple(int(v) for v in inner), gauss))
    torch.set_rng_state(state["torch"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


def save_checkpoint(
    path: Path,
    state: StageState,
    weights: dict[str, torch.Tensor],
    optimizers: dict[str, Any],
    schedulers: dict[str, Any],
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write the stage's checkpoint atomically. ``optimizers``/``schedulers`` map names to objects with
    ``state_dict()``."""
    payload = {
        "format": CHECKPOINT_FORMAT,
        "state": state.to_dict(),
        "weights": {k: v.detach().cpu() for k, v in weights.items()},
        "optimizers": {k: o.state_dict() for k, o in optimizers.items()},
        "schedulers": {k: s.state_dict() for k, s in schedulers.items()},
        "rng": rng_state(),
        "extra": extra or {},
    }
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    atomic_write_bytes(path, buffer.getvalue())
    _LOGGER.debug("checkpoint %s at step %d", path, state.step)
    return path


@dataclass
class LoadedCheckpoint:
    state: StageState
    weights: dict[str, torch.Tensor]
    optimizers: dict[str, Any]
    schedulers: dict[str, Any]
    rng: dict[str, Any]
    extra: dict[str, Any]


def load_checkpoint(path: Path) -> LoadedCheckpoint | None:
    """The checkpoint at ``path``; None when there is none. A damaged file raises :class:`TrainingError`."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
        if data.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(f"unknown checkpoint format {data.get('format')!r}")
        return LoadedCheckpoint(
            StageState.from_dict(data["state"]),
            dict(data["weights"]),
            dict(data["optimizers"]),
            dict(data["schedulers"]),
            dict(data["rng"]),
            dict(data.get("extra", {})),
        )
    except Exception as exc:  # torch raises many types for a damaged file
        raise TrainingError(
            f"The training checkpoint {path} cannot be read ({str(exc)[:120]}).",
            hint="Delete it to restart this stage from the beginning.",
        ) from None


def restore(
    loaded: LoadedCheckpoint,
    load_weights: Any,
    optimizers: dict[str, Any],
    schedulers: dict[str, Any],
) -> StageState:
    """Put a checkpoint back: ``load_weights(weights)``, optimizer/scheduler states, RNG states."""
    load_weights(loaded.weights)
    for name, opt in optimizers.items():
        opt.load_state_dict(loaded.optimizers[name])
    for name, sched in schedulers.items():
        sched.load_state_dict(loaded.schedulers[name])
    set_rng_state(loaded.rng)
    return loaded.state
