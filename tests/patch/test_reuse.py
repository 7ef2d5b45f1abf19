"""The occurrence (uniformity) limit and the patch-reuse statistic of the training-free
synthesis (semia.patch)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from semia.config import PatchConfig
from semia.patch import nnf as nn_field
from semia.patch import patch_reuse, synthesize, synthesize_with_field

pytestmark = pytest.mark.usefixtures("one_thread")

NEW_TERMS = PatchConfig(uniformity=2.0)


def _noisy_scene(h: int = 48, w: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """A blue noise disc (class 1) on a red ramp (class 0), with one flat 7x7 block inside the
    disc at the disc's mean colour: the patch that best fits any blurry blue region."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[:h, :w]
    labels = ((y - 24) ** 2 + (x - 32) ** 2 <= 144).astype(np.int64)
    blue = np.array([0.1, 0.25, 0.8]) + 0.35 * (rng.random((h, w, 3)) - 0.5)
    red = np.stack([0.6 + 0.3 * x / w, 0.1 + 0.1 * y / h, 0.15 + 0 * x], -1)
    image = np.where(labels[..., None] == 1, blue, red).clip(0, 1).astype(np.float32)
    image[21:28, 29:36] = image[labels == 1].mean(0)
    return image, labels


def test_uniformity_stops_one_patch_flooding_a_region():
    image, labels = _noisy_scene()
    target = np.zeros_like(labels)
    target[12:] = 1  # a blue region 7x larger than the source's
    plain = dataclasses.replace(NEW_TERMS, uniformity=0.0)
    out_plain, field_plain = synthesize_with_field(image, labels, target, config=plain)
    out, field = synthesize_with_field(image, labels, target, config=NEW_TERMS)
    flooded, spread = patch_reuse(field_plain, target, labels), patch_reuse(field, target, labels)
    # without the limit a few source pixels fill a large connected area ...
    assert flooded["repeat_area"] > 10 and flooded["max_use"] > 20
    # ... with it no source pixel is used more than the limit allows, and none floods
    assert spread["repeat_area"] < 1 and spread["max_use"] <= 2 * NEW_TERMS.uniformity
    assert spread["use_entropy"] > flooded["use_entropy"] + 0.1
    # the region keeps the source's texture instead of going flat
    blue = target == 1
    assert out[blue].std(0).mean() > 1.1 * out_plain[blue].std(0).mean()


@pytest.mark.parametrize("exact_max_pairs", [PatchConfig.exact_max_pairs, 0])
def test_unchanged_layout_is_reproduced_exactly(exact_max_pairs):
    image, labels = _noisy_scene(40, 72)
    config = dataclasses.replace(NEW_TERMS, exact_max_pairs=exact_max_pairs, coarsest_side=8)
    out, field = synthesize_with_field(image, labels, labels, seed=1, config=config)
    np.testing.assert_allclose(out, image, atol=1e-5)
    y, x = np.mgrid[:40, :72]
    np.testing.assert_array_equal(field, np.stack([y, x], -1))
    stats = patch_reuse(field, labels, labels)
    assert stats == pytest.approx({"repeat_area": 0.0, "max_use": 1.0, "use_entropy": 1.0})


def test_seeds_still_vary_the_edited_regions():
    image, labels = _noisy_scene()
    target = labels.copy()
    target[30:, 5:25] = 1  # a new blue patch
    a = synthesize(image, labels, target, seed=0, config=NEW_TERMS)
    b = synthesize(image, labels, target, seed=1, config=NEW_TERMS)
    edited = target != labels
    assert np.abs(a - b)[edited].mean() > 10 * np.abs(a - b)[~edited].mean() + 1e-3


def test_admit_keeps_the_best_gains_up_to_the_limit():
    old = torch.tensor([0, 1, 2, 3, 4])
    old_d = torch.full((5,), 1.0)
    new = torch.tensor([5, 5, 5, 5, 4])  # four queries want source pixel 5; query 4 stays
    new_d = torch.tensor([0.5, 0.1, 0.3, 0.9, 1.0])
    limit = torch.full((5,), 2)
    field, dist = nn_field.admit(old, old_d, new, new_d, limit, num_sources=6)
    assert field.tolist() == [0, 5, 5, 3, 4]  # the two largest gains (queries 1 and 2)
    assert dist.tolist() == pytest.approx([1.0, 0.1, 0.3, 1.0, 1.0])
    # a source pixel already holding a query (query 4 holds pixel 4) admits fewer
    field, _ = nn_field.admit(old, old_d, torch.tensor([4, 4, 4, 3, 4]), new_d, limit, 6)
    assert field.tolist() == [0, 4, 2, 3, 4]


def test_a_second_search_pass_converges_the_field_under_the_limit():
    """Under the occurrence limit a round's moves are refused where a source pixel is full, so
    one PatchMatch pass leaves the field short of its matches; `search_passes` searches again."""
    from semia.patch.pyramid import build_pyramid
    from semia.patch.synthesis import feature_space, search_round

    image, labels = _noisy_scene()
    target = labels.copy()
    target[30:, 5:25] = 1  # a new blue patch
    img = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))
    (level,) = build_pyramid(img, torch.from_numpy(labels), torch.from_numpy(target), 2, 1)
    wanted = np.where(target[..., None] == labels[..., None], image, image[::-1])  # to match
    results = {}
    for passes in (1, 2):
        config = dataclasses.replace(NEW_TERMS, search_passes=passes)
        space = feature_space(level, config)
        keys = space.keys(level.image)
        query = space.queries(torch.from_numpy(np.ascontiguousarray(wanted.transpose(2, 0, 1))))
        classes = level.target.reshape(-1)
        generator = torch.Generator().manual_seed(0)
        start = nn_field.random_allowed(classes, level.allowed, generator)
        start_d = nn_field.patch_distance(query, keys, start)
        limit = nn_field.capacity(classes, level.allowed, config.uniformity)
        field, dist = search_round(
            query, keys, level, start, start_d, config, generator, limit, exact=False
        )
        # a match is replaced only by a closer one, and the field obeys the class constraint
        assert (dist <= start_d).all()
        assert nn_field.is_allowed(field, classes, level.allowed).all()
        torch.testing.assert_close(dist, nn_field.patch_distance(query, keys, field))
        # no source pixel takes on more queries than the limit, beyond those it already had
        uses = torch.bincount(field, minlength=keys.shape[0])
        had = torch.bincount(start, minlength=keys.shape[0])
        assert (uses <= torch.maximum(had, limit.max().expand_as(had))).all()
        results[passes] = float(dist.mean())
    assert results[2] < 0.9 * results[1]


def test_exact_matches_are_not_searched_but_count_for_the_limit():
    """PatchMatch skips the queries that already copy their match exactly (most of an unchanged
    region), but the source pixels those hold still count against the occurrence limit."""
    rng = torch.Generator().manual_seed(0)
    keys = torch.rand((16, 5), generator=rng)
    query = keys.clone()  # every query matches its own source pixel exactly ...
    query[3] = keys[7]  # ... but query 3 wants source pixel 7, which query 7 holds
    field = torch.arange(16)
    dist = nn_field.patch_distance(query, keys, field)
    classes = torch.zeros(16, dtype=torch.long)
    allowed = torch.ones((1, 16), dtype=torch.bool)
    size = (4, 4)
    for limit, moved in ((1, False), (2, True)):
        limits = torch.full((16,), limit)
        cands = torch.tensor([[7]])  # query 3's candidate
        rows = torch.tensor([3])
        new, new_d = nn_field._best_of(
            query, keys, classes, allowed, cands, field, dist, limits, rows
        )
        assert (int(new[3]) == 7) is moved
        assert torch.equal(new[torch.arange(16) != 3], field[torch.arange(16) != 3])
    # a full PatchMatch pass leaves the exact matches as they are
    new, new_d = nn_field.patchmatch(
        query, keys, classes, allowed, field, dist, size, size, (1,), 2, rng, None
    )
    exact = torch.arange(16) != 3
    assert torch.equal(new[exact], field[exact]) and bool((new_d[exact] == 0).all())
    assert float(new_d[3]) <= float(dist[3])


def test_capacity_scales_with_the_class_need():
    allowed = torch.tensor([[1, 1, 1, 1, 0, 0], [0, 0, 0, 0, 1, 1]], dtype=torch.bool)
    classes = torch.tensor([0, 0, 1, 1, 1, 1, 1, 1])  # class 1: 6 targets, 2 sources: need 3
    assert nn_field.capacity(classes, allowed, 2.0).tolist() == [2, 2] + [6] * 6


def test_patch_reuse_of_a_constant_field():
    labels = np.zeros((10, 12), np.int64)
    field = np.full((10, 12, 2), 3)
    stats = patch_reuse(field, labels, labels)
    assert stats["repeat_area"] == 100.0 and stats["max_use"] == 120.0
    assert stats["use_entropy"] == 0.0
    with pytest.raises(ValueError, match="field has shape"):
        patch_reuse(field[:5], labels, labels)


def test_negative_uniformity_raises():
    with pytest.raises(ValueError, match="uniformity"):
        PatchConfig(uniformity=-1.0)
