"""Palette inference: decoding a label file and snapping its colours to the real palette.

A colour-coded map, clean or anti-aliased or JPEG-noisy, holds a few colours that fill solid
regions (the real palette) and many blends along edges. The palette is found by clustering colours
and keeping the clusters with solid interiors; every pixel is then snapped to it, an edge pixel
taking the label of a neighbour whose colour it resembles most, so blends never become spurious
classes. Palette-mode PNGs (indices are ids), grayscale id maps and `.npy` arrays are decoded as
integer values.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from semia.errors import InputError
from semia.io.arrays import fit_size, resize_nearest
from semia.io.images import MAX_PIXELS, open_image

_CLUSTER_RADIUS = 24.0  # colours this close (RGB L2) to a more frequent colour are the same label
_LOSSY_CLUSTER_RADIUS = 40.0  # the same for JPEG files, whose colour noise is larger
_MAX_CENTRES = 256  # at most this many colour clusters are examined as palette candidates
UNKNOWN_DISTANCE = 64.0  # a target colour farther than this from every source colour is unknown
MAX_CLASSES = 256
_SNAP_SIZE = 2048  # label colours are snapped at up to this size, then ids are downscaled


def snap_size(max_size: int | None) -> int | None:
    """The size at which label colours are decoded and snapped, before the final downscale."""
    return None if max_size is None else max(max_size, _SNAP_SIZE)


def downscale_ids(ids: np.ndarray, max_size: int | None) -> np.ndarray:
    """Nearest-neighbour downscale of an id map so that its longest side is at most max_size."""
    return resize_nearest(ids, fit_size(*ids.shape, max_size))


@dataclass(frozen=True)
class RawLabels:
    """A decoded label file before snapping: either colours (H, W, 3) or integer values (H, W)."""

    data: np.ndarray  # (H, W, 3) uint8 colours, or (H, W) int64 values
    valid: np.ndarray  # (H, W) bool; False where fully transparent (no label drawn)
    kind: str  # "colour" | "ids" | "palette"
    palette: np.ndarray | None = None  # for "palette": (256, 3) uint8 colour of each index
    lossy: bool = False  # decoded from a lossy format (JPEG): colours are noisier


_MAX_ID_VALUE = 2**31  # .npy / grayscale label values must be integers below this in magnitude


def _decode_npy(path: Path, max_size: int | None, what: str) -> RawLabels:
    if not path.exists():
        raise InputError(f"{what} {path}: no such file")
    try:
        a = np.load(path, mmap_mode="r", allow_pickle=False)  # header first: no full read yet
    except (OSError, ValueError) as e:
        raise InputError(f"{what} {path}: not a readable .npy array ({e})") from None
    if a.ndim != 2 or a.size == 0:
        raise InputError(f"{what} {path}: expected a 2-D array of ids, got shape {a.shape}")
    if a.size > MAX_PIXELS:
        raise InputError(
            f"{what} {path}: {a.shape[1]}x{a.shape[0]} is above semia's limit of "
            f"{MAX_PIXELS / 1e6:.0f} megapixels; downscale it first"
        )
    if not (np.issubdtype(a.dtype, np.integer) or np.issubdtype(a.dtype, np.floating)
            or a.dtype == np.bool_):  # fmt: skip
        raise InputError(f"{what} {path}: expected integer label ids, got {a.dtype} values")
    a = resize_nearest(a, fit_size(*a.shape, max_size))  # reads only the sampled rows
    a = np.asarray(a)
    if np.issubdtype(a.dtype, np.floating) and not (
        np.isfinite(a).all() and np.all(np.mod(a, 1) == 0)
    ):
        raise InputError(f"{what} {path}: expected integer label ids, got {a.dtype} values")
    if a.dtype != np.bool_ and a.size and (a.max() >= _MAX_ID_VALUE or a.min() <= -_MAX_ID_VALUE):
        raise InputError(
            f"{what} {path}: label values must be integers of magnitude below 2^31, got "
            f"{a.min()}..{a.max()}"
        )
    a = a.astype(np.int64)
    return RawLabels(data=a, valid=np.ones(a.shape, bool), kind="ids")


def decode_labels(path: Path, max_size: int | None, what: str) -> RawLabels:
    """Decode a label file (image or .npy) at a longest side of at most max_size (nearest)."""
    if path.suffix.lower() == ".npy":
        return _decode_npy(path, max_size, what)
    im = open_image(path, what)
    file_format, lossless = im.format, im.info.get("lossless")
    size = fit_size(im.height, im.width, max_size)
    if size != (im.height, im.width):  # nearest in PIL first: a huge map never becomes RGBA
        im = im.resize(size[::-1], Image.Resampling.NEAREST)
    if im.mode == "P":
        idx = np.asarray(im).astype(np.int64)
        pal = np.asarray(im.getpalette() or [], dtype=np.uint8).reshape(-1, 3)
        pal = np.concatenate([pal, np.zeros((max(0, 256 - len(pal)), 3), np.uint8)])[:256]
        valid = np.ones(idx.shape, bool)
        if isinstance(im.info.get("transparency"), int):
            valid = idx != im.info["transparency"]
        return RawLabels(data=idx, valid=valid, kind="palette", palette=pal)
    if im.mode in ("1", "L", "I", "I;16", "I;16L", "I;16B", "I;16N", "F", "LA"):
        a = np.asarray(im.getchannel(0) if im.mode == "LA" else im)
        valid = np.asarray(im.getchannel("A")) > 0 if im.mode == "LA" else np.ones(a.shape, bool)
        if np.issubdtype(a.dtype, np.floating) and not np.all(np.mod(a, 1) == 0):
            raise InputError(f"{what} {path}: floating-point grayscale is not a map of label ids")
        return RawLabels(data=a.astype(np.int64), valid=valid, kind="ids")
    rgba = np.asarray(im.convert("RGBA"))
    lossy = file_format in ("JPEG", "MPO") or (file_format == "WEBP" and not lossless)
    return RawLabels(
        lossy=lossy, data=np.ascontiguousarray(rgba[..., :3]), valid=rgba[..., 3] > 0, kind="colour"
    )


# ----------------------------------------------------------------------------------------------
# Snapping


def _pack(colours: np.ndarray) -> np.ndarray:
    """(..., 3) uint8 -> (...) int64 keys."""
    c = colours.astype(np.int64)
    return (c[..., 0] << 16) | (c[..., 1] << 8) | c[..., 2]


def _unpack(keys: np.ndarray) -> np.ndarray:
    keys = np.asarray(keys, dtype=np.int64)
    return np.stack([(keys >> 16) & 255, (keys >> 8) & 255, keys & 255], axis=-1).astype(np.uint8)


def _interior(cluster: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """(H, W) bool: the pixel and its 8 neighbours (inside the image) share one cluster."""
    h, w = cluster.shape
    pad = np.pad(cluster, 1, mode="edge")
    same = valid.copy()
    for dy in (0, 1, 2):
        for dx in (0, 1, 2):
            same &= pad[dy : dy + h, dx : dx + w] == cluster
    return same


def _cluster_colours(
    keys: np.ndarray, counts: np.ndarray, anchors: np.ndarray, radius: float
) -> tuple[np.ndarray, np.ndarray]:
    """Greedy mode-seeking clustering of distinct colours around fixed anchors.

    Args:
        keys: (N,) packed distinct colours; counts: (N,) their pixel counts.
        anchors: (A,) indices into keys of colours that are surely labels (solid regions of one
            exact colour); they are never merged with each other, however close.
        radius: colours within this RGB distance of a centre join its cluster.

    Returns:
        centres: (M,) packed centre colours (anchors first, then the most frequent colour of
        each further cluster); assign: (N,) index of each colour's cluster.
    """
    colours = _unpack(keys).astype(np.float32)
    assign = np.full(len(keys), -1, np.int64)
    centres: list[int] = []
    if len(anchors):
        d = np.linalg.norm(colours[:, None, :] - colours[anchors][None], axis=2)  # (N, A)
        near = d.min(1) <= radius
        assign[near] = d[near].argmin(1)
        assign[anchors] = np.arange(len(anchors))
        centres = [int(k) for k in keys[anchors]]
    for i in np.argsort(-counts, kind="stable"):
        if assign[i] >= 0:
            continue
        if len(centres) == _MAX_CENTRES:
            break
        free = assign < 0
        d = np.linalg.norm(colours[free] - colours[i], axis=1)
        assign[np.flatnonzero(free)[d <= radius]] = len(centres)
        centres.append(int(keys[i]))
    rest = np.flatnonzero(assign < 0)
    if len(rest):
        c = _unpack(np.array(centres)).astype(np.float32)
        d = np.linalg.norm(colours[rest, None, :] - c[None], axis=2)
        assign[rest] = d.argmin(1)
    return np.array(centres, dtype=np.int64), assign


def _near_segment(p: np.ndarray, a: np.ndarray, b: np.ndarray, tol: float) -> bool:
    """Whether colour p lies within tol of the segment a-b (a blend of a and b)."""
    ab = b - a
    t = float(np.clip(np.dot(p - a, ab) / max(float(np.dot(ab, ab)), 1e-6), 0.0, 1.0))
    return float(np.linalg.norm(a + t * ab - p)) <= tol


def find_clusters(
    colours: np.ndarray, valid: np.ndarray, lossy: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Cluster the colours of a colour-coded map and measure each cluster.

    Returns:
        centres: (M, 3) uint8 centre colours, most frequent first;
        pixel_cluster: (H, W) int64 cluster of every pixel;
        counts: (M,) pixels per cluster (valid pixels only);
        interior: (M,) pixels per cluster whose 3x3 neighbourhood is all that cluster.
    """
    keys = _pack(colours)
    distinct, inverse, counts = np.unique(keys[valid], return_inverse=True, return_counts=True)
    exact = np.full(keys.shape, -1, np.int64)
    exact[valid] = inverse.ravel()
    exact_interior = np.bincount(exact[_interior(exact, valid)], minlength=len(distinct))
    solid = (exact_interior >= _min_interior(int(valid.sum()))) & (exact_interior >= 0.3 * counts)
    anchors = np.flatnonzero(solid & (not lossy))  # JPEG noise forms solid exact colours too
    anchors = anchors[np.argsort(-counts[anchors], kind="stable")]
    radius = _LOSSY_CLUSTER_RADIUS if lossy else _CLUSTER_RADIUS
    centre_keys, assign = _cluster_colours(distinct, counts, anchors, radius)
    pixel_cluster = np.full(keys.shape, -1, np.int64)
    pixel_cluster[valid] = assign[inverse.ravel()]
    m = len(centre_keys)
    cluster_counts = np.bincount(pixel_cluster[valid], minlength=m)
    inner = _interior(pixel_cluster, valid)
    interior = np.bincount(pixel_cluster[inner], minlength=m)
    return _unpack(centre_keys), pixel_cluster, cluster_counts, interior


def _min_interior(n_pixels: int) -> int:
    """Solid pixels a colour needs to count as a label: 0.02 % of the map, at least 4."""
    return max(4, round(2e-4 * n_pixels))


def palette_from_clusters(
    centres: np.ndarray, counts: np.ndarray, interior: np.ndarray, n_pixels: int
) -> np.ndarray:
    """Indices of the clusters that are real labels (solid regions), not edge blends or noise."""
    min_interior = _min_interior(n_pixels)
    keep: list[int] = []
    for i in np.argsort(-interior, kind="stable"):
        if interior[i] < min_interior:
            break
        c = centres[i].astype(np.float32)
        solid = interior[i] / max(counts[i], 1)
        if solid < 0.25 and any(
            _near_segment(c, centres[a].astype(np.float32), centres[b].astype(np.float32), 12.0)
            for j, a in enumerate(keep)
            for b in keep[j + 1 :]
        ):
            continue  # a thick blend between two real labels
        keep.append(int(i))
    return np.array(sorted(keep, key=lambda i: -counts[i]), dtype=np.int64)


def fill_from_neighbours(
    ids: np.ndarray, colours: np.ndarray | None, palette: np.ndarray | None, max_rounds: int = 64
) -> np.ndarray:
    """Give every pixel with id -1 the id of a labelled 8-neighbour, repeatedly.

    Among the labelled neighbours the one whose palette colour is closest to the pixel's own
    colour wins (so an anti-aliased edge pixel joins the side it resembles most); without colours,
    the most common neighbour id wins.
    """
    ids = ids.copy()
    h, w = ids.shape
    offsets = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if (dy, dx) != (0, 0)]
    for _ in range(max_rounds):
        todo = ids < 0
        if not todo.any():
            break
        ys, xs = np.nonzero(todo)
        cand = np.full((len(ys), 8), -1, np.int64)  # (P, 8) neighbour ids
        for j, (dy, dx) in enumerate(offsets):
            yy, xx = ys + dy, xs + dx
            inside = (yy >= 0) & (yy < h) & (xx >= 0) & (xx < w)
            cand[inside, j] = ids[yy[inside], xx[inside]]
        has = (cand >= 0).any(1)
        if not has.any():
            break
        if colours is not None and palette is not None:
            own = colours[ys, xs].astype(np.float32)  # (P, 3)
            pc = palette[np.maximum(cand, 0)].astype(np.float32)  # (P, 8, 3)
            d = np.linalg.norm(pc - own[:, None, :], axis=2)
            d[cand < 0] = np.inf
            best = cand[np.arange(len(ys)), d.argmin(1)]
        else:
            k = int(ids.max()) + 1
            votes = np.zeros((len(ys), max(k, 1)), np.int64)
            for j in range(8):
                ok = cand[:, j] >= 0
                np.add.at(votes, (np.flatnonzero(ok), cand[ok, j]), 1)
            best = votes.argmax(1)
        ids[ys[has], xs[has]] = best[has]
    return ids


def snap(colours: np.ndarray, valid: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """Snap every pixel colour to a palette id; blends are decided by their neighbours."""
    pal = palette.astype(np.float32)
    if len(pal) > 1:
        gaps = np.linalg.norm(pal[:, None] - pal[None], axis=2)
        min_gap = float(gaps[~np.eye(len(pal), dtype=bool)].min())
    else:
        min_gap = 255.0
    tol = min(40.0, 0.45 * min_gap)
    flat = colours.reshape(-1, 3).astype(np.float32)
    ids = np.empty(len(flat), np.int64)
    dist = np.empty(len(flat), np.float32)
    step = max(1, (1 << 22) // len(pal))  # chunks bound memory on huge maps
    for start in range(0, len(flat), step):
        d = np.linalg.norm(flat[start : start + step, None, :] - pal[None], axis=2)
        ids[start : start + len(d)] = d.argmin(1)
        dist[start : start + len(d)] = d.min(1)
    ids = ids.reshape(colours.shape[:2])
    unsure = (dist.reshape(colours.shape[:2]) > tol) | ~valid
    filled = fill_from_neighbours(np.where(unsure, -1, ids), colours, palette)
    return np.where(filled < 0, ids, filled)


def compact_ids(values: np.ndarray, valid: np.ndarray, path: Path, what: str):
    """Integer values -> compact ids 0..K-1 and the sorted original values."""
    distinct = np.unique(values[valid])
    if len(distinct) == 0:
        raise InputError(f"{what} {path}: every pixel is transparent; no labels drawn")
    if len(distinct) > MAX_CLASSES:
        raise InputError(
            f"{what} {path}: {len(distinct)} distinct grey values; a grayscale label map holds "
            "integer class ids (at most 256 classes). Is this a photo rather than a label map?"
        )
    ids = np.searchsorted(distinct, values).clip(0, len(distinct) - 1)
    if not valid.all():
        ids = fill_from_neighbours(np.where(valid, ids, -1), None, None)
    return ids.astype(np.int64), distinct


def default_palette(n: int) -> np.ndarray:
    """n well-separated display colours (deterministic)."""
    base = np.array(
        [
            [128, 64, 128], [244, 35, 232], [70, 70, 70], [102, 102, 156], [190, 153, 153],
            [153, 153, 153], [250, 170, 30], [220, 220, 0], [107, 142, 35], [152, 251, 152],
            [70, 130, 180], [220, 20, 60], [255, 0, 0], [0, 0, 142], [0, 0, 70],
            [0, 60, 100], [0, 80, 100], [0, 0, 230], [119, 11, 32], [0, 0, 0],
        ],
        dtype=np.uint8,
    )  # fmt: skip
    if n <= len(base):
        return base[:n].copy()
    rng = np.random.default_rng(0)
    extra = rng.integers(0, 256, size=(n - len(base), 3), dtype=np.uint8)
    return np.concatenate([base, extra])
