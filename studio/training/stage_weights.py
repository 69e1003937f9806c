"""The weights a finished fine-tuning stage writes, and applying them to a base model again.

Both stages (GPT and SoVITS) save their trainable tensors as ``<stage>_lora|full.safetensors`` in the run
folder and describe them in the stage summary (``mode``, ``weights``, ``lora``); loading merges LoRA
adapters into the base model or loads the full weights over it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from studio.models.lora import LoRAConfig, LoRATargets, add_lora, load_lora_state_dict
from studio.training.run_layout import RunConfig, RunPaths


def stage_lora_config(cfg: RunConfig, targets: LoRATargets) -> LoRAConfig:
    """The adapters of a LoRA run: the run's rank, alpha defaulting to the rank."""
    rank = int(cfg.lora_rank or 0)
    return LoRAConfig(rank=rank, alpha=float(cfg.lora_alpha or rank), targets=targets)


def write_stage_weights(
    paths: RunPaths, stage: str, cfg: RunConfig, weights: dict[str, torch.Tensor], targets: LoRATargets
) -> dict[str, Any]:
    """Save ``weights`` (as float32) atomically; the summary fields that name the file and the adapters."""
    from safetensors.torch import save

    from studio.workspace import atomic_write_bytes

    out = paths.weights(stage, cfg.lora)
    tensors = {k: v.detach().float().cpu().contiguous() for k, v in weights.items()}
    atomic_write_bytes(out, save(tensors))
    return {
        "mode": "lora" if cfg.lora else "full",
        "weights": out.name,
        "lora": stage_lora_config(cfg, targets).to_dict() if cfg.lora else None,
    }


def apply_stage_weights(
    model: torch.nn.Module, run_dir: Path, summary: dict[str, Any] | None, *, strict: bool = True
) -> torch.nn.Module:
    """``model`` with a finished stage's weights applied (adapters merged); unchanged without a summary."""
    if summary:
        from safetensors.torch import load_file

        from studio.models.lora import merge_lora

        weights = load_file(str(Path(run_dir) / summary["weights"]))
        if summary["mode"] == "lora":
            add_lora(model, LoRAConfig.from_dict(summary["lora"]))
            load_lora_state_dict(model, weights)
            merge_lora(model)
        else:
            model.load_state_dict(weights, strict=strict)
    return model
