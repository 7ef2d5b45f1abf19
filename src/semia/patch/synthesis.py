"""Coarse-to-fine guided patch synthesis (texture-by-numbers, training-free).

The family of Image Analogies' texture-by-numbers, EbSynth and GPNN, written with tensor ops:

1. Pyramids of the source image and of both label maps (area averages; halving per level).
2. Coarsest level: each object (connected region of a class) of the target starts as the
   shift of the source's class region that overlays it best (an unchanged layout starts as the
   identity, a moved object as its shifted copy, objects of one class moved apart each as a
   copy of a whole source object); what that leaves uncovered (where an object was, a region
   drawn larger) is filled row by row from the class's pixels at the same relative height
   (inside the class, not its fringe; a run per row from a seeded offset, no source row
   drained past the occurrence limit), then by seeded secondary shifts and seeded random
   pixels of the same class, with their colour seams smoothed away. Seeds change only these
   parts.
3. Every level, a few rounds of (a) nearest-neighbour search of every target patch among the
   source patches allowed for its class (hard constraint), exact by matrix products at coarse
   levels and by parallel PatchMatch (propagation + random search, `search_passes` passes per
   round: the occurrence limit below refuses moves to full source pixels, and one pass leaves
   the field short of its matches) above, with the distance
   |colour patch PCA|^2 + guide_weight |label-guide PCA|^2 + position_weight |relative height|^2,
   under an occurrence limit (StyLit / EbSynth uniformity): a move to a source
   pixel is refused once that pixel serves `uniformity` times its class's average need, best
   gains first, so no single patch floods a region (the washed-out / striped bands); then (b)
   voting: every pixel averages the values the overlapping matched patches give it,
   counting only votes that copy a pixel of its own class (so each region is built from its
   class's texture); centre-weighted at the finest level for sharpness.
   After each vote at the coarse levels and after the last one at the finest (`rim_shade`),
   the rim band of a smooth class (a sky) beside a moved object is pulled back to the
   class's shade farther out plus the rim offset the source shows (semia.patch.rims): no
   halo of another height's sky.
4. The field is carried up a level (children keep their parent's offset), entries that break
   the class constraint at the finer level are re-drawn, and the first round there compares
   the upsampled output with the equally blurred upsampled source.

An exact copy stays a zero-distance match at every step (and staying put is never refused by
the occurrence limit), so target == labels reproduces the source.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from semia.config import PatchConfig
from semia.errors import InputError
from semia.io.arrays import as_ids, as_image
from semia.patch import nnf as nn_field
from semia.patch.pyramid import FeatureSpace, Level, build_pyramid, num_levels
from semia.patch.rims import RimShade

log = logging.getLogger(__name__)


def _check_inputs(
    image: np.ndarray, labels: np.ndarray, target: np.ndarray, num_classes: int | None
) -> np.ndarray:
    """Validate the arrays (InputError with what to fix); returns the sorted source class ids."""
    image = as_image(image)
    labels = as_ids(labels, "labels", num_classes=num_classes, shape=image.shape[:2])
    target = as_ids(target, "target", num_classes=num_classes)
    present = _present(labels)
    missing = np.setdiff1d(_present(target), present, assume_unique=True)
    if missing.size:
        raise InputError(
            f"target uses class id(s) {missing.tolist()} that the source label map does not "
            "contain, so there is no texture to copy for them; draw those regions with classes "
            "present in the source"
        )
    return present


def _present(ids: np.ndarray) -> np.ndarray:
    """Sorted ids present in an array of class ids >= 0 (a histogram, unless they are sparse)."""
    if ids.max() > 4 * ids.size:
        return np.unique(ids)
    return np.flatnonzero(np.bincount(ids.ravel()))


def synthesize(
    image: np.ndarray,
    labels: np.ndarray,
    target: np.ndarray,
    *,
    num_classes: int | None = None,
    seed: int = 0,
    config: PatchConfig = PatchConfig(),
    device: str | torch.device = "cpu",
    progress: Callable[[int, int], None] | None = None,
    guides: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """Synthesize the source image in the target layout by guided patch synthesis.

    Args and returns: as `synthesize_with_field`, without the field.
    """
    result, _ = synthesize_with_field(
        image,
        labels,
        target,
        num_classes=num_classes,
        seed=seed,
        config=config,
        device=device,
        progress=progress,
        guides=guides,
    )
    return result


@torch.inference_mode()
def synthesize_with_field(
    image: np.ndarray,
    labels: np.ndarray,
    target: np.ndarray,
    *,
    num_classes: int | None = None,
    seed: int = 0,
    config: PatchConfig = PatchConfig(),
    device: str | torch.device = "cpu",
    progress: Callable[[int, int], None] | None = None,
    guides: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Synthesize the source image in the target layout, and return the final
    nearest-neighbour field too (which source patch every output patch was copied from).

    Args:
        image: (H, W, 3) float32 in [0, 1], the source photo.
        labels: (H, W) int64 class ids of the source.
        target: (H2, W2) int64 class ids of the wanted layout; it may have another size than
            the source and use a subset of its classes.
        num_classes: K, if given ids must be < K; only the classes present matter.
        seed: seeds the initial layout of edited regions (same seed, same device: same output).
        config: algorithm settings.
        device: where to compute.
        progress: called as progress(done, total) after every search-and-vote round.
        guides: optional extra guides (a sketch's edges): (H, W) or (G, H, W) float of the
            source and (H2, W2) or (G, H2, W2) of the target, compared patch-wise with weight
            `config.edge_weight`.

    Returns:
        (H2, W2, 3) float32 in [0, 1], and (H2, W2, 2) int64: the (row, column) of the source
        pixel at the centre of the patch each output pixel's patch was matched to.

    Raises:
        ValueError: malformed inputs, or a target class that the source does not contain.
    """
    # work with the classes the source has, renumbered 0..k-1 (guide size grows with k)
    present = _check_inputs(image, labels, target, num_classes)
    src_compact, tgt_compact = np.searchsorted(present, labels), np.searchsorted(present, target)
    k = len(present)
    device = torch.device(device)
    generator = torch.Generator(device=device).manual_seed(seed)
    img = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)).to(device)
    img = img.permute(2, 0, 1).contiguous()  # (3, H, W)
    src_ids = torch.from_numpy(src_compact.astype(np.int64)).to(device)
    tgt_ids = torch.from_numpy(tgt_compact.astype(np.int64)).to(device)

    n_levels = num_levels(
        min(src_ids.shape[0], tgt_ids.shape[0]),
        min(src_ids.shape[1], tgt_ids.shape[1]),
        config.coarsest_side,
    )
    pyramid = build_pyramid(
        img, src_ids, tgt_ids, k, n_levels, _guide_tensors(guides, labels, target, device)
    )
    fine_spread = _fine_spread(config, src_ids, tgt_ids)
    # sharper kept votes are guarded against lone outliers (against the plain finest vote)
    fine_guard = config.kept_vote_guard if isinstance(fine_spread, torch.Tensor) else 0.0
    total = config.coarse_iters + config.fine_iters * (n_levels - 1)
    done = 0
    field = out = None
    for lv in reversed(range(n_levels)):
        level = pyramid[lv]
        classes = level.target.reshape(-1)  # (Ht * Wt,)
        space = feature_space(level, config)
        keys_sharp = space.keys(level.image)
        rims = _rim_shade(config, level, lv)
        if field is None:
            field, anchored = nn_field.initial_nnf(
                level.target,
                level.source,
                level.allowed,
                generator,
                config.init_shifts,
                config.init_overlap,
                config.init_fill,
                config.uniformity,
                level.source_guide,
                config.init_objects,
            )
            out = vote_level(field, level, config.patch_size)
            if rims is not None:
                out = rims(out, field, level.source_size[1])
            sigma = config.blend_sigma * max(level.target_size)
            if sigma > 0:
                out = nn_field.blend_fill(out, level.target, anchored, sigma)
            keys_first = keys_sharp
            iters = config.coarse_iters
        else:
            coarser = pyramid[lv + 1]
            field = nn_field.upsample_nnf(
                field,
                coarser.target_size,
                coarser.source_size,
                level.target_size,
                level.source_size,
            )
            field = nn_field.repair(field, classes, level.allowed, generator)
            # the upsampled output is as blurry as the upsampled coarser source: compare like
            # with like in the first round
            out = F.interpolate(out[None], size=level.target_size, mode="bilinear")[0]
            blurry = F.interpolate(coarser.image[None], size=level.source_size, mode="bilinear")[0]
            keys_first = space.keys(blurry)
            iters = config.fine_iters
        exact = level.target.numel() * level.image[0].numel() <= config.exact_max_pairs
        limit = None
        if config.uniformity > 0:
            limit = nn_field.capacity(classes, level.allowed, config.uniformity)
        for it in range(iters):
            keys = keys_first if it == 0 else keys_sharp
            query = space.queries(out)
            round_limit = limit
            if guides is not None and field is not None and it == 0 and lv == n_levels - 1:
                # a sketch: the start copies the source, whose colours would pin every patch
                # in place; match the first round on the guides alone (where the guides tie,
                # many patches pick one source: no occurrence limit in this round)
                query, keys = space.without_appearance(query), space.without_appearance(keys)
                round_limit = None
            dist = nn_field.patch_distance(query, keys, field)
            field, dist = search_round(
                query, keys, level, field, dist, config, generator, round_limit, exact
            )
            if lv == 0:
                out = vote_level(
                    field, level, config.patch_size, fine_spread, fine_guard, config.vote_spread
                )
                if rims is not None and it == iters - 1:  # the finest level: once, at the end
                    out = rims(out, field, level.source_size[1])
            else:
                out = vote_level(field, level, config.patch_size)
                if rims is not None:
                    out = rims(out, field, level.source_size[1])
            done += 1
            if progress is not None:
                progress(done, total)
        log.debug("level %d %s done (%s search)", lv, level.target_size, "exact" if exact else "PM")
    result = out.clamp(0, 1).permute(1, 2, 0).cpu().numpy()  # (H2, W2, 3)
    width = pyramid[0].source_size[1]
    coords = torch.stack([field // width, field % width], 1)  # (H2 * W2, 2) source (y, x)
    coords = coords.reshape(*pyramid[0].target_size, 2).cpu().numpy()  # (H2, W2, 2)
    return np.ascontiguousarray(result, dtype=np.float32), coords


def feature_space(level: Level, config: PatchConfig) -> FeatureSpace:
    """The space where `config` compares the patches of one pyramid level."""
    return FeatureSpace(
        level,
        config.patch_size,
        config.guide_weight,
        config.position_weight,
        config.appearance_dims,
        config.guide_dims,
        config.edge_weight,
    )


def search_round(
    query: torch.Tensor,
    keys: torch.Tensor,
    level: Level,
    field: torch.Tensor,
    dist: torch.Tensor,
    config: PatchConfig,
    generator: torch.Generator,
    limit: torch.Tensor | None,
    exact: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One nearest-neighbour search round at a level: exact (matrix products) or
    `config.search_passes` PatchMatch passes, under the class constraint and the occurrence
    `limit`; returns the new field and distances."""
    classes = level.target.reshape(-1)
    if exact:
        return nn_field.exact_search(query, keys, classes, level.allowed, field, dist, limit)
    for _ in range(config.search_passes):
        field, dist = nn_field.patchmatch(
            query,
            keys,
            classes,
            level.allowed,
            field,
            dist,
            level.target_size,
            level.source_size,
            config.propagation_steps,
            config.search_radii,
            generator,
            limit,
        )
    return field, dist


def vote_level(
    field: torch.Tensor,
    level: Level,
    patch_size: int,
    spread: float | torch.Tensor = 0.0,
    guard: float = 0.0,
    reference_spread: float = 0.0,
) -> torch.Tensor:
    """(3, Ht, Wt) the level's source voted by the field, every patch weighing the same (spread,
    guard, reference_spread: see `nn_field.vote`)."""
    weights = torch.ones(field.shape, dtype=level.image.dtype, device=field.device)
    return nn_field.vote(
        field,
        weights,
        level.image,
        level.allowed,
        level.target,
        patch_size,
        spread,
        guard,
        reference_spread,
    )


def _rim_shade(config: PatchConfig, level: Level, lv: int) -> RimShade | None:
    """The rim shade correction of a level, when asked for and the target has the source's
    size (where the labels change is only known then); None where it has nothing to do. The
    finest level blurs at half resolution (full-size blurs would cost ~0.1 s at 512x256)."""
    if not config.rim_shade or level.target_size != level.source_size:
        return None
    rims = RimShade(level, config.patch_size // 2 + 1, decimate=lv == 0)
    return rims if rims.active else None


def _fine_spread(
    config: PatchConfig, src_ids: torch.Tensor, tgt_ids: torch.Tensor
) -> float | torch.Tensor:
    """The finest level's vote spread: config.vote_spread, or per pixel (H2, W2) with
    config.kept_vote_spread where the target keeps the source's label (same size only)."""
    kept = config.kept_vote_spread
    if kept <= 0 or kept == config.vote_spread or src_ids.shape != tgt_ids.shape:
        return config.vote_spread
    spread = torch.full(tgt_ids.shape, config.vote_spread, dtype=torch.float32)
    return spread.to(tgt_ids.device).masked_fill_(src_ids == tgt_ids, kept)


def _guide_tensors(
    guides: tuple[np.ndarray, np.ndarray] | None,
    labels: np.ndarray,
    target: np.ndarray,
    device: torch.device,
) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Validate the extra guides against the label maps' sizes; (G, H, W) float tensors."""
    if guides is None:
        return None
    out = []
    for guide, ids, name in zip(guides, (labels, target), ("source", "target"), strict=True):
        g = np.asarray(guide, dtype=np.float32)
        g = g[None] if g.ndim == 2 else g
        if g.ndim != 3 or g.shape[1:] != ids.shape or not np.isfinite(g).all():
            raise InputError(
                f"the {name} guide must be a finite (H, W) or (G, H, W) array of the {name} "
                f"label map's size {ids.shape}, got shape {np.shape(guide)}"
            )
        out.append(torch.from_numpy(np.ascontiguousarray(g)).to(device))
    if out[0].shape[0] != out[1].shape[0]:
        raise InputError("the source and target guides must have the same number of channels")
    return out[0], out[1]
