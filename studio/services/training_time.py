"""Training time for people: an estimate before a run starts, and the time left of a running run over every
stage still to come (the current stage's own ETA alone reads "0 s left" with the SoVITS stage still ahead).

Built on :mod:`studio.training.estimate` (speeds measured on this computer, else rough built-in figures).
"""

from __future__ import annotations

from typing import Any

from studio.training.estimate import TimeEstimate, estimate_run, stage_speed
from studio.training.run_layout import RunConfig


def _epochs(cfg: RunConfig) -> dict[str, int]:
    return {s: cfg.gpt_epochs if s == "gpt" else cfg.sovits_epochs for s in cfg.stages}


def _batches(cfg: RunConfig) -> dict[str, int]:
    return {"gpt": cfg.gpt_batch_size, "sovits": cfg.sovits_batch_size}


def estimate_start(service: Any, name: str, options: Any) -> tuple[RunConfig, TimeEstimate]:
    """The plan ``service.start(name, options)`` would use and how long it should take."""
    _, clips, _ = service.dataset_seconds(name)
    cfg = service.plan(name, options)
    steps = {s: cfg.max_steps for s in cfg.stages} if cfg.max_steps else None
    estimate = estimate_run(
        service.workspace_root, cfg.device, clips, _epochs(cfg), max_steps=steps, batch_sizes=_batches(cfg)
    )
    return cfg, estimate


def time_left(service: Any, run_id: str, events: list) -> float | None:
    """Seconds left of a running run: the current stage's ETA plus every later stage; None before it is known."""
    from studio.errors import StudioError

    last = next((e for e in reversed(events) if e.kind == "step" and e.eta_s is not None), None)
    try:
        cfg = RunConfig.load(service.run_dir(run_id) / "run.json")
    except StudioError:  # no readable plan: the current stage's own estimate is all there is
        return last.eta_s if last is not None else None
    clips = next((e.total_steps for e in reversed(events) if e.stage == "features" and e.total_steps), None)
    current = next((e for e in reversed(events) if e.kind == "step" and e.stage in cfg.stages), None)
    if clips is None:
        return last.eta_s if last is not None else None
    later = list(cfg.stages)
    left = 0.0
    if current is not None:
        later = later[later.index(current.stage) + 1 :]
        left = float(current.eta_s or 0.0)
    else:
        left = estimate_run(service.workspace_root, cfg.device, clips, {}).seconds  # features still running
    epochs, batches = _epochs(cfg), _batches(cfg)
    for stage in later:
        speed, _ = stage_speed(service.workspace_root, cfg.device, stage)
        items = epochs[stage] * clips
        if cfg.max_steps:
            items = min(items, cfg.max_steps * batches[stage])
        left += items / speed
    return left


# ---- the user's last choice of preset, per project (so the Train tab shows it again after a reload) ----------
PREFS_FILE = "train_choices.json"


def saved_preset(service: Any, name: str) -> str | None:
    import json

    from studio.training.presets import PRESETS

    try:
        data = json.loads((service.workspace_root / name / PREFS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    preset = data.get("preset") if isinstance(data, dict) else None
    return preset if preset in PRESETS else None


def save_preset(service: Any, name: str, preset: str) -> None:
    from studio.training.presets import PRESETS
    from studio.workspace import Workspace, atomic_write_json

    folder = Workspace(name, service.workspace_root).dir
    if preset in PRESETS and folder.is_dir():
        atomic_write_json(folder / PREFS_FILE, {"preset": preset})
