"""Scribbles: a few strokes per region, as an integer map of stroke classes and their colours.

A scribble image is drawn by a user in any paint program: strokes in distinct colours on a
transparent or white background. Brushes anti-alias their edges, so stroke pixels are blends of
the stroke colour with the background or with another stroke; `read_scribbles` finds the solid
stroke colours and snaps every stroke pixel to one of them (or drops it as background).

`demo_scribbles` draws such strokes automatically inside the regions of a known label map, the
way a user would (short strokes away from the boundaries); the benchmark and the demo use it.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import NamedTuple

import numpy as np
from scipy import ndimage

from semia.errors import InputError
from semia.io import LabelMap
from semia.io.images import is_lossy, open_image

log = logging.getLogger(__name__)

_BACKGROUND_WHITE = 245  # an opaque pixel with every channel >= this is white background
_MIN_ALPHA = 128  # pixels less opaque than this are background (anti-aliased stroke edges)
_CLUSTER_RADIUS = 40.0  # stroke colours within this RGB distance are one stroke colour
_BLEND_TOLERANCE = 24.0  # a pixel this close to a blend of two known colours is a blend
_MIN_SOLID = 3  # a stroke colour needs this many pixels whose 3x3 neighbourhood is all it
_MIN_STRAY = 12  # unexplained pixels in a component at least this big make a stroke colour
_MAX_STROKE_CLASSES = 256
_LOSSY_WHITE = 48.0  # in a JPEG, a pixel this close (RGB) to white is background
_LOSSY_FRINGE = 3  # px around a JPEG stroke where off-blend colours are its chroma fringe


class Scribbles(NamedTuple):
    """Strokes on an image.

    Attributes:
        ids: (H, W) int64 array; the stroke class of each pixel in 0..K-1, or -1 where no stroke
            was drawn.
        palette: (K, 3) uint8 array, the colour of each stroke class.
    """

    ids: np.ndarray
    palette: np.ndarray

    @property
    def num_classes(self) -> int:
        return int(self.palette.shape[0])

    def to_rgba(self) -> np.ndarray:
        """(H, W, 4) uint8 rendering: stroke colours, transparent elsewhere."""
        rgba = np.zeros((*self.ids.shape, 4), np.uint8)
        drawn = self.ids >= 0
        rgba[drawn, :3] = self.palette[self.ids[drawn]]
        rgba[drawn, 3] = 255
        return rgba

    def resized(self, size: tuple[int, int]) -> Scribbles:
        """The strokes at another (height, width) (nearest sampling; thin strokes are kept)."""
        height, width = self.ids.shape
        if (height, width) == tuple(size):
            return self
        if size[0] * size[1] < height * width:  # downscaling: keep every stroke visible
            return Scribbles(_downscale_strokes(self.ids, size, self.num_classes), self.palette)
        rows = np.minimum(
            ((np.arange(size[0]) + 0.5) * height / size[0]).astype(np.int64), height - 1
        )
        cols = np.minimum(
            ((np.arange(size[1]) + 0.5) * width / size[1]).astype(np.int64), width - 1
        )
        return Scribbles(self.ids[rows[:, None], cols[None, :]], self.palette)


def _downscale_strokes(ids: np.ndarray, size: tuple[int, int], num_classes: int) -> np.ndarray:
    """Downscale a stroke map by majority vote of the strokes in each output cell."""
    height, width = ids.shape
    rows = np.minimum((np.arange(height) * size[0] / height).astype(np.int64), size[0] - 1)
    cols = np.minimum((np.arange(width) * size[1] / width).astype(np.int64), size[1] - 1)
    cell = rows[:, None] * size[1] + cols[None, :]  # (H, W) output cell of each input pixel
    drawn = ids >= 0
    votes = np.zeros((size[0] * size[1], num_classes + 1), np.int64)  # column 0: no stroke
    np.add.at(votes, (cell[drawn], ids[drawn] + 1), 1)
    has = votes[:, 1:].sum(1) > 0
    out = np.full(size[0] * size[1], -1, np.int64)
    out[has] = votes[has, 1:].argmax(1)
    return out.reshape(size)


# ----------------------------------------------------------------------------------------------
# Reading a scribble image


def _open_rgba(path: Path) -> tuple[np.ndarray, bool]:
    """Decode any image file to (H, W, 4) uint8 RGBA (EXIF orientation applied), and whether
    its format is lossy."""
    im = open_image(path, "scribbles")
    lossy = is_lossy(im)
    if im.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        im = im.point(lambda v: v / 256).convert("L")
    return np.asarray(im.convert("RGBA")), lossy


def read_scribbles(path: str | Path) -> Scribbles:
    """Read a scribble image: strokes in distinct colours on a transparent or white background.

    Args:
        path: PNG (or any image) with the strokes. Anti-aliased stroke edges are snapped to the
            nearest stroke colour or dropped; JPEG noise is tolerated.

    Returns:
        `Scribbles`; classes are ordered by decreasing stroke area.

    Raises:
        InputError: unreadable file, no strokes, or a stroke colour that is not solid anywhere
            (only blended pixels: a too thin or too soft brush).
    """
    path = Path(path)
    rgba, lossy = _open_rgba(path)
    return scribbles_from_rgba(rgba, name=f"scribbles {path}", lossy=lossy)


def scribbles_from_rgba(
    rgba: np.ndarray, name: str = "scribbles", lossy: bool = False
) -> Scribbles:
    """Snap a drawn stroke image to stroke classes (see `read_scribbles`).

    Args:
        rgba: (H, W, 4) or (H, W, 3) uint8 image of the strokes.
        name: how error messages name the input.
        lossy: decoded from a lossy format (JPEG): its colour is stored at half resolution, so
            a stroke's edge mixes its brightness and its colour with the background's in
            different shares, off every blend of the two; such pixels within
            `_LOSSY_FRINGE` px of a solid stroke are its fringe, not a stroke of their own.
    """
    rgba = np.asarray(rgba)
    if rgba.ndim != 3 or rgba.shape[2] not in (3, 4) or rgba.dtype != np.uint8:
        raise InputError(f"{name}: expected an (H, W, 3|4) uint8 image, got {rgba.shape}")
    if rgba.shape[2] == 3:
        rgba = np.concatenate([rgba, np.full((*rgba.shape[:2], 1), 255, np.uint8)], axis=2)
    rgb = rgba[..., :3].astype(np.float32)
    alpha = rgba[..., 3]
    transparent_background = (alpha < 255).mean() > 0.05
    if transparent_background:
        stroke = alpha >= _MIN_ALPHA
        background = np.array([[255.0, 255.0, 255.0], [0.0, 0.0, 0.0]], np.float32)
    else:
        stroke = rgba[..., :3].min(axis=2) < _BACKGROUND_WHITE
        if lossy:  # JPEG rings: near-white halos around the strokes are background too
            stroke &= np.linalg.norm(rgb - 255.0, axis=2) > _LOSSY_WHITE
        background = np.array([[255.0, 255.0, 255.0]], np.float32)
    if not stroke.any():
        raise InputError(
            f"{name}: no strokes found; draw a few strokes per region in distinct colours on a "
            "transparent or white background"
        )
    palette = _solid_colours(rgb, stroke)
    if len(palette) == 0:
        raise InputError(
            f"{name}: no stroke colour is solid anywhere (every stroke pixel is a blend); "
            "draw with a hard brush at least 3 pixels wide"
        )
    if len(palette) > _MAX_STROKE_CLASSES:
        raise InputError(f"{name}: more than {_MAX_STROKE_CLASSES} stroke colours found")
    ids, unexplained = _snap_strokes(rgb, stroke, palette.astype(np.float32), background)
    if lossy and unexplained.any():
        fringe = ndimage.binary_dilation(ids >= 0, np.ones((3, 3), bool), _LOSSY_FRINGE)
        unexplained &= ~fringe
    _check_unexplained(unexplained, rgb, name, lossy)
    order = np.argsort(-np.bincount(ids[ids >= 0], minlength=len(palette)), kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    ids = np.where(ids >= 0, rank[np.maximum(ids, 0)], -1)
    return Scribbles(ids=ids, palette=palette[order])


def _solid_colours(rgb: np.ndarray, stroke: np.ndarray) -> np.ndarray:
    """(K, 3) uint8: the stroke colours that fill at least a few 3x3 neighbourhoods.

    Colours are clustered greedily (most frequent first, radius `_CLUSTER_RADIUS`) so that JPEG
    noise does not split a stroke colour; a cluster is a stroke colour when at least
    `_MIN_SOLID` of its pixels have all 8 neighbours in the same cluster.
    """
    colours = rgb[stroke].round().astype(np.int64)  # (N, 3)
    keys = (colours[:, 0] << 16) | (colours[:, 1] << 8) | colours[:, 2]
    distinct, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
    values = np.stack([distinct >> 16, (distinct >> 8) & 255, distinct & 255], 1).astype(np.float32)
    assign = np.full(len(distinct), -1, np.int64)
    centres: list[np.ndarray] = []
    for i in np.argsort(-counts, kind="stable"):
        if assign[i] >= 0:
            continue
        free = np.flatnonzero(assign < 0)
        near = np.linalg.norm(values[free] - values[i], axis=1) <= _CLUSTER_RADIUS
        assign[free[near]] = len(centres)
        centres.append(values[i])
        if len(centres) > 4 * _MAX_STROKE_CLASSES:
            break
    cluster = np.full(stroke.shape, -1, np.int64)
    cluster[stroke] = assign[inverse.ravel()]
    height, width = stroke.shape
    padded = np.pad(cluster, 1, constant_values=-1)
    same = cluster >= 0
    for dy in range(3):
        for dx in range(3):
            same &= padded[dy : dy + height, dx : dx + width] == cluster
    solid = np.bincount(cluster[same], minlength=len(centres))
    keep = np.flatnonzero(solid >= _MIN_SOLID)
    if len(keep) == 0:
        return np.zeros((0, 3), np.uint8)
    return np.stack([centres[k] for k in keep]).round().astype(np.uint8)


def _snap_strokes(
    rgb: np.ndarray, stroke: np.ndarray, palette: np.ndarray, background: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Give each stroke pixel the class of its stroke colour.

    A pixel near a stroke colour takes it; a blend of a stroke colour with the background takes
    that stroke colour when it is at least half of it (else it is background); a blend of two
    stroke colours takes the nearer one.

    Returns:
        ids: (H, W) int64 stroke class or -1; unexplained: (H, W) bool, stroke pixels that are
        neither a stroke colour nor a blend (an unknown colour).
    """
    pixels = rgb[stroke]  # (N, 3)
    d = np.linalg.norm(pixels[:, None, :] - palette[None], axis=2)  # (N, K)
    nearest = d.argmin(1)
    label = np.where(d.min(1) <= _CLUSTER_RADIUS, nearest, -2)  # -2: not yet explained
    todo = np.flatnonzero(label == -2)
    if len(todo):
        p = pixels[todo]  # (M, 3)
        best = np.full(len(todo), np.inf, np.float32)
        best_label = np.full(len(todo), -2, np.int64)
        ends = [(k, b, True) for k in range(len(palette)) for b in background]
        ends += [(k, palette[j], False) for k in range(len(palette)) for j in range(len(palette))]
        for k, other, with_background in ends:
            a = palette[k]
            ab = other - a
            length = max(float(ab @ ab), 1e-6)
            t = np.clip((p - a) @ ab / length, 0.0, 1.0)  # 0 at the stroke colour
            dist = np.linalg.norm(a + t[:, None] * ab - p, axis=1)
            # a mostly-background blend is no stroke (-1); between two strokes the nearer end
            # wins (-3: the other end, found when that end is k)
            cls = np.where(t <= 0.5, k, -1 if with_background else -3)
            better = (dist <= _BLEND_TOLERANCE) & (dist < best) & (cls != -3)
            best[better] = dist[better]
            best_label[better] = cls[better]
        label[todo] = best_label
    ids = np.full(stroke.shape, -1, np.int64)
    unexplained = np.zeros(stroke.shape, bool)
    ids[stroke] = np.where(label >= 0, label, -1)
    unexplained[stroke] = label == -2
    return ids, unexplained


def _check_unexplained(unexplained: np.ndarray, rgb: np.ndarray, name: str, lossy: bool) -> None:
    """Raise when unknown-colour stroke pixels form a stroke (not a few stray pixels)."""
    if not unexplained.any():
        return
    components, count = ndimage.label(unexplained, structure=np.ones((3, 3)))
    sizes = np.bincount(components.ravel(), minlength=count + 1)
    sizes[0] = 0
    largest = int(sizes.argmax())
    if sizes[largest] < _MIN_STRAY:
        log.info("%s: %d stray pixels of unknown colour ignored", name, int(unexplained.sum()))
        return
    ys, xs = np.nonzero(components == largest)
    strongest = np.linalg.norm(rgb[ys, xs] - 255.0, axis=1).argmax()  # least faded pixel
    r, g, b = (int(v) for v in rgb[ys[strongest], xs[strongest]])
    raise InputError(
        f"{name}: the stroke colour #{r:02x}{g:02x}{b:02x} near x={int(xs.mean())}, "
        f"y={int(ys.mean())} is not solid anywhere (only blended or soft pixels); "
        + (
            "JPEG smears stroke colours: save the strokes as PNG, or draw them wider"
            if lossy
            else "redraw it with a hard brush at least 3 pixels wide, or erase it"
        )
    )


# ----------------------------------------------------------------------------------------------
# Strokes from a known label map


def demo_scribbles(
    labels: LabelMap | np.ndarray,
    *,
    dense: bool = True,
    budget: float = 0.02,
    seed: int = 0,
) -> Scribbles:
    """Draw strokes inside the regions of a known label map, as a user would.

    Strokes are short, slightly curved lines kept away from region boundaries and the image
    border.

    Args:
        labels: the true map, a `LabelMap` or (H, W) int ids in 0..K-1.
        dense: True: strokes in every region (connected component) of at least 0.05 % of the
            image, then more strokes in the large regions until `budget` is drawn; False: one
            stroke per class (in its largest region).
        budget: the largest share of the pixels the dense setting draws (every class still gets
            one stroke).
        seed: random seed for the stroke positions and directions.

    Returns:
        `Scribbles` with the palette of `labels` (a class absent from `labels` gets no stroke).
    """
    ids = labels.ids if isinstance(labels, LabelMap) else np.asarray(labels, np.int64)
    num_classes = labels.num_classes if isinstance(labels, LabelMap) else int(ids.max()) + 1
    palette = labels.palette if isinstance(labels, LabelMap) else _demo_palette(num_classes)
    rng = np.random.default_rng(seed)
    height, width = ids.shape
    side = min(height, width)
    radius = 1 if side >= 64 else 0  # strokes are 2r+1 pixels wide
    margin = radius + max(2, round(0.03 * side))
    length = round((0.1 if dense else 0.2) * side)
    strokes = np.full(ids.shape, -1, np.int64)
    regions: list[tuple[int, np.ndarray, int]] = []  # (class, distance map, area)
    for k in range(num_classes):
        mask = ids == k
        if not mask.any():
            continue
        components, count = ndimage.label(mask)
        sizes = np.bincount(components.ravel(), minlength=count + 1)[1:]
        for rank, c in enumerate(np.argsort(-sizes)):
            if rank > 0 and not (dense and sizes[c] >= 5e-4 * ids.size):
                break
            region = np.pad(components == c + 1, 1)  # the image border is a boundary too
            dist = ndimage.distance_transform_edt(region)[1:-1, 1:-1]
            regions.append((k, dist, int(sizes[c])))
    limit = budget * ids.size
    stroked: set[int] = set()
    for k, dist, _ in regions:  # a stroke in each region (each class's largest region first)
        stroke = _stroke(k, dist, margin, radius, length, rng, central=not dense)
        new = int((stroke & (strokes < 0)).sum())
        if k not in stroked or (strokes >= 0).sum() + new <= limit:  # one per class at least
            strokes[stroke] = k
            stroked.add(k)
    if dense:
        areas = np.array([area for _, _, area in regions], np.float64)
        while True:
            k, dist, _ = regions[rng.choice(len(regions), p=areas / areas.sum())]
            stroke = _stroke(k, dist, margin, radius, length, rng, central=False)
            if (strokes >= 0).sum() + (stroke & (strokes < 0)).sum() > limit:
                break
            strokes[stroke] = k
    return Scribbles(ids=strokes, palette=np.asarray(palette, np.uint8))


def _demo_palette(num_classes: int) -> np.ndarray:
    hues = np.arange(num_classes) / max(num_classes, 1)
    import colorsys

    return np.array(
        [[round(255 * c) for c in colorsys.hsv_to_rgb(h, 0.8, 0.9)] for h in hues], np.uint8
    )


def _stroke(
    k: int,
    dist: np.ndarray,
    margin: int,
    radius: int,
    length: int,
    rng: np.random.Generator,
    central: bool,
) -> np.ndarray:
    """Draw one stroke of class k inside the region whose distance map is `dist`.

    The stroke starts at a random interior point (the most interior one when `central`), heads
    in a random direction that turns a little at each step, and ends where it would come
    closer than `margin` to the boundary (both ways from the start). Narrow regions get a
    thinner margin. Returns the (H, W) bool mask of the stroke.
    """
    deepest = float(dist.max())
    margin_here = min(float(margin), max(deepest - 1.0, 0.0) * 0.7)
    radius = min(radius, max(0, int(deepest - 1)))
    inside = dist > margin_here
    if central or not inside.any():
        start = np.unravel_index(int(dist.argmax()), dist.shape)
    else:
        ys, xs = np.nonzero(inside)
        i = int(rng.integers(len(ys)))
        start = (ys[i], xs[i])
    angle = float(rng.uniform(0, 2 * np.pi))
    points = [np.array(start, np.float64)]
    for direction in (1.0, -1.0):
        p = np.array(start, np.float64)
        heading = angle if direction > 0 else angle + np.pi
        for _ in range(length // 2):
            heading += float(rng.normal(0, 0.08))
            q = p + np.array([np.sin(heading), np.cos(heading)])
            y, x = round(q[0]), round(q[1])
            if not (0 <= y < dist.shape[0] and 0 <= x < dist.shape[1]) or not inside[y, x]:
                break
            p = q
            points.append(p)
    stroke = np.zeros(dist.shape, bool)
    for y, x in np.array(points).round().astype(np.int64):
        y0, y1 = max(0, y - radius), y + radius + 1
        x0, x1 = max(0, x - radius), x + radius + 1
        stroke[y0:y1, x0:x1] = True
    return stroke & (dist > 0)
