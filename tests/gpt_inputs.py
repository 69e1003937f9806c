"""Random GPT inputs for the decoding tests: one sentence's phone ids, BERT features and prompt tokens."""

from __future__ import annotations

import torch


def random_sentence(model, seed: int, n_text: int, n_prompt: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(phone ids (1, n_text), BERT features (1, bert_dim, n_text), prompt tokens (1, n_prompt)) for ``model``."""
    g = torch.Generator().manual_seed(seed)
    cfg = model.config
    return (
        torch.randint(0, cfg.phoneme_vocab_size, (1, n_text), generator=g),
        torch.randn(1, cfg.bert_dim, n_text, generator=g),
        torch.randint(0, cfg.eos, (1, n_prompt), generator=g),
    )
