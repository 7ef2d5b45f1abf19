"""semia: semantic image analogy from one photo and its label map."""

__version__ = "0.1.0"
