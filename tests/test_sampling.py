"""Sampling functions against upstream's goldens (golden_sampling.npz, golden_runs.json "sampling")."""

from __future__ import annotations

import pytest
import torch
from golden_utils import assert_close
from s1_golden_cases import runs, sampling_tensors

from studio.models.sampling import (
    apply_repetition_penalty_,
    logits_to_probs,
    sample,
    sample_next_token,
    top_k_filter,
    top_p_filter,
)


def _sets():
    return runs()["sampling"]["sets"]


def _inputs(golden):
    t = sampling_tensors(golden)
    return torch.from_numpy(t["sampling_in_logits"].copy()), torch.from_numpy(t["sampling_in_previous_tokens"].copy())


@pytest.mark.parametrize("case", _sets(), ids=lambda c: c["name"])
def test_logits_to_probs_matches_upstream(golden, case):
    logits, previous = _inputs(golden)
    probs = logits_to_probs(
        logits,
        previous,
        top_k=case["top_k"],
        top_p=case["top_p"],
        temperature=case["temperature"],
        repetition_penalty=case["repetition_penalty"],
    )
    gold = sampling_tensors(golden)
    assert_close(probs, gold[case["probs_key"]], what=case["probs_key"])
    # upstream rewrites the caller's logits with the penalty (and only the penalty)
    assert_close(logits, gold[case["logits_after_call_key"]], what=case["logits_after_call_key"])
    assert ((probs > 0).sum() >= 1) and torch.isclose(probs.sum(), torch.tensor(1.0))


def test_penalty_counts_each_id_once_and_respects_sign():
    logits = torch.tensor([[2.0, -2.0, 1.0, 0.5]])
    apply_repetition_penalty_(logits, torch.tensor([[0, 0, 1, 0]]), 2.0)
    assert logits.tolist() == [[1.0, -4.0, 1.0, 0.5]]


def test_top_k_keeps_ties_and_none_keeps_all():
    logits = torch.tensor([[3.0, 1.0, 1.0, 0.0]])
    assert torch.isfinite(top_k_filter(logits, 2)).tolist() == [[True, True, True, False]]
    assert torch.equal(top_k_filter(logits, None), logits)
    assert torch.isfinite(top_k_filter(logits, 100)).all()


def test_top_p_always_keeps_the_best():
    logits = torch.tensor([[10.0, 0.0, -1.0]])
    assert torch.isfinite(top_p_filter(logits, 0.01)).tolist() == [[True, False, False]]
    assert torch.equal(top_p_filter(logits, 1.0), logits)


def test_sample_is_reproducible_with_a_seed_and_follows_probs():
    probs = torch.softmax(torch.randn(1, 50, generator=torch.Generator().manual_seed(1)), dim=-1)
    draws = [int(sample(probs, torch.Generator().manual_seed(s))) for s in range(400)]
    again = [int(sample(probs, torch.Generator().manual_seed(s))) for s in range(400)]
    assert draws == again
    counts = torch.bincount(torch.tensor(draws), minlength=50).float() / len(draws)
    assert (counts - probs[0]).abs().max() < 0.08  # an exponential race is a categorical draw
    one_hot = torch.zeros(1, 50)
    one_hot[0, 17] = 1.0
    assert int(sample(one_hot)) == 17


def test_top_k_one_is_greedy_after_penalty():
    logits = torch.tensor([[5.0, 4.0, -1.0]])
    token = sample_next_token(
        logits,
        torch.tensor([[0]]),
        top_k=1,
        top_p=1.0,
        temperature=1.0,
        repetition_penalty=2.0,
        generator=torch.Generator().manual_seed(0),
    )
    assert token.tolist() == [[1]]  # 5/2 = 2.5 < 4
