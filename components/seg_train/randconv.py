"""Random-convolution "imaging views" (RandConv, Xu et al. ICLR 2021, as in the authors' code):
a random 3D kernel mixed with the input, clamped and min-max normalised. One draw can invert
contrast, blur or sharpen, which is how the method simulates scanner and protocol shifts."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F


def random_convolution(
    x: torch.Tensor,
    kernel_sizes: Sequence[int] = (3, 5, 7),
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """One random view of a batch `x` (B, 1, D, H, W) in [0, 1]; the output is in [0, 1] too.

    Kernel K ∈ `kernel_sizes`, Kaiming-normal weights (fan-in), bias U(±1/√fan_in), α ~ U(0, 1),
    then `mix_view`."""
    index = int(torch.randint(len(kernel_sizes), (1,), generator=generator))
    size = kernel_sizes[index]
    fan_in = size**3
    weight = torch.randn((1, 1, size, size, size), generator=generator) * math.sqrt(2.0 / fan_in)
    bias = (torch.rand(1, generator=generator) * 2 - 1) / math.sqrt(fan_in)
    alpha = torch.rand(1, generator=generator)
    return mix_view(x, weight, bias, alpha)


def mix_view(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, alpha: torch.Tensor
) -> torch.Tensor:
    """The deterministic half of a view: padding K//2, x' = α·conv(x) + (1 − α)·x, clamp to
    [0, 1], min-max per sample. A view with NaN falls back to the input. No graph is built (a
    context, not a decorator: mutmut leaves decorated functions unmutated)."""
    padding = weight.shape[-1] // 2
    with torch.no_grad():
        mixed = alpha * F.conv3d(x, weight.to(x), bias.to(x), padding=padding) + (1 - alpha) * x
        mixed = mixed.clamp(0, 1)
        low = mixed.amin(dim=(1, 2, 3, 4), keepdim=True)
        high = mixed.amax(dim=(1, 2, 3, 4), keepdim=True)
        # a constant view stays constant (no 0/0)
        view = (mixed - low) / (high - low).clamp_min(1e-6)
        return torch.where(torch.isnan(view).any(), x, view)


def two_views(x: torch.Tensor, kernel_sizes: Sequence[int] = (3, 5, 7)) -> torch.Tensor:
    """Two independent RandConv views of each sample, stacked on the batch axis (2B, ...)."""
    return torch.cat([random_convolution(x, kernel_sizes), random_convolution(x, kernel_sizes)])
