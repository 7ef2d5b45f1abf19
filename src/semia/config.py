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


@dataclass(frozen=True)
class GeneratorConfig:
    """SemIA generator (semia.models.generator): label encoder, SFT, image encoder/decoder."""

    base_channels: int = 16  # image encoder/decoder width at full resolution (doubles per level)
    max_channels: int = 128  # cap on the image encoder/decoder width
    label_channels: int = 16  # label encoder width at full resolution (doubles per level)
    max_label_channels: int = 64  # cap on the label encoder width
    num_levels: int = 3  # down-sampling steps of the encoders (inputs padded to a multiple of 2**n)
    num_res_blocks: int = 1  # residual blocks at the coarsest level (unmodulated)
    sft_hidden: int = 16  # width of the SFT residual bottlenecks (gamma and beta heads)
    ratio_eps: float = 0.1  # eps of the label-feature log-ratio log((f_t + eps) / (f_s + eps))
    norm: str = "instance"  # normalisation before modulation: "instance" | "pixel"
    skip_connections: bool = True  # add encoder features to the decoder at each level (U-Net-like)


@dataclass(frozen=True)
class DiscriminatorConfig:
    """Feature-pyramid patch discriminator (semia.models.discriminator)."""

    base_channels: int = 32  # width of the first bottom-up level (doubles per level)
    max_channels: int = 128  # cap on the bottom-up width
    num_levels: int = 3  # strided bottom-up levels (outputs at the last two: 1/4 and 1/8 size)
    pyramid_channels: int = 64  # width of the top-down (lateral) feature pyramid
    spectral_norm: bool = True  # spectral normalisation on every convolution


@dataclass(frozen=True)
class SegmenterConfig:
    """Auxiliary ASPP-like segmenter (semia.models.segmenter) for the semantic alignment loss."""

    base_channels: int = 16  # stem width at 1/2 size (doubled at 1/4 size)
    aspp_channels: int = 32  # width of every ASPP branch
    dilations: tuple[int, ...] = (4, 8)  # dilations of the 3x3 ASPP branches at 1/4 size
    reference_size: int = 128  # dilations are scaled by min(H, W) / reference_size (at least 1)


@dataclass(frozen=True)
class AugmentConfig:
    """Progressive joint augmentation of (image, labels) (semia.augment)."""

    ramp_iters: int = 400  # strength ramps linearly from 0 to 1 over this many iterations
    max_scale: float = 0.2  # largest zoom-in at full strength (0.2 = +20 %)
    flip_prob: float = 0.5  # horizontal flip probability at full strength (scaled by strength)
    tps_grid: int = 3  # thin-plate-spline control points per side (tps_grid x tps_grid)
    tps_offset: float = 0.02  # largest TPS control-point offset, fraction of the width
    max_rotation: float = 0.0  # largest rotation in degrees at full strength (0 = off)
    max_shift: float = 0.0  # largest extra shift, fraction of the size at full strength (0 = off)


@dataclass(frozen=True)
class PatchCoherenceConfig:
    """Semantics-aware patch coherence loss (semia.losses.patch_coherence_loss).

    Features are raw RGB patches of an image pyramid (no learned or downloaded weights).
    """

    patch_size: int = 5  # side of the square patches (odd)
    num_scales: int = 2  # pyramid levels (full size, then halved by 2x2 average pooling)
    max_queries: int = 1024  # generated patches compared per image and scale (strided grid)
    max_keys: int = 4096  # source patches searched per image and scale (strided grid)
    mismatch_penalty: float = 1e4  # distance added to pairs of patches of different classes


# --- EvalConfig (metrics; owned by metrics.py) ---
