"""Where jobs run: a local process pool (the default) or Ray tasks on a Ray cluster.

Both are generators over (job, result) in the order jobs finish; the caller writes the report.
A worker that dies (killed, out of memory) fails only the jobs it was running.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool

from semia.batch.plan import Job
from semia.batch.worker import JobResult, execute, set_threads, stop_on_sigterm
from semia.io import InputError

log = logging.getLogger("semia")

WORKER_DIED = "the worker process died while running this job (killed, or out of memory?)"


def default_workers() -> int:
    """The CPU cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _watch_parent(parent: int) -> None:
    while True:
        if os.getppid() != parent:  # the batch process is gone (kill -9): stop working for it
            os._exit(1)
        time.sleep(0.5)


def _init_worker(threads: int, parent: int) -> None:
    """Pool worker start: Ctrl-C is the parent's to handle (it terminates the workers, and a
    training in progress then saves a checkpoint); torch gets `threads` threads; the worker exits
    when its parent dies."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, stop_on_sigterm)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(threads)  # before torch is imported: its thread pools follow
    set_threads(threads)
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()


def run_local(
    jobs: Sequence[Job], workers: int, threads: int = 1, device: str = "cpu"
) -> Iterator[tuple[Job, JobResult]]:
    """Run jobs in a pool of `workers` spawned processes with `threads` torch threads each.

    At most two jobs per worker are queued at a time, so an interrupt or a dead worker loses
    little. A broken pool (a worker died) fails the jobs it held and a fresh pool takes the rest.
    """
    if workers < 1:
        raise InputError(f"--workers {workers}: use at least 1")
    queue = list(reversed(jobs))
    context = multiprocessing.get_context("spawn")
    while queue:
        pool = ProcessPoolExecutor(
            max_workers=min(workers, len(queue)),
            mp_context=context,
            initializer=_init_worker,
            initargs=(threads, os.getpid()),
        )
        running: dict[Future, Job] = {}
        broken = False
        try:
            while queue or running:
                while queue and len(running) < 2 * workers and not broken:
                    job = queue.pop()
                    running[pool.submit(execute, job, threads, device)] = job
                if not running:
                    break
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in finished:
                    job = running.pop(future)
                    try:
                        result = future.result()
                    except BrokenProcessPool:
                        broken = True
                        result = JobResult(False, 0.0, error=WORKER_DIED)
                    yield job, result
                if broken and not running:
                    break
        except BaseException:
            # interrupted (or the consumer stopped): stop the workers now, not after their jobs
            processes = list((getattr(pool, "_processes", None) or {}).values())
            for process in processes:
                process.terminate()
            for process in processes:
                process.join(timeout=5)
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        pool.shutdown(wait=True)


def import_ray():
    """The `ray` module, or a clear error when the optional extra is not installed."""
    try:
        import ray
    except ImportError:
        raise InputError(
            'Ray is not installed: pip install "semia[ray]" (or pip install "ray>=2.9")'
        ) from None
    return ray


def _check_reachable(address: str, timeout: float = 5.0) -> None:
    """Fail fast on a cluster address nothing listens at (Ray itself retries for minutes)."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise InputError(
            f"--ray {address}: give auto, local, host:port (e.g. 10.0.0.5:6379) or ray://host:port"
        )
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as e:
        raise InputError(
            f"--ray {address}: nothing answers there ({e}); start the cluster with "
            "`ray start --head`, check the address, or use --ray local"
        ) from None


def connect_ray(address: str, workers: int) -> bool:
    """Connect to Ray unless this process already is connected.

    Args:
        address: "auto" (the running cluster: RAY_ADDRESS or the one on this machine), "local"
            (start a private one on this machine with `workers` CPUs), or a cluster address
            ("host:6379", "ray://host:10001").

    Returns:
        True when this call connected (the caller shuts Ray down afterwards).
    """
    ray = import_ray()
    if ray.is_initialized():
        return False
    if address not in ("auto", "local"):
        _check_reachable(address)
    try:
        if address == "local":
            ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
        else:
            ray.init(address=address, log_to_driver=False)
    except (ConnectionError, RuntimeError, ValueError) as e:
        raise InputError(
            f"--ray {address}: could not connect to a Ray cluster ({e}); start one with "
            "`ray start --head`, give its address, or use --ray local"
        ) from None
    return True


def run_ray(
    jobs: Sequence[Job], address: str = "auto", workers: int = 1, threads: int = 1,
    device: str = "cpu",
) -> Iterator[tuple[Job, JobResult]]:  # fmt: skip
    """Run jobs as Ray tasks, each asking for `threads` CPUs (and one GPU with CUDA).

    Paths travel as they are: on a multi-node cluster the inputs and the output folder must be
    on storage every node sees under the same path. `workers` sizes a `--ray local` instance.
    """
    ray = import_ray()
    started = connect_ray(address, workers)
    try:
        task = ray.remote(
            num_cpus=threads, num_gpus=1 if device.startswith("cuda") else 0, max_retries=0
        )(execute)
        refs = {task.remote(job, threads, device): job for job in jobs}
        try:
            while refs:
                finished, _ = ray.wait(list(refs), num_returns=1)
                for ref in finished:
                    job = refs.pop(ref)
                    try:
                        result = ray.get(ref)
                    except ray.exceptions.RayError as e:
                        result = JobResult(False, 0.0, error=f"{WORKER_DIED} ({type(e).__name__})")
                    yield job, result
        except BaseException:
            for ref in refs:
                ray.cancel(ref, force=True)
            raise
    finally:
        if started:
            ray.shutdown()
