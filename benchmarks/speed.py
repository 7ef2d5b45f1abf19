"""Speed and memory benchmark of the `semia` CLI commands, run as subprocesses.

Run:
    python benchmarks/speed.py [--scene zebra] [--target 1] [--sizes 256 512] [--runs 3]
        [--commands analogy evaluate train generate] [--train-iters 10 --train-full 5]
        [--out results/speed]

For each command and size it reports the median (and min / max) wall time over --runs runs and
the peak resident memory (max RSS of the child process, from os.wait4). Every run is a fresh
process, so the times include Python start-up and imports (`semia --version` is timed as the
floor). For `train` it also reads the per-iteration seconds from the run's log.jsonl and
extrapolates to the whole default schedule (TrainConfig: crop phase, then full-size phase, with
every rec_every-th iteration a reconstruction step). Commands the CLI does not know yet are
skipped. Timings on a shared machine are noisy: compare numbers from the same run only.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from semia.config import TrainConfig

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "semia-examples"


def semia_command() -> list[str]:
    """The `semia` entry point of this interpreter's environment (or `python -m semia.cli`)."""
    script = Path(sys.executable).parent / "semia"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "semia.cli"]


def run_once(args: list[str]) -> dict:
    """Runs one command; returns wall seconds, peak RSS (MiB), return code and stderr tail."""
    with tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        stderr = err.read().decode(errors="replace")
    return {
        "seconds": wall,
        "peak_rss_mib": usage.ru_maxrss / 1024,  # Linux reports KiB
        "cpu_seconds": usage.ru_utime + usage.ru_stime,
        "returncode": proc.returncode,
        "stderr": stderr[-2000:],
    }


def unknown_command(result: dict) -> bool:
    return result["returncode"] == 2 and "invalid choice" in result["stderr"]


def summarise(name: str, size: int, results: list[dict]) -> dict:
    times = [r["seconds"] for r in results]
    return {
        "command": name,
        "size": size,
        "runs": len(results),
        "median_s": statistics.median(times),
        "min_s": min(times),
        "max_s": max(times),
        "cpu_s": statistics.median(r["cpu_seconds"] for r in results),
        "peak_rss_mib": max(r["peak_rss_mib"] for r in results),
    }


def train_schedule(log_path: Path, config: TrainConfig) -> dict:
    """Per-iteration seconds by phase and kind from a log.jsonl, and the default-schedule estimate.

    The first iteration of the log is skipped (warm-up). A phase without a logged reconstruction
    step uses its sample-step mean for both kinds.
    """
    records = [json.loads(line) for line in log_path.read_text().splitlines() if line.strip()]
    records = records[1:]
    full_size = max((tuple(r["size"]) for r in records), key=lambda s: s[0] * s[1])
    groups = {
        "crop": [r for r in records if tuple(r["size"]) != full_size],
        "full": [r for r in records if tuple(r["size"]) == full_size],
    }
    phases = {}
    for phase, mine in groups.items():
        if not mine:
            continue
        by_kind = {}
        for kind in ("sample", "rec"):
            secs = [r["seconds"]["total"] for r in mine if r["kind"] == kind]
            if secs:
                by_kind[kind] = statistics.fmean(secs)
        by_kind.setdefault("rec", by_kind.get("sample"))
        by_kind.setdefault("sample", by_kind.get("rec"))
        phases[phase] = {"size": list(mine[0]["size"]), **by_kind}
    rec_share = 1.0 / config.rec_every if config.rec_every > 0 else 0.0
    counts = {
        "crop": config.iters - config.full_size_iters if config.crop_size > 0 else 0,
        "full": config.full_size_iters if config.crop_size > 0 else config.iters,
    }
    total = 0.0
    for phase, n in counts.items():
        stats = phases.get(phase) or phases.get("full") or phases.get("crop")
        if stats is None or n == 0:
            continue
        per_iter = rec_share * stats["rec"] + (1 - rec_share) * stats["sample"]
        stats.setdefault("per_iter", per_iter)
        total += n * per_iter
    return {"phases": phases, "default_iters": config.iters, "default_schedule_s": total}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="example scenes folder")
    parser.add_argument("--scene", default="zebra")
    parser.add_argument("--target", default="1", help="stem of the target in SCENE/cond/")
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--runs", type=int, default=3, help="runs per command and size")
    parser.add_argument(
        "--commands", nargs="+", default=["analogy", "evaluate", "train", "generate"]
    )
    parser.add_argument("--train-iters", type=int, default=10, help="iterations per train run")
    parser.add_argument("--train-full", type=int, default=5, help="of which at full size")
    parser.add_argument("--train-runs", type=int, default=1, help="runs of train per size")
    parser.add_argument("--out", type=Path, help="also write speed.json / speed.md here")
    args = parser.parse_args(argv)

    folder = args.data / args.scene
    image = next(iter(sorted(folder.glob("img.*"))), None)
    label = next(iter(sorted(folder.glob("label.*"))), None)
    target = next(iter(sorted((folder / "cond").glob(f"{args.target}.*"))), None)
    if image is None or label is None or target is None:
        raise SystemExit(f"{folder}: need img.*, label.* and cond/{args.target}.*")
    semia = semia_command()
    rows: list[dict] = []
    schedules: dict[int, dict] = {}
    skipped: set[str] = set()
    work = Path(tempfile.mkdtemp(prefix="semia-speed-"))

    def measure(name: str, size: int, cmd: list[str], runs: int) -> list[dict] | None:
        if name in skipped:
            return None
        results = []
        for _ in range(runs):
            result = run_once(cmd)
            if unknown_command(result):
                print(f"skipping {name}: the CLI does not know it yet")
                skipped.add(name)
                return None
            if result["returncode"] != 0:
                print(f"{name} at {size} px failed ({result['returncode']}):\n{result['stderr']}")
                return None
            results.append(result)
        row = summarise(name, size, results)
        rows.append(row)
        print(
            f"{name:9s} {size:4d} px  median {row['median_s']:7.2f} s  (min {row['min_s']:.2f}, "
            f"max {row['max_s']:.2f}, cpu {row['cpu_s']:.2f})  "
            f"peak RSS {row['peak_rss_mib']:.0f} MiB",
            flush=True,
        )
        return results

    measure("startup", 0, [*semia, "--version"], args.runs)
    for size in args.sizes:
        output = work / f"analogy_{size}.png"
        common = ["--image", str(image), "--label", str(label), "--max-size", str(size)]
        if "analogy" in args.commands or "evaluate" in args.commands:
            cmd = [*semia, "analogy", *common, "--target", str(target), "--out", str(output)]
            measure("analogy", size, cmd, args.runs if "analogy" in args.commands else 1)
        if "evaluate" in args.commands and output.is_file():
            cmd = [*semia, "evaluate", *common, "--target", str(target), "--output", str(output)]
            measure("evaluate", size, [*cmd, "--json"], args.runs)
        model = work / f"model_{size}"
        if "train" in args.commands:
            cmd = [
                *semia,
                "train",
                *common,
                "--out",
                str(model),
                "--iters",
                str(args.train_iters),
                "--full-size-iters",
                str(args.train_full),
                "--checkpoint-every",
                "0",
                "--preview-every",
                "0",
                "--device",
                "cpu",
            ]
            if measure("train", size, cmd, args.train_runs) and (model / "log.jsonl").is_file():
                schedules[size] = train_schedule(model / "log.jsonl", TrainConfig())
        if "generate" in args.commands and (model / "model.safetensors").is_file():
            cmd = [*semia, "generate", "--model", str(model), "--target", str(target)]
            cmd += ["--out", str(work / f"gen_{size}"), "--max-size", str(size)]
            measure("generate", size, cmd, args.runs)

    lines = [
        "| command | size px | runs | median s | min s | max s | cpu s | peak RSS MiB |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['command']} | {r['size'] or '-'} | {r['runs']} | {r['median_s']:.2f} | "
            f"{r['min_s']:.2f} | {r['max_s']:.2f} | {r['cpu_s']:.2f} | {r['peak_rss_mib']:.0f} |"
        )
    for size, sched in schedules.items():
        lines.append("")
        lines.append(f"train at {size} px (log.jsonl, warm-up iteration dropped):")
        for phase, stats in sched["phases"].items():
            parts = ", ".join(
                f"{k} {v:.3f} s/it" for k, v in stats.items() if k in ("sample", "rec", "per_iter")
            )
            lines.append(f"- {phase} phase {stats['size'][0]}x{stats['size'][1]}: {parts}")
        lines.append(
            f"- default schedule ({sched['default_iters']} iterations): about "
            f"{sched['default_schedule_s'] / 60:.1f} min"
        )
    table = "\n".join(lines)
    print()
    print(table)
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "speed.json").write_text(
            json.dumps({"rows": rows, "train": schedules}, indent=1)
        )
        (args.out / "speed.md").write_text(table + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
