"""Fidelity to a reference image: PSNR and SSIM, over the frame or a region."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from semia.config import EvalConfig
from semia.eval.common import image_tensor
from semia.ops import gaussian_kernel


def _region_mask(mask: np.ndarray | None, shape: tuple[int, int]) -> torch.Tensor | None:
    if mask is None:
        return None
    mask = np.asarray(mask, dtype=bool)
    if mask.shape != shape:
        raise ValueError(f"region mask has shape {mask.shape}, expected {shape}")
    return torch.from_numpy(mask)


def psnr(
    output: np.ndarray,
    reference: np.ndarray,
    *,
    mask: np.ndarray | None = None,
    max_db: float = EvalConfig.psnr_max_db,
) -> float | None:
    """Peak signal-to-noise ratio for images in [0, 1] (peak 1).

    Args:
        output: (H, W, 3) float32 in [0, 1].
        reference: (H, W, 3) float32 in [0, 1].
        mask: optional (H, W) bool; only these pixels count.
        max_db: value returned when the images are identical (MSE 0).

    Returns:
        PSNR in dB (higher is better), or None when the mask is empty.
    """
    out_t = image_tensor(output, "output")
    ref_t = image_tensor(reference, "reference")
    if out_t.shape != ref_t.shape:
        raise ValueError(f"output {tuple(out_t.shape)} and reference {tuple(ref_t.shape)} differ")
    sq = ((out_t - ref_t) ** 2).mean(1)[0]  # (H, W) per-pixel MSE over channels
    region = _region_mask(mask, tuple(sq.shape))
    if region is not None:
        if not region.any():
            return None
        sq = sq[region]
    mse = float(sq.double().mean())
    if mse <= 10 ** (-max_db / 10):
        return float(max_db)
    return float(-10.0 * math.log10(mse))


def ssim_map(
    output: torch.Tensor, reference: torch.Tensor, *, window: int = 11, sigma: float = 1.5
) -> torch.Tensor:
    """Per-pixel SSIM (Wang et al. 2004; Gaussian window, C1 = 0.01^2, C2 = 0.03^2).

    Args:
        output: (1, 3, H, W) float in [0, 1].
        reference: (1, 3, H, W) float in [0, 1].
        window: Gaussian window side (odd).
        sigma: Gaussian window sigma.

    Returns:
        (H, W) float SSIM averaged over channels, 1 where the images agree.
    """
    c1, c2 = 0.01**2, 0.03**2
    radius = window // 2
    kernel = gaussian_kernel(sigma, radius).to(output)
    x, y = output, reference
    stack = torch.cat([x, y, x * x, y * y, x * y])  # (5, 3, H, W)
    mode_y = "reflect" if radius < output.shape[2] else "replicate"
    mode_x = "reflect" if radius < output.shape[3] else "replicate"
    stack = stack.reshape(15, 1, *output.shape[-2:])  # (5, 3, H, W) -> (15, 1, H, W)
    stack = F.conv2d(F.pad(stack, (radius, radius, 0, 0), mode=mode_x), kernel.view(1, 1, 1, -1))
    stack = F.conv2d(F.pad(stack, (0, 0, radius, radius), mode=mode_y), kernel.view(1, 1, -1, 1))
    mu_x, mu_y, xx, yy, xy = stack.reshape(5, 3, *output.shape[-2:])  # each (3, H, W)
    var_x, var_y, cov = xx - mu_x**2, yy - mu_y**2, xy - mu_x * mu_y
    num = (2 * mu_x * mu_y + c1) * (2 * cov + c2)
    den = (mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2)
    return (num / den).mean(0)  # (3, H, W) -> (H, W)


def ssim(
    output: np.ndarray,
    reference: np.ndarray,
    *,
    mask: np.ndarray | None = None,
    config: EvalConfig = EvalConfig(),
) -> float | None:
    """Structural similarity, mean of the SSIM map (over `mask` pixels if given).

    Args:
        output: (H, W, 3) float32 in [0, 1].
        reference: (H, W, 3) float32 in [0, 1].
        mask: optional (H, W) bool region.
        config: evaluation settings (window, sigma).

    Returns:
        SSIM in [-1, 1] (1 for identical images), or None when the mask is empty.
    """
    out_t = image_tensor(output, "output")
    ref_t = image_tensor(reference, "reference")
    if out_t.shape != ref_t.shape:
        raise ValueError(f"output {tuple(out_t.shape)} and reference {tuple(ref_t.shape)} differ")
    values = ssim_map(out_t, ref_t, window=config.ssim_window, sigma=config.ssim_sigma)
    region = _region_mask(mask, tuple(values.shape))
    if region is not None:
        if not region.any():
            return None
        values = values[region]
    return float(values.double().mean())
