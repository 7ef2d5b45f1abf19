"""Networks of the SemIA GAN: generator (with SFT), discriminator, auxiliary segmenter."""

from semia.models.discriminator import Discriminator
from semia.models.generator import Generator
from semia.models.segmenter import Segmenter

__all__ = ["Discriminator", "Generator", "Segmenter"]
