"""Tests of semia.losses on tiny cases with known values."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from semia.config import PatchCoherenceConfig
from semia.gan.losses import (
    feature_matching_loss,
    fixed_point_loss,
    lsgan_d_loss,
    lsgan_g_loss,
    patch_coherence_loss,
    reconstruction_loss,
    semantic_alignment_loss,
)


def _onehot(ids: torch.Tensor, k: int) -> torch.Tensor:
    return F.one_hot(ids, k).permute(0, 3, 1, 2).float()  # (B, H, W, K) -> (B, K, H, W)


def test_lsgan_values():
    ones = [torch.ones(2, 1, 3, 3), torch.ones(2, 1, 2, 2)]
    zeros = [torch.zeros(2, 1, 3, 3), torch.zeros(2, 1, 2, 2)]
    assert lsgan_d_loss(ones, zeros).item() == 0.0  # perfect D
    assert lsgan_d_loss(zeros, ones).item() == pytest.approx(2.0)  # (0-1)^2 + 1^2
    assert lsgan_g_loss(ones).item() == 0.0
    assert lsgan_g_loss(zeros).item() == pytest.approx(1.0)
    half = [torch.full((1, 1, 2, 2), 0.5)]
    assert lsgan_d_loss(half, half).item() == pytest.approx(0.5)
    with pytest.raises(ValueError):
        lsgan_d_loss(ones, zeros[:1])


def test_feature_matching_values_and_detach():
    real = [torch.randn(1, 4, 5, 5), torch.randn(1, 8, 3, 3)]
    assert feature_matching_loss(real, [r.clone() for r in real]).item() == 0.0
    fake = [(r + 2.0).requires_grad_(True) for r in real]
    loss = feature_matching_loss(real, fake)
    assert loss.item() == pytest.approx(2.0)
    real_req = [r.clone().requires_grad_(True) for r in real]
    feature_matching_loss(real_req, fake).backward()
    assert all(r.grad is None for r in real_req)
    assert all(f.grad is not None for f in fake)


def test_semantic_alignment_perfect_and_wrong():
    ids = torch.randint(0, 3, (2, 6, 7), generator=torch.Generator().manual_seed(0))
    perfect = _onehot(ids, 3) * 50.0
    assert semantic_alignment_loss(perfect, ids).item() < 1e-6
    wrong = _onehot((ids + 1) % 3, 3) * 50.0
    assert semantic_alignment_loss(wrong, ids).item() > 10.0
    uniform = torch.zeros(2, 3, 6, 7)
    assert semantic_alignment_loss(uniform, ids).item() == pytest.approx(
        torch.log(torch.tensor(3.0)).item()
    )
    with pytest.raises(ValueError):
        semantic_alignment_loss(uniform, ids[:, :5])


def test_reconstruction_and_fixed_point():
    a = torch.zeros(1, 3, 4, 4)
    assert reconstruction_loss(a, a + 0.5).item() == pytest.approx(0.5)
    ident = [(torch.ones(1, 2, 3, 3), torch.zeros(1, 2, 3, 3))]
    assert fixed_point_loss(ident).item() == 0.0
    off = [(torch.full((1, 2, 3, 3), 1.5), torch.full((1, 2, 3, 3), -0.25))]
    assert fixed_point_loss(off).item() == pytest.approx(0.75)
    with pytest.raises(ValueError):
        reconstruction_loss(a, a[..., :3])


def _two_class_scene(height: int = 32, width: int = 32):
    """Left half class 0 (smooth dark gradient), right half class 1 (bright checkerboard)."""
    ids = torch.zeros(1, height, width, dtype=torch.long)
    ids[..., width // 2 :] = 1
    yy, xx = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    dark = -0.8 + 0.2 * xx / width
    checker = 0.5 + 0.4 * ((yy // 2 + xx // 2) % 2)
    img = torch.where(ids[0] == 0, dark, checker).expand(1, 3, height, width).clone()
    return img, ids


def test_patch_coherence_self_is_zero_and_mismatch_is_large():
    img, ids = _two_class_scene()
    oh = _onehot(ids, 2)
    cfg = PatchCoherenceConfig(patch_size=5, num_scales=2)
    assert patch_coherence_loss(img, oh, img, oh, cfg).item() == pytest.approx(0.0, abs=1e-6)
    # same image but labels swapped: each patch must be matched in the other class
    swapped = _onehot(1 - ids, 2)
    assert patch_coherence_loss(img, swapped, img, oh, cfg).item() > 0.1
    # a noisy image scores worse than the clean one, but better than the class-mismatched one
    noisy = img + 0.05 * torch.randn(img.shape, generator=torch.Generator().manual_seed(0))
    noisy_loss = patch_coherence_loss(noisy, oh, img, oh, cfg).item()
    assert 1e-4 < noisy_loss < patch_coherence_loss(img, swapped, img, oh, cfg).item()


def test_patch_coherence_gradient_only_on_fake_and_caps():
    img, ids = _two_class_scene(40, 36)
    oh = _onehot(ids, 2)
    fake = (img + 0.1).requires_grad_(True)
    source = img.clone().requires_grad_(True)
    cfg = PatchCoherenceConfig(max_queries=50, max_keys=200)
    loss = patch_coherence_loss(fake, oh, source, oh, cfg)
    loss.backward()
    assert torch.isfinite(fake.grad).all() and fake.grad.abs().sum() > 0
    assert source.grad is None
    # gradient matches finite differences along a random direction
    direction = torch.randn(fake.shape, generator=torch.Generator().manual_seed(1))
    eps = 1e-3
    with torch.no_grad():
        plus = patch_coherence_loss(fake + eps * direction, oh, img, oh, cfg)
        minus = patch_coherence_loss(fake - eps * direction, oh, img, oh, cfg)
    numeric = (plus - minus) / (2 * eps)
    analytic = (fake.grad * direction).sum()
    assert numeric.item() == pytest.approx(analytic.item(), rel=0.05, abs=1e-4)


def test_patch_coherence_target_size_differs_and_bad_inputs():
    img, ids = _two_class_scene()
    oh = _onehot(ids, 2)
    fake = torch.zeros(2, 3, 20, 45)
    fake_oh = _onehot(torch.zeros(2, 20, 45, dtype=torch.long), 2)
    loss = patch_coherence_loss(fake, fake_oh, img, oh)
    assert torch.isfinite(loss)
    with pytest.raises(ValueError, match="size"):
        patch_coherence_loss(fake, fake_oh[..., :10], img, oh)
    with pytest.raises(ValueError, match="odd"):
        patch_coherence_loss(img, oh, img, oh, PatchCoherenceConfig(patch_size=4))


def test_patch_coherence_random_grid_is_seeded():
    img, ids = _two_class_scene(48, 40)
    oh = _onehot(ids, 2)
    fake = img.flip(-1)
    cfg = PatchCoherenceConfig(max_queries=64, max_keys=256)

    def run(seed: int) -> float:
        gen = torch.Generator().manual_seed(seed)
        return patch_coherence_loss(fake, oh.flip(-1), img, oh, cfg, generator=gen).item()

    assert run(0) == run(0)
    values = {run(s) for s in range(6)}
    assert len(values) > 1  # offsets move the grids
    assert all(v >= 0.0 for v in values)


def test_gradcheck_smooth_losses():
    gen = torch.Generator().manual_seed(0)
    fake = [torch.randn(1, 1, 3, 3, generator=gen, dtype=torch.float64).requires_grad_(True)]
    real = [torch.randn(1, 1, 3, 3, generator=gen, dtype=torch.float64).requires_grad_(True)]
    assert torch.autograd.gradcheck(lambda r, f: lsgan_d_loss([r], [f]), (real[0], fake[0]))
    assert torch.autograd.gradcheck(lambda f: lsgan_g_loss([f]), (fake[0],))
    logits = torch.randn(1, 3, 2, 2, generator=gen, dtype=torch.float64).requires_grad_(True)
    ids = torch.randint(0, 3, (1, 2, 2), generator=gen)
    assert torch.autograd.gradcheck(lambda x: semantic_alignment_loss(x, ids), (logits,))


def test_gradcheck_patch_coherence():
    img, ids = _two_class_scene(12, 12)
    oh = _onehot(ids, 2).double()
    gen = torch.Generator().manual_seed(3)
    fake = img.double() + 0.1 * torch.randn(img.shape, generator=gen, dtype=torch.float64)
    fake.requires_grad_(True)
    cfg = PatchCoherenceConfig(patch_size=3, num_scales=2)
    assert torch.autograd.gradcheck(
        lambda f: patch_coherence_loss(f, oh, img.double(), oh, cfg), (fake,), eps=1e-6, atol=1e-5
    )
