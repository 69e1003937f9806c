"""Step time and peak memory of one training step of each stage at OFFICIAL v2 size (random weights).

    python bench/train.py [--device cpu|cuda] [--steps 2] [--batch 2] [--seconds 4]

GPT: batch of ``--batch`` items, 60 phones + ``--seconds`` × 25 semantic tokens each, LoRA rank 16 and full.
SoVITS: batch of ``--batch`` clips of ``--seconds`` s, LoRA rank 16 (+ posterior encoder) with the full
discriminators. CPU memory is the process's peak RSS (it only grows); GPU memory is torch's peak allocation.
The first step is a warm-up and is not timed.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench scripts run from a checkout

from studio.models.lora import (  # noqa: E402
    GPT_DEFAULT_TARGETS,
    SOVITS_DEFAULT_TARGETS,
    LoRAConfig,
    add_lora,
    mark_only_lora_trainable,  # noqa: E402
)
from studio.models.sovits import SoVITSConfig, SoVITSSynthesizer  # noqa: E402
from studio.models.sovits.discriminators import MultiPeriodDiscriminator  # noqa: E402
from studio.models.text2semantic import Text2SemanticModel  # noqa: E402
from studio.training.datasets import GPTBatch, SoVITSBatch  # noqa: E402
from studio.training.gpt_loss import text2semantic_loss  # noqa: E402


def peak_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(fn, steps: int, device: torch.device) -> float:
    fn()  # warm-up
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    t = time.perf_counter()
    for _ in range(steps):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - t) / steps


def gpt_step(device: torch.device, batch: int, seconds: float, lora: bool):
    model = Text2SemanticModel.from_name("v2").to(device).train()
    if lora:
        add_lora(model, LoRAConfig(16, 16.0, targets=GPT_DEFAULT_TARGETS))
        mark_only_lora_trainable(model)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    n_sem, n_ph = int(seconds * 25), 60
    b = GPTBatch(
        torch.randint(1, 700, (batch, n_ph)),
        torch.full((batch,), n_ph),
        torch.zeros(batch, 1024, n_ph),
        torch.randint(0, 1024, (batch, n_sem)),
        torch.full((batch,), n_sem),
    ).to(device)
    amp = (
        torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else torch.autocast("cpu", enabled=False)
    )

    def step():
        opt.zero_grad(set_to_none=True)
        with amp:
            out = text2semantic_loss(model, b.phone_ids, b.phone_lens, b.semantic, b.semantic_lens, b.bert)
        out.loss.backward()
        opt.step()

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=4.0)
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)
    print(f"device {device}, torch threads {torch.get_num_threads()}, batch {args.batch}, {args.seconds:g} s/item")
    for lora in (True, False):
        t = timed(gpt_step(device, args.batch, args.seconds, lora), args.steps, device)
        print(f"GPT    {'LoRA r16' if lora else 'full    '}: {t:7.3f} s/step   peak {peak_mb(device):8.0f} MiB")
    t = timed(_sovits(device, args.batch, args.seconds), args.steps, device)
    print(f"SoVITS LoRA r16: {t:7.3f} s/step   peak {peak_mb(device):8.0f} MiB  (G + posterior + MPD/MSD)")


def _sovits(device: torch.device, batch: int, seconds: float):
    from dataclasses import replace

    from studio.training.run_layout import RunConfig
    from studio.training.sovits_trainer import SoVITSTrainer

    cfg = SoVITSConfig.v2()
    model = SoVITSSynthesizer(cfg).to(device)
    add_lora(model, LoRAConfig(16, 16.0, targets=SOVITS_DEFAULT_TARGETS))
    mark_only_lora_trainable(model)
    model.enc_q.requires_grad_(True)
    trainer = SoVITSTrainer.__new__(SoVITSTrainer)  # the trainer's step without loading files
    trainer.cfg = RunConfig(name="bench", workspace_root=tempfile.gettempdir(), pretrained_root="", run_id="bench")
    trainer.cfg = replace(trainer.cfg, sovits_lr=1e-4)
    trainer.device, trainer.model = device, model.train()
    trainer.net_d = MultiPeriodDiscriminator().to(device).train()
    opt = dict(betas=(0.8, 0.99), eps=1e-9)
    trainer.optimizers = {
        "g": torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4, **opt),
        "d": torch.optim.AdamW(trainer.net_d.parameters(), lr=1e-4, **opt),
    }
    from studio.training.loop import Precision

    trainer.precision = Precision(device)
    frames = int(seconds * 50) // 2 * 2
    b = SoVITSBatch(
        torch.randn(batch, 768, frames),
        torch.rand(batch, 1025, frames),
        torch.full((batch,), frames),
        torch.randn(batch, 1, frames * 640) * 0.1,
        torch.randint(1, 700, (batch, 40)),
        torch.full((batch,), 40),
    ).to(device)

    return lambda: trainer.step_batch(b)


if __name__ == "__main__":
    main()
