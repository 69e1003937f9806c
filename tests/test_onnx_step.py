"""The int8 GPT's decoding step on ONNX Runtime (``studio.models.onnx_step``, issue 9): the same function as
PyTorch's step (padded batches included), keys/values written into the studio's own cache in place, inside the
quality bounds, and the PyTorch step where ONNX Runtime is missing."""

from __future__ import annotations

import copy

import pytest
import torch

from studio.inference import precision_choice
from studio.models import onnx_step
from studio.models.generate import generate_semantic
from studio.models.kv_cache import KVCache
from studio.models.precision import QUALITY_BOUNDS, convert_gpt, plan_for
from studio.models.precision_quality import gpt_agreement, relative_error, teacher_forced_logits
from studio.models.text2semantic import Text2SemanticConfig, Text2SemanticModel
from studio.models.text2semantic_checkpoint import load_text2semantic

pytestmark = pytest.mark.skipif(not onnx_step.available(), reason="ONNX Runtime is not installed")


def _probe(model, n_text=20, n_tok=30, seed=3):
    gen = torch.Generator().manual_seed(seed)
    phones = torch.randint(0, model.config.phoneme_vocab_size, (1, n_text), generator=gen)
    bert = torch.randn(1, model.config.bert_dim, n_text, generator=gen) * 0.1
    tokens = torch.randint(0, 1024, (1, n_tok), generator=gen)
    return phones, bert, tokens


class _Counted:
    """Counts the ONNX Runtime steps a model takes (wraps its ``onnx_step.run``)."""

    def __init__(self, model) -> None:
        self.step = model.h.onnx_step
        self.real, self.calls = self.step.run, 0
        self.step.run = self._run

    def _run(self, *args, **kwargs):
        self.calls += 1
        return self.real(*args, **kwargs)


@pytest.fixture(scope="module")
def tiny_gpt(golden) -> Text2SemanticModel:
    return load_text2semantic(golden / "tiny_s1.ckpt").model.eval()


def _dequantized_copy(model: Text2SemanticModel) -> Text2SemanticModel:
    """``model`` with every decoder matrix replaced by what its 8-bit blocks stand for: the PyTorch fp32 step of
    this copy computes what the ONNX step computes, up to the rounding of the activations."""
    exact = copy.deepcopy(model)
    with torch.no_grad():
        for layer in exact.h.layers:
            attn = layer.self_attn
            for holder, name in ((attn, "in_proj_weight"), (attn.out_proj, "weight"), (layer.linear1, "weight"),
                                 (layer.linear2, "weight")):  # fmt: skip
                weight = getattr(holder, name)
                q, scale = onnx_step.quantize_blocks(weight, onnx_step.block_size_for(weight.shape[1]))
                weight.copy_(onnx_step.dequantize_blocks(q, scale))
    return exact


def _int8_as_fp32(model: Text2SemanticModel) -> Text2SemanticModel:
    """``model`` with every decoder matrix replaced by its PyTorch int8 version's values (q · row scale)."""
    exact = copy.deepcopy(model)
    light = convert_gpt(copy.deepcopy(model), "int8")
    with torch.no_grad():
        for layer, int8 in zip(exact.h.layers, light.h.layers, strict=True):
            pairs = [(layer.self_attn.in_proj_weight, int8.self_attn.in_proj), (layer.self_attn.out_proj.weight,
                     int8.self_attn.out_proj), (layer.linear1.weight, int8.linear1), (layer.linear2.weight, int8.linear2)]  # fmt: skip
            for weight, converted in pairs:
                q, scale, _ = converted.unpacked()
                weight.copy_(q.float() * scale[:, None])
    return exact


def _cache_values(cache: KVCache) -> tuple[torch.Tensor, torch.Tensor]:
    """The keys and values a cache stands for, fp32 (an int8 cache dequantized with its scales)."""
    if cache.scales is None:
        return cache.k, cache.v
    return tuple(t.float() * s[:, None, :, None, :] for t, s in zip((cache.k, cache.v), cache.scales, strict=True))


@pytest.mark.parametrize("kv", ["fp32", "int8"])
@pytest.mark.parametrize("weights", ["fp32", "int8"])
def test_the_onnx_step_computes_the_pytorch_step_and_fills_the_same_cache(tiny_gpt, weights, kv, monkeypatch):
    """From fp32 weights the step quantizes in blocks; from a PyTorch int8 model it keeps that model's own int8
    values. Either way it computes what PyTorch computes with those values — with an fp32 cache, or with an int8
    one (PyTorch's step then reads the same int8 cache through the same scales)."""
    monkeypatch.setattr(onnx_step, "KV_INT8", kv == "int8")
    if weights == "fp32":
        exact, fast = _dequantized_copy(tiny_gpt), copy.deepcopy(tiny_gpt)
    else:
        exact, fast = _int8_as_fp32(tiny_gpt), convert_gpt(copy.deepcopy(tiny_gpt), "int8")
    assert onnx_step.attach(fast) and fast.kv_dtype == {"fp32": torch.float32, "int8": torch.int8}[kv]
    exact.kv_dtype, exact.kv_scales = fast.kv_dtype, fast.kv_scales
    counted = _Counted(fast)
    phones, bert, tokens = _probe(tiny_gpt)
    caches = []
    logits = []
    for model in (exact, fast):
        with torch.inference_mode():
            cache = KVCache.for_model(model, 1, 64)
            rows = [model.prefill(model.embed_text(phones, bert), None, cache)]
            for i in range(tokens.shape[1] - 1):
                rows.append(model.decode_step(tokens[:, i : i + 1], i, cache))
        caches.append(cache)
        logits.append(torch.cat(rows))
    assert counted.calls == tokens.shape[1] - 1, "every decoding step ran on ONNX Runtime"
    n = caches[0].length
    assert caches[1].length == n == phones.shape[1] + tokens.shape[1] - 1
    assert caches[1].k.dtype == fast.kv_dtype
    # The keys/values ONNX Runtime wrote in place sit where PyTorch's step put them (int8 activations: ~1 %).
    for exact_values, fast_values in zip(_cache_values(caches[0]), _cache_values(caches[1]), strict=True):
        assert relative_error(exact_values[:, :, :, :n], fast_values[:, :, :, :n]) < 0.03
    assert torch.count_nonzero(caches[1].k[:, :, :, n:]) == 0, "nothing is written past the filled positions"
    assert relative_error(logits[0], logits[1]) < 0.03
    agreement = gpt_agreement(logits[0], logits[1])
    assert agreement.passes, agreement


def test_official_size_onnx_step_stays_inside_the_bounds():
    torch.manual_seed(0)
    official = Text2SemanticModel(Text2SemanticConfig.v2()).eval()
    probe = _probe(official, 40, 40, seed=7)
    reference = teacher_forced_logits(official, *probe)
    fast = convert_gpt(official, "int8")
    assert onnx_step.attach(fast) and fast.kv_dtype == torch.int8  # keys/values cached in int8 too
    counted = _Counted(fast)
    agreement = gpt_agreement(reference, teacher_forced_logits(fast, *probe))
    assert counted.calls == probe[2].shape[1] - 1
    assert 0 < agreement.kl <= QUALITY_BOUNDS.gpt_kl_max, agreement
    assert agreement.top1 >= QUALITY_BOUNDS.gpt_top1_min, agreement


def test_padded_batches_decode_on_onnx_runtime_like_pytorch(tiny_gpt):
    """Left-padded sentences (batched decoding) have padding among the cached positions: the ONNX step masks it
    as PyTorch's step does, row by row."""
    exact = _dequantized_copy(tiny_gpt)
    fast = copy.deepcopy(tiny_gpt)
    assert onnx_step.attach(fast)
    counted = _Counted(fast)
    gen = torch.Generator().manual_seed(5)
    lengths = (7, 12)
    text = torch.zeros(2, max(lengths), tiny_gpt.config.hidden_dim)
    padding = torch.zeros(2, max(lengths), dtype=torch.bool)
    for row, n in enumerate(lengths):
        phones = torch.randint(0, 700, (1, n), generator=gen)
        text[row, -n:] = tiny_gpt.embed_text(phones, torch.randn(1, 1024, n, generator=gen) * 0.1)[0].detach()
        padding[row, : max(lengths) - n] = True
    prompt = torch.randint(0, 1024, (2, 10), generator=gen)
    steps = torch.randint(0, 1024, (2, 15), generator=gen)
    logits = []
    for model in (exact, fast):
        with torch.inference_mode():
            cache = KVCache.for_model(model, 2, 64)
            rows = [model.prefill(text, prompt, cache, text_padding=padding)]
            for i in range(steps.shape[1]):
                rows.append(model.decode_step(steps[:, i : i + 1], 10 + i, cache))
        logits.append(torch.stack(rows))  # (steps, B, V)
    assert counted.calls == steps.shape[1]
    assert relative_error(logits[0], logits[1]) < 0.03
    for row in range(2):
        assert gpt_agreement(logits[0][:, row], logits[1][:, row]).passes


def test_a_lone_sentence_decodes_on_onnx_runtime(tiny_gpt):
    fast = convert_gpt(copy.deepcopy(tiny_gpt), "int8")
    assert onnx_step.attach(fast)
    counted = _Counted(fast)
    phones, bert, tokens = _probe(tiny_gpt, 9, 12)
    result = generate_semantic(fast, phones, bert, tokens[0], max_steps=25, generator=torch.Generator().manual_seed(0))
    assert counted.calls == result.n_steps - 1 > 0
    assert 0 < result.tokens.numel() <= 25


def test_the_plan_names_the_runtime_and_falls_back_without_onnx_runtime(tiny_gpt, tiny_s2_pth, monkeypatch):
    from studio.models.sovits.checkpoint import load_sovits

    plan = plan_for("int8", fast_bf16=False, onnx_step=True)
    assert plan.gpt_runtime == "onnxruntime" and "ONNX Runtime" in plan.describe()
    assert plan_for("bf16", fast_bf16=False, onnx_step=True).gpt_runtime == "pytorch"
    sovits = load_sovits(tiny_s2_pth).model
    held, _ = precision_choice.apply_plan(copy.deepcopy(tiny_gpt), sovits, plan)
    assert held.gpt_runtime == "onnxruntime"
    monkeypatch.setattr(onnx_step, "available", lambda: False)
    gpt = copy.deepcopy(tiny_gpt)
    held, reload_gpt = precision_choice.apply_plan(gpt, sovits, plan)
    assert not reload_gpt and held.gpt_runtime == "pytorch" and "unavailable" in held.reason
    assert gpt.h.onnx_step is None and held.gpt == "int8"


def test_the_runtime_can_be_forced(monkeypatch):
    speeds = precision_choice.MachineSpeeds({"fp32": 10.0, "int8": 4.0, "int8-onnx": 2.0}, {"fp32": 1.0})
    assert speeds.onnx_faster and speeds.fastest_mode() == "int8"
    assert precision_choice._use_onnx(speeds)
    monkeypatch.setenv(precision_choice.RUNTIME_ENV, "pytorch")
    assert not precision_choice._use_onnx(speeds)
    slower = precision_choice.MachineSpeeds({"fp32": 10.0, "int8": 4.0, "int8-onnx": 5.0}, {"fp32": 1.0})
    monkeypatch.delenv(precision_choice.RUNTIME_ENV)
    assert not slower.onnx_faster and not precision_choice._use_onnx(slower)


@pytest.mark.parametrize("runtime", ["pytorch fp32", "onnxruntime int8"])
def test_a_growing_cache_decodes_the_same_tokens(tiny_gpt, runtime, monkeypatch):
    """A decoding call starts with room for a few steps and grows its cache; the tokens do not change (the ONNX
    step binds the grown buffers)."""
    from studio.models import generate

    model = copy.deepcopy(tiny_gpt)
    if runtime.startswith("onnx"):
        assert onnx_step.attach(convert_gpt(model, "int8"))
    phones, bert, tokens = _probe(tiny_gpt, 9, 12, seed=11)

    def run():
        gen = torch.Generator().manual_seed(4)
        return generate_semantic(model, phones, bert, tokens[0], max_steps=60, generator=gen, top_k=5)

    roomy = run()
    monkeypatch.setattr(generate, "INITIAL_STEPS", 3)
    tight = run()
    assert roomy.n_steps > 8, "the sentence outgrows the small cache"
    assert torch.equal(roomy.tokens, tight.tokens)


def test_continuous_batching_on_onnx_runtime_decodes_each_row_as_alone(tiny_gpt):
    """Rows of the server's shared batch (right-aligned, padding in front of the shorter ones) step on ONNX
    Runtime and give what each gives alone, up to float rounding."""
    from studio.models.batch_decode import decode_together, make_row

    fast = convert_gpt(copy.deepcopy(tiny_gpt), "int8")
    assert onnx_step.attach(fast)
    counted = _Counted(fast)
    probes = [_probe(tiny_gpt, n_text, 12, seed=seed) for n_text, seed in ((6, 1), (11, 2))]

    def row(probe, seed):
        phones, bert, tokens = probe
        gen = torch.Generator().manual_seed(seed)
        return make_row(fast, phones, bert, tokens[0, :8], max_steps=20, generator=gen, record_logits=True)

    head = fast.ar_predict_layer
    pytorch_heads = []
    head.register_forward_hook(lambda _m, args, _out: pytorch_heads.append(args[0].shape[0]))
    together = decode_together(fast, [row(p, 10 + i) for i, p in enumerate(probes)], join_at=[0, 3])
    batched_calls = counted.calls
    assert batched_calls > 0
    # A shared step is one ONNX Runtime call with its output layer: PyTorch's layer only ends each row's prefill
    # (running it beside ONNX Runtime's busy threads made a batched step twice as slow as a lone one).
    assert len(pytorch_heads) == len(probes)
    for i, (phones, bert, tokens) in enumerate(probes):
        gen = torch.Generator().manual_seed(10 + i)
        alone = generate_semantic(fast, phones, bert, tokens[0, :8], max_steps=20, generator=gen, record_logits=True)
        assert torch.equal(alone.tokens, together[i].tokens)
        assert relative_error(alone.step_logits, together[i].step_logits) < 1e-4


def test_onnx_runtime_writes_int8_keys_as_the_prefill_quantizes_them():
    """The prefill (PyTorch, ``quantize_int8``) and ONNX Runtime's attention (each decoded position) fill the same
    int8 cache: both must round halves to even and clip to [−128, 127] alike, or a position's keys would shift
    by the path that wrote them."""
    import numpy as np
    import onnxruntime as ort
    from onnx import TensorProto, helper

    from studio.models.kv_cache import quantize_int8

    dh, scale = 16, 0.5
    keys = torch.tensor([0.25, 0.75, 1.25, -0.25, -0.75, -1.25, 63.75, 64.0, 70.0, -64.25, -70.0, 0.2, -0.3,
                         1.75, 2.25, 100.0])  # fmt: skip
    cache_info = [helper.make_tensor_value_info(n, TensorProto.INT8, [1, 1, 4, dh]) for n in ("k", "v", "ko", "vo")]
    scales = [helper.make_tensor(n, TensorProto.FLOAT, [1, 1, 1, dh], [scale] * dh) for n in ("ks", "vs")]
    node = helper.make_node(
        "GroupQueryAttention", ["qkv", "", "", "k", "v", "past", "total", "", "", "", "", "", "ks", "vs"],
        ["out", "ko", "vo"], domain="com.microsoft", num_heads=1, kv_num_heads=1,
        k_quant_type="PER_CHANNEL", v_quant_type="PER_CHANNEL", kv_cache_bit_width=8,
    )  # fmt: skip
    inputs = [helper.make_tensor_value_info("qkv", TensorProto.FLOAT, [1, 1, 3 * dh]), *cache_info[:2],
              *(helper.make_tensor_value_info(n, TensorProto.INT32, [1]) for n in ("past", "total"))]  # fmt: skip
    outputs = [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 1, dh]), *cache_info[2:]]
    graph = helper.make_graph([node], "one_attention", inputs, outputs, scales)
    proto = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)]
    )
    proto.ir_version = 9
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    k_cache, v_cache = np.zeros((1, 1, 4, dh), np.int8), np.zeros((1, 1, 4, dh), np.int8)
    binding = session.io_binding()
    binding.bind_cpu_input("qkv", torch.cat([torch.zeros(dh), keys, -keys]).reshape(1, 1, -1).numpy())
    binding.bind_cpu_input("past", np.array([1], np.int32))
    binding.bind_cpu_input("total", np.array([2], np.int32))
    for name, store in (("k", k_cache), ("v", v_cache)):
        binding.bind_input(name, "cpu", 0, np.int8, list(store.shape), store.ctypes.data)
        binding.bind_output(f"{name}o", "cpu", 0, np.int8, list(store.shape), store.ctypes.data)
    binding.bind_output("out", "cpu")
    session.run_with_iobinding(binding)
    written_k, written_v = torch.from_numpy(k_cache[0, 0, 1]), torch.from_numpy(v_cache[0, 0, 1])
    assert torch.equal(written_k, quantize_int8(keys, torch.tensor(scale)))
    assert torch.equal(written_v, quantize_int8(-keys, torch.tensor(scale)))
    assert written_k[:3].tolist() == [0, 2, 2] and written_k[7:9].tolist() == [127, 127]  # halves to even; clipped


def test_int8_kv_scales_cover_the_calibration_and_bind_a_cache_to_its_model(tiny_gpt):
    """The calibrated scales hold another prefill's keys/values within half a step (no clipping, the margin to
    spare); an int8 cache takes rows only from a cache with the same scales."""
    model = convert_gpt(copy.deepcopy(tiny_gpt), "int8")
    assert onnx_step.attach(model) and model.kv_dtype == torch.int8
    cfg = model.config
    k_scale, v_scale = model.kv_scales
    assert k_scale.shape == v_scale.shape == (cfg.n_layer, cfg.n_head, cfg.hidden_dim // cfg.n_head)
    assert bool((k_scale > 0).all()) and bool((v_scale > 0).all())
    phones, bert, tokens = _probe(tiny_gpt, 16, 24, seed=9)
    caches = {}
    for form in ("fp32", "int8"):
        model.kv_dtype = {"fp32": torch.float32, "int8": torch.int8}[form]
        with torch.inference_mode():
            caches[form] = KVCache.for_model(model, 1, 64)
            model.prefill(model.embed_text(phones, bert), tokens, caches[form])
    n = caches["fp32"].length
    for exact, stored, scale in zip(_cache_values(caches["fp32"]), _cache_values(caches["int8"]), model.kv_scales,
                                    strict=True):  # fmt: skip
        # The first layer's keys/values come straight from the embeddings: stored within half a step. Later layers
        # read the earlier ones' int8 keys in their own attention, so they move a little more.
        error = (exact[0, :, :, :n] - stored[0, :, :, :n]).abs()
        assert bool((error <= scale[0][None, :, None, :] / 2 + 1e-6).all())
        assert relative_error(exact[:, :, :, :n], stored[:, :, :, :n]) < 0.03
        peak = exact[:, :, :, :n].abs().amax(dim=(1, 3))
        assert float((peak / (127 * scale)).max()) < 0.9, "unseen inputs stay well inside the range"
    other = KVCache(cfg.n_layer, 1, cfg.n_head, 8, cfg.hidden_dim // cfg.n_head, dtype=torch.int8,
                    scales=(k_scale.clone(), v_scale.clone()))  # fmt: skip
    other.advance(4)
    with pytest.raises(ValueError, match="same scales"):
        caches["int8"].add_rows(other)
    with pytest.raises(ValueError, match="needs its"):
        KVCache(cfg.n_layer, 1, cfg.n_head, 8, cfg.hidden_dim // cfg.n_head, dtype=torch.int8)


def test_a_kept_quality_verdict_names_the_steps_cache_form(monkeypatch):
    """A voice judged with fp32 keys/values is judged again when the step caches them in int8 (and back)."""
    key = precision_choice._check_key("voice.ckpt | 1 | 2", "int8", "onnxruntime")
    monkeypatch.setattr(onnx_step, "KV_INT8", False)
    assert precision_choice._check_key("voice.ckpt | 1 | 2", "int8", "onnxruntime") != key


def test_an_onnx_runtime_without_int8_caches_keeps_its_step_with_fp32_ones(tiny_gpt, monkeypatch, caplog):
    """An older ONNX Runtime refuses the int8-cache attention: the step is still taken, caching in fp32."""
    build = onnx_step.build_step_graph

    def no_int8_caches(model, folder, kv_scales=None):
        if kv_scales is not None:
            raise RuntimeError("Could not find an implementation for GroupQueryAttention(1) with T_CACHE int8")
        return build(model, folder)

    monkeypatch.setattr(onnx_step, "build_step_graph", no_int8_caches)
    fast = convert_gpt(copy.deepcopy(tiny_gpt), "int8")
    assert onnx_step.attach(fast)
    assert fast.kv_dtype == torch.float32 and fast.kv_scales is None
    assert "stay fp32" in caplog.text
    counted = _Counted(fast)
    phones, bert, tokens = _probe(tiny_gpt, 9, 12)
    result = generate_semantic(fast, phones, bert, tokens[0], max_steps=10, generator=torch.Generator().manual_seed(0))
    assert counted.calls == result.n_steps - 1 > 0
