"""Benchmark of the guided patch synthesis (`semia analogy`): time and memory of `synthesize`.

Times `semia.patch.synthesize` alone (no file I/O) on a real shared scene and one of its real
edited target maps, resized to 256x256 and 512x256 (width x height), several runs each; prints
the median and best seconds and the process's peak resident memory.

    python benchmarks/bench_analogy.py [--scene zebra] [--target 2] [--runs 5] [--threads 2,1]
        [--generate] [--device cpu|cuda]

With --generate, also times a SemIA model's generation at each size (`SemIA.generate`: the
analogy it refines plus one generator pass and the compositing), with a model trained for two
iterations in a temporary folder: generation costs the same whatever the training (the peak
RSS then includes those two training iterations).

Targets (2 threads, 2 CPU cores): synthesize 256x256 <= 0.6 s and 512x256 <= 1 s, generate
256x256 <= 0.3 s, peak memory < 1.5 GB. On a machine shared with other jobs the figures are
pessimistic (the load average is printed alongside); two threads suffer most there, since every
tensor op waits for both to be scheduled.
"""

from __future__ import annotations

import argparse
import functools
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from semia import io
from semia.config import PatchConfig
from semia.patch import synthesize

DATA = Path(
    os.environ.get(
        "SEMIA_EXAMPLES", Path(__file__).resolve().parents[2] / "shared" / "data" / "semia-examples"
    )
)
SIZES = ((256, 256), (256, 512))  # (height, width)


def _find(folder: Path, stem: str) -> Path:
    hits = sorted(p for p in folder.glob(stem + ".*") if p.suffix.lower() in io.IMAGE_SUFFIXES)
    if not hits:
        sys.exit(f"no {stem}.* image in {folder}; set SEMIA_EXAMPLES to the examples folder")
    return hits[0]


def _resized(image: np.ndarray, labels: np.ndarray, target: np.ndarray, size: tuple[int, int]):
    """The scene stretched to `size` (height, width): image antialiased, labels nearest."""
    t = torch.from_numpy(image).permute(2, 0, 1)[None]  # (1, 3, H, W)
    t = F.interpolate(t, size=size, mode="bilinear", antialias=True, align_corners=False)
    image = t[0].permute(1, 2, 0).clamp(0, 1).contiguous().numpy()
    return image, io.resize_nearest(labels, size), io.resize_nearest(target, size)


def _report(threads: int, size: tuple[int, int], what: str, runs: int, call, device: str) -> None:
    """Time call(seed=...) `runs` times after one warm-up run; print the median and best."""
    call(seed=0)
    times = []
    for run in range(runs):
        start = time.perf_counter()
        call(seed=run)  # returns a numpy image: the GPU has finished
        times.append(time.perf_counter() - start)
    where = "CUDA" if device.startswith("cuda") else f"{threads} thread(s)"
    print(
        f"{where} {size[1]}x{size[0]} {what}: median {statistics.median(times):.2f} s, "
        f"best {min(times):.2f} s over {runs} runs (load average now {os.getloadavg()[0]:.1f})"
    )


def _tiny_model(image: np.ndarray, labels: np.ndarray, folder: Path, device: str):
    """A SemIA model trained for two iterations (as costly to generate with as a trained one)."""
    from semia.config import TrainConfig
    from semia.gan import SemIA

    config = TrainConfig(iters=2, full_size_iters=1, checkpoint_every=1000, preview_every=1000)
    return SemIA.train(image, labels, folder, config, device=device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scene", default="zebra", help="scene folder under SEMIA_EXAMPLES")
    parser.add_argument("--target", default="2", help="target map name in the scene's cond/")
    parser.add_argument("--runs", type=int, default=5, help="timed runs per size")
    parser.add_argument(
        "--threads",
        default="2,1",
        help="comma-separated torch CPU thread counts to time (2: the target setting; 1 shows "
        "what a busy shared machine costs two threads)",
    )
    parser.add_argument(
        "--generate", action="store_true", help="also time SemIA.generate (analogy + one G pass)"
    )
    parser.add_argument(
        "--no-rim-shade", action="store_true", help="time with the rim shade correction off"
    )
    parser.add_argument(
        "--device",
        default="cpu",
        help="cpu | cuda (with cuda the thread counts only set torch's CPU threads)",
    )
    args = parser.parse_args()

    folder = DATA / args.scene
    image, labels = io.load_scene(_find(folder, "img"), _find(folder, "label"), max_size=None)
    target = io.read_target(_find(folder / "cond", args.target), labels).ids
    if target.shape != labels.ids.shape:
        target = io.resize_nearest(target, labels.ids.shape)
    print(
        f"scene {args.scene}, target cond/{args.target}, {labels.num_classes} classes; "
        f"torch {torch.__version__}; load average {os.getloadavg()[0]:.1f} on "
        f"{os.cpu_count()} CPUs"
    )
    config = PatchConfig(rim_shade=not args.no_rim_shade)
    models = {}
    with tempfile.TemporaryDirectory() as scratch:
        for threads in (int(t) for t in args.threads.split(",")):
            torch.set_num_threads(threads)
            for size in SIZES:
                img, src, tgt = _resized(image, labels.ids, target, size)
                run = functools.partial(
                    synthesize,
                    img,
                    src,
                    tgt,
                    num_classes=labels.num_classes,
                    device=args.device,
                    config=config,
                )
                _report(threads, size, "synthesize", args.runs, run, args.device)
                if args.generate:
                    if size not in models:
                        folder = Path(scratch) / f"{size[0]}x{size[1]}"
                        models[size] = _tiny_model(img, src, folder, args.device)
                    run = functools.partial(models[size].generate, tgt)
                    _report(threads, size, "generate", args.runs, run, args.device)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
    print(f"peak RSS {peak_mb:.0f} MB (whole process, including Python and torch)")
    if args.device.startswith("cuda"):
        print(f"peak CUDA memory {torch.cuda.max_memory_allocated() / 2**20:.0f} MB allocated")


if __name__ == "__main__":
    main()
