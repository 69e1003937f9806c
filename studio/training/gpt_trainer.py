"""Fine-tuning the text-to-semantic GPT (SPEC §9.3), with LoRA adapters (default) or fully.

Loss: teacher-forced cross-entropy summed over the targets (:func:`text2semantic_loss`) **with the padding
mask fixed**: upstream pads phones on the right but masks them as if padded on the left, so a shorter item
in a batch loses sight of its first phones; we mask the real padding, and each item's loss no longer depends
on its batch mates. The reported ``loss`` is the per-target mean, ``top3_acc`` the top-3 accuracy.

Optimiser: AdamW (betas 0.9/0.95 as upstream's ScaledAdam) with a short linear warm-up and a cosine decay to
10 % — upstream's ScaledAdam with a learning rate locked at 0.002 is tied to its sum-of-squares scaling;
AdamW at the preset's rate is the usual choice for adapters and for full fine-tuning alike.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import torch

from studio.models.lora import (
    GPT_DEFAULT_TARGETS,
    LoRAConfig,
    add_lora,
    load_lora_state_dict,
    lora_state_dict,
    mark_only_lora_trainable,
)
from studio.models.text2semantic import Text2SemanticModel
from studio.models.text2semantic_checkpoint import load_text2semantic
from studio.training.checkpoints import StageState
from studio.training.datasets import Utterance, collate_gpt, gpt_usable
from studio.training.gpt_loss import text2semantic_loss
from studio.training.loop import Precision, StageTrainer, planned_steps
from studio.training.run_layout import RunConfig, RunPaths
from studio.training.stage_weights import apply_stage_weights, stage_lora_config, write_stage_weights

_LOGGER = logging.getLogger(__name__)


def gpt_lora_config(cfg: RunConfig) -> LoRAConfig:
    return stage_lora_config(cfg, GPT_DEFAULT_TARGETS)


def warmup_cosine(warmup: int, total: int, floor: float = 0.1):
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))

    return factor


class GPTTrainer(StageTrainer):
    stage = "gpt"

    def __init__(
        self, cfg: RunConfig, base_path: Path, utterances: list[Utterance], device: torch.device, sample_fn=None
    ) -> None:
        self.cfg, self.device = cfg, device
        self.items = [u for u in utterances if gpt_usable(u)]
        dropped = len(utterances) - len(self.items)
        if dropped:
            _LOGGER.warning("GPT stage: left out %d clip(s) with too many tokens or an odd phone rate", dropped)
        if not self.items:
            from studio.errors import TrainingError

            raise TrainingError("No clip is usable for GPT training (phone rate outside 3–25 per second).")
        loaded = load_text2semantic(base_path)
        self.base_info = loaded.info
        self.model: Text2SemanticModel = loaded.model.float().to(device).train()
        if cfg.lora:
            add_lora(self.model, gpt_lora_config(cfg))
            mark_only_lora_trainable(self.model)
        params = [p for p in self.model.parameters() if p.requires_grad]
        self.n_trainable = sum(p.numel() for p in params)
        self.epochs, self.batch_size = cfg.gpt_epochs, cfg.gpt_batch_size
        self.optimizers = {"gpt": torch.optim.AdamW(params, lr=cfg.gpt_lr, betas=(0.9, 0.95), weight_decay=0.0)}
        total = planned_steps(self, cfg.max_steps)
        self.schedulers = {
            "gpt": torch.optim.lr_scheduler.LambdaLR(self.optimizers["gpt"], warmup_cosine(cfg.warmup_steps, total))
        }
        self.precision = Precision(device, cfg.precision)
        self.sample_fn = sample_fn

    def lengths(self) -> list[int]:
        return [u.semantic.numel() + u.phone_ids.numel() for u in self.items]

    def end_epoch(self) -> None:  # the schedule is per step
        pass

    def train_step(self, indices: list[int]) -> dict[str, float]:
        batch = collate_gpt([self.items[i] for i in indices]).to(self.device)
        opt = self.optimizers["gpt"]
        opt.zero_grad(set_to_none=True)
        with self.precision.autocast():
            out = text2semantic_loss(
                self.model, batch.phone_ids, batch.phone_lens, batch.semantic, batch.semantic_lens, batch.bert
            )
        self.precision.backward_step(out.loss, opt)
        self.precision.update()
        self.schedulers["gpt"].step()
        n_targets = int((batch.semantic_lens + 1).sum())
        return {"loss": round(float(out.loss.detach()) / n_targets, 6), "top3_acc": round(out.top3_accuracy, 4)}

    def trainable_state(self) -> dict[str, torch.Tensor]:
        return lora_state_dict(self.model) if self.cfg.lora else self.model.state_dict()

    def load_trainable_state(self, state: dict[str, torch.Tensor]) -> None:
        if self.cfg.lora:
            load_lora_state_dict(self.model, state)
        else:
            self.model.load_state_dict(state)

    def write_outputs(self, paths: RunPaths, state: StageState) -> dict[str, Any]:
        return {
            **write_stage_weights(paths, "gpt", self.cfg, self.trainable_state(), GPT_DEFAULT_TARGETS),
            "model_config": self.model.config.as_dict(),
            "upstream_config": self.base_info.config or self.model.config.to_checkpoint_config(),
            "trainable_parameters": self.n_trainable,
            "loss_padding": "fixed (right-padding mask; upstream's left-padding quirk not reproduced)",
        }

    def sample(self, path: Path) -> bool:
        if self.sample_fn is None:
            return False
        self.sample_fn(self.model, None, path)
        return True


def load_trained_gpt(base_path: Path, run_dir: Path, summary: dict[str, Any] | None, device: torch.device):
    """The base GPT with a finished stage's outputs applied (adapters merged), in eval mode."""
    model = load_text2semantic(base_path).model.float().to(device)
    return apply_stage_weights(model, run_dir, summary).to(device).eval()
