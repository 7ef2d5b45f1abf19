"""Shared fixtures: small synthetic scenes written as real files, and the packaged examples."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
# shared data lives beside the repository: ../shared relative to its root
SHARED_DATA = (REPO / ".." / "shared" / "data").resolve()
SHARED = SHARED_DATA / "semia-examples"
GT_DEV = SHARED_DATA / "gt-dev"
PALETTE = np.array([[0, 253, 255], [0, 249, 0], [255, 147, 0]], dtype=np.uint8)


def scene_ids(height: int = 60, width: int = 80) -> np.ndarray:
    """A 3-class layout: sky (0) on top, a round tree (1), ground (2) at the bottom."""
    yy, xx = np.mgrid[0:height, 0:width]
    ids = np.zeros((height, width), np.int64)
    ids[yy > 0.7 * height] = 2
    ids[(yy - 0.45 * height) ** 2 + (xx - 0.5 * width) ** 2 < (0.22 * height) ** 2] = 1
    return ids


def antialias(ids: np.ndarray, palette: np.ndarray = PALETTE, factor: int = 4) -> np.ndarray:
    """Render ids as colours with anti-aliased edges (box-filtered supersampling)."""
    big = np.kron(ids, np.ones((factor, factor), np.int64))
    # shift the supersampled map by a fraction of a pixel so edges fall inside pixels
    big = np.roll(big, (1, 2), axis=(0, 1))
    colours = palette[big].astype(np.float32)
    h, w = ids.shape
    return colours.reshape(h, factor, w, factor, 3).mean(axis=(1, 3)).round().astype(np.uint8)


@pytest.fixture
def one_thread():
    """Tiny tensors: one intra-op thread is faster, and immune to a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def example_dir() -> Path:
    return Path(str(resources.files("semia") / "examples"))
