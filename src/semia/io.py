"""Reading and writing images and label maps, robust to what users really have.

Images come back as float32 arrays (H, W, 3) in [0, 1]; label maps as a `LabelMap` of integer ids
0..K-1 with a colour palette. Label maps are read from

- colour-coded RGB / RGBA images, clean or anti-aliased or JPEG-noisy: the real palette is found
  (the few colours that fill solid regions) and every pixel is snapped to it; edge pixels whose
  colour is a blend are given the label of a neighbour instead of becoming a spurious class;
- palette-mode ("P") images: palette indices are the ids, the palette gives the colours;
- grayscale images of integer ids (as Cityscapes-style datasets ship them) and ``.npy`` arrays.

A target map is read against the source's `LabelMap` (same palette and ids). Every failure is a
`InputError` (a ValueError) whose message names the file and says what to do.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps, UnidentifiedImageError

log = logging.getLogger(__name__)

Image.MAX_IMAGE_PIXELS = 400_000_000  # ~20000 x 20000; beyond that PIL refuses (decompression bomb)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp")
LABEL_SUFFIXES = (*IMAGE_SUFFIXES, ".npy")

_CLUSTER_RADIUS = 24.0  # colours this close (RGB L2) to a more frequent colour are the same label
_LOSSY_CLUSTER_RADIUS = 40.0  # the same for JPEG files, whose colour noise is larger
_MAX_CENTRES = 256  # at most this many colour clusters are examined as palette candidates
_UNKNOWN_DISTANCE = 64.0  # a target colour farther than this from every source colour is unknown
_MAX_CLASSES = 256
_SNAP_SIZE = 2048  # label colours are snapped at up to this size, then ids are downscaled


class InputError(ValueError):
    """A user input (file or array) that cannot be used; the message says why and what to do."""


@dataclass(frozen=True)
class LabelMap:
    """A semantic label map.

    Attributes:
        ids: (H, W) int64 array of class ids in 0..K-1.
        palette: (K, 3) uint8 array, the display colour of each id (for colour-coded maps, the
            colour found in the file).
        values: for maps read as integer ids (grayscale, palette PNG, .npy), the original value of
            each id in the file; None for colour-coded maps.
        kind: "colour" (colour-coded), "palette" (palette-mode PNG, indices are ids) or "ids"
            (grayscale / .npy integer ids); targets are matched by colour for the first two and
            by value for the last two.
        names: optional class names, one per id (shown by `describe`).
    """

    ids: np.ndarray
    palette: np.ndarray
    values: tuple[int, ...] | None = None
    kind: str = "colour"  # how the file coded labels: "colour" | "palette" | "ids"
    names: tuple[str, ...] | None = None  # optional class names, one per id

    @property
    def num_classes(self) -> int:
        return int(self.palette.shape[0])

    @property
    def size(self) -> tuple[int, int]:
        """(height, width)."""
        return int(self.ids.shape[0]), int(self.ids.shape[1])

    def to_rgb(self) -> np.ndarray:
        """(H, W, 3) uint8 colour rendering."""
        return self.palette[self.ids]

    def counts(self) -> np.ndarray:
        """(K,) pixel count of each id."""
        return np.bincount(self.ids.ravel(), minlength=self.num_classes)

    def with_ids(self, ids: np.ndarray) -> LabelMap:
        """The same palette with other ids (e.g. a resized or edited map)."""
        return dataclasses.replace(self, ids=ids.astype(np.int64))

    def describe(self) -> str:
        """One label per line: id, original value or colour, pixel share."""
        counts = self.counts()
        total = max(int(counts.sum()), 1)
        lines = []
        for k in range(self.num_classes):
            r, g, b = (int(c) for c in self.palette[k])
            value = f"  value {self.values[k]:>5}" if self.values is not None else ""
            name = f"  {self.names[k]}" if self.names is not None else ""
            lines.append(
                f"{k:>3}  #{r:02x}{g:02x}{b:02x} ({r:>3},{g:>3},{b:>3}){value}"
                f"  {100 * counts[k] / total:6.2f} %{name}"
            )
        return "\n".join(lines)


# ----------------------------------------------------------------------------------------------
# Decoding


def _open(path: str | Path, what: str) -> Image.Image:
    """Open and fully decode an image file, EXIF orientation applied."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{what} {path}: no such file")
    if path.is_dir():
        raise InputError(f"{what} {path}: is a folder, expected an image file")
    if path.stat().st_size == 0:
        raise InputError(f"{what} {path}: the file is empty")
    try:
        im = Image.open(path)
        im.load()
        file_format = im.format
        im = ImageOps.exif_transpose(im)
        im.format = file_format  # exif_transpose returns a copy without it
    except Image.DecompressionBombError as e:
        raise InputError(
            f"{what} {path}: the image is too large to read safely ({e}); downscale it first"
        ) from None
    except UnidentifiedImageError:
        raise InputError(
            f"{what} {path}: not a readable image (supported: {', '.join(IMAGE_SUFFIXES)})"
        ) from None
    except (OSError, SyntaxError, ValueError) as e:
        raise InputError(f"{what} {path}: the file is damaged or truncated ({e})") from None
    if im.width == 0 or im.height == 0:
        raise InputError(f"{what} {path}: the image has no pixels")
    return im


def file_size(path: str | Path, what: str = "image") -> tuple[int, int]:
    """(height, width) of an image or .npy file as it will be read (EXIF rotation applied),
    without decoding the pixels."""
    path = Path(path)
    if path.suffix.lower() == ".npy" and path.exists():
        try:
            shape = np.load(path, mmap_mode="r", allow_pickle=False).shape
        except (OSError, ValueError) as e:
            raise InputError(f"{what} {path}: not a readable .npy array ({e})") from None
        return (int(shape[0]), int(shape[1])) if len(shape) == 2 else (0, 0)
    if not path.is_file() or path.stat().st_size == 0:
        return _open(path, what).size[::-1]  # raises the right message
    try:
        with Image.open(path) as im:
            width, height = im.size
            if im.getexif().get(0x0112, 1) in (5, 6, 7, 8):  # EXIF orientation: rotated 90 deg
                width, height = height, width
    except (OSError, SyntaxError, ValueError):
        return _open(path, what).size[::-1]  # raises the right message
    return height, width


def _snap_size(max_size: int | None) -> int | None:
    """The size at which label colours are decoded and snapped, before the final downscale."""
    return None if max_size is None else max(max_size, _SNAP_SIZE)


def _downscale_ids(ids: np.ndarray, max_size: int | None) -> np.ndarray:
    return resize_nearest(ids, _fit_size(*ids.shape, max_size))


def _fit_size(height: int, width: int, max_size: int | None) -> tuple[int, int]:
    """The size after downscaling so that the longest side is at most max_size."""
    if max_size is None or max(height, width) <= max_size:
        return height, width
    scale = max_size / max(height, width)
    return max(1, round(height * scale)), max(1, round(width * scale))


def _resize_image(array: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Antialiased bicubic resize of a (H, W, C) float array in [0, 1]."""
    if array.shape[:2] == size:
        return array
    t = torch.from_numpy(np.ascontiguousarray(array)).permute(2, 0, 1)[None]  # (1, C, H, W)
    t = F.interpolate(t, size=size, mode="bicubic", antialias=True, align_corners=False)
    return t[0].permute(1, 2, 0).clamp_(0, 1).numpy()


def resize_nearest(array: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of a (H, W) or (H, W, C) array (pixel centres, exact values)."""
    height, width = array.shape[:2]
    if (height, width) == tuple(size):
        return array
    rows = np.minimum(((np.arange(size[0]) + 0.5) * height / size[0]).astype(np.int64), height - 1)
    cols = np.minimum(((np.arange(size[1]) + 0.5) * width / size[1]).astype(np.int64), width - 1)
    return array[rows[:, None], cols[None, :]]


def _image_to_float(im: Image.Image, path: Path) -> np.ndarray:
    """Any PIL mode -> (H, W, 3) float32 in [0, 1]. Transparency is composited over white."""
    mode = im.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        a = np.asarray(im).astype(np.float32)
        a = a / (65535.0 if mode.startswith("I;16") or a.max() > 255 else 255.0)
        return np.repeat(np.clip(a, 0, 1)[..., None], 3, axis=2)
    if mode == "F":
        a = np.asarray(im).astype(np.float32)
        a = a / 255.0 if a.max() > 1.0 else a
        return np.repeat(np.clip(a, 0, 1)[..., None], 3, axis=2)
    has_alpha = mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in im.info)
    if has_alpha:
        rgba = np.asarray(im.convert("RGBA")).astype(np.float32) / 255.0
        alpha = rgba[..., 3:]
        if alpha.min() < 1.0:
            log.info("%s: transparent pixels composited over white", path)
        return rgba[..., :3] * alpha + (1.0 - alpha)
    return np.asarray(im.convert("RGB")).astype(np.float32) / 255.0


def read_image(path: str | Path, max_size: int | None = None) -> np.ndarray:
    """Read a photo.

    PNG, JPEG, WebP, TIFF, BMP; RGB, RGBA / LA (alpha composited over white), grayscale, 16-bit,
    palette; EXIF orientation applied.

    Args:
        path: image file.
        max_size: if given, images whose longest side exceeds it are downscaled (antialiased
            bicubic) to that longest side.

    Returns:
        (H, W, 3) float32 array in [0, 1].
    """
    path = Path(path)
    im = _open(path, "image")
    array = _image_to_float(im, path)
    size = _fit_size(*array.shape[:2], max_size)
    if size != array.shape[:2]:
        log.info("%s: downscaled from %dx%d to %dx%d", path, im.width, im.height, size[1], size[0])
    return _resize_image(array, size)


# ----------------------------------------------------------------------------------------------
# Label maps: decoding into colours or integer values


@dataclass(frozen=True)
class _RawLabels:
    """A decoded label file before snapping: either colours (H, W, 3) or integer values (H, W)."""

    data: np.ndarray  # (H, W, 3) uint8 colours, or (H, W) int64 values
    valid: np.ndarray  # (H, W) bool; False where fully transparent (no label drawn)
    kind: str  # "colour" | "ids" | "palette"
    palette: np.ndarray | None = None  # for "palette": (256, 3) uint8 colour of each index
    lossy: bool = False  # decoded from a lossy format (JPEG): colours are noisier


def _decode_labels(path: Path, max_size: int | None, what: str) -> _RawLabels:
    if path.suffix.lower() == ".npy":
        if not path.exists():
            raise InputError(f"{what} {path}: no such file")
        try:
            a = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as e:
            raise InputError(f"{what} {path}: not a readable .npy array ({e})") from None
        if a.ndim != 2 or a.size == 0:
            raise InputError(f"{what} {path}: expected a 2-D array of ids, got shape {a.shape}")
        integral = np.issubdtype(a.dtype, np.floating) and np.all(np.mod(a, 1) == 0)
        if not (np.issubdtype(a.dtype, np.integer) or integral):
            raise InputError(f"{what} {path}: expected integer label ids, got {a.dtype} values")
        a = a.astype(np.int64)
        a = resize_nearest(a, _fit_size(*a.shape, max_size))
        return _RawLabels(data=a, valid=np.ones(a.shape, bool), kind="ids")

    im = _open(path, what)
    size = _fit_size(im.height, im.width, max_size)
    if im.mode == "P":
        idx = np.asarray(im).astype(np.int64)
        pal = np.asarray(im.getpalette() or [], dtype=np.uint8).reshape(-1, 3)
        pal = np.concatenate([pal, np.zeros((max(0, 256 - len(pal)), 3), np.uint8)])[:256]
        valid = np.ones(idx.shape, bool)
        if isinstance(im.info.get("transparency"), int):
            valid = idx != im.info["transparency"]
        return _RawLabels(
            data=resize_nearest(idx, size),
            valid=resize_nearest(valid, size),
            kind="palette",
            palette=pal,
        )
    if im.mode in ("1", "L", "I", "I;16", "I;16L", "I;16B", "I;16N", "F", "LA"):
        a = np.asarray(im.getchannel(0) if im.mode == "LA" else im)
        valid = np.asarray(im.getchannel("A")) > 0 if im.mode == "LA" else np.ones(a.shape, bool)
        if np.issubdtype(a.dtype, np.floating) and not np.all(np.mod(a, 1) == 0):
            raise InputError(f"{what} {path}: floating-point grayscale is not a map of label ids")
        return _RawLabels(
            data=resize_nearest(a.astype(np.int64), size),
            valid=resize_nearest(valid, size),
            kind="ids",
        )
    rgba = np.asarray(im.convert("RGBA"))
    rgba = resize_nearest(rgba, size)
    lossy = im.format in ("JPEG", "MPO") or (im.format == "WEBP" and not im.info.get("lossless"))
    return _RawLabels(
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


def _find_clusters(
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


def _palette_from_clusters(
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


def _fill_from_neighbours(
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


def _snap(colours: np.ndarray, valid: np.ndarray, palette: np.ndarray) -> np.ndarray:
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
    filled = _fill_from_neighbours(np.where(unsure, -1, ids), colours, palette)
    return np.where(filled < 0, ids, filled)


def _compact_ids(values: np.ndarray, valid: np.ndarray, path: Path, what: str):
    """Integer values -> compact ids 0..K-1 and the sorted original values."""
    distinct = np.unique(values[valid])
    if len(distinct) == 0:
        raise InputError(f"{what} {path}: every pixel is transparent; no labels drawn")
    if len(distinct) > _MAX_CLASSES:
        raise InputError(
            f"{what} {path}: {len(distinct)} distinct grey values; a grayscale label map holds "
            "integer class ids (at most 256 classes). Is this a photo rather than a label map?"
        )
    ids = np.searchsorted(distinct, values).clip(0, len(distinct) - 1)
    if not valid.all():
        ids = _fill_from_neighbours(np.where(valid, ids, -1), None, None)
    return ids.astype(np.int64), distinct


def _default_palette(n: int) -> np.ndarray:
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


def read_label_map(path: str | Path, max_size: int | None = None) -> LabelMap:
    """Read a source label map of any supported kind (see the module docstring).

    Args:
        path: label file (image or .npy).
        max_size: if given, a map whose longest side exceeds it is downscaled (nearest).

    Returns:
        The `LabelMap`; ids are ordered by decreasing pixel count for colour maps and by
        increasing original value for id maps.
    """
    path = Path(path)
    raw = _decode_labels(path, _snap_size(max_size), "label map")
    if raw.kind == "colour":
        if not raw.valid.any():
            raise InputError(f"label map {path}: every pixel is transparent; no labels drawn")
        centres, _, counts, interior = _find_clusters(raw.data, raw.valid, raw.lossy)
        keep = _palette_from_clusters(centres, counts, interior, int(raw.valid.sum()))
        if len(keep) == 0:
            raise InputError(
                f"label map {path}: no solid colour regions found; is this a label map "
                "(flat colours, one per class)?"
            )
        if len(keep) > _MAX_CLASSES:
            raise InputError(f"label map {path}: more than {_MAX_CLASSES} label colours found")
        palette = centres[keep]
        ids = _snap(raw.data, raw.valid, palette)
        return LabelMap(ids=_downscale_ids(ids, max_size), palette=palette)
    ids, distinct = _compact_ids(raw.data, raw.valid, path, "label map")
    palette = raw.palette[distinct] if raw.kind == "palette" else _default_palette(len(distinct))
    return LabelMap(
        _downscale_ids(ids, max_size), palette, tuple(int(v) for v in distinct), raw.kind
    )


@dataclass(frozen=True)
class UnknownLabel:
    """A label in a target map that the source does not have."""

    colour: tuple[int, int, int] | None  # for colour maps
    value: int | None  # for id maps
    pixels: int
    location: tuple[int, int]  # (row, column) of one of its pixels
    nearest: int  # the source id it would be mapped to with unknown="nearest"

    def describe(self) -> str:
        what = f"colour {self.colour}" if self.colour is not None else f"value {self.value}"
        return (
            f"{what}: {self.pixels} px, e.g. at row {self.location[0]}, column {self.location[1]}"
        )


def _target_colour(raw: _RawLabels, source: LabelMap) -> tuple[np.ndarray, list[UnknownLabel]]:
    colours, valid = raw.data, raw.valid
    if not valid.any():
        raise InputError("every pixel is transparent; no labels drawn")
    centres, pixel_cluster, counts, interior = _find_clusters(colours, valid, raw.lossy)
    real = _palette_from_clusters(centres, counts, interior, int(valid.sum()))
    pal = source.palette.astype(np.float32)
    unknown: list[UnknownLabel] = []
    extra_colours: list[np.ndarray] = []
    extra_ids: list[int] = []
    for i in real:
        d = np.linalg.norm(pal - centres[i].astype(np.float32), axis=1)
        if d.min() <= 12.0:
            continue  # the source colour itself
        # a solid target colour off the source palette: snap its pixels as an alias of the
        # nearest source label; it is "unknown" when it is far from every source colour
        extra_colours.append(centres[i])
        extra_ids.append(int(d.argmin()))
        if d.min() <= _UNKNOWN_DISTANCE:
            continue
        ys, xs = np.nonzero(pixel_cluster == i)
        mid = len(ys) // 2
        unknown.append(
            UnknownLabel(
                colour=tuple(int(c) for c in centres[i]),
                value=None,
                pixels=int(counts[i]),
                location=(int(ys[mid]), int(xs[mid])),
                nearest=int(d.argmin()),
            )
        )
    full = np.concatenate([source.palette, *[c[None] for c in extra_colours]])
    ids = _snap(colours, valid, full)
    if extra_ids:
        lut = np.concatenate([np.arange(source.num_classes), np.array(extra_ids)])
        ids = lut[ids]
    return ids, unknown


def _target_ids(raw: _RawLabels, source: LabelMap, path: Path) -> tuple[np.ndarray, list]:
    values = raw.data
    src_values = np.array(source.values, dtype=np.int64)
    present, counts = np.unique(values[raw.valid], return_counts=True)
    unknown: list[UnknownLabel] = []
    for v, n in zip(present, counts, strict=True):
        if v in src_values:
            continue
        ys, xs = np.nonzero(values == v)
        unknown.append(
            UnknownLabel(
                colour=None,
                value=int(v),
                pixels=int(n),
                location=(int(ys[len(ys) // 2]), int(xs[len(xs) // 2])),
                nearest=-1,
            )
        )
    pos = np.searchsorted(src_values, values).clip(0, len(src_values) - 1)
    known = (src_values[pos] == values) & raw.valid
    ids = np.where(known, pos, -1)
    if (~known).any():
        ids = _fill_from_neighbours(ids, None, None)
        if (ids < 0).any():
            raise InputError(f"target map {path}: no pixel carries a label of the source")
    return ids, unknown


def match_target(
    path: str | Path, source: LabelMap, max_size: int | None = None
) -> tuple[LabelMap, list[UnknownLabel]]:
    """Read a target map against a source map, reporting labels the source does not have.

    Unknown colours are mapped to the nearest source colour; unknown integer values (id maps) are
    filled from the surrounding labels. Use `read_target` for the checked version.

    Returns:
        (target LabelMap with the source's palette, list of unknown labels found).
    """
    path = Path(path)
    raw = _decode_labels(path, _snap_size(max_size), "target map")
    if source.kind == "colour" or (source.kind == "palette" and raw.kind == "colour"):
        if raw.kind == "ids":
            raise InputError(
                f"target map {path}: a grayscale map of ids, but the source label map is "
                "colour-coded; draw the target with the source's colours"
            )
        if raw.kind == "palette":
            raw = _RawLabels(data=raw.palette[raw.data], valid=raw.valid, kind="colour")
        try:
            ids, unknown = _target_colour(raw, source)
        except InputError as e:
            raise InputError(f"target map {path}: {e}") from None
    else:
        if raw.kind == "colour":
            raise InputError(
                f"target map {path}: a colour image, but the source label map holds integer "
                "ids; save the target the same way (grayscale ids or .npy)"
            )
        ids, unknown = _target_ids(raw, source, path)
    return source.with_ids(_downscale_ids(ids, max_size)), unknown


def read_target(
    path: str | Path, source: LabelMap, unknown: str = "error", max_size: int | None = None
) -> LabelMap:
    """Read a target (edited) label map against the source's palette.

    Args:
        path: target label file; it may have another size than the source.
        source: the source `LabelMap`.
        unknown: "error": labels the source lacks raise `InputError` listing them (colour or
            value, pixel count, a location); "nearest": unknown colours take the nearest source
            colour, unknown id values are filled from the surrounding labels.
        max_size: downscale (nearest) if the longest side exceeds it.

    Returns:
        LabelMap with the source's palette and ids.
    """
    if unknown not in ("error", "nearest"):
        raise ValueError(f"unknown must be 'error' or 'nearest', got {unknown!r}")
    target, found = match_target(path, source, max_size)
    if found and unknown == "error":
        listing = "; ".join(u.describe() for u in found[:8])
        more = f" and {len(found) - 8} more" if len(found) > 8 else ""
        raise InputError(
            f"target map {path}: {len(found)} label(s) not in the source label map: "
            f"{listing}{more}. Redraw them with a source colour, or pass "
            "--unknown-labels nearest to map each to the closest source label"
        )
    for u in found:
        log.warning(
            "target map %s: unknown %s mapped to source id %d", path, u.describe(), u.nearest
        )
    return target


def find_scenes(root: str | Path) -> list[tuple[str, Path, Path, list[Path]]]:
    """Scenes under `root`, one folder each holding img.*, label.* and cond/<target>.* (the
    layout of the packaged and the shared example scenes): (name, image, label map, targets),
    sorted by name; folders without that layout are skipped.

    Raises:
        InputError: `root` holds no such folder.
    """
    root = Path(root)
    scenes = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        image = next(iter(sorted(folder.glob("img.*"))), None)
        label = next(iter(sorted(folder.glob("label.*"))), None)
        targets = sorted(p for p in (folder / "cond").glob("*.*") if not p.name.startswith("."))
        if image is not None and label is not None and targets:
            scenes.append((folder.name, image, label, targets))
    if not scenes:
        raise InputError(
            f"{root}: no example scenes (folders with img.*, label.* and cond/<target> maps)"
        )
    return scenes


def load_scene(
    image_path: str | Path, label_path: str | Path, max_size: int | None = 512
) -> tuple[np.ndarray, LabelMap]:
    """Read a source photo and its label map; they must have the same size.

    Both are downscaled together when the longest side exceeds max_size.

    Returns:
        image (H, W, 3) float32 in [0, 1] and its `LabelMap` of the same (H, W).
    """
    image_size, label_size = file_size(image_path, "image"), file_size(label_path, "label map")
    if image_size != label_size:
        raise InputError(
            f"image {image_path} is {image_size[1]}x{image_size[0]} but label map "
            f"{label_path} is {label_size[1]}x{label_size[0]}; they must have the same size "
            "(resize the label map with nearest-neighbour sampling)"
        )
    image = read_image(image_path, max_size)
    labels = read_label_map(label_path, max_size)
    return image, labels


# ----------------------------------------------------------------------------------------------
# Writing


def atomic_save(path: str | Path, save) -> None:
    """Call save(tmp_path) on a temporary file beside `path`, then move it into place.

    The finished file gets the usual permissions of a new file (0666 minus the umask; mkstemp
    alone would leave it readable by its owner only). On any error, or Ctrl-C, the temporary file
    is removed and an existing `path` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}-", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    try:
        save(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def to_uint8(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) float in [0, 1] -> uint8 (rounded)."""
    return (np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def write_image(path: str | Path, image: np.ndarray) -> Path:
    """Write an image atomically (format from the suffix; JPEG at quality 95).

    Args:
        path: destination; parent folders are created.
        image: (H, W, 3) float in [0, 1] or uint8.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in IMAGE_SUFFIXES:
        raise InputError(
            f"output {path}: unsupported suffix {path.suffix!r}; "
            f"use one of {', '.join(IMAGE_SUFFIXES)}"
        )
    array = image if image.dtype == np.uint8 else to_uint8(image)
    im = Image.fromarray(array)
    options = {"quality": 95} if suffix in (".jpg", ".jpeg", ".webp") else {}
    atomic_save(path, lambda tmp: im.save(tmp, **options))
    return path


def write_labels(path: str | Path, labels: LabelMap) -> Path:
    """Write a label map as a colour PNG (or any image suffix) atomically."""
    return write_image(path, labels.to_rgb())
