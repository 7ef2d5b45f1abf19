"""semia: semantic image analogy from one photo and its label map.

Public API:
    analogy(image, labels, target, seed=...) -> image   training-free guided patch synthesis
    LabelMap, load_scene, read_image, read_label_map, read_target, write_image   robust I/O
    segment(image, scribbles) -> LabelMap   a label map from a few strokes (loaded on first use)
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
    "segment",
    "write_image",
]


def __getattr__(name: str):
    if name == "segment":  # lazy: scikit-learn loads only when segmentation is used
        import importlib

        return importlib.import_module("semia.segment")  # a callable package: segment(...)
    raise AttributeError(f"module 'semia' has no attribute {name!r}")
