"""The training-free entry point, `semia.analogy`, with input validation at the boundary."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np
import torch

from semia.config import PatchConfig
from semia.errors import InputError, check_seed
from semia.io import LabelMap, as_ids, as_image, num_classes_of
from semia.patch.synthesis import synthesize


def analogy(
    image: np.ndarray,
    labels: LabelMap | np.ndarray | None = None,
    target: LabelMap | np.ndarray | None = None,
    *,
    sketch: np.ndarray | None = None,
    source_sketch: np.ndarray | None = None,
    edge_detail: float | None = None,
    seed: int = 0,
    config: PatchConfig | None = None,
    device: str | torch.device = "cpu",
    progress: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """Training-free semantic image analogy by guided patch synthesis.

    The new layout is given by a target label map, a sketch, or both (labels + edges).

    Args:
        image: source photo, (H, W, 3) uint8 or float32 in [0, 1].
        labels: the photo's label map: a `LabelMap` or (H, W) integer ids; may be None with a
            sketch only (then every pixel is one class).
        target: the wanted layout, (H2, W2) ids in the same id space (may differ in size).
        sketch: the wanted layout as a line drawing: (h, w) or (h, w, 3) image, dark lines on
            a light background (or an edge map, light lines on dark), of the output's aspect
            ratio (the target's, else the photo's); rescaled to the output size.
        source_sketch: the photo's own edge map (H, W) float in [0, 1], 1 on lines; by default
            `semia.edges(image, edge_detail)`.
        edge_detail: detail of the photo's edge map (see `semia.edges`).
        seed: random seed; different seeds give different plausible results.
        config: synthesis settings (`PatchConfig`); None for the defaults.
        device: torch device to compute on.
        progress: optional callback(done, total) over the synthesis steps.

    Returns:
        (H2, W2, 3) float32 image in [0, 1] with the appearance of `image` and the layout of
        `target` and / or `sketch`.
    """
    check_seed(seed)
    image = as_image(image)
    config = config or PatchConfig()
    if sketch is None:
        if labels is None or target is None:
            raise InputError("give a label map and a target layout, or a sketch")
        guides = None
    else:
        if (labels is None) != (target is None):
            raise InputError("with a sketch, give both labels and target, or neither")
        if labels is None:
            labels = np.zeros(image.shape[:2], dtype=np.int64)  # one class: a neutral guide
            target = labels
            # the label "stays" everywhere, yet the lines re-synthesize the whole frame: the
            # plain votes (sharper ones cost 0.2 dB of changed-pixel PSNR on gt-dev sketches)
            config = replace(config, kept_vote_spread=0.0)
        else:
            config = config.for_labels_and_edges()
        size = as_ids(target, "target").shape
        guides = _edge_guides(image, sketch, source_sketch, size, edge_detail, config)
    src = as_ids(labels, "labels", shape=image.shape[:2])
    num_classes = num_classes_of(labels)
    tgt = as_ids(target, "target", num_classes=num_classes)
    return synthesize(
        image,
        src,
        tgt,
        num_classes=num_classes,
        seed=seed,
        config=config,
        device=device,
        progress=progress,
        guides=guides,
    )


def _edge_guides(
    image: np.ndarray,
    sketch: np.ndarray,
    source_sketch: np.ndarray | None,
    size: tuple[int, int],
    detail: float | None,
    config: PatchConfig,
) -> tuple[np.ndarray, np.ndarray]:
    """Blurred line maps of the photo (H, W) and of the sketch at the output size (H2, W2)."""
    from semia.apps import DEFAULT_DETAIL
    from semia.apps.edges import edge_guide, edges
    from semia.apps.sketch import sketch_edges

    if source_sketch is None:
        source = edges(image, DEFAULT_DETAIL if detail is None else detail)
    else:
        source = np.asarray(source_sketch, dtype=np.float32)
        if source.shape != image.shape[:2] or not np.isfinite(source).all():
            raise InputError(
                f"source_sketch must be a finite (H, W) edge map of the photo's size "
                f"{image.shape[:2]}, got shape {source.shape}"
            )
    target = sketch_edges(sketch, size)
    sigma = config.edge_sigma * max(image.shape[:2])
    return edge_guide(source, sigma), edge_guide(target, sigma)
