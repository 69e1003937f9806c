"""Fine-tuning the SoVITS synthesizer (SPEC §9.4), with LoRA adapters (default) or fully.

Per step (VITS recipe): the generator runs ``forward_train`` (style vector from the clip itself — plus, on a
v2Pro/v2ProPlus base, the clip's cached speaker-verification embedding — frozen
``ssl_proj`` + quantizer, prior ``enc_p``, posterior ``enc_q`` on the linear spectrogram, flow, a random
32-frame slice decoded to 20480 samples). The discriminator (:class:`MultiPeriodDiscriminator`) is updated
with the LSGAN loss on real vs. generated slices, then the generator with
``45 · L1(log-mel) + KL + LSGAN + 2 · feature matching``.

Frozen always: ``ssl_proj`` and ``quantizer`` (semantic tokens must stay those the GPT speaks). LoRA mode:
adapters on :data:`SOVITS_DEFAULT_TARGETS` plus the whole posterior encoder ``enc_q`` (training-only, never
exported) train; full mode: everything else trains, with ``enc_p.text_embedding``, ``enc_p.encoder_text``,
``enc_p.mrte`` at ``lr · text_low_lr_rate`` as upstream. AdamW (0.8, 0.99), eps 1e-9; ExponentialLR
0.999875 per epoch. The base file's discriminator (``s2D2333k.pth``, ``v2Pro/s2Dv2Pro[Plus].pth``) is used
when present and fitting; otherwise a fresh one is trained (with a warning) — scaled down in width for small
generators. Its periods come from the generator's config (v2: 2, 3, 5, 7, 11; v2Pro/v2ProPlus add 17, 23).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from studio.audio.spectrogram import mel_spectrogram, spec_to_mel
from studio.models.lora import (
    SOVITS_DEFAULT_TARGETS,
    LoRAConfig,
    add_lora,
    load_lora_state_dict,
    lora_state_dict,
    mark_only_lora_trainable,
)
from studio.models.sovits import SoVITSSynthesizer, load_sovits
from studio.models.sovits.discriminators import MultiPeriodDiscriminator, load_discriminator_state
from studio.training.checkpoints import StageState
from studio.training.datasets import HOP, SoVITSBatch, Utterance, collate_sovits, sovits_usable
from studio.training.loop import Precision, StageTrainer
from studio.training.run_layout import RunConfig, RunPaths
from studio.training.stage_weights import apply_stage_weights, stage_lora_config, write_stage_weights

_LOGGER = logging.getLogger(__name__)

C_MEL, C_KL, C_FM = 45.0, 1.0, 2.0
LOW_LR_PREFIXES = ("enc_p.text_embedding", "enc_p.encoder_text", "enc_p.mrte")
FROZEN_PREFIXES = ("ssl_proj.", "quantizer.")
LR_DECAY = 0.999875


def sovits_lora_config(cfg: RunConfig) -> LoRAConfig:
    return stage_lora_config(cfg, SOVITS_DEFAULT_TARGETS)


def kl_loss(z_p, logs_q, m_p, logs_p, mask) -> torch.Tensor:
    """KL between the posterior sample pushed through the flow and the prior, averaged over valid frames."""
    kl = logs_p - logs_q - 0.5 + 0.5 * (z_p - m_p) ** 2 * torch.exp(-2.0 * logs_p)
    return (kl * mask).sum() / mask.sum()


def discriminator_loss(real: list[torch.Tensor], fake: list[torch.Tensor]) -> torch.Tensor:
    return sum(torch.mean((1 - r.float()) ** 2) + torch.mean(f.float() ** 2) for r, f in zip(real, fake))


def generator_loss(fake: list[torch.Tensor]) -> torch.Tensor:
    return sum(torch.mean((1 - f.float()) ** 2) for f in fake)


def feature_matching_loss(real_maps, fake_maps) -> torch.Tensor:
    return sum(
        torch.mean(torch.abs(r.float().detach() - f.float()))
        for rm, fm in zip(real_maps, fake_maps)
        for r, f in zip(rm, fm)
    )


def slice_frames(x: torch.Tensor, starts: torch.Tensor, size: int) -> torch.Tensor:
    """(B, C, T) → (B, C, size) windows starting at ``starts`` (indices clamped to the last frame)."""
    idx = (starts.view(-1, 1) + torch.arange(size, device=x.device).view(1, -1)).clamp(max=x.size(2) - 1)
    return torch.gather(x, 2, idx.unsqueeze(1).expand(-1, x.size(1), -1))


def build_generator(base_path: Path, device: torch.device) -> tuple[SoVITSSynthesizer, Any]:
    """The base generator with a posterior encoder (fresh, with a warning, when the base file has none)."""
    loaded = load_sovits(base_path)
    model = loaded.model
    if model.enc_q is None:
        _LOGGER.warning("%s has no posterior encoder (enc_q); starting it from random weights", base_path)
        fresh = SoVITSSynthesizer(loaded.config, with_posterior_encoder=True)
        missing, _ = fresh.load_state_dict(model.state_dict(), strict=False)
        assert all(k.startswith("enc_q.") for k in missing)
        model = fresh
    return model.float().to(device), loaded


class SoVITSTrainer(StageTrainer):
    stage = "sovits"

    def __init__(
        self,
        cfg: RunConfig,
        base_path: Path,
        discriminator_path: Path | None,
        utterances: list[Utterance],
        device: torch.device,
        sample_fn=None,
    ) -> None:
        from studio.errors import TrainingError

        self.cfg, self.device = cfg, device
        self.items = [u for u in utterances if sovits_usable(u)]
        if not self.items:
            raise TrainingError("No clip is usable for SoVITS training (each must last between 0.6 and 54 s).")
        self.model, self.base = build_generator(base_path, device)
        if self.model.config.uses_speaker_verification and any(u.sv_emb is None for u in self.items):
            raise TrainingError(
                f"The base {self.base.version} SoVITS needs each clip's speaker-verification embedding, and the "
                "cached features have none.",
                hint="Train again: features are re-extracted with the speaker-verification model of that base.",
            )
        self.model.train()
        self.model.requires_grad_(True)
        if cfg.lora:
            add_lora(self.model, sovits_lora_config(cfg))
            mark_only_lora_trainable(self.model)
            self.model.enc_q.requires_grad_(True)
        for name, p in self.model.named_parameters():
            if name.startswith(FROZEN_PREFIXES):
                p.requires_grad_(False)
        self.n_trainable = sum(p.numel() for p in self.model.parameters() if p.requires_grad)
        self.net_d = self._discriminator(discriminator_path).to(device).train()
        self.epochs, self.batch_size = cfg.sovits_epochs, cfg.sovits_batch_size
        opt = dict(betas=(0.8, 0.99), eps=1e-9)
        self.optimizers = {
            "g": torch.optim.AdamW(self._param_groups(), lr=cfg.sovits_lr, **opt),
            "d": torch.optim.AdamW(self.net_d.parameters(), lr=cfg.sovits_lr, **opt),
        }
        self.schedulers = {k: torch.optim.lr_scheduler.ExponentialLR(o, LR_DECAY) for k, o in self.optimizers.items()}
        self.precision = Precision(device, cfg.precision)
        self.spec_cache: dict[str, torch.Tensor] = {}
        self.sample_fn = sample_fn

    def _param_groups(self) -> list[dict[str, Any]]:
        low, normal = [], []
        for name, p in self.model.named_parameters():
            if p.requires_grad:
                (low if name.startswith(LOW_LR_PREFIXES) else normal).append(p)
        groups = [{"params": normal}]
        if low:
            groups.append({"params": low, "lr": self.cfg.sovits_lr * self.cfg.text_low_lr_rate})
        return groups

    def _discriminator(self, path: Path | None) -> MultiPeriodDiscriminator:
        width = min(1.0, self.model.config.upsample_initial_channel / 512)
        net_d = MultiPeriodDiscriminator(periods=self.model.config.mpd_periods, width=width)
        if path is not None and Path(path).is_file():
            problems = _load_pretrained_d(net_d, Path(path))
            if not problems:
                _LOGGER.info("discriminator initialised from %s", path)
                return net_d
            _LOGGER.warning("%s does not fit the discriminator (%s); training one from scratch", path, problems[0])
        else:
            _LOGGER.warning("no pretrained SoVITS discriminator found; training one from scratch")
        return net_d

    def lengths(self) -> list[int]:
        return [u.wav.numel() // HOP for u in self.items]

    def train_step(self, indices: list[int]) -> dict[str, float]:
        return self.step_batch(collate_sovits([self.items[i] for i in indices], self.spec_cache).to(self.device))

    def step_batch(self, b: SoVITSBatch) -> dict[str, float]:
        """One discriminator + one generator update on a collated batch."""
        seg = self.model.config.segment_size
        opt_g, opt_d = self.optimizers["g"], self.optimizers["d"]
        with self.precision.autocast():
            out = self.model.forward_train(b.ssl, b.spec, b.spec_lens, b.phone_ids, b.phone_lens, sv_emb=b.sv_emb)
        y_hat = out.wav_slice.float()  # (B, 1, seg · hop)
        y = slice_frames(b.wav, out.slice_starts * HOP, seg * HOP)  # (B, 1, seg · hop)
        y_mel = slice_frames(spec_to_mel(b.spec), out.slice_starts, seg)  # (B, 128, seg)
        y_hat_mel = mel_spectrogram(y_hat.squeeze(1))  # (B, 128, seg)
        # discriminator step
        self.net_d.requires_grad_(True)
        opt_d.zero_grad(set_to_none=True)
        with self.precision.autocast():
            real, fake, _, _ = self.net_d(y, y_hat.detach())
            loss_d = discriminator_loss(real, fake)
        self.precision.backward_step(loss_d, opt_d)
        # generator step
        self.net_d.requires_grad_(False)
        opt_g.zero_grad(set_to_none=True)
        with self.precision.autocast():
            _, fake, real_maps, fake_maps = self.net_d(y, y_hat)
        loss_mel = F.l1_loss(y_hat_mel, y_mel) * C_MEL
        loss_kl = kl_loss(out.z_p.float(), out.logs_q.float(), out.m_p.float(), out.logs_p.float(), out.mask) * C_KL
        loss_fm = feature_matching_loss(real_maps, fake_maps) * C_FM
        loss_gen = generator_loss(fake)
        loss_g = loss_mel + loss_kl + loss_fm + loss_gen
        self.precision.backward_step(loss_g, opt_g)
        self.precision.update()
        values = {"loss_g": loss_g, "mel": loss_mel, "kl": loss_kl, "fm": loss_fm, "gen": loss_gen, "loss_d": loss_d}
        return {k: round(float(v.detach()), 5) for k, v in values.items()}

    def trainable_state(self) -> dict[str, torch.Tensor]:
        d = {f"d.{k}": v for k, v in self.net_d.state_dict().items()}
        if self.cfg.lora:
            g = {f"lora.{k}": v for k, v in lora_state_dict(self.model).items()}
            g.update({f"enc_q.{k}": v for k, v in self.model.enc_q.state_dict().items()})
        else:
            g = {f"g.{k}": v for k, v in self.model.state_dict().items()}
        return {**g, **d}

    def load_trainable_state(self, state: dict[str, torch.Tensor]) -> None:
        def part(prefix: str) -> dict[str, torch.Tensor]:
            return {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}

        self.net_d.load_state_dict(part("d."))
        if self.cfg.lora:
            load_lora_state_dict(self.model, part("lora."))
            self.model.enc_q.load_state_dict(part("enc_q."))
        else:
            self.model.load_state_dict(part("g."))

    def output_weights(self) -> dict[str, torch.Tensor]:
        if self.cfg.lora:
            return lora_state_dict(self.model)
        return {k: v for k, v in self.model.state_dict().items() if not k.startswith("enc_q.")}

    def write_outputs(self, paths: RunPaths, state: StageState) -> dict[str, Any]:
        return {
            **write_stage_weights(paths, "sovits", self.cfg, self.output_weights(), SOVITS_DEFAULT_TARGETS),
            "model_config": self.model.config.to_dict(),
            "upstream_config": self.base.info.hparams,
            "trainable_parameters": self.n_trainable,
        }

    def sample(self, path: Path) -> bool:
        if self.sample_fn is None:
            return False
        self.sample_fn(None, self.model, path)
        return True


def _load_pretrained_d(net_d: MultiPeriodDiscriminator, path: Path) -> list[str]:
    from studio.models.safe_pickle import safe_torch_load

    try:
        obj = safe_torch_load(path.read_bytes(), path)
    except Exception as exc:  # an unreadable file is reported, not fatal
        return [f"unreadable: {exc}"]
    state = obj.get("model", obj.get("weight", obj)) if isinstance(obj, dict) else None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        return ["no state dict of tensors"]
    return load_discriminator_state(net_d, state)


def load_trained_sovits(base_path: Path, run_dir: Path, summary: dict[str, Any] | None, device: torch.device):
    """The base SoVITS with a finished stage's outputs applied (adapters merged), in eval mode."""
    model = load_sovits(base_path).model.float().to(device)
    return apply_stage_weights(model, run_dir, summary, strict=False).to(device).eval()
