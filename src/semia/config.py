"""Frozen configuration dataclasses: the one place where defaults live.

Each component owns one dataclass below. CLI flags are built from these fields, so every default
exists exactly once, with its comment.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace


@dataclass(frozen=True)
class InputConfig:
    """How images and label maps are read."""

    max_size: int = 512  # longest side in pixels after loading; larger inputs are downscaled
    train_max_size: int = 256  # longest side for GAN training (semia train); sized for a CPU
    unknown_labels: str = "error"  # target colours not in the source palette: "error" | "nearest"


# --- PatchConfig (training-free guided patch synthesis; owned by src/semia/patch/) ---


@dataclass(frozen=True)
class PatchConfig:
    """Training-free guided patch synthesis (`semia analogy`, src/semia/patch/)."""

    patch_size: int = 5  # side of the square patches that are matched and voted (odd, >= 3)
    coarsest_side: int = 32  # pyramid: halve while the target's shorter side stays >= this
    coarse_iters: int = 4  # nearest-neighbour search + vote rounds at the coarsest level
    fine_iters: int = 2  # search + vote rounds at every finer level
    guide_weight: float = 2.0  # weight of the label-guide distance against the appearance one
    position_weight: float = 3.0  # weight of the (relative) vertical-position distance
    appearance_dims: int = 12  # PCA dimensions kept of the colour patches (0: no projection)
    guide_dims: int = 8  # PCA dimensions kept of the label-guide features (0: no projection)
    exact_max_pairs: int = 40_000_000  # levels with target x source pixels below this: exact search
    propagation_steps: tuple[int, ...] = (1, 3)  # PatchMatch: neighbour distances propagated from
    search_radii: int = 3  # PatchMatch: random-search candidates per round, radius / 4 each
    init_shifts: int = 3  # coarsest init: shifted copies of the source class region per class
    init_overlap: float = 0.9  # seeded shifts: offsets covering >= this fraction of the best one
    vote_spread: float = 1.0  # finest level: votes weighted exp(-|offset|^2 / 2 s^2) (0: mean)
    blend_sigma: float = 0.2  # coarsest init: colour-seam smoothing width / longest side (0: off)
    uniformity: float = 2.0
    """Occurrence limit (StyLit / EbSynth uniformity): a source pixel may be the match of at
    most this many times as many target pixels as its class needs on average (target pixels
    of the class / its source pixels; at least 1), so no single patch floods a region; a match
    that would exceed it is refused and the pixel keeps its previous match. 0: off."""


# --- GAN configs (generator, discriminator, segmenter, losses, training) ---


@dataclass(frozen=True)
class GeneratorConfig:
    """SemIA generator (semia.models.generator): label encoder, SFT, image encoder/decoder."""

    base_channels: int = 16  # image encoder/decoder width at full resolution (doubles per level)
    max_channels: int = 64  # cap on the image encoder/decoder width
    label_channels: int = 8  # label encoder width at full resolution (doubles per level)
    max_label_channels: int = 64  # cap on the label encoder width
    num_levels: int = 3  # down-sampling steps of the encoders (inputs padded to a multiple of 2**n)
    num_res_blocks: int = 1  # residual blocks at the coarsest level (unmodulated)
    sft_hidden: int = 8  # width of the SFT residual bottlenecks (gamma and beta heads)
    ratio_eps: float = 0.1  # eps of the label-feature log-ratio log((f_t + eps) / (f_s + eps))
    norm: str = "pixel"  # norm before modulation: "pixel" (per-pixel, crop-safe) | "instance"
    skip_connections: bool = True  # add encoder features to the decoder at each level (U-Net-like)
    change_gate: float = 1.0  # initial a of the SFT gate gamma *= exp(-a |log-ratio|) (0 = off)
    fill_changed: str = "off"  # G input where labels change: off (paper) | mean | sample (blocks)
    fill_margin: int = -1  # "sample": anchors this far inside their class (-1 = anywhere in it)
    fill_dilate: int = 0  # also fill the pixels this close to a change (old borders blend)


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

    ramp_iters: int = 800  # strength ramps linearly from 0 to 1 over this many iterations
    max_scale: float = 0.2  # largest zoom-in at full strength (0.2 = +20 %)
    flip_prob: float = 0.5  # horizontal flip probability at full strength (scaled by strength)
    tps_grid: int = 3  # thin-plate-spline control points per side (tps_grid x tps_grid)
    tps_offset: float = 0.02  # largest TPS control-point offset, fraction of the width / height
    max_rotation: float = 0.0  # largest rotation in degrees at full strength (0 = off)
    max_shift: float = 0.0  # largest extra shift, fraction of the size at full strength (0 = off)
    paste_prob: float = 0.5  # sample steps: chance (times strength) of a pasted region (0 = off)
    paste_min: float = 0.15  # smallest pasted rectangle side, fraction of the image side
    paste_max: float = 0.4  # largest pasted rectangle side, fraction of the image side


@dataclass(frozen=True)
class PatchCoherenceConfig:
    """Semantics-aware patch coherence loss (semia.losses.patch_coherence_loss).

    Features are raw RGB patches of an image pyramid (no learned or downloaded weights).
    """

    patch_size: int = 5  # side of the square patches (odd)
    num_scales: int = 2  # pyramid levels (full size, then halved by 2x2 average pooling)
    max_queries: int = 1024  # generated patches compared per image and scale (strided grid)
    max_keys: int = 2048  # source patches searched per image and scale (strided grid)
    mismatch_penalty: float = 1e3  # squared distance added to pairs of different classes (> 12 p^2)


@dataclass(frozen=True)
class LossWeights:
    """Weight of each training loss; 0 switches a term off, so an ablation is one flag."""

    reconstruction: float = 5.0  # L1 of the zero-reconstruction steps (original: 5)
    fixed_point: float = 1.0  # |gamma - 1| + |beta| on zero-reconstruction steps
    gan: float = 1.0  # least-squares adversarial loss of G on sample steps
    feature_matching: float = 10.0  # L1 between D's features of real and fake on sample steps
    semantic_alignment: float = 3.0  # cross-entropy of S(fake) against the requested layout
    patch_coherence: float = 1.0  # semantics-aware nearest-source-patch distance of the fake
    sample_l1: float = 0.0  # L1 of fake vs augmented real on sample steps (not in the original)


@dataclass(frozen=True)
class TrainConfig:
    """SemIA training schedule (semia.train); the defaults are tuned for a 2-core CPU at 256 px.

    `TrainConfig.original()` gives the published schedule (slow: hours on a CPU).
    """

    iters: int = 1600  # training iterations in total
    crop_size: int = 128  # side of the aligned random crops of the first phase (0 = whole image)
    full_size_iters: int = 300  # last iterations on the whole image (0 = crops to the end)
    rec_every: int = 3  # every n-th iteration is a zero-reconstruction step (original: 5)
    g_steps: int = 1  # generator updates per sample iteration (original: 10)
    d_steps: int = 1  # discriminator updates per sample iteration, before G's (original: 2)
    s_every: int = 1  # segmenter update every n-th iteration (original: reconstruction iterations)
    lr: float = 2e-3  # base Adam learning rate (original: 0.01)
    lr_g_scale: float = 0.5  # TTUR: generator lr = lr * lr_g_scale
    lr_d_scale: float = 2.0  # TTUR: discriminator lr = lr * lr_d_scale
    lr_s_scale: float = 1.0  # segmenter lr = lr * lr_s_scale
    adam_betas: tuple[float, float] = (0.0, 0.9)  # Adam betas of all three optimisers
    decay_start: float = 0.4  # fraction of iters after which all lrs decay linearly to 0
    swap_prob: float = 0.5  # chance that a sample step swaps source and augmented target
    checkpoint_every: int = 100  # iterations between resumable checkpoints (0 = only at the end)
    preview_every: int = 200  # iterations between preview sheets (0 = only at the end)
    # G architecture; pixel norm: crop-invariant, and it reconstructs far better than instance
    # norm (whose per-image statistics also change between crops and the whole image); changed
    # pixels filled with blocks of their new class: no ghosts of removed objects, and edited
    # regions read back as their class far more often (building: acc edit 0.74 -> 0.90)
    generator: GeneratorConfig = field(
        default_factory=lambda: GeneratorConfig(
            norm="pixel", fill_changed="sample", fill_margin=2, fill_dilate=2
        )
    )
    discriminator: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)  # D network
    segmenter: SegmenterConfig = field(default_factory=SegmenterConfig)  # S architecture
    augment: AugmentConfig = field(default_factory=AugmentConfig)  # progressive augmentation
    patch_coherence: PatchCoherenceConfig = field(default_factory=PatchCoherenceConfig)  # its loss
    loss_weights: LossWeights = field(default_factory=LossWeights)  # weight of every loss term

    @classmethod
    def original(cls) -> TrainConfig:
        """The published schedule: 2500 full-size iterations, 10 G steps, lr 0.01 TTUR, no fill."""
        return cls(
            iters=2500,
            rec_every=5,
            crop_size=0,
            full_size_iters=0,
            g_steps=10,
            d_steps=2,
            s_every=5,
            lr=0.01,
            decay_start=0.4,
            augment=replace(AugmentConfig(), ramp_iters=1000, paste_prob=0.0),
            generator=replace(cls().generator, fill_changed="off"),  # G sees the source pixels
            loss_weights=replace(LossWeights(), semantic_alignment=1.0),
        )


# --- EvalConfig (metrics; owned by metrics.py) ---


@dataclass(frozen=True)
class EvalConfig:
    """Evaluation metrics (semia.metrics): labeller, patch statistics, PSNR/SSIM.

    Pixel scales are given for a 256 px short side and scaled with the image size.
    """

    labeller_sigmas: tuple[float, ...] = (
        1.0,
        2.0,
        4.0,
        8.0,
        16.0,
    )  # feature blur scales (px at 256 px)
    labeller_texture_weight: float = 1.0  # weight of texture features relative to colour ones
    labeller_prototypes: int = 32  # k-means prototypes per class (nearest-prototype labeller)
    labeller_samples: int = 4000  # source pixels sampled per class to fit the prototypes
    labeller_kmeans_iters: int = 10  # Lloyd iterations of the per-class k-means
    labeller_smooth_sigma: float = 3.0  # Gaussian smoothing of class scores (px at 256 px)
    patch_size: int = 7  # side of the square patches for SWD and coherence
    pyramid_levels: int = 3  # Laplacian pyramid levels of the patch SWD (1 = full size only)
    swd_projections: int = 128  # random unit directions of the sliced Wasserstein distance
    swd_max_patches: int = 4096  # patches sampled per image and level for the global SWD
    swd_class_max_patches: int = 2048  # patches sampled per class, image and level (per-class SWD)
    swd_min_class_patches: int = 32  # fewer patches of a class than this -> its SWD is null
    coherence_levels: int = 2  # pyramid levels of the patch coherence
    coherence_queries: int = 2048  # output patches sampled per level for the coherence
    coherence_database: int = 8192  # source patches searched per level for the coherence
    ssim_window: int = 11  # Gaussian window side of SSIM
    ssim_sigma: float = 1.5  # Gaussian window sigma of SSIM
    psnr_max_db: float = 100.0  # PSNR reported for identical images (MSE = 0)
    num_threads: int = 1  # torch CPU threads inside evaluate() (0: leave as is); its ops are small
