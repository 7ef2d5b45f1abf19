"""The rim shade correction (PatchConfig.rim_shade, semia.patch.rims)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch
from scipy import ndimage

from semia.config import PatchConfig
from semia.patch import synthesize
from semia.patch.rims import class_distance, far_shade

SIDE, RADIUS = 128, 16


def _sky(side: int = SIDE) -> np.ndarray:
    """(side, side, 3) a sky that lightens downwards, as a photo's does toward the horizon."""
    y = np.linspace(0, 1, side, dtype=np.float32)[:, None, None]
    sky = np.concatenate([0.15 + 0.5 * y, 0.35 + 0.4 * y, 0.95 + 0 * y], 2)
    return sky * np.ones((1, side, 1), np.float32)


def _disc(cy: int, cx: int) -> np.ndarray:
    yy, xx = np.mgrid[:SIDE, :SIDE]
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= RADIUS**2


def _tree_moved_down(
    shadow: float = 0.0, grain: float = 0.01
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A textured green disc high in the sky (with a dark band of `shadow` within 4 px of it,
    and noise of standard deviation `grain` on the sky) moved lower: image, source labels,
    target labels."""
    rng = np.random.default_rng(0)
    old, new = _disc(28, 40), _disc(88, 88)
    image = _sky() + rng.normal(0, grain, (SIDE, SIDE, 3)).astype(np.float32)
    distance = ndimage.distance_transform_edt(~old)
    image[(distance > 0) & (distance <= 4)] -= shadow
    low, span = np.array([0.2, 0.45, 0.1]), np.array([0.15, 0.2, 0.1])
    leaves = (low + span * rng.random((SIDE, SIDE, 3))).astype(np.float32)
    image[old] = leaves[old]
    return np.clip(image, 0, 1), old.astype(np.int64), new.astype(np.int64)


def _error_by_distance(rim_shade: bool, shadow: float = 0.0) -> dict[int, float]:
    """The output's mean offset from the true sky, in 2 px rings around the moved disc."""
    image, labels, target = _tree_moved_down(shadow)
    config = replace(PatchConfig(), rim_shade=rim_shade)
    out = synthesize(image, labels, target, seed=0, config=config)
    offset = (out - _sky()).mean(2)
    distance = ndimage.distance_transform_edt(target == 0)
    return {a: float(offset[(distance > a) & (distance <= a + 2)].mean()) for a in range(0, 14, 2)}


def test_class_distance_on_a_known_map():
    ids = torch.zeros(5, 9, dtype=torch.long)
    ids[:, 4] = 2  # a vertical line of class 2 in a field of class 0
    dist, near = class_distance(ids, 3, 3)
    assert dist[2].tolist() == [4, 3, 2, 1, 1, 1, 2, 3, 4]  # 4 = farther than the radius
    assert near[2, 1:8].tolist() == [2, 2, 2, 0, 2, 2, 2]


def _brute_class_distance(ids: np.ndarray, radius: int) -> tuple[np.ndarray, np.ndarray]:
    """class_distance by its definition, one pixel and window at a time."""
    height, width = ids.shape
    dist = np.full(ids.shape, radius + 1)
    near = np.zeros(ids.shape, dtype=np.int64)
    for y in range(height):
        for x in range(width):
            for j in range(1, radius + 1):
                window = ids[max(y - j, 0) : y + j + 1, max(x - j, 0) : x + j + 1]
                others = window[window != ids[y, x]]
                if others.size:
                    dist[y, x] = j
                    near[y, x] = np.bincount(others).argmax()  # the lowest id of a tie
                    break
    return dist, near


def test_class_distance_matches_its_definition_on_random_maps():
    rng = np.random.default_rng(3)
    for k, cells in ((2, 3), (4, 5), (6, 9)):
        coarse = rng.integers(0, k, (cells, cells + 2))
        ids = np.kron(coarse, np.ones((4, 3), dtype=np.int64))[:, :23]  # blocks, cut unevenly
        ids[rng.random(ids.shape) < 0.03] = k - 1  # and lone pixels
        dist, near = class_distance(torch.from_numpy(ids), k, 3)
        want_dist, want_near = _brute_class_distance(ids, 3)
        assert np.array_equal(dist.numpy(), want_dist)
        assert np.array_equal(near.numpy(), want_near)


def test_far_shade_is_the_mean_of_the_class_away_from_its_boundary():
    image = torch.zeros(3, 8, 8)
    image[:, :, 4:] = 1.0
    ids = torch.zeros(8, 8, dtype=torch.long)
    ids[:, 4:] = 1
    far = torch.ones(8, 8, dtype=torch.bool)
    far[:, 3:5] = False  # the columns beside the boundary
    shade, trusted = far_shade(image, ids, far, torch.tensor([0, 1]), 1.0)
    assert trusted.all()
    assert torch.allclose(shade[:, :, :4], torch.zeros(3, 8, 4))
    assert torch.allclose(shade[:, :, 4:], torch.ones(3, 8, 4))
    # a class left out of `classes` is not trusted
    _, trusted = far_shade(image, ids, far, torch.tensor([1]), 1.0)
    assert not trusted[:, :4].any() and trusted[:, 4:].all()


def test_rim_shade_removes_the_halo_around_an_object_moved_to_another_height():
    off, on = _error_by_distance(False), _error_by_distance(True)
    # without it the sky copied from around the disc's old, higher place is darker than the
    # sky at the new height, for more than 10 px around the disc
    assert off[4] < -0.04 and off[8] < -0.02
    # with it the halo is less than half as dark, the 1-3 px ring at the edge too (where the
    # finest level's boundary patches bring the source's rim back: corrected after its votes)
    for a in (0, 2, 4, 6, 8, 10):
        assert abs(on[a]) < 0.5 * abs(off[a])


def test_rim_shade_also_corrects_the_sky_where_the_object_stood():
    """The disc moved 28 px down and 12 px right: its new rim band takes in pixels of its old
    place (disc -> sky), which are corrected like the sky whose label stays."""
    rng = np.random.default_rng(0)
    old, new = _disc(28, 40), _disc(56, 52)
    image = _sky() + rng.normal(0, 0.01, (SIDE, SIDE, 3)).astype(np.float32)
    leaves = np.array([0.2, 0.45, 0.1]) + np.array([0.15, 0.2, 0.1]) * rng.random((SIDE, SIDE, 3))
    image[old] = leaves[old]
    image = np.clip(image, 0, 1).astype(np.float32)
    labels, target = old.astype(np.int64), new.astype(np.int64)
    was_disc = old & ~new  # sky in the target
    distance = ndimage.distance_transform_edt(~new)
    error = {}
    for rim_shade in (False, True):
        config = replace(PatchConfig(), rim_shade=rim_shade)
        out = synthesize(image, labels, target, seed=0, config=config)
        offset = (out - _sky()).mean(2)
        error[rim_shade] = [
            offset[was_disc & (distance > a) & (distance <= a + 2)].mean() for a in (0, 2)
        ]
    assert min(error[False]) < -0.045  # darker than the sky there, next to the disc
    for on, off in zip(error[True], error[False], strict=True):
        assert abs(on) < 0.8 * abs(off)


def test_rim_shade_keeps_a_dark_band_that_the_source_has():
    # a shadow-like band of -0.15 within 4 px of the source disc belongs to the rim: it stays
    on = _error_by_distance(True, shadow=0.15)
    assert on[0] < -0.15 and on[2] < -0.07
    assert abs(on[8]) < 0.03


def test_rim_shade_leaves_a_textured_class_alone():
    # the same scene with a grainy sky (noise 0.06, as foliage or a facade): not corrected
    image, labels, target = _tree_moved_down(grain=0.06)
    plain = synthesize(image, labels, target, seed=0, config=PatchConfig(rim_shade=False))
    with_rims = synthesize(image, labels, target, seed=0, config=PatchConfig(rim_shade=True))
    assert np.array_equal(plain, with_rims)
    # while the smooth sky's output does change
    image, labels, target = _tree_moved_down()
    plain = synthesize(image, labels, target, seed=0, config=PatchConfig(rim_shade=False))
    with_rims = synthesize(image, labels, target, seed=0, config=PatchConfig(rim_shade=True))
    assert np.abs(plain - with_rims).max() > 0.05


def test_an_unchanged_layout_stays_exact_with_rim_shade():
    image, labels, _ = _tree_moved_down()
    out = synthesize(image, labels, labels, seed=0, config=replace(PatchConfig(), rim_shade=True))
    assert np.abs(out - image).max() < 1e-5  # the source, up to the votes' float rounding


def test_rim_shade_with_a_target_of_another_size_is_the_plain_synthesis():
    image, labels, target = _tree_moved_down()
    small = target[::2, ::2]
    plain = synthesize(image, labels, small, seed=0, config=PatchConfig(rim_shade=False))
    with_rims = synthesize(
        image, labels, small, seed=0, config=replace(PatchConfig(), rim_shade=True)
    )
    assert np.array_equal(plain, with_rims)


def test_rim_shade_with_a_class_too_thin_for_the_coarse_levels():
    # a 1 px red line (the highest class id) vanishes from the source's coarse levels, while
    # the target draws it 12 px wide: the correction has no statistics for it and leaves it be
    image, labels, target = _tree_moved_down()
    image[:, 110] = (0.9, 0.1, 0.1)
    labels[:, 110] = 2
    target[:, 104:116] = 2
    out = synthesize(image, labels, target, seed=0, config=replace(PatchConfig(), rim_shade=True))
    assert np.abs(out[target == 2] - (0.9, 0.1, 0.1)).max() < 1e-5
    assert np.abs(out[:, 20] - _sky()[:, 20]).mean() < 0.03  # the sky far from any change


def test_rim_shade_lightens_the_halo_around_the_packaged_trees_second_tree(example_dir):
    """The packaged tree's target 4 adds a smaller tree lower in the sky: without the
    correction its crown sits in a ring of darker sky copied from around the source's higher
    crown. Measured against the source photo's own sky at those pixels (sky there too, far from
    the source's tree), in the ring 2-12 px (at 256 px) around the new crown."""
    import semia

    assert PatchConfig().rim_shade  # on by default
    root = example_dir / "tree"
    image, labels = semia.load_scene(root / "img.png", root / "label.png", max_size=192)
    target = semia.read_target(root / "cond" / "4.png", labels)
    sky, scale = labels.ids[0, 0], 192 / 256
    from_source = ndimage.distance_transform_edt(labels.ids == sky)
    from_target = ndimage.distance_transform_edt(target.ids == sky)
    ring = (target.ids == sky) & (from_target > 2 * scale) & (from_target <= 12 * scale)
    ring &= from_source > 16 * scale
    assert ring.sum() > 300
    error = {}
    for rim_shade in (False, True):
        outs = [
            semia.analogy(image, labels, target, seed=s, config=PatchConfig(rim_shade=rim_shade))
            for s in (0, 1)
        ]
        error[rim_shade] = np.mean([np.abs(out[ring] - image[ring]).mean() for out in outs])
    assert error[True] < 0.9 * error[False]
