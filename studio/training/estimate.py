"""How long a training run will take, before it starts and while it runs (all stages, not just the current one).

Speeds are items (clips) per second per stage and device kind. Every finished stage records the speed it
measured in ``<workspace root>/.training_speed.json``, so the second estimate on a computer is based on that
computer; before any run, built-in figures for a typical CPU / GPU are used and the estimate says so.
Feature extraction is counted per clip that is not cached yet.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from studio.workspace import atomic_write_json

SPEED_FILE = ".training_speed.json"
# rough items/s when nothing was measured here yet (LoRA, the presets' batch sizes)
DEFAULT_SPEED = {"cpu": {"gpt": 3.0, "sovits": 0.5}, "cuda": {"gpt": 40.0, "sovits": 8.0}}
FEATURE_SECONDS_PER_CLIP = {"cpu": 1.5, "cuda": 0.2}


def device_kind(device: str) -> str:
    return "cuda" if str(device).startswith("cuda") else "cpu"


@dataclass(frozen=True)
class TimeEstimate:
    seconds: float
    per_stage: dict[str, float]
    measured: bool  # True: from speeds measured on this computer; False: built-in rough figures


def load_speeds(workspace_root: Path) -> dict[str, dict[str, float]]:
    try:
        data = json.loads((Path(workspace_root) / SPEED_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def record_speed(workspace_root: Path, device: str, stage: str, items_per_s: float) -> None:
    """Remember a stage's measured speed on this computer (a running mean that favours recent runs)."""
    if not math.isfinite(items_per_s) or items_per_s <= 0:
        return
    speeds = load_speeds(workspace_root)
    kind = speeds.setdefault(device_kind(device), {})
    old = kind.get(stage)
    kind[stage] = round(items_per_s if not old else 0.5 * old + 0.5 * items_per_s, 4)
    atomic_write_json(Path(workspace_root) / SPEED_FILE, speeds)


def stage_speed(workspace_root: Path, device: str, stage: str) -> tuple[float, bool]:
    """(items/s, measured here?) of ``stage`` on ``device``."""
    kind = device_kind(device)
    measured = load_speeds(workspace_root).get(kind, {}).get(stage)
    if isinstance(measured, (int, float)) and measured > 0:
        return float(measured), True
    return DEFAULT_SPEED[kind][stage], False


def estimate_run(
    workspace_root: Path,
    device: str,
    clips: int,
    stage_epochs: dict[str, int],
    *,
    uncached_clips: int | None = None,
    max_steps: dict[str, int] | None = None,
    batch_sizes: dict[str, int] | None = None,
) -> TimeEstimate:
    """Time for feature extraction of ``uncached_clips`` (default: all) plus every stage in ``stage_epochs``."""
    per_stage = {
        "features": FEATURE_SECONDS_PER_CLIP[device_kind(device)]
        * (clips if uncached_clips is None else uncached_clips)
    }
    measured = True
    for stage, epochs in stage_epochs.items():
        speed, here = stage_speed(workspace_root, device, stage)
        items = epochs * clips
        if max_steps and max_steps.get(stage) and batch_sizes:
            items = min(items, max_steps[stage] * batch_sizes.get(stage, 1))
        per_stage[stage] = items / speed
        measured = measured and here
    return TimeEstimate(sum(per_stage.values()), per_stage, measured)
