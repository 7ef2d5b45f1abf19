"""The array conventions of semia, checked in one place.

Images are (H, W, 3) float32 in [0, 1] (uint8 0..255 accepted); label maps are a `LabelMap` or an
(H, W) integer array of class ids 0..K-1. Every public function validates its inputs with
`as_image` and `as_ids`; both raise `InputError` saying what to fix.
"""

from __future__ import annotations

import numpy as np

from semia.errors import InputError

_MAX_IMAGE_VALUE = 1.0 + 1e-3  # float images may overshoot [0, 1] by rounding, no more


def as_image(image: np.ndarray, name: str = "image", min_size: int = 1) -> np.ndarray:
    """Validate a photo array and return it as (H, W, 3) float32 in [0, 1].

    Args:
        image: (H, W, 3) or (H, W) grayscale; uint8 (0..255) or float in [0, 1].
        name: what to call it in error messages.
        min_size: the smallest height and width accepted.

    Raises:
        InputError: wrong shape or dtype, values outside [0, 1], NaN or infinity.
    """
    image = np.asarray(image)
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] != 3 or image.size == 0:
        raise InputError(
            f"{name} must be an (H, W, 3) array, got shape {image.shape}: read photos with "
            "semia.read_image"
        )
    if min(image.shape[:2]) < min_size:
        raise InputError(
            f"{name} is {image.shape[1]}x{image.shape[0]} px; use at least {min_size}x{min_size}"
        )
    if image.dtype == np.uint8:
        return image.astype(np.float32) / 255.0
    if not np.issubdtype(image.dtype, np.floating):
        raise InputError(
            f"{name} must be uint8 (0..255) or float in [0, 1], got dtype {image.dtype}"
        )
    image = image.astype(np.float32)
    if not np.isfinite(image).all():
        raise InputError(f"{name} contains NaN or infinite values")
    if image.min() < -1e-3 or image.max() > _MAX_IMAGE_VALUE:
        raise InputError(
            f"{name} values must lie in [0, 1], got [{image.min():.3g}, {image.max():.3g}]"
            + ("; divide 0..255 values by 255" if image.max() > 1.5 else "")
        )
    return np.clip(image, 0.0, 1.0)


def as_ids(
    labels: object,
    name: str = "labels",
    *,
    num_classes: int | None = None,
    shape: tuple[int, int] | None = None,
    min_size: int = 1,
) -> np.ndarray:
    """Validate a label map and return its (H, W) int64 class ids.

    Args:
        labels: a `LabelMap` or an (H, W) integer array of ids >= 0.
        name: what to call it in error messages.
        num_classes: if given, every id must be below it.
        shape: if given, the (H, W) the map must have (its image's size).
        min_size: the smallest height and width accepted.

    Raises:
        InputError: wrong shape or dtype, negative or out-of-range ids.
    """
    ids = getattr(labels, "ids", labels)  # a LabelMap carries its ids
    ids = np.asarray(ids)
    if ids.ndim != 2 or ids.size == 0:
        raise InputError(
            f"{name} must be an (H, W) array of class ids, got shape {ids.shape}: read colour "
            "label maps with semia.read_label_map / semia.read_target"
        )
    if not np.issubdtype(ids.dtype, np.integer) and ids.dtype != np.bool_:
        raise InputError(f"{name} must hold integer class ids, got dtype {ids.dtype}")
    if min(ids.shape) < min_size:
        raise InputError(
            f"{name} is {ids.shape[1]}x{ids.shape[0]} px; use at least {min_size}x{min_size}"
        )
    if shape is not None and ids.shape != tuple(shape):
        raise InputError(
            f"{name} is {ids.shape[1]}x{ids.shape[0]} px but its image is {shape[1]}x{shape[0]} "
            "px; they must have the same size (resize the label map with nearest-neighbour "
            "sampling)"
        )
    lo, hi = int(ids.min()), int(ids.max())
    if lo < 0:
        raise InputError(f"{name} holds negative ids (min {lo}); ids must be 0..K-1")
    if num_classes is not None and hi >= num_classes:
        raise InputError(
            f"{name} holds ids {lo}..{hi}, but there are only {num_classes} classes "
            f"(ids 0..{num_classes - 1}): read it against the source's palette"
        )
    return ids.astype(np.int64, copy=False)


def num_classes_of(labels: object) -> int | None:
    """The number of classes of a `LabelMap`; None for a bare id array."""
    palette = getattr(labels, "palette", None)
    return None if palette is None else len(palette)


def to_uint8(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) float in [0, 1] -> uint8 (rounded); uint8 passes through unchanged."""
    if image.dtype == np.uint8:
        return image
    return (np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def fit_size(height: int, width: int, max_size: int | None) -> tuple[int, int]:
    """The size after downscaling so that the longest side is at most max_size."""
    if max_size is None or max(height, width) <= max_size:
        return height, width
    scale = max_size / max(height, width)
    return max(1, round(height * scale)), max(1, round(width * scale))


def resize_image(array: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Antialiased bicubic resize of a (H, W, C) float array in [0, 1]."""
    if array.shape[:2] == tuple(size):
        return array
    import torch
    import torch.nn.functional as F

    t = torch.from_numpy(np.ascontiguousarray(array)).permute(2, 0, 1)[None]  # (1, C, H, W)
    t = F.interpolate(t, size=size, mode="bicubic", antialias=True, align_corners=False)
    return t[0].permute(1, 2, 0).clamp_(0, 1).numpy()  # (C, H, W) -> (H, W, C)


def resize_nearest(array: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of a (H, W) or (H, W, C) array (pixel centres, exact values)."""
    height, width = array.shape[:2]
    if (height, width) == tuple(size):
        return array
    rows = np.minimum(((np.arange(size[0]) + 0.5) * height / size[0]).astype(np.int64), height - 1)
    cols = np.minimum(((np.arange(size[1]) + 0.5) * width / size[1]).astype(np.int64), width - 1)
    return array[rows[:, None], cols[None, :]]
