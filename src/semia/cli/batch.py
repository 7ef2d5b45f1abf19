"""`semia batch`: many photos and layouts from a manifest, resumable, local pool or Ray."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from semia.cli.flags import COMMON, THREADS_MAX, resolve_device, whole_number
from semia.config import InputConfig, TrainConfig
from semia.errors import SEED_MAX

log = logging.getLogger("semia")

EXIT_SOME_FAILED = 3

DESCRIPTION = """\
Run many jobs from a manifest: one line per photo, as JSON lines
  {"image": "a/img.png", "label": "a/label.png", "targets": ["a/t1.png", "a/t2.png"]}
or as CSV with the same column names (targets separated by ';'). Paths are absolute or
relative to the manifest's folder. A line may also set "method" (analogy | gan), "seed",
"max_size", "unknown_labels", "name" (its output folder below --out; default: the photo's
path below the manifest's folder without suffix, else its last folder and stem) and any
analogy setting (PatchConfig: patch_size, coarse_iters, ...) or GAN training setting
(TrainConfig: iters, lr, crop_size, ...; "iters" alone shortens the default schedule
proportionally). Flags apply to every line that does not set them.

Outputs: OUT/<name>/<target>.png (analogy) and OUT/<name>/<target>_gan.png (GAN, trained once
per photo and settings, cached in OUT/models/). OUT/report.jsonl gets one record per finished
job. Rerunning skips outputs already made from the same input files and settings; a killed
run loses only the jobs in flight. Exit status: 0 all ok, 3 some jobs failed, 2 bad manifest.
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `batch` sub-command."""
    p = subparsers.add_parser(
        "batch",
        parents=[COMMON],
        help="run many photos and layouts from a manifest (resumable; local pool or Ray)",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("manifest", help="job list: .jsonl (one JSON object per line) or .csv")
    p.add_argument("--out", required=True, help="output folder (results, report, model cache)")
    p.add_argument(
        "--method", choices=("analogy", "gan"), default=None,
        help="method of the lines that do not set one (default: analogy)",
    )  # fmt: skip
    p.add_argument(
        "--seed", type=whole_number(0, SEED_MAX), default=None, metavar="S",
        help=f"random seed, 0..{SEED_MAX} (default: 0)",
    )  # fmt: skip
    p.add_argument(
        "--max-size", type=int, default=None, metavar="PX",
        help=f"longest side of photos and maps (default: {InputConfig.max_size} for analogy, "
        f"{InputConfig.train_max_size} for gan)",
    )  # fmt: skip
    p.add_argument(
        "--unknown-labels", choices=("error", "nearest"), default=None,
        help="target colours the source lacks: fail that output, or take the nearest label "
        f"(default: {InputConfig.unknown_labels})",
    )  # fmt: skip
    p.add_argument(
        "--iters", type=int, default=None, metavar="N",
        help=f"GAN training iterations (default: {TrainConfig.iters}; the schedule scales)",
    )  # fmt: skip
    p.add_argument(
        "--workers", type=int, default=None, metavar="N",
        help="parallel jobs (default: the CPU cores); with --ray local, that Ray's CPUs",
    )  # fmt: skip
    p.add_argument(
        "--worker-threads", type=whole_number(1, THREADS_MAX), default=1, metavar="N",
        help=f"torch CPU threads per job, 1..{THREADS_MAX} (default: 1)",
    )  # fmt: skip
    p.add_argument(
        "--ray", metavar="ADDRESS", default=None,
        help="run the jobs as Ray tasks: auto (the running cluster), local (start one here), "
        'or an address (host:6379, ray://host:10001); needs pip install "semia[ray]"; on '
        "several nodes, inputs and --out must be on storage all nodes see at the same path",
    )  # fmt: skip
    p.add_argument("--device", default="cpu", help="cpu | cuda (default: cpu)")
    p.add_argument("--dry-run", action="store_true", help="list what would run, run nothing")
    p.set_defaults(func=run)


def flag_defaults(args: argparse.Namespace) -> dict:
    """The settings given as flags (each applies to the lines that do not set it)."""
    from semia.batch.manifest import check_settings

    given = {
        "method": args.method,
        "seed": args.seed,
        "max_size": args.max_size,
        "unknown_labels": args.unknown_labels,
        "iters": args.iters,
    }
    return check_settings({k: v for k, v in given.items() if v is not None}, "command line")


def _dry_run(plan) -> int:
    for job in plan.jobs:
        lines = ",".join(str(n) for n in job.lines)
        model = ""
        if job.model_dir is not None:
            cached = (job.model_dir / "model.safetensors").is_file()
            model = f"  model {'cached' if cached else 'to train'}: {job.model_dir}"
        print(f"run  {job.method:<7} line {lines}: {job.name}{model}")
        for o in job.outputs:
            print(f"       {o.target} -> {o.path}")
    outputs = sum(len(j.outputs) for j in plan.jobs)
    print(
        f"{len(plan.jobs)} job(s) would run ({outputs} output(s)); {plan.skipped} of "
        f"{plan.total} output(s) already done"
    )
    return 0


def run(args: argparse.Namespace) -> int:
    """Run `semia batch`; returns the exit status."""
    from semia.batch import REPORT_FILE, make_plan, run_batch
    from semia.io import InputError

    if args.workers is not None and args.workers < 1:
        raise InputError(f"--workers {args.workers}: use at least 1")
    if args.device != "cpu" and not args.device.startswith("cuda"):
        raise InputError(f"--device {args.device}: use cpu or cuda")
    if args.device != "cpu" and args.ray in (None, "local"):  # a cluster's nodes may have GPUs
        resolve_device(args.device)
    plan = make_plan(args.manifest, args.out, flag_defaults(args))
    if args.dry_run:
        return _dry_run(plan)
    report = Path(args.out) / REPORT_FILE
    if not plan.jobs:
        print(
            f"semia batch: all {plan.total} output(s) already done; report: {report}",
            file=sys.stderr,
        )
        return 0
    from tqdm import tqdm
    from tqdm.contrib.logging import logging_redirect_tqdm

    where = "Ray" if args.ray else f"{args.workers or 'one per core'} local worker(s)"
    log.info(
        "%d job(s) (%d output(s), %d already done) on %s",
        len(plan.jobs), plan.total - plan.skipped, plan.skipped, where,
    )  # fmt: skip
    bar = tqdm(total=len(plan.jobs), desc="batch", unit="job", file=sys.stderr, disable=args.quiet)

    failed = 0

    def progress(job, result) -> None:
        nonlocal failed
        failed += not result.ok
        bar.set_postfix(failed=failed, refresh=False)
        bar.update(1)

    try:
        with logging_redirect_tqdm(loggers=[log]):
            summary = run_batch(
                plan,
                workers=args.workers,
                threads=args.worker_threads,
                device=args.device,
                ray=args.ray,
                progress=progress,
            )
    except KeyboardInterrupt:
        bar.close()
        print(
            f"semia: interrupted; finished jobs are in {report}: run the same command again to "
            "continue where it stopped (done outputs are skipped, GAN trainings resume from their "
            "checkpoint)",
            file=sys.stderr,
        )
        return 130
    finally:
        bar.close()
    print(f"semia batch: {summary.line(report)}", file=sys.stderr)
    return EXIT_SOME_FAILED if summary.failed else 0
