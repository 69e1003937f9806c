"""GPT decoding and training loss against upstream's goldens, plus decoding invariants (tiny model, CPU)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from golden_utils import assert_close
from s1_golden_cases import resolve, runs, s1_run_names, sampling_kwargs, tensors

from studio.models.generate import (
    MUTE_TOKEN,
    generate_semantic,
    generate_semantic_batch,
    silence_cut,
    silence_similarity,
    stream_semantic,
)
from studio.models.text2semantic_checkpoint import load_text2semantic
from studio.training.gpt_loss import text2semantic_loss


@pytest.fixture(scope="module")
def model(tiny_s1_ckpt):
    return load_text2semantic(tiny_s1_ckpt).model


def _run(name: str) -> dict:
    return runs()["s1"][name]


@pytest.mark.parametrize("name", s1_run_names("naive"))
def test_naive_decoding_matches_upstream(model, name):
    run = _run(name)
    gold = tensors()
    result = generate_semantic(
        model,
        resolve(run["x"]),
        resolve(run["bert_feature"]),
        resolve(run["prompts"]),
        **sampling_kwargs(run),
        record_logits=True,
    )
    assert_close(result.step_logits, gold[f"s1_{name}_logits_per_step"], what=f"{name} per-step logits")
    assert result.n_steps == run["n_steps"]
    np.testing.assert_array_equal(result.sequence.numpy(), gold[f"s1_{name}_y_full"][0])
    assert result.idx == int(gold[f"s1_{name}_idx"])
    # what the synthesiser receives: upstream's y[:, -idx:]
    idx = int(gold[f"s1_{name}_idx"])
    np.testing.assert_array_equal(result.tokens.numpy(), gold[f"s1_{name}_y_full"][0][-idx:])


@pytest.mark.parametrize("name", s1_run_names("batch"))
def test_batched_decoding_matches_upstream(model, name):
    run = _run(name)
    gold = tensors()
    s1 = runs()["s1"]
    phones, bert = resolve("s1_in_all_phone_ids")[0], resolve("s1_in_bert")[0]
    lengths = [s1["n_prompt_phones"] + n for n in run["items_n_target_phones"]]
    assert max(lengths) == run.get("max_len", max(lengths))
    items = [(phones[:n], bert[:, :n]) for n in lengths]
    results = generate_semantic_batch(
        model, items, resolve("s1_in_prompt_semantic"), **sampling_kwargs(run), record_logits=True
    )
    step0 = torch.stack([r.step_logits[0] for r in results])
    assert_close(step0, gold[f"s1_{name}_logits_step0"], what=f"{name} step-0 logits")
    for i, result in enumerate(results):
        np.testing.assert_array_equal(result.sequence.numpy(), gold[f"s1_{name}_item{i}_y"], err_msg=f"item {i}")
        assert result.idx == int(gold[f"s1_{name}_item{i}_idx"])


@pytest.mark.parametrize("name", s1_run_names("train"))
def test_training_loss_matches_upstream(model, name):
    run = _run(name)
    gold = tensors()
    x, x_lens, y, y_lens, bert = (resolve(k) for k in run["inputs"])
    loss_key, acc_key = run["outputs"]
    with torch.no_grad():
        out = text2semantic_loss(model, x, x_lens, y, y_lens, bert, upstream_padding_quirk=True)
    assert abs(out.loss.item() - float(gold[loss_key])) <= 1e-5 * abs(float(gold[loss_key]))
    assert abs(out.top3_accuracy - float(gold[acc_key])) <= 1e-5 * max(abs(float(gold[acc_key])), 1e-12)


def test_corrected_loss_is_independent_of_batching(model):
    """Without the quirk an item's loss is the same alone and right-padded inside a batch."""
    run = _run(s1_run_names("train")[0])
    x, x_lens, y, y_lens, bert = (resolve(k) for k in run["inputs"])
    with torch.no_grad():
        batch = text2semantic_loss(model, x, x_lens, y, y_lens, bert).loss
        alone = sum(
            text2semantic_loss(
                model,
                x[i : i + 1, : x_lens[i]],
                x_lens[i : i + 1],
                y[i : i + 1, : y_lens[i]],
                y_lens[i : i + 1],
                bert[i : i + 1, :, : x_lens[i]],
            ).loss
            for i in range(x.shape[0])
        )
        quirk = text2semantic_loss(model, x, x_lens, y, y_lens, bert, upstream_padding_quirk=True).loss
    assert abs(batch.item() - alone.item()) < 1e-4 * abs(alone.item())
    assert abs(quirk.item() - alone.item()) > 1e-3 * abs(alone.item())  # the padding quirk really differs


def test_loss_backpropagates(model):
    run = _run(s1_run_names("train")[0])
    x, x_lens, y, y_lens, bert = (resolve(k) for k in run["inputs"])
    model.zero_grad()
    text2semantic_loss(model, x, x_lens, y, y_lens, bert).loss.backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    model.zero_grad(set_to_none=True)


def _inputs():
    return resolve("s1_in_all_phone_ids"), resolve("s1_in_bert"), resolve("s1_in_prompt_semantic")


def test_same_seed_same_tokens_and_seeds_matter(model):
    x, bert, prompt = _inputs()
    kw = dict(top_k=15, top_p=0.9, temperature=1.0, repetition_penalty=1.35, max_steps=40)

    def tokens(seed: int) -> list[int]:
        gen = torch.Generator().manual_seed(seed)
        return generate_semantic(model, x, bert, prompt, generator=gen, **kw).tokens.tolist()

    assert tokens(7) == tokens(7)
    assert any(tokens(s) != tokens(7) for s in (8, 9, 10))


def test_streaming_chunks_and_on_token_follow_the_decode(model):
    x, bert, prompt = _inputs()
    kw = dict(top_k=15, top_p=1.0, temperature=1.0, repetition_penalty=1.35, max_steps=37)
    seen: list[int] = []
    full = generate_semantic(
        model, x, bert, prompt, generator=torch.Generator().manual_seed(3), on_token=lambda t, s: seen.append(t), **kw
    )
    chunks = list(
        stream_semantic(model, x, bert, prompt, chunk_size=8, generator=torch.Generator().manual_seed(3), **kw)
    )
    assert all(len(c.tokens) == 8 for c in chunks[:-1]) and chunks[-1].final and not any(c.final for c in chunks[:-1])
    streamed = torch.cat([c.tokens for c in chunks]).tolist()
    n_prompt = prompt.shape[1]
    assert streamed == seen == full.sequence[n_prompt:].tolist()
    assert chunks[-1].result.tokens.tolist() == full.tokens.tolist()


def test_stream_chunks_grow_from_a_short_first_one(model):
    """The first chunk is short (first audio sooner), then each doubles up to chunk_size; nothing is lost."""
    x, bert, prompt = _inputs()
    kw = dict(early_stop_num=-1, max_steps=40)
    full = generate_semantic(model, x, bert, prompt, generator=torch.Generator().manual_seed(3), **kw)
    chunks = list(
        stream_semantic(
            model, x, bert, prompt, chunk_size=16, first_chunk_size=2, generator=torch.Generator().manual_seed(3), **kw
        )
    )
    sizes = [len(c.tokens) for c in chunks[:-1]]
    assert sizes[:4] == [2, 4, 8, 16] and all(n == 16 for n in sizes[4:])
    assert torch.cat([c.tokens for c in chunks]).tolist() == full.sequence[prompt.shape[1] :].tolist()


def test_silence_cut_follows_the_mode2_rule():
    sim = torch.full((1025,), -0.5)
    sim[7] = 0.9  # a pause-like token
    assert silence_cut([1] * 9, sim, chunk_size=8) == 0  # fewer than chunk_size + 2 waiting
    assert silence_cut([1] * 12, sim, chunk_size=8) == 0  # nothing pause-like: keep generating
    assert silence_cut([1] * 9 + [7, 7, 1], sim, chunk_size=8) == 10  # two in a row beat one
    assert silence_cut([7, 7] + [1] * 10, sim, chunk_size=8) == 0  # a pause too early for a full chunk


def test_silence_streaming_loses_no_token(model):
    x, bert, prompt = _inputs()
    kw = dict(top_k=15, top_p=1.0, temperature=1.0, repetition_penalty=1.35, max_steps=60)
    full = generate_semantic(model, x, bert, prompt, generator=torch.Generator().manual_seed(5), **kw)
    chunks = list(
        stream_semantic(
            model, x, bert, prompt, chunk_size=6, cut_at_silence=True, generator=torch.Generator().manual_seed(5), **kw
        )
    )
    assert torch.cat([c.tokens for c in chunks]).tolist() == full.sequence[prompt.shape[1] :].tolist()
    assert all(len(c.tokens) >= 6 for c in chunks[:-1])
    sim = silence_similarity(model)
    assert sim.shape == (model.config.vocab_size,) and sim[MUTE_TOKEN] == pytest.approx(1.0)


def test_step_cap_and_eos_ban(model):
    """max_steps stops decoding; no EOS can end it before step 11 and EOS never reaches the tokens."""
    x, bert, prompt = _inputs()
    result = generate_semantic(model, x, bert, prompt, top_k=1, max_steps=12, repetition_penalty=1.0)
    assert result.n_steps <= 12 and result.stop_reason in {"eos", "max_steps"}
    assert result.n_steps >= 11
    assert model.config.eos not in result.tokens.tolist()
    if result.stop_reason == "max_steps":  # upstream's [-idx:] slice drops the first generated token
        assert result.tokens.tolist() == result.sequence[-(result.n_steps - 1) :].tolist()


def test_batch_without_prompt_falls_back_to_single_decoding(model):
    x, bert, _ = _inputs()
    items = [(x[0, 5:], bert[0, :, 5:]), (x[0, 9:], bert[0, :, 9:])]
    batch = generate_semantic_batch(model, items, None, top_k=1, early_stop_num=15)
    single = [generate_semantic(model, a, b, None, top_k=1, early_stop_num=15) for a, b in items]
    assert [r.tokens.tolist() for r in batch] == [r.tokens.tolist() for r in single]
    assert all(r.idx == 0 for r in batch)
