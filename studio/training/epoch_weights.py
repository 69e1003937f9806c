"""The weights of every finished epoch: ``runs/<id>/epochs/<stage>_e<N>.safetensors``.

The resumable checkpoint (``checkpoints/<stage>.pt``) is replaced after each epoch, so on its own a run keeps
only its last weights. Choosing the best epoch by listening (``studio.services.epoch_choice``) needs the
earlier ones too, so the loop writes, after each epoch, exactly what the stage's final output file would hold
at that moment (``StageTrainer.output_weights``): the adapters in LoRA mode (a few MB, float32, the same keys
as ``<stage>_lora.safetensors``), or the whole model in full mode — stored as float16 there to halve the disk
cost (about 150 MB per GPT epoch at full size). The last epoch's weights are also the stage's own output file,
which stays float32 and is what callers use for it.

Each file is written atomically, so a kill leaves the previous epochs intact; a resumed run overwrites the
epoch it redoes.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch

from studio.training.run_layout import RunPaths

EPOCHS_DIR = "epochs"
_NAME = re.compile(r"^(gpt|sovits)_e(\d+)\.safetensors$")


def epoch_weights_path(paths: RunPaths, stage: str, epoch: int) -> Path:
    return paths.dir / EPOCHS_DIR / f"{stage}_e{int(epoch)}.safetensors"


def save_epoch_weights(paths: RunPaths, stage: str, epoch: int, weights: dict[str, torch.Tensor], lora: bool) -> Path:
    """Write one epoch's output weights atomically (float32 adapters, or the full model as float16)."""
    from safetensors.torch import save

    from studio.workspace import atomic_write_bytes

    dtype = torch.float32 if lora else torch.float16
    tensors = {
        k: (v.detach().to(dtype) if v.is_floating_point() else v.detach()).cpu().contiguous()
        for k, v in weights.items()
    }
    return atomic_write_bytes(epoch_weights_path(paths, stage, epoch), save(tensors))


def saved_epochs(paths: RunPaths, stage: str) -> dict[int, Path]:
    """Epoch number (1-based) → weights file, for every epoch of ``stage`` saved in the run folder."""
    folder = paths.dir / EPOCHS_DIR
    found: dict[int, Path] = {}
    if folder.is_dir():
        for path in folder.iterdir():
            match = _NAME.match(path.name)
            if match and match.group(1) == stage:
                found[int(match.group(2))] = path
    return dict(sorted(found.items()))
