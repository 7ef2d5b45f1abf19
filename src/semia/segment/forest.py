"""Per-pixel appearance classifier: a random forest on multi-scale colour and texture features,
trained on the stroke pixels of the one image (no weights, nothing downloaded)."""

from __future__ import annotations

import numpy as np
from skimage.color import rgb2lab
from skimage.feature import multiscale_basic_features
from sklearn.ensemble import RandomForestClassifier

_LAB_SCALE = np.array([100.0, 128.0, 128.0], np.float32)  # CIELAB to roughly [-1, 1]
_MAX_TRAINING = 20_000  # stroke pixels used to train (a random subset beyond this)


def pixel_features(image: np.ndarray, sigma_max: float) -> np.ndarray:
    """Multi-scale intensity, edge and texture features of each CIELAB channel.

    Args:
        image: (H, W, 3) float32 RGB in [0, 1].
        sigma_max: largest Gaussian scale in pixels (scales 1, 2, 4, ... up to it).

    Returns:
        (H, W, F) float32 features.
    """
    lab = rgb2lab(image).astype(np.float32) / _LAB_SCALE
    features = multiscale_basic_features(
        lab, channel_axis=-1, sigma_min=1.0, sigma_max=sigma_max, workers=1
    )
    return features.astype(np.float32)


def forest_probabilities(
    features: np.ndarray,
    strokes: np.ndarray,
    num_classes: int,
    *,
    trees: int,
    depth: int,
    seed: int,
) -> np.ndarray:
    """Train a random forest on the stroke pixels and predict every pixel.

    Args:
        features: (H, W, F) float32 pixel features.
        strokes: (H, W) int64 stroke class in 0..K-1, -1 off the strokes.
        num_classes: K.
        trees, depth: forest size.
        seed: random seed of the forest.

    Returns:
        (H, W, K) float32 class probabilities (0 for a class without stroke pixels).
    """
    height, width, num_features = features.shape
    rows = np.flatnonzero(strokes.ravel() >= 0)
    rng = np.random.default_rng(seed)
    if len(rows) > _MAX_TRAINING:
        rows = np.sort(rng.choice(rows, _MAX_TRAINING, replace=False))
    flat = features.reshape(-1, num_features)  # (H*W, F)
    forest = RandomForestClassifier(
        n_estimators=trees, max_depth=depth, n_jobs=1, random_state=seed, class_weight="balanced"
    )
    forest.fit(flat[rows], strokes.ravel()[rows])
    probabilities = np.zeros((height * width, num_classes), np.float32)
    probabilities[:, forest.classes_] = forest.predict_proba(flat)
    return probabilities.reshape(height, width, num_classes)
