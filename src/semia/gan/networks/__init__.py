"""The SemIA networks: generator (with the changed-region fill), discriminator, segmenter."""

from semia.gan.networks.discriminator import Discriminator
from semia.gan.networks.generator import Generator
from semia.gan.networks.segmenter import Segmenter

__all__ = ["Discriminator", "Generator", "Segmenter"]
