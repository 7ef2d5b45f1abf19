"""The SemIA conditional single-image GAN: `SemIA` (train, load, generate) and its parts.

Modules: `model` (SemIA), `trainer` (the loop, checkpoints, resume), `steps` (one iteration),
`losses`, `augment`, `checkpoint` (safetensors + JSON files), `tensors`, `networks/` (generator,
changed-region fill, discriminator, segmenter).
"""

from semia.gan.model import SemIA

__all__ = ["SemIA"]
