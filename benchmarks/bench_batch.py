"""Benchmark of `semia batch`: jobs per minute on the local pool (1 and 2 workers) and on Ray.

The same analogy jobs run on each backend, each into a fresh output folder: every target map in
`cond/` of the packaged example scenes (tree, lake: 12 targets), at `--size` px, with `--seeds`
seeds each. Rows:

- in-process: `semia.batch.execute` called in this process, one job after another (the work
  alone, no pool);
- local pool, 1 and 2 workers (spawned processes, one torch thread each), start-up included;
- Ray, a local instance with 2 CPUs (`ray.init(num_cpus=2)`, its start timed apart).

"overhead/job" is (wall x workers - sum of the jobs' own seconds) / jobs: the time per job spent
outside the work (process start, imports, scheduling, idle workers at the end). Ray's extra cost
is also shown as the round trip of an empty Ray task.

    python benchmarks/bench_batch.py [--size 128] [--seeds 4] [--skip-ray]

On a machine shared with other work the figures are pessimistic; the load average is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from importlib import resources
from pathlib import Path

from semia.batch import make_plan, run_batch
from semia.batch.worker import execute, set_threads


def write_manifest(folder: Path, size: int, seeds: int) -> Path:
    root = Path(str(resources.files("semia") / "examples"))
    lines = []
    for scene in ("tree", "lake"):
        targets = sorted(str(p) for p in (root / scene / "cond").glob("*.png"))
        for seed in range(seeds):
            lines.append(
                {
                    "image": str(root / scene / "img.png"),
                    "label": str(root / scene / "label.png"),
                    "targets": targets,
                    "max_size": size,
                    "seed": seed,
                    "name": f"{scene}-s{seed}",
                }
            )
    manifest = folder / "jobs.jsonl"
    manifest.write_text("".join(json.dumps(x) + "\n" for x in lines))
    return manifest


def in_process(manifest: Path, out: Path) -> tuple[float, list[float]]:
    plan = make_plan(manifest, out)
    set_threads(1)
    start = time.perf_counter()
    seconds = []
    for job in plan.jobs:
        result = execute(job)
        assert result.ok, result.error
        seconds.append(result.seconds)
    return time.perf_counter() - start, seconds


def on_backend(manifest: Path, out: Path, **kw) -> tuple[float, list[float]]:
    plan = make_plan(manifest, out)
    seconds: list[float] = []

    def record(job, result) -> None:
        assert result.ok, result.error
        seconds.append(result.seconds)

    start = time.perf_counter()
    run_batch(plan, progress=record, **kw)
    return time.perf_counter() - start, seconds


def _noop() -> int:
    return 0


def ray_round_trip(ray, n: int = 200) -> float:
    task = ray.remote(num_cpus=1)(_noop)
    ray.get([task.remote() for _ in range(20)])  # warm the workers
    start = time.perf_counter()
    ray.get([task.remote() for _ in range(n)])
    return (time.perf_counter() - start) / n


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=128, help="max_size of the jobs (px)")
    parser.add_argument("--seeds", type=int, default=4, help="seeds per target (jobs = 12 x this)")
    parser.add_argument("--skip-ray", action="store_true", help="local rows only")
    args = parser.parse_args(argv)

    rows = []
    ray_start = round_trip = None
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        manifest = write_manifest(tmp, args.size, args.seeds)
        wall, secs = in_process(manifest, tmp / "inproc")
        rows.append(("in-process", 1, wall, secs))
        for workers in (1, 2):
            wall, secs = on_backend(manifest, tmp / f"pool{workers}", workers=workers)
            rows.append(("local pool", workers, wall, secs))
        if not args.skip_ray:
            import ray

            start = time.perf_counter()
            ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
            ray_start = time.perf_counter() - start
            try:
                wall, secs = on_backend(manifest, tmp / "ray", ray="auto")
                rows.append(("ray (local, 2 CPUs)", 2, wall, secs))
                round_trip = ray_round_trip(ray)
            finally:
                ray.shutdown()

    load = os.getloadavg()
    print(
        f"semia batch benchmark: {len(rows[0][3])} analogy jobs (packaged tree + lake, every "
        f"cond/ target, {args.seeds} seeds) at {args.size} px; {os.cpu_count()} CPUs, load "
        f"average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}"
    )
    print()
    print("| backend | workers | jobs | wall s | jobs/min | median job s | overhead/job s |")
    print("|---|---|---|---|---|---|---|")
    for name, workers, wall, secs in rows:
        overhead = (wall * workers - sum(secs)) / len(secs)
        print(
            f"| {name} | {workers} | {len(secs)} | {wall:.1f} | {60 * len(secs) / wall:.0f} | "
            f"{statistics.median(secs):.3f} | {overhead:.3f} |"
        )
    if ray_start is not None:
        pool2 = next(r for r in rows if r[0] == "local pool" and r[1] == 2)
        ray_row = rows[-1]
        extra = (ray_row[2] - pool2[2]) / len(ray_row[3])
        print()
        print(f"ray.init (local, 2 CPUs): {ray_start:.1f} s (not in the Ray row's wall time)")
        print(f"Ray vs local pool (2 workers), wall time per job: {extra:+.3f} s")
        print(f"empty Ray task round trip: {1000 * round_trip:.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
