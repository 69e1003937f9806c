"""What a precision mode changes, measured against fp32 on the same inputs (issue 9, item 2).

* GPT: teacher-forced logits — both models read the *same* [text ; prompt ; tokens] sequence, so every step is
  compared on an identical prefix (a free-running comparison would diverge after the first different sample and
  measure nothing). Reported: mean KL(fp32 ‖ mode) per step in nats, and the share of steps whose top token
  agrees.
* SoVITS: signal-to-noise ratio of the mode's waveform against fp32's for the same codes and noise (dB).
* Encoders (BERT, HuBERT): relative L2 error of the features.

The bounds these are checked against live in :data:`studio.models.precision.QUALITY_BOUNDS`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from studio.models.kv_cache import KVCache
from studio.models.precision import QUALITY_BOUNDS


@dataclass(frozen=True)
class GptAgreement:
    kl: float  # mean KL(fp32 ‖ mode) per step, nats
    top1: float  # share of steps with the same most likely token
    steps: int

    @property
    def passes(self) -> bool:
        return self.kl <= QUALITY_BOUNDS.gpt_kl_max and self.top1 >= QUALITY_BOUNDS.gpt_top1_min


@torch.inference_mode()
def teacher_forced_logits(
    model: torch.nn.Module, phone_ids: torch.Tensor, bert: torch.Tensor, tokens: torch.Tensor
) -> torch.Tensor:
    """Logits (T_tok, V) after the prefix and after each of ``tokens`` — the decoding path (prefill + one
    cached step per token), so the mode's KV cache and step arithmetic are what is measured.

    phone_ids (1, T_text), bert (1, bert_dim, T_text), tokens (1, T_tok): the first P tokens may be read as a
    prompt by the caller; here every token is fed one by one after the text.
    """
    n_text, n_tok = phone_ids.shape[1], tokens.shape[1]
    cache = KVCache.for_model(model, 1, n_text + n_tok + 1)
    rows = [model.prefill(model.embed_text(phone_ids, bert), None, cache)]  # (1, V)
    for i in range(n_tok - 1):
        rows.append(model.decode_step(tokens[:, i : i + 1], i, cache))
    return torch.cat(rows).float()  # (T_tok, V)


def gpt_agreement(reference: torch.Tensor, candidate: torch.Tensor) -> GptAgreement:
    """Compare two (steps, V) logit matrices from :func:`teacher_forced_logits`."""
    log_p = F.log_softmax(reference.float(), dim=-1)
    log_q = F.log_softmax(candidate.float(), dim=-1)
    kl = (log_p.exp() * (log_p - log_q)).sum(dim=-1)  # (steps,)
    top1 = (reference.argmax(dim=-1) == candidate.argmax(dim=-1)).float()
    return GptAgreement(float(kl.mean()), float(top1.mean()), reference.shape[0])


def snr_db(reference: torch.Tensor, candidate: torch.Tensor) -> float:
    """10·log10(‖ref‖² / ‖ref − cand‖²) over the overlapping samples; +inf when identical."""
    n = min(reference.numel(), candidate.numel())
    ref = reference.reshape(-1)[:n].double()
    err = ref - candidate.reshape(-1)[:n].double()
    noise = float(err.pow(2).sum())
    if noise == 0.0:
        return math.inf
    return 10.0 * math.log10(float(ref.pow(2).sum()) / noise)


def relative_error(reference: torch.Tensor, candidate: torch.Tensor) -> float:
    """‖ref − cand‖ / ‖ref‖ (0 for identical tensors)."""
    ref = reference.double()
    denom = float(ref.norm())
    return float((ref - candidate.double()).norm()) / denom if denom else float((candidate.double()).norm())
