"""Input conversion shared by the metrics (validation itself lives in `semia.io.arrays`)."""

from __future__ import annotations

import numpy as np
import torch

from semia.io.arrays import as_ids, as_image


def image_tensor(array: np.ndarray, name: str) -> torch.Tensor:
    """Validate an (H, W, 3) image (float in [0, 1] or uint8, at least 8x8) -> (1, 3, H, W)."""
    image = as_image(array, name, min_size=8)
    return torch.from_numpy(image).permute(2, 0, 1).unsqueeze(0)  # (H, W, 3) -> (1, 3, H, W)


def label_ids(array: np.ndarray, name: str, shape: tuple[int, int] | None = None) -> np.ndarray:
    """Validate an (H, W) label map (of the given size) -> int64 ids."""
    return as_ids(array, name, shape=shape)
