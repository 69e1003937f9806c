"""Training presets: batch sizes, epochs and learning rates chosen from the amount of data and the device.

``fast`` (a quick first voice), ``balanced`` (default) and ``best`` (more epochs). Upstream's WebUI defaults
(SPEC §9.3–9.4: GPT 15 epochs, SoVITS 8; batch = GPU GiB / 2) are the "best" full-fine-tuning figures; LoRA
adapters learn faster per step, so they use higher learning rates and fewer epochs. Every field can be
overridden (``TrainingPlan.with_overrides``). Less than 20 s of data is refused.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace

from studio.errors import DatasetError

MIN_SECONDS = 20.0
PRESETS = ("fast", "balanced", "best")

# per preset: (GPT epochs, SoVITS epochs) for about one minute of data
_EPOCHS = {"fast": (6, 3), "balanced": (12, 6), "best": (20, 10)}
_LR = {  # (lora, full)
    "gpt": (1e-3, 2e-5),
    "sovits": (2e-4, 1e-4),
}


@dataclass(frozen=True)
class TrainingPlan:
    preset: str
    gpt_epochs: int
    gpt_batch_size: int
    gpt_lr: float
    sovits_epochs: int
    sovits_batch_size: int
    sovits_lr: float

    def with_overrides(self, **overrides: float | int | None) -> TrainingPlan:
        """Replace the fields given (None values are ignored)."""
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})

    def to_dict(self) -> dict:
        return asdict(self)


def check_data_amount(seconds: float, n_clips: int, skipped: Sequence[str] = ()) -> None:
    """Refuse less than ``MIN_SECONDS``; ``skipped`` ("<clip>: reason") says why clips were left out, so a
    dataset that is all unusable (no transcripts, say) is refused for that reason, not for its length."""
    if seconds >= MIN_SECONDS and n_clips >= 1:
        return
    if skipped:
        reasons = Counter(item.split(": ", 1)[-1] for item in skipped)
        common, count = reasons.most_common(1)[0]
        raise DatasetError(
            f"{len(skipped)} clip(s) cannot be used for training, leaving {seconds:.1f} s of usable audio "
            f"(at least {MIN_SECONDS:g} s are needed). Most common reason ({count} clip(s)): {common}",
            hint="Fix the clips in the Prepare tab (or prepare the recordings again), then start training.",
        )
    raise DatasetError(
        f"The dataset holds {seconds:.1f} s of usable audio in {n_clips} clip(s); training needs at least "
        f"{MIN_SECONDS:g} s.",
        hint="Add more recordings (one minute or more works best) and prepare the dataset again.",
    )


def choose_plan(
    preset: str,
    seconds: float,
    n_clips: int,
    *,
    device: str = "cpu",
    memory_gib: float | None = None,
    lora: bool = True,
) -> TrainingPlan:
    """The plan for ``seconds`` of audio in ``n_clips`` clips on ``device`` with ``memory_gib`` of memory
    (GPU memory on CUDA; None: a modest default). Raises :class:`DatasetError` for less than 20 s."""
    if preset not in PRESETS:
        raise DatasetError(f"Unknown training preset {preset!r}.", hint=f"Choose one of {', '.join(PRESETS)}.")
    check_data_amount(seconds, n_clips)
    gpt_epochs, sovits_epochs = _EPOCHS[preset]
    # More data → fewer passes over it (the number of steps grows with the data anyway).
    scale = min(1.0, max(0.25, math.sqrt(60.0 / max(seconds, 1.0))))
    gpt_epochs = max(2, round(gpt_epochs * scale))
    sovits_epochs = max(1, round(sovits_epochs * scale))
    if memory_gib is None:
        memory_gib = 8.0 if device.startswith("cuda") else 4.0
    if device.startswith("cuda"):
        gpt_bs = int(memory_gib // 2)  # upstream's rule of thumb
        sovits_bs = int(memory_gib // (2 if lora else 3))
    else:  # CPU: small batches keep a step short enough to see progress
        gpt_bs, sovits_bs = 4, 2
    cap = max(1, n_clips // 2)  # at least two steps per epoch
    gpt_bs = max(1, min(gpt_bs, 32, cap))
    sovits_bs = max(1, min(sovits_bs, 16, cap))
    i = 0 if lora else 1
    return TrainingPlan(
        preset=preset,
        gpt_epochs=gpt_epochs,
        gpt_batch_size=gpt_bs,
        gpt_lr=_LR["gpt"][i],
        sovits_epochs=sovits_epochs,
        sovits_batch_size=sovits_bs,
        sovits_lr=_LR["sovits"][i],
    )
