"""Sketch-to-image quality on gt-dev: sketches are the edge maps of the truth frames.

    python benchmarks/sketch.py                      # 4 sequences x 5 frames, 256 px
    python benchmarks/sketch.py --frames 08 24 --methods copy edges labels+edges
    python benchmarks/sketch.py --edge-detail 0.3 --edge-sigma 0.02 --edge-weight 4

For every sequence of ../shared/data/gt-dev and every target frame NN, the target sketch is
`semia.edges(truth/NN.png)` (computed exactly as for the source photo), the target label map is
cond/NN.png (unknown classes mapped to the nearest source class). Methods:

- copy: the source photo itself;
- ebsynth-edges: EbSynth-style guided patch synthesis whose only guide is the blurred edge map
  (the patch distance is dominated by the guide: edge_weight 1e4, no position term);
- labels: `semia.analogy(image, labels, target)`;
- edges: `semia.analogy(image, sketch=...)` (no label maps);
- labels+edges: `semia.analogy(image, labels, target, sketch=...)`.

Printed: one markdown table of the means over all targets: PSNR and SSIM over the pixels whose
label changed (copying cannot be right there) and over the whole frame, and the patch SWD of the
output against the truth frame (lower is better); plus the mean time per output.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/ as a script folder

import quality  # noqa: E402  (the GAN cache key of the quality benchmark)

from semia.apps import DEFAULT_DETAIL  # noqa: E402
from semia.apps.edges import edges  # noqa: E402
from semia.config import PatchConfig  # noqa: E402
from semia.eval import patch_swd, psnr, ssim  # noqa: E402
from semia.io import load_scene, read_image, read_target  # noqa: E402
from semia.patch import analogy  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "gt-dev"
METHODS = ("copy", "ebsynth-edges", "labels", "edges", "labels+edges")
GAN_METHODS = ("gan-labels", "gan-edges", "gan-labels+edges")  # trained once per sequence
GAN_DIR = Path("gan-sketch-models")
_models: dict[tuple[str, str], object] = {}


def gan_model(seq: str, condition: str, image, labels, seed: int):
    """A SemIA model of this sequence and condition (default schedule), cached in GAN_DIR."""
    from semia.config import GenerateConfig, TrainConfig
    from semia.gan import SemIA

    key = (seq, condition)
    if key not in _models:
        # the folder name covers the training settings (a changed default retrains)
        digest = quality.training_digest(TrainConfig(condition=condition))
        folder = GAN_DIR / f"{seq}-{condition.replace('+', '-')}-{digest}-seed{seed}"
        if (folder / "done").exists():
            _models[key] = SemIA.load(folder)
        else:
            t0 = time.perf_counter()
            lab = None if condition == "edges" else labels
            _models[key] = SemIA.train(image, lab, folder, TrainConfig(condition=condition),
                                       seed=seed)  # fmt: skip
            (folder / "done").write_text(f"{time.perf_counter() - t0:.0f} s\n")
            print(f"  trained {folder} in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
        # today's generation settings, whatever the model file stored (they need no retraining)
        model = _models[key]
        model.config = dataclasses.replace(model.config, generate=GenerateConfig())
    return _models[key]


def run_method(name, image, labels, target, sketch, source_sketch, config, seed, seq=""):
    if name.startswith("gan-"):
        condition = name[4:]
        model = gan_model(seq, condition, image, labels, seed)
        return model.generate(
            None if condition == "edges" else target,
            sketch=None if condition == "labels" else sketch,
        )
    if name == "copy":
        return image.copy()
    if name == "ebsynth-edges":
        guide_only = dataclasses.replace(config, edge_weight=1e4, position_weight=0.0)
        return analogy(image, sketch=sketch, source_sketch=source_sketch, config=guide_only,
                       seed=seed)  # fmt: skip
    if name == "labels":
        return analogy(image, labels, target, config=config, seed=seed)
    if name == "edges":
        return analogy(image, sketch=sketch, source_sketch=source_sketch, config=config, seed=seed)
    return analogy(image, labels, target, sketch=sketch, source_sketch=source_sketch,
                   config=config, seed=seed)  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    global GAN_DIR
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=DATA)
    p.add_argument("--size", type=int, default=256, help="longest side (default: 256)")
    p.add_argument("--frames", nargs="+", default=["04", "08", "16", "24", "29"])
    p.add_argument(
        "--methods", nargs="+", default=list(METHODS), choices=METHODS + GAN_METHODS,
        help="the gan-* methods train one SemIA model per sequence and condition (minutes each)",
    )  # fmt: skip
    p.add_argument("--seqs", nargs="+", help="only these sequences (default: all)")
    p.add_argument("--gan-dir", type=Path, default=GAN_DIR)
    p.add_argument("--edge-detail", type=float, default=DEFAULT_DETAIL)
    p.add_argument("--edge-sigma", type=float, default=PatchConfig.edge_sigma)
    p.add_argument("--edge-weight", type=float, default=PatchConfig.edge_weight)
    p.add_argument("--labels-edge-weight", type=float, default=PatchConfig.labels_edge_weight)
    p.add_argument(
        "--labels-edge-kept-spread", type=float, default=PatchConfig.labels_edge_kept_spread
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    config = PatchConfig(
        edge_sigma=args.edge_sigma,
        edge_weight=args.edge_weight,
        labels_edge_weight=args.labels_edge_weight,
        labels_edge_kept_spread=args.labels_edge_kept_spread,
    )
    rows: dict[str, list[list[float]]] = {m: [] for m in args.methods}
    times: dict[str, list[float]] = {m: [] for m in args.methods}
    GAN_DIR = args.gan_dir
    seqs = sorted(d for d in args.data.iterdir() if (d / "img.png").exists())
    if args.seqs:
        seqs = [d for d in seqs if d.name in args.seqs]
    for seq in seqs:
        image, labels = load_scene(seq / "img.png", seq / "label.png", args.size)
        source_sketch = edges(image, args.edge_detail)
        for frame in args.frames:
            truth = read_image(seq / "truth" / f"{frame}.png", args.size)
            target = read_target(seq / "cond" / f"{frame}.png", labels, "nearest", args.size)
            sketch = edges(truth, args.edge_detail)  # the user's sketch: the truth's outlines
            changed = target.ids != labels.ids
            for m in args.methods:
                t0, c0 = time.perf_counter(), time.process_time()
                out = run_method(m, image, labels, target, sketch, source_sketch, config,
                                 args.seed, seq.name)  # fmt: skip
                times[m].append((time.perf_counter() - t0, time.process_time() - c0))
                rows[m].append([
                    psnr(out, truth, mask=changed) or float("nan"),
                    ssim(out, truth, mask=changed) or float("nan"),
                    psnr(out, truth),
                    ssim(out, truth),
                    patch_swd(out, truth),
                ])  # fmt: skip
        print(f"  {seq.name} done", file=sys.stderr, flush=True)
    n = len(rows[args.methods[0]])
    print(f"gt-dev sketch-to-image, {len(seqs)} sequences x {len(args.frames)} frames = {n} "
          f"targets, {args.size} px, edge detail {args.edge_detail}, edge sigma "
          f"{args.edge_sigma}, edge weight {args.edge_weight} (with labels "
          f"{args.labels_edge_weight}, kept-label vote spread {args.labels_edge_kept_spread}), "
          f"seed {args.seed}\n")  # fmt: skip
    print(
        "| method | PSNR changed | SSIM changed | PSNR frame | SSIM frame | SWD to truth x1000 "
        "| wall s | CPU s |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for m in args.methods:
        v = np.nanmean(np.array(rows[m]), 0)
        print(f"| {m} | {v[0]:.2f} | {v[1]:.3f} | {v[2]:.2f} | {v[3]:.3f} | {1000 * v[4]:.2f} | "
              f"{np.mean(times[m], 0)[0]:.2f} | {np.mean(times[m], 0)[1]:.2f} |")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
