"""Patch-reuse statistics of a nearest-neighbour field: does one source patch flood a region?

A faithful synthesis uses each source pixel about as often as its class needs: the target
pixels of class c divided by the source pixels of class c (1 for an unchanged layout). A region
filled by repeating one bright patch (a washed-out or striped band) shows as many target pixels,
side by side, copying a few source pixels many times over.
"""

from __future__ import annotations

import math

import numpy as np
import torch


def _largest_component(mask: torch.Tensor) -> int:
    """Pixel count of the largest 4-connected component of an (H, W) bool mask."""
    if not mask.any():
        return 0
    h, w = mask.shape
    big = h * w
    label = torch.where(mask, torch.arange(big).reshape(h, w), big)  # (H, W), big = background
    for _ in range(big):
        padded = torch.nn.functional.pad(label[None].float(), (1, 1, 1, 1), value=big)[0].long()
        neighbours = torch.stack(
            [padded[:-2, 1:-1], padded[2:, 1:-1], padded[1:-1, :-2], padded[1:-1, 2:], label]
        )  # (5, H, W)
        new = torch.where(mask, neighbours.min(0).values, big)
        flat = new.reshape(-1)
        inside = flat < big
        flat[inside] = flat[flat[inside]]  # pointer jumping: adopt the label's own label
        new = flat.reshape(h, w)
        if torch.equal(new, label):
            break
        label = new
    return int(torch.bincount(label[mask]).max())


def patch_reuse(
    field: np.ndarray, target: np.ndarray, labels: np.ndarray, factor: float = 4.0
) -> dict[str, float]:
    """How evenly a synthesis used its source pixels.

    Args:
        field: (H2, W2, 2) int, the source (row, column) each target pixel was copied from
            (`synthesize_with_field`).
        target: (H2, W2) int target class ids.
        labels: (H, W) int source class ids.
        factor: a source pixel counts as over-used when used more than `factor` times as often
            as its class needs on average.

    Returns:
        {"repeat_area": % of the target pixels in the largest 4-connected region copied from
        over-used source pixels (0 for a faithful copy; a flood from one patch makes it large),
        "max_use": the most any source pixel is used, in multiples of its class's need,
        "use_entropy": entropy of source-pixel use per class, normalised by its maximum
        (1: every usable source pixel equally often), averaged over target pixels}.
    """
    field = np.asarray(field)
    target = np.asarray(target).astype(np.int64)
    labels = np.asarray(labels).astype(np.int64)
    if field.shape != (*target.shape, 2):
        raise ValueError(f"field has shape {field.shape}, expected {(*target.shape, 2)}")
    hs, ws = labels.shape
    src = (field[..., 0] * ws + field[..., 1]).reshape(-1)  # (N,) flat source pixel
    if src.min() < 0 or src.max() >= hs * ws:
        raise ValueError("field points outside the source image")
    k = int(max(labels.max(), target.max())) + 1
    count = np.bincount(src, minlength=hs * ws)  # (Hs * Ws,)
    need = np.bincount(target.reshape(-1), minlength=k) / np.maximum(
        np.bincount(labels.reshape(-1), minlength=k), 1
    )  # (K,) uses per source pixel each class needs
    ratio = count[src] / np.maximum(need[target.reshape(-1)], 1.0)  # (N,)
    over = torch.from_numpy((ratio > factor).reshape(target.shape))
    entropy, weight = 0.0, 0
    for c in np.unique(target).tolist():
        used = np.bincount(src[target.reshape(-1) == c], minlength=hs * ws)
        used = used[used > 0]
        n = int(used.sum())
        most = math.log(min(n, int((labels == c).sum()) or n))
        if most <= 0:
            continue
        p = used / n
        entropy += n * float(-(p * np.log(p)).sum() / most)
        weight += n
    return {
        "repeat_area": 100.0 * _largest_component(over) / target.size,
        "max_use": float(ratio.max()),
        "use_entropy": entropy / weight if weight else 1.0,
    }
