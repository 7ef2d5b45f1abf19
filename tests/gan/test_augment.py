"""Tests of semia.augment: progressive joint warps of (image, labels)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from semia.config import AugmentConfig
from semia.gan.augment import augment_pair, augment_strength, paste_regions, tps_grid


def _pair(batch: int = 2, height: int = 31, width: int = 44, classes: int = 5, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    image = torch.rand(batch, 3, height, width, generator=gen)
    coarse = torch.randint(0, classes, (batch, 1, 5, 5), generator=gen).float()
    ids = F.interpolate(coarse, size=(height, width), mode="nearest")[:, 0].long()
    return image, ids


def test_strength_ramp():
    cfg = AugmentConfig(ramp_iters=100)
    assert augment_strength(0, cfg) == 0.0
    assert augment_strength(50, cfg) == pytest.approx(0.5)
    assert augment_strength(100, cfg) == 1.0
    assert augment_strength(1000, cfg) == 1.0
    assert augment_strength(0, AugmentConfig(ramp_iters=0)) == 1.0


def test_strength_zero_is_identity():
    image, ids = _pair()
    out_img, out_ids = augment_pair(
        image, ids, 0.0, AugmentConfig(), torch.Generator().manual_seed(0)
    )
    assert torch.equal(out_img, image)
    assert torch.equal(out_ids, ids)


def test_full_strength_changes_and_keeps_shapes_and_ids():
    image, ids = _pair()
    cfg = AugmentConfig(max_rotation=10.0, max_shift=0.05)
    out_img, out_ids = augment_pair(image, ids, 1.0, cfg, torch.Generator().manual_seed(1))
    assert out_img.shape == image.shape
    assert out_ids.shape == ids.shape and out_ids.dtype == torch.int64
    assert not torch.equal(out_ids, ids)
    for b in range(ids.shape[0]):
        assert set(out_ids[b].unique().tolist()) <= set(ids[b].unique().tolist())
    # image values stay in the input range (bilinear interpolation of [0, 1])
    assert out_img.min() >= 0.0 and out_img.max() <= 1.0


def test_image_and_labels_warped_jointly():
    # image = a colour per class: after the warp, the image at each pixel must still be the
    # colour of the label there (away from class boundaries, where bilinear blends)
    _, ids = _pair(batch=1, height=40, width=40, classes=3, seed=2)
    palette = torch.tensor([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    image = palette[ids].permute(0, 3, 1, 2)  # (B, H, W, 3) -> (B, 3, H, W)
    out_img, out_ids = augment_pair(
        image, ids, 1.0, AugmentConfig(), torch.Generator().manual_seed(3)
    )
    expected = palette[out_ids].permute(0, 3, 1, 2)
    close = (out_img - expected).abs().amax(1) < 0.05  # (B, H, W)
    assert close.float().mean() > 0.85


def test_seeded_determinism():
    image, ids = _pair()
    a = augment_pair(image, ids, 0.7, AugmentConfig(), torch.Generator().manual_seed(9))
    b = augment_pair(image, ids, 0.7, AugmentConfig(), torch.Generator().manual_seed(9))
    c = augment_pair(image, ids, 0.7, AugmentConfig(), torch.Generator().manual_seed(10))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0])


def test_flip_only_flips():
    image, ids = _pair(batch=1)
    cfg = AugmentConfig(max_scale=0.0, flip_prob=1.0, tps_offset=0.0)
    out_img, out_ids = augment_pair(image, ids, 1.0, cfg, torch.Generator().manual_seed(0))
    assert torch.equal(out_ids, ids.flip(-1))
    torch.testing.assert_close(out_img, image.flip(-1), atol=1e-5, rtol=0)


def test_no_flip_no_warp_is_identity_up_to_float():
    image, ids = _pair(batch=1)
    cfg = AugmentConfig(max_scale=0.0, flip_prob=0.0, tps_offset=0.0)
    out_img, out_ids = augment_pair(image, ids, 1.0, cfg, torch.Generator().manual_seed(0))
    assert torch.equal(out_ids, ids)
    torch.testing.assert_close(out_img, image, atol=1e-5, rtol=0)


def test_tps_interpolates_control_points():
    gen = torch.Generator().manual_seed(0)
    offsets = (torch.rand(1, 9, 2, generator=gen) - 0.5) * 0.1
    # a 5x5 grid with align-corners-free pixel centres hits the control points of a 3x3 grid
    # only approximately; use a size where pixel centres include -1+1/h ... so check smoothness
    dense = tps_grid(offsets, 41, 41)
    assert dense.shape == (1, 41, 41, 2)
    zero = tps_grid(torch.zeros(1, 9, 2), 41, 41)
    lin = torch.linspace(-1 + 1 / 41, 1 - 1 / 41, 41)
    torch.testing.assert_close(zero[0, 0, :, 0], lin, atol=1e-6, rtol=0)
    torch.testing.assert_close(zero[0, :, 0, 1], lin, atol=1e-6, rtol=0)
    # displacement bounded by a small multiple of the largest offset
    assert (dense - zero).abs().max() < 3 * offsets.abs().max()
    assert (dense - zero).abs().max() > 0.1 * offsets.abs().max()


def test_bad_inputs():
    image, ids = _pair()
    gen = torch.Generator().manual_seed(0)
    with pytest.raises(ValueError, match="labels"):
        augment_pair(image, ids[:, :-1], 0.5, AugmentConfig(), gen)
    with pytest.raises(ValueError, match="int64"):
        augment_pair(image, ids.int(), 0.5, AugmentConfig(), gen)
    with pytest.raises(ValueError, match="strength"):
        augment_pair(image, ids, 1.5, AugmentConfig(), gen)


def test_paste_moves_real_content_where_the_class_changes():
    # image = a colour per class plus a per-pixel code: every changed pixel must hold the colour
    # of its new class (a real pixel of that class, copied with its code), unchanged pixels keep
    # their content exactly, and a large region changes class
    _, ids = _pair(batch=4, height=48, width=64, classes=3, seed=4)
    palette = torch.tensor([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    image = palette[ids].permute(0, 3, 1, 2).clone()
    code = torch.arange(48 * 64, dtype=torch.float32).reshape(1, 48, 64) / (48 * 64)
    image[:, 2] = code  # blue channel = where the pixel came from
    cfg = AugmentConfig(paste_prob=1.0, paste_min=0.3, paste_max=0.5)
    out_img, out_ids = paste_regions(image, ids, 1.0, cfg, torch.Generator().manual_seed(5))
    changed = out_ids != ids
    assert changed.float().mean() > 0.02
    same = ~changed[:, None].expand_as(image)
    assert torch.equal(out_img[same], image[same])
    assert torch.equal(out_img[:, :2].permute(0, 2, 3, 1), palette[out_ids][..., :2])
    # the moved pixels form a shifted copy: each changed pixel's code is another position's
    moved_codes = out_img[:, 2][changed]
    assert (moved_codes != image[:, 2][changed]).all()
    # the inputs are untouched and the draws are seeded
    again = paste_regions(image, ids, 1.0, cfg, torch.Generator().manual_seed(5))
    assert torch.equal(again[0], out_img) and torch.equal(again[1], out_ids)
    assert not torch.equal(out_ids, ids) and torch.equal(ids, _pair(4, 48, 64, 3, 4)[1])


def test_paste_off_or_zero_strength_is_identity():
    image, ids = _pair()
    gen = torch.Generator().manual_seed(0)
    for strength, prob in ((0.0, 1.0), (1.0, 0.0)):
        out_img, out_ids = paste_regions(image, ids, strength, AugmentConfig(paste_prob=prob), gen)
        assert torch.equal(out_img, image) and torch.equal(out_ids, ids)
    # nothing was drawn: the generator state is where it started
    assert torch.equal(gen.get_state(), torch.Generator().manual_seed(0).get_state())
