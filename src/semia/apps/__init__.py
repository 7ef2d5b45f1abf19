"""The paper's other applications: sketch-to-image (edge maps, sketches) and object removal.

Modules: `edges` (the sketch-style edge map of a photo), `sketch` (reading a user's sketch),
`removal` (masks, label filling that continues boundaries, synthesis).
"""

from semia.apps.edges import DEFAULT_DETAIL, edge_guide, edges
from semia.apps.removal import fill_labels, read_mask, removal_labels, remove, segment
from semia.apps.sketch import read_sketch, sketch_edges

__all__ = [
    "DEFAULT_DETAIL",
    "edge_guide",
    "edges",
    "fill_labels",
    "read_mask",
    "read_sketch",
    "removal_labels",
    "remove",
    "segment",
    "sketch_edges",
]
