"""Running one job, in whichever process the runner chose (a pool worker or a Ray task).

`execute` never raises for a failing job: it returns the error in its `JobResult`, so one bad
file does not stop the batch. Torch is imported here lazily, after the thread count is set.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import time
from dataclasses import dataclass, field

from semia.batch.plan import Job
from semia.io import InputError

# pool workers (see `stop_on_sigterm`): a job is running; the batch asked this worker to stop
_job_running = False
_stopping = False


@dataclass
class JobResult:
    """What a job did.

    Attributes:
        ok: every output was written.
        seconds: time spent in the job (loading, training, synthesis, writing).
        written: the output paths written.
        failed: output path -> error, for outputs that could not be made.
        error: one-line message when not ok.
        warnings: warnings the library logged meanwhile (e.g. unknown labels mapped).
        trained: gan: the model was trained by this job (False: taken from the cache).
    """

    ok: bool
    seconds: float
    written: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    error: str | None = None
    warnings: list[str] = field(default_factory=list)
    trained: bool | None = None


class _Collect(logging.Handler):
    """Keeps the semia logger's warnings of one job."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def set_threads(threads: int) -> None:
    """Limit torch to `threads` CPU threads in this process."""
    import torch

    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


def _message(e: BaseException) -> str:
    if isinstance(e, InputError):
        return str(e)
    if isinstance(e, MemoryError):
        return "out of memory; use a smaller max_size"
    return f"{type(e).__name__}: {e}"


def _each_target(job: Job, synthesize, result: JobResult) -> None:
    """synthesize(output) -> image for every output; one bad target fails only its output."""
    from semia.io import write_image

    for out in job.outputs:
        try:
            result.written.append(str(write_image(out.path, synthesize(out))))
        except Exception as e:
            result.failed[str(out.path)] = _message(e)


def _run_analogy(job: Job, device: str, result: JobResult) -> None:
    from semia import analogy
    from semia.io import load_scene, read_target

    image, labels = load_scene(job.image, job.label, job.max_size)

    def synthesize(out):
        target = read_target(out.target, labels, out.unknown_labels, job.max_size)
        return analogy(image, labels, target, seed=job.seed, config=job.config, device=device)

    _each_target(job, synthesize, result)


def _train(job: Job, device: str):
    """Train the job's GAN in <model_dir>.partial (resuming a killed training there), then move
    it to model_dir in one rename: a model folder in the cache is always complete."""
    from semia.gan import SemIA
    from semia.gan.checkpoint import STATE_FILE, STATE_JSON
    from semia.io import load_scene

    model_dir = job.model_dir
    partial = model_dir.with_name(model_dir.name + ".partial")
    image, labels = load_scene(job.image, job.label, job.max_size)
    kwargs = dict(config=job.config, device=device, seed=job.seed)
    resume = (partial / STATE_FILE).is_file()
    try:
        model = SemIA.train(image, labels, partial, resume=resume, **kwargs)
    except InputError:
        if not resume:
            raise
        shutil.rmtree(partial)  # a state that cannot be resumed: train afresh
        model = SemIA.train(image, labels, partial, **kwargs)
    for name in (STATE_FILE, STATE_JSON):  # the resumable state is not needed any more
        (partial / name).unlink(missing_ok=True)
    try:
        os.replace(partial, model_dir)
    except OSError:  # a model with this key appeared meanwhile (another run): keep that one
        shutil.rmtree(partial, ignore_errors=True)
    return model


def _run_gan(job: Job, device: str, result: JobResult) -> None:
    from semia.gan import SemIA
    from semia.gan.checkpoint import MODEL_FILE
    from semia.io import read_target

    result.trained = not (job.model_dir / MODEL_FILE).is_file()
    model = _train(job, device) if result.trained else SemIA.load(job.model_dir, device=device)
    source = model.labels  # targets are read the way the source map was

    def synthesize(out):
        return model.generate(read_target(out.target, source, out.unknown_labels, job.max_size))

    _each_target(job, synthesize, result)


def stop_on_sigterm(signum: int, frame: object) -> None:
    """SIGTERM handler of pool workers (the batch terminates them when it is interrupted).

    A running job gets a KeyboardInterrupt, on which a GAN training saves a checkpoint that a
    rerun resumes and releases its folder's lock; `execute` then ends the process. An idle
    worker ends at once.
    """
    global _stopping
    _stopping = True
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second SIGTERM kills
    if _job_running:
        raise KeyboardInterrupt
    os._exit(128 + signum)


def execute(job: Job, threads: int = 1, device: str = "cpu") -> JobResult:
    """Run one job; errors are returned, not raised (KeyboardInterrupt excepted).

    A bad photo or label map (or a failed training) fails every output of the job; a bad
    target fails only its own output.

    Args:
        job: from `semia.batch.plan_jobs`.
        threads: torch CPU threads for this job.
        device: "cpu" or a CUDA device.
    """
    global _job_running
    set_threads(threads)
    logger = logging.getLogger("semia")
    collect = _Collect()
    logger.addHandler(collect)
    propagate, logger.propagate = logger.propagate, False  # the caller logs them once, by job
    result = JobResult(ok=False, seconds=0.0)
    start = time.perf_counter()
    _job_running = True
    try:
        if job.method == "gan":
            _run_gan(job, device, result)
        else:
            _run_analogy(job, device, result)
    except KeyboardInterrupt:
        if _stopping:  # the training saved its checkpoint; the pool must not start another job
            os._exit(128 + signal.SIGTERM)
        raise
    except Exception as e:
        result.error = _message(e)
    finally:
        _job_running = False
        logger.removeHandler(collect)
        logger.propagate = propagate
    result.seconds = time.perf_counter() - start
    result.warnings = collect.messages
    if result.error is None and result.failed:
        first = next(iter(result.failed.values()))
        more = f" (and {len(result.failed) - 1} more)" if len(result.failed) > 1 else ""
        result.error = f"{len(result.failed)} of {len(job.outputs)} output(s) failed: {first}{more}"
    result.ok = result.error is None
    return result


def clean_partial_files(job: Job) -> None:
    """Remove temporary files a killed run left in the job's output folders (call it only while
    holding the output folder's lock)."""
    from semia.io import remove_stale_temps

    for folder in {out.path.parent for out in job.outputs}:
        if folder.is_dir():
            for tmp in remove_stale_temps(folder):
                logging.getLogger("semia").info("removed %s, left by an interrupted write", tmp)
