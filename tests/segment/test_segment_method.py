"""`segment`: label maps from strokes on synthetic scenes with known truth, and bad inputs."""

from __future__ import annotations

import numpy as np
import pytest

import semia
from semia.io import InputError, LabelMap
from semia.segment import Scribbles, SegmentConfig, demo_scribbles, overlay, segment

PALETTE = np.array([[0, 200, 255], [0, 180, 0], [255, 150, 0]], np.uint8)


def iou(a: np.ndarray, b: np.ndarray, k: int) -> float:
    return float(((a == k) & (b == k)).sum() / ((a == k) | (b == k)).sum())


@pytest.fixture
def scene(textured_scene):
    return textured_scene()


def test_three_regions_are_recovered_from_dense_strokes(scene):
    image, truth = scene
    result = segment(image, demo_scribbles(truth, dense=True))
    assert np.array_equal(result.palette, PALETTE)
    ious = [iou(result.ids, truth.ids, k) for k in range(3)]
    assert np.mean(ious) > 0.95 and min(ious) > 0.93  # a plain random walker: 0.80, min 0.50


def test_one_stroke_per_region_is_enough_on_a_clean_scene(scene):
    image, truth = scene
    result = segment(image, demo_scribbles(truth, dense=False))
    assert min(iou(result.ids, truth.ids, k) for k in range(3)) > 0.9


def test_strokes_keep_their_class_and_uint8_images_work(scene):
    image, truth = scene
    strokes = demo_scribbles(truth, dense=True)
    strokes.ids[5, 5:8] = 2  # a deliberately "wrong" stroke in the sky: the user's word wins
    result = segment((image * 255).round().astype(np.uint8), strokes)
    drawn = strokes.ids >= 0
    assert np.array_equal(result.ids[drawn], strokes.ids[drawn])


def test_strokes_of_another_size_with_the_same_aspect_are_rescaled(scene):
    image, truth = scene
    small = demo_scribbles(LabelMap(ids=truth.ids[::2, ::2], palette=PALETTE), dense=True)
    assert small.ids.shape == (48, 64)
    result = segment(image, small)
    assert result.size == (96, 128)
    assert min(iou(result.ids, truth.ids, k) for k in range(3)) > 0.93


def test_same_seed_same_result_and_the_package_is_callable(scene):
    image, truth = scene
    strokes = demo_scribbles(truth, dense=False)
    first = segment(image, strokes, seed=1)
    assert np.array_equal(first.ids, semia.segment(image, strokes, seed=1).ids)


def test_unused_palette_colours_are_left_out(scene):
    image, truth = scene
    strokes = demo_scribbles(truth, dense=True)
    palette = np.concatenate([strokes.palette, [[9, 9, 9]]]).astype(np.uint8)  # never drawn
    ids = np.where(strokes.ids == 1, 3, strokes.ids)  # class 1 now uses the 4th colour
    palette[3] = PALETTE[1]
    palette[1] = [9, 9, 9]
    result = segment(image, (ids, palette))
    assert result.num_classes == 3
    assert [tuple(c) for c in result.palette.tolist()] == [
        tuple(PALETTE[0]),
        tuple(PALETTE[2]),
        tuple(PALETTE[1]),
    ]
    remapped = np.array([0, 2, 1])[result.ids]
    assert min(iou(remapped, truth.ids, k) for k in range(3)) > 0.95


def test_bad_inputs_raise_clear_errors(scene):
    image, truth = scene
    none = np.full(truth.ids.shape, -1, np.int64)
    with pytest.raises(InputError, match="no strokes"):
        segment(image, (none, PALETTE))
    one = none.copy()
    one[10:20, 10:20] = 0
    with pytest.raises(InputError, match="single colour"):
        segment(image, (one, PALETTE))
    other_aspect = demo_scribbles(LabelMap(ids=truth.ids[:, :64], palette=PALETTE))
    with pytest.raises(InputError, match="aspect ratio"):
        segment(image, other_aspect, name="--scribbles s.png")
    with pytest.raises(InputError, match="palette"):
        segment(image, Scribbles(demo_scribbles(truth).ids, PALETTE[:2]))
    with pytest.raises(InputError, match="image"):
        segment(image[..., :2], demo_scribbles(truth))
    for seed in (-1, 2**32):
        with pytest.raises(InputError, match=f"0..4294967295, got {seed}"):
            segment(image, demo_scribbles(truth), seed=seed)
    with pytest.raises(ValueError, match="beta"):
        SegmentConfig(beta=0)


def test_overlay_blends_and_outlines(scene):
    image, truth = scene
    out = overlay(image, truth, opacity=0.5)
    assert out.shape == image.shape
    inside = (5, 5)  # sky, far from any boundary
    expected = 0.5 * image[inside] + 0.5 * PALETTE[0] / 255.0
    assert np.allclose(out[inside], expected, atol=1e-6)
    edge = np.flatnonzero(truth.ids[:, 64] != truth.ids[0, 64])[0]  # first row of another class
    assert np.allclose(out[edge, 64], truth.palette[truth.ids[edge, 64]] / 255.0)
