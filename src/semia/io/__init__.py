"""Reading and writing images and label maps, robust to what users really have.

Images come back as float32 arrays (H, W, 3) in [0, 1]; label maps as a `LabelMap` of integer ids
0..K-1 with a colour palette. Label maps are read from

- colour-coded RGB / RGBA images, clean or anti-aliased or JPEG-noisy: the real palette is found
  (the few colours that fill solid regions) and every pixel is snapped to it (`palette`);
- palette-mode ("P") images: palette indices are the ids, the palette gives the colours;
- grayscale images of integer ids (as Cityscapes-style datasets ship them) and ``.npy`` arrays.

A target map is read against the source's `LabelMap` (same palette and ids). Every failure is an
`InputError` (a ValueError) whose message names the file and says what to do.

Modules: `arrays` (array conventions and validation), `images`, `palette` (palette inference),
`labels` (`LabelMap`), `targets`, `scenes`, `files` (atomic writes).
"""

from semia.errors import InputError
from semia.io.arrays import as_ids, as_image, num_classes_of, resize_nearest, to_uint8
from semia.io.files import (
    atomic_save,
    atomic_write_bytes,
    atomic_write_text,
    check_writable,
    folder_lock,
    remove_stale_temps,
)
from semia.io.images import IMAGE_SUFFIXES, file_size, read_image, write_image
from semia.io.labels import LabelMap, read_label_map, write_labels
from semia.io.scenes import find_scenes, load_scene
from semia.io.targets import UnknownLabel, match_target, read_target

LABEL_SUFFIXES = (*IMAGE_SUFFIXES, ".npy")

__all__ = [
    "IMAGE_SUFFIXES",
    "LABEL_SUFFIXES",
    "InputError",
    "LabelMap",
    "UnknownLabel",
    "as_ids",
    "as_image",
    "atomic_save",
    "atomic_write_bytes",
    "atomic_write_text",
    "check_writable",
    "file_size",
    "find_scenes",
    "folder_lock",
    "load_scene",
    "match_target",
    "num_classes_of",
    "read_image",
    "read_label_map",
    "read_target",
    "remove_stale_temps",
    "resize_nearest",
    "to_uint8",
    "write_image",
    "write_labels",
]
