"""What the generator is conditioned on: the one-hot label map, an edge map, or both stacked.

`TrainConfig.condition` picks one of CONDITIONS. The edge channel is the photo's sketch-style
edge map (`semia.edges`) blurred into a smooth guide (`semia.apps.edges.edge_guide`); it rides
along with the image through crops, warps and pastes as a fourth image channel, so a warped
photo keeps matching outlines.
"""

from __future__ import annotations

import numpy as np
import torch

from semia.gan.tensors import one_hot

CONDITIONS = ("labels", "edges", "labels+edges")
EDGE_SIGMA = 0.006  # blur of the edge channel / longest side (1.5 px at 256 px)


def condition_channels(condition: str, num_classes: int) -> int:
    """Input channels of the generator's label encoder for this condition."""
    return {"labels": num_classes, "edges": 1, "labels+edges": num_classes + 1}[condition]


def label_classes(condition: str, num_classes: int) -> int:
    """How many of the condition's first channels are the one-hot label map."""
    return 0 if condition == "edges" else num_classes


def uses_labels(condition: str) -> bool:
    """Whether label maps are part of the condition (the segmenter only applies then)."""
    return condition != "edges"


def uses_edges(condition: str) -> bool:
    return condition != "labels"


def edge_channel(lines: np.ndarray) -> np.ndarray:
    """(H, W) {0, 1} line map -> (H, W) float32 edge channel in [0, 1]."""
    from semia.apps.edges import edge_guide

    return edge_guide(lines, EDGE_SIGMA * max(lines.shape))


def photo_edges(image: np.ndarray) -> np.ndarray:
    """The edge channel of a photo (H, W, 3) float in [0, 1]: (H, W) float32."""
    from semia.apps.edges import edges

    return edge_channel(edges(image))


def make_condition(
    condition: str, ids: torch.Tensor, edges: torch.Tensor | None, num_classes: int
) -> torch.Tensor:
    """The generator's condition tensor.

    Args:
        condition: one of CONDITIONS.
        ids: (B, H, W) long class ids (all zero for "edges").
        edges: (B, 1, H, W) float edge channel, or None for "labels".
        num_classes: K.

    Returns:
        (B, C, H, W) float, C = condition_channels(condition, K).
    """
    if condition == "labels":
        return one_hot(ids, num_classes)
    if edges is None:
        raise ValueError(f"condition {condition!r} needs an edge map")
    if condition == "edges":
        return edges
    return torch.cat([one_hot(ids, num_classes), edges], 1)  # (B, K + 1, H, W)
