"""Object removal: fill the label map under a mask so boundaries continue, then synthesize.

1. The mask (white = remove) is read from any image, anti-aliased edges included, and grown by a
   couple of pixels so an object's soft rim goes too; or every region of one class is removed
   (grown twice as much: a label map hugs the object, whose rim reaches beyond it).
2. The masked labels are filled from their surroundings along chords: from each masked pixel,
   eight straight lines (horizontal, vertical, both diagonals and the four knight's-move
   slopes) run both ways to the first unmasked pixel. A chord whose two ends carry the same
   class votes for it (weight 1 / chord length): a horizon or a road edge that crosses the mask
   is continued straight, because the chords along it agree and the chords across it do not.
   Chords whose ends disagree (or that leave the image on one side) add a weak vote,
   interpolated by distance, which decides only where no chord agrees (junctions).
   A nearest-pixel (Voronoi) fill would instead bend every boundary towards the mask's middle.
3. Synthesis: the training-free analogy with the filled map as the target and the masked source
   pixels forbidden as texture (they belong to the object), or a trained SemIA generator; the
   result equals the photo outside the mask.
4. The analogy's fill is steered towards the right shading by a colour guide (structure and
   texture, after Bertalmio et al. 2003): the masked colours are first filled smoothly, class by
   class (`smooth_fill`: the membrane, i.e. harmonic, interpolation of each filled class region
   from the unmasked pixels of the same class, so a sky gradient carries on and no colour leaks
   across a class boundary); this smooth fill, blurred per class, is the target's guide and the
   blurred photo the source's, compared patch-wise beside the colours. Patch synthesis alone
   copies whatever sky fits its neighbours, and a large hole filled from far away (darker sky
   from the top of the photo) stays self-consistent and leaves a darker ghost of the object.

Without a label map, a segmentation of the photo itself is derived first: k-means on smoothed
Lab colours and position of the unmasked pixels, cleaned by a median filter.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from semia.errors import InputError, check_seed
from semia.io import LabelMap, as_ids, as_image
from semia.io.images import open_image

if TYPE_CHECKING:
    import torch

    from semia.config import PatchConfig
    from semia.gan.model import SemIA

log = logging.getLogger(__name__)

METHODS = ("analogy", "gan")
MAX_MASKED_SHARE = 0.95  # a mask covering more leaves too little to copy from
_AXES = ((0, 1), (1, 0), (1, 1), (1, -1), (1, 2), (2, 1), (1, -2), (2, -1))  # chord directions
_WEAK = 0.1  # weight of chords whose ends disagree, against agreeing chords
_SEGMENTS = 6  # classes of a derived segmentation
COLOUR_WEIGHT = 10.0  # analogy removal: weight of the smooth-colour guide (benchmarks/removal.py)
COLOUR_SIGMA = 3.0  # its per-class blur, in pixels per 256 px of the photo's longest side
_EPS = 1e-4  # membrane fill: pull towards the class mean (decides regions cut off from it)


# --- the mask ---------------------------------------------------------------------------------


def _grow(mask: np.ndarray, pixels: int) -> np.ndarray:
    if pixels <= 0:
        return mask
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * pixels + 1, 2 * pixels + 1))
    return cv2.dilate(mask.astype(np.uint8), kernel) > 0


def grow_mask(mask: np.ndarray, pixels: int | None = None) -> np.ndarray:
    """A removal mask (H, W) bool grown by `pixels` (default: 2 per 256 px of the photo's
    longest side), so an object's soft, anti-aliased rim goes with it."""
    if pixels is None:
        pixels = max(1, round(2 * max(mask.shape) / 256))
    return _grow(mask, pixels)


def check_mask(mask: np.ndarray, size: tuple[int, int], what: str = "mask") -> np.ndarray:
    """Validate a removal mask against the photo size; (H, W) bool.

    Args:
        mask: (H, W) bool, or float / uint8 (above half = remove), the photo's size.
        size: the photo's (H, W).

    Raises:
        InputError: another size, nothing to remove, or (almost) everything.
    """
    m = np.asarray(mask)
    if m.ndim == 3:
        m = m.mean(2)
    if m.ndim != 2 or m.shape != tuple(size):
        raise InputError(
            f"{what} has shape {np.shape(mask)} but the photo is {size[1]}x{size[0]}: give an "
            "(H, W) mask of the photo's size"
        )
    if m.dtype != bool:
        m = m.astype(np.float32) / (255.0 if m.dtype == np.uint8 else 1.0) > 0.5
    share = float(m.mean())
    if share == 0.0:
        raise InputError(f"{what} is empty: paint white where to remove, black elsewhere")
    if share > MAX_MASKED_SHARE:
        raise InputError(
            f"{what} covers {100 * share:.0f} % of the photo; at least "
            f"{100 * (1 - MAX_MASKED_SHARE):.0f} % must stay to fill the rest from"
        )
    return m


def read_mask(path: str | Path, size: tuple[int, int], grow: int | None = None) -> np.ndarray:
    """Read a removal mask: white (bright) = remove; any image mode, size of the photo's aspect.

    Transparent pixels count as keep. Anti-aliased or JPEG edges are thresholded at half
    brightness after area-resizing to the photo's `size` (H, W); the mask is then grown by
    `grow` pixels (default: 2 per 256 px of the photo's longest side).

    Returns:
        (H, W) bool, True where to remove.
    """
    from semia.apps.sketch import check_aspect

    im = open_image(path, "mask")
    rgba = np.asarray(im.convert("RGBA")).astype(np.float32) / 255.0  # (h, w, 4)
    if im.mode in ("I;16", "I;16L", "I;16B", "I"):
        a = np.asarray(im).astype(np.float32)
        rgba = np.stack([a / max(float(a.max()), 1.0)] * 3 + [np.ones_like(a)], 2)
    value = rgba[..., :3].mean(2) * rgba[..., 3]  # transparent = black = keep
    check_aspect(value.shape, size, f"mask {path}")
    value = cv2.resize(value, (size[1], size[0]), interpolation=cv2.INTER_AREA)
    mask = check_mask(value > 0.5, size, f"mask {path}")
    return check_mask(grow_mask(mask, grow), size, f"mask {path}")


def parse_colour(text: str) -> tuple[int, int, int]:
    """'#rrggbb', 'rrggbb' or 'r,g,b' -> (r, g, b)."""
    t = text.strip().lstrip("#")
    try:
        if "," in t:
            rgb = tuple(int(v) for v in t.split(","))
        elif len(t) == 6:
            rgb = tuple(int(t[i : i + 2], 16) for i in (0, 2, 4))
        else:
            rgb = ()
    except ValueError:
        rgb = ()
    if len(rgb) != 3 or not all(0 <= v <= 255 for v in rgb):
        raise InputError(f"--remove-label {text!r}: give a colour as #rrggbb or r,g,b")
    return rgb  # type: ignore[return-value]


def _hex(colour: object) -> str:
    r, g, b = (int(v) for v in colour)  # type: ignore[attr-defined]
    return f"#{r:02x}{g:02x}{b:02x}"


def label_mask(
    labels: LabelMap, colour: tuple[int, int, int], grow: int | None = None
) -> np.ndarray:
    """Mask of every region whose label has this palette colour.

    Grown by `grow` pixels (default: 4 per 256 px of the longest side, twice `read_mask`'s: a
    label map hugs the object, whose anti-aliased rim and fringe (a tree's leaves against the
    sky) reach a few pixels beyond it and would stay as a dotted outline).
    """
    hits = np.flatnonzero((labels.palette.astype(int) == np.array(colour)).all(1))
    if hits.size == 0:
        shown = ", ".join(_hex(c) for c in labels.palette[:20])
        raise InputError(
            f"--remove-label {_hex(colour)}: no class of the label map has this "
            f"colour (its colours: {shown})"
        )
    size = labels.ids.shape
    mask = check_mask(labels.ids == hits[0], size, "--remove-label")
    if grow is None:
        grow = max(1, round(4 * max(size) / 256))
    return check_mask(grow_mask(mask, grow), size, "--remove-label")


# --- filling the label map --------------------------------------------------------------------


def _march(mask: np.ndarray, ys: np.ndarray, xs: np.ndarray, dy: int, dx: int):
    """From each masked pixel (ys, xs), step by (dy, dx) to the first unmasked pixel.

    Returns (end_y, end_x, steps): end -1 where the ray leaves the image first.
    """
    h, w = mask.shape
    n = ys.size
    end_y = np.full(n, -1)
    end_x = np.full(n, -1)
    steps = np.zeros(n)
    active = np.arange(n)
    y, x = ys.copy(), xs.copy()
    step = 0
    while active.size:
        step += 1
        y, x = y + dy, x + dx
        inside = (y >= 0) & (y < h) & (x >= 0) & (x < w)
        hit = np.zeros(active.size, dtype=bool)
        hit[inside] = ~mask[y[inside], x[inside]]
        done = hit | ~inside
        end_y[active[hit]] = y[hit]
        end_x[active[hit]] = x[hit]
        steps[active[done]] = step
        keep = ~done
        active, y, x = active[keep], y[keep], x[keep]
    return end_y, end_x, steps


def fill_labels(ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Fill the masked labels from their surroundings so that boundaries continue.

    Args:
        ids: (H, W) integer class ids.
        mask: (H, W) bool, True where the labels are unknown (to fill).

    Returns:
        (H, W) int64 ids: `ids` outside the mask, filled inside with classes present outside.
    """
    ids = np.asarray(ids, dtype=np.int64)
    mask = np.asarray(mask, dtype=bool)
    if mask.all():
        raise InputError("the mask covers the whole label map: nothing to fill from")
    ys, xs = np.nonzero(mask)
    k = int(ids.max()) + 1
    votes = np.zeros((ys.size, k))
    rows = np.arange(ys.size)
    for dy, dx in _AXES:
        length = float(np.hypot(dy, dx))
        ay, ax, ad = _march(mask, ys, xs, dy, dx)
        by, bx, bd = _march(mask, ys, xs, -dy, -dx)
        a_ok, b_ok = ay >= 0, by >= 0
        a_id = np.where(a_ok, ids[np.maximum(ay, 0), np.maximum(ax, 0)], 0)
        b_id = np.where(b_ok, ids[np.maximum(by, 0), np.maximum(bx, 0)], 0)
        ad, bd = ad * length, bd * length
        chord = ad + bd
        agree = a_ok & b_ok & (a_id == b_id)
        np.add.at(votes, (rows[agree], a_id[agree]), 1.0 / chord[agree])
        both = a_ok & b_ok & ~agree
        np.add.at(votes, (rows[both], a_id[both]), _WEAK * bd[both] / chord[both] ** 2)
        np.add.at(votes, (rows[both], b_id[both]), _WEAK * ad[both] / chord[both] ** 2)
        only_a = a_ok & ~b_ok
        np.add.at(votes, (rows[only_a], a_id[only_a]), 0.5 * _WEAK / ad[only_a])
        only_b = b_ok & ~a_ok
        np.add.at(votes, (rows[only_b], b_id[only_b]), 0.5 * _WEAK / bd[only_b])
    out = ids.copy()
    out[ys, xs] = votes.argmax(1)
    return out


def voronoi_fill(ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The nearest-unmasked-pixel fill (a baseline for `fill_labels`)."""
    from scipy.ndimage import distance_transform_edt

    _, (iy, ix) = distance_transform_edt(mask, return_indices=True)
    return np.asarray(ids, dtype=np.int64)[iy, ix]


# --- the smooth colour guide ------------------------------------------------------------------


def smooth_fill(image: np.ndarray, mask: np.ndarray, filled: np.ndarray) -> np.ndarray:
    """Fill the masked colours smoothly, class by class (membrane interpolation).

    Every masked pixel becomes the mean of its 4-neighbours of the same class (in `filled`),
    unmasked ones keeping the photo's colours: Laplace's equation on each class region, with the
    unmasked pixels of that class as its boundary values and no coupling across classes, so a
    linear shading (a sky gradient) is continued exactly and no colour crosses a class boundary.
    A masked region cut off from unmasked pixels of its class takes the class's mean colour.

    Args:
        image: (H, W, 3) float32 in [0, 1].
        mask: (H, W) bool, True where to fill.
        filled: (H, W) int class ids, the masked part already filled (`fill_labels`).

    Returns:
        (H, W, 3) float32 in [0, 1], equal to `image` outside the mask.
    """
    from scipy.sparse import csc_matrix
    from scipy.sparse.linalg import splu

    image = as_image(image)
    mask = np.asarray(mask, dtype=bool)
    filled = np.asarray(filled, dtype=np.int64)
    h, w = mask.shape
    ys, xs = np.nonzero(mask)
    n = ys.size
    index = np.full((h, w), -1)
    index[ys, xs] = np.arange(n)
    rows = np.arange(n)
    means = _class_means(image, mask, filled)  # (K, 3)
    diag = np.full(n, _EPS)
    rhs = _EPS * means[filled[ys, xs]].astype(np.float64)  # (n, 3)
    coupled_rows, coupled_cols = [], []
    for dy, dx in ((0, 1), (0, -1), (1, 0), (-1, 0)):
        qy, qx = ys + dy, xs + dx
        ok = (qy >= 0) & (qy < h) & (qx >= 0) & (qx < w)
        qy, qx = qy.clip(0, h - 1), qx.clip(0, w - 1)
        ok &= filled[qy, qx] == filled[ys, xs]
        diag += ok
        inner = ok & mask[qy, qx]  # an unknown neighbour
        coupled_rows.append(rows[inner])
        coupled_cols.append(index[qy[inner], qx[inner]])
        outer = ok & ~mask[qy, qx]  # a known one: its colour goes to the right-hand side
        np.add.at(rhs, rows[outer], image[qy[outer], qx[outer]])
    r, c = np.concatenate(coupled_rows), np.concatenate(coupled_cols)
    a = csc_matrix(
        (
            np.concatenate([diag, -np.ones(r.size)]),
            (np.concatenate([rows, r]), np.concatenate([rows, c])),
        ),
        shape=(n, n),
    )  # (n, n) the graph Laplacian of the masked pixels (+ eps), symmetric positive definite
    out = image.copy()
    out[ys, xs] = splu(a).solve(rhs).clip(0, 1)
    return out


def _class_means(image: np.ndarray, mask: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """(K, 3) mean unmasked colour of every class id 0..K-1 (the overall mean where absent)."""
    k = int(ids.max()) + 1
    keep = ~mask
    count = np.bincount(ids[keep], minlength=k)[:, None]  # (K, 1)
    sums = np.stack([np.bincount(ids[keep], image[keep][:, ch], minlength=k) for ch in range(3)], 1)
    return np.where(count > 0, sums / np.maximum(count, 1), image[keep].mean(0))


def class_blur(image: np.ndarray, valid: np.ndarray, ids: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur within each class: every pixel averages the valid pixels of its own class.

    Args:
        image: (H, W, 3) float32.
        valid: (H, W) bool, the pixels that contribute.
        ids: (H, W) int class ids.
        sigma: Gaussian width in pixels.

    Returns:
        (H, W, 3) float32; 0 where no valid pixel of the class is near.
    """
    out = np.zeros_like(image)
    for c in np.unique(ids):
        region = ids == c
        weight = (region & valid).astype(np.float32)
        num = cv2.GaussianBlur(image * weight[..., None], (0, 0), sigma)
        den = cv2.GaussianBlur(weight, (0, 0), sigma)[..., None]
        out[region] = (num / np.maximum(den, 1e-6))[region]
    return out


def colour_guides(
    image: np.ndarray, mask: np.ndarray, ids: np.ndarray, filled: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The analogy removal's colour guides: (3, H, W) float32 for the source and the target.

    The source's is the photo blurred per class (`ids`) without the masked pixels; the target's
    the per-class `smooth_fill` of the mask, blurred per class (`filled`) the same way.
    """
    sigma = COLOUR_SIGMA * max(mask.shape) / 256.0
    source = class_blur(image, ~mask, ids, sigma)
    target = class_blur(smooth_fill(image, mask, filled), np.ones_like(mask), filled, sigma)
    return source.transpose(2, 0, 1).copy(), target.transpose(2, 0, 1).copy()


# --- a segmentation when there is no label map -----------------------------------------------


def segment(
    image: np.ndarray, mask: np.ndarray | None = None, classes: int = _SEGMENTS, seed: int = 0
) -> np.ndarray:
    """A rough label map of a photo: k-means on smoothed Lab colour and position.

    Args:
        image: (H, W, 3) float32 in [0, 1].
        mask: optional (H, W) bool of pixels to leave out of the clustering (an object to
            remove); they get the class of their nearest centre all the same.
        classes: number of clusters.
        seed: seeds the k-means initialisation.

    Returns:
        (H, W) int64 ids in 0..classes-1 (classes without pixels dropped and renumbered).
    """
    check_seed(seed)
    image = as_image(image)
    h, w = image.shape[:2]
    scale = max(h, w) / 256.0
    u8 = (image * 255 + 0.5).astype(np.uint8)
    lab = cv2.cvtColor(cv2.GaussianBlur(u8, (0, 0), 2.0 * scale), cv2.COLOR_RGB2LAB)
    lab = lab.astype(np.float32)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    feats = np.concatenate(
        [lab.reshape(-1, 3), 40.0 * np.stack([yy.ravel() / h, xx.ravel() / w], 1)], 1
    )  # (H * W, 5): Lab in 0..255 and position weighted to matter less than colour
    use = np.ones(h * w, dtype=bool) if mask is None else ~np.asarray(mask).ravel()
    data = feats[use][:: max(1, int(use.sum()) // 20000)]
    criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 30, 0.5)
    cv2.setRNGSeed(seed - 2**32 if seed >= 2**31 else seed)  # a C int: the same 32 bits, signed
    _, _, centres = cv2.kmeans(data, classes, None, criteria, 3, cv2.KMEANS_PP_CENTERS)
    d2 = ((feats[:, None, :] - centres[None]) ** 2).sum(2)  # (H * W, classes)
    ids = d2.argmin(1).reshape(h, w).astype(np.uint8)
    ids = cv2.medianBlur(ids, 2 * max(1, round(2 * scale)) + 1)
    _, ids = np.unique(ids, return_inverse=True)
    return ids.reshape(h, w).astype(np.int64)


# --- removal ----------------------------------------------------------------------------------


def removal_labels(
    image: np.ndarray,
    mask: np.ndarray,
    labels: LabelMap | np.ndarray | None = None,
    seed: int = 0,
) -> np.ndarray:
    """The label map of the photo without the object: (H, W) int64 ids, masked part filled.

    Without `labels`, a segmentation of the photo (`segment`, seeded by `seed` as in `remove`)
    is filled instead.
    """
    image = as_image(image)
    mask = check_mask(mask, image.shape[:2])
    check_seed(seed)
    return fill_labels(_source_ids(image, mask, labels, seed), mask)


def _source_ids(
    image: np.ndarray, mask: np.ndarray, labels: LabelMap | np.ndarray | None, seed: int
) -> np.ndarray:
    if labels is None:
        return segment(image, mask, seed=seed)
    return as_ids(labels, "labels", shape=image.shape[:2])


def remove(
    image: np.ndarray,
    mask: np.ndarray,
    labels: LabelMap | np.ndarray | None = None,
    *,
    method: str = "analogy",
    model: SemIA | None = None,
    seed: int = 0,
    config: PatchConfig | None = None,
    device: str | torch.device = "cpu",
    colour_weight: float = COLOUR_WEIGHT,
) -> np.ndarray:
    """Remove what the mask covers from a photo.

    Args:
        image: (H, W, 3) uint8 or float32 in [0, 1].
        mask: (H, W) bool (or float / uint8, above half = remove), True where to remove.
        labels: the photo's label map (`LabelMap` or (H, W) ids); None derives a segmentation.
        method: "analogy" (training-free) or "gan" (needs `model`, a SemIA trained on this
            photo and label map): G refines the training-free removal where the labels change;
            where they stay (a mask inside one region) the training-free fill is kept.
        model: the trained SemIA model for method "gan".
        seed: random seed of the synthesis.
        config: patch synthesis settings for method "analogy".
        device: torch device for method "analogy" (the GAN runs where its model is).
        colour_weight: method "analogy": weight of the colour guides (`colour_guides`: the
            smooth per-class fill of the mask against the blurred photo) beside the patches'
            colours; it keeps the fill's shading that of its surroundings; 0 = off. It replaces
            `config.edge_weight`.

    Returns:
        (H, W, 3) float32 in [0, 1], equal to `image` outside the mask.
    """
    image = as_image(image)
    if method not in METHODS:
        raise InputError(f"method must be one of {METHODS}, got {method!r}")
    check_seed(seed)
    mask = check_mask(mask, image.shape[:2])
    if method == "gan":
        if model is None:
            raise InputError("method 'gan' needs a trained model (--model)")
        if labels is None:
            labels = model.labels
    ids = (
        segment(image, mask, seed=seed)
        if labels is None
        else as_ids(labels, "labels", shape=image.shape[:2])
    )
    filled = fill_labels(ids, mask)
    if method == "gan" and filled.max() >= model.num_classes:
        raise InputError("the label map has more classes than the model was trained on")
    out = _synthesize_fill(image, mask, ids, filled, seed, config, device, colour_weight)
    out = np.where(mask[..., None], out, image).astype(np.float32)
    if method == "gan":
        # G refines the training-free removal (the object's pixels never serve as texture) ...
        refined = model.generate(filled, init=out)
        # ... but where the labels stay (a blemish inside one region) G's input is the photo
        # itself, object included: there the training-free fill is kept
        out = np.where((filled == ids)[..., None], out, refined)
    return np.where(mask[..., None], out, image).astype(np.float32)


def _synthesize_fill(
    image: np.ndarray,
    mask: np.ndarray,
    ids: np.ndarray,
    filled: np.ndarray,
    seed: int,
    config: PatchConfig | None,
    device: str | torch.device,
    colour_weight: float,
) -> np.ndarray:
    """The training-free fill: the photo synthesized in the filled layout (H, W, 3)."""
    from semia.config import PatchConfig
    from semia.patch.synthesis import synthesize

    # the object's pixels get a class of their own that the target never asks for, so no
    # texture is copied from them
    source = np.where(mask, int(ids.max()) + 1, ids)
    config = config or PatchConfig()
    guides = None
    if colour_weight > 0:
        guides = colour_guides(image, mask, ids, filled)
        config = dataclasses.replace(config, edge_weight=colour_weight)
    return synthesize(image, source, filled, seed=seed, config=config, device=device, guides=guides)
