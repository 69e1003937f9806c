"""Precision modes for inference: the same networks with lighter weights (SPEC-independent; issue 9).

* ``fp32`` — the exact path: nothing is converted, every golden matches.
* ``bf16`` — every converted matrix is stored in bfloat16 (half the bytes a decoding step reads); the matrix
  product runs in bf16 with fp32 accumulation and everything else (norms, softmax, residuals, sampling) stays
  fp32. The GPT's keys/values are cached in bf16.
* ``int8`` — every converted matrix is stored as int8 with one fp32 scale per output channel (symmetric,
  absmax/127): a quarter of the fp32 bytes. The product runs in PyTorch's own quantized kernel
  (``torch.ops.quantized.linear_dynamic``: fbgemm/oneDNN with VNNI or AVX2), which quantizes each input row
  batch to 8 bits on the fly and accumulates in int32. Keys/values are cached in bf16 — or, where the decoding
  steps run on ONNX Runtime (:mod:`studio.models.onnx_step`, the same int8 values), in fp32.

Only ``nn.Linear``-shaped products are converted (the GPT's 96 decoder matrices, the BERT/HuBERT encoders'
linears); embeddings, the GPT's output layer (its logits decide every sampled token), norms and convolutions stay
fp32. What each mode costs in quality is measured by :mod:`studio.models.precision_quality` against the bounds in
:data:`QUALITY_BOUNDS`; which mode is fastest on a machine is measured by :mod:`studio.inference.precision_choice`.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from studio.models.weights_cache import release_pages, trim_freed_memory

PRECISION_MODES = ("fp32", "bf16", "int8")
PRECISION_CHOICES = ("auto", *PRECISION_MODES)


@dataclass(frozen=True)
class QualityBounds:
    """What a non-fp32 mode may change, measured against fp32 on the same inputs (the one place they live).

    Why these numbers: bf16 keeps 8 mantissa bits (relative rounding ≤ 2⁻⁹ ≈ 0.2 % per weight), and published
    bf16/int8 weight-only LLM inference keeps next-token KL divergence around 1e-3…1e-2 nats with ≥ 95 % top-1
    agreement; a TTS sampler draws from the top 15 tokens, so a top-1 flip between two near-equal candidates is
    harmless while a shifted distribution is not. Audio: 16-bit-weight vocoders stay above ~20 dB SNR against
    fp32 (an error below 10 % of the signal's amplitude, inaudible next to the sampling noise the model adds
    on purpose at noise_scale 0.5). Encoder features feed a quantizer/projection: 5 % relative error keeps
    every nearest code or stays well inside the GPT's tolerance.
    """

    gpt_kl_max: float = 0.02  # mean KL(fp32 ‖ mode) per step, nats
    gpt_top1_min: float = 0.90  # share of steps whose top token is unchanged
    sovits_snr_min_db: float = 20.0
    features_rel_max: float = 0.05  # relative L2 of BERT/HuBERT features


QUALITY_BOUNDS = QualityBounds()


def check_mode(mode: str, *, allow_auto: bool = False) -> str:
    """``mode`` lower-cased if known; otherwise a ValueError that lists the choices."""
    choices = PRECISION_CHOICES if allow_auto else PRECISION_MODES
    value = str(mode).strip().lower()
    if value not in choices:
        raise ValueError(f"unknown precision {mode!r}: choose one of {', '.join(choices)}")
    return value


def int8_available() -> bool:
    """True when this PyTorch build has the quantized dynamic linear kernel (fbgemm/x86/oneDNN/qnnpack)."""
    return hasattr(torch.ops.quantized, "linear_dynamic") and bool(torch.backends.quantized.supported_engines)


class Bf16Linear(nn.Module):
    """y = x·Wᵀ + b with W stored in bf16; the product in bf16 (fp32 accumulation), input and output fp32."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None) -> None:
        super().__init__()
        self.in_features, self.out_features = weight.shape[1], weight.shape[0]
        self.register_buffer("weight_bf16", weight.detach().to(torch.bfloat16).contiguous())
        self.register_buffer("bias", None if bias is None else bias.detach().float().clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.linear(x.to(torch.bfloat16), self.weight_bf16).to(x.dtype)
        return y if self.bias is None else y + self.bias

    def extra_repr(self) -> str:
        return f"{self.in_features} → {self.out_features}, bf16 weights"


def quantize_per_channel(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric int8 per output row: (int8 weight (out, in), fp32 scale (out,)) with weight ≈ q · scale."""
    w = weight.detach().float()
    scale = (w.abs().amax(dim=1) / 127.0).clamp_min(1e-12)  # (out,)
    q = torch.round(w / scale[:, None]).clamp_(-127, 127).to(torch.int8)
    return q, scale


class Int8Linear(nn.Module):
    """y ≈ x·Wᵀ + b with W held as int8 per output channel, run by PyTorch's quantized dynamic kernel.

    The packed weight lives inside the kernel's own object (not a state-dict tensor): an Int8Linear is built
    from fp32 weights at load time and is never saved.
    """

    def __init__(
        self,
        weight: torch.Tensor | None,
        bias: torch.Tensor | None,
        *,
        quantized: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> None:
        """From fp32 ``weight`` (quantized here), or from ``quantized`` = (int8 weight, fp32 scale per row)."""
        super().__init__()
        q, scale = quantized if quantized is not None else quantize_per_channel(weight)
        self.in_features, self.out_features = q.shape[1], q.shape[0]
        zero = torch.zeros(q.shape[0], dtype=torch.long)
        with warnings.catch_warnings():  # quantized tensors are flagged for a future move; the kernel is current
            warnings.simplefilter("ignore")
            qweight = torch._make_per_channel_quantized_tensor(q.contiguous(), scale.double(), zero, 0)
            b = None if bias is None else bias.detach().float().clone()  # own memory: never a view of the file
            self._packed = torch.ops.quantized.linear_prepack(qweight, b)
        # The kernel trades 1 bit of the activations for overflow safety where it lacks VNNI (AVX2 only).
        self._reduce_range = not _has_vnni()

    def unpacked(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """(int8 weight (out, in), fp32 scale (out,), bias or None): what rebuilds this layer exactly."""
        qweight, bias = torch.ops.quantized.linear_unpack(self._packed)
        return qweight.int_repr(), qweight.q_per_channel_scales().float(), bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        y = torch.ops.quantized.linear_dynamic(x.reshape(-1, shape[-1]).float(), self._packed, self._reduce_range)
        return y.reshape(*shape[:-1], self.out_features).to(x.dtype)

    def extra_repr(self) -> str:
        return f"{self.in_features} → {self.out_features}, int8 weights per channel"


def _has_vnni() -> bool:
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            flags = f.read(20000)
    except OSError:
        return False
    return "avx512_vnni" in flags or "avx_vnni" in flags or "amx_int8" in flags


def light_linear(weight: torch.Tensor, bias: torch.Tensor | None, mode: str) -> nn.Module:
    """The converted product for ``mode`` ('bf16' or 'int8')."""
    if mode == "bf16":
        return Bf16Linear(weight, bias)
    if mode == "int8":
        if not int8_available():
            raise RuntimeError("this PyTorch build has no quantized int8 kernel; use --precision bf16 or fp32")
        return Int8Linear(weight, bias)
    raise ValueError(f"no light linear for precision {mode!r}")


def convert_linears(
    module: nn.Module,
    mode: str,
    *,
    keep: Callable[[str, nn.Linear], bool] | None = None,
    prefix: str = "",
    source: str | os.PathLike[str] | None = None,
) -> int:
    """Replace every ``nn.Linear`` under ``module`` by its ``mode`` version, in place (fp32 is a no-op).

    ``keep(name, linear)`` → True leaves that layer fp32. Returns how many layers were converted. The fp32
    weights of a converted layer are released with it: pages of a weights cache file at once, and with
    ``source`` (the original file the weights are memory-mapped from) that file's pages too, the heap trimmed
    after each layer — so converting never holds the whole fp32 model. Measured on the Chinese BERT's first
    int8 load (1.2 GB of fp32 weights, alone in a process): 0.65 GiB peak against 2.46 GiB.
    """
    mode = check_mode(mode)
    if mode == "fp32":
        return 0
    count = 0
    files = () if source is None else (source,)
    for name, child in list(module.named_children()):
        full = f"{prefix}{name}"
        if isinstance(child, nn.Linear) and type(child) is nn.Linear and not (keep and keep(full, child)):
            setattr(module, name, light_linear(child.weight, child.bias, mode))
            release_pages([child.weight], files)  # those pages need not stay resident: the light copy is used
            if source is not None:
                trim_freed_memory()  # the quantization's temporaries, freed among live blocks
            count += 1
        else:
            count += convert_linears(child, mode, keep=keep, prefix=f"{full}.", source=source)
    return count


def convert_gpt(model: nn.Module, mode: str) -> nn.Module:
    """The text-to-semantic GPT in ``mode``, in place: its decoder's packed q/k/v, output, and two FFN matrices
    per layer (96 at official size) become light products, keys/values are cached in bf16. The embeddings,
    the BERT projection (prefill only) and the output layer stay fp32. Returns ``model``.
    """
    mode = check_mode(mode)
    model.precision = mode
    if mode == "fp32":
        return model
    for layer in model.h.layers:
        attn = layer.self_attn
        attn.in_proj = light_linear(attn.in_proj_weight, attn.in_proj_bias, mode)
        release_pages([attn.in_proj_weight])
        # Release the fp32 copy: the converted module is the one used from now on.
        attn.in_proj_weight = nn.Parameter(torch.empty(0), requires_grad=False)
        attn.in_proj_bias = nn.Parameter(torch.empty(0), requires_grad=False)
    convert_linears(model.h, mode)
    model.kv_dtype = torch.bfloat16
    own_copies(model)
    return model


def own_copies(model: nn.Module) -> None:
    """Give the weights that stay fp32 after a conversion (embeddings, norms, the GPT's output layer) their own
    memory. A model loaded from a memory-mapped file (the weights cache, a Hugging Face folder) otherwise keeps
    the whole file mapped — and every page the conversion read stays resident (~300 MB for the GPT, ~1.2 GB for
    the Chinese BERT) for nothing."""
    with torch.no_grad():
        for tensor in [*model.parameters(), *model.buffers()]:
            if tensor.numel():
                tensor.data = tensor.data.clone()


def model_precision(model: nn.Module) -> str:
    """The mode a model was converted to ('fp32' when it never was)."""
    return getattr(model, "precision", "fp32")


@dataclass(frozen=True)
class PrecisionPlan:
    """What each part of the engine runs in for one mode on one machine."""

    mode: str  # the resolved mode: fp32, bf16 or int8
    gpt: str  # fp32 | bf16 | int8 — the GPT's decoder matrices
    sovits: str  # fp32 | bf16 — the HiFiGAN generator (channels-last in both)
    bert: str  # fp32 | bf16 | int8 — the Chinese BERT's linears
    reason: str = ""  # why (auto: what was measured)
    # Where an int8 GPT's decoding steps run: "onnxruntime" (studio.models.onnx_step) or "pytorch".
    gpt_runtime: str = "pytorch"
    # Where the SoVITS decoder's windows run on a CPU: "openvino" (studio.models.sovits.openvino_decoder) or
    # "pytorch". The fp32 mode always decodes on PyTorch (the exact path).
    sovits_runtime: str = "pytorch"

    def describe(self) -> str:
        gpt = f"{self.gpt} on ONNX Runtime" if self.gpt_runtime == "onnxruntime" else self.gpt
        sovits = f"{self.sovits} on OpenVINO" if self.sovits_runtime == "openvino" else self.sovits
        return f"{self.mode} (GPT {gpt}, SoVITS decoder {sovits}, Chinese BERT {self.bert})"


def plan_for(
    mode: str,
    *,
    fast_bf16: bool,
    device: str = "cpu",
    reason: str = "",
    onnx_step: bool = False,
    openvino_decoder: bool = False,
) -> PrecisionPlan:
    """The parts' precisions for ``mode``. ``fast_bf16``: this machine runs bf16 convolutions faster than
    fp32 (AVX-512 bf16/AMX or a GPU); without it the SoVITS decoder stays fp32 (on AVX2-only CPUs bf16
    convolutions are ~30× slower). The int8 kernels are CPU-only: on a GPU, int8 means bf16. ``onnx_step``:
    an int8 GPT decodes on ONNX Runtime; ``openvino_decoder``: a light mode's SoVITS decoder runs on OpenVINO
    (each measured faster here, see ``studio.inference.precision_choice``)."""
    mode = check_mode(mode)
    if mode == "fp32":
        return PrecisionPlan("fp32", "fp32", "fp32", "fp32", reason)
    light = "bf16" if fast_bf16 else "fp32"
    if mode == "int8" and (device != "cpu" or not int8_available()):
        return PrecisionPlan("bf16", "bf16", light, "bf16", reason or "int8 kernels run on the CPU only")
    runtime = "onnxruntime" if mode == "int8" and onnx_step else "pytorch"
    decoder = "openvino" if openvino_decoder and device == "cpu" else "pytorch"
    return PrecisionPlan(mode, mode, light, mode, reason, runtime, decoder)


def prepare_sovits(model: nn.Module, precision: str, runtime: str = "pytorch") -> str:
    """The SoVITS synthesizer's decoder on the channels-last fast path, in fp32 or bf16 (in place), its windows
    on OpenVINO when ``runtime`` is "openvino" (CPU only). Returns the runtime that holds: "pytorch" when
    OpenVINO is missing or refuses the graph (logged)."""
    from studio.models.sovits import openvino_decoder
    from studio.models.sovits.fast_decoder import prepare_generator

    precision = check_mode(precision)
    fast = prepare_generator(model.dec, torch.bfloat16 if precision == "bf16" else torch.float32)
    model.precision = precision
    on_cpu = next(model.dec.parameters()).device.type == "cpu"
    if runtime == "openvino" and on_cpu and openvino_decoder.attach(fast, bf16=precision == "bf16"):
        return "openvino"
    return "pytorch"
