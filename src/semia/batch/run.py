"""A whole batch: plan, skip what is done, run the rest, write the report."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from semia.batch.manifest import read_manifest
from semia.batch.plan import FileHashes, Job, Output, pending_jobs, plan_jobs
from semia.batch.report import Report, done_outputs
from semia.batch.runners import default_workers, run_local, run_ray
from semia.batch.worker import JobResult, clean_partial_files
from semia.io import InputError, folder_lock

log = logging.getLogger("semia")


@dataclass
class Plan:
    """What a batch will do.

    Attributes:
        out: the output folder.
        jobs: the jobs with outputs left to make (GAN trainings first).
        skipped: outputs already done (file present, same key in the report).
        total: outputs the manifest asks for.
    """

    out: Path
    jobs: list[Job]
    skipped: int
    total: int


@dataclass
class Summary:
    """The outcome of `run_batch`: counts of jobs and of outputs, and the wall time."""

    jobs: int
    ok: int
    failed: int
    outputs_written: int
    outputs_skipped: int
    seconds: float

    def line(self, report: Path) -> str:
        text = (
            f"{self.jobs} job(s) run in {self.seconds:.1f} s: {self.ok} ok, {self.failed} failed; "
            f"{self.outputs_written} output(s) written, {self.outputs_skipped} already done"
        )
        return f"{text}; report: {report}"


def _check_out(out: Path) -> None:
    """Refuse an output folder that is a file or lies below one (it would fail at the first job)."""
    for folder in (out, *out.parents):
        if folder.exists():
            if not folder.is_dir():
                which = "it" if folder == out else str(folder)
                raise InputError(
                    f"--out {out}: {which} is a file, not a folder; give a folder path (it is "
                    "created if missing)"
                )
            return


def make_plan(
    manifest: str | Path, out: str | Path, defaults: Mapping[str, Any] | None = None
) -> Plan:
    """Read the manifest and find the outputs still to make.

    Args:
        manifest: a .jsonl or .csv manifest (`semia.batch.read_manifest`).
        out: the output folder (report, outputs and model cache live there).
        defaults: settings for the lines that do not set them (command-line flags).

    Raises:
        InputError: an invalid manifest or settings (the message names the line), or `out` is a
            file.
    """
    manifest, out = Path(manifest).absolute(), Path(out).absolute()
    _check_out(out)
    entries = read_manifest(manifest)
    jobs = plan_jobs(entries, out, manifest.parent, defaults, FileHashes())
    pending, skipped = pending_jobs(jobs, done_outputs(out))
    return Plan(out, pending, skipped, sum(len(j.outputs) for j in jobs))


def _output_record(output: Output, result: JobResult, out: Path) -> dict[str, Any]:
    written = str(output.path) in result.written
    record = {
        "path": output.path.relative_to(out).as_posix(),
        "target": str(output.target),
        "key": output.key,
        "status": "ok" if written else "failed",
    }
    if not written:
        record["error"] = result.failed.get(str(output.path), result.error)
    return record


def _record(job: Job, result: JobResult, out: Path) -> dict[str, Any]:
    record: dict[str, Any] = {
        "job": job.name,
        "method": job.method,
        "lines": job.lines,
        "status": "ok" if result.ok else "failed",
        "seconds": round(result.seconds, 3),
        "outputs": [_output_record(o, result, out) for o in job.outputs],
        "error": result.error,
        "warnings": result.warnings,
        "inputs": {"image": str(job.image), "label": str(job.label), "hashes": job.inputs},
        "settings": job.settings(),
    }
    if job.model_dir is not None:
        record["model"] = job.model_dir.relative_to(out).as_posix()
        record["trained"] = result.trained
    return record


def run_batch(
    plan: Plan,
    *,
    workers: int | None = None,
    threads: int = 1,
    device: str = "cpu",
    ray: str | None = None,
    progress: Callable[[Job, JobResult], None] | None = None,
) -> Summary:
    """Run a plan's jobs and append one report record per finished job.

    Args:
        plan: from `make_plan`.
        workers: local processes (default: the CPU cores); with `ray="local"`, that Ray
            instance's CPUs.
        threads: torch CPU threads per job.
        device: "cpu" or "cuda".
        ray: None for the local pool; "auto", "local" or a cluster address for Ray tasks.
        progress: called in this process after every job with its result.

    Returns:
        The counts; failures are in the report and the summary, never raised.

    Raises:
        InputError: the output folder is locked by another batch; Ray is missing or unreachable.
        KeyboardInterrupt: after stopping the workers; finished jobs are in the report.
    """
    workers = workers or default_workers()
    start = time.perf_counter()
    summary = Summary(len(plan.jobs), 0, 0, 0, plan.skipped, 0.0)
    with folder_lock(plan.out, "--out"):
        report = Report(plan.out)
        try:
            for job in plan.jobs:
                clean_partial_files(job)
            results: Iterator[tuple[Job, JobResult]]
            if ray is None:
                results = run_local(plan.jobs, workers, threads, device)
            else:
                results = run_ray(plan.jobs, ray, workers, threads, device)
            for job, result in results:
                report.append(_record(job, result, plan.out))
                summary.outputs_written += len(result.written)
                if result.ok:
                    summary.ok += 1
                else:
                    summary.failed += 1
                    log.warning("job %s failed: %s", job.name, result.error)
                for message in result.warnings:
                    log.warning("job %s: %s", job.name, message)
                if progress is not None:
                    progress(job, result)
        finally:
            report.close()
    summary.seconds = time.perf_counter() - start
    return summary
