"""The sketch-style edge map of a photo: object outlines as thin lines, not every texture edge.

The photo is smoothed edge-preserving (two bilateral passes, then a Gaussian whose width shrinks
as `detail` grows), and OpenCV's Canny detector runs on its Lab colours with thresholds taken
from the photo's own gradient distribution (the strongest few percent start a line), so the
result does not depend on the photo's contrast. Fragments shorter than a few pixels (texture,
noise) are dropped. Sizes are relative to a 256 px photo, so a larger photo gives the same
outlines, thinner relative to its size.
"""

from __future__ import annotations

import cv2
import numpy as np

from semia.apps import DEFAULT_DETAIL
from semia.errors import InputError
from semia.io.arrays import as_image, to_uint8


def _check_detail(detail: float) -> float:
    if not 0.0 <= float(detail) <= 1.0:
        raise InputError(f"edge detail must lie in [0, 1], got {detail}")
    return float(detail)


def edges(image: np.ndarray, detail: float = DEFAULT_DETAIL) -> np.ndarray:
    """Sketch-style edge map of a photo.

    Args:
        image: (H, W, 3) uint8 or float32 in [0, 1].
        detail: 0 (only the main outlines) .. 1 (also finer structure).

    Returns:
        (H, W) float32 in {0, 1}: 1 on the one-pixel-wide lines.
    """
    detail = _check_detail(detail)
    rgb = to_uint8(as_image(image, min_size=8))
    h, w = rgb.shape[:2]
    scale = max(h, w) / 256.0
    smooth = rgb
    for _ in range(2):
        smooth = cv2.bilateralFilter(smooth, d=0, sigmaColor=30, sigmaSpace=2.0 * scale)
    sigma = max(1.0, (0.8 + 1.6 * (1.0 - detail)) * scale)  # >= 1 px: pixel noise is no line
    lab = cv2.cvtColor(smooth, cv2.COLOR_RGB2LAB)
    lab = cv2.GaussianBlur(lab, (0, 0), sigma)
    gx = cv2.Sobel(lab, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(lab, cv2.CV_32F, 0, 1, ksize=3)
    mag = np.sqrt(gx**2 + gy**2).max(2)  # (H, W) the strongest channel, as Canny does
    strong = 0.02 + 0.10 * detail  # share of pixels strong enough to start a line
    high = max(float(np.quantile(mag, 1.0 - strong)), 8.0)
    lines = cv2.Canny(lab, 0.4 * high, high, L2gradient=True) > 0  # (H, W) bool
    min_len = max(3, round((12.0 - 8.0 * detail) * scale))
    _, comp, stats, _ = cv2.connectedComponentsWithStats(lines.astype(np.uint8), 8)
    keep = stats[:, cv2.CC_STAT_AREA] >= min_len
    keep[0] = False  # background
    return keep[comp].astype(np.float32)


def edge_guide(lines: np.ndarray, sigma: float) -> np.ndarray:
    """A line map blurred into a smooth guide: (H, W) float32, about 1 on a thin line's centre.

    Args:
        lines: (H, W) float in [0, 1], 1 on one-pixel-wide lines.
        sigma: Gaussian blur in pixels (<= 0.5: the lines themselves).
    """
    lines = np.asarray(lines, dtype=np.float32)
    if sigma <= 0.5:
        return lines
    blurred = cv2.GaussianBlur(lines, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)
    peak = float(np.sqrt(2.0 * np.pi) * sigma)  # a line's peak -> 1
    return np.minimum(blurred * peak, 1.0).astype(np.float32)
