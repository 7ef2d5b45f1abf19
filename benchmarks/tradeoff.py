"""Where a change stands against blur: the PSNR / SWD trade line of the ground-truth set.

On the driving frames of gt-dev almost every change to the synthesis that raises the changed
pixels' PSNR raises the patch SWD to the truth about as much as plain blur would (a sharp
sample and the PSNR-optimal mean are different pictures). This script measures that line on
runs of benchmarks/gt.py and says where a candidate run lies against it, so a route is judged by
what it buys beyond blur, not by one of the two numbers:

- the base run (the first folder): PSNR chg and SWD, as gt.py computes them;
- post-filters of the base on its changed pixels only (Gaussian sigma 0.7 and 1 px, 3x3 median,
  half of the median): their PSNR and SWD changes and dB per 1 % of SWD, the blur line;
- what the changed pixels' error is made of: the share of its squared error below sigma 4 px
  (the shade) and the PSNR of the low-passed output against the low-passed truth, beside the
  same for simple shade predictors (the source copied in place, the nearest source pixel of the
  wanted class from 2 px inside the class) and, with several base seeds, their mean;
- with several base seeds: each pixel moved toward the seeds' mean where they disagree
  (weight min(1, smoothed variance / tau)), a blend of samples that PSNR rewards;
- each --candidate run (same scenes, targets and size): its PSNR and SWD change against the
  base and whether it lies above the blur line: dPSNR > line * dSWD, where the line is the best
  filter's dB per 1 % of SWD; then the candidate plus (or minus) that filter's blur would beat
  the base on both numbers. A candidate that lowers the SWD for less PSNR than the line buys
  SWD cheaper than un-blurring does, which is above the line too.

Run (the runs' outputs/ folders are read; --size must be gt.py's):
    python benchmarks/gt.py --out results/gt_s0 --size 256 --seed 0 --methods analogy
    python benchmarks/gt.py --out results/gt_s1 --size 256 --seed 1 --methods analogy
    python benchmarks/tradeoff.py results/gt_s0 results/gt_s1 --size 256 \
        [--candidate results/new_s0 ...]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage as ndi

sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/ as a script folder

import gt
import quality

from semia.eval import patch_swd, psnr
from semia.io import load_scene, match_target, read_image
from semia.ops import gaussian_blur

SHADE_SIGMA = 4.0  # px: the error below this scale is "the shade"
SHRINK_TAUS = (0.01, 0.03)


def blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """(H, W, C) float32 image, each channel Gaussian-filtered (semia.ops, edges replicated)."""
    x = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)).permute(2, 0, 1)[None]
    return gaussian_blur(x, sigma, padding="replicate")[0].permute(1, 2, 0).numpy()


def median3(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) float image, each channel 3x3 median-filtered."""
    return np.stack([ndi.median_filter(image[..., c], 3, mode="nearest") for c in range(3)], -1)


FILTERS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "gaussian 0.7 px": lambda x: blur(x, 0.7),
    "gaussian 1 px": lambda x: blur(x, 1.0),
    "median 3x3": median3,
    "half median 3x3": lambda x: 0.5 * (x + median3(x)),
}


def nearest_inside(image: np.ndarray, labels: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The source with every changed pixel set to the nearest source pixel of its target class,
    taken from 2 px inside the class where it has more than 20 such pixels (a shade predictor).

    Args:
        image: (H, W, 3) float source; labels, target: (H, W) int64 label maps.
    """
    out = image.copy()
    for c in np.unique(target):
        own = labels == c
        inside = ndi.binary_erosion(own, iterations=2)
        own = inside if inside.sum() > 20 else own
        if not own.any():
            continue
        _, (iy, ix) = ndi.distance_transform_edt(~own, return_indices=True)
        fill = (target == c) & (labels != c)
        out[fill] = image[iy[fill], ix[fill]]
    return out


def shrink_to_mean(samples: list[np.ndarray], tau: float) -> np.ndarray:
    """The first sample moved toward the samples' mean where they disagree: weight
    min(1, variance smoothed by 2 px / tau) per pixel; (H, W, 3) float."""
    mean = np.mean(samples, 0)
    variance = np.mean([((s - mean) ** 2).sum(-1) for s in samples], 0)  # (H, W)
    weight = np.clip(blur(variance[..., None], 2.0) / tau, 0, 1)  # (H, W, 1)
    return samples[0] + weight * (mean - samples[0])


def changed_only(output: np.ndarray, base: np.ndarray, changed: np.ndarray) -> np.ndarray:
    """`output` on the changed pixels, `base` elsewhere, clipped to [0, 1]."""
    return np.clip(np.where(changed[..., None], output, base), 0, 1).astype(np.float32)


def score(output: np.ndarray, truth: np.ndarray, changed: np.ndarray, seed: int) -> dict:
    """PSNR over the changed pixels and the SWD to the truth, as gt.py scores them."""
    return {
        "psnr_changed": psnr(output, truth, mask=changed),
        "swd": patch_swd(output, truth, seed=seed),
    }


def load_runs(folders: list[Path], method: str) -> list[tuple[str, str]]:
    """(scene, target) pairs the first run scored with `method`, each present in every run."""
    pairs = []
    results = folders[0] / "results.json"
    if not results.is_file():
        raise SystemExit(f"{results} not found: pass folders written by benchmarks/gt.py --out")
    rows = json.loads(results.read_text())
    for row in rows:
        if row["method"] != method:
            continue
        name = f"{row['scene']}_{row['target']}_{method}.png"
        missing = [f for f in folders if not (f / "outputs" / name).exists()]
        if missing:
            raise SystemExit(f"{missing[0]} has no outputs/{name}: run gt.py on the same targets")
        pairs.append((row["scene"], row["target"]))
    if not pairs:
        raise SystemExit(f"{folders[0]}/results.json has no '{method}' rows")
    return pairs


def measure(
    bases: list[Path],
    candidates: list[Path],
    *,
    data: Path,
    size: int,
    method: str = "analogy",
    seed: int = 0,
) -> dict[str, dict[str, float]]:
    """Every measure of the script, as {row name: {"psnr_changed", "swd", ...}}, each the mean
    over the base run's targets. Row names: "base", "filter: <name>", "shade: <predictor>",
    "shrink tau <t>", "candidate: <folder>"; the shade rows hold "psnr_low" (the low-passed
    output against the low-passed truth, changed pixels), "base" also "low_share"."""
    pairs = load_runs(bases + candidates, method)
    found, _ = quality.pick_scenes(data, sorted({s for s, _ in pairs}), "sequence")
    sums: dict[str, dict[str, list[float]]] = {}

    def add(row: str, **values: float) -> None:
        for key, value in values.items():
            sums.setdefault(row, {}).setdefault(key, []).append(value)

    scenes: dict[str, tuple] = {}
    for scene, name in pairs:
        image_path, label_path, _ = found[scene]
        if scene not in scenes:  # the rows come scene by scene: load each scene once
            scenes = {scene: load_scene(image_path, label_path, size)}
        image, label_map = scenes[scene]
        folder = image_path.parent
        target, _ = match_target(folder / "cond" / f"{name}.png", label_map, size)
        truth = read_image(folder / "truth" / f"{name}.png", size)
        changed = target.ids != label_map.ids
        if truth.shape[:2] != changed.shape:
            raise SystemExit(f"{scene}/{name}: --size {size} is not the size gt.py ran at")
        runs = [read_image(f / "outputs" / f"{scene}_{name}_{method}.png") for f in bases]
        base = runs[0]
        if base.shape != truth.shape:
            raise SystemExit(f"{bases[0]}: outputs are {base.shape[:2]}, not {truth.shape[:2]}")

        error = base - truth
        low = blur(error, SHADE_SIGMA)
        low_share = float((low[changed] ** 2).sum() / (error[changed] ** 2).sum())
        add("base", **score(base, truth, changed, seed), low_share=low_share)
        for label, fn in FILTERS.items():
            add(
                f"filter: {label}",
                **score(changed_only(fn(base), base, changed), truth, changed, seed),
            )
        shade = {"the output": base, "copy in place": image}
        shade["nearest inside"] = nearest_inside(image, label_map.ids, target.ids)
        if len(runs) > 1:
            shade["mean of the seeds"] = np.mean(runs, 0)
            for tau in SHRINK_TAUS:
                shrunk = changed_only(shrink_to_mean(runs, tau), base, changed)
                add(f"shrink tau {tau}", **score(shrunk, truth, changed, seed))
        low_truth = blur(truth, SHADE_SIGMA)
        for label, pred in shade.items():
            low_pred = np.clip(blur(pred, SHADE_SIGMA), 0, 1).astype(np.float32)
            add(f"shade: {label}", psnr_low=psnr(low_pred, low_truth, mask=changed))
        for f in candidates:
            output = read_image(f / "outputs" / f"{scene}_{name}_{method}.png")
            add(f"candidate: {f}", **score(output, truth, changed, seed))
    return {row: {k: float(np.mean(v)) for k, v in values.items()} for row, values in sums.items()}


def report(results: dict[str, dict[str, float]]) -> str:
    """The measures as text: a table of PSNR / SWD changes against the base, then the shade."""
    base = results["base"]
    lines = [
        f"base: PSNR chg {base['psnr_changed']:.3f} dB, SWD {base['swd']:.5f}; "
        f"{100 * base['low_share']:.0f} % of the changed pixels' squared error is below "
        f"{SHADE_SIGMA:g} px (the shade)",
        "",
        "| run | PSNR chg | SWD | dPSNR dB | dSWD % | dB per 1 % SWD |",
        "|---|---|---|---|---|---|",
    ]

    def change(values: dict[str, float]) -> tuple[float, float]:
        """(dB of PSNR chg, % of SWD) against the base."""
        return values["psnr_changed"] - base["psnr_changed"], 100 * (
            values["swd"] / base["swd"] - 1
        )

    filters = [change(v) for row, v in results.items() if row.startswith("filter: ")]
    line = max([dp / ds for dp, ds in filters if ds > 0], default=0.0)
    for row, values in results.items():
        if "swd" not in values or row == "base":
            continue
        d_psnr, d_swd = change(values)
        ratio = d_psnr / d_swd if abs(d_swd) > 1e-9 else float("inf")
        verdict = ""
        if row.startswith("candidate: "):
            above = d_psnr > line * d_swd
            verdict = " (above the blur line)" if above else " (on or below the blur line)"
        lines.append(
            f"| {row}{verdict} | {values['psnr_changed']:.3f} | {values['swd']:.5f} | "
            f"{d_psnr:+.3f} | {d_swd:+.1f} | {ratio:+.3f} |"
        )
    lines += ["", f"blur line: {line:.3f} dB per 1 % of SWD (the best filter above)", ""]
    lines.append(f"shade (low-passed {SHADE_SIGMA:g} px, changed pixels):")
    for row, values in results.items():
        if row.startswith("shade: "):
            lines.append(f"  {row[7:]:20s} PSNR {values['psnr_low']:.2f} dB")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("bases", nargs="+", type=Path, help="gt.py --out folders (base seeds)")
    parser.add_argument("--candidate", nargs="*", type=Path, default=[], help="gt.py runs to judge")
    parser.add_argument("--size", type=int, default=512, help="the runs' --size (default 512)")
    parser.add_argument("--data", type=Path, default=gt.DEFAULT_DATA, help="the gt-dev folder")
    parser.add_argument("--method", default="analogy", help="the method column to read")
    parser.add_argument("--seed", type=int, default=0, help="seed of the SWD's sampling")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    results = measure(
        args.bases,
        args.candidate,
        data=args.data,
        size=args.size,
        method=args.method,
        seed=args.seed,
    )
    print(report(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
