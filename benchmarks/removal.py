"""Object removal with truth: paste real objects onto photos, remove them, compare.

    python benchmarks/removal.py                  # 7 shared scenes x 3 objects, 256 px
    python benchmarks/removal.py --cases 1 --methods telea analogy
    python benchmarks/removal.py --varied         # objects of many shapes and colours

For every scene of ../shared/data/semia-examples, objects are cut out of the shared scenes (a
connected region of one class, 2 to 10 % of the photo, from another scene or the same one: in the
shared scenes only the lake's water is one, so every case pastes that shape; `--varied` draws
from the regions of 1 to 30 %, scaled down to 8 % at most: 12 shapes) and pasted at a random
place; the mask is the pasted region (grown by 2 px, as `semia remove` does). The user's label
map marks the object as a class of its own. Each method removes it; inside the mask the result
is compared with the untouched photo:

- PSNR over the mask;
- patch SWD (x1000) between the mask's patches in the result and in the untouched photo;
- labeller accuracy: a labeller fitted on the untouched photo and its labels, applied to the
  result, against the true labels inside the mask;
- fill accuracy: the filled label map against the true labels inside the mask (the methods
  that fill labels).

Methods: cv2.inpaint (Telea), skimage.restoration.inpaint_biharmonic (both anchors),
analogy-voronoi (the analogy with a nearest-pixel label fill: ablation of the fill),
analogy (`semia.remove` with the label map), analogy-nolabels (`semia.remove` without labels:
semia segments the photo itself). Also printed: the mean time per removal.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from semia.apps.removal import (  # noqa: E402
    COLOUR_WEIGHT,
    _grow,
    fill_labels,
    remove,
    voronoi_fill,
)
from semia.config import PatchConfig  # noqa: E402
from semia.eval import fit_labeller, pixel_accuracy, psnr  # noqa: E402
from semia.eval.patch_stats import patch_swd_per_class  # noqa: E402
from semia.io import find_scenes, load_scene  # noqa: E402
from semia.patch.synthesis import synthesize  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "semia-examples"
VARIED_MAX_SHARE = 0.08  # --varied: larger regions are scaled down to this share of the photo
METHODS = ("telea", "biharmonic", "analogy-voronoi", "analogy", "analogy-nolabels")


def objects(scene_labels: dict[str, np.ndarray], lo: float, hi: float) -> list[tuple[str, int]]:
    """(scene, component index) of the connected class regions covering lo..hi of their photo."""
    found = []
    for name, ids in scene_labels.items():
        for c in np.unique(ids):
            n, _, stats, _ = cv2.connectedComponentsWithStats((ids == c).astype(np.uint8), 8)
            for i in range(1, n):
                share = stats[i, cv2.CC_STAT_AREA] / ids.size
                if lo <= share <= hi:
                    found.append((name, int(c), i))
    return found


def cut(image, ids, cls, index):
    """The object's pixels: (h, w, 3) colours and (h, w) bool shape, cropped to its box."""
    _, comp, stats, _ = cv2.connectedComponentsWithStats((ids == cls).astype(np.uint8), 8)
    x, y, w, h = stats[index, :4]
    shape = comp[y : y + h, x : x + w] == index
    return image[y : y + h, x : x + w], shape


def shrink(colours, shape, f):
    """The object scaled by f < 1 (colours area-averaged, shape nearest)."""
    size = (max(1, round(shape.shape[1] * f)), max(1, round(shape.shape[0] * f)))
    colours = cv2.resize(colours, size, interpolation=cv2.INTER_AREA)
    return colours, cv2.resize(shape.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST) > 0


def paste(photo, colours, shape, rng):
    """Paste an object at a random place; returns (image with object, (H, W) bool region)."""
    hh, ww = photo.shape[:2]
    oh, ow = shape.shape
    if oh >= hh or ow >= ww:  # keep it inside the photo
        f = 0.8 * min(hh / oh, ww / ow)
        size = (max(1, int(ow * f)), max(1, int(oh * f)))
        colours = cv2.resize(colours, size, interpolation=cv2.INTER_AREA)
        shape = cv2.resize(shape.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST) > 0
        oh, ow = shape.shape
    y, x = int(rng.integers(0, hh - oh + 1)), int(rng.integers(0, ww - ow + 1))
    out, region = photo.copy(), np.zeros((hh, ww), bool)
    region[y : y + oh, x : x + ow] = shape
    out[y : y + oh, x : x + ow][shape] = colours[shape]
    return out, region


def run_method(name, image, labels, mask, config, seed, colour_weight):
    """(result, filled label map or None)."""
    if name == "telea":
        u8 = (image * 255 + 0.5).astype(np.uint8)
        radius = max(3, round(3 * max(image.shape[:2]) / 256))
        return cv2.inpaint(u8, mask.astype(np.uint8), radius, cv2.INPAINT_TELEA) / 255.0, None
    if name == "biharmonic":
        from skimage.restoration import inpaint_biharmonic

        return inpaint_biharmonic(image, mask, channel_axis=-1).astype(np.float32), None
    if name == "analogy-voronoi":
        filled = voronoi_fill(labels, mask)
        source = np.where(mask, labels.max() + 1, labels)
        out = synthesize(image, source, filled, seed=seed, config=config)
        return np.where(mask[..., None], out, image), filled
    if name == "analogy":
        out = remove(image, mask, labels, seed=seed, config=config, colour_weight=colour_weight)
        return out, fill_labels(labels, mask)
    out = remove(image, mask, None, seed=seed, config=config, colour_weight=colour_weight)
    return out, None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=DATA)
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--cases", type=int, default=3, help="objects per scene (default: 3)")
    p.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--colour-weight", type=float, default=COLOUR_WEIGHT)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument(
        "--varied",
        action="store_true",
        help="objects from every class region of 1-30 %% of its photo, those above 8 %% scaled "
        "down to 8 %% (default: regions of 2-10 %%, of which the shared scenes have one, the "
        "lake's water)",
    )
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(args.seed)
    config = PatchConfig()
    scenes = {}
    for name, img_path, lab_path, _ in find_scenes(args.data):
        image, labels = load_scene(img_path, lab_path, args.size)
        scenes[name] = (image, labels.ids)
    lo, hi = (0.01, 0.30) if args.varied else (0.02, 0.10)
    pool = objects({k: v[1] for k, v in scenes.items()}, lo, hi)
    rows: dict[str, list[list[float]]] = {m: [] for m in args.methods}
    times: dict[str, list[float]] = {m: [] for m in args.methods}
    fills: dict[str, list[float]] = {"chord fill (semia)": [], "nearest-pixel fill": []}
    for name, (photo, ids) in scenes.items():
        labeller = fit_labeller(photo, ids)
        for _ in range(args.cases):
            donor, cls, index = pool[int(rng.integers(len(pool)))]
            colours, shape = cut(*scenes[donor], cls, index)
            share = shape.sum() / scenes[donor][1].size
            if share > VARIED_MAX_SHARE:  # --varied: a large region, scaled down
                colours, shape = shrink(colours, shape, (VARIED_MAX_SHARE / share) ** 0.5)
            image, region = paste(photo, colours, shape, rng)
            grow = max(1, round(2 * max(photo.shape[:2]) / 256))
            mask = _grow(region, grow)
            user_labels = np.where(region, ids.max() + 1, ids)  # the object: a class of its own
            fills["chord fill (semia)"].append(pixel_accuracy(fill_labels(user_labels, mask),
                                                              ids, mask=mask))  # fmt: skip
            fills["nearest-pixel fill"].append(pixel_accuracy(voronoi_fill(user_labels, mask),
                                                              ids, mask=mask))  # fmt: skip
            for m in args.methods:
                t0, c0 = time.perf_counter(), time.process_time()
                out, _ = run_method(m, image, user_labels, mask, config, args.seed,
                                    args.colour_weight)  # fmt: skip
                times[m].append((time.perf_counter() - t0, time.process_time() - c0))
                out = np.clip(out, 0, 1).astype(np.float32)
                swd = patch_swd_per_class(out, mask.astype(np.int64), photo,
                                          mask.astype(np.int64), num_classes=2)[1]  # fmt: skip
                acc = pixel_accuracy(labeller.predict(out), ids, mask=mask)
                rows[m].append([psnr(out, photo, mask=mask), 1000 * (swd or np.nan), acc])
        print(f"  {name} done", file=sys.stderr, flush=True)
    n = len(rows[args.methods[0]])
    print(f"object removal, {len(scenes)} scenes x {args.cases} pasted objects = {n} cases, "
          f"{args.size} px, seed {args.seed}, colour weight {args.colour_weight}, "
          f"{len(pool)} object(s) to draw from{' (--varied)' if args.varied else ''}; "
          "inside the mask"
          "\n")  # fmt: skip
    print("| method | PSNR | patch SWD x1000 | labeller acc | wall s | CPU s |")
    print("|---|---|---|---|---|---|")
    for m in args.methods:
        v = np.nanmean(np.array(rows[m], dtype=float), 0)
        wall, cpu = np.mean(times[m], 0)
        print(f"| {m} | {v[0]:.2f} | {v[1]:.2f} | {v[2]:.3f} | {wall:.2f} | {cpu:.2f} |")
    print("\n| label fill | accuracy inside the mask |")
    print("|---|---|")
    for k, v in fills.items():
        print(f"| {k} | {np.mean(v):.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
