"""Benchmark of `semia segment` against true label maps.

For every scene with a true label map (the shared example scenes and the gt-dev driving frames)
strokes are drawn automatically from the truth (`demo_scribbles`: short strokes inside each
region, away from its boundaries) in two settings:

- dense: strokes in every region of at least 0.05 % of the image, up to 2 % of the pixels;
- sparse: one stroke per class.

Each photo is segmented from its strokes and compared with the truth: mIoU (mean over the true
classes), boundary F-score (boundary pixels matched within 2 px) and time. For the shared scenes,
`semia.analogy` is also run on the segmented map and on the true map for edited targets (same
seed), and the PSNR between the two results is printed beside the PSNR between two seeds on the
true map (how much the result varies anyway).

    python benchmarks/segment.py [--max-size 512] [--no-analogy] [--threads 1]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage

import semia
from semia.eval import psnr
from semia.io import LabelMap, read_image, read_label_map, read_target, resize_nearest
from semia.segment import SegmentConfig, demo_scribbles, segment

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT / ".." / "shared" / "data"
_BOUNDARY_TOLERANCE = 2  # px


def mean_iou(pred: np.ndarray, true: np.ndarray) -> float:
    """Mean over the classes present in `true` of intersection over union."""
    ious = []
    for k in np.unique(true):
        inter = np.logical_and(pred == k, true == k).sum()
        union = np.logical_or(pred == k, true == k).sum()
        ious.append(inter / union)
    return float(np.mean(ious))


def _boundary(ids: np.ndarray) -> np.ndarray:
    edge = np.zeros(ids.shape, bool)
    edge[:-1] |= ids[:-1] != ids[1:]
    edge[:, :-1] |= ids[:, :-1] != ids[:, 1:]
    return edge


def boundary_f(pred: np.ndarray, true: np.ndarray, tolerance: int = _BOUNDARY_TOLERANCE) -> float:
    """F-score of boundary pixels, each matched if a boundary of the other map is within reach."""
    bp, bt = _boundary(pred), _boundary(true)
    if not bp.any() or not bt.any():
        return float(bp.any() == bt.any())
    near_true = ndimage.distance_transform_edt(~bt) <= tolerance
    near_pred = ndimage.distance_transform_edt(~bp) <= tolerance
    precision = near_true[bp].mean()
    recall = near_pred[bt].mean()
    return float(2 * precision * recall / max(precision + recall, 1e-12))


def _in_true_ids(result: LabelMap, truth: LabelMap) -> np.ndarray:
    """The result's ids renumbered into the truth's ids (matched by colour)."""
    lookup = {tuple(c): k for k, c in enumerate(truth.palette.tolist())}
    mapping = np.array([lookup[tuple(c)] for c in result.palette.tolist()], np.int64)
    return mapping[result.ids]


def _find(folder: Path, stem: str) -> Path:
    return next(p for p in sorted(folder.iterdir()) if p.stem == stem and p.is_file())


def scenes() -> list[tuple[str, Path, Path, list[Path]]]:
    """(name, photo, true label map, edited targets) of every scene with a true map."""
    found = []
    for folder in sorted((SHARED / "semia-examples").glob("*/")):
        targets = sorted(p for p in (folder / "cond").iterdir() if p.stem != "rec")
        found.append((folder.name, _find(folder, "img"), _find(folder, "label"), targets))
    for folder in sorted((SHARED / "gt-dev").glob("city_*/")):
        found.append((f"{folder.name}/00", folder / "img.png", folder / "label.png", []))
        for frame in sorted((folder / "truth").glob("*.png")):
            label = folder / "cond" / frame.name
            found.append((f"{folder.name}/{frame.stem}", frame, label, []))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--max-size", type=int, default=512, help="longest side (default: 512)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default: 1)")
    parser.add_argument("--seed", type=int, default=0, help="stroke and forest seed")
    parser.add_argument("--no-analogy", action="store_true", help="skip the analogy check")
    parser.add_argument(
        "--analogy-size", type=int, default=256, help="longest side for the analogy check"
    )
    parser.add_argument("--targets", type=int, default=2, help="edited targets per scene")
    parser.add_argument(
        "--settings", nargs="+", default=["dense", "sparse"], choices=("dense", "sparse")
    )
    parser.add_argument(
        "--groups", nargs="+", default=["shared", "gt-dev"], choices=("shared", "gt-dev")
    )
    parser.add_argument(
        "--set", nargs="*", default=[], metavar="NAME=VALUE", help="SegmentConfig overrides"
    )
    args = parser.parse_args()
    config = SegmentConfig()
    for item in args.set:
        key, value = item.split("=", 1)
        config = config.replace(**{key: type(getattr(config, key))(float(value))})
    torch.set_num_threads(args.threads)
    if not SHARED.is_dir():
        raise SystemExit(f"shared data not found at {SHARED.resolve()}")

    print(f"semia segment benchmark: photos at <= {args.max_size} px, seed {args.seed}")
    print(config)
    print(
        f"load average at start: {' '.join(f'{x:.1f}' for x in os.getloadavg())} on "
        f"{os.cpu_count()} cores; 'cpu' = process CPU time (the wall time on an idle core)"
    )
    print(f"{'scene':<18} {'size':>9} {'K':>3}  {'setting':<7} {'strokes':>7} "
          f"{'mIoU':>6} {'bF':>6} {'time':>6} {'cpu':>6}")  # fmt: skip
    table: dict[tuple[str, str], list[tuple[float, float, float]]] = {}
    analogy_rows = []
    for name, photo, label, targets in scenes():
        group = "shared" if "/" not in name else "gt-dev"
        if group not in args.groups:
            continue
        image = read_image(photo, max_size=args.max_size)
        truth = read_label_map(label, max_size=args.max_size)
        height, width = truth.size
        for setting in args.settings:
            strokes = demo_scribbles(truth, dense=setting == "dense", seed=args.seed)
            start, start_cpu = time.perf_counter(), time.process_time()
            result = segment(image, strokes, config=config, seed=args.seed)
            seconds, cpu = time.perf_counter() - start, time.process_time() - start_cpu
            ids = _in_true_ids(result, truth)
            miou, bf = mean_iou(ids, truth.ids), boundary_f(ids, truth.ids)
            table.setdefault((group, setting), []).append((miou, bf, seconds, cpu))
            share = 100 * float((strokes.ids >= 0).mean())
            print(f"{name:<18} {width:>4}x{height:<4} {truth.num_classes:>3}  {setting:<7} "
                  f"{share:>6.2f}% {miou:>6.3f} {bf:>6.3f} "
                  f"{seconds:>5.2f}s {cpu:>5.2f}s", flush=True)  # fmt: skip
            if setting == "dense" and targets and not args.no_analogy:
                analogy_rows += _analogy_check(
                    name, photo, label, targets[: args.targets], ids, args
                )

    print()
    print(f"{'summary':<18} {'setting':<7} {'mIoU':>6} {'bF':>6} {'mean s':>7} {'max s':>6} "
          f"{'cpu s':>6} {'max':>5}")  # fmt: skip
    for (group, setting), rows in table.items():
        m = np.array(rows)
        print(f"{group:<18} {setting:<7} {m[:, 0].mean():>6.3f} {m[:, 1].mean():>6.3f} "
              f"{m[:, 2].mean():>7.2f} {m[:, 2].max():>6.2f} "
              f"{m[:, 3].mean():>6.2f} {m[:, 3].max():>5.2f}")  # fmt: skip
    if analogy_rows:
        print()
        print(f"analogy on the segmented (dense) vs the true map, at <= {args.analogy_size} px, "
              "seed 0; 'seeds' = true map, seed 0 vs seed 1")  # fmt: skip
        print(f"{'scene':<12} {'target':<8} {'PSNR seg/true':>14} {'PSNR seeds':>11}")
        for row in analogy_rows:
            print(f"{row[0]:<12} {row[1]:<8} {row[2]:>11.2f} dB {row[3]:>8.2f} dB")
        m = np.array([r[2:] for r in analogy_rows])
        print(f"{'mean':<21} {m[:, 0].mean():>11.2f} dB {m[:, 1].mean():>8.2f} dB")


def _analogy_check(name, photo, label, targets, seg_ids, args) -> list[tuple]:
    """PSNR between analogy results on the segmented and on the true map, per target."""
    truth_full = read_label_map(label, max_size=args.max_size)
    segmented = truth_full.with_ids(seg_ids)
    size = args.analogy_size
    image = read_image(photo, max_size=size)
    truth = read_label_map(label, max_size=size)
    small = resize_nearest(segmented.ids, truth.size)
    rows = []
    for target_path in targets:
        target = read_target(target_path, truth, unknown="nearest", max_size=size)
        on_truth = semia.analogy(image, truth, target, seed=0)
        on_segmented = semia.analogy(image, truth.with_ids(small), target, seed=0)
        other_seed = semia.analogy(image, truth, target, seed=1)
        rows.append(
            (name, target_path.stem, psnr(on_segmented, on_truth), psnr(other_seed, on_truth))
        )
    return rows


if __name__ == "__main__":
    main()
