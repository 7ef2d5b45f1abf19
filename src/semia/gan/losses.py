"""Loss functions of the SemIA GAN: pure functions of tensors (cheap to skip: just don't call).

- lsgan_d_loss / lsgan_g_loss: least-squares GAN, averaged over the discriminator's output scales.
- feature_matching_loss: L1 between discriminator features of real and fake (real detached).
- semantic_alignment_loss: cross-entropy between the segmenter's logits on a generated image and
  the requested label ids (cross-entropy rather than L1 on one-hot: it keeps a useful gradient
  on confidently wrong pixels).
- reconstruction_loss: L1.
- fixed_point_loss: mean |gamma - 1| + mean |beta| over the generator's modulated layers.
- patch_coherence_loss: semantics-aware nearest-neighbour patch distance (see its docstring).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from semia.config import PatchCoherenceConfig
from semia.ops import extract_patches


def _check_lists(a: list[Tensor], b: list[Tensor], what: str) -> None:
    if len(a) == 0 or len(a) != len(b):
        raise ValueError(
            f"{what}: need two non-empty lists of equal length, got {len(a)}, {len(b)}"
        )


def lsgan_d_loss(real_logits: list[Tensor], fake_logits: list[Tensor]) -> Tensor:
    """Least-squares discriminator loss: mean over scales of E[(D(real) - 1)^2] + E[D(fake)^2].

    Args:
        real_logits, fake_logits: lists (one per output scale) of (B, 1, h, w) logits.

    Returns:
        Scalar tensor (0 for a perfect discriminator: real -> 1, fake -> 0).
    """
    _check_lists(real_logits, fake_logits, "lsgan_d_loss")
    total = sum(
        ((r - 1.0).pow(2).mean() + f.pow(2).mean())
        for r, f in zip(real_logits, fake_logits, strict=True)
    )
    return total / len(real_logits)


def lsgan_g_loss(fake_logits: list[Tensor]) -> Tensor:
    """Least-squares generator loss: mean over scales of E[(D(fake) - 1)^2].

    Args:
        fake_logits: list (one per output scale) of (B, 1, h, w) logits.

    Returns:
        Scalar tensor.
    """
    if len(fake_logits) == 0:
        raise ValueError("lsgan_g_loss: fake_logits is empty")
    return sum((f - 1.0).pow(2).mean() for f in fake_logits) / len(fake_logits)


def feature_matching_loss(real_features: list[Tensor], fake_features: list[Tensor]) -> Tensor:
    """Mean over layers of the L1 distance between discriminator features (real side detached).

    Args:
        real_features, fake_features: matching lists of (B, C_i, h_i, w_i) feature maps.

    Returns:
        Scalar tensor (0 for identical features).
    """
    _check_lists(real_features, fake_features, "feature_matching_loss")
    total = sum(F.l1_loss(f, r.detach()) for r, f in zip(real_features, fake_features, strict=True))
    return total / len(real_features)


def semantic_alignment_loss(seg_logits: Tensor, target_ids: Tensor) -> Tensor:
    """Cross-entropy between segmenter logits on a generated image and the requested layout.

    Args:
        seg_logits: (B, K, H, W) float logits.
        target_ids: (B, H, W) int64 ids in 0..K-1.

    Returns:
        Scalar tensor (~0 for confident correct logits).
    """
    if seg_logits.dim() != 4 or target_ids.shape != (seg_logits.shape[0], *seg_logits.shape[-2:]):
        raise ValueError(
            f"seg_logits (B, K, H, W) and target_ids (B, H, W) must match, got "
            f"{tuple(seg_logits.shape)} and {tuple(target_ids.shape)}"
        )
    return F.cross_entropy(seg_logits, target_ids)


def reconstruction_loss(fake: Tensor, real: Tensor) -> Tensor:
    """Mean absolute error between two images of the same shape (B, 3, H, W)."""
    if fake.shape != real.shape:
        raise ValueError(f"shapes differ: {tuple(fake.shape)} vs {tuple(real.shape)}")
    return F.l1_loss(fake, real)


def fixed_point_loss(params: list[tuple[Tensor, Tensor]]) -> Tensor:
    """Push an unchanged layout towards the identity translation: mean |gamma - 1| + mean |beta|.

    Args:
        params: (gamma, beta) pairs of (B, C, h, w) maps, as returned by Generator.translate.

    Returns:
        Scalar tensor: the mean over layers.
    """
    if len(params) == 0:
        raise ValueError("fixed_point_loss: params is empty")
    total = sum((g - 1.0).abs().mean() + b.abs().mean() for g, b in params)
    return total / len(params)


def _grid_positions(height: int, width: int, max_count: int) -> tuple[int, int, int]:
    """Smallest stride s with ceil(H / s) * ceil(W / s) <= max_count; returns (s, nh, nw)."""
    stride = 1
    while -(-height // stride) * -(-width // stride) > max_count:
        stride += 1
    return stride, -(-height // stride), -(-width // stride)


def _patches_and_ids(
    image: Tensor, ids: Tensor, patch_size: int, max_count: int, generator: torch.Generator | None
) -> tuple[Tensor, Tensor]:
    """Patches on a strided grid (random grid offset if a generator is given), centre class ids.

    Args:
        image: (B, 3, H, W); ids: (B, H, W) int64.

    Returns:
        patches (B, N, 3 * p * p), ids (B, N), N <= max_count.
    """
    _, _, height, width = image.shape
    stride, _, _ = _grid_positions(height, width, max_count)
    oy = ox = 0
    if generator is not None and stride > 1:
        oy, ox = torch.randint(
            0, stride, (2,), generator=generator, device=generator.device
        ).tolist()
        image, ids = image[..., oy:, ox:], ids[..., oy:, ox:]
    # one patch centred on every grid point (oy + i * s, ox + j * s)
    patches = extract_patches(image, patch_size, stride, "replicate")  # (B, N, 3*p*p)
    centre_ids = ids[:, ::stride, ::stride].reshape(ids.shape[0], -1)  # (B, N)
    return patches, centre_ids


def _downsample(image: Tensor, onehot: Tensor) -> tuple[Tensor, Tensor]:
    """Halve an image (2x2 average) and its one-hot map (majority of each 2x2 block)."""
    image = F.avg_pool2d(image, 2, ceil_mode=True)
    onehot = F.avg_pool2d(onehot, 2, ceil_mode=True)
    onehot = F.one_hot(onehot.argmax(1), onehot.shape[1])  # (B, h, w, K)
    onehot = onehot.permute(0, 3, 1, 2).to(image.dtype)  # (B, K, h, w)
    return image, onehot


def patch_coherence_loss(
    fake: Tensor,
    fake_labels: Tensor,
    source: Tensor,
    source_labels: Tensor,
    config: PatchCoherenceConfig | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Semantics-aware patch coherence: every generated patch must resemble a source patch.

    Feature space: raw RGB patches (patch_size x patch_size x 3 values) of an image pyramid
    (num_scales levels, 2x2 average pooling between levels): no learned or downloaded weights.
    At each scale, generated patches on a strided grid (at most max_queries) are matched against
    source patches on a strided grid (at most max_keys) by squared distance plus mismatch_penalty
    when their centre classes differ (so a class-c patch is matched among class-c source patches,
    and against the nearest patch of any class when the source has no class c). The loss is the
    mean squared distance per value to the chosen neighbours, averaged over scales. Vectorised
    (one matmul per scale); gradients flow only into `fake`. With a generator, the sampling grids
    get random offsets each call (so over many steps every position is used); without one they
    start at the top-left pixel (deterministic).

    Args:
        fake: (B, 3, H, W) generated image in [-1, 1].
        fake_labels: (B, K, H, W) one-hot, the layout requested for `fake`.
        source: (B, 3, Hs, Ws) source image in [-1, 1] (batch 1 is broadcast).
        source_labels: (B, K, Hs, Ws) one-hot layout of `source`.
        config: patch size, scales, sampling caps and penalty (None: the defaults).
        generator: optional source of the random grid offsets.

    Returns:
        Scalar tensor (0 for an image against itself when all its patches are keys).
    """
    if fake.dim() != 4 or fake.shape[1] != 3 or source.dim() != 4 or source.shape[1] != 3:
        raise ValueError(
            f"fake and source must be (B, 3, H, W), got {tuple(fake.shape)}, {tuple(source.shape)}"
        )
    if fake_labels.shape[-2:] != fake.shape[-2:] or source_labels.shape[-2:] != source.shape[-2:]:
        raise ValueError("label maps must have the size of their images")
    if fake_labels.shape[1] != source_labels.shape[1]:
        raise ValueError(f"class counts differ: {fake_labels.shape[1]} vs {source_labels.shape[1]}")
    config = config if config is not None else PatchCoherenceConfig()
    if config.patch_size < 1 or config.patch_size % 2 == 0:
        raise ValueError(f"patch_size must be odd and >= 1, got {config.patch_size}")
    batch, num_classes = fake.shape[0], fake_labels.shape[1]
    source = source.detach().expand(batch, -1, -1, -1)
    source_labels = source_labels.detach().expand(batch, -1, -1, -1)
    fake_labels = fake_labels.detach()

    losses = []
    for scale in range(config.num_scales):
        if scale > 0:
            if min(*fake.shape[-2:], *source.shape[-2:]) < 2 * config.patch_size:
                break
            fake, fake_labels = _downsample(fake, fake_labels)
            source, source_labels = _downsample(source, source_labels)
        q, q_ids = _patches_and_ids(
            fake, fake_labels.argmax(1), config.patch_size, config.max_queries, generator
        )
        k, k_ids = _patches_and_ids(
            source, source_labels.argmax(1), config.patch_size, config.max_keys, generator
        )
        with torch.no_grad():
            # Class-aware search in one batched matmul: appending c * onehot(class) to both sides,
            # with 2 c^2 = penalty, adds exactly `penalty` to the squared distance of pairs of
            # different classes. |q'|^2 is constant per query, so the argmin of |k'|^2 - 2 q'.k'
            # suffices; it is one matmul of [-2 q', 1] with [k', |k'|^2].
            c = (0.5 * config.mismatch_penalty) ** 0.5
            qx = torch.cat(
                [q, c * F.one_hot(q_ids, num_classes).to(q.dtype)], dim=-1
            )  # (B, Nq, D+K)
            kx = torch.cat(
                [k, c * F.one_hot(k_ids, num_classes).to(k.dtype)], dim=-1
            )  # (B, Nk, D+K)
            qx = torch.cat([-2.0 * qx, torch.ones_like(qx[..., :1])], dim=-1)  # (B, Nq, D+K+1)
            kx = torch.cat([kx, kx.pow(2).sum(-1, keepdim=True)], dim=-1)  # (B, Nk, D+K+1)
            score = qx @ kx.transpose(1, 2)  # (B, Nq, Nk)
            nearest = score.argmin(dim=-1)  # (B, Nq)
        matched = torch.gather(k, 1, nearest[..., None].expand(-1, -1, k.shape[-1]))  # (B, Nq, D)
        losses.append((q - matched).pow(2).mean())
    return torch.stack(losses).mean()
