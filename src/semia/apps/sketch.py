"""Reading a user's sketch (dark lines on a light background) into an edge map.

Sketches come from pencil scans, tablets or the edges of another picture: any line width,
anti-aliased, JPEG-noisy, grey or coloured paper, transparent backgrounds (composited over
white), or light lines on a dark background (inverted automatically). The sketch must have the
photo's aspect ratio; it is rescaled to the wanted size, its lines found by Otsu's threshold on
the darkness and thinned to one pixel, like `semia.edges` of a photo.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from skimage.filters import threshold_otsu
from skimage.morphology import skeletonize

from semia.errors import InputError
from semia.io.images import read_image

ASPECT_TOLERANCE = 0.03  # relative aspect-ratio difference accepted between sketch and photo
_MIN_CONTRAST = 0.15  # lines must be this much darker than the paper (of 1)


def check_aspect(
    shape: tuple[int, int], size: tuple[int, int], what: str, against: str = "the photo"
) -> None:
    """InputError unless an (H, W) `shape` has the aspect ratio of `size` (H, W), that of
    `against` (named in the message)."""
    ratio = (shape[1] / shape[0]) / (size[1] / size[0])
    if abs(ratio - 1.0) > ASPECT_TOLERANCE:
        raise InputError(
            f"{what} is {shape[1]}x{shape[0]} px but {against} is {size[1]}x{size[0]}: draw it "
            "with that aspect ratio (any size; it is rescaled)"
        )


def sketch_edges(
    sketch: np.ndarray, size: tuple[int, int], what: str = "sketch", against: str = "the photo"
) -> np.ndarray:
    """Edge map of a sketch image, at the wanted size.

    Args:
        sketch: (h, w, 3) or (h, w) float in [0, 1] (or uint8): dark lines on light paper (or
            light on dark); any size of the photo's aspect ratio.
        size: (H, W) of the edge map to return.
        what: name for error messages.
        against: what has the wanted size (the photo, or a target map), for error messages.

    Returns:
        (H, W) float32 in {0, 1}, 1 on the one-pixel-wide lines.

    Raises:
        InputError: another aspect ratio, or no lines (a blank sketch).
    """
    a = np.asarray(sketch)
    if a.dtype == np.uint8:
        a = a.astype(np.float32) / 255.0
    gray = a.astype(np.float32).mean(2) if a.ndim == 3 else a.astype(np.float32)
    if gray.ndim != 2 or min(gray.shape) < 2:
        raise InputError(f"{what} must be an image, got an array of shape {np.shape(sketch)}")
    check_aspect(gray.shape, size, what, against)
    dark = 1.0 - gray
    if np.median(dark) > 0.5:  # light lines on a dark background
        dark = 1.0 - dark
    # darkness above the paper: what lies under the paper level is noise or paper grain
    dark = np.clip(dark - np.median(dark), 0.0, 1.0)
    if dark.max() < _MIN_CONTRAST:
        raise InputError(f"{what} is blank: draw dark lines on a light background")
    # area-average to the wanted size: a thin line keeps its share of darkness
    dark = cv2.resize(dark, (size[1], size[0]), interpolation=cv2.INTER_AREA)
    level = max(float(threshold_otsu(dark)), 0.5 * _MIN_CONTRAST)
    lines = dark > min(level, 0.5 * float(dark.max()))
    lines = skeletonize(lines)
    if lines.sum() < 2:
        raise InputError(f"{what} is blank: draw dark lines on a light background")
    return lines.astype(np.float32)


def read_sketch(path: str | Path, size: tuple[int, int]) -> np.ndarray:
    """Read a sketch file into an (H, W) float32 {0, 1} edge map of the given size."""
    return sketch_edges(read_image(path), size, f"sketch {path}")
