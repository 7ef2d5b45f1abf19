"""Tests of semia.models: generator (SFT), discriminator, segmenter."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from semia.config import GeneratorConfig
from semia.gan.losses import (
    feature_matching_loss,
    fixed_point_loss,
    lsgan_d_loss,
    lsgan_g_loss,
    reconstruction_loss,
    semantic_alignment_loss,
)
from semia.gan.networks import Discriminator, Generator, Segmenter
from semia.gan.networks.fill import fill_changed

K = 4


def _onehot(ids: torch.Tensor, k: int = K) -> torch.Tensor:
    return F.one_hot(ids, k).permute(0, 3, 1, 2).float()  # (B, H, W, K) -> (B, K, H, W)


def _blocky_ids(batch: int, height: int, width: int, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    coarse = torch.randint(0, K, (batch, 1, 4, 4), generator=gen).float()
    return F.interpolate(coarse, size=(height, width), mode="nearest")[:, 0].long()


def _image(batch: int, height: int, width: int, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(batch, 3, height, width, generator=gen) * 2 - 1


def _make(cls, *args, seed: int = 0, **kwargs):
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return cls(*args, **kwargs)


@pytest.mark.parametrize("size", [(32, 32), (37, 53), (17, 24)])
def test_generator_shapes_same_size(size):
    gen = _make(Generator, K)
    h, w = size
    src = _onehot(_blocky_ids(2, h, w, 0))
    tgt = _onehot(_blocky_ids(2, h, w, 1))
    out = gen(_image(2, h, w), src, tgt)
    assert out.shape == (2, 3, h, w)
    assert out.abs().max() <= 1.0
    assert torch.isfinite(out).all()


def test_generator_target_size_differs():
    gen = _make(Generator, K)
    src = _onehot(_blocky_ids(1, 40, 30, 0))
    tgt = _onehot(_blocky_ids(1, 27, 61, 1))
    out, params = gen.translate(_image(1, 40, 30), src, tgt)
    assert out.shape == (1, 3, 27, 61)
    levels = gen.config.num_levels
    assert len(params) == 2 * levels + 1
    # the target is padded to a multiple of 2**levels (27x61 -> 32x64); encoder levels 0..L,
    # then decoder levels L-1..0
    order = [*range(levels + 1), *reversed(range(levels))]
    for (gamma, beta), level in zip(params, order, strict=True):
        assert gamma.shape == beta.shape
        assert gamma.shape[-2:] == (32 // 2**level, 64 // 2**level)


@pytest.mark.parametrize("norm", ["instance", "pixel"])
def test_generator_identity_translation_when_source_equals_target(norm):
    gen = _make(Generator, K, GeneratorConfig(norm=norm))
    src = _onehot(_blocky_ids(1, 33, 45, 3))
    _, params = gen.translate(_image(1, 33, 45), src, src)
    for gamma, beta in params:
        assert torch.equal(gamma, torch.ones_like(gamma))
        assert torch.equal(beta, torch.zeros_like(beta))
    assert fixed_point_loss(params).item() == 0.0
    # a different target does modulate
    _, params2 = gen.translate(_image(1, 33, 45), src, _onehot(_blocky_ids(1, 33, 45, 4)))
    assert fixed_point_loss(params2).item() > 1e-4


def test_generator_rejects_bad_inputs():
    gen = _make(Generator, K)
    src = _onehot(_blocky_ids(1, 16, 16, 0))
    with pytest.raises(ValueError, match="one-hot"):
        gen(_image(1, 16, 16), src[:, :3], src)
    with pytest.raises(ValueError, match="image"):
        gen(_image(1, 16, 16)[:, :2], src, src)
    with pytest.raises(ValueError, match="source size"):
        gen(_image(1, 16, 20), src, src)
    with pytest.raises(ValueError, match="norm"):
        Generator(K, GeneratorConfig(norm="batch"))


def test_generator_deterministic_under_seed():
    a = _make(Generator, K, seed=5)
    b = _make(Generator, K, seed=5)
    src = _onehot(_blocky_ids(1, 24, 24, 0))
    tgt = _onehot(_blocky_ids(1, 24, 24, 1))
    x = _image(1, 24, 24)
    assert torch.equal(a(x, src, tgt), b(x, src, tgt))


def _assert_all_grads(module: torch.nn.Module) -> None:
    for name, p in module.named_parameters():
        assert p.grad is not None, f"{name} has no grad"
        assert torch.isfinite(p.grad).all(), f"{name} grad not finite"
        assert p.grad.abs().sum() > 0, f"{name} grad is zero"


def test_generator_gradient_flow():
    gen = _make(Generator, K)
    disc = _make(Discriminator)
    x = _image(1, 32, 40)
    src = _onehot(_blocky_ids(1, 32, 40, 0))
    tgt = _onehot(_blocky_ids(1, 32, 40, 1))
    fake = gen(x, src, tgt)
    logits, _ = disc(fake)
    (lsgan_g_loss(logits) + reconstruction_loss(fake, x)).backward()
    _assert_all_grads(gen)


def test_discriminator_shapes_and_gradient_flow():
    disc = _make(Discriminator)
    real, fake = _image(2, 35, 48, 0), _image(2, 35, 48, 1)
    real_logits, real_feats = disc(real)
    fake_logits, fake_feats = disc(fake)
    assert len(real_logits) == 2
    assert real_logits[0].shape == (2, 1, 35 // 4, 48 // 4)
    assert real_logits[1].shape == (2, 1, 35 // 8, 48 // 8)
    assert len(real_feats) == len(fake_feats) >= 3
    loss = lsgan_d_loss(real_logits, fake_logits) + feature_matching_loss(real_feats, fake_feats)
    loss.backward()
    _assert_all_grads(disc)


def test_discriminator_rejects_small_images():
    disc = _make(Discriminator)
    with pytest.raises(ValueError, match="too small"):
        disc(_image(1, 8, 40))


@pytest.mark.parametrize("size", [(32, 32), (45, 31), (128, 96)])
def test_segmenter_shapes(size):
    seg = _make(Segmenter, K)
    logits = seg(_image(2, *size))
    assert logits.shape == (2, K, *size)


def test_segmenter_rejects_tiny_images():
    seg = _make(Segmenter, K)
    with pytest.raises(ValueError, match="too small"):
        seg(_image(1, 4, 4))
    assert seg(_image(1, 5, 7)).shape == (1, K, 5, 7)


def test_segmenter_gradient_flow_and_learns():
    seg = _make(Segmenter, K)
    ids = _blocky_ids(1, 32, 32, 2)
    # image whose colour encodes the class: the segmenter can fit it quickly
    palette = torch.tensor([[-1.0, -1, -1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]])
    x = palette[ids].permute(0, 3, 1, 2)  # (B, H, W, 3) -> (B, 3, H, W)
    semantic_alignment_loss(seg(x), ids).backward()
    _assert_all_grads(seg)
    opt = torch.optim.Adam(seg.parameters(), lr=1e-2)
    first = None
    for _ in range(40):
        opt.zero_grad()
        loss = semantic_alignment_loss(seg(x), ids)
        first = loss.item() if first is None else first
        loss.backward()
        opt.step()
    assert loss.item() < 0.5 * first


def test_change_gate_damps_gamma_only_where_labels_differ():
    gated = _make(Generator, K, GeneratorConfig(change_gate=1.0), seed=7)
    plain = _make(Generator, K, GeneratorConfig(change_gate=0.0), seed=7)
    src_ids = _blocky_ids(1, 32, 32, 0)
    tgt_ids = src_ids.clone()
    tgt_ids[:, :16, :16] = (src_ids[:, :16, :16] + 1) % K  # change the top-left quarter only
    x, src, tgt = _image(1, 32, 32), _onehot(src_ids), _onehot(tgt_ids)
    _, p_gated = gated.translate(x, src, tgt)
    _, p_plain = plain.translate(x, src, tgt)
    g_gated, g_plain = p_gated[0][0], p_plain[0][0]  # encoder level 0: (1, C, 32, 32)
    assert (g_gated.abs() <= g_plain.abs() + 1e-6).all()
    assert (g_gated.abs() < 0.9 * g_plain.abs()).float()[..., 2:14, 2:14].mean() > 0.9
    torch.testing.assert_close(g_gated[..., 24:, 24:], g_plain[..., 24:, 24:])  # far from change


@pytest.mark.parametrize("mode", ["mean", "sample"])
def test_fill_changed_replaces_only_changed_pixels_with_target_class_content(mode):
    gen = torch.Generator().manual_seed(3)
    src_ids = torch.zeros(1, 40, 48, dtype=torch.long)  # quadrants of classes 0, 1, 2, 0
    src_ids[:, :20, 24:] = 1
    src_ids[:, 20:, :24] = 2  # class K - 1 = 3 is absent from the source
    tgt_ids = src_ids.clone()
    tgt_ids[:, 4:16, 10:40] = 2  # paint a rectangle of class 2 over classes 0 and 1
    tgt_ids[:, 30:, 40:] = K - 1  # and a corner of the absent class
    # class c's pixels have red channel in [2c, 2c + 0.5): content is traceable to its class
    image = 2 * src_ids[:, None].float().expand(1, 3, 40, 48) + 0.5 * torch.rand(
        1, 3, 40, 48, generator=gen
    )
    src, tgt = _onehot(src_ids), _onehot(tgt_ids)
    out = fill_changed(image, src, tgt, mode)
    unchanged = (src_ids == tgt_ids)[:, None].expand_as(image)
    torch.testing.assert_close(out[unchanged], image[unchanged])  # untouched where layouts agree
    # with dilation, the pixels next to a change are filled too, those farther stay untouched
    dilated = fill_changed(image, src, tgt, mode, dilate=2)
    far = F.max_pool2d((src_ids != tgt_ids)[:, None].float(), 5, stride=1, padding=2) == 0
    near = ~far & (src_ids == tgt_ids)[:, None]
    torch.testing.assert_close(dilated[far.expand_as(image)], image[far.expand_as(image)])
    ring = (near & (tgt_ids == 0)[:, None])[:, 0]  # class-0 pixels next to the change
    assert ring.sum() > 20
    red_ring = dilated[:, 0][ring]
    assert not torch.equal(red_ring, image[:, 0][ring])  # refilled ...
    assert ((red_ring > -0.5) & (red_ring < 1.0)).all()  # ... with class-0 content
    if mode == "mean":
        pool0 = float(image[:, 0][src_ids == 0].mean())
        torch.testing.assert_close(red_ring, torch.full_like(red_ring, pool0))
    painted = (tgt_ids == 2) & (src_ids != 2)
    red = out[:, 0][painted]
    pool = image[:, 0][src_ids == 2]
    if mode == "sample":
        # class-2 texture (block means smoothed, so values may leave [4, 4.5) a little), nothing
        # of classes 0 and 1 (red near 0 and 2)
        assert ((red > 3.5) & (red < 5.0)).all()
        assert red.std() > 0.05  # texture, not one flat colour
        assert abs(float(red.mean()) - float(pool.mean())) < 0.1
    else:
        torch.testing.assert_close(red, torch.full_like(red, float(pool.mean())))
    absent = (tgt_ids == K - 1)[:, None].expand_as(image)
    means = image.mean(dim=(2, 3))[..., None, None].expand_as(image)
    torch.testing.assert_close(out[absent], means[absent])  # unseen class: the image's mean colour
    torch.testing.assert_close(fill_changed(image, src, tgt, mode), out)  # deterministic


def test_generator_fill_changed_keeps_identity_and_shapes():
    net = _make(Generator, K, GeneratorConfig(fill_changed="sample"), seed=2)
    ids = _blocky_ids(1, 37, 53, 4)
    x = _image(1, 37, 53)
    out, params = net.translate(x, _onehot(ids), _onehot(ids))
    assert out.shape == (1, 3, 37, 53)
    for gamma, beta in params:
        torch.testing.assert_close(gamma, torch.ones_like(gamma))
        torch.testing.assert_close(beta, torch.zeros_like(beta))
    tgt = _blocky_ids(1, 29, 41, 5)
    assert net(x, _onehot(ids), _onehot(tgt)).shape == (1, 3, 29, 41)


def test_fill_changed_samples_blocks_from_the_same_height():
    # a sky whose colour depends on the height: the filled blocks must come from nearby rows,
    # or the filled region would be a patchwork of light and dark blocks
    h, w = 64, 96
    src_ids = torch.zeros(1, h, w, dtype=torch.long)
    src_ids[:, 16:48, 32:64] = 1  # an object in the sky ...
    tgt_ids = torch.zeros_like(src_ids)  # ... removed in the target
    rows = torch.arange(h, dtype=torch.float32)[:, None].expand(h, w) / h
    image = torch.stack([rows, rows, 1 - rows])[None]
    image[:, :, 16:48, 32:64] = 0.5
    out = fill_changed(image, _onehot(src_ids, 2), _onehot(tgt_ids, 2), "sample")
    error = (out[0, 0, 16:48, 32:64] - rows[16:48, 32:64]).abs().mean()
    assert error < 0.08  # uniform random anchors over the sky: about 0.3


def test_fill_margin_copies_no_border_pixels():
    # class 1 is a square whose 2-pixel rim is white (a halo blending into the sky) and whose
    # interior is dark: with anchors inside the class, a new class-1 region gets no white
    h, w = 64, 96
    src_ids = torch.zeros(1, h, w, dtype=torch.long)
    src_ids[:, 8:56, 8:48] = 1
    image = torch.full((1, 3, h, w), 0.8)  # sky
    image[:, :, 8:56, 8:48] = 1.0  # rim ...
    image[:, :, 10:54, 10:46] = -0.5 + 0.1 * torch.rand(1, 3, 44, 36)  # ... around dark content
    tgt_ids = src_ids.clone()
    tgt_ids[:, 8:56, 56:90] = 1  # a second object of class 1 in the sky
    src, tgt = _onehot(src_ids, 2), _onehot(tgt_ids, 2)
    new = (tgt_ids == 1) & (src_ids == 0)
    anywhere = fill_changed(image, src, tgt, "sample")[:, 0][new]
    inside = fill_changed(image, src, tgt, "sample", margin=2)[:, 0][new]
    assert (anywhere > 0.5).float().mean() > 0.05  # rim pixels copied in the old way
    assert inside.max() < 0.0  # only interior content (smoothing keeps it near -0.45)
    assert abs(float(inside.mean()) + 0.45) < 0.05
    # a class too thin for interior anchors still gets filled from all of its pixels
    thin_ids = torch.zeros(1, h, w, dtype=torch.long)
    thin_ids[:, 30:33, :] = 1
    thin_tgt = thin_ids.clone()
    thin_tgt[:, 40:50, 10:20] = 1
    image = torch.full((1, 3, h, w), 0.8)
    image[:, :, 30:33] = 0.3 + 0.1 * torch.rand(1, 3, 3, w)
    out = fill_changed(image, _onehot(thin_ids, 2), _onehot(thin_tgt, 2), "sample", margin=2)
    filled = out[:, 0, 40:50, 10:20]
    assert filled.min() > 0.25 and filled.max() < 0.45


def test_smoothed_block_means_remove_seams_but_keep_texture_and_classes():
    from semia.gan.networks.fill import FILL_BLOCK, _smooth_block_means

    s, h, w = FILL_BLOCK, 32, 48
    gen = torch.Generator().manual_seed(0)
    texture = 0.05 * torch.rand(1, 3, h, w, generator=gen)
    by = torch.arange(h)[:, None] // s
    bx = torch.arange(w)[None, :] // s
    offsets = 0.2 * ((by + bx) % 2 * 2 - 1).float()  # a checkerboard of block brightness
    fill = 0.5 + texture + offsets
    ids = torch.zeros(1, h, w, dtype=torch.long)
    ids[:, :, 40:] = 1  # a second class whose colour must not bleed into the first
    fill[:, :, :, 40:] = 3.0
    out = _smooth_block_means(fill, _onehot(ids, 2))
    cols = torch.arange(s, 40, s)  # seams between blocks of class 0
    jumps_in = (fill[..., cols] - fill[..., cols - 1]).abs().mean()
    jumps_out = (out[..., cols] - out[..., cols - 1]).abs().mean()
    assert jumps_in > 0.35 and jumps_out < 0.05
    inner = out[..., :40]
    assert inner.max() < 1.0  # nothing of class 1 (3.0) leaked in
    torch.testing.assert_close(out[..., 40:], fill[..., 40:])  # a flat block stays flat
    plain = 0.5 + texture  # texture without block offsets comes through (nearly) untouched
    ones = _onehot(torch.zeros(1, h, w, dtype=torch.long), 2)
    assert (_smooth_block_means(plain, ones) - plain).abs().max() < 0.02
