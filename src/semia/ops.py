"""Small tensor operations shared by the methods and the metrics: one blur, one patch extractor,
the image pyramids.

Every function takes and returns (B, C, H, W) float tensors on the input's device unless it says
otherwise.
"""

from __future__ import annotations

import itertools
import math

import torch
import torch.nn.functional as F

_PAD_MODES = ("reflect", "replicate", "zeros")


def gaussian_kernel(sigma: float, radius: int | None = None) -> torch.Tensor:
    """Normalised 1-D Gaussian (2 * radius + 1,) float32, radius ceil(3 sigma) by default."""
    radius = max(1, math.ceil(3.0 * sigma)) if radius is None else radius
    x = torch.arange(-radius, radius + 1, dtype=torch.float32)
    kernel = torch.exp(-0.5 * (x / sigma) ** 2)
    return kernel / kernel.sum()


def gaussian_blur(
    x: torch.Tensor, sigma: float, padding: str = "reflect", radius: int | None = None
) -> torch.Tensor:
    """Separable Gaussian blur of every channel.

    Args:
        x: (B, C, H, W) float.
        sigma: standard deviation in pixels; <= 0 returns x unchanged.
        padding: "reflect" (falls back to "replicate" on images smaller than the kernel),
            "replicate", or "zeros" (zero outside: for normalised convolution, blur(v * m) /
            blur(m)).
        radius: kernel radius; ceil(3 sigma) by default.

    Returns:
        (B, C, H, W) float, same device and dtype as x.
    """
    if padding not in _PAD_MODES:
        raise ValueError(f"padding must be one of {_PAD_MODES}, got {padding!r}")
    if sigma <= 0:
        return x
    channels = x.shape[1]
    kernel = gaussian_kernel(sigma, radius).to(device=x.device, dtype=x.dtype)
    r = kernel.numel() // 2
    kx = kernel.view(1, 1, 1, -1).expand(channels, 1, 1, -1)
    ky = kernel.view(1, 1, -1, 1).expand(channels, 1, -1, 1)
    if padding == "zeros":
        x = F.conv2d(x, kx, padding=(0, r), groups=channels)
        return F.conv2d(x, ky, padding=(r, 0), groups=channels)
    mode_y = "reflect" if padding == "reflect" and r < x.shape[2] else "replicate"
    mode_x = "reflect" if padding == "reflect" and r < x.shape[3] else "replicate"
    x = F.conv2d(F.pad(x, (r, r, 0, 0), mode=mode_x), kx, groups=channels)
    return F.conv2d(F.pad(x, (0, 0, r, r), mode=mode_y), ky, groups=channels)


def extract_patches(
    x: torch.Tensor, size: int, stride: int = 1, padding: str | None = None
) -> torch.Tensor:
    """Every `size` x `size` patch on a grid of step `stride`, flattened.

    Args:
        x: (B, C, H, W) float.
        size: patch side.
        stride: grid step.
        padding: None (patches lie inside the image; their top-left corners are the grid
            points) or "replicate" / "reflect" (size // 2 px of padding: one patch centred on
            every grid point).

    Returns:
        (B, N, C * size * size), patches in row-major grid order; element order (c, i, j).
    """
    if padding is not None:
        r = size // 2
        x = F.pad(x, (r, r, r, r), mode=padding)
    cols = F.unfold(x, kernel_size=size, stride=stride)  # (B, C * size * size, N)
    return cols.transpose(1, 2)


def gaussian_pyramid(x: torch.Tensor, levels: int) -> list[torch.Tensor]:
    """Gaussian pyramid: level 0 is x, each next level is blurred (sigma 1) and halved.

    Args:
        x: (B, C, H, W) float.
        levels: number of levels (>= 1); stops early when a level would be under 8 px.

    Returns:
        list of (B, C, H / 2**l, W / 2**l) tensors.
    """
    pyramid = [x]
    for _ in range(levels - 1):
        if min(pyramid[-1].shape[-2:]) < 16:
            break
        pyramid.append(F.avg_pool2d(gaussian_blur(pyramid[-1], 1.0), 2))
    return pyramid


def laplacian_pyramid(x: torch.Tensor, levels: int) -> list[torch.Tensor]:
    """Laplacian pyramid: band-pass levels (Gaussian level minus the upsampled next one) and,
    last, the low-pass residual (the coarsest Gaussian level, which carries the colours).

    Args:
        x: (B, C, H, W) float.
        levels: number of levels (>= 1).

    Returns:
        list of (B, C, H / 2**l, W / 2**l) tensors.
    """
    return laplacian_from_gaussian(gaussian_pyramid(x, levels))


def laplacian_from_gaussian(gauss: list[torch.Tensor]) -> list[torch.Tensor]:
    """The Laplacian pyramid of an already computed Gaussian pyramid (see laplacian_pyramid)."""
    bands = []
    for fine, coarse in itertools.pairwise(gauss):
        up = F.interpolate(coarse, size=fine.shape[-2:], mode="bilinear", align_corners=False)
        bands.append(fine - up)
    return [*bands, gauss[-1]]
