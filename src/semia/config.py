"""Frozen, validated configuration dataclasses: the one place where defaults live.

Each component owns one dataclass below. Every field is declared with `setting(default, help,
...)`: its default, its documentation (CLI help is built from it) and its valid values (range,
choices, odd). Every config validates itself on construction, so no component ever sees a NaN
learning rate or a 1001-pixel patch; a bad value raises `ConfigError` naming the field.
Configs load from and save to JSON-ready dicts (`to_dict`, `from_dict`); `load_config_file`
reads a TOML or JSON settings file.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import typing
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from semia.errors import InputError

log = logging.getLogger(__name__)


class ConfigError(InputError):
    """A setting out of its valid range; `path` is its dotted name (e.g. "generator.norm")."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"setting {path}: {message}")
        self.path = path


def setting(
    default: Any,
    help: str,
    *,
    lo: float | None = None,
    hi: float | None = None,
    choices: tuple[str, ...] | None = None,
    odd: bool = False,
) -> Any:
    """A config field: its default, help text and valid values (for tuples: of each element)."""
    meta = {"help": help, "lo": lo, "hi": hi, "choices": choices, "odd": odd}
    if isinstance(default, tuple):
        return field(default_factory=lambda: default, metadata=meta)
    return field(default=default, metadata=meta)


def section(cls: type, help: str) -> Any:
    """A nested config field (its own dataclass, built with its defaults)."""
    return field(default_factory=cls, metadata={"help": help})


def _check_value(path: str, value: Any, kind: type, meta: dict[str, Any]) -> None:
    if kind is bool:
        if not isinstance(value, bool):
            raise ConfigError(path, f"must be true or false, got {value!r}")
        return
    if kind is str:
        if not isinstance(value, str):
            raise ConfigError(path, f"must be a string, got {value!r}")
        if meta["choices"] is not None and value not in meta["choices"]:
            raise ConfigError(path, f"must be one of {', '.join(meta['choices'])}, got {value!r}")
        return
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(path, f"must be a number, got {value!r}")
    if kind is int and not isinstance(value, int):
        raise ConfigError(path, f"must be a whole number, got {value!r}")
    if not math.isfinite(value):
        raise ConfigError(path, f"must be finite, got {value!r}")
    lo, hi = meta["lo"], meta["hi"]
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise ConfigError(path, f"must be between {lo:g} and {hi:g}, got {value!r}")
    if meta["odd"] and value % 2 == 0:
        raise ConfigError(path, f"must be odd, got {value!r}")


class Config:
    """Base of the config dataclasses: validation on construction, dict conversion."""

    def __post_init__(self) -> None:
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            path = f"{type(self).__name__}.{f.name}"
            hint = hints[f.name]
            if isinstance(hint, type) and issubclass(hint, Config):
                if not isinstance(value, hint):
                    raise ConfigError(
                        path, f"must be a {hint.__name__}, got {type(value).__name__}"
                    )
                continue
            if typing.get_origin(hint) is tuple:
                if not isinstance(value, tuple) or not value:
                    raise ConfigError(path, f"must be a non-empty list, got {value!r}")
                args = [a for a in typing.get_args(hint) if a is not Ellipsis]
                if Ellipsis not in typing.get_args(hint) and len(value) != len(args):
                    raise ConfigError(path, f"must have {len(args)} values, got {value!r}")
                for element in value:
                    _check_value(path, element, args[0], f.metadata)
                continue
            _check_value(path, value, hint, f.metadata)
        self.validate()

    def validate(self) -> None:
        """Checks that involve several fields (overridden where needed)."""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (nested configs become dicts, tuples lists)."""
        return json.loads(json.dumps(dataclasses.asdict(self)))  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls, data: dict[str, Any], base: Config | None = None) -> Any:
        """Build a config from a (partial) dict over `base` (default: the class defaults).

        Unknown keys raise `ConfigError` (a typo must not be silently ignored); lists become
        tuples; nested configs take nested dicts.
        """
        if not isinstance(data, dict):
            raise ConfigError(cls.__name__, f"expected a table of settings, got {data!r}")
        base = base if base is not None else cls()
        hints = typing.get_type_hints(cls)
        names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(data) - names)
        if unknown:
            raise ConfigError(
                f"{cls.__name__}.{unknown[0]}",
                f"unknown setting; {cls.__name__} has {', '.join(sorted(names))}",
            )
        values: dict[str, Any] = {}
        for key, value in data.items():
            hint = hints[key]
            if isinstance(hint, type) and issubclass(hint, Config):
                values[key] = hint.from_dict(value, getattr(base, key))
            elif typing.get_origin(hint) is tuple and isinstance(value, list):
                values[key] = tuple(value)
            elif hint is float and isinstance(value, int) and not isinstance(value, bool):
                values[key] = float(value)
            else:
                values[key] = value
        return replace(base, **values)  # type: ignore[type-var]


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read a TOML (.toml) or JSON settings file into a dict (InputError if unreadable)."""
    import tomllib

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise InputError(f"config file {path}: cannot read it ({e.strerror})") from None
    try:
        data = tomllib.loads(text) if path.suffix.lower() == ".toml" else json.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InputError(f"config file {path}: not valid TOML / JSON ({e})") from None
    if not isinstance(data, dict):
        raise InputError(f"config file {path}: expected a table of settings at the top level")
    return data


@dataclass(frozen=True)
class InputConfig(Config):
    """How images and label maps are read."""

    max_size: int = setting(
        512, "longest side in pixels after loading; larger inputs are downscaled", lo=8, hi=20000
    )
    train_max_size: int = setting(
        256, "longest side for GAN training (semia train); sized for a CPU", lo=8, hi=4096
    )
    unknown_labels: str = setting(
        "error",
        'target colours not in the source palette: "error" | "nearest"',
        choices=("error", "nearest"),
    )


# --- PatchConfig (training-free guided patch synthesis; owned by src/semia/patch/) ---


@dataclass(frozen=True)
class PatchConfig(Config):
    """Training-free guided patch synthesis (`semia analogy`, src/semia/patch/)."""

    patch_size: int = setting(
        5,
        "side of the square patches that are matched and voted (odd, >= 3)",
        lo=3,
        hi=15,
        odd=True,
    )
    coarsest_side: int = setting(
        32, "pyramid: halve while the target's shorter side stays >= this", lo=8, hi=4096
    )
    coarse_iters: int = setting(
        4, "nearest-neighbour search + vote rounds at the coarsest level", lo=1, hi=100
    )
    fine_iters: int = setting(3, "search + vote rounds at every finer level", lo=1, hi=100)
    guide_weight: float = setting(
        2.0, "weight of the label-guide distance against the appearance one", lo=0, hi=1e6
    )
    position_weight: float = setting(
        3.0, "weight of the (relative) vertical-position distance", lo=0, hi=1e6
    )
    edge_weight: float = setting(
        0.5, "weight of the edge-guide (sketch) distance, when a sketch is given", lo=0, hi=1e6
    )
    labels_edge_weight: float = setting(
        0.1,
        "weight of the edge-guide distance when a sketch comes with a target label map "
        "(labels + edges): the labels already place the regions, the lines refine them",
        lo=0,
        hi=1e6,
    )
    labels_edge_kept_spread: float = setting(
        0.5,
        "labels + edges: vote_spread on the pixels whose label stays (there the lines only "
        "shift the source's own texture: sharper votes keep it a copy, not a blur; 0 = "
        "vote_spread)",
        lo=0,
        hi=100,
    )
    edge_sigma: float = setting(
        0.01, "edge guides: blur of the line maps / longest side", lo=0, hi=0.5
    )
    appearance_dims: int = setting(
        12, "PCA dimensions kept of the colour patches (0: no projection)", lo=0, hi=1024
    )
    guide_dims: int = setting(
        8, "PCA dimensions kept of the label-guide features (0: no projection)", lo=0, hi=1024
    )
    exact_max_pairs: int = setting(
        10_000_000, "levels with target x source pixels below this: exact search", lo=0, hi=10**10
    )
    propagation_steps: tuple[int, ...] = setting(
        (1, 3), "PatchMatch: neighbour distances propagated from", lo=1, hi=64
    )
    search_radii: int = setting(
        3, "PatchMatch: random-search candidates per round, radius / 4 each", lo=0, hi=32
    )
    search_passes: int = setting(
        2,
        "PatchMatch: propagation + random-search passes per search round (levels searched "
        "by PatchMatch, not exactly)",
        lo=1,
        hi=32,
    )
    init_fill: str = setting(
        "rows",
        "coarsest init: what fills a class's pixels that its best-overlaying shifted copy of the "
        "source leaves uncovered (a vacated or enlarged region): rows = the class's source "
        "pixels at the nearest height that can spare them (occurrence limit), one run per "
        "row from a seeded offset, then shifts for the rest; shifts = further seeded shifted "
        "copies (init_shifts, init_overlap)",
        choices=("rows", "shifts"),
    )
    init_objects: bool = setting(
        True,
        "coarsest init: each connected region of a class (an object) takes its own "
        "best-overlaying shift of the source's class region, so objects of one class moved "
        "apart, or drawn anew, each start as a copy of a whole source object (off: one shift "
        "per class, the one that suits the largest region)",
    )
    init_shifts: int = setting(
        3,
        "coarsest init: shifted copies of the source class region per class (the best one "
        "included)",
        lo=1,
        hi=64,
    )
    init_overlap: float = setting(
        0.9,
        "coarsest init: seeded shifts cover >= this fraction of the best one's coverage",
        lo=1e-6,
        hi=1,
    )
    vote_spread: float = setting(
        1.0, "finest level: votes weighted exp(-|offset|^2 / 2 s^2) (0: mean)", lo=0, hi=100
    )
    kept_vote_spread: float = setting(
        0.4,
        "finest level: vote_spread on the pixels whose label stays, for a target of the "
        "source's size (sharper there: the source's own texture stays a copy, not a blur; "
        "0 = vote_spread; labels + edges use labels_edge_kept_spread)",
        lo=0,
        hi=100,
    )
    kept_vote_guard: float = setting(
        0.1,
        "finest level, where kept_vote_spread sharpens the votes: a pixel whose sharp vote lies "
        "more than this (any channel, colours in [0, 1]) from its vote_spread vote takes the "
        "vote nearest that one instead, a real source colour rather than a lone patch's "
        "outlier (speckle) (0: off)",
        lo=0,
        hi=1,
    )
    rim_shade: bool = setting(
        True,
        "after each coarse-level vote and the last finest one: where a smooth class (a sky, "
        "water) borders a change, pull its rim band (patch_size // 2 + 1 px) back to the "
        "class's shade farther out plus the rim offset the source shows for that pair of "
        "classes (no darker or lighter halo of sky around an object drawn at another height; "
        "targets of the source's size only)",
    )
    blend_sigma: float = setting(
        0.2, "coarsest init: colour-seam smoothing width / longest side (0: off)", lo=0, hi=1
    )
    uniformity: float = setting(
        2.0,
        "occurrence limit (StyLit / EbSynth uniformity): a source pixel serves at most this "
        "many times its class's average need (target pixels of the class / its source pixels, "
        "at least 1); a move beyond it is refused, best gains first, so no single patch floods "
        "a region (0: off)",
        lo=0,
        hi=1e6,
    )

    def for_refinement(self) -> PatchConfig:
        """These settings with a lighter search (2 rounds of 1 PatchMatch pass per finer level,
        about half the time): the analogy that the GAN refines (its start at generation, its
        fills in training), which G's pass re-draws where regions meet and which must stay
        within generation's time budget."""
        return replace(self, fine_iters=2, search_passes=1)

    def for_labels_and_edges(self) -> PatchConfig:
        """The settings for a sketch that comes with a target label map (labels + edges)."""
        return replace(
            self,
            edge_weight=self.labels_edge_weight,
            kept_vote_spread=self.labels_edge_kept_spread,
        )


# --- GAN configs (generator, discriminator, segmenter, losses, training) ---


@dataclass(frozen=True)
class GeneratorConfig(Config):
    """SemIA generator (semia.models.generator): label encoder, SFT, image encoder/decoder."""

    base_channels: int = setting(
        16, "image encoder/decoder width at full resolution (doubles per level)", lo=1, hi=1024
    )
    max_channels: int = setting(64, "cap on the image encoder/decoder width", lo=1, hi=4096)
    label_channels: int = setting(
        8, "label encoder width at full resolution (doubles per level)", lo=1, hi=1024
    )
    max_label_channels: int = setting(64, "cap on the label encoder width", lo=1, hi=4096)
    num_levels: int = setting(
        3, "down-sampling steps of the encoders (inputs padded to a multiple of 2**n)", lo=1, hi=8
    )
    num_res_blocks: int = setting(
        1, "residual blocks at the coarsest level (unmodulated)", lo=0, hi=32
    )
    sft_hidden: int = setting(
        8, "width of the SFT residual bottlenecks (gamma and beta heads)", lo=1, hi=1024
    )
    ratio_eps: float = setting(
        0.1, "eps of the label-feature log-ratio log((f_t + eps) / (f_s + eps))", lo=1e-6, hi=100
    )
    norm: str = setting(
        "pixel",
        'norm before modulation: "pixel" (per-pixel, crop-safe) | "instance"',
        choices=("pixel", "instance"),
    )
    skip_connections: bool = setting(
        True, "add encoder features to the decoder at each level (U-Net-like)"
    )
    change_gate: float = setting(
        1.0, "initial a of the SFT gate gamma *= exp(-a |log-ratio|) (0 = off)", lo=0, hi=100
    )
    fill_changed: str = setting(
        "analogy",
        "G input where labels change in training: analogy (the training-free result of the "
        "same pair, as generation feeds G; sample where it cannot be made) | sample (blocks of "
        "the new class) | mean | off (paper)",
        choices=("off", "mean", "sample", "analogy"),
    )
    fill_margin: int = setting(
        2, '"sample": anchors this far inside their class (-1 = anywhere in it)', lo=-1, hi=64
    )
    fill_dilate: int = setting(
        2, "also fill the pixels this close to a change (old borders blend)", lo=0, hi=64
    )


@dataclass(frozen=True)
class DiscriminatorConfig(Config):
    """Feature-pyramid patch discriminator (semia.models.discriminator)."""

    base_channels: int = setting(
        32, "width of the first bottom-up level (doubles per level)", lo=1, hi=1024
    )
    max_channels: int = setting(128, "cap on the bottom-up width", lo=1, hi=4096)
    num_levels: int = setting(
        3, "strided bottom-up levels (outputs at the last two: 1/4 and 1/8 size)", lo=2, hi=8
    )
    pyramid_channels: int = setting(
        64, "width of the top-down (lateral) feature pyramid", lo=1, hi=4096
    )
    spectral_norm: bool = setting(True, "spectral normalisation on every convolution")


@dataclass(frozen=True)
class SegmenterConfig(Config):
    """Auxiliary ASPP-like segmenter (semia.models.segmenter) for the semantic alignment loss."""

    base_channels: int = setting(16, "stem width at 1/2 size (doubled at 1/4 size)", lo=1, hi=1024)
    aspp_channels: int = setting(32, "width of every ASPP branch", lo=1, hi=4096)
    dilations: tuple[int, ...] = setting(
        (4, 8), "dilations of the 3x3 ASPP branches at 1/4 size", lo=1, hi=64
    )
    reference_size: int = setting(
        128, "dilations are scaled by min(H, W) / reference_size (at least 1)", lo=8, hi=4096
    )


@dataclass(frozen=True)
class AugmentConfig(Config):
    """Progressive joint augmentation of (image, labels) (semia.augment)."""

    ramp_iters: int = setting(
        800, "strength ramps linearly from 0 to 1 over this many iterations", lo=0, hi=10**7
    )
    max_scale: float = setting(0.2, "largest zoom-in at full strength (0.2 = +20 %)", lo=0, hi=2)
    flip_prob: float = setting(
        0.5, "horizontal flip probability at full strength (scaled by strength)", lo=0, hi=1
    )
    tps_grid: int = setting(
        3, "thin-plate-spline control points per side (tps_grid x tps_grid)", lo=2, hi=16
    )
    tps_offset: float = setting(
        0.02, "largest TPS control-point offset, fraction of the width / height", lo=0, hi=0.25
    )
    max_rotation: float = setting(
        0.0, "largest rotation in degrees at full strength (0 = off)", lo=0, hi=180
    )
    max_shift: float = setting(
        0.0, "largest extra shift, fraction of the size at full strength (0 = off)", lo=0, hi=0.5
    )
    paste_prob: float = setting(
        0.5, "sample steps: chance (times strength) of a pasted region (0 = off)", lo=0, hi=1
    )
    paste_min: float = setting(
        0.15, "smallest pasted rectangle side, fraction of the image side", lo=0.01, hi=1
    )
    paste_max: float = setting(
        0.4, "largest pasted rectangle side, fraction of the image side", lo=0.01, hi=1
    )

    def validate(self) -> None:
        if self.paste_min > self.paste_max:
            raise ConfigError(
                "AugmentConfig.paste_min",
                f"must not exceed paste_max ({self.paste_max}), got {self.paste_min}",
            )


@dataclass(frozen=True)
class PatchCoherenceConfig(Config):
    """Semantics-aware patch coherence loss (semia.losses.patch_coherence_loss).

    Features are raw RGB patches of an image pyramid (no learned or downloaded weights).
    """

    patch_size: int = setting(5, "side of the square patches (odd)", lo=1, hi=15, odd=True)
    num_scales: int = setting(
        2, "pyramid levels (full size, then halved by 2x2 average pooling)", lo=1, hi=6
    )
    max_queries: int = setting(
        1024, "generated patches compared per image and scale (strided grid)", lo=1, hi=10**6
    )
    max_keys: int = setting(
        2048, "source patches searched per image and scale (strided grid)", lo=1, hi=10**6
    )
    mismatch_penalty: float = setting(
        1e3, "squared distance added to pairs of different classes (> 12 p^2)", lo=0, hi=1e12
    )


@dataclass(frozen=True)
class LossWeights(Config):
    """Weight of each training loss; 0 switches a term off, so an ablation is one flag."""

    reconstruction: float = setting(5.0, "L1 of the zero-reconstruction steps (original: 5)")
    fixed_point: float = setting(1.0, "|gamma - 1| + |beta| on zero-reconstruction steps")
    gan: float = setting(1.0, "least-squares adversarial loss of G on sample steps")
    feature_matching: float = setting(
        10.0, "L1 between D's features of real and fake on sample steps"
    )
    semantic_alignment: float = setting(
        3.0, "cross-entropy of S(fake) against the requested layout"
    )
    patch_coherence: float = setting(
        1.0, "semantics-aware nearest-source-patch distance of the fake"
    )
    sample_l1: float = setting(
        0.0, "L1 of fake vs augmented real on sample steps (not in the original)"
    )


@dataclass(frozen=True)
class GenerateConfig(Config):
    """How a trained SemIA model generates (semia.gan.SemIA.generate); no effect on training.

    An addition to the paper, measured on the ground-truth benchmark (benchmarks/gt.py).
    """

    init: str = setting(
        "analogy",
        "G's image input where labels change: analogy (the training-free result, refined by G) "
        "| fill (GeneratorConfig.fill_changed)",
        choices=("analogy", "fill"),
    )
    anchor_sigma: float = setting(
        2.0,
        'init "analogy": G keeps its detail finer than this Gaussian sigma (px at 256 px) and '
        "takes the coarser structure (colours, shading) from the analogy, so its colours "
        "cannot drift (0 = G's output as it is)",
        lo=0,
        hi=256,
    )
    keep_copied: bool = setting(
        True,
        'init "analogy": output the source\'s own pixels where the analogy copied them in '
        "place (only when the target has the source's size)",
    )
    composite_margin: int = setting(
        -1,
        "output the source's own pixels farther than this from every changed pixel (-1 = off)",
        lo=-1,
        hi=4096,
    )
    refine_band: int = setting(
        -1,
        'init "analogy": G\'s output only within this many pixels of the border of the changed '
        "region, the analogy's own pixels deeper inside (-1 = G's output everywhere)",
        lo=-1,
        hi=4096,
    )
    class_band: int = setting(
        1,
        'init "analogy": on and near the changed pixels (analogy_margin), G\'s output only '
        "within this many pixels (at 256 px) of a class boundary of the target, where new "
        "regions meet; the analogy's own pixels elsewhere (-1 = G's output everywhere)",
        lo=-1,
        hi=4096,
    )
    analogy_margin: int = setting(
        4,
        "with class_band >= 0: the analogy's own pixels also on unchanged pixels this close (px "
        "at 256 px) to a change, away from class boundaries, where G would redraw an outline "
        "that the edit removed (0 = the changed pixels only)",
        lo=0,
        hi=4096,
    )


@dataclass(frozen=True)
class TrainConfig(Config):
    """SemIA training schedule (semia.train); the defaults are tuned for a 2-core CPU at 256 px.

    `TrainConfig.original()` gives the published schedule (slow: hours on a CPU).
    """

    iters: int = setting(1600, "training iterations in total", lo=1, hi=10**7)
    condition: str = setting(
        "labels",
        "what the generator is conditioned on: labels (the label map), edges (a sketch's edge "
        "map) or labels+edges (both stacked)",
        choices=("labels", "edges", "labels+edges"),
    )
    crop_size: int = setting(
        128, "side of the aligned random crops of the first phase (0 = whole image)", lo=0, hi=4096
    )
    full_size_iters: int = setting(
        300, "last iterations on the whole image (0 = crops to the end)", lo=0, hi=10**7
    )
    rec_every: int = setting(
        3, "every n-th iteration is a zero-reconstruction step (original: 5)", lo=0, hi=10**6
    )
    g_steps: int = setting(1, "generator updates per sample iteration (original: 10)", lo=1, hi=100)
    d_steps: int = setting(
        1, "discriminator updates per sample iteration, before G's (original: 2)", lo=1, hi=100
    )
    s_every: int = setting(
        1,
        "segmenter update every n-th iteration (original: reconstruction iterations)",
        lo=0,
        hi=10**6,
    )
    lr: float = setting(2e-3, "base Adam learning rate (original: 0.01)", lo=1e-8, hi=1)
    lr_g_scale: float = setting(0.5, "TTUR: generator lr = lr * lr_g_scale", lo=0, hi=100)
    lr_d_scale: float = setting(2.0, "TTUR: discriminator lr = lr * lr_d_scale", lo=0, hi=100)
    lr_s_scale: float = setting(1.0, "segmenter lr = lr * lr_s_scale", lo=0, hi=100)
    adam_betas: tuple[float, float] = setting(
        (0.0, 0.9), "Adam betas of all three optimisers", lo=0, hi=0.9999
    )
    decay_start: float = setting(
        0.4, "fraction of iters after which all lrs decay linearly to 0", lo=0, hi=1
    )
    swap_prob: float = setting(
        0.5, "chance that a sample step swaps source and augmented target", lo=0, hi=1
    )
    checkpoint_every: int = setting(
        100, "iterations between resumable checkpoints (0 = only at the end)", lo=0, hi=10**7
    )
    preview_every: int = setting(
        200, "iterations between preview sheets (0 = only at the end)", lo=0, hi=10**7
    )
    generator: GeneratorConfig = section(GeneratorConfig, "G architecture")
    discriminator: DiscriminatorConfig = section(DiscriminatorConfig, "D network")
    segmenter: SegmenterConfig = section(SegmenterConfig, "S architecture")
    augment: AugmentConfig = section(AugmentConfig, "progressive augmentation")
    patch_coherence: PatchCoherenceConfig = section(PatchCoherenceConfig, "its loss")
    loss_weights: LossWeights = section(LossWeights, "weight of every loss term")
    generate: GenerateConfig = section(GenerateConfig, "generation from a trained model")

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
            generate=GenerateConfig(init="fill", composite_margin=-1),  # G alone, as published
        )


# --- EvalConfig (metrics; owned by metrics.py) ---


@dataclass(frozen=True)
class EvalConfig(Config):
    """Evaluation metrics (semia.metrics): labeller, patch statistics, PSNR/SSIM.

    Pixel scales are given for a 256 px short side and scaled with the image size.
    """

    labeller_sigmas: tuple[float, ...] = setting(
        (1.0, 2.0, 4.0, 8.0, 16.0), "feature blur scales (px at 256 px)", lo=0.1, hi=256
    )
    labeller_texture_weight: float = setting(
        1.0, "weight of texture features relative to colour ones", lo=0, hi=100
    )
    labeller_prototypes: int = setting(
        32, "k-means prototypes per class (nearest-prototype labeller)", lo=1, hi=1024
    )
    labeller_samples: int = setting(
        4000, "source pixels sampled per class to fit the prototypes", lo=1, hi=10**6
    )
    labeller_kmeans_iters: int = setting(
        10, "Lloyd iterations of the per-class k-means", lo=1, hi=1000
    )
    labeller_smooth_sigma: float = setting(
        3.0, "Gaussian smoothing of class scores (px at 256 px)", lo=0, hi=256
    )
    patch_size: int = setting(
        7, "side of the square patches for SWD and coherence", lo=1, hi=31, odd=True
    )
    pyramid_levels: int = setting(
        3, "Laplacian pyramid levels of the patch SWD (1 = full size only)", lo=1, hi=8
    )
    swd_projections: int = setting(
        128, "random unit directions of the sliced Wasserstein distance", lo=1, hi=4096
    )
    swd_max_patches: int = setting(
        4096, "patches sampled per image and level for the global SWD", lo=1, hi=10**6
    )
    swd_class_max_patches: int = setting(
        2048, "patches sampled per class, image and level (per-class SWD)", lo=1, hi=10**6
    )
    swd_min_class_patches: int = setting(
        32, "fewer patches of a class than this -> its SWD is null", lo=1, hi=10**6
    )
    coherence_levels: int = setting(2, "pyramid levels of the patch coherence", lo=1, hi=8)
    coherence_queries: int = setting(
        2048, "output patches sampled per level for the coherence", lo=1, hi=10**6
    )
    coherence_database: int = setting(
        8192, "source patches searched per level for the coherence", lo=1, hi=10**6
    )
    ssim_window: int = setting(11, "Gaussian window side of SSIM", lo=3, hi=63, odd=True)
    ssim_sigma: float = setting(1.5, "Gaussian window sigma of SSIM", lo=0.1, hi=32)
    psnr_max_db: float = setting(
        100.0, "PSNR reported for identical images (MSE = 0)", lo=1, hi=1000
    )
