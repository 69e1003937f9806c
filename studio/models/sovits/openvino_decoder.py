"""The HiFiGAN generator's decoding windows on OpenVINO (a choice for the light precisions on a CPU; issue 9).

Why: the generator is most of SoVITS's time, and on a CPU it is a chain of 1-D convolutions over long
sequences. Measured on the official size (2 cores, a CPU with AMX): one 128-frame window took ~126 ms on
PyTorch's oneDNN path in bf16 and ~71 ms here, with a slightly better SNR against fp32 (42.6 against 40.5 dB);
through the whole chain the SoVITS decode RTF is 0.056 against 0.068. OpenVINO fuses the bias, the leaky ReLUs
and the residual sums into the convolutions.

The price is memory: the compiled windows hold ~300 MB more than PyTorch's path (the plugin, the weights in its
layout, every intermediate tensor of a window planned ahead). So it runs only when asked for:
``STUDIO_DECODER_RUNTIME=openvino`` (see ``studio.inference.precision_choice``).

What runs here: exactly :meth:`FastGenerator._run <studio.models.sovits.fast_decoder.FastGenerator._run>` for
one window — the same folded weights (weight norm applied), the same layers, the zeroed tails of a padded last
window — as an OpenVINO graph built by hand from those weights with OpenVINO's operator set (no exporter, no
model conversion tool, nothing stored). The windows (:mod:`~studio.models.sovits.fast_decoder`) keep one input
length per graph, so each graph is compiled once per process and never rebuilt for a new sentence length.

Precision: the graph is fp32; ``bf16`` asks OpenVINO to compute in bf16 where the CPU has bf16 instructions
(its ``INFERENCE_PRECISION_HINT``), fp32 otherwise. The fp32 mode never comes here: it stays on PyTorch's
exact path.

OpenVINO is optional (``pip install ".[openvino]"``): :func:`available` says whether it can be used; without
it PyTorch decodes.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

import numpy as np
import torch

if TYPE_CHECKING:
    from studio.models.sovits.fast_decoder import FastGenerator

_LOGGER = logging.getLogger(__name__)


def available() -> bool:
    """True when OpenVINO's runtime can be imported."""
    try:
        import openvino  # noqa: F401
    except Exception:  # ImportError, or a broken install raising anything on import
        return False
    return True


class _GraphWriter:
    """Writes the generator's layers as OpenVINO operations."""

    def __init__(self, fast: FastGenerator) -> None:
        try:
            import openvino.opset8 as ops
        except ImportError:  # OpenVINO before 2025 keeps its operator sets under openvino.runtime
            import openvino.runtime.opset8 as ops

        self.ops, self.fast = ops, fast

    def const(self, tensor: torch.Tensor | np.ndarray):
        array = tensor.detach().float().cpu().numpy() if isinstance(tensor, torch.Tensor) else tensor
        return self.ops.constant(np.ascontiguousarray(array, dtype=np.float32))

    def conv(self, x, layer):
        """One of the generator's 1-D (transposed) convolutions, with its bias."""
        ops = self.ops
        weight = self.const(layer.weight)  # (out, in, 1, k); (in, out, 1, k) when transposed
        stride, pad, dilation = list(layer.stride), list(layer.padding), list(layer.dilation)
        if layer.transposed:
            y = ops.convolution_backprop_data(
                x, weight, stride, pads_begin=pad, pads_end=pad, dilations=dilation,
                output_padding=list(layer.output_padding),
            )  # fmt: skip
        else:
            y = ops.convolution(x, weight, stride, pad, pad, dilation)
        if layer.bias is not None:
            y = ops.add(y, self.const(layer.bias.reshape(1, -1, 1, 1)))
        return y

    def leaky(self, x, slope: float):
        return self.ops.prelu(x, self.const(np.array([slope], dtype=np.float32)))

    def masked(self, x, mask):
        return self.ops.multiply(x, mask)

    def model(self, frames: int):
        """The graph of one window of ``frames`` latent frames. Inputs: ``x`` (1, C_in, frames), ``g`` (1, G, 1)
        when the generator is conditioned, and ``valid`` (1,) int32: the window's real frames (every layer's
        output past them is zeroed; ``frames`` for a full window: the masks measured free). Output: the waveform
        (1, 1, frames · hop)."""
        import openvino as ov

        ops, fast = self.ops, self.fast
        axis = self.ops.constant(np.array([2], dtype=np.int64))
        # As on PyTorch's path, the 1-D convolutions run as 2-D ones over (1, C, 1, T): OpenVINO's 1-D
        # convolutions measured ~2× slower here (layout reorders around every one).
        x_in = ops.parameter([1, fast.conv_pre.weight.shape[1], frames], np.float32, name="x")
        params = [x_in]
        x = self.conv(ops.unsqueeze(x_in, axis), fast.conv_pre)
        if fast.cond is not None:
            g_in = ops.parameter([1, fast.cond.weight.shape[1], 1], np.float32, name="g")
            params.append(g_in)
            x = ops.add(x, self.conv(ops.unsqueeze(g_in, axis), fast.cond))
        valid = ops.parameter([1], np.int32, name="valid")
        params.append(valid)

        def mask_for(length: int, per_frame: int):
            limit = ops.multiply(valid, self.ops.constant(np.array([per_frame], dtype=np.int32)))
            positions = ops.constant(np.arange(length, dtype=np.int32))
            return ops.reshape(ops.convert(ops.less(positions, limit), "f32"), [1, 1, 1, length], special_zero=False)

        scale, length = 1, frames
        x = self.masked(x, mask_for(length, scale))
        for i, up in enumerate(fast.ups):
            scale, length = scale * up.stride[1], length * up.stride[1]
            mask = mask_for(length, scale)
            x = self.masked(self.conv(self.leaky(x, fast.slope), up), mask)
            total = None
            for pairs in fast.blocks[i * fast.num_kernels : (i + 1) * fast.num_kernels]:
                xs = x
                for conv1, conv2 in pairs:
                    xt = self.masked(self.conv(self.leaky(xs, fast.slope), conv1), mask)
                    xs = ops.add(self.masked(self.conv(self.leaky(xt, fast.slope), conv2), mask), xs)
                total = xs if total is None else ops.add(total, xs)
            x = ops.multiply(total, self.const(np.array([1.0 / fast.num_kernels], dtype=np.float32)))
        y = ops.tanh(self.conv(self.leaky(x, 0.01), fast.conv_post))
        y = ops.squeeze(y, axis)  # (1, 1, frames · hop)
        return ov.Model([y], params, f"hifigan_window_{frames}")


class OpenVinoWindows:
    """Compiled window graphs of one prepared generator, one per window length, compiled on first use."""

    def __init__(self, fast: FastGenerator, bf16: bool, threads: int | None = None) -> None:
        import openvino as ov

        self._core = ov.Core()
        self._writer = _GraphWriter(fast)
        self._config = {
            "INFERENCE_PRECISION_HINT": "bf16" if bf16 else "f32",
            "INFERENCE_NUM_THREADS": int(threads or torch.get_num_threads()),
            "PERFORMANCE_HINT": "LATENCY",
            "ENABLE_CPU_PINNING": False,  # the GPT's runtimes share these cores
        }
        self._compiled: dict[int, object] = {}
        self._lock = threading.Lock()
        self._local = threading.local()  # one infer request per thread and graph: requests are not shared

    def _request(self, frames: int):
        compiled = self._compiled.get(frames)
        if compiled is None:
            with self._lock:
                compiled = self._compiled.get(frames)
                if compiled is None:
                    compiled = self._core.compile_model(self._writer.model(frames), "CPU", self._config)
                    self._compiled[frames] = compiled
        requests = self._local.__dict__.setdefault("requests", {})
        if frames not in requests:
            requests[frames] = compiled.create_infer_request()
        return requests[frames]

    def run(self, x: torch.Tensor, g: torch.Tensor | None, valid: int | None) -> torch.Tensor:
        """One window: x (1, C_in, frames) → waveform (1, 1, frames · hop), fp32; ``valid`` as in
        :meth:`FastGenerator._run` (None: all frames are real)."""
        frames = x.shape[-1]
        feeds = [np.ascontiguousarray(x.detach().float().cpu().numpy())]
        if self._writer.fast.cond is not None:
            if g is None:
                raise ValueError("this generator is conditioned on a speaker embedding: g is needed")
            feeds.append(np.ascontiguousarray(g.detach().float().cpu().numpy()))
        feeds.append(np.array([frames if valid is None else valid], dtype=np.int32))
        request = self._request(frames)
        request.infer(feeds)
        return torch.from_numpy(request.get_output_tensor(0).data.copy())

    def warm(self, frames: list[int]) -> None:
        """Compile the graphs of these window lengths now (~1 s each), not during a sentence."""
        for size in frames:
            self._request(size)


def attach(fast: FastGenerator, bf16: bool) -> bool:
    """Give a prepared generator OpenVINO windows (CPU only). Returns False, with the reason in the log, when
    OpenVINO is missing or refuses the graph."""
    if not available():
        return False
    from studio.models.sovits.fast_decoder import SHORT_WINDOW, WINDOW

    try:
        windows = OpenVinoWindows(fast, bf16)
        windows.warm([SHORT_WINDOW, WINDOW])  # compiled now (~2 s): a graph OpenVINO refuses is refused here
    except Exception as exc:  # a too-old OpenVINO, a broken install
        _LOGGER.warning("the OpenVINO decoder is unavailable (%s): PyTorch decodes", exc)
        return False
    fast.openvino = windows
    return True
