"""The changed-region fill: where the label changes, G's image input gets content of the new class.

An addition to the paper (GeneratorConfig.fill_changed): blocks copied from the new class's source
region, away from its borders, replace the old content, so removed objects leave no ghosts and new
regions start from their class's texture.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

FILL_MODES = ("off", "mean", "sample", "analogy")
FILL_BLOCK = 8  # side of the blocks copied by fill_changed(mode="sample")
FILL_CANDIDATES = 32  # random source anchors drawn per block and class; the nearest one is used
FILL_MIN_INTERIOR = 64  # a class with fewer interior anchor pixels draws from all its pixels
FILL_HEIGHT_WEIGHT = 4  # weight of the vertical distance against the horizontal one (nearest)


def fill_changed(
    image: Tensor, source: Tensor, target: Tensor, mode: str, margin: int = -1, dilate: int = 0
) -> Tensor:
    """Replace the pixels whose label changes by content of their target class.

    mode "mean": the class's mean source colour. mode "analogy" fills as "sample" does (the
    trainer passes the analogy itself as G's init; this is the fallback). mode "sample": the
    target grid is cut into FILL_BLOCK-sized blocks and each block copies, per class, the block
    of source pixels at an anchor of that class (of FILL_CANDIDATES random pixels of the class,
    the one nearest to the block, height counting most; a pixel whose copy falls on another
    class takes its anchor's colour), so the generator starts from the class's texture instead
    of a flat colour; the blocks' mean colours are then smoothed per class
    (_smooth_block_means), so no patchwork of light and dark blocks remains. The random anchors
    use a fixed seed (deterministic outputs).
    With margin >= 0 the anchors are drawn from the class's interior (whole blocks at least
    `margin` pixels inside it, unless it has fewer than FILL_MIN_INTERIOR such pixels), so that no
    block copies the blended pixels of a class border (a halo, a snowy ridge). With dilate > 0 the
    pixels within `dilate` of a change are filled too: next to the old border they blend the old
    class in and would leave a thin outline of a removed object.
    Far from every change the image is untouched (a reconstruction stays an identity); a class
    absent from the source takes the mean colour.

    image (B, 3, H, W), source and target (B, K, H, W) one-hot on the same grid.
    """
    changed = changed_mask(source, target, dilate)
    counts = source.sum(dim=(2, 3))  # (B, K)
    sums = torch.einsum("bchw,bkhw->bkc", image, source)  # (B, K, 3)
    means = sums / counts.clamp(min=1.0)[..., None]
    overall = image.mean(dim=(2, 3))[:, None, :]  # (B, 1, 3)
    means = torch.where(counts[..., None] > 0, means, overall)
    fill = torch.einsum("bkc,bkhw->bchw", means, target)  # (B, 3, H, W)
    if mode in ("sample", "analogy"):  # "analogy": the trainer passes the analogy as init
        copied, present = _copy_blocks(image, source, target, counts, margin)
        fill = torch.where(present, _smooth_block_means(copied, target), fill)
    return image * (1.0 - changed) + fill * changed


def changed_mask(source: Tensor, target: Tensor, dilate: int = 0) -> Tensor:
    """(B, 1, H, W) float, 1 where the label changes or within `dilate` pixels of a change.

    source and target (B, K, H, W) one-hot on the same grid.
    """
    changed = (source - target).abs().amax(dim=1, keepdim=True)  # (B, 1, H, W), 1 where changed
    if dilate > 0:
        # also the few pixels around a change: at the old border they blend the old class in
        changed = F.max_pool2d(changed, 2 * dilate + 1, stride=1, padding=dilate)
    return changed


def paste_changed(
    image: Tensor, source: Tensor, target: Tensor, content: Tensor, dilate: int = 0
) -> Tensor:
    """`image` with `content` where the label changes (and within `dilate` pixels of a change).

    The refiner's input (GenerateConfig.init = "analogy"): content is an image already in the
    target layout (the training-free result), so G harmonises it instead of inventing it.
    image and content (B, 3, H, W), source and target (B, K, H, W) one-hot on the same grid.
    """
    changed = changed_mask(source, target, dilate)
    return image * (1.0 - changed) + content * changed


def _copy_blocks(
    image: Tensor, source: Tensor, target: Tensor, counts: Tensor, margin: int
) -> tuple[Tensor, Tensor]:
    """fill_changed's "sample" content (B, 3, H, W) and where it exists (B, 1, H, W) bool."""
    b, k, h, w = source.shape
    s = FILL_BLOCK
    nby, nbx = -(-h // s), -(-w // s)
    device = image.device
    gen = torch.Generator(device=device)
    gen.manual_seed(0)
    src_ids = source.argmax(1).reshape(b, -1)  # (B, HW)
    # anchors come from the class interior (whole blocks inside the class, away from borders
    # whose pixels blend with the neighbour class) unless the class has too little interior
    interior = source
    if margin >= 0 and h >= s and w >= s:
        # near[y, x] = 1 if any pixel of [y - m, y + m + s - 1] x [x - m, x + m + s - 1] is of
        # another class, or if the block would cross the bottom / right edge (copies get
        # clamped there); a separable max filter
        m, size = margin, 2 * margin + s
        other = F.pad(1.0 - source, (m, m, m, m), value=0.0)
        near = F.max_pool2d(F.max_pool2d(other, (1, size), stride=1), (size, 1), stride=1)
        near = F.pad(near, (0, s - 1, 0, s - 1), value=1.0)  # (B, K, H, W)
        interior = source * (1.0 - near)
    inner = interior.sum(dim=(2, 3))  # (B, K)
    is_border = 1 - interior.amax(1).reshape(b, -1).long()  # (B, HW)
    order = torch.argsort(src_ids * 2 + is_border, dim=1, stable=True)  # by class, interior first
    starts = (torch.cumsum(counts, dim=1) - counts).long()  # (B, K) first position of each class
    n = torch.where(inner >= FILL_MIN_INTERIOR, inner, counts).long()  # (B, K)
    nb, c = nby * nbx, FILL_CANDIDATES
    u = torch.rand(b, k, nb, c, generator=gen, device=device)
    pos = starts[..., None, None] + (u * n[..., None, None]).long().clamp(min=0)
    pos = torch.minimum(pos, (starts + n - 1).clamp(min=0)[..., None, None])
    candidates = order.gather(1, pos.reshape(b, -1)).reshape(b, k, nb, c)  # flat source pixels
    # keep the candidate closest to the block (height weighted most: skies and grounds change
    # with height), so that copied blocks match their surroundings instead of being patchy
    blocks = torch.arange(nb, device=device)
    dy = (candidates // w - (blocks // nbx * s)[:, None]).abs()
    dx = (candidates % w - (blocks % nbx * s)[:, None]).abs()
    best = (FILL_HEIGHT_WEIGHT * dy + dx).argmin(dim=-1, keepdim=True)  # (B, K, nb, 1)
    anchors = candidates.gather(3, best).squeeze(3)  # (B, K, nb)
    ys = torch.arange(h, device=device)[:, None].expand(h, w)
    xs = torch.arange(w, device=device)[None, :].expand(h, w)
    block = ((ys // s) * nbx + xs // s).reshape(-1)  # (HW,)
    tgt_ids = target.argmax(1).reshape(b, -1)  # (B, HW)
    # the anchor of each pixel's block for the pixel's own target class: (B, HW)
    anchor = anchors.reshape(b, -1).gather(1, tgt_ids * (nby * nbx) + block)
    sy = (anchor // w + (ys % s).reshape(-1)).clamp(max=h - 1)
    sx = (anchor % w + (xs % s).reshape(-1)).clamp(max=w - 1)
    copy = sy * w + sx  # (B, HW)
    copy = torch.where(src_ids.gather(1, copy) == tgt_ids, copy, anchor)
    flat = image.reshape(b, 3, -1)
    out = flat.gather(2, copy[:, None].expand(-1, 3, -1)).reshape(b, 3, h, w)
    return out, (n.gather(1, tgt_ids) > 0).reshape(b, 1, h, w)


def _smooth_block_means(fill: Tensor, target: Tensor) -> Tensor:
    """Replace the mean colour of every FILL_BLOCK block (per target class) by a smooth field.

    Blocks copied from different places differ in brightness; without this the generator learns
    to reproduce the patchwork. Per class, the block means are interpolated bilinearly between
    block centres (normalised by the class's share of each block, so classes do not bleed into
    each other) and each pixel's own block mean is swapped for that interpolation.
    """
    b, k, h, w = target.shape
    s = FILL_BLOCK
    pad = (0, (-w) % s, 0, (-h) % s)
    values = F.pad(fill[:, None] * target[:, :, None], pad)  # (B, K, 3, Hp, Wp)
    weights = F.pad(target, pad)  # (B, K, Hp, Wp)
    hp, wp = weights.shape[-2:]
    sums = F.avg_pool2d(values.reshape(b, k * 3, hp, wp), s).reshape(b, k, 3, hp // s, wp // s)
    shares = F.avg_pool2d(weights, s)[:, :, None]  # (B, K, 1, nby, nbx)
    own = sums / shares.clamp(min=1e-6)  # each block's mean per class

    def up(x: Tensor, mode: str) -> Tensor:
        flat = x.reshape(b, -1, hp // s, wp // s)
        kw = {"align_corners": False} if mode == "bilinear" else {}
        out = F.interpolate(flat, size=(hp, wp), mode=mode, **kw)
        return out.reshape(b, k, -1, hp, wp)[..., :h, :w]

    smooth = up(sums, "bilinear") / up(shares, "bilinear").clamp(min=1e-6)
    shift = torch.einsum("bkchw,bkhw->bchw", smooth - up(own, "nearest"), target)
    return fill + shift
