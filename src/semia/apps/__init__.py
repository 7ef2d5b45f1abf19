"""The paper's other applications: sketch-to-image (edge maps, sketches) and object removal.

Modules: `edges` (the sketch-style edge map of a photo), `sketch` (reading a user's sketch),
`removal` (masks, label filling that continues boundaries, synthesis). Importing this package
loads none of them (they need OpenCV), so the command line stays quick to start.
"""

DEFAULT_DETAIL = 0.7  # edge-map detail, 0..1: chosen on gt-dev by benchmarks/sketch.py
