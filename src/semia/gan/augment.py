"""Progressive joint augmentation of (image, labels) in torch, on the input's device, seeded.

One sampling grid per sample warps the image (bilinear) and the label ids (nearest: ids stay exact)
together. The grid maps output coordinates to input coordinates (normalised to [-1, 1]):

    output point -> thin-plate-spline warp -> rotation -> flip -> zoom + shift -> input point

- zoom: scale s in [1, 1 + strength * max_scale] (zoom in), with a random crop position inside the
  zoom margin (so no border is sampled without rotation, TPS or extra shift);
- flip: horizontal, with probability strength * flip_prob;
- TPS: tps_grid x tps_grid control points moved by up to strength * tps_offset of the size,
  interpolated by a thin-plate spline (a small linear system solved with torch.linalg.solve);
- rotation and extra shift: up to strength * max_rotation degrees / strength * max_shift.
Out-of-image samples are reflected. Strength 0 returns the inputs unchanged (exactly).

paste_regions (an addition to the paper, AugmentConfig.paste_prob) then copies a random rectangle
of the pair to another place, onto the pixels whose class it changes: large class changes with
real texture, which warps alone never produce.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from semia.config import AugmentConfig


def augment_strength(step: int, config: AugmentConfig) -> float:
    """Augmentation strength at a training step: linear ramp from 0 (step 0) to 1 (ramp_iters).

    Args:
        step: training iteration, >= 0.
        config: augmentation settings (ramp_iters <= 0 means full strength from the start).

    Returns:
        Strength in [0, 1].
    """
    if config.ramp_iters <= 0:
        return 1.0
    return float(min(max(step / config.ramp_iters, 0.0), 1.0))


def _uniform(n: int, low: float, high: float, generator: torch.Generator) -> Tensor:
    """(n,) uniform samples drawn on the generator's device (float32)."""
    u = torch.rand(n, generator=generator, device=generator.device)
    return low + (high - low) * u


def _tps_kernel(r2: Tensor) -> Tensor:
    """Thin-plate radial basis U(r) = r^2 log r^2 (0 at r = 0), from squared distances."""
    return r2 * torch.log(r2.clamp_min(1e-12))


def tps_grid(offsets: Tensor, height: int, width: int) -> Tensor:
    """Dense thin-plate-spline warp of a regular grid from control-point offsets.

    Control points sit on a regular n x n grid spanning [-1, 1]^2; each is moved by its offset.

    Args:
        offsets: (B, n*n, 2) float, (x, y) displacements in normalised coordinates.
        height, width: size of the dense grid.

    Returns:
        (B, height, width, 2) float: the warped normalised coordinates of every output pixel.
    """
    batch, num_points, _ = offsets.shape
    n = math.isqrt(num_points)
    if n * n != num_points or n < 2:
        raise ValueError(f"offsets must hold n*n >= 4 control points, got {num_points}")
    device, dtype = offsets.device, torch.float64
    lin = torch.linspace(-1.0, 1.0, n, device=device, dtype=dtype)
    cy, cx = torch.meshgrid(lin, lin, indexing="ij")
    ctrl = torch.stack([cx.reshape(-1), cy.reshape(-1)], dim=1)  # (P, 2)
    # system [[K, Q], [Q^T, 0]] [w; a] = [values; 0]
    kernel = _tps_kernel(torch.cdist(ctrl, ctrl).pow(2))  # (P, P)
    poly = torch.cat([torch.ones(num_points, 1, device=device, dtype=dtype), ctrl], dim=1)  # (P, 3)
    system = torch.zeros(num_points + 3, num_points + 3, device=device, dtype=dtype)
    system[:num_points, :num_points] = kernel
    system[:num_points, num_points:] = poly
    system[num_points:, :num_points] = poly.T
    rhs = torch.zeros(batch, num_points + 3, 2, device=device, dtype=dtype)
    rhs[:, :num_points] = ctrl + offsets.to(dtype)
    coeffs = torch.linalg.solve(system, rhs)  # (B, P + 3, 2)

    ys = torch.linspace(-1.0 + 1.0 / height, 1.0 - 1.0 / height, height, device=device, dtype=dtype)
    xs = torch.linspace(-1.0 + 1.0 / width, 1.0 - 1.0 / width, width, device=device, dtype=dtype)
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    pts = torch.stack([gx.reshape(-1), gy.reshape(-1)], dim=1)  # (H*W, 2)
    basis = torch.cat(
        [
            _tps_kernel(torch.cdist(pts, ctrl).pow(2)),
            torch.ones(pts.shape[0], 1, device=device, dtype=dtype),
            pts,
        ],
        dim=1,
    )  # (H*W, P + 3)
    warped = basis @ coeffs  # (B, H*W, 2)
    return warped.reshape(batch, height, width, 2).to(offsets.dtype)  # (B, H*W, 2) -> (B, H, W, 2)


def augment_pair(
    image: Tensor,
    labels: Tensor,
    strength: float,
    config: AugmentConfig,
    generator: torch.Generator,
) -> tuple[Tensor, Tensor]:
    """Warp an image and its label map jointly with a random scale, flip, TPS (rotation, shift).

    Args:
        image: (B, 3, H, W) float (any range; warped bilinearly); extra channels after the
            colours (an edge map) are warped alike.
        labels: (B, H, W) int64 class ids (warped with nearest sampling: ids stay exact).
        strength: in [0, 1]; 0 returns copies of the inputs, 1 applies the full ranges of config.
        config: augmentation ranges.
        generator: source of all random draws (may live on another device than the tensors).

    Returns:
        (image_aug (B, 3, H, W) float, labels_aug (B, H, W) int64), on the input's device.
    """
    if image.dim() != 4 or image.shape[1] < 3:
        raise ValueError(f"image must be (B, 3 + extra, H, W), got {tuple(image.shape)}")
    if labels.dim() != 3 or labels.shape != (image.shape[0], *image.shape[-2:]):
        raise ValueError(
            f"labels must be (B, H, W) = {(image.shape[0], *image.shape[-2:])}, "
            f"got {tuple(labels.shape)}"
        )
    if labels.dtype != torch.int64:
        raise ValueError(f"labels must be int64 class ids, got {labels.dtype}")
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"strength must be in [0, 1], got {strength}")
    if strength == 0.0:
        return image.clone(), labels.clone()

    batch, _, height, width = image.shape
    device = image.device
    dtype = image.dtype if image.dtype.is_floating_point else torch.float32

    scale = _uniform(batch, 1.0, 1.0 + strength * config.max_scale, generator)
    margin = 1.0 - 1.0 / scale
    shift = torch.stack(
        [
            _uniform(batch, -1.0, 1.0, generator) * margin
            + _uniform(batch, -1.0, 1.0, generator) * 2.0 * strength * config.max_shift,
            _uniform(batch, -1.0, 1.0, generator) * margin
            + _uniform(batch, -1.0, 1.0, generator) * 2.0 * strength * config.max_shift,
        ],
        dim=1,
    )  # (B, 2)
    flip = _uniform(batch, 0.0, 1.0, generator) < strength * config.flip_prob
    angle = _uniform(batch, -1.0, 1.0, generator) * math.radians(strength * config.max_rotation)
    offsets = _uniform(batch * config.tps_grid**2 * 2, -1.0, 1.0, generator)
    # (B * P * 2,) -> (B, P, 2); a fraction f of the size is 2 f in normalised units
    offsets = offsets.reshape(batch, config.tps_grid**2, 2) * 2.0 * strength * config.tps_offset

    pts = tps_grid(offsets.to(device), height, width)  # (B, H, W, 2)
    cos, sin = torch.cos(angle).to(device), torch.sin(angle).to(device)
    x, y = pts[..., 0], pts[..., 1]
    # rotation in pixel-aspect-correct coordinates
    aspect = width / height
    xr = cos[:, None, None] * x - sin[:, None, None] * y / aspect
    yr = sin[:, None, None] * x * aspect + cos[:, None, None] * y
    sign = torch.where(flip, -1.0, 1.0).to(device)
    xr = xr * sign[:, None, None]
    inv_scale = (1.0 / scale).to(device)
    shift = shift.to(device)
    grid = torch.stack(
        [
            xr * inv_scale[:, None, None] + shift[:, None, None, 0],
            yr * inv_scale[:, None, None] + shift[:, None, None, 1],
        ],
        dim=-1,
    ).to(dtype)  # (B, H, W, 2)

    image_aug = F.grid_sample(
        image.to(dtype), grid, mode="bilinear", padding_mode="reflection", align_corners=False
    )
    labels_aug = F.grid_sample(
        labels[:, None].to(dtype),
        grid,
        mode="nearest",
        padding_mode="reflection",
        align_corners=False,
    )
    return image_aug, labels_aug[:, 0].round().long()  # (B, 1, H, W) -> (B, H, W)


def paste_regions(
    image: Tensor,
    labels: Tensor,
    strength: float,
    config: AugmentConfig,
    generator: torch.Generator,
) -> tuple[Tensor, Tensor]:
    """Copy a random rectangle of (image, labels) to another place, where its class differs.

    Large edits (a mountain raised into the sky, an object moved) change the class of big regions,
    while warps only change thin strips along the class borders. With probability
    strength * paste_prob per sample, a rectangle (sides paste_min..paste_max of the image's) is
    copied to a random other position, but only onto the pixels whose class it changes: the result
    is a real image with a consistent label map in which large regions hold real texture of a new
    class, the training signal the generator needs for large edits. Pixels whose class stays keep
    their content, so a label map that agrees with the source still means "unchanged".

    Args and returns as augment_pair.
    """
    if strength == 0.0 or config.paste_prob <= 0.0:
        return image, labels
    batch, _, height, width = image.shape
    draws = _uniform(batch * 7, 0.0, 1.0, generator).reshape(batch, 7).tolist()
    image, labels = image.clone(), labels.clone()
    for b, (u_do, u_h, u_w, u_ys, u_xs, u_yd, u_xd) in enumerate(draws):
        if u_do >= strength * config.paste_prob:
            continue
        span = config.paste_max - config.paste_min
        hh = max(1, min(height, round(height * (config.paste_min + span * u_h))))
        ww = max(1, min(width, round(width * (config.paste_min + span * u_w))))
        ys, xs = int(u_ys * (height - hh + 1)), int(u_xs * (width - ww + 1))
        yd, xd = int(u_yd * (height - hh + 1)), int(u_xd * (width - ww + 1))
        src_lab = labels[b, ys : ys + hh, xs : xs + ww].clone()
        src_img = image[b, :, ys : ys + hh, xs : xs + ww].clone()
        dst_lab = labels[b, yd : yd + hh, xd : xd + ww]
        dst_img = image[b, :, yd : yd + hh, xd : xd + ww]
        moved = src_lab != dst_lab
        dst_img.copy_(torch.where(moved[None], src_img, dst_img))
        dst_lab.copy_(torch.where(moved, src_lab, dst_lab))
    return image, labels
