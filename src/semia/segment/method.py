"""`segment`: a label map for a photo from a few scribbles.

Pipeline (weight-free; about a second for a 512 px photo on one CPU core):

1. At `feature_pixels` pixels, a random forest learns the stroke classes from multi-scale CIELAB
   intensity / edge / texture features of the stroke pixels and predicts every pixel
   (`forest.py`): appearance, including texture, but noisy near boundaries.
2. At `work_pixels` pixels, a random walker with that prediction as a weak prior
   (`walker.py`) spreads the strokes along the image: regions follow colour edges, textured
   regions that the forest recognises do not leak, and stroke pixels keep their class.
3. The walker's scores are upsampled to the photo's size (up to `refine_pixels`) and a colour
   guided filter snaps the boundaries to the full-resolution edges; the argmax is the label.
   Beyond `refine_pixels` the labels are upsampled (nearest) from there.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass

import cv2
import numpy as np
from skimage.color import rgb2lab

from semia.errors import InputError, check_seed
from semia.io import LabelMap
from semia.segment.forest import forest_probabilities, pixel_features
from semia.segment.scribbles import Scribbles
from semia.segment.walker import guided_filter, random_walk

log = logging.getLogger(__name__)

_ASPECT_TOLERANCE = 0.02  # scribbles whose aspect ratio differs more than this are refused


@dataclass(frozen=True)
class SegmentConfig:
    """Settings of `segment`; the defaults are the benchmarked ones.

    Attributes:
        feature_pixels: pixel count at which the forest's features are computed (photos are
            downscaled to about it).
        work_pixels: pixel count at which the random walker is solved.
        refine_pixels: pixel count up to which boundaries are refined at the photo's own
            resolution (larger photos get the labels upsampled from there).
        sigma_max: largest feature scale, in pixels at `feature_pixels`.
        trees: random forest size.
        depth: random forest depth.
        beta: edge sensitivity of the walker (larger: regions stop at weaker colour edges).
        gamma: weight of the forest's prior in the walker (0: strokes alone decide).
        blur: Gaussian sigma (px at `work_pixels`) applied before measuring colour edges.
        refine_radius: guided filter radius (px at the output size).
        refine_eps: guided filter regularisation (smaller: follows fainter edges).
    """

    feature_pixels: int = 256 * 256
    work_pixels: int = 512 * 256
    refine_pixels: int = 1024 * 1024
    sigma_max: float = 16.0
    trees: int = 50
    depth: int = 10
    beta: float = 4.0
    gamma: float = 1e-4
    blur: float = 1.0
    refine_radius: int = 2
    refine_eps: float = 1e-3

    def __post_init__(self) -> None:
        for name in ("feature_pixels", "work_pixels", "refine_pixels", "trees", "depth"):
            if getattr(self, name) < 1:
                raise ValueError(f"SegmentConfig.{name} must be >= 1, got {getattr(self, name)}")
        for name in ("sigma_max", "beta"):
            if not getattr(self, name) > 0:
                raise ValueError(f"SegmentConfig.{name} must be > 0, got {getattr(self, name)}")
        for name in ("gamma", "blur", "refine_radius", "refine_eps"):
            if getattr(self, name) < 0:
                raise ValueError(f"SegmentConfig.{name} must be >= 0, got {getattr(self, name)}")

    def replace(self, **changes: object) -> SegmentConfig:
        return dataclasses.replace(self, **changes)


def _fit(height: int, width: int, pixels: int) -> tuple[int, int]:
    """The (height, width) of the same aspect with at most about `pixels` pixels."""
    scale = min(1.0, (pixels / (height * width)) ** 0.5)
    return max(1, round(height * scale)), max(1, round(width * scale))


def _resize(array: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Area-averaged (down) or bilinear (up) resize of an (H, W[, C]) float array."""
    if array.shape[:2] == tuple(size):
        return array
    shrink = size[0] * size[1] < array.shape[0] * array.shape[1]
    interpolation = cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
    array = array.astype(np.float32, copy=False)
    if array.ndim == 2:
        return cv2.resize(array, size[::-1], interpolation=interpolation)
    chunks = [  # cv2 resizes at most 4 channels at a time
        cv2.resize(
            np.ascontiguousarray(array[..., c : c + 4]), size[::-1], interpolation=interpolation
        )
        for c in range(0, array.shape[2], 4)
    ]
    return np.concatenate([chunk.reshape(*size, -1) for chunk in chunks], axis=2)


def _as_image(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] != 3 or image.shape[0] < 2 or image.shape[1] < 2:
        raise InputError(f"image must be an (H, W, 3) array of at least 2x2, got {image.shape}")
    if image.dtype == np.uint8:
        return image.astype(np.float32) / 255.0
    if not np.issubdtype(image.dtype, np.floating) or not np.isfinite(image).all():
        raise InputError(f"image must be uint8 or finite floats in [0, 1], got {image.dtype}")
    return np.clip(image.astype(np.float32), 0.0, 1.0)


def _as_scribbles(scribbles: Scribbles | tuple, size: tuple[int, int], name: str) -> Scribbles:
    """Validate strokes against an image of `size` (H, W): rescale the same aspect, keep only
    the drawn classes (at least two)."""
    ids, palette = scribbles
    ids = np.asarray(ids)
    palette = np.asarray(palette)
    if ids.ndim != 2 or ids.size == 0 or not np.issubdtype(ids.dtype, np.integer):
        raise InputError(f"scribbles must be an (H, W) integer array, got {ids.dtype} {ids.shape}")
    if palette.ndim != 2 or palette.shape[1] != 3 or len(palette) <= max(int(ids.max()), -1):
        raise InputError(
            f"scribble palette must be (K, 3) with a colour for each class, got {palette.shape}"
        )
    height, width = size
    aspect, stroke_aspect = width / height, ids.shape[1] / ids.shape[0]
    if abs(np.log(stroke_aspect / aspect)) > _ASPECT_TOLERANCE:
        raise InputError(
            f"{name} are {ids.shape[1]}x{ids.shape[0]} but the image is {width}x{height}: "
            "a different aspect ratio; draw the strokes on the photo itself (same size or a "
            "uniformly scaled copy)"
        )
    drawn = np.unique(ids[ids >= 0])
    if len(drawn) == 0:
        raise InputError(f"{name} hold no strokes; draw a few strokes in each region")
    if len(drawn) == 1:
        raise InputError(
            f"{name} hold strokes of a single colour; draw strokes of at least two colours, "
            "one colour per region"
        )
    if len(drawn) < len(palette):
        log.info("%d stroke colours without strokes are left out", len(palette) - len(drawn))
    compact = np.full(len(palette), -1, np.int64)
    compact[drawn] = np.arange(len(drawn))
    ids = np.where(ids >= 0, compact[np.maximum(ids, 0)], -1).astype(np.int64)
    return Scribbles(ids, palette[drawn].astype(np.uint8)).resized(size)


def segment(
    image: np.ndarray,
    scribbles: Scribbles | tuple[np.ndarray, np.ndarray],
    *,
    config: SegmentConfig | None = None,
    seed: int = 0,
    name: str = "the scribbles",
) -> LabelMap:
    """Label every pixel of a photo with one of the stroke classes.

    Args:
        image: (H, W, 3) uint8 or float32 RGB in [0, 1].
        scribbles: `Scribbles` (or an (ids, palette) pair): (h, w) int stroke classes with -1
            where nothing is drawn, and a (K, 3) uint8 colour per class. Strokes of another
            size with the same aspect ratio are rescaled to the image.
        config: settings; None for the defaults.
        seed: random seed of the forest (same seed, same result).
        name: how error messages name the scribbles (e.g. their file).

    Returns:
        `LabelMap` of size (H, W) whose palette is the stroke colours that were drawn (in the
        order of `scribbles.palette`).

    Raises:
        InputError: no strokes, a single stroke class, or strokes of another aspect ratio.
    """
    config = config or SegmentConfig()
    check_seed(seed)
    image = _as_image(image)
    height, width = image.shape[:2]
    strokes = _as_scribbles(scribbles, (height, width), name)
    num_classes = strokes.num_classes

    feature_size = _fit(height, width, config.feature_pixels)
    features = pixel_features(_resize(image, feature_size), config.sigma_max)
    prior = forest_probabilities(
        features,
        strokes.resized(feature_size).ids,
        num_classes,
        trees=config.trees,
        depth=config.depth,
        seed=seed,
    )

    work_size = _fit(height, width, config.work_pixels)
    work = _resize(image, work_size)
    if config.blur > 0:
        work = cv2.GaussianBlur(work, (0, 0), config.blur)
    prior = _resize(prior, work_size).reshape(*work_size, num_classes)
    prior /= np.maximum(prior.sum(axis=2, keepdims=True), 1e-6)
    scores = random_walk(
        rgb2lab(work),
        prior,
        strokes.resized(work_size).ids,
        beta=config.beta,
        gamma=config.gamma,
    )

    out_size = _fit(height, width, config.refine_pixels)
    scores = _resize(scores, out_size).reshape(*out_size, num_classes)
    if config.refine_radius > 0 and out_size != work_size:
        guide = _resize(image, out_size)
        scores = guided_filter(guide, scores, config.refine_radius, config.refine_eps)
    ids = scores.argmax(axis=2)
    if out_size != (height, width):
        rows = np.minimum((np.arange(height) + 0.5) * out_size[0] / height, out_size[0] - 1)
        cols = np.minimum((np.arange(width) + 0.5) * out_size[1] / width, out_size[1] - 1)
        ids = ids[rows.astype(np.int64)[:, None], cols.astype(np.int64)[None, :]]
    drawn = strokes.ids >= 0
    ids[drawn] = strokes.ids[drawn]  # a stroke is the user's word
    return LabelMap(ids=ids.astype(np.int64), palette=strokes.palette)


def overlay(image: np.ndarray, labels: LabelMap, opacity: float = 0.5) -> np.ndarray:
    """The label colours blended over the photo, with the region boundaries drawn solid.

    Args:
        image: (H, W, 3) float32 RGB in [0, 1] (or uint8).
        labels: a `LabelMap` of the same size.
        opacity: weight of the label colours.

    Returns:
        (H, W, 3) float32 RGB in [0, 1].
    """
    image = _as_image(image)
    if image.shape[:2] != labels.size:
        raise InputError(
            f"overlay: image is {image.shape[1]}x{image.shape[0]} but labels are "
            f"{labels.size[1]}x{labels.size[0]}"
        )
    colours = labels.to_rgb().astype(np.float32) / 255.0
    out = (1.0 - opacity) * image + opacity * colours
    ids = labels.ids
    edge = np.zeros(ids.shape, bool)
    edge[1:] |= ids[1:] != ids[:-1]
    edge[:, 1:] |= ids[:, 1:] != ids[:, :-1]
    out[edge] = colours[edge]
    return out
