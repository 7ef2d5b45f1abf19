"""Label your own photo: a label map from a few scribbles (`semia segment`).

segment(image, scribbles) -> LabelMap       forest prior + random walker + guided filter
read_scribbles(path) -> Scribbles           a stroke image, anti-aliased edges snapped
demo_scribbles(labels) -> Scribbles         strokes drawn inside a known map's regions
overlay(image, labels) -> image             the map blended over the photo
"""

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
