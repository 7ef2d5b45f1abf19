"""Synthetic scenes with known truth for the segmentation tests."""

from __future__ import annotations

import numpy as np
import pytest

from semia.io import LabelMap

PALETTE = np.array([[0, 200, 255], [0, 180, 0], [255, 150, 0]], np.uint8)


def _textured_scene(height: int = 96, width: int = 128, seed: int = 0):
    """Three regions: a flat sky, a grainy field, a striped disc.

    Returns (image (H, W, 3) float32 in [0, 1], truth LabelMap with `PALETTE`).
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    ids = np.zeros((height, width), np.int64)
    ids[yy > 0.55 * height + 4 * np.sin(xx / 9)] = 1  # a wavy horizon
    ids[(yy - 0.3 * height) ** 2 + (xx - 0.7 * width) ** 2 < (0.2 * height) ** 2] = 2
    image = np.empty((height, width, 3), np.float32)
    image[:] = [0.55, 0.7, 0.85]
    grain = rng.normal(0, 0.12, (height, width, 1))
    image[ids == 1] = (np.array([0.5, 0.6, 0.45]) + grain)[ids == 1]
    stripes = (np.sin(xx / 1.5) > 0)[..., None] * np.array([0.5, 0.3, 0.0])
    image[ids == 2] = (np.array([0.4, 0.35, 0.2]) + stripes)[ids == 2]
    image += rng.normal(0, 0.02, image.shape)
    return np.clip(image, 0, 1).astype(np.float32), LabelMap(ids=ids, palette=PALETTE)


@pytest.fixture
def textured_scene():
    """The scene maker: textured_scene(height=96, width=128, seed=0) -> (image, truth)."""
    return _textured_scene
