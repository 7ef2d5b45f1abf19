"""Scenes: a photo with its label map, and folders of example scenes."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from semia.errors import InputError
from semia.io.images import exif_orientation, file_size, read_image
from semia.io.labels import LabelMap, read_label_map

log = logging.getLogger(__name__)


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
    turn, label_turn = exif_orientation(image_path), exif_orientation(label_path)
    if turn != label_turn and turn != 1:
        drawn_on_raw = turn in (5, 6, 7, 8) and image_size == label_size[::-1] != label_size
        if drawn_on_raw:
            raise InputError(
                f"image {image_path} carries EXIF orientation {turn}: semia reads it rotated, "
                f"as viewers show it, but label map {label_path} fits the unrotated pixels. "
                "Rotate the label map the same way, or remove the photo's orientation tag "
                "(for example `exiftool -Orientation= photo.jpg`)"
            )
        if image_size == label_size:
            log.warning(
                "image %s carries EXIF orientation %d and is read as viewers show it; label map "
                "%s must be drawn on that view of the photo, not on the file's raw pixels",
                image_path,
                turn,
                label_path,
            )
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
