"""Evaluation metrics that need no downloaded weights.

Three families, each checked by ranking tests on the shared scenes (tests/test_metrics.py):

- Semantic alignment: a labeller fitted on the source pair (I, P) only (nearest class prototypes
  over multi-scale colour and local texture features, with spatial smoothing; independent of any
  synthesis model) labels the output O; pixel accuracy and mean IoU against the target P2,
  overall and on the edited region (pixels where P2 differs from P, where copying fails).
- Realism / appearance: sliced Wasserstein distance (SWD) between the 7x7 patches of Laplacian
  pyramids of O and I, globally and per class (patches of class c in O, by P2, against patches of
  class c in I, by P); patch coherence (mean distance from a patch of O to its nearest patch of I,
  RMS per patch element in intensity units), plain and semantics-aware (class c against class c).
  Lower is better for all of them. The global SWD and the plain coherence measure appearance
  only: a copy of the source is perfect for them by construction; the per-class variants and
  the alignment metrics are the ones that catch it.
- With a reference image: PSNR and SSIM, overall and on the edited region.

Everything runs on the CPU from numpy inputs, seeded (patch sampling, SWD projections, k-means).
`evaluate` returns them all as one JSON-ready dict.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import logging
import math
import time
from collections.abc import Iterator

import numpy as np
import torch
import torch.nn.functional as F

from semia.config import EvalConfig

logger = logging.getLogger(__name__)

RESULT_KEYS: tuple[str, ...] = (
    "label_accuracy",
    "label_accuracy_edited",
    "miou",
    "miou_edited",
    "patch_swd",
    "patch_swd_per_class",
    "coherence",
    "psnr",
    "ssim",
    "psnr_edited",
    "ssim_edited",
    "seconds",
)


# --------------------------------------------------------------------------------------------
# Input validation and small tensor helpers
# --------------------------------------------------------------------------------------------


def _check_image(array: np.ndarray, name: str) -> torch.Tensor:
    """Validates an (H, W, 3) float image in [0, 1]; returns it as a (1, 3, H, W) float32 tensor."""
    array = np.asarray(array)
    if array.ndim != 3 or array.shape[2] != 3:
        raise ValueError(f"{name} must have shape (H, W, 3), got {array.shape}")
    if array.shape[0] < 8 or array.shape[1] < 8:
        raise ValueError(f"{name} is too small ({array.shape[:2]}); need at least 8x8 pixels")
    if not np.issubdtype(array.dtype, np.floating):
        raise ValueError(f"{name} must be float in [0, 1], got dtype {array.dtype}; divide by 255")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains NaN or infinite values")
    if array.min() < -1e-3 or array.max() > 1 + 1e-3:
        raise ValueError(
            f"{name} values must lie in [0, 1], got [{array.min():.3g}, {array.max():.3g}]"
        )
    tensor = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))
    return tensor.clamp(0, 1).permute(2, 0, 1).unsqueeze(0)  # (H, W, 3) -> (1, 3, H, W)


def _check_labels(array: np.ndarray, name: str, shape: tuple[int, int] | None = None) -> np.ndarray:
    """Validates an (H, W) integer label map with ids >= 0; returns it as int64."""
    array = np.asarray(array)
    if array.ndim != 2:
        raise ValueError(f"{name} must have shape (H, W), got {array.shape}")
    if not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"{name} must hold integer class ids, got dtype {array.dtype}")
    if array.size and array.min() < 0:
        raise ValueError(f"{name} has negative class ids; ids must be 0..K-1")
    if shape is not None and array.shape != shape:
        raise ValueError(f"{name} has shape {array.shape} but its image has shape {shape}")
    return array.astype(np.int64, copy=False)


@contextlib.contextmanager
def _torch_threads(count: int) -> Iterator[None]:
    """Temporarily sets torch's CPU intra-op thread count (0 leaves it unchanged).

    The metrics run many small CPU ops; on a busy 2-core machine two threads made them 2-5x
    slower than one (threads waiting for each other), so evaluate() uses one by default.
    """
    if count <= 0:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _scale(height: int, width: int) -> float:
    """Factor that converts pixel scales given at a 256 px short side to this image size."""
    return min(height, width) / 256.0


def _gaussian_kernel(sigma: float, radius: int | None = None) -> torch.Tensor:
    """Normalised 1-D Gaussian (2 * radius + 1,), radius 3 sigma by default."""
    radius = max(1, math.ceil(3.0 * sigma)) if radius is None else radius
    x = torch.arange(-radius, radius + 1, dtype=torch.float32)
    kernel = torch.exp(-0.5 * (x / sigma) ** 2)
    return kernel / kernel.sum()


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur with reflect padding.

    Args:
        x: (B, C, H, W) float.
        sigma: standard deviation in pixels; <= 0 returns x unchanged.

    Returns:
        (B, C, H, W) float, same device and dtype as x.
    """
    if sigma <= 0:
        return x
    channels = x.shape[1]
    kernel = _gaussian_kernel(sigma).to(device=x.device, dtype=x.dtype)
    radius = kernel.numel() // 2
    # reflect padding needs pad < size; fall back to replicate on tiny images
    mode_y = "reflect" if radius < x.shape[2] else "replicate"
    mode_x = "reflect" if radius < x.shape[3] else "replicate"
    kx = kernel.view(1, 1, 1, -1).expand(channels, 1, 1, -1)
    ky = kernel.view(1, 1, -1, 1).expand(channels, 1, -1, 1)
    x = F.conv2d(F.pad(x, (radius, radius, 0, 0), mode=mode_x), kx, groups=channels)
    return F.conv2d(F.pad(x, (0, 0, radius, radius), mode=mode_y), ky, groups=channels)


def _blur_approx(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian blur that runs wide sigmas on a downsampled copy (cheap; for features only)."""
    factor = 2 ** max(0, int(math.log2(max(sigma, 1.0) / 2.0)))
    if factor == 1:
        return gaussian_blur(x, sigma)
    height, width = x.shape[-2:]
    small_size = (max(1, math.ceil(height / factor)), max(1, math.ceil(width / factor)))
    small = F.interpolate(x, size=small_size, mode="area")
    small = gaussian_blur(small, sigma / factor)
    return F.interpolate(small, size=(height, width), mode="bilinear", align_corners=False)


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
    return _laplacian_from_gaussian(gaussian_pyramid(x, levels))


def _laplacian_from_gaussian(gauss: list[torch.Tensor]) -> list[torch.Tensor]:
    bands = []
    for fine, coarse in itertools.pairwise(gauss):
        up = F.interpolate(coarse, size=fine.shape[-2:], mode="bilinear", align_corners=False)
        bands.append(fine - up)
    return [*bands, gauss[-1]]


def _labels_at_level(labels: torch.Tensor, level: int, size: tuple[int, int]) -> torch.Tensor:
    """Nearest label map for pyramid level `level`: (H, W) long -> size (h, w) long."""
    step = 2**level
    sub = labels[step // 2 :: step, step // 2 :: step]
    return sub[: size[0], : size[1]]


# --------------------------------------------------------------------------------------------
# Patches
# --------------------------------------------------------------------------------------------


def _patch_positions(
    height: int,
    width: int,
    size: int,
    count: int,
    generator: torch.Generator,
    labels: torch.Tensor | None = None,
    label: int | None = None,
) -> torch.Tensor:
    """Top-left corners (N, 2) of up to `count` random patches (optionally of one centre label)."""
    ny, nx = height - size + 1, width - size + 1
    if ny <= 0 or nx <= 0:
        return torch.zeros(0, 2, dtype=torch.long)
    if labels is None:
        flat = torch.arange(ny * nx)
    else:
        half = size // 2
        centre = labels[half : half + ny, half : half + nx]  # label at each patch centre
        flat = torch.nonzero(centre.reshape(-1) == label).squeeze(1)
    if flat.numel() > count:
        flat = flat[torch.randperm(flat.numel(), generator=generator)[:count]]
    return torch.stack([flat // nx, flat % nx], dim=1)


def _gather_patches(image: torch.Tensor, corners: torch.Tensor, size: int) -> torch.Tensor:
    """Patches of a (1, C, H, W) image at (N, 2) top-left corners -> (N, C * size * size)."""
    offsets = torch.arange(size)
    ys = (corners[:, 0, None] + offsets)[:, :, None]  # (N, size, 1)
    xs = (corners[:, 1, None] + offsets)[:, None, :]  # (N, 1, size)
    patches = image[0][:, ys, xs]  # (C, N, size, size)
    return patches.permute(1, 0, 2, 3).reshape(corners.shape[0], -1)  # (N, C * size * size)


# --------------------------------------------------------------------------------------------
# Sliced Wasserstein distance over patches
# --------------------------------------------------------------------------------------------


def _sliced_wasserstein(x: torch.Tensor, y: torch.Tensor, directions: torch.Tensor) -> float:
    """SWD-1 between point sets x (N, D) and y (M, D) along unit directions (D, P).

    Sets of different sizes are compared at min(N, M) evenly spaced quantiles.
    """
    px = np.sort((x @ directions).T.numpy(), axis=1)  # (P, N); numpy sorts rows ~4x faster
    py = np.sort((y @ directions).T.numpy(), axis=1)  # (P, M)
    n = min(px.shape[1], py.shape[1])
    if px.shape[1] != n:
        px = px[:, ((np.arange(n) + 0.5) * px.shape[1] / n).astype(np.int64)]
    if py.shape[1] != n:
        py = py[:, ((np.arange(n) + 0.5) * py.shape[1] / n).astype(np.int64)]
    return float(np.abs(px - py).mean())


def _directions(dim: int, count: int, generator: torch.Generator) -> torch.Tensor:
    d = torch.randn(dim, count, generator=generator)
    return d / d.norm(dim=0, keepdim=True)  # (D, P) unit columns


def patch_swd(
    output: np.ndarray,
    image: np.ndarray,
    *,
    seed: int = 0,
    config: EvalConfig = EvalConfig(),
) -> float:
    """Sliced Wasserstein distance between the patch distributions of two images.

    7x7 patches (config.patch_size) of each Laplacian pyramid level are sampled (the same random
    positions when the sizes agree, so identical images give exactly 0), projected on random unit
    directions, and compared by 1-D Wasserstein distance; the result is the mean over directions
    and levels. The band-pass levels make blur and noise visible even where the layout changes
    the low frequencies; the low-pass residual level catches colour shifts. (A plain Gaussian
    pyramid was tried first: on the hardest shared scenes (tree, building) it rated blur and
    noise only 2-3 % worse than a good output, the Laplacian one at least 6 % worse.)

    Args:
        output: (H2, W2, 3) float32 in [0, 1], the image being judged.
        image: (H, W, 3) float32 in [0, 1], the source image. Sizes may differ.
        seed: seed of the patch sampling and the projection directions.
        config: evaluation settings.

    Returns:
        The SWD, >= 0; lower is better.
    """
    out_pyr = laplacian_pyramid(_check_image(output, "output"), config.pyramid_levels)
    src_pyr = laplacian_pyramid(_check_image(image, "image"), config.pyramid_levels)
    values = _swd_levels(out_pyr, src_pyr, None, None, seed=seed, config=config, label=None)
    if not values:
        raise ValueError("images are smaller than one patch; use larger images")
    return float(np.mean(values))


def _swd_levels(
    out_pyr: list[torch.Tensor],
    src_pyr: list[torch.Tensor],
    out_labels: torch.Tensor | None,
    src_labels: torch.Tensor | None,
    *,
    seed: int,
    config: EvalConfig,
    label: int | None,
) -> list[float]:
    """SWD per pyramid level; with `label`, only the patches whose centre has that label."""
    size = config.patch_size
    dim = 3 * size * size
    count = config.swd_max_patches if label is None else config.swd_class_max_patches
    minimum = 1 if label is None else config.swd_min_class_patches
    values = []
    for level, (o, s) in enumerate(zip(out_pyr, src_pyr, strict=False)):
        lo = None if out_labels is None else _labels_at_level(out_labels, level, o.shape[-2:])
        ls = None if src_labels is None else _labels_at_level(src_labels, level, s.shape[-2:])
        gen = torch.Generator().manual_seed(seed * 1000 + level)
        state = gen.get_state()
        co = _patch_positions(*o.shape[-2:], size, count, gen, lo, label)
        gen.set_state(state)  # same draw for both images -> identical images give exactly 0
        cs = _patch_positions(*s.shape[-2:], size, count, gen, ls, label)
        if co.shape[0] < minimum or cs.shape[0] < minimum:
            continue
        directions = _directions(dim, config.swd_projections, gen)
        swd = _sliced_wasserstein(
            _gather_patches(o, co, size), _gather_patches(s, cs, size), directions
        )
        values.append(swd)
    return values


def patch_swd_per_class(
    output: np.ndarray,
    target: np.ndarray,
    image: np.ndarray,
    labels: np.ndarray,
    *,
    num_classes: int | None = None,
    seed: int = 0,
    config: EvalConfig = EvalConfig(),
) -> dict[int, float | None]:
    """Patch SWD per class: patches of class c in the output (by the target map) against
    patches of class c in the source (by the source map).

    Args:
        output: (H2, W2, 3) float32 in [0, 1].
        target: (H2, W2) int64 target label map (the layout the output should have).
        image: (H, W, 3) float32 in [0, 1] source image.
        labels: (H, W) int64 source label map.
        num_classes: K; default max id + 1 over both maps.
        seed: seed of patch sampling and projections.
        config: evaluation settings.

    Returns:
        {class id: SWD or None} for every class present in the target; None where the class has
        fewer than config.swd_min_class_patches patches in the output or the source.
    """
    out_t = _check_image(output, "output")
    src_t = _check_image(image, "image")
    target = _check_labels(target, "target", tuple(out_t.shape[-2:]))
    labels = _check_labels(labels, "labels", tuple(src_t.shape[-2:]))
    k = num_classes if num_classes is not None else int(max(labels.max(), target.max())) + 1
    out_pyr = laplacian_pyramid(out_t, config.pyramid_levels)
    src_pyr = laplacian_pyramid(src_t, config.pyramid_levels)
    return _swd_per_class(out_pyr, src_pyr, target, labels, k, seed=seed, config=config)


def _swd_per_class(
    out_pyr: list[torch.Tensor],
    src_pyr: list[torch.Tensor],
    target: np.ndarray,
    labels: np.ndarray,
    num_classes: int,
    *,
    seed: int,
    config: EvalConfig,
) -> dict[int, float | None]:
    out_labels, src_labels = torch.from_numpy(target), torch.from_numpy(labels)
    present = np.bincount(target.reshape(-1), minlength=num_classes) > 0
    result: dict[int, float | None] = {}
    for c in np.flatnonzero(present).tolist():
        values = _swd_levels(
            out_pyr, src_pyr, out_labels, src_labels, seed=seed + c, config=config, label=c
        )
        result[c] = float(np.mean(values)) if values else None
    return result


# --------------------------------------------------------------------------------------------
# Patch coherence
# --------------------------------------------------------------------------------------------


def _nearest_distance(queries: torch.Tensor, database: torch.Tensor) -> torch.Tensor:
    """Exact squared distance from each query (N, D) to its nearest database row (M, D) -> (N,)."""
    db_sq = (database * database).sum(1)
    best = []
    for chunk in torch.split(queries, 1024):
        d2 = (chunk * chunk).sum(1, keepdim=True) - 2 * chunk @ database.T + db_sq  # (n, M)
        best.append(d2.min(1).values)
    return torch.cat(best).clamp_min(0)


def coherence(
    output: np.ndarray,
    image: np.ndarray,
    *,
    target: np.ndarray | None = None,
    labels: np.ndarray | None = None,
    seed: int = 0,
    config: EvalConfig = EvalConfig(),
) -> float | None:
    """Patch coherence: mean distance from each output patch to its nearest source patch.

    Computed on config.coherence_levels Gaussian pyramid levels with config.patch_size patches;
    config.coherence_queries output patches and up to config.coherence_database source patches
    are sampled per level. Distances are RMS per patch element (intensity units).

    With `target` and `labels` the comparison is semantics-aware: an output patch whose centre
    has target class c is matched only against source patches whose centre has class c (output
    patches of classes absent from the source are skipped). A copy of the source then scores
    badly on the edited region, and blur cannot hide in flat regions of another class.

    Args:
        output: (H2, W2, 3) float32 in [0, 1].
        image: (H, W, 3) float32 in [0, 1] source image. Sizes may differ.
        target: optional (H2, W2) int64 target label map of the output.
        labels: optional (H, W) int64 source label map (give both or neither).
        seed: seed of the patch sampling.
        config: evaluation settings.

    Returns:
        Mean nearest-patch distance, >= 0; lower is better (0 for a copy of the source in the
        plain version). None if no output patch has a class present in the source.
    """
    out_t = _check_image(output, "output")
    src_t = _check_image(image, "image")
    if (target is None) != (labels is None):
        raise ValueError("give both target and labels for semantic coherence, or neither")
    out_labels = src_labels = None
    if target is not None:
        out_labels = torch.from_numpy(_check_labels(target, "target", tuple(out_t.shape[-2:])))
        src_labels = torch.from_numpy(_check_labels(labels, "labels", tuple(src_t.shape[-2:])))
    out_pyr = gaussian_pyramid(out_t, config.coherence_levels)
    src_pyr = gaussian_pyramid(src_t, config.coherence_levels)
    value = _coherence(out_pyr, src_pyr, out_labels, src_labels, seed=seed, config=config)
    if value is None and out_labels is None:
        raise ValueError("images are smaller than one patch; use larger images")
    return value


def _coherence(
    out_pyr: list[torch.Tensor],
    src_pyr: list[torch.Tensor],
    out_labels: torch.Tensor | None,
    src_labels: torch.Tensor | None,
    *,
    seed: int,
    config: EvalConfig,
) -> float | None:
    size = config.patch_size
    half = size // 2
    dim = 3 * size * size
    values = []
    for level, (o, s) in enumerate(zip(out_pyr, src_pyr, strict=False)):
        gen = torch.Generator().manual_seed(seed * 1000 + 500 + level)
        co = _patch_positions(*o.shape[-2:], size, config.coherence_queries, gen)
        if co.shape[0] == 0:
            continue
        queries = _gather_patches(o, co, size)
        if out_labels is None:
            cs = _patch_positions(*s.shape[-2:], size, config.coherence_database, gen)
            if cs.shape[0] == 0:
                continue
            d2 = _nearest_distance(queries, _gather_patches(s, cs, size))
        else:
            lo = _labels_at_level(out_labels, level, o.shape[-2:])
            ls = _labels_at_level(src_labels, level, s.shape[-2:])
            query_class = lo[co[:, 0] + half, co[:, 1] + half]  # (N,) centre labels
            parts = []
            classes = torch.unique(query_class).tolist()
            cap = max(config.coherence_database // len(classes), 1024)  # total cost ~ plain one
            for c in classes:
                cs = _patch_positions(*s.shape[-2:], size, cap, gen, ls, c)
                if cs.shape[0] == 0:
                    continue
                database = _gather_patches(s, cs, size)
                parts.append(_nearest_distance(queries[query_class == c], database))
            if not parts:
                continue
            d2 = torch.cat(parts)
        values.append(float(torch.sqrt(d2 / dim).mean()))
    return float(np.mean(values)) if values else None


# --------------------------------------------------------------------------------------------
# PSNR / SSIM
# --------------------------------------------------------------------------------------------


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
    out_t = _check_image(output, "output")
    ref_t = _check_image(reference, "reference")
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
    kernel = _gaussian_kernel(sigma, radius).to(output)
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
    out_t = _check_image(output, "output")
    ref_t = _check_image(reference, "reference")
    if out_t.shape != ref_t.shape:
        raise ValueError(f"output {tuple(out_t.shape)} and reference {tuple(ref_t.shape)} differ")
    values = ssim_map(out_t, ref_t, window=config.ssim_window, sigma=config.ssim_sigma)
    region = _region_mask(mask, tuple(values.shape))
    if region is not None:
        if not region.any():
            return None
        values = values[region]
    return float(values.double().mean())


# --------------------------------------------------------------------------------------------
# The labeller and semantic alignment
# --------------------------------------------------------------------------------------------


def _features(image: torch.Tensor, config: EvalConfig) -> torch.Tensor:
    """Multi-scale colour and texture features (F, H, W) of a (1, 3, H, W) image.

    Colour: opponent colour (luminance, red-green, yellow-blue) blurred at each scale.
    Texture: local standard deviation of luminance and local mean of |dL/dx|, |dL/dy| per scale.
    """
    r, g, b = image[:, 0:1], image[:, 1:2], image[:, 2:3]
    lum = (r + g + b) / 3
    opp = torch.cat([lum, r - g, (r + g) / 2 - b], dim=1)  # (1, 3, H, W)
    gx = F.pad(lum[..., :, 1:] - lum[..., :, :-1], (0, 1, 0, 0), mode="replicate").abs()
    gy = F.pad(lum[..., 1:, :] - lum[..., :-1, :], (0, 0, 0, 1), mode="replicate").abs()
    scale = _scale(*image.shape[-2:])
    stack = torch.cat([opp, lum * lum, gx, gy], dim=1)  # (1, 6, H, W), blurred together
    colour, texture = [], []
    for sigma in config.labeller_sigmas:
        blurred = _blur_approx(stack, sigma * scale)
        mean, mean_sq, grads = blurred[:, :3], blurred[:, 3:4], blurred[:, 4:]
        colour.append(mean)
        std = (mean_sq - mean[:, :1] ** 2).clamp_min(0).sqrt()
        texture.append(torch.cat([std, grads], dim=1))
    return torch.cat(colour + texture, dim=1)[0]  # (F, H, W)


def _kmeans(points: torch.Tensor, k: int, iters: int, generator: torch.Generator) -> torch.Tensor:
    """Lloyd k-means of (N, D) points from a random initial subset; returns (k', D) centres."""
    k = min(k, points.shape[0])
    centres = points[torch.randperm(points.shape[0], generator=generator)[:k]].clone()
    for _ in range(iters):
        assign = torch.cdist(points, centres).argmin(1)  # (N,)
        sums = torch.zeros_like(centres).index_add_(0, assign, points)
        counts = torch.bincount(assign, minlength=k).to(points.dtype)
        filled = counts > 0
        centres[filled] = sums[filled] / counts[filled, None]
    return centres


@dataclasses.dataclass(frozen=True)
class Labeller:
    """Nearest-prototype pixel classifier fitted on one (image, labels) pair.

    Attributes:
        prototypes: (M, F) float, k-means centres of each class's normalised features.
        prototype_class: (M,) long, the class of each prototype.
        feature_mean: (F,) float, per-feature mean over the source (normalisation).
        feature_scale: (F,) float, per-feature scale (std times 1 / group weight).
        temperature: softness of the class scores (median own-class squared distance).
        num_classes: K.
        config: settings used for features and smoothing.
        source_accuracy: pixel accuracy of the labeller on its own source pair (I, P); the
            ceiling of the label accuracy any output can reach.
    """

    prototypes: torch.Tensor
    prototype_class: torch.Tensor
    feature_mean: torch.Tensor
    feature_scale: torch.Tensor
    temperature: float
    num_classes: int
    config: EvalConfig
    source_accuracy: float = math.nan

    def features(self, image: np.ndarray) -> torch.Tensor:
        """Normalised features (H * W, F) of an (H, W, 3) float32 image in [0, 1]."""
        feats = _features(_check_image(image, "image"), self.config)  # (F, H, W)
        flat = feats.reshape(feats.shape[0], -1).T  # (H * W, F)
        return (flat - self.feature_mean) / self.feature_scale

    def class_distances(self, image: np.ndarray) -> torch.Tensor:
        """Squared distance of each pixel to the nearest prototype of each class -> (K, H, W).

        Classes without prototypes (absent from the source) get +inf.
        """
        height, width = np.asarray(image).shape[:2]
        return self._distances(self.features(image), height, width)

    def _distances(self, flat: torch.Tensor, height: int, width: int) -> torch.Tensor:
        """(H * W, F) normalised features -> (K, H, W) nearest-prototype squared distances."""
        out = torch.full((self.num_classes, flat.shape[0]), math.inf)
        p_sq = (self.prototypes**2).sum(1)
        for start in range(0, flat.shape[0], 65536):
            chunk = flat[start : start + 65536]
            d2 = (chunk**2).sum(1, keepdim=True) - 2 * chunk @ self.prototypes.T + p_sq  # (n, M)
            for c in torch.unique(self.prototype_class).tolist():
                cols = self.prototype_class == c
                out[c, start : start + chunk.shape[0]] = d2[:, cols].min(1).values.clamp_min(0)
        return out.reshape(self.num_classes, height, width)  # (K, H * W) -> (K, H, W)

    def predict_proba(self, image: np.ndarray) -> torch.Tensor:
        """Spatially smoothed class probabilities (K, H, W) float of an (H, W, 3) image."""
        return self._smoothed_proba(self.class_distances(image))

    def _smoothed_proba(self, d2: torch.Tensor) -> torch.Tensor:
        probs = torch.softmax(-d2 / self.temperature, dim=0)
        sigma = self.config.labeller_smooth_sigma * _scale(*d2.shape[-2:])
        return gaussian_blur(probs[None], sigma)[0]

    def predict(self, image: np.ndarray) -> np.ndarray:
        """Label map (H, W) int64 of an (H, W, 3) float32 image in [0, 1]."""
        return self.predict_proba(image).argmax(0).numpy().astype(np.int64)


def fit_labeller(
    image: np.ndarray,
    labels: np.ndarray,
    *,
    num_classes: int | None = None,
    seed: int = 0,
    config: EvalConfig = EvalConfig(),
) -> Labeller:
    """Fits the model-independent labeller on the source pair (I, P).

    Per class, config.labeller_samples pixels are sampled and clustered into
    config.labeller_prototypes k-means prototypes of their normalised colour/texture features.

    Args:
        image: (H, W, 3) float32 in [0, 1].
        labels: (H, W) int64 class ids in 0..K-1.
        num_classes: K; default labels.max() + 1.
        seed: seed of pixel sampling and k-means initialisation.
        config: evaluation settings.

    Returns:
        The fitted Labeller.
    """
    src = _check_image(image, "image")
    labels = _check_labels(labels, "labels", tuple(src.shape[-2:]))
    k = num_classes if num_classes is not None else int(labels.max()) + 1
    if labels.max() >= k:
        raise ValueError(f"labels has id {labels.max()} but num_classes is {k}")
    feats = _features(src, config)
    flat = feats.reshape(feats.shape[0], -1).T  # (F, H, W) -> (H * W, F)
    mean = flat.mean(0)
    std = flat.std(0).clamp_min(1e-4)
    n_colour = 3 * len(config.labeller_sigmas)
    weight = torch.ones(flat.shape[1])
    weight[n_colour:] = config.labeller_texture_weight
    scale = std / weight.clamp_min(1e-6)
    norm = (flat - mean) / scale
    gen = torch.Generator().manual_seed(seed)
    flat_labels = torch.from_numpy(labels.reshape(-1))
    prototypes, owners, own_d2 = [], [], []
    for c in range(k):
        idx = torch.nonzero(flat_labels == c).squeeze(1)
        if idx.numel() == 0:
            continue
        if idx.numel() > config.labeller_samples:
            idx = idx[torch.randperm(idx.numel(), generator=gen)[: config.labeller_samples]]
        points = norm[idx]
        centres = _kmeans(points, config.labeller_prototypes, config.labeller_kmeans_iters, gen)
        own_d2.append(torch.cdist(points, centres).min(1).values ** 2)
        prototypes.append(centres)
        owners.append(torch.full((centres.shape[0],), c, dtype=torch.long))
    temperature = float(torch.cat(own_d2).median().clamp_min(1e-3))
    labeller = Labeller(
        prototypes=torch.cat(prototypes),
        prototype_class=torch.cat(owners),
        feature_mean=mean,
        feature_scale=scale,
        temperature=temperature,
        num_classes=k,
        config=config,
    )
    proba = labeller._smoothed_proba(labeller._distances(norm, *labels.shape))
    accuracy = float((proba.argmax(0).numpy() == labels).mean())
    return dataclasses.replace(labeller, source_accuracy=accuracy)


def pixel_accuracy(
    predicted: np.ndarray, target: np.ndarray, *, mask: np.ndarray | None = None
) -> float | None:
    """Fraction of pixels where predicted == target (within mask); None if the mask is empty.

    Args:
        predicted: (H, W) int64.
        target: (H, W) int64.
        mask: optional (H, W) bool region.
    """
    predicted, target = np.asarray(predicted), np.asarray(target)
    if predicted.shape != target.shape:
        raise ValueError(f"predicted {predicted.shape} and target {target.shape} differ in shape")
    hit = predicted == target
    if mask is not None:
        hit = hit[np.asarray(mask, dtype=bool)]
    return float(hit.mean()) if hit.size else None


def mean_iou(
    predicted: np.ndarray,
    target: np.ndarray,
    *,
    num_classes: int,
    mask: np.ndarray | None = None,
) -> float | None:
    """Mean intersection-over-union over the classes present in target or prediction.

    Args:
        predicted: (H, W) int64 ids in 0..K-1.
        target: (H, W) int64 ids in 0..K-1.
        num_classes: K.
        mask: optional (H, W) bool region; only its pixels count.

    Returns:
        mIoU in [0, 1], or None when the mask is empty.
    """
    predicted, target = np.asarray(predicted), np.asarray(target)
    if predicted.shape != target.shape:
        raise ValueError(f"predicted {predicted.shape} and target {target.shape} differ in shape")
    if mask is not None:
        keep = np.asarray(mask, dtype=bool)
        predicted, target = predicted[keep], target[keep]
    if predicted.size == 0:
        return None
    p, t = predicted.reshape(-1), target.reshape(-1)
    confusion = np.bincount(t * num_classes + p, minlength=num_classes**2)
    confusion = confusion.reshape(num_classes, num_classes)  # (true, predicted)
    inter = np.diag(confusion).astype(np.float64)
    union = confusion.sum(0) + confusion.sum(1) - inter
    present = union > 0
    return float((inter[present] / union[present]).mean())


def semantic_alignment(
    predicted: np.ndarray,
    target: np.ndarray,
    *,
    num_classes: int,
    edited: np.ndarray | None = None,
) -> dict[str, float | None]:
    """Pixel accuracy and mIoU of a labeller's reading of the output against the target.

    Args:
        predicted: (H2, W2) int64, the labeller's label map of the output.
        target: (H2, W2) int64, the requested layout P2.
        num_classes: K.
        edited: optional (H2, W2) bool, pixels whose target label differs from the source label.

    Returns:
        {"label_accuracy", "miou", "label_accuracy_edited", "miou_edited"}; the edited ones are
        None when `edited` is None or empty.
    """
    has_edit = edited is not None and bool(np.asarray(edited).any())
    return {
        "label_accuracy": pixel_accuracy(predicted, target),
        "miou": mean_iou(predicted, target, num_classes=num_classes),
        "label_accuracy_edited": pixel_accuracy(predicted, target, mask=edited)
        if has_edit
        else None,
        "miou_edited": mean_iou(predicted, target, num_classes=num_classes, mask=edited)
        if has_edit
        else None,
    }


# --------------------------------------------------------------------------------------------
# Everything at once
# --------------------------------------------------------------------------------------------


def evaluate(
    image: np.ndarray,
    labels: np.ndarray,
    target: np.ndarray,
    output: np.ndarray,
    *,
    num_classes: int | None = None,
    reference: np.ndarray | None = None,
    seed: int = 0,
    config: EvalConfig = EvalConfig(),
) -> dict:
    """All metrics of one output, as a JSON-serialisable dict.

    Args:
        image: (H, W, 3) float32 in [0, 1], the source image I.
        labels: (H, W) int64, the source label map P.
        target: (H2, W2) int64, the target label map P2.
        output: (H2, W2, 3) float32 in [0, 1], the synthesised image O.
        num_classes: K; default max id + 1 over P and P2.
        reference: optional (H2, W2, 3) float32 in [0, 1] ground truth for PSNR/SSIM.
        seed: seed of every random choice (labeller fit, patch sampling, projections).
        config: evaluation settings.

    Returns:
        Dict with the keys of RESULT_KEYS plus "labeller_source_accuracy" (the labeller's pixel
        accuracy on the source itself: the ceiling of label_accuracy), "patch_swd_class_mean"
        (mean of the non-null per-class SWDs), "coherence_semantic" (class-aware coherence, see
        `coherence`) and "edited_fraction". Values are floats or None
        (not computable: no reference, no edited region, target size differs from the source);
        patch_swd_per_class maps str(class id) to a float or None.
    """
    start = time.perf_counter()
    with _torch_threads(config.num_threads):
        result = _evaluate(image, labels, target, output, num_classes, reference, seed, config)
    result["seconds"] = time.perf_counter() - start
    logger.debug("evaluate: %s", result)
    return {key: result[key] for key in (*RESULT_KEYS, *sorted(set(result) - set(RESULT_KEYS)))}


def _evaluate(
    image: np.ndarray,
    labels: np.ndarray,
    target: np.ndarray,
    output: np.ndarray,
    num_classes: int | None,
    reference: np.ndarray | None,
    seed: int,
    config: EvalConfig,
) -> dict:
    src_t = _check_image(image, "image")
    out_t = _check_image(output, "output")
    labels = _check_labels(labels, "labels", tuple(src_t.shape[-2:]))
    target = _check_labels(target, "target", tuple(out_t.shape[-2:]))
    k = int(max(labels.max(), target.max())) + 1
    if num_classes is not None:
        if num_classes < k:
            raise ValueError(f"label maps use id {k - 1} but num_classes is {num_classes}")
        k = num_classes
    edited = target != labels if target.shape == labels.shape else None

    labeller = fit_labeller(image, labels, num_classes=k, seed=seed, config=config)
    result: dict = {"labeller_source_accuracy": labeller.source_accuracy}
    result.update(
        semantic_alignment(labeller.predict(output), target, num_classes=k, edited=edited)
    )

    levels = max(config.pyramid_levels, config.coherence_levels)
    out_gauss, src_gauss = gaussian_pyramid(out_t, levels), gaussian_pyramid(src_t, levels)
    out_lap = _laplacian_from_gaussian(out_gauss[: config.pyramid_levels])
    src_lap = _laplacian_from_gaussian(src_gauss[: config.pyramid_levels])
    swd_levels = _swd_levels(out_lap, src_lap, None, None, seed=seed, config=config, label=None)
    result["patch_swd"] = float(np.mean(swd_levels)) if swd_levels else None
    per_class = _swd_per_class(out_lap, src_lap, target, labels, k, seed=seed, config=config)
    result["patch_swd_per_class"] = {str(c): v for c, v in per_class.items()}
    known = [v for v in per_class.values() if v is not None]
    result["patch_swd_class_mean"] = float(np.mean(known)) if known else None

    out_gauss = out_gauss[: config.coherence_levels]
    src_gauss = src_gauss[: config.coherence_levels]
    result["coherence"] = _coherence(out_gauss, src_gauss, None, None, seed=seed, config=config)
    result["coherence_semantic"] = _coherence(
        out_gauss,
        src_gauss,
        torch.from_numpy(target),
        torch.from_numpy(labels),
        seed=seed,
        config=config,
    )

    result.update(psnr=None, ssim=None, psnr_edited=None, ssim_edited=None)
    if reference is not None:
        _check_image(reference, "reference")
        if np.asarray(reference).shape != np.asarray(output).shape:
            raise ValueError(
                f"reference has shape {np.asarray(reference).shape} but output has "
                f"{np.asarray(output).shape}; they must match"
            )
        result["psnr"] = psnr(output, reference, max_db=config.psnr_max_db)
        result["ssim"] = ssim(output, reference, config=config)
        if edited is not None and edited.any():
            result["psnr_edited"] = psnr(output, reference, mask=edited, max_db=config.psnr_max_db)
            result["ssim_edited"] = ssim(output, reference, mask=edited, config=config)
    result["edited_fraction"] = float(edited.mean()) if edited is not None else None
    return result
