"""Sampling of the next semantic token: small pure functions in upstream's exact order (SPEC §5.5).

All functions take logits shaped (B, V) and previous tokens (B, T). The one deliberate side effect is upstream's:
:func:`apply_repetition_penalty_` (and therefore :func:`logits_to_probs`) rewrites the given logits tensor
in place, and the decoding loop relies on that when it checks for EOS.
"""

from __future__ import annotations

import torch

TEMPERATURE_FLOOR = 1e-5  # a temperature of 0 divides by this instead


def apply_repetition_penalty_(logits: torch.Tensor, previous_tokens: torch.Tensor, penalty: float) -> torch.Tensor:
    """In place: every logit whose id occurs in ``previous_tokens`` is divided by ``penalty`` when positive and
    multiplied by it when negative (once per id, however often it occurs). Returns ``logits``."""
    if penalty == 1.0 or previous_tokens.numel() == 0:
        return logits
    index = previous_tokens.long()
    score = torch.gather(logits, 1, index)  # (B, T), read before any write, so duplicates are harmless
    score = torch.where(score < 0, score * penalty, score / penalty)
    return logits.scatter_(1, index, score)


def top_p_filter(logits: torch.Tensor, top_p: float | None) -> torch.Tensor:
    """Set to −inf every logit outside the smallest head of the sorted distribution whose cumulative
    probability exceeds ``top_p`` — entries whose own cumulative probability is > top_p go, the top-1 stays."""
    if top_p is None or top_p >= 1.0:
        return logits
    sorted_logits, sorted_idx = torch.sort(logits, dim=-1, descending=True)
    cumulative = torch.cumsum(torch.softmax(sorted_logits, dim=-1), dim=-1)
    drop_sorted = cumulative > top_p
    drop_sorted[:, 0] = False
    drop = drop_sorted.scatter(1, sorted_idx, drop_sorted)
    return logits.masked_fill(drop, float("-inf"))


def apply_temperature(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    return logits / max(temperature, TEMPERATURE_FLOOR)


def top_k_filter(logits: torch.Tensor, top_k: int | None) -> torch.Tensor:
    """Keep logits ≥ the k-th largest (ties with it are kept); None keeps everything."""
    if top_k is None:
        return logits
    kth = torch.topk(logits, min(top_k, logits.shape[-1]), dim=-1).values[:, -1:]  # (B, 1)
    return torch.where(logits < kth, float("-inf"), logits)


def logits_to_probs(
    logits: torch.Tensor,
    previous_tokens: torch.Tensor | None = None,
    *,
    top_k: int | None = None,
    top_p: float | None = None,
    temperature: float = 1.0,
    repetition_penalty: float = 1.0,
) -> torch.Tensor:
    """Penalty (in place on ``logits``) → top-p → temperature → top-k → softmax. Returns probs (B, V)."""
    if previous_tokens is not None:
        apply_repetition_penalty_(logits, previous_tokens, repetition_penalty)
    filtered = top_p_filter(logits, top_p)
    filtered = apply_temperature(filtered, temperature)
    filtered = top_k_filter(filtered, top_k)
    return torch.softmax(filtered, dim=-1)


def sample(probs: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Draw one id per row (B, 1) int64 by the exponential race: argmax(p_i / q_i), q_i ~ Exp(1).

    Without a ``generator`` the global torch RNG is used (as upstream does).
    """
    q = torch.empty_like(probs).exponential_(1.0, generator=generator)
    return torch.argmax(probs / q, dim=-1, keepdim=True)


def sample_next_token(
    logits: torch.Tensor,
    previous_tokens: torch.Tensor | None,
    *,
    top_k: int | None,
    top_p: float | None,
    temperature: float,
    repetition_penalty: float,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """logits (B, V) → sampled ids (B, 1); ``logits`` is left penalised in place."""
    probs = logits_to_probs(
        logits,
        previous_tokens,
        top_k=top_k,
        top_p=top_p,
        temperature=temperature,
        repetition_penalty=repetition_penalty,
    )
    return sample(probs, generator)
