"""Training-free guided patch synthesis: the `semia analogy` method."""

from semia.patch.analogy import analogy
from semia.patch.stats import patch_reuse
from semia.patch.synthesis import synthesize, synthesize_with_field

__all__ = ["analogy", "patch_reuse", "synthesize", "synthesize_with_field"]
