"""Pyramids and patch features for the guided patch synthesis.

Each pyramid level holds, for the source, the image, a soft one-hot of its labels (the share of
each class in every pixel's footprint), the classes each pixel may lend texture to, and for the
target the hard labels (the majority class of the footprint) and the same soft one-hot, which
serves as the label guide.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from semia.ops import extract_patches


@dataclass(frozen=True)
class Level:
    """One pyramid level of a source/target pair (all tensors on the working device).

    Attributes:
        image: (3, Hs, Ws) float in [0, 1], the source image at this level.
        source_guide: (K, Hs, Ws) float, share of each class in the source pixel's footprint.
        allowed: (K, Hs * Ws) bool, whether source pixel s may lend texture to class k: its
            footprint holds some of class k (at the finest level: its label is k).
        source: (Hs, Ws) long, the source class of each pixel (majority of its footprint).
        target: (Ht, Wt) long, the target class of each pixel (majority of its footprint).
        target_guide: (K, Ht, Wt) float, share of each class in the target pixel's footprint.
        source_edges: optional (G, Hs, Ws) float extra guide channels of the source (a blurred
            edge map of the photo), compared patch-wise with `target_edges` (G, Ht, Wt).
    """

    image: torch.Tensor
    source_guide: torch.Tensor
    allowed: torch.Tensor
    source: torch.Tensor
    target: torch.Tensor
    target_guide: torch.Tensor
    source_edges: torch.Tensor | None = None
    target_edges: torch.Tensor | None = None

    @property
    def source_size(self) -> tuple[int, int]:
        return int(self.image.shape[1]), int(self.image.shape[2])

    @property
    def target_size(self) -> tuple[int, int]:
        return int(self.target.shape[0]), int(self.target.shape[1])


def num_levels(height: int, width: int, coarsest_side: int) -> int:
    """Number of pyramid levels: halve while the shorter side stays >= coarsest_side."""
    levels, side = 1, min(height, width)
    while side // 2 >= coarsest_side:
        side //= 2
        levels += 1
    return levels


def level_size(height: int, width: int, level: int) -> tuple[int, int]:
    """Size of `level` (0 = finest) of a (height, width) image: halved and rounded up per level."""
    scale = 2**level
    return max(1, -(-height // scale)), max(1, -(-width // scale))


def _shrink(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Area-average (C, H, W) to (C, *size); every input pixel contributes."""
    if tuple(x.shape[1:]) == tuple(size):
        return x
    return F.adaptive_avg_pool2d(x[None], size)[0]


def build_pyramid(
    image: torch.Tensor,
    labels: torch.Tensor,
    target: torch.Tensor,
    num_classes: int,
    levels: int,
    guides: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> list[Level]:
    """Pyramid of a source/target pair, finest level first.

    Args:
        image: (3, H, W) float in [0, 1].
        labels: (H, W) long source ids in 0..K-1.
        target: (H2, W2) long target ids in 0..K-1.
        num_classes: K.
        levels: number of levels (>= 1).
        guides: optional extra guide channels (G, H, W) of the source and (G, H2, W2) of the
            target (edge maps), area-averaged like the labels.

    Returns:
        `levels` Level objects, index 0 the full resolution.
    """
    src_onehot = _one_hot(labels, num_classes)  # (K, H, W)
    tgt_onehot = _one_hot(target, num_classes)  # (K, H2, W2)
    out = []
    for lv in range(levels):
        src_size = level_size(*labels.shape, lv)
        tgt_size = level_size(*target.shape, lv)
        src_guide = _shrink(src_onehot, src_size)
        tgt_guide = _shrink(tgt_onehot, tgt_size)
        out.append(
            Level(
                image=_shrink(image, src_size),
                source_guide=src_guide,
                allowed=(src_guide > 0).reshape(num_classes, -1),  # (K, Hs * Ws)
                source=labels if lv == 0 else src_guide.argmax(0),  # majority class
                target=target if lv == 0 else tgt_guide.argmax(0),
                target_guide=tgt_guide,
                source_edges=None if guides is None else _shrink(guides[0], src_size),
                target_edges=None if guides is None else _shrink(guides[1], tgt_size),
            )
        )
    return out


def _one_hot(ids: torch.Tensor, num_classes: int) -> torch.Tensor:
    """(K, H, W) float one-hot of (H, W) long ids (contiguous, class-major)."""
    flat = torch.zeros(num_classes, ids.numel(), device=ids.device)  # (K, H * W)
    return flat.scatter_(0, ids.reshape(1, -1), 1.0).view(num_classes, *ids.shape)


def _guide_taps(patch_size: int) -> list[tuple[int, int]]:
    """Offsets of the label-guide taps in a patch: its centre and four corners."""
    r = patch_size // 2
    return [(0, 0), (-r, -r), (-r, r), (r, -r), (r, r)]


def guide_sample(guide: torch.Tensor, patch_size: int, stride: int) -> torch.Tensor:
    """Label-guide features of the patches centred on a stride-spaced grid (to fit a PCA).

    Args:
        guide: (K, H, W) float class shares.
        patch_size: odd side of the patches.
        stride: grid step.

    Returns:
        (n, 5 * K) float: the class shares at the five taps, tap-major.
    """
    r = patch_size // 2
    k, h, w = guide.shape
    padded = F.pad(guide[None], (r, r, r, r), mode="replicate")[0]  # (K, H + 2r, W + 2r)
    taps = [
        padded[:, r + dy : r + dy + h : stride, r + dx : r + dx + w : stride]
        for dy, dx in _guide_taps(patch_size)
    ]  # 5 x (K, h', w')
    return torch.cat(taps, 0).reshape(5 * k, -1).T  # (n, 5K)


def _project_taps(
    guide: torch.Tensor, axes: torch.Tensor, bias: torch.Tensor, patch_size: int
) -> torch.Tensor:
    """(H * W, dims) projections of every pixel's label-guide taps onto axes (5K, dims).

    Args:
        guide: (K, H, W) float class shares (replicated beyond the border, as in
            `guide_sample`).
        axes: (5K, dims) tap-major projection axes; bias: (dims,) added to every row.
    """
    r = patch_size // 2
    k, h, w = guide.shape
    padded = F.pad(guide[None], (r, r, r, r), mode="replicate")[0]  # (K, H + 2r, W + 2r)
    out = bias[:, None].expand(-1, h * w).clone()  # (dims, H * W)
    for t, (dy, dx) in enumerate(_guide_taps(patch_size)):
        tap = padded[:, r + dy : r + dy + h, r + dx : r + dx + w].reshape(k, -1)  # (K, H * W)
        out.addmm_(axes[t * k : (t + 1) * k].T, tap)
    return out.T  # (H * W, dims)


def _pca(rows: torch.Tensor, dims: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean (D,) and the top-`dims` principal axes (D, dims) of (N, D) rows (an identity
    basis when dims is 0 or >= D)."""
    mean = rows.mean(0)
    d = rows.shape[1]
    if dims <= 0 or dims >= d:
        return mean, torch.eye(d, device=rows.device, dtype=rows.dtype)
    sample = rows[:: max(1, rows.shape[0] // 32768)] - mean  # (<= ~64k, D) enough for the axes
    cov = sample.T @ sample / sample.shape[0]  # (D, D)
    _, vecs = torch.linalg.eigh(cov)  # ascending eigenvalues
    return mean, vecs[:, -dims:].flip(1).contiguous()


class FeatureSpace:
    """The space where patches are compared at one level.

    A patch's feature is [PCA of its colour patch, sqrt(guide_weight) * PCA of its label-guide
    taps, sqrt(position_weight) * its relative height]; squared Euclidean distance in this space
    is the matching cost. The PCA axes come from the source patches (colour) and from the source
    and target guides together (labels), so an exact match still has distance 0.
    """

    def __init__(
        self,
        level: Level,
        patch_size: int,
        guide_weight: float,
        position_weight: float,
        appearance_dims: int,
        guide_dims: int,
        edge_weight: float = 0.0,
    ) -> None:
        self.patch_size = patch_size
        stride = max(1, round((level.image[0].numel() / 4096) ** 0.5))  # fit on <= ~4k patches
        colour = extract_patches(level.image[None], patch_size, stride, "replicate")[0]  # (n, 3PP)
        mean, axes = _pca(colour, appearance_dims)
        # projecting every patch is a convolution with the axes as filters
        self.app_filters = axes.T.reshape(-1, 3, patch_size, patch_size).contiguous()
        self.app_bias = -(mean @ axes)  # (dims,)
        sample = torch.cat(
            [
                guide_sample(level.source_guide, patch_size, stride),
                guide_sample(level.target_guide, patch_size, stride),
            ]
        )  # (n, 5K)
        mean, axes = _pca(sample, guide_dims)
        axes = axes * guide_weight**0.5
        bias = -(mean @ axes)
        p = position_weight**0.5
        self.source_extra = torch.cat(
            [
                _project_taps(level.source_guide, axes, bias, patch_size),
                p * _heights(*level.source_size, level.image),
            ],
            1,
        )  # (Ns, guide dims + 1)
        self.target_extra = torch.cat(
            [
                _project_taps(level.target_guide, axes, bias, patch_size),
                p * _heights(*level.target_size, level.image),
            ],
            1,
        )  # (Nt, guide dims + 1)
        if level.source_edges is not None and edge_weight > 0:
            self._add_edge_guides(level, stride, edge_weight, guide_dims)

    def _add_edge_guides(self, level: Level, stride: int, weight: float, dims: int) -> None:
        """Append sqrt(weight) * PCA of the whole edge-guide patches to the extra features."""
        p = self.patch_size
        sample = torch.cat(
            [
                extract_patches(level.source_edges[None], p, stride, "replicate")[0],
                extract_patches(level.target_edges[None], p, stride, "replicate")[0],
            ]
        )  # (n, G * P * P)
        mean, axes = _pca(sample, dims)
        filters = axes.T.reshape(-1, level.source_edges.shape[0], p, p) * weight**0.5
        bias = -(mean @ axes) * weight**0.5
        self.source_extra = torch.cat(
            [self.source_extra, self._project(level.source_edges, filters, bias)], 1
        )  # (Ns, D + edge dims)
        self.target_extra = torch.cat(
            [self.target_extra, self._project(level.target_edges, filters, bias)], 1
        )  # (Nt, D + edge dims)

    def _project(self, x: torch.Tensor, filters: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        """(H * W, dims) projections of the patches of (C, H, W) by (dims, C, P, P) filters."""
        r = self.patch_size // 2
        padded = F.pad(x[None], (r, r, r, r), mode="replicate")  # (1, C, H + 2r, W + 2r)
        # channels last: the convolution writes pixel-major rows, no transpose afterwards
        padded = padded.contiguous(memory_format=torch.channels_last)
        proj = F.conv2d(padded, filters, bias)  # (1, dims, H, W) stored as (H, W, dims)
        return proj.permute(0, 2, 3, 1).reshape(-1, proj.shape[1])  # (H * W, dims)

    def appearance(self, image: torch.Tensor) -> torch.Tensor:
        """(H * W, appearance dims) projected colour patches of a (3, H, W) image."""
        return self._project(image, self.app_filters, self.app_bias)

    def without_appearance(self, features: torch.Tensor) -> torch.Tensor:
        """Features (N, D) with the colour part zeroed: matching on the guides alone."""
        out = features.clone()
        out[:, : self.app_filters.shape[0]] = 0
        return out

    def keys(self, image: torch.Tensor) -> torch.Tensor:
        """(Hs * Ws, D) source features, colour taken from `image` (3, Hs, Ws)."""
        return torch.cat([self.appearance(image), self.source_extra], 1)

    def queries(self, image: torch.Tensor) -> torch.Tensor:
        """(Ht * Wt, D) target features, colour taken from `image` (3, Ht, Wt)."""
        return torch.cat([self.appearance(image), self.target_extra], 1)


def _heights(height: int, width: int, like: torch.Tensor) -> torch.Tensor:
    """(H * W, 1) relative height (y + 0.5) / H of every pixel."""
    y = (torch.arange(height, device=like.device, dtype=like.dtype) + 0.5) / height
    return y[:, None].expand(height, width).reshape(-1, 1)
