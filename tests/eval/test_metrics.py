"""Tests of semia.metrics: values on tiny known cases, exceptions, and ranking tests on the
shared example scenes showing that each metric ranks a good output above degraded ones.

The ranking cases need an output that is known to be good for a changed layout. They are built
from real photos: the source pair is the left 70 % of a scene, the target layout is the right 70 %
(so regions move and appear: 30-40 % of the pixels change label), and the good output is the real
photo of that right part. Degraded versions of it: blurred, noisy, colour-shifted, 16 px blocks
shuffled, each region filled with the mean colour of a wrong class, and a plain copy of the source.
"""

from __future__ import annotations

import json
from functools import cache

import numpy as np
import pytest
import torch
from conftest import SHARED

from semia.config import EvalConfig
from semia.eval import (
    RESULT_KEYS,
    coherence,
    evaluate,
    fit_labeller,
    mean_iou,
    patch_swd,
    patch_swd_per_class,
    pixel_accuracy,
    psnr,
    semantic_alignment,
    ssim,
)
from semia.ops import gaussian_blur

DATA = SHARED
needs_data = pytest.mark.skipif(
    not DATA.is_dir(), reason=f"shared example scenes not found at {DATA} (ranking tests need them)"
)

SCENES = ("zebra", "tree", "lake", "pantheon")
SIZE = 160  # longest side of the downscaled scenes


pytestmark = pytest.mark.usefixtures("one_thread")


def _rng_image(seed: int, height: int = 48, width: int = 64) -> np.ndarray:
    """A smooth random colour image (H, W, 3) float32 in [0, 1]."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(1, 3, height, width, generator=gen)
    x = gaussian_blur(x, 1.5)
    x = (x - x.min()) / (x.max() - x.min())
    return x[0].permute(1, 2, 0).numpy().astype(np.float32)


# --------------------------------------------------------------------------------------------
# Values on tiny known cases
# --------------------------------------------------------------------------------------------


def test_psnr_of_known_mse() -> None:
    a = np.full((16, 16, 3), 0.5, np.float32)
    b = a + 0.1  # MSE 0.01 -> 20 dB
    assert psnr(a, b) == pytest.approx(20.0, abs=1e-3)
    mask = np.zeros((16, 16), bool)
    mask[:4] = True
    c = a.copy()
    c[:4] += 0.01  # MSE 1e-4 inside the mask -> 40 dB, outside identical
    assert psnr(a, c, mask=mask) == pytest.approx(40.0, abs=1e-2)
    assert psnr(a, c, mask=~mask) == EvalConfig().psnr_max_db
    assert psnr(a, a) == EvalConfig().psnr_max_db
    assert psnr(a, c, mask=np.zeros((16, 16), bool)) is None


def test_ssim_identical_is_one_and_degradations_lower() -> None:
    img = _rng_image(0)
    assert ssim(img, img) == pytest.approx(1.0, abs=1e-6)
    noisy = np.clip(img + np.random.default_rng(1).normal(0, 0.05, img.shape), 0, 1)
    blurred = gaussian_blur(torch.from_numpy(img).permute(2, 0, 1)[None], 2.0)
    blurred = blurred[0].permute(1, 2, 0).numpy()
    assert ssim(noisy, img) < 0.99
    assert ssim(blurred, img) < 0.99
    assert -1.0 <= ssim(1 - img, img) < 0.0  # the negative is anti-correlated


def test_swd_of_identical_images_is_zero_and_grows_with_noise() -> None:
    img = _rng_image(2, 64, 64)
    assert patch_swd(img, img) == 0.0
    gen = np.random.default_rng(0)
    small = np.clip(img + gen.normal(0, 0.03, img.shape), 0, 1).astype(np.float32)
    large = np.clip(img + gen.normal(0, 0.15, img.shape), 0, 1).astype(np.float32)
    assert 0.0 < patch_swd(small, img) < patch_swd(large, img)


def test_swd_and_coherence_accept_other_sizes() -> None:
    img = _rng_image(3, 64, 80)
    crop = img[8:56, 10:70]  # a part of the same image: its patches all exist in the source
    other = _rng_image(4, 48, 60)
    assert patch_swd(crop, img) < patch_swd(other, img)
    assert coherence(crop, img) < 1e-3
    assert coherence(other, img) > 0.02


def test_coherence_of_copy_is_zero() -> None:
    img = _rng_image(5)
    assert coherence(img, img) < 1e-3


def test_pixel_accuracy_and_miou_hand_built() -> None:
    target = np.array([[0, 0, 1, 1], [0, 0, 1, 1]])
    pred = np.array([[0, 0, 0, 1], [0, 0, 1, 1]])
    # class 0: inter 4, union 5; class 1: inter 3, union 4
    assert pixel_accuracy(pred, target) == pytest.approx(7 / 8)
    assert mean_iou(pred, target, num_classes=3) == pytest.approx((4 / 5 + 3 / 4) / 2)
    mask = np.array([[0, 0, 1, 1], [0, 0, 0, 0]], bool)
    assert pixel_accuracy(pred, target, mask=mask) == pytest.approx(0.5)
    # inside the mask: class 1 inter 1, union 2; class 0 inter 0, union 1
    assert mean_iou(pred, target, num_classes=3, mask=mask) == pytest.approx(0.25)
    out = semantic_alignment(pred, target, num_classes=3, edited=np.zeros_like(mask))
    assert out["label_accuracy"] == pytest.approx(7 / 8)
    assert out["label_accuracy_edited"] is None and out["miou_edited"] is None


def test_per_class_swd_is_null_for_classes_missing_in_source() -> None:
    img = _rng_image(6, 64, 64)
    labels = np.zeros((64, 64), np.int64)
    labels[:, 32:] = 1
    target = labels.copy()
    target[:20, :20] = 2  # class 2 does not exist in the source
    per_class = patch_swd_per_class(img, target, img, labels, num_classes=3)
    assert set(per_class) == {0, 1, 2}
    assert per_class[2] is None
    assert per_class[0] is not None and per_class[1] is not None


# --------------------------------------------------------------------------------------------
# evaluate(): keys, JSON, nulls, determinism, errors
# --------------------------------------------------------------------------------------------


def _toy_scene() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    img = _rng_image(7, 64, 64)
    labels = np.zeros((64, 64), np.int64)
    labels[32:] = 1
    img[32:] *= 0.5  # two visibly different regions
    target = labels.copy()
    target[20:32, 10:40] = 1
    return img, labels, target


def test_evaluate_keys_json_and_nulls() -> None:
    img, labels, target = _toy_scene()
    result = evaluate(img, labels, target, img)
    assert set(RESULT_KEYS) <= set(result)
    json.dumps(result, allow_nan=False)  # plain JSON: no NaN / inf, no numpy types
    for key in ("psnr", "ssim", "psnr_edited", "ssim_edited"):
        assert result[key] is None  # no reference given
    assert set(result["patch_swd_per_class"]) == {"0", "1"}
    assert result["label_accuracy_edited"] is not None
    assert result["seconds"] > 0
    with_ref = evaluate(img, labels, target, img, reference=img)
    assert with_ref["psnr"] == EvalConfig().psnr_max_db and with_ref["ssim"] == pytest.approx(1.0)
    assert with_ref["psnr_edited"] is not None and with_ref["ssim_edited"] is not None


def test_evaluate_other_output_size_has_no_edited_region() -> None:
    img, labels, _ = _toy_scene()
    target = np.zeros((48, 80), np.int64)
    target[30:] = 1
    output = _rng_image(8, 48, 80)
    result = evaluate(img, labels, target, output)
    assert result["label_accuracy_edited"] is None and result["miou_edited"] is None
    assert result["label_accuracy"] is not None and result["patch_swd"] is not None


def test_evaluate_is_deterministic_under_a_seed() -> None:
    img, labels, target = _toy_scene()
    output = np.clip(img + 0.05, 0, 1)
    a = evaluate(img, labels, target, output, seed=3)
    b = evaluate(img, labels, target, output, seed=3)
    a.pop("seconds"), b.pop("seconds")
    assert a == b


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ("four_channels", r"\(H, W, 3\)"),
        ("output_size", "same size"),
        ("range", r"\[0, 1\]"),
        ("float_labels", "integer"),
        ("few_classes", "num_classes"),
        ("reference_size", "reference"),
    ],
)
def test_evaluate_rejects_bad_inputs(change: str, match: str) -> None:
    img, labels, target = _toy_scene()
    output, reference, kwargs = img, None, {}
    if change == "four_channels":
        output = np.concatenate([img, img[..., :1]], axis=2)
    elif change == "output_size":
        output = img[:40]
    elif change == "range":
        output = img * 3
    elif change == "float_labels":
        labels = labels.astype(np.float32)
    elif change == "few_classes":
        kwargs["num_classes"] = 1
    elif change == "reference_size":
        reference = img[:40]
    with pytest.raises(ValueError, match=match):
        evaluate(img, labels, target, output, reference=reference, **kwargs)


# --------------------------------------------------------------------------------------------
# Ranking tests on the shared scenes
# --------------------------------------------------------------------------------------------

# Which degradations each metric must rank below the good output. Deliberate omissions:
# - noise leaves the semantics readable, so the alignment metrics need not punish it;
# - a copy of the source has by construction the source's appearance: global SWD and plain
#   coherence are appearance-only and rate it perfect (the per-class / semantic versions and
#   the alignment metrics catch it);
# - plain coherence matches blurred patches to flat source regions of another class, so it
#   does not reliably punish blur (the semantic coherence does).
ALIGNMENT_CATCHES = ("blur", "colour", "shuffle", "wrong_fill", "copy")
RANKINGS: dict[str, tuple[str, ...]] = {
    "label_accuracy": ALIGNMENT_CATCHES,
    "label_accuracy_edited": ALIGNMENT_CATCHES,
    "miou": ALIGNMENT_CATCHES,
    "miou_edited": ALIGNMENT_CATCHES,
    "patch_swd": ("blur", "noise", "colour", "shuffle", "wrong_fill"),
    "patch_swd_class_mean": ("blur", "noise", "colour", "shuffle", "wrong_fill", "copy"),
    "coherence": ("noise", "colour", "shuffle", "wrong_fill"),
    "coherence_semantic": ("blur", "noise", "colour", "shuffle", "wrong_fill", "copy"),
    "psnr": ("blur", "noise", "colour", "shuffle", "wrong_fill", "copy"),
    "ssim": ("blur", "noise", "colour", "shuffle", "wrong_fill", "copy"),
    "psnr_edited": ("blur", "noise", "colour", "shuffle", "wrong_fill", "copy"),
    "ssim_edited": ("blur", "noise", "colour", "shuffle", "wrong_fill", "copy"),
}
HIGHER_IS_BETTER = {
    "label_accuracy",
    "label_accuracy_edited",
    "miou",
    "miou_edited",
    "psnr",
    "ssim",
    "psnr_edited",
    "ssim_edited",
}


def _degrade(good: np.ndarray, source: np.ndarray, src_labels: np.ndarray, target: np.ndarray):
    """The good output and its degraded versions, all (H, W, 3) float32 in [0, 1]."""
    gen = torch.Generator().manual_seed(0)
    as_t = torch.from_numpy(good).permute(2, 0, 1)[None]  # (H, W, 3) -> (1, 3, H, W)
    blurred = gaussian_blur(as_t, 2.0)[0].permute(1, 2, 0).numpy()
    noise = 0.08 * torch.randn(good.shape, generator=gen).numpy()
    b = 16
    h, w = good.shape[0] // b * b, good.shape[1] // b * b
    blocks = good[:h, :w].reshape(h // b, b, w // b, b, 3).transpose(0, 2, 1, 3, 4)
    blocks = blocks.reshape(-1, b, b, 3)  # (n_blocks, b, b, 3)
    blocks = blocks[torch.randperm(blocks.shape[0], generator=gen).numpy()]
    shuffled = good.copy()
    shuffled[:h, :w] = (
        blocks.reshape(h // b, w // b, b, b, 3).transpose(0, 2, 1, 3, 4).reshape(h, w, 3)
    )
    k = int(max(src_labels.max(), target.max())) + 1
    means = np.zeros((k, 3))
    for c in np.unique(src_labels):
        means[c] = source[src_labels == c].mean(0)
    return {
        "good": good,
        "good_mild": np.clip(good + noise / 8, 0, 1),  # near-perfect, for PSNR / SSIM
        "blur": blurred,
        "noise": np.clip(good + noise, 0, 1),
        "colour": np.clip(good + np.array([0.15, 0.0, -0.15]), 0, 1),
        "shuffle": shuffled,
        "wrong_fill": means[(target + 1) % k],
        "copy": source,
    }


@cache
def _scene_metrics(scene: str) -> dict[str, dict]:
    """Every metric of every variant of one scene's shifted-crop case (computed once)."""
    from semia.io import load_scene

    directory = DATA / scene
    image, label_map = load_scene(
        next(directory.glob("img.*")), next(directory.glob("label.*")), SIZE
    )
    labels, k = label_map.ids, label_map.num_classes
    width = image.shape[1]
    keep = int(0.7 * width)
    source, src_labels = image[:, :keep], labels[:, :keep]
    good, target = image[:, width - keep :], labels[:, width - keep :]
    edited = target != src_labels
    assert edited.mean() > 0.1, "the case must change the layout"
    labeller = fit_labeller(source, src_labels, num_classes=k)
    table = {}
    for name, output in _degrade(good, source, src_labels, target).items():
        output = output.astype(np.float32)
        row = semantic_alignment(labeller.predict(output), target, num_classes=k, edited=edited)
        row["patch_swd"] = patch_swd(output, source)
        per_class = patch_swd_per_class(output, target, source, src_labels, num_classes=k)
        row["patch_swd_class_mean"] = float(
            np.mean([v for v in per_class.values() if v is not None])
        )
        row["coherence"] = coherence(output, source)
        row["coherence_semantic"] = coherence(output, source, target=target, labels=src_labels)
        row["psnr"] = psnr(output, good)
        row["ssim"] = ssim(output, good)
        row["psnr_edited"] = psnr(output, good, mask=edited)
        row["ssim_edited"] = ssim(output, good, mask=edited)
        table[name] = row
    table["_labeller"] = {"source_accuracy": labeller.source_accuracy}
    return table


@needs_data
@pytest.mark.parametrize("scene", SCENES)
def test_labeller_reads_its_source_well(scene: str) -> None:
    assert _scene_metrics(scene)["_labeller"]["source_accuracy"] > 0.95


@needs_data
@pytest.mark.parametrize("scene", SCENES)
@pytest.mark.parametrize("metric", sorted(RANKINGS))
def test_metric_ranks_good_output_above_degraded(metric: str, scene: str) -> None:
    table = _scene_metrics(scene)
    good = table["good_mild" if metric.startswith(("psnr", "ssim")) else "good"][metric]
    sign = 1.0 if metric in HIGHER_IS_BETTER else -1.0
    failures = {
        bad: table[bad][metric]
        for bad in RANKINGS[metric]
        if not sign * good > sign * table[bad][metric]
    }
    assert not failures, f"{scene}: {metric} of good output {good:.4f} not better than {failures}"


@needs_data
def test_copy_of_source_fails_on_a_real_edited_target() -> None:
    """zebra cond/1.png moves the zebras: copying the source must score low where labels change,
    and the mean-colour fill of the target layout (crude but correctly laid out) must beat it."""
    from semia.io import load_scene, read_target

    directory = DATA / "zebra"
    image, label_map = load_scene(directory / "img.png", directory / "label.png", SIZE)
    target = read_target(directory / "cond" / "1.png", label_map, "nearest", SIZE).ids
    labels, k = label_map.ids, label_map.num_classes
    means = np.stack([image[labels == c].mean(0) for c in range(k)]).astype(np.float32)
    copy = evaluate(image, labels, target, image, num_classes=k)
    fill = evaluate(image, labels, target, means[target], num_classes=k)
    assert copy["label_accuracy_edited"] < 0.2
    assert fill["label_accuracy_edited"] > copy["label_accuracy_edited"] + 0.5
    assert fill["miou_edited"] > copy["miou_edited"]
    assert copy["patch_swd"] < fill["patch_swd"]  # appearance: the copy is perfect, the fill flat
