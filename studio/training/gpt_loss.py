"""Teacher-forced training loss of the text-to-semantic GPT (SPEC §9.3).

The model reads [phones ; semantic tokens] under the prefix/causal mask. The last phone position predicts the
first token, semantic position j predicts token j+1 and the last semantic position predicts EOS; padded
positions are EOS in both the input and the targets (upstream counts them in the loss).
The loss is cross-entropy summed over every target (upstream: "more frames → larger update"); the reported
accuracy is top-3 over targets that are not EOS.

``upstream_padding_quirk=True`` reproduces upstream exactly: phones are padded on the right but the text
padding mask is built as if they were padded on the left, so a shorter item loses sight of its first phones
and sees its trailing pads. The default (False) masks the real right-hand padding and makes every item's loss independent of the
batch it sits in (see :func:`text2semantic_loss`).

Legend: ``B`` batch, ``T_text`` phones (padded), ``T_sem`` semantic tokens (padded), ``V`` vocabulary.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from studio.models.text2semantic import Text2SemanticModel

ACCURACY_TOP_K = 3
IGNORE = -100  # target id left out of the loss


@dataclass
class GPTLossOutput:
    loss: torch.Tensor  # scalar, cross-entropy summed over all targets (pads included, as upstream)
    top3_accuracy: float  # share of non-EOS targets found among the 3 highest logits
    n_targets: int  # targets counted by the accuracy (non-EOS)


def right_padding_mask(lengths: torch.Tensor, max_len: int) -> torch.Tensor:
    """(B, max_len) True at positions ≥ length (padding at the end)."""
    return torch.arange(max_len, device=lengths.device)[None, :] >= lengths[:, None]


def left_padding_mask(lengths: torch.Tensor, max_len: int) -> torch.Tensor:
    """(B, max_len) True at the first max_len − length positions (padding at the start)."""
    return torch.arange(max_len, device=lengths.device)[None, :] < (max_len - lengths)[:, None]


def teacher_forcing_targets(semantic: torch.Tensor, semantic_lens: torch.Tensor, eos: int):
    """inputs (B, T_sem) = tokens with pads set to EOS; targets (B, T_sem + 1) = inputs with EOS appended
    (predicted from the last phone position on). Also returns the semantic padding mask (B, T_sem)."""
    pad = right_padding_mask(semantic_lens, semantic.shape[1])  # (B, T_sem)
    inputs = semantic.long().masked_fill(pad, eos)
    return inputs, F.pad(inputs, (0, 1), value=eos), pad


def topk_accuracy(logits: torch.Tensor, targets: torch.Tensor, k: int, ignore_index: int) -> tuple[float, int]:
    """logits (N, V), targets (N,) → (share of counted targets within the top-k, number counted)."""
    counted = targets != ignore_index
    n = int(counted.sum())
    if n == 0:
        return 0.0, 0
    top = logits[counted].topk(min(k, logits.shape[-1]), dim=-1).indices  # (n, k)
    hits = (top == targets[counted, None]).any(dim=-1)
    return float(hits.float().mean()), n


def text2semantic_loss(
    model: Text2SemanticModel,
    phone_ids: torch.Tensor,
    phone_lens: torch.Tensor,
    semantic: torch.Tensor,
    semantic_lens: torch.Tensor,
    bert: torch.Tensor,
    *,
    upstream_padding_quirk: bool = False,
) -> GPTLossOutput:
    """phone_ids (B, T_text) right-padded, bert (B, bert_dim, T_text), semantic (B, T_sem) right-padded.

    With the quirk: upstream exactly (left-padding text mask; the first token is predicted from position
    T_text − 1 for every row; padded semantic positions are EOS targets). Without it, each item's loss is
    what it would be alone: padded phones are masked, the first token is predicted from the item's last real
    phone, and only the item's own tokens and its one EOS are targets.
    """
    eos = model.config.eos
    B, n_text = phone_ids.shape
    inputs, targets, sem_pad = teacher_forcing_targets(semantic, semantic_lens, eos)
    text_pad = (left_padding_mask if upstream_padding_quirk else right_padding_mask)(phone_lens, n_text)
    key_padding = torch.cat([text_pad, sem_pad], dim=1)  # (B, T_text + T_sem)
    logits_all = model(phone_ids, bert, inputs, key_padding=key_padding)  # (B, T_text + T_sem, V)
    if upstream_padding_quirk:
        logits = logits_all[:, n_text - 1 :]  # (B, T_sem + 1, V)
    else:
        first = logits_all[torch.arange(B, device=phone_ids.device), phone_lens.long() - 1]  # (B, V)
        logits = torch.cat([first[:, None], logits_all[:, n_text:]], dim=1)  # (B, T_sem + 1, V)
        beyond_eos = torch.arange(targets.shape[1], device=targets.device)[None, :] > semantic_lens[:, None]
        targets = targets.masked_fill(beyond_eos, IGNORE)
    loss = F.cross_entropy(logits.transpose(1, 2), targets, reduction="sum", ignore_index=IGNORE)
    flat_targets = targets.reshape(-1).masked_fill(targets.reshape(-1) == IGNORE, eos)
    acc, n = topk_accuracy(logits.detach().reshape(-1, logits.shape[-1]), flat_targets, ACCURACY_TOP_K, eos)
    return GPTLossOutput(loss=loss, top3_accuracy=acc, n_targets=n)
