"""The static-shape decoding step (the CUDA-graph path) on CPU: same logits and tokens as the dynamic path,
bucket moves, rows leaving, and the fp32 redo when a 16-bit step overflows. Graph capture itself needs a GPU
(bench/gpu_check.sh); everything around it runs here."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from golden_utils import assert_close, rel_l2
from s1_golden_cases import resolve, runs, s1_run_names, sampling_kwargs, tensors

from studio.models import static_decode
from studio.models.generate import generate_semantic, generate_semantic_batch
from studio.models.kv_cache import KVCache
from studio.models.static_decode import (
    StaticDecodeConfig,
    StaticDecoder,
    bucket_for,
    configure_static_decode,
    static_decoder,
)
from studio.models.text2semantic import Text2SemanticModel
from studio.models.text2semantic_checkpoint import load_text2semantic

SMALL_BUCKETS = (16, 32, 48)  # the golden sequences cross several of them


@pytest.fixture
def golden_model(tiny_s1_ckpt):
    model = load_text2semantic(tiny_s1_ckpt).model
    configure_static_decode(model, StaticDecodeConfig(use="on", buckets=SMALL_BUCKETS))
    return model


def _random_model(seed: int = 0) -> Text2SemanticModel:
    torch.manual_seed(seed)
    model = Text2SemanticModel.from_name("tiny").eval()
    with torch.no_grad():
        for p in model.parameters():  # no parameter left at a constant initialisation
            p.add_(torch.randn_like(p) * 0.05)
    return model


def _inputs(model, lengths: list[int], n_prompt: int, seed: int = 1):
    """Left-padded text embeddings (B, T, D), their padding map (None for one row) and a prompt (B, P)."""
    g = torch.Generator().manual_seed(seed)
    with torch.inference_mode():
        embedded = [
            model.embed_text(torch.randint(1, 700, (1, n), generator=g), torch.randn(1, 1024, n, generator=g))[0]
            for n in lengths
        ]
    longest = max(lengths)
    text_emb = torch.stack([F.pad(e, (0, 0, longest - e.shape[0], 0)) for e in embedded])
    padding = torch.arange(longest)[None, :] < (longest - torch.tensor(lengths))[:, None]
    prompt = torch.randint(0, 1024, (len(lengths), n_prompt), generator=g)
    return text_emb, (padding if len(lengths) > 1 else None), prompt


def _teacher_forced(runner, cache, text_emb, padding, prompt, tokens, keep_at=None, keep=None):
    """Logits of the prefill and of one step per column of ``tokens`` (B, N); rows ``keep`` stay after step
    ``keep_at``. Works for the model with a KVCache and for a StaticDecoder (its own cache)."""
    with torch.inference_mode():
        out = [runner.prefill(text_emb, prompt, cache, text_padding=padding)]
        rows = torch.arange(tokens.shape[0])
        for i in range(tokens.shape[1]):
            if i == keep_at:
                cache.keep(keep)
                rows = rows[keep]
            out.append(runner.decode_step(tokens[rows, i : i + 1], prompt.shape[1] + i, cache))
    return out


def _dynamic(model, text_emb, padding, prompt, tokens, **kw):
    cache = KVCache.for_model(model, text_emb.shape[0], text_emb.shape[1] + prompt.shape[1] + tokens.shape[1])
    return _teacher_forced(model, cache, text_emb, padding, prompt, tokens, **kw)


def _static(model, text_emb, padding, prompt, tokens, **kw):
    decoder = static_decoder(model)
    assert isinstance(decoder, StaticDecoder)
    return _teacher_forced(decoder, decoder, text_emb, padding, prompt, tokens, **kw), decoder


def test_buckets_and_when_the_static_path_is_taken(monkeypatch):
    assert [bucket_for(n, (256, 512)) for n in (1, 256, 257, 513, 1500)] == [256, 256, 512, 1024, 2048]
    model = _random_model()
    assert static_decoder(model) is None  # auto: CUDA only, so CPU keeps the exact dynamic path
    configure_static_decode(model, StaticDecodeConfig(use="on"))
    assert isinstance(static_decoder(model), StaticDecoder)
    monkeypatch.setenv(static_decode.ENV_SWITCH, "off")
    assert static_decoder(model) is None
    monkeypatch.delenv(static_decode.ENV_SWITCH)
    model.train()
    assert static_decoder(model) is None  # dropout is on: only the dynamic path applies it
    with pytest.raises(ValueError, match="increasing"):
        StaticDecodeConfig(buckets=(64, 32))
    with pytest.raises(ValueError, match="dtype"):
        StaticDecodeConfig(dtype="int4")


def test_static_steps_equal_dynamic_steps_across_buckets(golden_model):
    text_emb, padding, prompt = _inputs(golden_model, [9], n_prompt=5)
    tokens = torch.randint(0, 1024, (1, 40), generator=torch.Generator().manual_seed(2))
    want = _dynamic(golden_model, text_emb, padding, prompt, tokens)
    got, decoder = _static(golden_model, text_emb, padding, prompt, tokens)
    assert decoder.slot.capacity == 96  # 9 + 5 + 40 columns: moved 16 → 32 → 48 → 96 (the largest, doubled)
    for i, (g, w) in enumerate(zip(got, want)):
        assert_close(g, w, what=f"step {i}")


def test_static_steps_with_padding_and_rows_leaving():
    model = _random_model()
    configure_static_decode(model, StaticDecodeConfig(use="on", buckets=(32, 64)))
    text_emb, padding, prompt = _inputs(model, [7, 12, 4], n_prompt=6)
    tokens = torch.randint(0, 1024, (3, 30), generator=torch.Generator().manual_seed(3))
    keep = torch.tensor([0, 2])
    want = _dynamic(model, text_emb, padding, prompt, tokens, keep_at=17, keep=keep)
    got, decoder = _static(model, text_emb, padding, prompt, tokens, keep_at=17, keep=keep)
    assert got[-1].shape == (2, model.config.vocab_size) and decoder.slot.capacity == 64
    for i, (g, w) in enumerate(zip(got, want)):
        assert_close(g, w, what=f"step {i}")


@pytest.mark.parametrize("name", s1_run_names("naive"))
def test_generate_through_the_static_path_matches_upstream(golden_model, name, monkeypatch):
    steps = []
    real = StaticDecoder.decode_step
    monkeypatch.setattr(StaticDecoder, "decode_step", lambda self, *a: steps.append(1) or real(self, *a))
    run, gold = runs()["s1"][name], tensors()
    result = generate_semantic(
        golden_model,
        resolve(run["x"]),
        resolve(run["bert_feature"]),
        resolve(run["prompts"]),
        **sampling_kwargs(run),
        record_logits=True,
    )
    assert len(steps) == result.n_steps - 1  # every step after the prefill went through the static decoder
    assert_close(result.step_logits, gold[f"s1_{name}_logits_per_step"], what=f"{name} per-step logits")
    np.testing.assert_array_equal(result.sequence.numpy(), gold[f"s1_{name}_y_full"][0])
    assert result.idx == int(gold[f"s1_{name}_idx"])


@pytest.mark.parametrize("name", s1_run_names("batch"))
def test_batched_generate_through_the_static_path_matches_upstream(golden_model, name):
    run, gold, s1 = runs()["s1"][name], tensors(), runs()["s1"]
    phones, bert = resolve("s1_in_all_phone_ids")[0], resolve("s1_in_bert")[0]
    items = [(phones[: s1["n_prompt_phones"] + n], bert[:, : s1["n_prompt_phones"] + n]) for n in run["items_n_target_phones"]]  # fmt: skip
    results = generate_semantic_batch(
        golden_model, items, resolve("s1_in_prompt_semantic"), **sampling_kwargs(run), record_logits=True
    )
    step0 = torch.stack([r.step_logits[0] for r in results])
    assert_close(step0, gold[f"s1_{name}_logits_step0"], what=f"{name} step-0 logits")
    for i, result in enumerate(results):
        np.testing.assert_array_equal(result.sequence.numpy(), gold[f"s1_{name}_item{i}_y"], err_msg=f"item {i}")


def _overflowing_model(token: int) -> Text2SemanticModel:
    """A model whose embedding of ``token`` exceeds fp16's range (65504) in one dimension: fine in fp32, inf in
    a 16-bit copy, so only a step fed that token overflows."""
    model = _random_model(seed=5)
    with torch.no_grad():
        model.ar_audio_embedding.word_embeddings.weight[token, 0] = 1e5
    return model


def test_a_16_bit_step_that_overflows_is_redone_in_fp32_and_stays_fp32():
    bad = 777
    model = _overflowing_model(bad)
    text_emb, padding, prompt = _inputs(model, [8], n_prompt=4)
    tokens = torch.randint(0, 700, (1, 12), generator=torch.Generator().manual_seed(4))
    tokens[0, 5] = bad  # fed at the sixth step
    want = _dynamic(model, text_emb, padding, prompt, tokens)
    configure_static_decode(model, StaticDecodeConfig(use="on", dtype="fp16", buckets=(16, 32)))
    decoder = static_decoder(model)
    assert decoder.dtype == torch.float16
    with torch.inference_mode():
        got = [decoder.prefill(text_emb, prompt, text_padding=padding)]
        for i in range(5):  # 16-bit steps: close to fp32, not equal
            got.append(decoder.decode_step(tokens[:, i : i + 1], prompt.shape[1] + i))
        assert not decoder.fell_back and decoder.dtype == torch.float16
        half_errors = [rel_l2(g, w) for g, w in zip(got[1:], want[1:6])]
        assert 0 < max(half_errors) < 2e-2, half_errors
        for i in range(5, tokens.shape[1]):
            got.append(decoder.decode_step(tokens[:, i : i + 1], prompt.shape[1] + i))
    assert decoder.fell_back and decoder.dtype == torch.float32
    for i in range(6, len(got)):  # the overflowing step and every later one: the fp32 logits
        assert torch.isfinite(got[i]).all()
        assert_close(got[i], want[i], what=f"step {i} after the fp32 redo")
    # the same step in the 16-bit copy alone really overflows
    with torch.inference_mode():
        half = model.ar_audio_embedding.word_embeddings.weight[bad].half()
    assert not torch.isfinite(half).all()


def test_a_16_bit_copy_follows_weights_changed_in_place():
    model = _random_model(seed=6)
    configure_static_decode(model, StaticDecodeConfig(use="on", dtype="bf16", buckets=(32,)))
    text_emb, padding, prompt = _inputs(model, [6], n_prompt=3)
    tokens = torch.randint(0, 1024, (1, 4), generator=torch.Generator().manual_seed(5))
    before, _ = _static(model, text_emb, padding, prompt, tokens)
    with torch.no_grad():
        model.ar_predict_layer.weight.mul_(1.5)  # e.g. an optimizer step on the live model
    after, decoder = _static(model, text_emb, padding, prompt, tokens)
    want = _dynamic(model, text_emb, padding, prompt, tokens)
    assert not decoder.fell_back
    assert rel_l2(after[-1], want[-1]) < 2e-2  # bf16 steps of the new weights
    assert rel_l2(before[-1], want[-1]) > 0.2  # not the stale copy


def test_a_model_made_in_inference_mode_with_a_short_positional_table():
    """Parameters that are inference tensors, and a positional table that must grow for the bucket."""
    from dataclasses import replace

    from studio.models.text2semantic import PRESETS

    with torch.inference_mode():
        torch.manual_seed(7)
        model = Text2SemanticModel(replace(PRESETS["tiny"], max_positions=8)).eval()
        _, _, prompt = _inputs(model, [5], n_prompt=3)
    phones, bert = torch.randint(1, 700, (7,)), torch.randn(1024, 7)
    kw = dict(top_k=5, max_steps=30, early_stop_num=-1)
    want = generate_semantic(model, phones, bert, prompt, generator=torch.Generator().manual_seed(1), **kw)
    configure_static_decode(model, StaticDecodeConfig(use="on", buckets=(16, 32)))
    got = generate_semantic(model, phones, bert, prompt, generator=torch.Generator().manual_seed(1), **kw)
    assert got.n_steps == want.n_steps > 12
    assert got.tokens.tolist() == want.tokens.tolist()


def test_the_fp32_redo_after_rows_left_the_batch():
    bad = 777
    model = _overflowing_model(bad)
    text_emb, padding, prompt = _inputs(model, [8, 5, 6], n_prompt=4)
    tokens = torch.randint(0, 700, (3, 9), generator=torch.Generator().manual_seed(6))
    tokens[:, 6] = bad
    keep = torch.tensor([0, 2])
    want = _dynamic(model, text_emb, padding, prompt, tokens, keep_at=3, keep=keep)
    configure_static_decode(model, StaticDecodeConfig(use="on", dtype="fp16", buckets=(16, 32)))
    got, decoder = _static(model, text_emb, padding, prompt, tokens, keep_at=3, keep=keep)
    assert decoder.fell_back and got[-1].shape[0] == 2
    assert 0 < rel_l2(got[6], want[6]) < 2e-2  # 16-bit steps before the bad token
    for i in range(7, len(got)):
        assert_close(got[i], want[i], what=f"step {i} after the fp32 redo")


@pytest.mark.parametrize("mode", ["bf16", "int8"])
def test_a_precision_mode_runs_its_own_modules_in_the_static_step(mode):
    """A GPT converted by a precision mode (bf16/int8 products, bf16 keys/values) steps through its own modules,
    in fp32 activations: as far from fp32 as that mode's dynamic path is (its rounding, in another order)."""
    from studio.models.precision import convert_gpt, int8_available

    if mode == "int8" and not int8_available():
        pytest.skip("this PyTorch build has no quantized int8 kernel")
    text_emb, padding, prompt = _inputs(_random_model(seed=8), [6, 9], n_prompt=5)
    tokens = torch.randint(0, 1024, (2, 20), generator=torch.Generator().manual_seed(9))
    exact = _dynamic(_random_model(seed=8), text_emb, padding, prompt, tokens)
    model = convert_gpt(_random_model(seed=8), mode)
    configure_static_decode(model, StaticDecodeConfig(use="on", dtype="auto", buckets=(16, 32)))
    want = _dynamic(model, text_emb, padding, prompt, tokens)
    got, decoder = _static(model, text_emb, padding, prompt, tokens)
    assert decoder.dtype == torch.float32 and decoder.slot.k.dtype == torch.bfloat16
    static_err = [rel_l2(g, e) for g, e in zip(got[1:], exact[1:])]
    dynamic_err = [rel_l2(w, e) for w, e in zip(want[1:], exact[1:])]
    assert 1e-4 < min(static_err) and max(static_err) < 2 * max(dynamic_err), (static_err, dynamic_err)
    same_top1 = torch.cat([g.argmax(-1) == w.argmax(-1) for g, w in zip(got, want)]).float().mean()
    assert same_top1 >= 0.95
