"""Texture-by-numbers: a shape of one class drawn where the source has none of it nearby.

The hard case for guided patch synthesis (a region far from any source example of its class:
without an occurrence limit one bright patch floods it, and a label guide says little inside
it). Two cases built from the shared scenes (../shared/data/semia-examples/):

- pantheon: a stone arch (a half ring on two legs) drawn in the sky, right of the temple;
- hill: a mountain peak (a triangle) drawn in the sky, top left.

Run:
    python benchmarks/texture_by_numbers.py --out results/tbn [--size 400] [--seeds 0 1]
        [--uniformity 0]

Prints, per case and seed, the analogy's patch reuse on its final field (`repeat %`: the
largest connected area copied from over-used source pixels, % of the frame; `use H`: the
normalised entropy of source-pixel use per class) and `acc shape`: the share of the drawn
shape's pixels that a labeller fitted on the source alone reads as the drawn class. Writes
DIR/sheet.png (source | source labels | target labels | one column per seed) and
DIR/results.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from semia.config import PatchConfig
from semia.eval import fit_labeller
from semia.io import load_scene, write_image
from semia.patch import patch_reuse, synthesize_with_field
from semia.viz import make_sheet

sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/ as a script folder

import quality  # the scene lookup of the quality benchmark

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "semia-examples"


def _grid(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray, int, int]:
    h, w = ids.shape
    yy, xx = np.mgrid[0:h, 0:w]
    return yy, xx, h, w


def arch_in_the_sky(ids: np.ndarray) -> tuple[np.ndarray, int]:
    """pantheon: the class at the bottom centre (stone) drawn as an arch in the sky (the class
    of the top-left corner). Returns the target ids and the drawn class."""
    yy, xx, h, w = _grid(ids)
    stone, sky = int(ids[int(0.9 * h), w // 2]), int(ids[2, 2])
    cx, cy, r1, r2 = 0.80 * w, 0.62 * h, 0.16 * h, 0.30 * h
    ring = (np.hypot(xx - cx, yy - cy) < r2) & (np.hypot(xx - cx, yy - cy) > r1) & (yy < cy)
    leg = (r2 - r1) / 2
    legs = (np.abs(xx - (cx - r1 - leg)) < leg) | (np.abs(xx - (cx + r1 + leg)) < leg)
    target = ids.copy()
    target[(ring | (legs & (yy >= cy))) & (ids == sky)] = stone
    return target, stone


def peak_in_the_sky(ids: np.ndarray) -> tuple[np.ndarray, int]:
    """hill: the mountains' class drawn as a peak in the sky (top left)."""
    yy, xx, h, w = _grid(ids)
    mountain = int(
        np.bincount(
            ids[int(0.35 * h) : int(0.45 * h), int(0.2 * w) : int(0.3 * w)].ravel()
        ).argmax()
    )
    sky = int(ids[2, 2])
    peak = (yy > 0.05 * h) & (yy < 0.3 * h) & (np.abs(xx - 0.15 * w) < (yy - 0.05 * h) * 0.8)
    target = ids.copy()
    target[peak & (ids == sky)] = mountain
    return target, mountain


CASES: dict[str, tuple[str, Callable[[np.ndarray], tuple[np.ndarray, int]]]] = {
    "pantheon": ("a stone arch drawn in the sky", arch_in_the_sky),
    "hill": ("a mountain peak drawn in the sky", peak_in_the_sky),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--out", required=True, type=Path, help="folder for sheet and results")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the shared scenes")
    parser.add_argument("--size", type=int, default=400, help="longest side (px)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--cell", type=int, default=200, help="sheet cell height (px)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument(
        "--uniformity",
        type=float,
        default=PatchConfig().uniformity,
        help="the occurrence limit (0: off, as before issue 15; default: %(default)s)",
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    found, _ = quality.pick_scenes(args.data, list(CASES), "scene")
    config = PatchConfig(uniformity=args.uniformity)
    rows, sheet_rows, captions = [], [], []
    print("| case | seed | repeat % | use H | acc shape | s |")
    print("|---|---|---|---|---|---|")
    for name, (caption, make) in CASES.items():
        image_path, label_path, _ = found[name]
        image, labels = load_scene(image_path, label_path, args.size)
        target, drawn = make(labels.ids)
        shape = (target != labels.ids) & (target == drawn)
        labeller = fit_labeller(image, labels.ids, num_classes=labels.num_classes, seed=0)
        sheet_row = [image, labels.to_rgb(), dataclasses.replace(labels, ids=target).to_rgb()]
        for seed in args.seeds:
            start = time.perf_counter()
            output, field = synthesize_with_field(
                image, labels.ids, target, num_classes=labels.num_classes, seed=seed, config=config
            )
            seconds = time.perf_counter() - start
            reuse = patch_reuse(field, target, labels.ids)
            accuracy = float((labeller.predict(output)[shape] == drawn).mean())
            row = {"case": name, "seed": seed, "acc_shape": accuracy, "seconds": seconds}
            row.update(reuse)
            rows.append(row)
            sheet_row.append(output)
            print(
                f"| {name} | {seed} | {reuse['repeat_area']:.1f} | {reuse['use_entropy']:.3f} "
                f"| {accuracy:.3f} | {seconds:.2f} |",
                flush=True,
            )
        sheet_rows.append(sheet_row)
        captions.append(f"{name}: {caption}")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(rows, indent=1))
    titles = [
        "source",
        "source labels",
        "target labels",
        *(f"analogy seed {s}" for s in args.seeds),
    ]
    write_image(args.out / "sheet.png", make_sheet(sheet_rows, titles, captions, args.cell))
    print(f"wrote {args.out / 'sheet.png'}, {args.out / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
