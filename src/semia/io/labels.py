"""The label map type and reading source label maps of every kind."""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from semia.errors import InputError
from semia.io.images import file_size, write_image
from semia.io.palette import (
    MAX_CLASSES,
    compact_ids,
    decode_labels,
    default_palette,
    downscale_ids,
    find_clusters,
    pack_colours,
    palette_from_clusters,
    snap,
    snap_size,
    transparent_share,
)

log = logging.getLogger(__name__)


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
        scale: the map's size over its file's size (below 1 when it was read downscaled);
            `read_target` reads targets at the same scale by default.
    """

    ids: np.ndarray
    palette: np.ndarray
    values: tuple[int, ...] | None = None
    kind: str = "colour"  # how the file coded labels: "colour" | "palette" | "ids"
    names: tuple[str, ...] | None = None  # optional class names, one per id
    scale: float = 1.0  # size read / size in the file (< 1 when read downscaled by max_size)

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
    raw = decode_labels(path, snap_size(max_size), "label map")
    if 0.01 <= transparent_share(raw) < 1.0:
        log.warning(
            "label map %s: %.0f %% of its pixels are transparent (no label drawn); they take "
            "the labels around them. Label every region of the photo if that is not meant",
            path,
            100 * transparent_share(raw),
        )
    if raw.kind == "colour":
        if not raw.valid.any():
            raise InputError(f"label map {path}: every pixel is transparent; no labels drawn")
        if _looks_like_a_photo(raw.data, raw.lossy):
            log.warning(
                "label map %s: most of its pixels have colours of their own, as in a photo; a "
                "label map fills each region with one flat colour (make one with semia segment)",
                path,
            )
        centres, clusters, counts, interior, exact = find_clusters(raw.data, raw.valid, raw.lossy)
        keep = palette_from_clusters(
            centres, counts, interior, int(raw.valid.sum()), clusters, exact, raw.lossy
        )
        if len(keep) == 0:
            raise InputError(
                f"label map {path}: no solid colour regions found; is this a label map "
                "(flat colours, one per class)?"
            )
        if len(keep) > MAX_CLASSES:
            raise InputError(f"label map {path}: more than {MAX_CLASSES} label colours found")
        palette = centres[keep]
        ids = snap(raw.data, raw.valid, palette)
        ids = downscale_ids(ids, max_size)
        return LabelMap(ids=ids, palette=palette, scale=_scale(path, ids))
    ids, distinct = compact_ids(raw.data, raw.valid, path, "label map")
    palette = raw.palette[distinct] if raw.kind == "palette" else default_palette(len(distinct))
    ids = downscale_ids(ids, max_size)
    values = tuple(int(v) for v in distinct)
    return LabelMap(ids, palette, values, raw.kind, scale=_scale(path, ids))


def _looks_like_a_photo(colours: np.ndarray, lossy: bool) -> bool:
    """Whether over 12 % (a JPEG: 25 %) of the (H, W, 3) map's colours (on a grid of at most
    ~1 MP) are distinct: 13-57 % in the shared photos, at most 2 % in their label maps, up to 12
    % in a driving frame's map saved as a JPEG and 20 % in a tiny one (60x80, quality 50)."""
    if colours.shape[0] * colours.shape[1] < 256:
        return False
    step = max(1, int(np.ceil(np.sqrt(colours.shape[0] * colours.shape[1] / 2**20))))
    keys = pack_colours(colours[::step, ::step].reshape(-1, 3))
    return len(np.unique(keys)) > (0.25 if lossy else 0.12) * len(keys)


def _scale(path: Path, ids: np.ndarray) -> float:
    """The size of `ids` over the size of the file it was read from (longest sides)."""
    return max(ids.shape) / max(file_size(path, "label map"))


def write_labels(path: str | Path, labels: LabelMap) -> Path:
    """Write a label map as a colour PNG (or any image suffix) atomically."""
    return write_image(path, labels.to_rgb())
