"""Frozen configuration dataclasses: the one place where defaults live.

Each component owns one dataclass below. CLI flags are built from these fields, so every default
exists exactly once, with its comment.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class InputConfig:
    """How images and label maps are read."""

    max_size: int = 512  # longest side in pixels after loading; larger inputs are downscaled
    unknown_labels: str = "error"  # target colours not in the source palette: "error" | "nearest"


# --- PatchConfig (training-free guided patch synthesis; owned by src/semia/patch/) ---

# --- GAN configs (generator, discriminator, segmenter, losses, training; owned by models/, train.py) ---

# --- EvalConfig (metrics; owned by metrics.py) ---
