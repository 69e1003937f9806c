"""HiFiGAN generator ``dec``: latent frames -> waveform (×prod(upsample_rates) samples per frame).

Shape legend: B batch, C channels (halved at every upsampling stage), T frames, G gin channels.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from studio.models.sovits.layers import WeightNormConv1d, WeightNormConvTranspose1d, same_padding

LRELU_SLOPE = 0.1


class ResBlock1(nn.Module):
    """Three (dilated conv, conv) pairs with leaky ReLU(0.1) pre-activations and residual adds."""

    def __init__(self, channels: int, kernel_size: int, dilations: tuple[int, ...]) -> None:
        super().__init__()
        self.convs1 = nn.ModuleList(
            WeightNormConv1d(channels, channels, kernel_size, dilation=d, padding=same_padding(kernel_size, d))
            for d in dilations
        )
        self.convs2 = nn.ModuleList(
            WeightNormConv1d(channels, channels, kernel_size, padding=same_padding(kernel_size)) for _ in dilations
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for conv1, conv2 in zip(self.convs1, self.convs2):
            xt = conv1(F.leaky_relu(x, LRELU_SLOPE))
            xt = conv2(F.leaky_relu(xt, LRELU_SLOPE))
            x = xt + x
        return x


class Generator(nn.Module):
    def __init__(
        self,
        in_channels: int,
        resblock_kernel_sizes: tuple[int, ...],
        resblock_dilation_sizes: tuple[tuple[int, ...], ...],
        upsample_rates: tuple[int, ...],
        upsample_initial_channel: int,
        upsample_kernel_sizes: tuple[int, ...],
        gin_channels: int = 0,
    ) -> None:
        super().__init__()
        self.num_kernels = len(resblock_kernel_sizes)
        self.conv_pre = nn.Conv1d(in_channels, upsample_initial_channel, 7, 1, padding=3)
        self.ups = nn.ModuleList()
        self.resblocks = nn.ModuleList()
        channels = upsample_initial_channel
        for rate, kernel in zip(upsample_rates, upsample_kernel_sizes):
            self.ups.append(
                WeightNormConvTranspose1d(channels, channels // 2, kernel, rate, padding=(kernel - rate) // 2)
            )
            channels //= 2
        channels = upsample_initial_channel
        for _ in upsample_rates:
            channels //= 2
            for kernel, dilations in zip(resblock_kernel_sizes, resblock_dilation_sizes):
                self.resblocks.append(ResBlock1(channels, kernel, tuple(dilations)))
        self.conv_post = nn.Conv1d(channels, 1, 7, 1, padding=3, bias=False)
        if gin_channels:
            self.cond = nn.Conv1d(gin_channels, upsample_initial_channel, 1)

    def forward(self, x: torch.Tensor, g: torch.Tensor | None = None) -> torch.Tensor:
        """x (B, C_in, T), g (B, G, 1) -> wav (B, 1, T·prod(upsample_rates)) in [-1, 1]."""
        fast = self.__dict__.get("fast")  # set by fast_decoder.prepare_generator on inference models
        if fast is not None and not torch.is_grad_enabled():
            return fast(x, g)
        x = self.conv_pre(x)  # (B, C0, T)
        if g is not None:
            x = x + self.cond(g)
        for i, up in enumerate(self.ups):
            x = up(F.leaky_relu(x, LRELU_SLOPE))  # (B, C_i, T·rate_i…)
            blocks = self.resblocks[i * self.num_kernels : (i + 1) * self.num_kernels]
            xs = blocks[0](x)
            for block in blocks[1:]:
                xs = xs + block(x)
            x = xs / self.num_kernels
        x = self.conv_post(F.leaky_relu(x))  # default slope 0.01 here, as upstream
        return torch.tanh(x)  # (B, 1, T_wav)
