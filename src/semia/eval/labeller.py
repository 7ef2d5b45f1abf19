"""The labeller: a per-pixel classifier fitted on the source pair alone, and the semantic
alignment it measures (pixel accuracy and mean IoU of its reading of an output against the
target map, overall and on the edited pixels).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch
import torch.nn.functional as F

from semia.config import EvalConfig
from semia.eval.common import image_tensor, label_ids
from semia.eval.patch_stats import image_scale
from semia.ops import gaussian_blur


def _blur_approx(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian blur that runs wide sigmas on a downsampled copy (cheap; for features only)."""
    factor = 2 ** max(0, int(math.log2(max(sigma, 1.0) / 2.0)))
    if factor == 1:
        return gaussian_blur(x, sigma)
    height, width = x.shape[-2:]
    small_size = (max(1, math.ceil(height / factor)), max(1, math.ceil(width / factor)))
    small = F.interpolate(x, size=small_size, mode="area")
    small = gaussian_blur(small, sigma / factor)
    return F.interpolate(small, size=(height, width), mode="bilinear", align_corners=False)


def _features(image: torch.Tensor, config: EvalConfig) -> torch.Tensor:
    """Multi-scale colour and texture features (F, H, W) of a (1, 3, H, W) image.

    Colour: opponent colour (luminance, red-green, yellow-blue) blurred at each scale.
    Texture: local standard deviation of luminance and local mean of |dL/dx|, |dL/dy| per scale.
    """
    r, g, b = image[:, 0:1], image[:, 1:2], image[:, 2:3]
    lum = (r + g + b) / 3
    opp = torch.cat([lum, r - g, (r + g) / 2 - b], dim=1)  # (1, 3, H, W)
    gx = F.pad(lum[..., :, 1:] - lum[..., :, :-1], (0, 1, 0, 0), mode="replicate").abs()
    gy = F.pad(lum[..., 1:, :] - lum[..., :-1, :], (0, 0, 0, 1), mode="replicate").abs()
    scale = image_scale(*image.shape[-2:])
    stack = torch.cat([opp, lum * lum, gx, gy], dim=1)  # (1, 6, H, W), blurred together
    colour, texture = [], []
    for sigma in config.labeller_sigmas:
        blurred = _blur_approx(stack, sigma * scale)
        mean, mean_sq, grads = blurred[:, :3], blurred[:, 3:4], blurred[:, 4:]
        colour.append(mean)
        std = (mean_sq - mean[:, :1] ** 2).clamp_min(0).sqrt()
        texture.append(torch.cat([std, grads], dim=1))
    return torch.cat(colour + texture, dim=1)[0]  # (F, H, W)


def _kmeans(points: torch.Tensor, k: int, iters: int, generator: torch.Generator) -> torch.Tensor:
    """Lloyd k-means of (N, D) points from a random initial subset; returns (k', D) centres."""
    k = min(k, points.shape[0])
    centres = points[torch.randperm(points.shape[0], generator=generator)[:k]].clone()
    for _ in range(iters):
        assign = torch.cdist(points, centres).argmin(1)  # (N,)
        sums = torch.zeros_like(centres).index_add_(0, assign, points)
        counts = torch.bincount(assign, minlength=k).to(points.dtype)
        filled = counts > 0
        centres[filled] = sums[filled] / counts[filled, None]
    return centres


@dataclasses.dataclass(frozen=True)
class Labeller:
    """Nearest-prototype pixel classifier fitted on one (image, labels) pair.

    Attributes:
        prototypes: (M, F) float, k-means centres of each class's normalised features.
        prototype_class: (M,) long, the class of each prototype.
        feature_mean: (F,) float, per-feature mean over the source (normalisation).
        feature_scale: (F,) float, per-feature scale (std times 1 / group weight).
        temperature: softness of the class scores (median own-class squared distance).
        num_classes: K.
        config: settings used for features and smoothing.
        source_accuracy: pixel accuracy of the labeller on its own source pair (I, P); the
            ceiling of the label accuracy any output can reach.
    """

    prototypes: torch.Tensor
    prototype_class: torch.Tensor
    feature_mean: torch.Tensor
    feature_scale: torch.Tensor
    temperature: float
    num_classes: int
    config: EvalConfig
    source_accuracy: float = math.nan

    def features(self, image: np.ndarray) -> torch.Tensor:
        """Normalised features (H * W, F) of an (H, W, 3) float32 image in [0, 1]."""
        feats = _features(image_tensor(image, "image"), self.config)  # (F, H, W)
        flat = feats.reshape(feats.shape[0], -1).T  # (H * W, F)
        return (flat - self.feature_mean) / self.feature_scale

    def class_distances(self, image: np.ndarray) -> torch.Tensor:
        """Squared distance of each pixel to the nearest prototype of each class -> (K, H, W).

        Classes without prototypes (absent from the source) get +inf.
        """
        height, width = np.asarray(image).shape[:2]
        return self._distances(self.features(image), height, width)

    def _distances(self, flat: torch.Tensor, height: int, width: int) -> torch.Tensor:
        """(H * W, F) normalised features -> (K, H, W) nearest-prototype squared distances."""
        out = torch.full((self.num_classes, flat.shape[0]), math.inf)
        p_sq = (self.prototypes**2).sum(1)
        for start in range(0, flat.shape[0], 65536):
            chunk = flat[start : start + 65536]
            d2 = (chunk**2).sum(1, keepdim=True) - 2 * chunk @ self.prototypes.T + p_sq  # (n, M)
            for c in torch.unique(self.prototype_class).tolist():
                cols = self.prototype_class == c
                out[c, start : start + chunk.shape[0]] = d2[:, cols].min(1).values.clamp_min(0)
        return out.reshape(self.num_classes, height, width)  # (K, H * W) -> (K, H, W)

    def predict_proba(self, image: np.ndarray) -> torch.Tensor:
        """Spatially smoothed class probabilities (K, H, W) float of an (H, W, 3) image."""
        return self._smoothed_proba(self.class_distances(image))

    def _smoothed_proba(self, d2: torch.Tensor) -> torch.Tensor:
        probs = torch.softmax(-d2 / self.temperature, dim=0)
        sigma = self.config.labeller_smooth_sigma * image_scale(*d2.shape[-2:])
        return gaussian_blur(probs[None], sigma)[0]

    def predict(self, image: np.ndarray) -> np.ndarray:
        """Label map (H, W) int64 of an (H, W, 3) float32 image in [0, 1]."""
        return self.predict_proba(image).argmax(0).numpy().astype(np.int64)


def fit_labeller(
    image: np.ndarray,
    labels: np.ndarray,
    *,
    num_classes: int | None = None,
    seed: int = 0,
    config: EvalConfig = EvalConfig(),
) -> Labeller:
    """Fits the model-independent labeller on the source pair (I, P).

    Per class, config.labeller_samples pixels are sampled and clustered into
    config.labeller_prototypes k-means prototypes of their normalised colour/texture features.

    Args:
        image: (H, W, 3) float32 in [0, 1].
        labels: (H, W) int64 class ids in 0..K-1.
        num_classes: K; default labels.max() + 1.
        seed: seed of pixel sampling and k-means initialisation.
        config: evaluation settings.

    Returns:
        The fitted Labeller.
    """
    src = image_tensor(image, "image")
    labels = label_ids(labels, "labels", tuple(src.shape[-2:]))
    k = num_classes if num_classes is not None else int(labels.max()) + 1
    if labels.max() >= k:
        raise ValueError(f"labels has id {labels.max()} but num_classes is {k}")
    feats = _features(src, config)
    flat = feats.reshape(feats.shape[0], -1).T  # (F, H, W) -> (H * W, F)
    mean = flat.mean(0)
    std = flat.std(0).clamp_min(1e-4)
    n_colour = 3 * len(config.labeller_sigmas)
    weight = torch.ones(flat.shape[1])
    weight[n_colour:] = config.labeller_texture_weight
    scale = std / weight.clamp_min(1e-6)
    norm = (flat - mean) / scale
    gen = torch.Generator().manual_seed(seed)
    flat_labels = torch.from_numpy(labels.reshape(-1))
    prototypes, owners, own_d2 = [], [], []
    for c in range(k):
        idx = torch.nonzero(flat_labels == c).squeeze(1)
        if idx.numel() == 0:
            continue
        if idx.numel() > config.labeller_samples:
            idx = idx[torch.randperm(idx.numel(), generator=gen)[: config.labeller_samples]]
        points = norm[idx]
        centres = _kmeans(points, config.labeller_prototypes, config.labeller_kmeans_iters, gen)
        own_d2.append(torch.cdist(points, centres).min(1).values ** 2)
        prototypes.append(centres)
        owners.append(torch.full((centres.shape[0],), c, dtype=torch.long))
    temperature = float(torch.cat(own_d2).median().clamp_min(1e-3))
    labeller = Labeller(
        prototypes=torch.cat(prototypes),
        prototype_class=torch.cat(owners),
        feature_mean=mean,
        feature_scale=scale,
        temperature=temperature,
        num_classes=k,
        config=config,
    )
    proba = labeller._smoothed_proba(labeller._distances(norm, *labels.shape))
    accuracy = float((proba.argmax(0).numpy() == labels).mean())
    return dataclasses.replace(labeller, source_accuracy=accuracy)


def pixel_accuracy(
    predicted: np.ndarray, target: np.ndarray, *, mask: np.ndarray | None = None
) -> float | None:
    """Fraction of pixels where predicted == target (within mask); None if the mask is empty.

    Args:
        predicted: (H, W) int64.
        target: (H, W) int64.
        mask: optional (H, W) bool region.
    """
    predicted, target = np.asarray(predicted), np.asarray(target)
    if predicted.shape != target.shape:
        raise ValueError(f"predicted {predicted.shape} and target {target.shape} differ in shape")
    hit = predicted == target
    if mask is not None:
        hit = hit[np.asarray(mask, dtype=bool)]
    return float(hit.mean()) if hit.size else None


def mean_iou(
    predicted: np.ndarray,
    target: np.ndarray,
    *,
    num_classes: int,
    mask: np.ndarray | None = None,
) -> float | None:
    """Mean intersection-over-union over the classes present in target or prediction.

    Args:
        predicted: (H, W) int64 ids in 0..K-1.
        target: (H, W) int64 ids in 0..K-1.
        num_classes: K.
        mask: optional (H, W) bool region; only its pixels count.

    Returns:
        mIoU in [0, 1], or None when the mask is empty.
    """
    predicted, target = np.asarray(predicted), np.asarray(target)
    if predicted.shape != target.shape:
        raise ValueError(f"predicted {predicted.shape} and target {target.shape} differ in shape")
    if mask is not None:
        keep = np.asarray(mask, dtype=bool)
        predicted, target = predicted[keep], target[keep]
    if predicted.size == 0:
        return None
    p, t = predicted.reshape(-1), target.reshape(-1)
    confusion = np.bincount(t * num_classes + p, minlength=num_classes**2)
    confusion = confusion.reshape(num_classes, num_classes)  # (true, predicted)
    inter = np.diag(confusion).astype(np.float64)
    union = confusion.sum(0) + confusion.sum(1) - inter
    present = union > 0
    return float((inter[present] / union[present]).mean())


def semantic_alignment(
    predicted: np.ndarray,
    target: np.ndarray,
    *,
    num_classes: int,
    edited: np.ndarray | None = None,
) -> dict[str, float | None]:
    """Pixel accuracy and mIoU of a labeller's reading of the output against the target.

    Args:
        predicted: (H2, W2) int64, the labeller's label map of the output.
        target: (H2, W2) int64, the requested layout P2.
        num_classes: K.
        edited: optional (H2, W2) bool, pixels whose target label differs from the source label.

    Returns:
        {"label_accuracy", "miou", "label_accuracy_edited", "miou_edited"}; the edited ones are
        None when `edited` is None or empty.
    """
    has_edit = edited is not None and bool(np.asarray(edited).any())
    return {
        "label_accuracy": pixel_accuracy(predicted, target),
        "miou": mean_iou(predicted, target, num_classes=num_classes),
        "label_accuracy_edited": pixel_accuracy(predicted, target, mask=edited)
        if has_edit
        else None,
        "miou_edited": mean_iou(predicted, target, num_classes=num_classes, mask=edited)
        if has_edit
        else None,
    }
