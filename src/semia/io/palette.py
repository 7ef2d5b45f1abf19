"""Palette inference: decoding a label file and snapping its colours to the real palette.

A colour-coded map, clean or anti-aliased or JPEG-noisy, holds a few colours that fill solid
regions (the real palette) and many blends along edges. The palette is found by clustering colours
and keeping the clusters with solid interiors; every pixel is then snapped to it, an edge pixel
taking the label of a neighbour whose colour it resembles most, so blends never become spurious
classes. Palette-mode PNGs (indices are ids), grayscale id maps and `.npy` arrays are decoded as
integer values.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from semia.errors import InputError
from semia.io.arrays import fit_size, resize_nearest
from semia.io.images import MAX_PIXELS, is_lossy, open_image

_CLUSTER_RADIUS = 24.0  # colours this close (RGB L2) to a more frequent colour are the same label
_LOSSY_CLUSTER_RADIUS = 40.0  # the same for JPEG files, whose colour noise is larger
_MAX_CENTRES = 256  # at most this many colour clusters are examined as palette candidates
UNKNOWN_DISTANCE = 64.0  # a target colour farther than this from every source colour is unknown
MAX_CLASSES = 256
log = logging.getLogger(__name__)
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
    if path.is_dir():
        raise InputError(f"{what} {path}: is a folder, expected a .npy file")
    with path.open("rb") as f:
        if f.read(6) != b"\x93NUMPY":
            raise InputError(f"{what} {path}: not a .npy array (saved with numpy.save)")
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


def transparent_share(raw: RawLabels) -> float:
    """The share of a decoded map's pixels that are fully transparent (no label drawn)."""
    return 1.0 - float(raw.valid.mean())


def decode_labels(path: Path, max_size: int | None, what: str) -> RawLabels:
    """Decode a label file (image or .npy) at a longest side of at most max_size (nearest)."""
    if path.suffix.lower() == ".npy":
        return _decode_npy(path, max_size, what)
    im = open_image(path, what)
    lossy = is_lossy(im)  # before the resize below, which drops the format
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
        if lossy:
            return _lossy_grey(a, valid, path, what)
        values, merged = unblend_ids(a.astype(np.int64), valid)
        if merged:
            log.warning(
                "%s %s: its edges hold grey values between the labels on either side, as in a "
                "smoothly resized map; %d edge pixels take those labels. Resize id maps with "
                "nearest-neighbour sampling",
                what,
                path,
                merged,
            )
        return RawLabels(data=values, valid=valid, kind="ids")
    rgba = np.asarray(im.convert("RGBA"))
    return RawLabels(
        lossy=lossy, data=np.ascontiguousarray(rgba[..., :3]), valid=rgba[..., 3] > 0, kind="colour"
    )


def _lossy_grey(a: np.ndarray, valid: np.ndarray, path: Path, what: str) -> RawLabels:
    """A JPEG grayscale map: grey levels far apart (a map drawn in greys) are read as colours,
    through the noise; small integer ids cannot be told from the noise and are refused."""
    if np.percentile(a[valid], 99) < 64:
        raise InputError(
            f"{what} {path}: a JPEG grayscale map of small values; compression changed its "
            "label ids. Save the ids losslessly (PNG or .npy)"
        )
    grey = np.repeat(np.clip(a, 0, 255).astype(np.uint8)[..., None], 3, axis=2)
    return RawLabels(data=grey, valid=valid, kind="colour", lossy=True)


_MAX_UNBLEND_VALUES = 4096  # id maps with more distinct values are not checked for smoothing


def unblend_ids(values: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, int]:
    """Undo the smoothing of a resized or anti-aliased id map, when it shows.

    A smoothed map's edges hold values between the labels on either side: values of their own
    without a solid interior, or a real label's value lining the edge (a ring of ground, 1,
    between sky, 0, and a tree, 2). It shows when at least 3 values, and 30 % of all, are such
    blends, or when labels whose values have another between them never touch directly (fewer
    such contacts than a tenth of the blend pixels), where a crisp map's do. Then each blend
    pixel takes the neighbouring label nearest in value; a crisp map (a small class with an id
    between its neighbours' is possible there) is left as it is.

    Returns:
        (values, how many pixels took another label: 0 for a crisp map).
    """
    distinct, inverse = np.unique(values[valid], return_inverse=True)
    if len(distinct) < 3 or len(distinct) > _MAX_UNBLEND_VALUES:
        return values, 0
    exact = np.full(values.shape, -1, np.int64)
    exact[valid] = inverse.ravel()
    inner = _interior(exact, valid)
    interior = np.bincount(exact[inner], minlength=len(distinct))
    solid = interior >= _min_interior(int(valid.sum()))
    if not solid.any():
        return values, 0
    h, w = values.shape
    lo = np.full(values.shape, np.iinfo(np.int64).max)
    hi = np.full(values.shape, np.iinfo(np.int64).min)
    anchor = valid & solid[np.maximum(exact, 0)]
    pad_v = np.pad(np.where(anchor, values, 0), _SMALL_REACH)
    pad_a = np.pad(anchor, _SMALL_REACH)
    for dy in range(2 * _SMALL_REACH + 1):
        for dx in range(2 * _SMALL_REACH + 1):
            v, a = pad_v[dy : dy + h, dx : dx + w], pad_a[dy : dy + h, dx : dx + w]
            lo = np.where(a, np.minimum(lo, v), lo)
            hi = np.where(a, np.maximum(hi, v), hi)
    between = valid & (lo < values) & (values < hi)
    blend = np.zeros(len(distinct), bool)
    blend[np.unique(exact[between & ~anchor])] = True
    blend &= ~solid
    # a value is a blend only if none of its pixels stands outside its neighbours' range
    blend[np.unique(exact[valid & ~anchor & ~between])] = False
    ring = anchor & ~inner & between
    todo = (valid & blend[np.maximum(exact, 0)]) | ring
    many = blend.sum() >= 3 and blend.sum() >= 0.3 * len(distinct)
    if not many and _direct_contacts(exact, valid) >= 0.1 * todo.sum():
        return values, 0
    if not todo.any():
        return values, 0
    filled = fill_from_neighbours(
        np.where(todo, -1, exact), values[..., None], distinct[:, None], max_rounds=256
    )
    out = values.copy()
    done = todo & (filled >= 0)
    out[done] = distinct[filled[done]]
    return out, int((out != values).sum())


def _direct_contacts(ranks: np.ndarray, valid: np.ndarray) -> int:
    """Pairs of 4-neighbours whose values (ranks in sorted order) have another value between."""
    count = 0
    for a, b in ((ranks[1:], ranks[:-1]), (ranks[:, 1:], ranks[:, :-1])):
        ok = (a >= 0) & (b >= 0)
        count += int((ok & (np.abs(a - b) >= 2)).sum())
    return count


# ----------------------------------------------------------------------------------------------
# Snapping


def pack_colours(colours: np.ndarray) -> np.ndarray:
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
        interior: (M,) pixels per cluster whose 3x3 neighbourhood is all that cluster;
        exact_centre: (M,) pixels of exactly each centre colour.
    """
    keys = pack_colours(colours)
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
    exact_centre = counts[np.searchsorted(distinct, centre_keys)]
    return _unpack(centre_keys), pixel_cluster, cluster_counts, interior, exact_centre


def _min_interior(n_pixels: int) -> int:
    """Solid pixels a colour needs to count as a label: 0.02 % of the map, at least 4."""
    return max(4, round(2e-4 * n_pixels))


def palette_from_clusters(
    centres: np.ndarray,
    counts: np.ndarray,
    interior: np.ndarray,
    n_pixels: int,
    pixel_cluster: np.ndarray | None = None,
    exact_centre: np.ndarray | None = None,
    lossy: bool = False,
) -> np.ndarray:
    """Indices of the clusters that are real labels (solid regions), not edge blends or noise.

    With `pixel_cluster` and `exact_centre` (a lossless map), a cluster too small to have a
    solid interior (a traffic light of a few pixels, a 2-px stroke) is a label too when most of
    its pixels are one exact colour and that colour is no blend of the labels around it
    (`small_labels`).
    """
    keep = _solid_labels(centres, counts, interior, n_pixels)
    if pixel_cluster is not None and exact_centre is not None and not lossy:
        flat = (exact_centre >= _SMALL_MIN_PIXELS) & (exact_centre >= 0.5 * counts)
        keep = np.concatenate([keep, small_labels(centres, counts, pixel_cluster, keep, flat)])
    return np.array(sorted(keep.tolist(), key=lambda i: -counts[i]), dtype=np.int64)


_SMALL_MIN_PIXELS = 4  # a label without a solid interior needs at least this many pixels
_SMALL_REACH = 3  # px: the labels around a small cluster are looked for this far from it
_BLEND_TOL = 12.0  # RGB distance within which a colour counts as a mix of the colours around it


def small_labels(
    centres: np.ndarray,
    counts: np.ndarray,
    pixel_cluster: np.ndarray,
    keep: np.ndarray,
    flat: np.ndarray,
) -> np.ndarray:
    """Clusters without a solid interior that are labels all the same, most pixels first.

    Only clusters marked `flat` (mostly one exact colour: resampling noise and blends spread
    over many) are examined. An anti-aliased or resized edge mixes the colours on either side
    of it (three at a junction), in sRGB or in linear light; a flat cluster whose colour is no
    such mix of the labels within a few pixels of it is a small object or a thin stroke.
    """
    kept = [int(i) for i in keep]
    found: list[int] = []
    h, w = pixel_cluster.shape
    pixels = pixel_cluster.ravel()
    by_cluster = np.argsort(pixels, kind="stable")  # pixel indices grouped by cluster
    starts = np.searchsorted(pixels[by_cluster], np.arange(len(counts)))
    reach = np.arange(-_SMALL_REACH, _SMALL_REACH + 1)
    for i in np.argsort(-counts, kind="stable"):
        i = int(i)
        if i in kept or not flat[i]:
            continue
        ys, xs = np.divmod(by_cluster[starts[i] : starts[i] + counts[i]], w)
        yy = np.clip(ys[:, None, None] + reach[None, :, None], 0, h - 1)
        xx = np.clip(xs[:, None, None] + reach[None, None, :], 0, w - 1)
        around = [int(c) for c in np.unique(pixel_cluster[yy, xx]) if int(c) in kept]
        border = ys.min() == 0 or xs.min() == 0 or ys.max() == h - 1 or xs.max() == w - 1
        others = [c for c in kept if c not in around] if border else []
        if not _is_mix(centres[i], centres[around], centres[others]):
            found.append(i)
            kept.append(i)  # the blends along its own edge mix it with its neighbours
    return np.array(found, dtype=np.int64)


def _srgb_to_linear(c: np.ndarray) -> np.ndarray:
    c = c.astype(np.float32) / 255.0
    return 255.0 * np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def _is_mix(colour: np.ndarray, around: np.ndarray, others: np.ndarray) -> bool:
    """Whether colour lies within _BLEND_TOL of a mix, in sRGB or in linear light, of one, two
    or three colours of around, or of one of around with one of others (for a cluster on the
    map's border, the labels farther away: a map cut or wrapped there mixes a label that is not
    beside the blend)."""
    if len(around) == 0:
        return False
    for conv in (lambda c: c.astype(np.float32), _srgb_to_linear):
        p, pts, far = conv(colour), conv(around), conv(others)
        n = len(pts)
        for a in range(n):
            if np.linalg.norm(pts[a] - p) <= _BLEND_TOL:
                return True
            if any(_near_segment(p, pts[a], f, _BLEND_TOL) for f in far):
                return True
            for b in range(a + 1, n):
                if _near_segment(p, pts[a], pts[b], _BLEND_TOL):
                    return True
                for c in range(b + 1, n):
                    if _near_triangle(p, pts[a], pts[b], pts[c], _BLEND_TOL):
                        return True
    return False


def _near_triangle(p: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray, tol: float) -> bool:
    """Whether colour p lies within tol of the triangle a-b-c (a mix of three colours)."""
    ab, ac, ap = b - a, c - a, p - a
    m = np.array([[ab @ ab, ab @ ac], [ab @ ac, ac @ ac]], np.float64)
    if abs(np.linalg.det(m)) < 1e-6:
        return False  # degenerate: the segments were tested already
    u, v = np.linalg.solve(m, np.array([ap @ ab, ap @ ac], np.float64))
    if u < 0 or v < 0 or u + v > 1:
        return False  # outside: nearest on an edge, tested as a segment already
    return float(np.linalg.norm(a + u * ab + v * ac - p)) <= tol


def _solid_labels(
    centres: np.ndarray, counts: np.ndarray, interior: np.ndarray, n_pixels: int
) -> np.ndarray:
    """The clusters with solid interiors that are no thick blend of two others."""
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
    return np.array(keep, dtype=np.int64)


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
