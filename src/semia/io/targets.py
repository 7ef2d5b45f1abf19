"""Reading a target (edited) label map against the source's palette or id values."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from semia.errors import InputError
from semia.io.arrays import resize_nearest
from semia.io.images import file_size
from semia.io.labels import LabelMap
from semia.io.palette import (
    UNKNOWN_DISTANCE,
    RawLabels,
    decode_labels,
    downscale_ids,
    fill_from_neighbours,
    find_clusters,
    palette_from_clusters,
    snap,
    snap_size,
    transparent_share,
)

log = logging.getLogger(__name__)


class UnknownLabelsError(InputError):
    """A target uses labels the source does not have (and unknown="error")."""


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


def _target_colour(raw: RawLabels, source: LabelMap) -> tuple[np.ndarray, list[UnknownLabel]]:
    colours, valid = raw.data, raw.valid
    if not valid.any():
        raise InputError("every pixel is transparent; no labels drawn")
    centres, pixel_cluster, counts, interior, exact = find_clusters(colours, valid, raw.lossy)
    real = palette_from_clusters(
        centres, counts, interior, int(valid.sum()), pixel_cluster, exact, raw.lossy
    )
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
        if d.min() <= UNKNOWN_DISTANCE:
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
    ids = snap(colours, valid, full)
    if extra_ids:
        lut = np.concatenate([np.arange(source.num_classes), np.array(extra_ids)])
        ids = lut[ids]
    return ids, unknown


def _reordered(raw: RawLabels, source: LabelMap) -> bool:
    """Whether a palette target gives an index of the source another colour (two palette PNGs
    of one layout saved by different programs): its indices then do not name the same labels."""
    present = np.unique(raw.data[raw.valid])
    src_values = np.array(source.values, dtype=np.int64)
    shared = np.intersect1d(present, src_values)
    theirs = raw.palette[shared].astype(np.int64)
    ours = source.palette[np.searchsorted(src_values, shared)].astype(np.int64)
    return bool((np.abs(theirs - ours).sum(1) > 12).any())


def _target_ids(raw: RawLabels, source: LabelMap, path: Path) -> tuple[np.ndarray, list]:
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
        ids = fill_from_neighbours(ids, None, None)
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
    raw = decode_labels(path, snap_size(max_size), "target map")
    if source.kind == "palette" and raw.kind == "palette" and _reordered(raw, source):
        log.info("target map %s: its palette orders the colours otherwise; matched by colour", path)
        raw = RawLabels(data=raw.palette[raw.data], valid=raw.valid, kind="colour")
    grey_source = source.kind == "colour" and bool((source.palette == source.palette[:, :1]).all())
    if grey_source and raw.kind == "ids" and raw.data.min() >= 0 and raw.data.max() <= 255:
        grey = np.repeat(raw.data.astype(np.uint8)[..., None], 3, axis=2)  # a JPEG source's greys
        raw = RawLabels(data=grey, valid=raw.valid, kind="colour")
    if source.kind == "colour" or (source.kind == "palette" and raw.kind == "colour"):
        if raw.kind == "ids":
            raise InputError(
                f"target map {path}: a grayscale map of ids, but the source label map is "
                "colour-coded; draw the target with the source's colours"
            )
        if raw.kind == "palette":
            raw = RawLabels(data=raw.palette[raw.data], valid=raw.valid, kind="colour")
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
    ids = downscale_ids(ids, max_size)
    if 0.0 < transparent_share(raw) < 1.0:
        ids = _keep_source_where_transparent(ids, raw, source, path)
    return source.with_ids(ids), unknown


def _same_aspect(a: tuple[int, int], b: tuple[int, int]) -> bool:
    """Whether two (H, W) sizes have one aspect ratio, within 1 %."""
    return abs(a[0] * b[1] - a[1] * b[0]) <= 0.01 * max(a[0] * b[1], a[1] * b[0])


def _keep_source_where_transparent(
    ids: np.ndarray, raw: RawLabels, source: LabelMap, path: Path
) -> np.ndarray:
    """A target drawn as a layer over the source: its transparent pixels keep the source's
    labels there (same aspect ratio); on another canvas they take the labels around them."""
    h, w = ids.shape
    if not _same_aspect(ids.shape, source.size):
        log.warning(
            "target map %s: %.0f %% of its pixels are transparent and its aspect ratio is not "
            "the source's; they take the labels around them",
            path,
            100 * transparent_share(raw),
        )
        return ids
    clear = resize_nearest(~raw.valid, (h, w))
    log.info(
        "target map %s: %.0f %% transparent; those pixels keep the source's labels",
        path,
        100 * clear.mean(),
    )
    return np.where(clear, resize_nearest(source.ids, (h, w)), ids)


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
        max_size: downscale (nearest) if the longest side exceeds it; None (the default):
            read it at the source's scale (a source read downscaled to half its file size
            gives a target at half its file size too).

    Returns:
        LabelMap with the source's palette and ids.
    """
    if unknown not in ("error", "nearest"):
        raise InputError(f"unknown must be 'error' or 'nearest', got {unknown!r}")
    if max_size is None and source.scale < 1.0:
        max_size = max(1, round(max(file_size(path, "target map")) * source.scale))
    target, found = match_target(path, source, max_size)
    if found and unknown == "error":
        listing = "; ".join(u.describe() for u in found[:8])
        more = f" and {len(found) - 8} more" if len(found) > 8 else ""
        raise UnknownLabelsError(
            f"target map {path}: {len(found)} label(s) not in the source label map: "
            f"{listing}{more}. Redraw them with a source colour, or read the target with "
            "unknown='nearest' to map each to the closest source label"
        )
    for u in found:
        log.warning(
            "target map %s: unknown %s mapped to source id %d", path, u.describe(), u.nearest
        )
    if not _same_aspect(target.size, source.size):
        (h, w), (sh, sw) = target.size, source.size
        log.info(
            "target map %s is %dx%d, another shape than the source's %dx%d: the result takes "
            "the target's",
            path,
            w,
            h,
            sw,
            sh,
        )
    return target
