"""Nearest-neighbour fields: class-aware initialisation, search and patch voting.

A nearest-neighbour field (NNF) maps every target pixel to a source pixel, stored as a flat index
y * Ws + x in a (Ht * Wt,) long tensor. Every entry obeys the class constraint: the source pixel
is allowed for the target pixel's class (`Level.allowed`). All operations are vectorised over
pixels; the only Python loops run over classes, candidates and patch offsets.
"""

from __future__ import annotations

import math

import torch
from scipy import ndimage

from semia.ops import gaussian_blur

# exact search: at most this many distances at once (a cache-sized block: the matrix product
# and its argmin run from cache, several times faster than on blocks of 2**24)
_QUERY_CHUNK_ELEMENTS = 2**18
# PatchMatch: at most this many gathered feature values at once (small blocks stay in cache and
# in the allocator's pools; blocks over ~32 MB are fresh pages, faulted in on every call)
_GATHER_ELEMENTS = 2**16
# PatchMatch: a query at most this far from its match (squared feature distance) copies it
# exactly, up to the rounding of the vote (an unchanged region copying itself): nothing can be
# strictly closer, so it is not searched
_EXACT = 1e-8
# coarsest init: at most this many objects' best shifts found in one batched FFT
_OBJECT_CHUNK = 16


def _class_pool(allowed: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Source pixels allowed per class, packed: (pool, start (K,), count (K,))."""
    count = torch.count_nonzero(allowed, dim=1)  # (K,)
    start = torch.cumsum(count, 0) - count
    pool = allowed.nonzero()[:, 1]  # sorted by class, then pixel
    return pool, start, count


def random_allowed(
    classes: torch.Tensor, allowed: torch.Tensor, generator: torch.Generator
) -> torch.Tensor:
    """A uniformly random allowed source pixel for each entry of `classes` ((N,) long)."""
    pool, start, count = _class_pool(allowed)
    u = torch.rand(classes.shape, generator=generator, device=classes.device)
    count, start = count.index_select(0, classes), start.index_select(0, classes)  # (N,)
    pick = (u * count).long().clamp_max_(count - 1)
    return pool.index_select(0, start + pick)


def is_allowed(nnf: torch.Tensor, classes: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
    """(N,) bool: source pixel nnf[i] is allowed for class classes[i]."""
    return allowed.reshape(-1)[classes * allowed.shape[1] + nnf]


def _overlap(source_mask: torch.Tensor, target_mask: torch.Tensor) -> torch.Tensor:
    """Overlap count of target_mask shifted by every offset d with source_mask.

    Args:
        source_mask: (Hs, Ws) 0/1 float.
        target_mask: (..., Ht, Wt) 0/1 float (a batch of masks at once).

    Returns:
        (..., Hs + Ht - 1, Ws + Wt - 1) float counts; entry [i, j] is sum_p T(p) S(p + d) with
        d = (i - Ht + 1, j - Wt + 1).
    """
    hs, ws = source_mask.shape
    ht, wt = target_mask.shape[-2:]
    # correlation by FFT (a direct convolution with a mask-sized kernel is far slower), on
    # a power-of-two grid large enough that no offset wraps onto another; in float64, so that
    # rounding gives the exact counts
    size = (1 << (hs + ht - 2).bit_length(), 1 << (ws + wt - 2).bit_length())
    spectrum = (
        torch.fft.rfft2(source_mask.double(), size)
        * torch.fft.rfft2(target_mask.double(), size).conj()
    )
    counts = torch.fft.irfft2(spectrum, size)  # circular: offset d at d mod size
    counts = counts.roll((ht - 1, wt - 1), (-2, -1))  # offset d at d + (Ht - 1, Wt - 1)
    return counts[..., : hs + ht - 1, : ws + wt - 1].round_().to(source_mask.dtype)


def initial_nnf(
    target: torch.Tensor,
    source_labels: torch.Tensor,
    allowed: torch.Tensor,
    generator: torch.Generator,
    shifts: int,
    overlap_fraction: float,
    fill: str = "rows",
    uniformity: float = 0.0,
    source_shares: torch.Tensor | None = None,
    objects: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Class-by-class initial field at the coarsest level: shifted copies of the source regions.

    For each target class c the first shift is the offset d that best overlays the target's
    class-c region on the source's (ties: the shortest), so an unchanged layout starts from the
    identity; with `objects`, each connected region of class c (an object) takes its own best
    shift, so objects of one class moved apart, or drawn anew, each copy a whole source object
    rather than the one shift that suits the largest. Pixels it leaves uncovered (the space an
    object vacated, a region drawn larger) are filled by `fill`:
    - "rows": from the class's source pixels (inside it, not on its fringe) at the nearest
      relative height that can spare them, a run per target row from a seeded offset
      (`_row_fill`): sky, road and water change with height far more than along it, so what
      fills a hole continues its surroundings' band; then, for what no row could spare, as
      "shifts";
    - "shifts": seeded shifts among those covering at least `overlap_fraction` of the best
      coverage of what remains (small vertical moves favoured), `shifts` - 1 more in all.
    The rest get seeded random source pixels of their class.

    Args:
        target: (Ht, Wt) long target classes.
        source_labels: (Hs, Ws) long source classes (majority labels at this level).
        allowed: (K, Hs * Ws) bool.
        generator: the seeded generator.
        shifts: number of shifted copies per class (>= 1), the best one included.
        overlap_fraction: in (0, 1].
        fill: "rows" or "shifts".
        uniformity: with fill "rows", a source pixel lends to at most this many times its
            class's average need (as `capacity`; 0: no limit), counting the first shift's uses.
        source_shares: optional (K, Hs, Ws) share of each class in the source pixels'
            footprints; with fill "rows" only pixels wholly of the class lend (where the class
            has any), not its fringe, whose colour is mixed with a neighbour's.
        objects: a first shift per connected region of a class instead of one per class.

    Returns:
        (Ht * Wt,) long flat source indices, and (Ht, Wt) bool: the pixels set by the first
        (best) shift of their class.
    """
    device = target.device
    ht, wt = target.shape
    hs, ws = source_labels.shape
    ys = torch.arange(ht, device=device)[:, None].expand(ht, wt)
    xs = torch.arange(wt, device=device)[None, :].expand(ht, wt)
    # tie-break towards short offsets: the penalty stays below one pixel of overlap
    dy = torch.arange(hs + ht - 1, device=device, dtype=torch.float32)[:, None] - (ht - 1)
    dx = torch.arange(ws + wt - 1, device=device, dtype=torch.float32)[None, :] - (wt - 1)
    penalty = 0.5 * torch.sqrt(dy**2 + dx**2) / (hs + ht + ws + wt)
    # seeded shifts favour small vertical moves: light and texture scale change with height
    prefer_level = torch.exp(-dy.abs() / (0.05 * (hs + ht))).expand(penalty.shape)
    nnf = torch.full((ht, wt), -1, dtype=torch.long, device=device)
    anchored = torch.zeros((ht, wt), dtype=torch.bool, device=device)
    for c in target.unique().tolist():
        source_mask = (source_labels == c).float()
        remaining = target == c
        for stage in range(shifts):
            if not remaining.any() or not source_mask.any():
                break
            if stage == 0:
                # the best-overlaying shift of the whole class, or of each of its objects
                ids, count = _objects(remaining) if objects else (remaining.long(), 1)
                hit = torch.zeros_like(remaining)
                for first in range(1, count + 1, _OBJECT_CHUNK):  # bounded memory
                    numbers = torch.arange(first, min(first + _OBJECT_CHUNK, count + 1))
                    chunk = ids == numbers.to(device)[:, None, None]  # (n, Ht, Wt) one per object
                    score = _overlap(source_mask, chunk.float()) - penalty
                    offsets = score.flatten(1).argmax(1).tolist()
                    for region, best in zip(chunk, offsets, strict=True):
                        hit |= _copy_shifted(nnf, region, source_labels, c, best, ys, xs)
            else:
                score = _overlap(source_mask, remaining.float())
                good = score >= overlap_fraction * score.max()
                weight = good.float() * prefer_level
                best = int(torch.multinomial(weight.flatten(), 1, generator=generator))
                hit = _copy_shifted(nnf, remaining, source_labels, c, best, ys, xs)
            remaining &= ~hit
            if stage == 0:
                anchored |= hit
                if fill == "rows" and remaining.any():
                    donors = source_mask > 0
                    if source_shares is not None:
                        # not the class's fringe, mixed with a neighbour's colour at this scale
                        pure = donors & (source_shares[c] > 1 - 1e-3)
                        donors = pure if pure.any() else donors
                    remaining &= ~_row_fill(nnf, remaining, donors, generator, uniformity)
    nnf = nnf.reshape(-1)
    classes = target.reshape(-1)
    missing = (nnf < 0) | ~is_allowed(nnf.clamp_min(0), classes, allowed)
    if missing.any():
        nnf[missing] = random_allowed(classes[missing], allowed, generator)
    return nnf, anchored


def _objects(mask: torch.Tensor) -> tuple[torch.Tensor, int]:
    """The 4-connected regions of an (H, W) bool mask: (H, W) long ids 1..n (0 outside the
    mask), and n."""
    ids, count = ndimage.label(mask.cpu().numpy())
    return torch.from_numpy(ids).to(device=mask.device, dtype=torch.long), int(count)


def _copy_shifted(
    nnf: torch.Tensor,
    region: torch.Tensor,
    source_labels: torch.Tensor,
    c: int,
    offset: int,
    ys: torch.Tensor,
    xs: torch.Tensor,
) -> torch.Tensor:
    """Point the pixels of `region` (Ht, Wt) at the source shifted by `offset` (a flat index
    into `_overlap`'s grid) where that source pixel is of class c; returns the pixels set."""
    (ht, wt), (hs, ws) = region.shape, source_labels.shape
    oy, ox = offset // (ws + wt - 1) - (ht - 1), offset % (ws + wt - 1) - (wt - 1)
    sy, sx = ys + oy, xs + ox
    inside = (sy >= 0) & (sy < hs) & (sx >= 0) & (sx < ws)
    flat = sy.clamp(0, hs - 1) * ws + sx.clamp(0, ws - 1)
    hit = region & inside & (source_labels.reshape(-1)[flat] == c)
    nnf[hit] = flat[hit]
    return hit


def _row_fill(
    nnf: torch.Tensor,
    todo: torch.Tensor,
    source_mask: torch.Tensor,
    generator: torch.Generator,
    uniformity: float,
) -> torch.Tensor:
    """Fill pixels of one class in the (Ht, Wt) field row by row, from the class's source pixels
    at the same relative height.

    Every target row takes the nearest source row (in relative height) whose pixels of the class
    can still lend to all its pixels to fill without exceeding `uniformity` times the class's
    average need per source pixel (uses already in `nnf` count); its k-th pixel to fill (left to
    right) takes the (k + offset)-th class pixel of that source row, cyclically, the offset
    seeded and carried on where an earlier target row drew from the same source row. So a run
    of pixels to fill copies a run of the source row, consecutive rows copy a block, and no
    source row is drained into a stripe. Rows that no source row can serve stay unfilled.

    Args:
        nnf: (Ht, Wt) long flat source indices (-1 where unset); filled in place.
        todo: (Ht, Wt) bool, the pixels to fill.
        source_mask: (Hs, Ws) bool, the class's source pixels (not empty).
        generator: the seeded generator.
        uniformity: the limit factor (0: no limit).

    Returns:
        (Ht, Wt) bool, the pixels filled.
    """
    device = todo.device
    ht = todo.shape[0]
    hs, ws = source_mask.shape
    counts = source_mask.sum(1)  # (Hs,) class pixels per source row
    n_class = counts.tolist()
    copies = (nnf >= 0) & source_mask.reshape(-1)[nnf.clamp_min(0)]  # earlier uses of the class
    if uniformity > 0:
        need = float((todo | copies).sum()) / float(counts.sum())  # uses per source pixel
        uses = math.ceil(uniformity * max(need, 1.0))
        used = torch.bincount(nnf[copies] // ws, minlength=hs)  # (Hs,)
        budget = (uses * counts - used).tolist()
    else:
        budget = [math.inf] * hs
    # per target row: the source row to draw from (-1: none) and where to start in it
    rows, starts = [-1] * ht, [0] * ht
    drawn = [0] * hs
    offset = int(torch.randint(0, ws, (1,), generator=generator, device=device))
    for y, n in enumerate(todo.sum(1).tolist()):
        if n == 0:
            continue
        own = min(hs - 1, int((y + 0.5) * hs / ht))
        for d in range(hs):  # outwards from the same relative height, upper row first
            fits = (r for r in (own - d, own + d) if 0 <= r < hs and n_class[r] and budget[r] >= n)
            r = next(fits, None)
            if r is not None:
                rows[y], starts[y] = r, offset + drawn[r]
                budget[r] -= n
                drawn[r] += n
                break
    row = torch.tensor(rows, device=device)
    served = todo & (row >= 0)[:, None]
    if not served.any():
        return served
    row = row.clamp_min(0)
    # per source row, the class's columns first (left to right), then the others
    columns = torch.argsort((~source_mask).to(torch.uint8), dim=1, stable=True)  # (Hs, Ws)
    rank = torch.cumsum(todo.long(), 1) - 1  # (Ht, Wt): index among the row's pixels to fill
    start = torch.tensor(starts, device=device)[:, None]
    col = torch.gather(columns[row], 1, (rank + start) % counts[row][:, None].clamp_min(1))
    nnf[served] = (row[:, None] * ws + col)[served]
    return served


def _blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of (C, H, W), zero outside (for normalised convolution)."""
    return gaussian_blur(x[None], sigma, padding="zeros", radius=max(1, round(3 * sigma)))[0]


def blend_fill(
    image: torch.Tensor, target: torch.Tensor, anchored: torch.Tensor, sigma: float
) -> torch.Tensor:
    """Remove the colour jumps between a class's anchored copy and the patches filled in.

    Pixels not anchored (filled by a secondary shift or at random) are shifted in colour by a
    smooth correction that equals, along their border with anchored pixels of the same class,
    the colour jump across that border, and fades with distance (normalised Gaussian
    interpolation), so a filled hole continues its surroundings' shading without a seam.

    Args:
        image: (3, Ht, Wt) the voted initial image.
        target: (Ht, Wt) long target classes.
        anchored: (Ht, Wt) bool.
        sigma: Gaussian width in pixels.

    Returns:
        (3, Ht, Wt) corrected image.
    """
    free = ~anchored
    jump_sum = torch.zeros_like(image)
    count = torch.zeros_like(image[0])
    for dy, dx in ((0, 1), (0, -1), (1, 0), (-1, 0)):
        # neighbour q = p + (dy, dx), anchored and of the same class (no wrap-around)
        q_anchored = torch.roll(anchored, (-dy, -dx), (0, 1))
        q_same = torch.roll(target, (-dy, -dx), (0, 1)) == target
        q_inside = torch.ones_like(anchored)
        if dy:
            q_inside[(-1 if dy > 0 else 0), :] = False
        else:
            q_inside[:, (-1 if dx > 0 else 0)] = False
        edge = (free & q_anchored & q_same & q_inside).to(image.dtype)
        jump_sum += edge * (torch.roll(image, (-dy, -dx), (1, 2)) - image)
        count += edge
    border = count > 0
    jump = torch.where(border, jump_sum / count.clamp_min(1), 0.0)  # (3, Ht, Wt)
    out = image.clone()
    for c in target[free].unique().tolist():
        region = (target == c) & free
        seed_mask = (border & region).to(image.dtype)
        if not seed_mask.any():
            continue  # a region with no anchored neighbour of its class keeps its colours
        num = _blur(jump * seed_mask, sigma)
        den = _blur(seed_mask[None], sigma)
        corr = num / den.clamp_min(1e-6)
        out = torch.where(region & (den[0] > 1e-6), out + corr, out)
    return out.clamp(0, 1)


def upsample_nnf(
    nnf: torch.Tensor,
    coarse_target: tuple[int, int],
    coarse_source: tuple[int, int],
    fine_target: tuple[int, int],
    fine_source: tuple[int, int],
) -> torch.Tensor:
    """Carry a field to the next finer level (sizes double, rounded up): child pixels keep their
    parent's offset. Returns (Ht * Wt,) long for the fine level (not yet class-checked)."""
    device = nnf.device
    (hc, wc), (_, wsc) = coarse_target, coarse_source
    (ht, wt), (hs, ws) = fine_target, fine_source
    y = torch.arange(ht, device=device)[:, None]
    x = torch.arange(wt, device=device)[None, :]
    parent = nnf.reshape(hc, wc)[(y // 2).clamp_max(hc - 1), (x // 2).clamp_max(wc - 1)]
    sy = (2 * (parent // wsc) + y % 2).clamp_max(hs - 1)
    sx = (2 * (parent % wsc) + x % 2).clamp_max(ws - 1)
    return (sy * ws + sx).reshape(-1)


def repair(
    nnf: torch.Tensor, classes: torch.Tensor, allowed: torch.Tensor, generator: torch.Generator
) -> torch.Tensor:
    """Replace entries that break the class constraint by random allowed source pixels."""
    bad = ~is_allowed(nnf, classes, allowed)
    if bad.any():
        nnf = nnf.clone()
        nnf[bad] = random_allowed(classes[bad], allowed, generator)
    return nnf


def patch_distance(query: torch.Tensor, keys: torch.Tensor, nnf: torch.Tensor) -> torch.Tensor:
    """(N,) squared distance between query row i and key row nnf[i]."""
    return (query - keys.index_select(0, nnf)).square_().sum(1)


def capacity(classes: torch.Tensor, allowed: torch.Tensor, factor: float) -> torch.Tensor:
    """How many target pixels may copy one source pixel, per query: `factor` times the uses
    its class needs on average (its target pixels / the source pixels allowed for it), at
    least 1, so a class drawn larger than in the source still gets its texture.

    Args:
        classes: (N,) long target classes; allowed: (K, Ns) bool; factor: > 0.

    Returns:
        (N,) long.
    """
    targets = torch.bincount(classes, minlength=allowed.shape[0]).to(torch.float32)  # (K,)
    need = targets / allowed.sum(1).clamp_min(1)  # (K,) uses per allowed source pixel
    return (factor * need.clamp_min(1.0)).ceil().long()[classes]


def admit(
    old: torch.Tensor,
    old_d: torch.Tensor,
    new: torch.Tensor,
    new_d: torch.Tensor,
    limit: torch.Tensor,
    num_sources: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The occurrence (uniformity) constraint of StyLit / EbSynth, one step at a time: queries
    that move to a source pixel are admitted in order of their gain (old minus new distance)
    while the pixel holds fewer than `limit` queries (counted before the move); the others keep
    their old match. So no single source patch floods a region, however well it fits a blurry
    output; staying put is always allowed, so an exact copy is kept.

    Args:
        old, old_d: (N,) long current field and its distances.
        new, new_d: (N,) long proposed field and its distances.
        limit: (N,) long, the most queries one source pixel may hold (per query's class).
        num_sources: Ns.

    Returns:
        (field, distances) with the rejected moves undone.
    """
    moved = (new != old).nonzero()[:, 0]
    if moved.numel() == 0:
        return new, new_d
    held = torch.bincount(old, minlength=num_sources)  # (Ns,) uses before the moves
    # only source pixels that could overflow need the ranking: all their arrivals take part
    dest = new.index_select(0, moved)
    crowded = held + torch.bincount(dest, minlength=num_sources) > limit.min()  # (Ns,)
    moved = moved[crowded.index_select(0, dest)]
    if moved.numel() == 0:
        return new, new_d
    dest = new.index_select(0, moved)
    gain = new_d.index_select(0, moved) - old_d.index_select(0, moved)  # < 0: closer
    # one sort: grouped by source pixel, best gain first (ties: in query order)
    order = torch.argsort(dest * 2**32 + _ordered_bits(gain), stable=True)
    moved, dest = moved.index_select(0, order), dest.index_select(0, order)
    arrivals = torch.bincount(dest, minlength=num_sources)
    first = (arrivals.cumsum(0) - arrivals).index_select(0, dest)  # where dest's group starts
    rank = torch.arange(dest.numel(), device=dest.device) - first
    rejected = moved[rank >= limit.index_select(0, moved) - held.index_select(0, dest)]
    new, new_d = new.clone(), new_d.clone()
    new[rejected], new_d[rejected] = old[rejected], old_d[rejected]
    return new, new_d


def _ordered_bits(x: torch.Tensor) -> torch.Tensor:
    """(N,) long in [0, 2**32) that sorts like the finite float32 values x (no -0.0)."""
    bits = x.view(torch.int32).long()
    return torch.where(bits < 0, bits ^ 0x7FFFFFFF, bits) + 2**31


def exact_search(
    query: torch.Tensor,
    keys: torch.Tensor,
    classes: torch.Tensor,
    allowed: torch.Tensor,
    nnf: torch.Tensor,
    dist: torch.Tensor,
    limit: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact nearest allowed source patch of every query (matrix products, class by class).

    A new match replaces the current one only if strictly closer, so exact matches (an
    unchanged layout) are kept.

    Args:
        query: (N, D) target patch features.
        keys: (Ns, D) source patch features.
        classes: (N,) long target classes.
        allowed: (K, Ns) bool.
        nnf: (N,) long current field; dist: (N,) its distances.
        limit: optional (N,) long occurrence limit (see `admit`).

    Returns:
        (nnf, dist) updated.
    """
    old, old_d = nnf, dist
    nnf, dist = nnf.clone(), dist.clone()
    key_sq = keys.square().sum(1)  # (Ns,)
    for c in classes.unique().tolist():
        rows = (classes == c).nonzero()[:, 0]
        cols = allowed[c].nonzero()[:, 0]
        if cols.numel() == 0:
            continue
        kc_t, kc_sq = keys.index_select(0, cols).T.contiguous(), key_sq[cols]  # (D, Nc), (Nc,)
        chunk = max(1, _QUERY_CHUNK_ELEMENTS // cols.numel())
        for i in range(0, rows.numel(), chunk):
            r = rows[i : i + chunk]
            q = query.index_select(0, r)  # (n, D)
            partial = torch.addmm(kc_sq, q, kc_t, alpha=-2.0)  # (n, Nc), |q|^2 omitted
            cand = cols[partial.argmin(1)]
            d = (q - keys.index_select(0, cand)).square_().sum(1)
            better = d < dist[r]
            nnf[r] = torch.where(better, cand, nnf[r])
            dist[r] = torch.where(better, d, dist[r])
    if limit is not None:
        nnf, dist = admit(old, old_d, nnf, dist, limit, keys.shape[0])
    return nnf, dist


def _best_of(
    query: torch.Tensor,
    keys: torch.Tensor,
    classes: torch.Tensor,
    allowed: torch.Tensor,
    cands: torch.Tensor,
    best: torch.Tensor,
    best_d: torch.Tensor,
    limit: torch.Tensor | None,
    rows: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Keep, per query, the closest of its current match and its allowed candidates.

    Args:
        cands: (C, N) long candidate source pixels, or (C, n) with `rows`.
        best, best_d: (N,) current matches and distances.
        limit: optional (N,) long occurrence limit (see `admit`).
        rows: optional (n,) long, the only queries searched (the others keep their match; the
            limit still counts what they hold).
    """
    if rows is not None:
        sub, sub_d = _best_of(
            query.index_select(0, rows),
            keys,
            classes.index_select(0, rows),
            allowed,
            cands,
            best.index_select(0, rows),
            best_d.index_select(0, rows),
            None,
        )
        new, new_d = best.index_copy(0, rows, sub), best_d.index_copy(0, rows, sub_d)
        if limit is not None:
            new, new_d = admit(best, best_d, new, new_d, limit, keys.shape[0])
        return new, new_d
    n = best.numel()
    ok = allowed.reshape(-1).take(classes * allowed.shape[1] + cands)  # (C, N)
    # only the allowed candidates that differ from the current match can be strictly closer
    measure = ok & (cands != best)  # (C, N)
    block = max(1, _GATHER_ELEMENTS // query.shape[1])  # pairs measured at once
    d = torch.full(cands.shape, torch.inf, dtype=query.dtype, device=query.device)  # (C, N)
    if 2 * int(measure.sum()) > measure.numel():
        # mostly new candidates (random search): measure them all, query rows in order
        for cand, dist in zip(cands, d, strict=True):
            for i in range(0, n, block):
                diff = keys.index_select(0, cand[i : i + block]) - query[i : i + block]
                torch.sum(diff.square_(), 1, out=dist[i : i + block])
        d = torch.where(measure, d, torch.inf)
    else:
        # a coherent field proposes its own match most of the time: measure only the others
        todo = measure.reshape(-1).nonzero()[:, 0]  # flat (C * N) indices
        flat, d = cands.reshape(-1), d.view(-1)  # (C * N,)
        for part in todo.split(block):
            pairs = flat.index_select(0, part)  # (n',) source pixels to measure
            diff = keys.index_select(0, pairs) - query.index_select(0, part % n)  # (n', D)
            d.index_copy_(0, part, diff.square_().sum(1))
    cand_d, which = d.view(cands.shape).min(0)  # (N,)
    better = cand_d < best_d
    new = cands.gather(0, which[None])[0]
    new, new_d = torch.where(better, new, best), torch.where(better, cand_d, best_d)
    if limit is not None:
        new, new_d = admit(best, best_d, new, new_d, limit, keys.shape[0])
    return new, new_d


def patchmatch(
    query: torch.Tensor,
    keys: torch.Tensor,
    classes: torch.Tensor,
    allowed: torch.Tensor,
    nnf: torch.Tensor,
    dist: torch.Tensor,
    target_size: tuple[int, int],
    source_size: tuple[int, int],
    steps: tuple[int, ...],
    radii: int,
    generator: torch.Generator,
    limit: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One round of parallel PatchMatch: propagation from neighbours at the given distances in
    four directions, then random search around the improved match at `radii` radii (shrinking
    4x each) plus one random allowed pixel of the class. Candidates that break the class
    constraint are skipped; a candidate replaces the match only if strictly closer.

    Args: as `exact_search`, plus the (H, W) sizes of target and source, and the generator.

    Returns:
        (nnf, dist) updated.
    """
    device = nnf.device
    ht, wt = target_size
    hs, ws = source_size
    # propagation: the neighbour at p + e matched q; propose q - e for p (edges clamped)
    src_y, src_x = (nnf // ws).view(ht, wt), (nnf % ws).view(ht, wt)
    shifts = [d for k in steps for d in ((0, k), (0, -k), (k, 0), (-k, 0))]
    props = torch.empty((len(shifts), ht, wt), dtype=nnf.dtype, device=device)  # (E, Ht, Wt)
    for i, (ey, ex) in enumerate(shifts):
        # the neighbours' matches: whole rows (or columns) of the field moved by e
        axis, size, step = (0, ht, ey) if ey else (1, wt, ex)
        near = (torch.arange(size, device=device) + step).clamp_(0, size - 1)
        ny, nx = src_y.index_select(axis, near), src_x.index_select(axis, near)
        ny, nx = ny.sub_(ey).clamp_(0, hs - 1), nx.sub_(ex).clamp_(0, ws - 1)
        torch.add(nx, ny, alpha=ws, out=props[i])
    props = props.view(len(shifts), -1)  # (E, N)
    # only the queries not yet matched exactly are searched (most of an unchanged region)
    rows = (dist > _EXACT).nonzero()[:, 0]  # (n,)
    if rows.numel() == 0:
        return nnf, dist
    if rows.numel() == dist.numel():
        rows = None
    else:
        props = props.index_select(1, rows)
    nnf, dist = _best_of(query, keys, classes, allowed, props, nnf, dist, limit, rows)

    # random search around the improved match, radius max(Hs, Ws) / 4 shrinking 4x per try
    mine = nnf if rows is None else nnf.index_select(0, rows)  # (n,)
    n = mine.numel()
    radius = torch.tensor(
        [max(1.0, max(hs, ws) / 4**i) for i in range(1, radii + 1)], device=device
    )  # (R,)
    u = torch.rand((2, radii, n), generator=generator, device=device) * 2 - 1  # (2, R, n)
    off = torch.round(u * radius[:, None]).long()
    cy = (mine // ws + off[0]).clamp_(0, hs - 1)
    cx = (mine % ws + off[1]).clamp_(0, ws - 1)
    own = classes if rows is None else classes.index_select(0, rows)
    cands = torch.cat([cy * ws + cx, random_allowed(own, allowed, generator)[None]])
    return _best_of(query, keys, classes, allowed, cands, nnf, dist, limit, rows)


def vote(
    nnf: torch.Tensor,
    weights: torch.Tensor,
    image: torch.Tensor,
    allowed: torch.Tensor,
    target: torch.Tensor,
    patch_size: int,
    spread: float | torch.Tensor = 0.0,
    guard: float = 0.0,
    reference_spread: float = 0.0,
) -> torch.Tensor:
    """Patch voting: each target pixel averages what the overlapping matched patches put there.

    A vote counts only if the source pixel it copies is allowed for the target pixel's class, so
    every region is made of its own class's texture; a pixel with no valid vote takes its own
    match's centre pixel.

    Args:
        nnf: (Ht * Wt,) long field.
        weights: (Ht * Wt,) float >= 0, weight of each matched patch.
        image: (3, Hs, Ws) source image.
        allowed: (K, Hs * Ws) bool.
        target: (Ht, Wt) long target classes.
        patch_size: odd patch side.
        spread: if > 0, a vote from a patch whose centre lies at offset o from the pixel is
            weighted by exp(-|o|^2 / (2 spread^2)) (sharper); 0: all votes weigh the same.
            A (Ht, Wt) tensor gives each target pixel its own spread.
        guard: if > 0, a pixel whose vote lies farther than this (in any channel) from the
            vote `reference_spread` would give it takes, of its valid votes, the one nearest
            that reference instead: where sharp votes follow a lone patch off the consensus
            (a speckle), a real source colour that agrees with most votes. Pixels voted with
            the reference spread itself never move.
        reference_spread: the spread of the reference vote (as `spread`, a number).

    Returns:
        (3, Ht, Wt) float image.
    """
    r = patch_size // 2
    ht, wt = target.shape
    _, hs, ws = image.shape
    src_y, src_x = (nnf // ws).view(ht, wt), (nnf % ws).view(ht, wt)
    # the source row (times Ws) and column each patch copies at offset d = (dy, dx), clamped
    row_at = [(src_y + d).clamp_(0, hs - 1).mul_(ws) for d in range(-r, r + 1)]  # (Ht, Wt)
    col_at = [(src_x + d).clamp_(0, ws - 1) for d in range(-r, r + 1)]
    weights = weights.view(ht, wt).to(image.dtype)
    class_base = target * (hs * ws)  # (Ht, Wt) offset of each pixel's class in `allowed`
    # colour with a column of ones: one gather brings a vote's colour and its count
    rows = torch.cat([image, torch.ones_like(image[:1])]).reshape(4, -1).T.contiguous()
    allowed_flat = allowed.reshape(-1)
    acc = image.new_zeros(ht, wt, 4)  # weighted colour sums, weight sums
    ref_acc = image.new_zeros(ht, wt, 4) if guard > 0 else None  # the same, reference spread
    inv = None  # per pixel 1 / (2 spread^2), 0 where spread is 0 (plain mean)
    if isinstance(spread, torch.Tensor):
        s = spread.to(image.dtype)
        inv = torch.where(s > 0, 0.5 / s.clamp_min(1e-6).square(), torch.zeros_like(s))
    # one offset d at a time: the patch centred at q puts source pixel nnf[q] + d on p = q + d
    for dy in range(-r, r + 1):
        q_rows, p_rows = slice(max(0, -dy), ht - max(0, dy)), slice(max(0, dy), ht + min(0, dy))
        for dx in range(-r, r + 1):
            q_cols = slice(max(0, -dx), wt - max(0, dx))
            p_cols = slice(max(0, dx), wt + min(0, dx))
            idx = row_at[dy + r][q_rows, q_cols] + col_at[dx + r][q_rows, q_cols]  # (h, w)
            ok = allowed_flat.take(class_base[p_rows, p_cols] + idx)  # the vote's class fits
            colour = rows.index_select(0, idx.view(-1)).view(*idx.shape, 4)
            plain = weights[q_rows, q_cols] * ok
            if inv is not None:
                weight = plain * torch.exp(-(dy**2 + dx**2) * inv[p_rows, p_cols])
                gain = 1.0
            else:
                weight, gain = plain, _offset_gain(dy, dx, spread)
            acc[p_rows, p_cols].addcmul_(colour, weight[..., None], value=gain)
            if ref_acc is not None:
                ref_gain = _offset_gain(dy, dx, reference_spread)
                ref_acc[p_rows, p_cols].addcmul_(colour, plain[..., None], value=ref_gain)
    own = rows.index_select(0, nnf)[:, :3].view(ht, wt, 3)
    out = _mean_of(acc, own)  # (Ht, Wt, 3)
    if ref_acc is not None:
        ref = _mean_of(ref_acc, own)
        off = (out - ref).abs().amax(-1) > guard  # (Ht, Wt)
        if off.any():
            out = out.clone()
            out[off] = _vote_nearest(ref, off, rows, allowed_flat, class_base, row_at, col_at, r)
    return out.permute(2, 0, 1).contiguous()


def _offset_gain(dy: int, dx: int, spread: float) -> float:
    """Weight of a vote from a patch centred (dy, dx) away: Gaussian of width `spread`, 1 if 0."""
    return math.exp(-(dy**2 + dx**2) / (2 * spread**2)) if spread > 0 else 1.0


def _mean_of(acc: torch.Tensor, own: torch.Tensor) -> torch.Tensor:
    """(Ht, Wt, 3) weighted mean of accumulated (colour sums, weight sum); `own` where none."""
    total = acc[..., 3:]
    return torch.where(total > 0, acc[..., :3] / total.clamp_min(1e-12), own)


def _vote_nearest(
    ref: torch.Tensor,
    where: torch.Tensor,
    rows: torch.Tensor,
    allowed_flat: torch.Tensor,
    class_base: torch.Tensor,
    row_at: list[torch.Tensor],
    col_at: list[torch.Tensor],
    r: int,
) -> torch.Tensor:
    """(n, 3) for the n pixels of `where` (Ht, Wt) bool, the valid vote (see `vote`) nearest
    `ref` (Ht, Wt, 3); `ref` itself where a pixel has no valid vote."""
    ht, wt, _ = ref.shape
    py, px = where.nonzero(as_tuple=True)
    target_ref = ref[py, px]  # (n, 3)
    base = class_base[py, px]
    best = torch.full(py.shape, math.inf, dtype=ref.dtype, device=ref.device)
    chosen = target_ref.clone()
    for dy in range(-r, r + 1):
        qy = py - dy  # the patch centred at q = p - d puts its pixel at offset d on p
        for dx in range(-r, r + 1):
            qx = px - dx
            inside = (qy >= 0) & (qy < ht) & (qx >= 0) & (qx < wt)
            qyc, qxc = qy.clamp(0, ht - 1), qx.clamp(0, wt - 1)
            idx = row_at[dy + r][qyc, qxc] + col_at[dx + r][qyc, qxc]
            ok = inside & allowed_flat.take(base + idx)
            colour = rows.index_select(0, idx)[:, :3]
            d = (colour - target_ref).square().sum(-1).masked_fill_(~ok, math.inf)
            better = d < best
            best = torch.where(better, d, best)
            chosen = torch.where(better[:, None], colour, chosen)
    return chosen
