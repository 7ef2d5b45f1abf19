"""semia: semantic image analogy from one photo and its label map.

Public API:
    analogy(image, labels, target, seed=...) -> image   training-free guided patch synthesis
    LabelMap, load_scene, read_image, read_label_map, read_target, write_image   robust I/O
"""

from semia.api import analogy
from semia.io import (
    InputError,
    LabelMap,
    load_scene,
    read_image,
    read_label_map,
    read_target,
    write_image,
)

__version__ = "0.1.0"

__all__ = [
    "InputError",
    "LabelMap",
    "__version__",
    "analogy",
    "load_scene",
    "read_image",
    "read_label_map",
    "read_target",
    "write_image",
]
