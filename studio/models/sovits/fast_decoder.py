"""The HiFiGAN generator's arithmetic laid out for oneDNN: the inference fast path of ``dec`` (issue 9).

The generator is ~96 % of SoVITS decoding time. PyTorch runs a 1-D convolution as a 2-D one on a (B, C, 1, T)
view and copies oneDNN's channels-last result back to (B, C, T) after *every* convolution — on a 32-channel,
100k-sample stage that copy costs more than the convolution. Here the whole generator runs on (B, C, 1, T)
tensors kept channels-last from the first convolution to the last, with weights folded once (weight norm
applied, reshaped to (out, in, 1, k), channels-last, in the chosen dtype):

* ``float32`` — the same products as :class:`~studio.models.sovits.generator.Generator` (summation order may
  differ in the last bits: within 1e-5 relative of the goldens, tested);
* ``bfloat16`` — 16-bit weights and activations (oneDNN uses AVX-512 bf16 / AMX where the CPU has them); the
  residual sums stay bf16, the last convolution and tanh run in fp32. Quality: SNR against fp32, see
  :mod:`studio.models.precision_quality`.

On a CPU the latent frames are decoded in windows of one fixed length (:data:`WINDOW` frames, overlapping by
:data:`MARGIN` on each side, the last one padded; inputs of at most :data:`SHORT_WINDOW` frames — a streamed
sentence's first chunks — in one short padded window). oneDNN builds (JIT-compiles) its convolution kernels for each
new input length and keeps them with their buffers: decoded whole, every sentence of a new length cost ~1.3 s
of kernel building in bf16 (more than the decoding itself) and ~1.8 MB per latent frame that stayed allocated
for good. With one window length the kernels are built once per process. The result is the same: a window's
frames farther than the generator's receptive field (~11 latent frames) from a cut edge are exactly what the
whole sequence gives, the margins are dropped, and past the true end every layer's output is zeroed — what
the convolutions' own zero padding sees in a whole-sequence pass.

Tried and not taken: running the residual blocks' leaky ReLUs and sums as oneDNN post-ops of their
convolutions (PyTorch's ``mkldnn::_convolution_pointwise``, what ``torch.compile`` fuses into) made a bf16
128-frame window ~10–15 % faster but held ~130 MB more at its peak (~45 MB for good), against the light modes'
1 GiB target; doing the same operations in place gained nothing measurable.

Nothing is trained through this path: :func:`prepare_generator` is called on inference models only, and
:meth:`Generator.forward` uses it when present.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from studio.models.sovits.layers import WeightNormConv1d, WeightNormConvTranspose1d

_CL = torch.channels_last
WINDOW = 128  # latent frames per decoding window on a CPU (2.56 s of audio at 50 frames/s)
SHORT_WINDOW = 32  # the window of inputs this short (a streamed sentence's first chunks): one pass, padded
MARGIN = 12  # context frames kept on each cut side of a window (≥ the generator's receptive field, ~11.3)


def _weight_of(conv: nn.Module) -> torch.Tensor:
    if isinstance(conv, WeightNormConv1d | WeightNormConvTranspose1d):
        with torch.no_grad():
            return conv.current_weight().detach().float()
    return conv.weight.detach().float()


class _Conv(nn.Module):
    """One 1-D (transposed) convolution as a 2-D one over (B, C, 1, T) channels-last."""

    def __init__(self, conv: nn.Module, dtype: torch.dtype) -> None:
        super().__init__()
        self.transposed = isinstance(conv, nn.ConvTranspose1d)
        weight = _weight_of(conv).unsqueeze(2)  # (out, in, 1, k) or (in, out, 1, k)
        self.register_buffer("weight", weight.to(dtype).contiguous(memory_format=_CL))
        bias = None if conv.bias is None else conv.bias.detach().to(dtype)
        self.register_buffer("bias", bias)
        self.stride = (1, conv.stride[0])
        self.padding = (0, conv.padding[0])
        self.dilation = (1, conv.dilation[0])
        self.output_padding = (0, conv.output_padding[0]) if self.transposed else (0, 0)
        self.groups = conv.groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.weight.dtype)
        if self.transposed:
            return F.conv_transpose2d(
                x, self.weight, self.bias, self.stride, self.padding, self.output_padding, self.groups, self.dilation
            )
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)


class FastGenerator(nn.Module):
    """The prepared generator: same inputs and output as ``Generator.forward``."""

    def __init__(self, gen: nn.Module, dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        from studio.models.sovits.generator import LRELU_SLOPE

        self.slope = LRELU_SLOPE
        self.dtype = dtype
        self.num_kernels = gen.num_kernels
        self.conv_pre = _Conv(gen.conv_pre, torch.float32)
        self.cond = _Conv(gen.cond, torch.float32) if hasattr(gen, "cond") else None
        self.ups = nn.ModuleList(_Conv(up, dtype) for up in gen.ups)
        self.blocks = nn.ModuleList(
            nn.ModuleList(nn.ModuleList([_Conv(c1, dtype), _Conv(c2, dtype)]) for c1, c2 in zip(rb.convs1, rb.convs2))
            for rb in gen.resblocks
        )
        self.conv_post = _Conv(gen.conv_post, torch.float32)
        self.hop = 1
        for up in self.ups:
            self.hop *= up.stride[1]  # output samples per latent frame
        self.openvino = None  # OpenVINO's compiled windows, when attached (studio.models.sovits.openvino_decoder)

    def _resblock(self, pairs: nn.ModuleList, x: torch.Tensor, valid: int | None) -> torch.Tensor:
        for conv1, conv2 in pairs:
            xt = _zero_tail(conv1(F.leaky_relu(x, self.slope)), valid)
            x = _zero_tail(conv2(F.leaky_relu(xt, self.slope)), valid) + x
        return x

    def _run(self, x: torch.Tensor, g: torch.Tensor | None, valid: int | None = None) -> torch.Tensor:
        """The generator over x (B, C_in, T) → (B, 1, T·hop); with ``valid``, frames from ``valid`` on are
        padding: every layer's output there is zeroed, as if the sequence ended at ``valid``."""
        x = self.conv_pre(x.float().unsqueeze(2).contiguous(memory_format=_CL))  # (B, C0, 1, T)
        if g is not None and self.cond is not None:
            x = x + self.cond(g.float().unsqueeze(2).contiguous(memory_format=_CL))
        x = _zero_tail(x.to(self.dtype), valid)
        for i, up in enumerate(self.ups):
            if valid is not None:
                valid *= up.stride[1]
            x = _zero_tail(up(F.leaky_relu(x, self.slope)), valid)  # (B, C_i, 1, T·rate…)
            blocks = self.blocks[i * self.num_kernels : (i + 1) * self.num_kernels]
            xs = self._resblock(blocks[0], x, valid)
            for block in blocks[1:]:
                xs = xs + self._resblock(block, x, valid)
            x = xs / self.num_kernels
        x = self.conv_post(F.leaky_relu(x.float()))  # (B, 1, 1, T_wav), slope 0.01 as upstream
        return torch.tanh(x).squeeze(2).contiguous()

    @torch.inference_mode()
    def forward(self, x: torch.Tensor, g: torch.Tensor | None = None) -> torch.Tensor:
        """x (B, C_in, T), g (B, G, 1) → wav (B, 1, T·prod(upsample_rates)) float32."""
        if x.device.type != "cpu":
            return self._run(x, g)
        if x.shape[0] > 1:  # one row at a time: the kernels stay those of batch 1
            rows = [self.forward(x[b : b + 1], None if g is None else g[b : b + 1]) for b in range(x.shape[0])]
            return torch.cat(rows)
        return torch.cat(list(self._windows(x, g)), dim=-1)

    def _windows(self, x: torch.Tensor, g: torch.Tensor | None):
        """The waveform of x (1, C_in, T) piece by piece, each from one :data:`WINDOW`-frame window. From
        :data:`WINDOW` frames on, the last window is moved back to end at T (never padded); a shorter input is
        one padded window."""
        T, hop = x.shape[-1], self.hop
        size = SHORT_WINDOW if T <= SHORT_WINDOW else WINDOW
        start, emitted = 0, 0  # the window's first frame; frames already given out
        while True:
            end = start + size
            if end > T >= size:
                start, end = T - size, T
            window = x[..., start:end]
            valid = None if window.shape[-1] == size else window.shape[-1]
            if valid is not None:
                window = F.pad(window, (0, size - valid))
            wav = self._run(window, g, valid) if self.openvino is None else self.openvino.run(window, g, valid)
            last = T - start if end >= T else size - MARGIN  # frames of this window that go to the output
            yield wav[..., (emitted - start) * hop : last * hop]
            emitted = start + last
            if end >= T:
                return
            start = emitted - MARGIN

    def warm(self) -> None:
        """Build the kernels of both window lengths now (~1–2 s on a CPU, once per process) rather than during
        the first sentence. Nothing to build on a GPU (no windows there)."""
        device = self.conv_pre.weight.device
        if device.type != "cpu":
            return
        if self.openvino is not None:
            return  # compiled when attached
        g = None if self.cond is None else torch.zeros(1, self.cond.weight.shape[1], 1, device=device)
        for frames in (SHORT_WINDOW, WINDOW):
            self.forward(torch.zeros(1, self.conv_pre.weight.shape[1], frames, device=device), g)


def _zero_tail(x: torch.Tensor, valid: int | None) -> torch.Tensor:
    """x (B, C, 1, T) with the samples from ``valid`` on set to zero (in place; None: untouched)."""
    if valid is not None and valid < x.shape[-1]:
        x[..., valid:] = 0
    return x


def prepare_generator(gen: nn.Module, dtype: torch.dtype = torch.float32) -> FastGenerator:
    """Fold ``gen``'s weights into a :class:`FastGenerator` and make ``gen.forward`` use it (inference only)."""
    from studio.models.weights_cache import release_pages

    fast = FastGenerator(gen, dtype).to(next(gen.parameters()).device)
    object.__setattr__(gen, "fast", fast)  # not a sub-module: never saved, never trained
    # The generator's own weights were read to fold them; when they map a weights cache file, those pages need
    # not stay resident (~60 MB at official size): inference uses the folded copy, and anything that reads them
    # again (training, the plain path) reads them back from the file.
    release_pages(gen.parameters())
    return fast


def warm_generator(gen: nn.Module) -> None:
    """Build a prepared generator's CPU kernels now (see :meth:`FastGenerator.warm`); nothing when unprepared."""
    fast = gen.__dict__.get("fast")
    if fast is not None:
        fast.warm()


def release_generator(gen: nn.Module) -> None:
    """Back to the plain (trainable) arithmetic."""
    if "fast" in gen.__dict__:
        del gen.__dict__["fast"]
