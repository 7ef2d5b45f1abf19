"""Benchmark SemIA training and generation on a real example scene (CPU by default).

Prints
  1. seconds per iteration per component (augment, G forward, D forward, loss terms, backward,
     optimiser updates, S step) for reconstruction and sample iterations, in the crop phase and
     in the full-size phase of the default schedule;
  2. forward + backward seconds of every loss term alone, at the crop size;
  3. the whole default schedule's wall time and peak RSS (unless --skip-schedule: then an
     estimate from 1.);
  4. generation seconds per target (median over the scene's cond/ targets).

    python benchmarks/bench_train.py [--scene zebra] [--max-size 256] [--threads N] [--iters N]
        [--device cpu|cuda]

Measured 2026-11-28 on the 2-core development machine (idle), zebra at 256x170, 1 thread: whole
default schedule (1600 iterations) 408 s wall, 0.255 s/iteration (279 s before sample steps ran
an analogy: 0.09 s per step on a 128 px crop, 0.25 s at full size), generation 0.24 s per target
(analogy included), peak RSS 0.69 GiB.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

from semia.config import TrainConfig
from semia.gan import SemIA
from semia.gan.losses import (
    feature_matching_loss,
    lsgan_g_loss,
    patch_coherence_loss,
    semantic_alignment_loss,
)
from semia.gan.steps import random_crop, setup_run, train_iteration
from semia.gan.tensors import one_hot
from semia.io import load_scene, read_target

EXAMPLES = Path(__file__).resolve().parents[1] / "src" / "semia" / "examples"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "semia-examples"


def _scene_dir(name: str) -> Path:
    for root in (Path(name), SHARED / name, EXAMPLES / name):
        if root.is_dir() and any(root.glob("img.*")):
            return root
    raise SystemExit(f"scene {name!r} not found (a folder with img.* and label.*)")


def _peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # KiB -> GiB


def _phase_timings(run, steps: range) -> dict[str, dict[str, float]]:
    """Median seconds per component for each iteration kind over `steps`."""
    per: dict[str, dict[str, list[float]]] = {}
    for step in steps:
        record = train_iteration(run, step)
        for part, sec in record["seconds"].items():
            per.setdefault(record["kind"], {}).setdefault(part, []).append(sec)
    return {
        kind: {part: statistics.median(v) for part, v in parts.items()}
        for kind, parts in per.items()
    }


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _loss_term_timings(run, size: int, repeats: int = 5) -> dict[str, float]:
    """Forward + backward seconds of each sample-step loss term alone, on a size x size crop."""
    gen = torch.Generator(device=run.image.device).manual_seed(0)
    image, ids = random_crop(run.image, run.ids, size, gen)
    oh = one_hot(ids, run.num_classes)
    nets, cfg = run.nets, run.config
    fake = image.clone().requires_grad_(True)
    real_feats = [f.detach() for f in nets.D(image)[1]]
    terms = {
        "gan (D fwd)": lambda: lsgan_g_loss(nets.D(fake)[0]),
        "feature matching (D fwd)": lambda: feature_matching_loss(real_feats, nets.D(fake)[1]),
        "semantic alignment (S fwd)": lambda: semantic_alignment_loss(nets.S(fake), ids),
        "patch coherence": lambda: patch_coherence_loss(
            fake, oh, run.image, run.source, cfg.patch_coherence
        ),
    }
    out = {}
    for name, fn in terms.items():
        times = []
        for _ in range(repeats):
            _sync(run.image.device)
            t0 = time.perf_counter()
            fn().backward()
            _sync(run.image.device)
            times.append(time.perf_counter() - t0)
        out[name] = statistics.median(times)
    return out


def _print_phase(title: str, timings: dict[str, dict[str, float]]) -> None:
    parts = ["augment", "analogy", "g_forward", "d_forward", "losses", "backward", "optim"]
    parts += ["s_step", "total"]
    print(f"\n{title}: median seconds per iteration and component")
    print(f"  {'kind':<8}" + "".join(f"{p:>10}" for p in parts))
    for kind, t in sorted(timings.items()):
        print(f"  {kind:<8}" + "".join(f"{t.get(p, 0.0):>10.4f}" for p in parts))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scene", default="zebra", help="example scene name or folder")
    ap.add_argument("--max-size", type=int, default=256, help="longest side in pixels")
    ap.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch intra-op threads (0 = torch default); 1 by default: on the shared 2-core "
        "machine 2 threads measured 25-60x slower per iteration (threads spin-waiting)",
    )
    ap.add_argument("--iters", type=int, default=0, help="schedule length (0 = default)")
    ap.add_argument("--sample", type=int, default=10, help="iterations timed per phase")
    ap.add_argument("--device", default="cpu", help="cpu | cuda (default: cpu)")
    ap.add_argument(
        "--skip-schedule", action="store_true", help="estimate the schedule, do not run it"
    )
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    config = TrainConfig() if not args.iters else replace(TrainConfig(), iters=args.iters)
    device = torch.device(args.device)

    d = _scene_dir(args.scene)
    image, labels = load_scene(next(d.glob("img.*")), next(d.glob("label.*")), args.max_size)
    h, w = labels.ids.shape
    print(
        f"scene {args.scene}: {w}x{h} px, {labels.num_classes} labels; torch "
        f"{torch.__version__} on {device}, {torch.get_num_threads()} threads; schedule "
        f"{config.iters} iters "
        f"({config.iters - config.full_size_iters} on {config.crop_size} px crops, "
        f"{config.full_size_iters} full size), rec every {config.rec_every}"
    )
    print("(timings on a shared development machine: noisy and pessimistic)")

    with tempfile.TemporaryDirectory() as tmp:
        run = setup_run(
            image, labels.ids, labels.num_classes, Path(tmp), config, device=device, seed=0
        )
        train_iteration(run, 1)  # warm-up
        # timed past the augmentation ramp, at full augmentation strength
        ramp = config.augment.ramp_iters
        crop_steps = range(ramp, ramp + args.sample)
        full_steps = range(config.iters - args.sample, config.iters)
        crop = _phase_timings(run, crop_steps) if config.crop_size > 0 else {}
        full = _phase_timings(run, full_steps) if config.full_size_iters > 0 else {}
        if crop:
            _print_phase(f"crop phase ({config.crop_size} px crops)", crop)
        if full:
            _print_phase(f"full-size phase ({w}x{h})", full)
        terms = _loss_term_timings(run, config.crop_size or max(h, w))
        print(f"\nloss terms alone, forward + backward at {config.crop_size} px (seconds)")
        for name, sec in terms.items():
            print(f"  {name:<28}{sec:.4f}")

    def per_iter(t: dict[str, dict[str, float]]) -> float:
        rec = t.get("rec", {}).get("total", 0.0)
        sample = t.get("sample", {}).get("total", rec)
        n = config.rec_every
        return (rec + (n - 1) * sample) / n if n > 0 else sample

    estimate = (config.iters - config.full_size_iters) * per_iter(crop) if crop else 0.0
    estimate += config.full_size_iters * per_iter(full) if full else 0.0
    print(f"\nschedule estimate from the medians: {estimate:.0f} s ({estimate / 60:.1f} min)")

    with tempfile.TemporaryDirectory() as tmp:
        if not args.skip_schedule:
            t0 = time.perf_counter()
            c0 = time.process_time()
            model = SemIA.train(image, labels, Path(tmp), config, seed=0, device=device)
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
            print(
                f"whole schedule: {wall:.0f} s wall ({wall / 60:.1f} min), {cpu:.0f} s CPU, "
                f"{wall / config.iters:.3f} s/iteration"
            )
        else:
            model = SemIA.train(
                image, labels, Path(tmp), replace(config, iters=2), seed=0, device=device
            )
        targets = [read_target(p, labels, "nearest", args.max_size) for p in (d / "cond").iterdir()]
        model.generate(targets[0].ids)  # warm-up
        gen = []
        for t in targets:
            t0 = time.perf_counter()
            model.generate(t.ids)
            gen.append(time.perf_counter() - t0)
        print(
            f"generation: median {statistics.median(gen):.3f} s, max {max(gen):.3f} s per target "
            f"({len(gen)} targets)"
        )
    print(f"peak RSS: {_peak_rss_gb():.2f} GiB")
    if device.type == "cuda":
        print(f"peak CUDA memory: {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB allocated")


if __name__ == "__main__":
    main()
