"""The training-free entry point, `semia.analogy`, with input validation at the boundary."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from semia.config import PatchConfig
from semia.io import LabelMap, as_ids, as_image, num_classes_of
from semia.patch.synthesis import synthesize


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
    image = as_image(image)
    src = as_ids(labels, "labels", shape=image.shape[:2])
    num_classes = num_classes_of(labels)
    tgt = as_ids(target, "target", num_classes=num_classes)
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
