"""Label your own photo: a label map from a few scribbles (`semia segment`).

    segment(image, scribbles) -> LabelMap       forest prior + random walker + guided filter
    read_scribbles(path) -> Scribbles           a stroke image, anti-aliased edges snapped
    demo_scribbles(labels) -> Scribbles         strokes drawn inside a known map's regions
    overlay(image, labels) -> image             the map blended over the photo

The package itself is callable, so `semia.segment(image, scribbles)` is `segment(...)`
whether or not the package has been imported by name before.
"""

import sys
import types

from semia.segment.method import SegmentConfig, overlay, segment
from semia.segment.scribbles import Scribbles, demo_scribbles, read_scribbles, scribbles_from_rgba

__all__ = [
    "Scribbles",
    "SegmentConfig",
    "demo_scribbles",
    "overlay",
    "read_scribbles",
    "scribbles_from_rgba",
    "segment",
]


class _CallablePackage(types.ModuleType):
    """`semia.segment` is both this package and the function `segment`."""

    def __call__(self, *args, **kwargs):
        return segment(*args, **kwargs)


sys.modules[__name__].__class__ = _CallablePackage
