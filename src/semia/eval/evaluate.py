"""Evaluation metrics that need no downloaded weights.

Three families, each checked by ranking tests on the shared scenes (tests/eval/):

- Semantic alignment: a labeller fitted on the source pair (I, P) only (nearest class prototypes
  over multi-scale colour and local texture features, with spatial smoothing; independent of any
  synthesis model) labels the output O; pixel accuracy and mean IoU against the target P2,
  overall and on the edited region (pixels where P2 differs from P, where copying fails).
- Realism / appearance: sliced Wasserstein distance (SWD) between the 7x7 patches of Laplacian
  pyramids of O and I, globally and per class (patches of class c in O, by P2, against patches of
  class c in I, by P); patch coherence (mean distance from a patch of O to its nearest patch of I,
  RMS per patch element in intensity units), plain and semantics-aware (class c against class c).
  Lower is better for all of them. The global SWD and the plain coherence measure appearance
  only: a copy of the source is perfect for them by construction; the per-class variants and
  the alignment metrics are the ones that catch it.
- With a reference image: PSNR and SSIM, overall and on the edited region.

Everything runs on the CPU from numpy inputs, seeded (patch sampling, SWD projections, k-means).
`evaluate` returns them all as one JSON-ready dict.
"""

from __future__ import annotations

import logging
import time

import numpy as np
import torch

from semia.config import EvalConfig
from semia.eval.common import image_tensor, label_ids
from semia.eval.fidelity import psnr, ssim
from semia.eval.labeller import fit_labeller, semantic_alignment
from semia.eval.patch_stats import coherence_of_pyramids, swd_levels, swd_per_class
from semia.ops import gaussian_pyramid, laplacian_from_gaussian

logger = logging.getLogger(__name__)

RESULT_KEYS: tuple[str, ...] = (
    "label_accuracy",
    "label_accuracy_edited",
    "miou",
    "miou_edited",
    "patch_swd",
    "patch_swd_per_class",
    "coherence",
    "psnr",
    "ssim",
    "psnr_edited",
    "ssim_edited",
    "seconds",
)


# --------------------------------------------------------------------------------------------
# Input validation and small tensor helpers


def evaluate(
    image: np.ndarray,
    labels: np.ndarray,
    target: np.ndarray,
    output: np.ndarray,
    *,
    num_classes: int | None = None,
    reference: np.ndarray | None = None,
    seed: int = 0,
    config: EvalConfig = EvalConfig(),
) -> dict:
    """All metrics of one output, as a JSON-serialisable dict.

    Args:
        image: (H, W, 3) float32 in [0, 1], the source image I.
        labels: (H, W) int64, the source label map P.
        target: (H2, W2) int64, the target label map P2.
        output: (H2, W2, 3) float32 in [0, 1], the synthesised image O.
        num_classes: K; default max id + 1 over P and P2.
        reference: optional (H2, W2, 3) float32 in [0, 1] ground truth for PSNR/SSIM.
        seed: seed of every random choice (labeller fit, patch sampling, projections).
        config: evaluation settings.

    Returns:
        Dict with the keys of RESULT_KEYS plus "labeller_source_accuracy" (the labeller's pixel
        accuracy on the source itself: the ceiling of label_accuracy), "patch_swd_class_mean"
        (mean of the non-null per-class SWDs), "coherence_semantic" (class-aware coherence, see
        `coherence`) and "edited_fraction". Values are floats or None
        (not computable: no reference, no edited region, target size differs from the source);
        patch_swd_per_class maps str(class id) to a float or None.
    """
    start = time.perf_counter()
    result = _evaluate(image, labels, target, output, num_classes, reference, seed, config)
    result["seconds"] = time.perf_counter() - start
    logger.debug("evaluate: %s", result)
    return {key: result[key] for key in (*RESULT_KEYS, *sorted(set(result) - set(RESULT_KEYS)))}


def _evaluate(
    image: np.ndarray,
    labels: np.ndarray,
    target: np.ndarray,
    output: np.ndarray,
    num_classes: int | None,
    reference: np.ndarray | None,
    seed: int,
    config: EvalConfig,
) -> dict:
    src_t = image_tensor(image, "image")
    out_t = image_tensor(output, "output")
    labels = label_ids(labels, "labels", tuple(src_t.shape[-2:]))
    target = label_ids(target, "target", tuple(out_t.shape[-2:]))
    k = int(max(labels.max(), target.max())) + 1
    if num_classes is not None:
        if num_classes < k:
            raise ValueError(f"label maps use id {k - 1} but num_classes is {num_classes}")
        k = num_classes
    edited = target != labels if target.shape == labels.shape else None

    labeller = fit_labeller(image, labels, num_classes=k, seed=seed, config=config)
    result: dict = {"labeller_source_accuracy": labeller.source_accuracy}
    result.update(
        semantic_alignment(labeller.predict(output), target, num_classes=k, edited=edited)
    )

    levels = max(config.pyramid_levels, config.coherence_levels)
    out_gauss, src_gauss = gaussian_pyramid(out_t, levels), gaussian_pyramid(src_t, levels)
    out_lap = laplacian_from_gaussian(out_gauss[: config.pyramid_levels])
    src_lap = laplacian_from_gaussian(src_gauss[: config.pyramid_levels])
    per_level = swd_levels(out_lap, src_lap, None, None, seed=seed, config=config, label=None)
    result["patch_swd"] = float(np.mean(per_level)) if per_level else None
    per_class = swd_per_class(out_lap, src_lap, target, labels, k, seed=seed, config=config)
    result["patch_swd_per_class"] = {str(c): v for c, v in per_class.items()}
    known = [v for v in per_class.values() if v is not None]
    result["patch_swd_class_mean"] = float(np.mean(known)) if known else None

    out_gauss = out_gauss[: config.coherence_levels]
    src_gauss = src_gauss[: config.coherence_levels]
    result["coherence"] = coherence_of_pyramids(
        out_gauss, src_gauss, None, None, seed=seed, config=config
    )
    result["coherence_semantic"] = coherence_of_pyramids(
        out_gauss,
        src_gauss,
        torch.from_numpy(target),
        torch.from_numpy(labels),
        seed=seed,
        config=config,
    )

    result.update(psnr=None, ssim=None, psnr_edited=None, ssim_edited=None)
    if reference is not None:
        image_tensor(reference, "reference")
        if np.asarray(reference).shape != np.asarray(output).shape:
            raise ValueError(
                f"reference has shape {np.asarray(reference).shape} but output has "
                f"{np.asarray(output).shape}; they must match"
            )
        result["psnr"] = psnr(output, reference, max_db=config.psnr_max_db)
        result["ssim"] = ssim(output, reference, config=config)
        if edited is not None and edited.any():
            result["psnr_edited"] = psnr(output, reference, mask=edited, max_db=config.psnr_max_db)
            result["ssim_edited"] = ssim(output, reference, mask=edited, config=config)
    result["edited_fraction"] = float(edited.mean()) if edited is not None else None
    return result
