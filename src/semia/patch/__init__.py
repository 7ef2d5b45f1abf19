"""Training-free guided patch synthesis: the `semia analogy` method."""

from semia.patch.analogy import analogy
from semia.patch.synthesis import synthesize

__all__ = ["analogy", "synthesize"]
