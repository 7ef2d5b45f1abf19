"""Edge-aware label propagation: a random walker with a per-pixel prior, and a guided filter.

The random walker (Grady 2006) gives every pixel, for each class, the probability that a walk
from it reaches that class's strokes first, where steps across image edges are unlikely. With a
prior (Grady 2005, "multilabel random walker image segmentation using prior models") each pixel
is also pulled weakly toward a classifier's belief, so regions no stroke touches still get the
class that their appearance says. Per class k it solves the sparse linear system

    (L + diag(c)) x_k = c * p_k

where L is the graph Laplacian of the 4-connected pixel grid with edge weights
exp(-beta * |Lab_i - Lab_j|^2 / mean), c is gamma * (classifier confidence) off the strokes
and `_SEED_WEIGHT` on them, and p_k is the classifier's probability (one-hot on strokes).
All classes share the matrix, so one sparse LU factorisation serves them all.
"""

from __future__ import annotations

import cv2
import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

_SEED_WEIGHT = 10.0  # pull of a stroke pixel toward its class (edge weights are <= 1)
_MIN_EDGE = 1e-4  # every edge conducts a little, so no region is cut off from all strokes


def edge_weights(lab: np.ndarray, beta: float) -> tuple[np.ndarray, np.ndarray]:
    """Affinities of the 4-connected grid.

    Args:
        lab: (H, W, 3) float image (CIELAB).
        beta: edge sensitivity; the squared colour step is divided by its mean over the image.

    Returns:
        vertical: (H-1, W) weights between (y, x) and (y+1, x); horizontal: (H, W-1).
    """
    dy = ((lab[1:] - lab[:-1]) ** 2).sum(2)
    dx = ((lab[:, 1:] - lab[:, :-1]) ** 2).sum(2)
    mean = max(float(dy.sum() + dx.sum()) / max(dy.size + dx.size, 1), 1e-12)
    vertical = np.exp(-beta * dy / mean) + _MIN_EDGE
    horizontal = np.exp(-beta * dx / mean) + _MIN_EDGE
    return vertical, horizontal


def random_walk(
    lab: np.ndarray,
    prior: np.ndarray,
    strokes: np.ndarray,
    *,
    beta: float,
    gamma: float,
) -> np.ndarray:
    """Class probabilities that follow image edges, from strokes and a prior.

    Args:
        lab: (H, W, 3) float CIELAB image.
        prior: (H, W, K) float class probabilities from a classifier (rows sum to 1).
        strokes: (H, W) int64 stroke class in 0..K-1, -1 off the strokes.
        beta: edge sensitivity (larger: walks stop more at colour edges).
        gamma: weight of the prior relative to the edges (0: a plain random walker).

    Returns:
        (H, W, K) float32 scores; the argmax over K is the label.
    """
    height, width, num_classes = prior.shape
    vertical, horizontal = edge_weights(lab, beta)
    drawn = strokes >= 0
    weight = gamma * prior.max(axis=2)  # (H, W): a confident prior pulls harder
    weight[drawn] = _SEED_WEIGHT
    target = prior.astype(np.float64).reshape(-1, num_classes).copy()  # (H*W, K)
    target[drawn.ravel()] = np.eye(num_classes)[strokes[drawn]]

    index = np.arange(height * width).reshape(height, width)
    rows = np.concatenate([index[1:].ravel(), index[:, 1:].ravel()])
    cols = np.concatenate([index[:-1].ravel(), index[:, :-1].ravel()])
    values = np.concatenate([vertical.ravel(), horizontal.ravel()]).astype(np.float64)
    adjacency = sp.coo_matrix((values, (rows, cols)), shape=(height * width,) * 2)
    adjacency = adjacency + adjacency.T
    degree = np.asarray(adjacency.sum(axis=1)).ravel()
    system = (sp.diags(degree + weight.ravel().astype(np.float64)) - adjacency).tocsc()
    factor = spla.splu(
        system,
        permc_spec="MMD_AT_PLUS_A",  # symmetric ordering: far less fill-in on a grid
        diag_pivot_thresh=0.0,  # symmetric positive definite: no pivoting needed
        options={"SymmetricMode": True},
    )
    scores = factor.solve(weight.ravel()[:, None].astype(np.float64) * target)  # (H*W, K)
    return scores.reshape(height, width, num_classes).astype(np.float32)


def guided_filter(guide: np.ndarray, scores: np.ndarray, radius: int, eps: float) -> np.ndarray:
    """Colour guided filter (He et al. 2010): smooth `scores` while following `guide`'s edges.

    Args:
        guide: (H, W, 3) float image in [0, 1].
        scores: (H, W, K) float maps to filter.
        radius: box radius in pixels.
        eps: regularisation; smaller follows weaker edges.

    Returns:
        (H, W, K) float32 filtered maps.
    """
    size = (2 * radius + 1, 2 * radius + 1)

    def box(x: np.ndarray) -> np.ndarray:
        return cv2.boxFilter(x, -1, size, borderType=cv2.BORDER_REFLECT)

    guide = guide.astype(np.float32)
    height, width, _ = guide.shape
    mean_i = box(guide)  # (H, W, 3)
    cov = np.empty((height, width, 3, 3), np.float32)
    for i in range(3):
        for j in range(i, 3):
            cov[..., i, j] = cov[..., j, i] = (
                box(guide[..., i] * guide[..., j]) - mean_i[..., i] * mean_i[..., j]
            )
    inverse = np.linalg.inv(cov + eps * np.eye(3, dtype=np.float32))  # (H, W, 3, 3)
    out = np.empty(scores.shape, np.float32)
    for k in range(scores.shape[2]):
        p = np.ascontiguousarray(scores[..., k], dtype=np.float32)
        mean_p = box(p)
        cov_ip = box(guide * p[..., None]) - mean_i * mean_p[..., None]  # (H, W, 3)
        a = np.einsum("hwij,hwj->hwi", inverse, cov_ip)
        b = mean_p - (a * mean_i).sum(2)
        out[..., k] = (box(a) * guide).sum(2) + box(b)
    return out
