"""The GPT's decoding step on ONNX Runtime with 8-bit weights (the ``int8`` precision on a CPU; issue 9).

Why: at batch 1 a decoding step multiplies one row by each of the decoder's 96 matrices. PyTorch's quantized
kernel (fbgemm) is built for matrices of rows and pays a per-call toll; ONNX Runtime's ``MatMulNBits``
(MLAS, int8 dot products with VNNI/AMX) does the same products in about half the time, and a whole step is a
single call, so the ~200 small operators around the products (norms, residuals, the attention's reshapes)
no longer each cost a trip through Python and the dispatcher.

What runs where:

* Prefill, embeddings and sampling stay in PyTorch; a decoding step — one new position per row through the
  24 layers and the output layer — runs here, for a lone sentence and for batched rows alike (rows may come
  and go between steps).
* The graph is built by hand from the model's weights (no exporter): per layer the packed q/k/v product,
  ``GroupQueryAttention`` over the cached positions and the new one, the output product, two layer norms and
  the feed-forward products; then the fp32 output layer. The int8 matrices are the very int8 values and
  per-row scales PyTorch's prefill multiplies by (fp32 weights would be quantized with one scale per 256
  inputs); everything else is fp32.
* Keys and values stay in the PyTorch :class:`KVCache`: each layer's slice is handed to ONNX Runtime by
  address, and the attention writes the new position's keys/values into it in place. Padding among the cached
  positions (batched rows) is masked by an additive bias (−inf where a row must not look).
* The cache is int8 (:data:`KV_INT8`): one fp32 scale per layer, head and channel, fixed when the step is built
  (:func:`calibrate_kv_scales`: the largest magnitude a calibration prefill gives each channel, times
  :data:`KV_MARGIN`). ``GroupQueryAttention`` dequantizes as it reads and quantizes the new position as it writes;
  the prefill (PyTorch) writes through the same scales. A step at 8 rows and ~300 cached positions reads ~70 MB
  of keys/values instead of ~280 MB: 16.4 → 7.9 ms for the 24 attentions alone (2 cores, AMX CPU). Whole
  decoding at official size (150-token prompts, 200 steps a row, alternating runs): 164 → 211 tokens/s for one
  row, 214 → 311 for eight; teacher-forced KL against fp32 3.7e-5 against 3.3e-5. The voice's quality check
  (teacher-forced logits against fp32) runs through this cache, so a voice it hurts falls back to fp32.

ONNX Runtime is optional: :func:`available` says whether it can be used, and without it the PyTorch int8 path
runs.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

if TYPE_CHECKING:
    from studio.models.kv_cache import KVCache
    from studio.models.text2semantic import Text2SemanticModel

_LOGGER = logging.getLogger(__name__)

# Inputs per block: each block of weights has one scale, and ``accuracy_level=4`` quantizes the step's
# activations to int8 per block too. 256 rather than 128: 5 % less time per step (official size, L = 300: 5.13
# against 5.41 ms, alternating runs), with teacher-forced KL against fp32 3.6e-5 against 3.4e-5. An int8 model
# from PyTorch keeps one scale per row whatever the block (its scale is repeated per block).
BLOCK_SIZE = 256
_OPSET = 17  # LayerNormalization
_IR_VERSION = 9  # what every onnxruntime ≥ 1.16 reads
_EXTERNAL_BYTES = 4096  # constants this large are written to the graph's data file
_EXTERNAL_ALIGN = 65536  # their offsets there (the mapping granularity ONNX Runtime needs on every system)
KV_INT8 = True  # keys/values cached in int8 (see the module docstring); False: fp32
# Scales are the calibration's largest magnitude per channel times this: decoded positions may reach past what the
# calibration saw (they are clipped beyond 127 · scale), and 2× costs one bit of the 8.
KV_MARGIN = 2.0
_CALIBRATION_TEXT, _CALIBRATION_TOKENS = 64, 192  # positions of the calibration prefill (random ids, fixed seed)


def available() -> bool:
    """True when ONNX Runtime (and the ``onnx`` graph builder) are installed with a CPU provider."""
    try:
        import onnx  # noqa: F401
        import onnxruntime as ort
    except ImportError:
        return False
    return "CPUExecutionProvider" in ort.get_available_providers()


def block_size_for(width: int) -> int:
    """:data:`BLOCK_SIZE`, or for narrower inputs the largest power of two ≥ 16 that divides ``width``."""
    size = BLOCK_SIZE
    while size > 16 and width % size:
        size //= 2
    if width % size:
        raise ValueError(f"input width {width} is not a multiple of 16: no 8-bit block layout for it")
    return size


def quantize_blocks(weight: torch.Tensor, block_size: int = BLOCK_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric 8-bit weights in ``MatMulNBits`` layout: (uint8 (N, K/bs, bs) stored as q + 128, fp32 scales
    (N·K/bs,)), with weight[n, k] ≈ (q − 128) · scale[n, k // bs] — each block quantized as
    :func:`~studio.models.precision.quantize_per_channel` quantizes a row."""
    from studio.models.precision import quantize_per_channel

    n, k = weight.shape
    if k % block_size:
        raise ValueError(f"input width {k} is not a multiple of the block size {block_size}")
    q, scale = quantize_per_channel(weight.detach().float().cpu().reshape(n * k // block_size, block_size))
    blocks = (q.to(torch.int16) + 128).to(torch.uint8).reshape(n, k // block_size, block_size)
    return blocks.numpy(), scale.numpy().astype(np.float32)


def dequantize_blocks(q: np.ndarray, scale: np.ndarray) -> torch.Tensor:
    """The fp32 matrix (N, K) that :func:`quantize_blocks`' output stands for."""
    n, n_blocks, bs = q.shape
    values = torch.from_numpy(q.astype(np.float32) - 128.0) * torch.from_numpy(scale).reshape(n, n_blocks, 1)
    return values.reshape(n, n_blocks * bs)


class _Graph:
    """A small helper that names nodes and constants while the step graph is written."""

    def __init__(self, data_file: Path | None = None) -> None:
        from onnx import helper, numpy_helper

        self.helper, self.numpy_helper = helper, numpy_helper
        self.nodes: list = []
        self.initializers: list = []
        self._n = 0
        # Large constants go straight to this file (ONNX "external data") as they are made, so a graph's weights
        # never sit in memory a second and third time (the proto, then its serialized bytes) while it is built.
        self._data_file = data_file
        self._data = data_file.open("wb") if data_file is not None else None

    def name(self, stem: str) -> str:
        self._n += 1
        return f"{stem}_{self._n}"

    def const(self, array: np.ndarray, stem: str = "c") -> str:
        name = self.name(stem)
        array = np.ascontiguousarray(array)
        if self._data is None or array.nbytes < _EXTERNAL_BYTES:
            self.initializers.append(self.numpy_helper.from_array(array, name))
            return name
        from onnx import TensorProto, helper

        offset = -self._data.tell() % _EXTERNAL_ALIGN + self._data.tell()  # aligned: ONNX Runtime can map it
        self._data.seek(offset)
        self._data.write(array.tobytes())
        tensor = TensorProto(name=name, dims=array.shape, data_type=helper.np_dtype_to_tensor_dtype(array.dtype))
        for key, value in (("location", self._data_file.name), ("offset", offset), ("length", array.nbytes)):
            tensor.external_data.add(key=key, value=str(value))
        tensor.data_location = TensorProto.EXTERNAL
        self.initializers.append(tensor)
        return name

    def op(self, op_type: str, inputs: list[str], domain: str = "", n_out: int = 1, **attrs) -> list[str]:
        outs = [self.name(op_type.lower()) for _ in range(n_out)]
        self.nodes.append(self.helper.make_node(op_type, inputs, outs, domain=domain, **attrs))
        return outs

    def one(self, op_type: str, inputs: list[str], domain: str = "", **attrs) -> str:
        return self.op(op_type, inputs, domain, 1, **attrs)[0]

    def linear(self, x: str, layer: torch.nn.Module) -> str:
        """x · Wᵀ + b for a decoder matrix held as fp32 (``nn.Linear``, quantized here in blocks) or as PyTorch
        int8 (:class:`~studio.models.precision.Int8Linear`: its own int8 values and row scales, unchanged)."""
        q, scale, bias = matrix_blocks(layer)
        n, n_blocks, block = q.shape
        y = self.one(
            "MatMulNBits",
            [x, self.const(q, "w"), self.const(scale, "s")],
            domain="com.microsoft",
            K=n_blocks * block,
            N=n,
            bits=8,
            block_size=block,
            accuracy_level=4,  # int8 activations × int8 weights, int32 sums (the VNNI/AMX path)
        )
        if bias is not None:
            y = self.one("Add", [y, self.const(bias.detach().float().cpu().numpy(), "b")])
        return y

    def serialized(self, name: str, inputs: list, outputs: list) -> bytes:
        """The finished model (these nodes and constants between ``inputs`` and ``outputs``) as ONNX bytes;
        with a data file, the large constants stay in that file, which must then lie beside the model's."""
        if self._data is not None:
            self._data.close()
        helper = self.helper
        graph = helper.make_graph(self.nodes, name, inputs, outputs, self.initializers)
        opsets = [helper.make_opsetid("", _OPSET), helper.make_opsetid("com.microsoft", 1)]
        proto = helper.make_model(graph, opset_imports=opsets)
        proto.ir_version = _IR_VERSION
        return proto.SerializeToString()

    def residual_norm(self, x: str, update: str, norm: torch.nn.LayerNorm) -> str:
        """LayerNorm(x + update) with ``norm``'s fp32 weight and bias."""
        weight, bias = (self.const(t.detach().float().cpu().numpy(), "ln") for t in (norm.weight, norm.bias))
        return self.one("LayerNormalization", [self.one("Add", [x, update]), weight, bias], axis=-1, epsilon=norm.eps)


class _Matrix(torch.nn.Module):
    """fp32 weight and bias held like an ``nn.Linear`` (the packed q/k/v projection) for :func:`matrix_blocks`."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None) -> None:
        super().__init__()
        self.weight, self.bias = weight, bias


def matrix_blocks(layer: torch.nn.Module) -> tuple[np.ndarray, np.ndarray, torch.Tensor | None]:
    """A decoder matrix in ``MatMulNBits`` layout: (uint8 (N, K/bs, bs), fp32 scales (N·K/bs,), bias).

    An :class:`~studio.models.precision.Int8Linear` keeps its int8 values and one scale per row (repeated for
    each block), so prefill (PyTorch) and decoding steps (here) multiply by the same numbers; fp32 weights are
    quantized in blocks of :func:`block_size_for` inputs."""
    if hasattr(layer, "unpacked"):
        q, row_scale, bias = layer.unpacked()
        n, k = q.shape
        block = block_size_for(k)
        blocks = (q.to(torch.int16) + 128).to(torch.uint8).reshape(n, k // block, block)
        scales = row_scale.float().repeat_interleave(k // block)
        return blocks.numpy(), scales.numpy(), bias
    weight = layer.weight_bf16.float() if hasattr(layer, "weight_bf16") else layer.weight
    q, scales = quantize_blocks(weight, block_size_for(weight.shape[1]))
    return q, scales, layer.bias


def build_step_graph(
    model: Text2SemanticModel, folder: Path, kv_scales: tuple[torch.Tensor, torch.Tensor] | None = None
) -> Path:
    """The ONNX model of one decoding step for ``model``'s decoder stack, written into ``folder`` (the graph, and
    its weights in a data file beside it); returns the graph's path. ``kv_scales`` ((n_layer, H, Dh) each): the
    caches are int8 with these per-channel scales; None: fp32.

    Inputs: ``x`` (B, 1, D) the embedded new positions; ``past_len`` (B,) int32 positions already cached per
    row and ``total_len`` (1,) int32 = past_len + 1; ``bias`` (B, 1, 1, total_len) added to the attention
    scores (0, or −inf where a row must not look: padding); ``k0…``/``v0…`` (B, H, L, Dh) each layer's key/value
    cache. Outputs: ``h`` (B, 1, D), ``logits`` (B, V) (the fp32 output layer), and ``k0_out…``/``v0_out…``: the
    same caches with the new position written (bound to the input's memory, so ONNX Runtime writes in place).
    """
    from onnx import TensorProto, helper

    cfg = model.config
    D, H = cfg.hidden_dim, cfg.n_head
    Dh = D // H
    g = _Graph(Path(folder) / "gpt_decode_step.weights")
    inputs = [
        helper.make_tensor_value_info("x", TensorProto.FLOAT, ["B", 1, D]),
        helper.make_tensor_value_info("past_len", TensorProto.INT32, ["B"]),
        helper.make_tensor_value_info("total_len", TensorProto.INT32, [1]),
        helper.make_tensor_value_info("bias", TensorProto.FLOAT, ["B", 1, 1, "T"]),
    ]
    outputs = [helper.make_tensor_value_info("h", TensorProto.FLOAT, ["B", 1, D])]
    cache_type = TensorProto.INT8 if kv_scales is not None else TensorProto.FLOAT
    x = "x"
    for i, layer in enumerate(model.h.layers):
        attn = layer.self_attn
        for name in (f"k{i}", f"v{i}"):
            inputs.append(helper.make_tensor_value_info(name, cache_type, ["B", H, "L", Dh]))
            outputs.append(helper.make_tensor_value_info(f"{name}_out", cache_type, ["B", H, "L", Dh]))
        packed = attn.in_proj if attn.in_proj is not None else _Matrix(attn.in_proj_weight, attn.in_proj_bias)
        qkv = g.linear(x, packed)  # (B, 1, 3D): queries, keys, values
        attention_inputs = [qkv, "", "", f"k{i}", f"v{i}", "past_len", "total_len", "", "", "", "bias"]
        quantized = {}
        if kv_scales is not None:  # head_sink (none), then the per-channel scales, shaped (1, H, 1, Dh)
            k_scale, v_scale = (g.const(t[i].float().reshape(1, H, 1, Dh).numpy(), "kv_scale") for t in kv_scales)
            attention_inputs += ["", k_scale, v_scale]
            quantized = dict(k_quant_type="PER_CHANNEL", v_quant_type="PER_CHANNEL", kv_cache_bit_width=8)
        a = g.op(
            "GroupQueryAttention",
            attention_inputs,
            domain="com.microsoft",
            n_out=1,
            num_heads=H,
            kv_num_heads=H,
            **quantized,
        )[0]
        g.nodes[-1].output.extend([f"k{i}_out", f"v{i}_out"])
        a = g.linear(a, attn.out_proj)
        x = g.residual_norm(x, a, layer.norm1)
        ff = g.one("Relu", [g.linear(x, layer.linear1)])
        ff = g.linear(ff, layer.linear2)
        x = g.residual_norm(x, ff, layer.norm2)
    g.nodes.append(helper.make_node("Identity", [x], ["h"]))
    # The output layer stays fp32 (its logits decide every sampled token); it runs here so that a decoding step
    # is one call and PyTorch's thread pool stays asleep while ONNX Runtime's works.
    w_out = model.ar_predict_layer.weight.detach().float().cpu().numpy().T  # (D, V)
    last = g.one("Squeeze", [x, g.const(np.array([1], dtype=np.int64), "axis")])  # (B, D)
    g.nodes.append(helper.make_node("MatMul", [last, g.const(w_out, "w_out")], ["logits"]))
    outputs.append(helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["B", cfg.vocab_size]))
    path = Path(folder) / "gpt_decode_step.onnx"
    path.write_bytes(g.serialized("gpt_decode_step", inputs, outputs))
    return path


class OnnxDecodeStep:
    """One decoding step of a GPT's decoder stack on ONNX Runtime (see the module docstring).

    Called as ``step(x, allowed, cache)`` in place of :meth:`DecoderStack.step`: x (B, 1, D) fp32, ``allowed``
    (B|1, 1, 1, S) True where a row may look, or None, ``cache`` a contiguous :class:`KVCache` in the step's form
    (int8 with ``kv_scales``, else fp32) → (B, 1, D), the cache advanced by one. :meth:`accepts` says whether a
    call can run here.
    """

    def __init__(
        self,
        model: Text2SemanticModel,
        threads: int | None = None,
        kv_scales: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> None:
        import onnxruntime as ort

        self.kv_scales = kv_scales
        self.kv_dtype = torch.int8 if kv_scales is not None else torch.float32
        cfg = model.config
        self.n_layer, self.n_head, self.dim, self.vocab = cfg.n_layer, cfg.n_head, cfg.hidden_dim, cfg.vocab_size
        options = session_options(threads)
        # From files, not from bytes: ONNX Runtime's Python session keeps the bytes it was given for its whole
        # life (the ~80 MB of weights a second time), and the weights are written out as they are made. The files
        # are gone once the session holds its packed copy.
        with tempfile.TemporaryDirectory(prefix="studio-onnx-") as folder:
            path = build_step_graph(model, Path(folder), kv_scales)
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self._binding = self.session.io_binding()
        self._bound: tuple | None = None  # (k address, v address, shape) the cache is bound to
        self._lengths = torch.zeros(0, dtype=torch.int32)
        self._total = torch.zeros(1, dtype=torch.int32)

    def accepts(self, x: torch.Tensor, allowed: torch.Tensor | None, cache: KVCache) -> bool:
        """True when this step can serve the call: fp32 input and a contiguous cache on the CPU in the step's form
        (int8 with the very scales it was built with, or fp32) with room for one more position (rows with padding
        in front — batched decoding — are served too)."""
        return (
            x.dtype == torch.float32
            and x.device.type == "cpu"
            and x.shape[1] == 1
            and cache.k.dtype == self.kv_dtype
            and cache.scales is self.kv_scales
            and cache.k.is_contiguous()
            and cache.v.is_contiguous()
            and cache.length < cache.capacity
            and (allowed is None or allowed.shape[-1] == cache.length + 1)
        )

    def _bind_cache(self, cache: KVCache) -> None:
        key = (cache.k.data_ptr(), cache.v.data_ptr(), tuple(cache.k.shape))
        if key == self._bound:
            return
        shape = list(cache.k.shape[1:])  # (B, H, L, Dh)
        layer_bytes = cache.k[0].numel() * cache.k.element_size()
        dtype = np.int8 if self.kv_scales is not None else np.float32
        b = self._binding
        for i in range(self.n_layer):
            for name, store in ((f"k{i}", cache.k), (f"v{i}", cache.v)):
                address = store.data_ptr() + i * layer_bytes
                b.bind_input(name, "cpu", 0, dtype, shape, address)
                b.bind_output(f"{name}_out", "cpu", 0, dtype, shape, address)  # written in place
        B = shape[0]
        self._lengths = torch.zeros(B, dtype=torch.int32)
        b.bind_input("past_len", "cpu", 0, np.int32, [B], self._lengths.data_ptr())
        b.bind_input("total_len", "cpu", 0, np.int32, [1], self._total.data_ptr())
        self._bound = key

    def run(
        self, x: torch.Tensor, cache: KVCache, allowed: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, 1, D) → (h (B, 1, D), logits (B, V)); the new keys/values are written at ``cache.length`` and
        the cache advanced. ``allowed`` (B|1, 1, 1, length + 1) as for :meth:`DecoderStack.step`. Call only when
        :meth:`accepts` is True."""
        self._bind_cache(cache)
        B, n = x.shape[0], cache.length
        self._lengths.fill_(n)
        self._total.fill_(n + 1)
        x = x.contiguous()
        if allowed is None:
            bias = torch.zeros(B, 1, 1, n + 1)
        else:
            bias = torch.zeros(allowed.shape).masked_fill_(~allowed, float("-inf")).expand(B, 1, 1, n + 1).contiguous()
        h = torch.empty_like(x)
        logits = torch.empty(B, self.vocab)
        b = self._binding
        b.bind_input("x", "cpu", 0, np.float32, list(x.shape), x.data_ptr())
        b.bind_input("bias", "cpu", 0, np.float32, list(bias.shape), bias.data_ptr())
        b.bind_output("h", "cpu", 0, np.float32, list(h.shape), h.data_ptr())
        b.bind_output("logits", "cpu", 0, np.float32, list(logits.shape), logits.data_ptr())
        self.session.run_with_iobinding(b)
        cache.advance(1)
        return h, logits

    def __call__(self, x: torch.Tensor, allowed: torch.Tensor | None, cache: KVCache) -> torch.Tensor:
        """As :meth:`DecoderStack.step`: → h (B, 1, D)."""
        if not self.accepts(x, allowed, cache):
            raise ValueError(
                "the ONNX decoding step needs one new fp32 position and a contiguous KV cache in its own form "
                "(int8 with its scales, or fp32) with room"
            )
        return self.run(x, cache, allowed)[0]


def session_options(threads: int | None = None):
    """ONNX Runtime options for a decoding step: ``threads`` (default: PyTorch's) in one pool, quiet log."""
    import onnxruntime as ort

    if hasattr(ort, "disable_telemetry_events"):  # Windows builds can log usage events: nothing leaves the machine
        ort.disable_telemetry_events()
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or torch.get_num_threads()
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3
    return options


def matrix_runner(weights: list[torch.Tensor]) -> Callable[[], object]:
    """A callable that multiplies one row through every matrix of ``weights`` (each (N, K)) on ONNX Runtime,
    as a step does (what ``studio.inference.precision_choice`` times against PyTorch's kernels)."""
    import onnxruntime as ort
    from onnx import TensorProto, helper

    g = _Graph()
    widths = sorted({w.shape[1] for w in weights})
    inputs = [helper.make_tensor_value_info(f"x{k}", TensorProto.FLOAT, [1, k]) for k in widths]
    outs = [g.linear(f"x{w.shape[1]}", _Matrix(w, None)) for w in weights]
    total = g.one("Concat", outs, axis=-1)
    outputs = [helper.make_tensor_value_info(total, TensorProto.FLOAT, [1, None])]
    graph = g.serialized("matrices", inputs, outputs)
    session = ort.InferenceSession(graph, session_options(), providers=["CPUExecutionProvider"])
    feeds = {f"x{k}": np.random.default_rng(0).standard_normal((1, k)).astype(np.float32) for k in widths}
    return lambda: session.run(None, feeds)


@torch.inference_mode()
def calibrate_kv_scales(model: Text2SemanticModel, margin: float = KV_MARGIN) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel int8 scales (key, value), each (n_layer, H, Dh): the largest magnitude each channel takes in
    one prefill of random phones, BERT features and semantic tokens (fixed seed), times ``margin``, over 127.

    Why random ids: a channel's range is set by the embeddings and the weights, which every id of the vocabularies
    reaches through; a fixed text would leave most rows of the embedding tables unseen. The voice's quality check
    (real-looking inputs of its own, measured against fp32) then tells whether the scales serve."""
    from studio.models.kv_cache import KVCache

    cfg = model.config
    weight = model.ar_predict_layer.weight
    gen = torch.Generator().manual_seed(20260905)
    phones = torch.randint(0, cfg.phoneme_vocab_size, (1, _CALIBRATION_TEXT), generator=gen)
    bert = torch.randn(1, cfg.bert_dim, _CALIBRATION_TEXT, generator=gen)
    tokens = torch.randint(0, cfg.vocab_size - 1, (1, _CALIBRATION_TOKENS), generator=gen)
    H, Dh = cfg.n_head, cfg.hidden_dim // cfg.n_head
    cache = KVCache(cfg.n_layer, 1, H, _CALIBRATION_TEXT + _CALIBRATION_TOKENS, Dh, dtype=torch.float32)
    text = model.embed_text(phones.to(weight.device), bert.to(device=weight.device, dtype=weight.dtype))
    model.prefill(text, tokens.to(weight.device), cache)
    # (n_layer, 1, H, L, Dh) → the largest magnitude per (layer, head, channel); an all-zero channel gets scale 1
    peaks = [t.float().abs().amax(dim=(1, 3)) for t in (cache.k, cache.v)]
    return tuple(torch.where(p > 0, p * margin / 127.0, torch.ones_like(p)).cpu().contiguous() for p in peaks)


def attach(model: Text2SemanticModel) -> bool:
    """Give ``model``'s decoder stack an ONNX Runtime step (its keys/values then cached in int8 with calibrated
    scales, :data:`KV_INT8`; else fp32). Returns False, with the reason in the log, when ONNX Runtime is missing
    or refuses the graph."""
    if not available():
        return False
    scales, kv_dtype = None, getattr(model, "kv_dtype", None)
    try:
        model.h.onnx_step, model.kv_dtype = None, torch.float32  # (the calibration runs PyTorch's fp32-cache path)
        if KV_INT8:
            try:
                scales = calibrate_kv_scales(model)
                model.h.onnx_step = OnnxDecodeStep(model, kv_scales=scales)
            except Exception as exc:  # an ONNX Runtime older than its int8-cache attention (added in 2026)
                _LOGGER.warning("ONNX Runtime cannot cache keys/values in int8 here (%s): they stay fp32", exc)
                scales = None
        if model.h.onnx_step is None:
            model.h.onnx_step = OnnxDecodeStep(model)
    except Exception as exc:  # an ONNX Runtime too old for MatMulNBits, a broken install
        _LOGGER.warning("the ONNX Runtime decoding step is unavailable (%s): PyTorch decodes", exc)
        model.kv_dtype = kv_dtype
        return False
    model.kv_dtype = torch.int8 if scales is not None else torch.float32
    model.kv_scales = scales
    return True
