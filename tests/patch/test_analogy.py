"""Tests of `semia.analogy`, the public entry point of the training-free method."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import PALETTE, scene_ids

import semia
from semia.io import LabelMap

pytestmark = pytest.mark.usefixtures("one_thread")


def _scene(height: int = 40, width: int = 56) -> tuple[np.ndarray, LabelMap]:
    ids = scene_ids(height, width)
    rng = np.random.default_rng(0)
    image = PALETTE[ids] / 255.0 * 0.8 + rng.uniform(0, 0.2, (height, width, 3))
    return image.astype(np.float32), LabelMap(ids, PALETTE)


def test_unchanged_layout_returns_the_source():
    image, labels = _scene()
    out = semia.analogy(image, labels, labels, seed=4)
    np.testing.assert_allclose(out, image, atol=1e-6)


def test_labelmap_ids_and_uint8_inputs_give_the_same_result():
    image, labels = _scene()
    target = labels.with_ids(np.roll(labels.ids, 12, axis=1))
    reference = semia.analogy(image, labels, target, seed=1)
    as_ids = semia.analogy(image, labels.ids, target.ids, seed=1)
    np.testing.assert_array_equal(reference, as_ids)
    as_uint8 = semia.analogy((image * 255).round().astype(np.uint8), labels, target, seed=1)
    assert np.abs(as_uint8 - reference).mean() < 0.01  # quantisation moves a few patches
    # the moved tree is green where the target says tree
    tree = reference[target.ids == 1].mean(0)
    assert tree[1] > tree[0] + 0.2 and tree[1] > tree[2] + 0.2


def test_a_target_of_another_size_sets_the_output_size():
    image, labels = _scene()
    target = scene_ids(30, 70)
    out = semia.analogy(image, labels, target, seed=0)
    assert out.shape == (30, 70, 3) and out.min() >= 0 and out.max() <= 1


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ("image_size", "same size"),
        ("image_range", r"\[0, 1\]"),
        ("target_class", "only 3 classes"),
        ("target_float", "integer"),
        ("missing_class", "does not contain"),
        ("negative_seed", r"seed must be a whole number in 0\.\.4294967295, got -1"),
        ("huge_seed", r"0\.\.4294967295, got 4294967296"),
    ],
)
def test_bad_inputs_raise_input_errors(change, match):
    image, labels = _scene()
    target = labels.ids.copy()
    if change == "image_size":
        image = image[:-2]
    elif change == "image_range":
        image = image * 3
    elif change == "target_class":
        target[:4, :4] = 7
    elif change == "target_float":
        target = target.astype(np.float32)
    elif change == "missing_class":
        labels = LabelMap(np.where(labels.ids == 1, 0, labels.ids), PALETTE)
    seed = {"negative_seed": -1, "huge_seed": 2**32}.get(change, 0)
    with pytest.raises(semia.InputError, match=match):
        semia.analogy(image, labels, target, seed=seed)
