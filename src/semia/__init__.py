"""semia: semantic image analogy from one photo and its label map.

Public API (conventions: images (H, W, 3) float32 in [0, 1], uint8 accepted; label maps a
`LabelMap` or an (H, W) integer id array):

    analogy(image, labels, target, seed=...) -> image   training-free guided patch synthesis
    analogy(image, sketch=...), analogy(image, labels, target, sketch=...)   from a sketch
    edges(image, detail=...) -> (H, W) edge map          the photo as a line sketch
    remove(image, mask, labels=None, ...) -> image       object removal (removal_labels: the
                                                        filled label map)
    SemIA.train(image, labels, out_dir) / SemIA.load(path) / model.generate(target)
                                                        the SemIA conditional single-image GAN
    evaluate(image, labels, target, output, ...)        alignment, realism, fidelity metrics
    LabelMap, load_scene, read_image, read_label_map, read_target, write_image   robust I/O
    segment(image, scribbles) -> LabelMap               a label map from a few strokes
    PatchConfig, TrainConfig, ... (semia.config)        validated settings
    InputError                                          bad input: the message says what to do

Names that need torch are imported on first use, so `import semia` stays light.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_LAZY = {
    "analogy": "semia.patch.analogy",
    "edges": "semia.apps.edges",
    "remove": "semia.apps.removal",
    "removal_labels": "semia.apps.removal",
    "SemIA": "semia.gan.model",
    "evaluate": "semia.eval.evaluate",
    "LabelMap": "semia.io",
    "load_scene": "semia.io",
    "read_image": "semia.io",
    "read_label_map": "semia.io",
    "read_target": "semia.io",
    "write_image": "semia.io",
    "write_labels": "semia.io",
    "InputError": "semia.errors",
    "AugmentConfig": "semia.config",
    "DiscriminatorConfig": "semia.config",
    "EvalConfig": "semia.config",
    "GenerateConfig": "semia.config",
    "GeneratorConfig": "semia.config",
    "InputConfig": "semia.config",
    "LossWeights": "semia.config",
    "PatchCoherenceConfig": "semia.config",
    "PatchConfig": "semia.config",
    "SegmenterConfig": "semia.config",
    "TrainConfig": "semia.config",
}

__all__ = [
    "AugmentConfig",
    "DiscriminatorConfig",
    "EvalConfig",
    "GenerateConfig",
    "GeneratorConfig",
    "InputConfig",
    "InputError",
    "LabelMap",
    "LossWeights",
    "PatchCoherenceConfig",
    "PatchConfig",
    "SegmenterConfig",
    "SemIA",
    "TrainConfig",
    "__version__",
    "analogy",
    "edges",
    "evaluate",
    "load_scene",
    "read_image",
    "read_label_map",
    "read_target",
    "removal_labels",
    "remove",
    "segment",
    "write_image",
    "write_labels",
]

if TYPE_CHECKING:
    from semia.apps.edges import edges
    from semia.apps.removal import removal_labels, remove
    from semia.config import (
        AugmentConfig,
        DiscriminatorConfig,
        EvalConfig,
        GenerateConfig,
        GeneratorConfig,
        InputConfig,
        LossWeights,
        PatchCoherenceConfig,
        PatchConfig,
        SegmenterConfig,
        TrainConfig,
    )
    from semia.errors import InputError
    from semia.eval.evaluate import evaluate
    from semia.gan.model import SemIA
    from semia.io import (
        LabelMap,
        load_scene,
        read_image,
        read_label_map,
        read_target,
        write_image,
        write_labels,
    )
    from semia.patch.analogy import analogy


def __getattr__(name: str) -> Any:
    if name == "segment":  # the package is callable: semia.segment(image, scribbles)
        return importlib.import_module("semia.segment")
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'semia' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
