"""Rim shade: keep a smooth background's shade around an object drawn at another place.

A patch that straddles a boundary is matched by its label layout first, so the background
around an object drawn at a new height (a tree added lower in the sky) is copied from around
the source's object, at *its* height: a darker or lighter halo of sky around the new crown.
This correction, run after each vote at the coarse levels (the halo forms there; the finest
level then re-synthesizes from real source patches under the corrected shade), compares every
pixel of a class's rim band (within `radius` px of another class) with the shade of the same
class farther from the boundary nearby, and pulls it back to what the source shows there:

    expected = far shade + the source's mean rim offset for (class, nearest other class, distance)

so a road's darker band along a car (its shadow) stays, while a halo the source never had is
removed. Only smooth classes are corrected (a sky, not foliage or a facade, whose shade varies
with their texture), only deviations beyond the spread that the source's own rims show (one
standard deviation of the same low-passed measure, per class pair and distance), and only where
the label stays, a change is within `radius` px and the pixel's patch comes from elsewhere (more
than `radius` px away): an unchanged layout and copies in place are left exactly as they are.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from semia.ops import gaussian_blur
from semia.patch.pyramid import Level

MIN_PIXELS = 10  # source rim pixels a (class, neighbour, distance) needs for its statistics
MIN_WEIGHT = 0.05  # normalised-convolution weight below which a far shade is not trusted
# a class counts as smooth when the RMS of its far pixels' deviation from their far shade (colours
# in [0, 1]) is below this: the packaged tree's sky 0.006-0.009, a driving frame's sky 0.008, its
# road 0.03, foliage and facades 0.05-0.09
SMOOTH_TEXTURE = 0.02


def _blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """(C, H, W) blurred, zero outside (for normalised convolution)."""
    return gaussian_blur(x[None], sigma, padding="zeros")[0]


def class_distance(ids: torch.Tensor, k: int, radius: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Chessboard distance of every pixel to a pixel of another class, and that class.

    Args:
        ids: (H, W) long class ids in [0, k).
        k: number of classes.
        radius: largest distance looked for.

    Returns:
        (H, W) long distances in 1..radius (radius + 1: no other class that near), and (H, W)
        long the other class most frequent at that distance (0 where there is none).
    """
    onehot = F.one_hot(ids, k).permute(2, 0, 1).float()[None]  # (1, k, H, W)
    dist = torch.full(ids.shape, radius + 1, dtype=torch.long, device=ids.device)
    near = torch.zeros_like(dist)
    for j in range(radius, 0, -1):
        share = F.avg_pool2d(onehot, 2 * j + 1, 1, j, count_include_pad=False)[0]  # (k, H, W)
        best, which = share.scatter(0, ids[None], 0.0).max(0)  # other classes only
        found = best > 0
        dist[found] = j
        near[found] = which[found]
    return dist, near


def far_shade(
    image: torch.Tensor, ids: torch.Tensor, far: torch.Tensor, classes: torch.Tensor, sigma: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Each pixel's class's shade away from its boundaries: the normalised Gaussian mean of the
    class's pixels marked `far`.

    Args:
        image: (3, H, W) float.
        ids: (H, W) long class ids.
        far: (H, W) bool, the pixels far enough from another class.
        classes: (C,) long, the classes to compute (others read as untrusted).
        sigma: Gaussian sigma (px).

    Returns:
        (3, H, W) float the shade of each pixel's own class, and (H, W) bool whether it is
        trusted (enough far pixels of the class nearby).
    """
    masks = (ids[None] == classes[:, None, None]) & far[None]  # (C, H, W)
    weight = _blur(masks.float(), sigma)  # (C, H, W)
    sums = _blur((masks[:, None] * image[None]).flatten(0, 1), sigma)  # (C * 3, H, W)
    sums = sums.view(len(classes), 3, *ids.shape)  # (C, 3, H, W)
    slot = torch.full((max(int(ids.max()), int(classes.max())) + 1,), -1, device=ids.device)
    slot[classes] = torch.arange(len(classes), device=ids.device)
    own = slot[ids]  # (H, W) index into classes, -1 if not computed
    pick = own.clamp_min(0)[None]  # (1, H, W)
    w = weight.gather(0, pick)[0]  # (H, W)
    shade = sums.gather(0, pick[:, None].expand(1, 3, -1, -1))[0] / w.clamp_min(1e-6)  # (3, H, W)
    return shade, (own >= 0) & (w > MIN_WEIGHT)


def _rim_bin(
    ids: torch.Tensor, near: torch.Tensor, dist: torch.Tensor, k: int, radius: int
) -> torch.Tensor:
    """(H, W) long index of each pixel's (class, nearest other class, distance) statistics."""
    return (ids * k + near) * (radius + 1) + dist.clamp(max=radius)


def _low_deviation(deviation: torch.Tensor, ids: torch.Tensor, mask: torch.Tensor, sigma: float):
    """(3, H, W) the masked deviation low-passed within each class (normalised convolution)."""
    out = torch.zeros_like(deviation)
    for c in torch.unique(ids[mask]).tolist():
        m = (mask & (ids == c)).float()[None]  # (1, H, W)
        low = _blur(torch.cat([deviation * m, m]), sigma)  # (4, H, W)
        out += low[:3] / low[3:].clamp_min(1e-6) * m
    return out


class RimShade:
    """The rim shade correction of one pyramid level (same-size targets only; see module doc).

    Args:
        level: the pyramid level (source image and labels, target labels).
        radius: rim band width (px at this level).
    """

    def __init__(self, level: Level, radius: int) -> None:
        self.radius = radius
        self.sigma_far, self.sigma_low = 1.5 * radius, float(radius)
        source, target = level.source_guide.argmax(0), level.target  # (Hs, Ws), (Ht, Wt)
        self.target, k = target, level.source_guide.shape[0]
        changed = target != source
        near_change = F.max_pool2d(changed.float()[None, None], 2 * radius + 1, 1, radius)[0, 0] > 0
        dist_s, near_s = class_distance(source, k, radius)
        dist_t, near_t = class_distance(target, k, radius)
        band_t = dist_t <= radius
        # the pixels the correction may touch, before knowing where their patches come from
        self.eligible = band_t & near_change & ~changed
        self.active = bool(self.eligible.any())
        if not self.active:
            return
        # the source's rims: mean and spread of (pixel - far shade) per class, neighbour and
        # distance, the spread of the same low-passed measure that the output is judged by
        classes = torch.unique(target[self.eligible])  # the classes that may need it
        shade, trusted = far_shade(level.image, source, dist_s > radius, classes, self.sigma_far)
        residual = level.image - shade  # (3, Hs, Ws)
        # smooth classes only (sky, water, a plain wall): there a wrong shade shows; a textured
        # class's shade varies with its texture, and correcting it re-rolls its structure
        far = trusted & (dist_s > radius)
        per_class = torch.bincount(source[far], minlength=k).float()
        detail = residual.pow(2).mean(0)[far]  # (N,) squared deviation, far pixels
        texture = torch.bincount(source[far], detail, minlength=k)
        texture = (texture / per_class.clamp_min(1)).sqrt()  # (k,) RMS detail of each class
        smooth = (per_class > MIN_PIXELS) & (texture < SMOOTH_TEXTURE)
        self.eligible &= smooth[target]
        self.active = bool(self.eligible.any())
        if not self.active:
            return
        rim = trusted & (dist_s <= radius)
        bins = k * k * (radius + 1)
        bin_s = _rim_bin(source, near_s, dist_s, k, radius)  # (Hs, Ws)
        key = bin_s[rim]  # (N,)
        count = torch.bincount(key, minlength=bins).float()
        sums = [torch.bincount(key, r, minlength=bins) for r in residual[:, rim]]
        mean = torch.stack(sums) / count.clamp_min(1)  # (3, B)
        known = count > MIN_PIXELS
        ok_s = rim & known[bin_s]
        low = _low_deviation(residual - mean[:, bin_s], source, ok_s, self.sigma_low)
        spread = torch.bincount(key, low[:, rim].pow(2).mean(0), minlength=bins)
        spread = (spread / count.clamp_min(1)).sqrt()
        # the same statistics read at every target pixel
        bin_t = _rim_bin(target, near_t, dist_t, k, radius)  # (Ht, Wt)
        self.expected = mean[:, bin_t]  # (3, Ht, Wt)
        self.spread = spread[bin_t]  # (Ht, Wt)
        self.known = band_t & known[bin_t]  # (Ht, Wt) rim with statistics
        self.eligible &= self.known
        self.far = dist_t > radius
        self.active = bool(self.eligible.any())

    def __call__(self, out: torch.Tensor, field: torch.Tensor, source_width: int) -> torch.Tensor:
        """Correct a voted output.

        Args:
            out: (3, Ht, Wt) float, the level's voted output.
            field: (Ht * Wt,) long flat source index of each pixel's matched patch.
            source_width: the source's width at this level.

        Returns:
            (3, Ht, Wt) float, out with its rims' shade corrected.
        """
        if not self.active:
            return out
        ht, wt = self.target.shape
        rows = torch.arange(ht, device=out.device)[:, None]
        cols = torch.arange(wt, device=out.device)[None]
        field = field.view(ht, wt)
        dy, dx = (field // source_width - rows).abs(), (field % source_width - cols).abs()
        moved = torch.maximum(dy, dx)  # (Ht, Wt) chessboard distance to the patch's source
        todo = self.eligible & (moved > self.radius)  # (Ht, Wt)
        if not todo.any():
            return out
        classes = torch.unique(self.target[todo])
        shade, trusted = far_shade(out, self.target, self.far, classes, self.sigma_far)
        # deviations are low-passed over each class's whole band (so a lone pixel does not
        # decide), then only the eligible ones are corrected
        low = _low_deviation(
            out - shade - self.expected, self.target, self.known & trusted, self.sigma_low
        )
        size = low.abs().amax(0)  # (Ht, Wt)
        keep = (1 - self.spread / size.clamp_min(1e-6)).clamp_min(0)  # beyond one spread only
        return out - low * (keep * (todo & trusted))[None]
