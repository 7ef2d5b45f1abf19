"""Evaluation without downloaded weights: semantic alignment (a labeller fitted on the source),
patch statistics (SWD, coherence) and fidelity (PSNR, SSIM); `evaluate` runs them all."""

from semia.eval.evaluate import RESULT_KEYS, evaluate
from semia.eval.fidelity import psnr, ssim
from semia.eval.labeller import Labeller, fit_labeller, mean_iou, pixel_accuracy, semantic_alignment
from semia.eval.patch_stats import coherence, patch_swd, patch_swd_per_class

__all__ = [
    "RESULT_KEYS",
    "Labeller",
    "coherence",
    "evaluate",
    "fit_labeller",
    "mean_iou",
    "patch_swd",
    "patch_swd_per_class",
    "pixel_accuracy",
    "psnr",
    "semantic_alignment",
    "ssim",
]
