"""Continuous batching of the GPT: every row decodes as it would alone (tiny golden GPT, CPU, fp32)."""

from __future__ import annotations

import copy

import pytest
import torch

from studio.models.batch_decode import LOGITS_ATOL, ContinuousDecoder, decode_together, make_row
from studio.models.generate import generate_semantic
from studio.models.kv_cache import KVCache
from studio.models.text2semantic_checkpoint import load_text2semantic

# Each case: text length, prompt length (None = reference-free), sampling settings, seed.
CASES = [
    (14, 9, dict(top_k=15, top_p=1.0, temperature=1.0, repetition_penalty=1.35, max_steps=40), 1),
    (31, 23, dict(top_k=5, top_p=0.8, temperature=0.7, repetition_penalty=1.0, max_steps=25), 2),
    (8, None, dict(top_k=None, top_p=1.0, temperature=1.3, repetition_penalty=1.2, max_steps=33), 3),
    (22, 4, dict(top_k=30, top_p=0.95, temperature=1.0, repetition_penalty=1.35, early_stop_num=18), 4),
    (5, 40, dict(top_k=1, top_p=1.0, temperature=1.0, repetition_penalty=1.5, max_steps=12), 5),
]


@pytest.fixture(scope="module")
def model(tiny_s1_ckpt):
    return load_text2semantic(tiny_s1_ckpt).model.float().eval()


def _inputs(model, n_text: int, n_prompt: int | None, seed: int):
    g = torch.Generator().manual_seed(1000 + seed)
    cfg = model.config
    phones = torch.randint(0, cfg.phoneme_vocab_size, (1, n_text), generator=g)
    bert = torch.randn(1, cfg.bert_dim, n_text, generator=g)
    prompt = None if n_prompt is None else torch.randint(0, cfg.eos, (1, n_prompt), generator=g)
    return phones, bert, prompt


def _alone(model, case, **extra):
    n_text, n_prompt, settings, seed = case
    phones, bert, prompt = _inputs(model, n_text, n_prompt, seed)
    gen = torch.Generator().manual_seed(seed)
    return generate_semantic(model, phones, bert, prompt, generator=gen, **settings, **extra)


def _row(model, case, **extra):
    n_text, n_prompt, settings, seed = case
    phones, bert, prompt = _inputs(model, n_text, n_prompt, seed)
    gen = torch.Generator().manual_seed(seed)
    return make_row(model, phones, bert, prompt, generator=gen, **settings, **extra)


def _same(batched, alone):
    assert batched.tokens.tolist() == alone.tokens.tolist()
    assert batched.sequence.tolist() == alone.sequence.tolist()
    assert (batched.idx, batched.n_steps, batched.stop_reason) == (alone.idx, alone.n_steps, alone.stop_reason)


@pytest.mark.parametrize("join_at", [[0, 0, 0, 0, 0], [0, 3, 7, 12, 30], [9, 0, 2, 2, 15]])
def test_rows_joining_at_different_steps_decode_as_alone(model, join_at):
    alone = [_alone(model, case) for case in CASES]
    assert len({tuple(a.tokens.tolist()) for a in alone}) == len(CASES)  # different rows, so a mix-up shows
    batched = decode_together(model, [_row(model, case) for case in CASES], join_at)
    for b, a in zip(batched, alone, strict=True):
        _same(b, a)


def test_teacher_forced_logits_agree_within_the_documented_tolerance(model):
    alone = [_alone(model, case, record_logits=True) for case in CASES]
    batched = decode_together(model, [_row(model, case, record_logits=True) for case in CASES], [0, 1, 2, 3, 4])
    for b, a in zip(batched, alone, strict=True):
        _same(b, a)  # same tokens, so every step saw the same prefix
        assert b.step_logits.shape == a.step_logits.shape
        assert float((b.step_logits - a.step_logits).abs().max()) <= LOGITS_ATOL


def test_rows_stopping_on_eos_leave_and_the_others_go_on(model):
    # A GPT that says EOS readily (its EOS output row raised), so rows leave at different steps by EOS.
    eager = copy.deepcopy(model)
    with torch.no_grad():
        w = eager.ar_predict_layer.weight
        w[eager.config.eos] = w[: eager.config.eos].mean(0) * 4 + w[eager.config.eos]
    long_cases = [(n, p, {**s, "max_steps": 200, "early_stop_num": -1}, seed) for n, p, s, seed in CASES]
    alone = [_alone(eager, case) for case in long_cases]
    reasons = [a.stop_reason for a in alone]
    assert "eos" in reasons, reasons
    batched = decode_together(eager, [_row(eager, case) for case in long_cases], [0, 2, 4, 6, 8])
    for b, a in zip(batched, alone, strict=True):
        _same(b, a)


def test_a_row_taken_out_midway_leaves_the_others_untouched(model):
    alone = [_alone(model, case) for case in CASES]
    rows = [_row(model, case) for case in CASES]
    decoder = ContinuousDecoder(model)
    for row in rows:
        decoder.join(row)
    for _ in range(6):
        decoder.step()
    decoder.leave([rows[1]])  # its client went away
    while any(r.result is None for i, r in enumerate(rows) if i != 1):
        decoder.step()
    assert len(decoder) == 0 and decoder.cache.batch_size == 0
    for i, (row, a) in enumerate(zip(rows, alone, strict=True)):
        if i != 1:
            _same(row.result, a)
    assert rows[1].result is None


def test_the_shared_cache_stays_as_short_as_its_longest_row(model):
    rows = [_row(model, case) for case in CASES[:2]]
    decoder = ContinuousDecoder(model)
    decoder.join(rows[1])  # the longer prefix (31 phones + 23 prompt tokens)
    decoder.join(rows[0])
    decoder.step()
    assert decoder.cache.length == 31 + 23 + 1  # right-aligned: no gap between rows' prefixes and steps
    while rows[1].result is None:
        decoder.step()
    decoder.step()  # rows[1] has left: the front positions only it used are gone
    longest = 14 + 9 + rows[0].idx
    assert decoder.cache.length == longest


def test_kv_cache_rows_are_added_right_aligned():
    cache = KVCache(1, 0, 1, 0, 2)
    one = KVCache(1, 1, 1, 3, 2)
    one.k[...] = 1.0
    one.length = 3
    two = KVCache(1, 1, 1, 5, 2)
    two.k[...] = 2.0
    two.length = 5
    cache.add_rows(one)
    cache.add_rows(two)
    assert cache.length == 5 and cache.batch_size == 2
    assert cache.blocked[:, :5].tolist() == [[True, True, False, False, False], [False] * 5]
    assert cache.k[0, 0, 0, 2:5, 0].tolist() == [1.0] * 3 and cache.k[0, 1, 0, :5, 0].tolist() == [2.0] * 5
    cache.keep(torch.tensor([0]))
    assert cache.trim_front() == 2 and cache.length == 3 and not bool(cache.blocked[:, :3].any())
