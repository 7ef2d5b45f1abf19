"""The training-free entry point, `semia.analogy`, with input validation at the boundary."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from semia.config import PatchConfig
from semia.io import LabelMap


def as_image(image: np.ndarray, name: str = "image") -> np.ndarray:
    """Validate a photo array and return it as (H, W, 3) float32 in [0, 1].

    Accepts uint8 (0..255) or float arrays (H, W, 3), and (H, W) grayscale.
    """
    image = np.asarray(image)
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] != 3 or image.size == 0:
        raise ValueError(f"{name} must be an (H, W, 3) array, got shape {image.shape}")
    if image.dtype == np.uint8:
        return image.astype(np.float32) / 255.0
    if not np.issubdtype(image.dtype, np.floating):
        raise ValueError(f"{name} must be uint8 or float in [0, 1], got {image.dtype}")
    image = image.astype(np.float32)
    if not np.isfinite(image).all() or image.min() < -1e-3 or image.max() > 1.0 + 1e-3:
        raise ValueError(f"{name} values must be finite and in [0, 1]")
    return np.clip(image, 0.0, 1.0)


def as_ids(labels: LabelMap | np.ndarray, name: str = "labels") -> np.ndarray:
    """Validate a label map (LabelMap or (H, W) integer array) and return (H, W) int64 ids."""
    ids = labels.ids if isinstance(labels, LabelMap) else np.asarray(labels)
    if ids.ndim != 2 or ids.size == 0:
        raise ValueError(f"{name} must be an (H, W) array of class ids, got shape {ids.shape}")
    if not np.issubdtype(ids.dtype, np.integer):
        raise ValueError(f"{name} must hold integer class ids, got {ids.dtype}")
    if ids.min() < 0:
        raise ValueError(f"{name} holds negative ids; ids must be 0..K-1")
    return ids.astype(np.int64)


def analogy(
    image: np.ndarray,
    labels: LabelMap | np.ndarray,
    target: LabelMap | np.ndarray,
    *,
    seed: int = 0,
    config: PatchConfig | None = None,
    device: str | torch.device = "cpu",
    progress: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """Training-free semantic image analogy by guided patch synthesis.

    Args:
        image: source photo, (H, W, 3) uint8 or float32 in [0, 1].
        labels: the photo's label map: a `LabelMap` or (H, W) integer ids.
        target: the wanted layout, (H2, W2) ids in the same id space (may differ in size).
        seed: random seed; different seeds give different plausible results.
        config: synthesis settings (`PatchConfig`); None for the defaults.
        device: torch device to compute on.
        progress: optional callback(done, total) over the synthesis steps.

    Returns:
        (H2, W2, 3) float32 image in [0, 1] with the appearance of `image` and the layout of
        `target`.
    """
    from semia.patch import synthesize

    image = as_image(image)
    src = as_ids(labels, "labels")
    tgt = as_ids(target, "target")
    if image.shape[:2] != src.shape:
        raise ValueError(
            f"image is {image.shape[1]}x{image.shape[0]} but labels are "
            f"{src.shape[1]}x{src.shape[0]}; they must have the same size"
        )
    num_classes = labels.num_classes if isinstance(labels, LabelMap) else None
    return synthesize(
        image,
        src,
        tgt,
        num_classes=num_classes,
        seed=seed,
        config=config or PatchConfig(),
        device=device,
        progress=progress,
    )
