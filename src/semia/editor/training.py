""" "Train GAN" for the editor: SemIA training in a background process, cached per photo.

Training runs in a `spawn`-started process (its own interpreter: no fork of the server's threads)
that reports progress over a queue; cancelling asks it to stop at the next iteration (it saves a
resumable checkpoint, so a later start continues). Models live under the cache folder, one folder
per photo content hash and schedule:

    <cache>/<photo key>-<settings key>/model.safetensors   the finished model (only when done)
    <cache>/<photo key>-<settings key>/train/               the training run (checkpoints, log)

(the settings key hashes the training settings), so a later session with the same photo and
label map reuses the model without training, and a semia with other defaults trains anew.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import multiprocessing as mp
import os
import queue
import signal
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from semia.errors import InputError

log = logging.getLogger(__name__)

MODEL_FILE = "model.safetensors"
WORK_DIR = "train"
_CANCEL_GRACE_S = 30.0  # a cancelled process still running after this long is terminated
_MODELS_KEPT = 4  # loaded generators kept in memory


def _train_worker(
    image: np.ndarray,
    labels: dict[str, Any],
    folder: str,
    iters: int,
    threads: int,
    device: str,
    events: Any,
    cancel: Any,
) -> None:
    """The training process: train, save the model, report ("progress", step, total), then one
    of ("done",), ("cancelled", step), ("failed", message).

    Args:
        labels: the LabelMap's fields (plain arrays and tuples: unpickling them in the new
            interpreter imports nothing heavy).
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C in the terminal: the server decides
    last = {"time": 0.0, "step": 0}

    def progress(step: int, total: int, info: dict | None = None) -> None:
        last["step"] = step
        if cancel.is_set():
            raise KeyboardInterrupt  # train() saves a resumable checkpoint and re-raises
        now = time.monotonic()
        if now - last["time"] > 0.2 or step == total:
            last["time"] = now
            events.put(("progress", step, total))

    try:
        import torch

        from semia.config import TrainConfig
        from semia.gan import SemIA
        from semia.io import LabelMap

        torch.set_num_threads(threads)
        handler = logging.StreamHandler()  # this process's warnings, in the server's terminal
        handler.setFormatter(logging.Formatter("semia: training: %(message)s"))
        logging.getLogger("semia").addHandler(handler)
        logging.getLogger("semia").setLevel(logging.WARNING)
        if cancel.is_set():  # cancelled while this process started
            raise KeyboardInterrupt
        work = Path(folder) / WORK_DIR
        model = SemIA.train(
            image,
            LabelMap(**labels),
            work,
            dataclasses.replace(TrainConfig(), iters=iters),
            device=device,
            resume=work.is_dir() and any(work.iterdir()),  # a cancelled run continues
            progress=progress,
        )
        model.save(Path(folder) / MODEL_FILE)
        events.put(("done",))
    except KeyboardInterrupt:
        events.put(("cancelled", last["step"]))
    except InputError as e:  # its message says what to do; the class name would only clutter it
        events.put(("failed", str(e)))
    except Exception as e:  # reported to the page; the server goes on
        events.put(("failed", f"{type(e).__name__}: {e}"))


@dataclass
class Job:
    """One training process and what it reported."""

    folder: Path
    process: Any  # multiprocessing Process
    events: Any  # multiprocessing Queue
    cancel: Any  # multiprocessing Event
    total: int
    started: float
    state: str = "running"  # running | done | cancelled | failed
    step: int = 0
    first: tuple[float, int] | None = None  # (time, step) of the first progress report
    error: str = ""
    watcher: threading.Thread | None = None  # follows the process's reports

    def status(self) -> dict[str, Any]:
        now = time.monotonic()
        eta = None
        if self.state == "running" and self.first is not None and self.step > self.first[1]:
            rate = (self.step - self.first[1]) / max(now - self.first[0], 1e-6)
            eta = round((self.total - self.step) / rate, 1)
        return {
            "state": self.state,
            "step": self.step,
            "total": self.total,
            "elapsed_s": round(now - self.started, 1),
            "eta_s": eta,
            "error": self.error,
        }


class Trainer:
    """Starts, watches and cancels training processes; loads finished models from the cache.

    Args:
        cache_dir: the model cache folder.
        iters: training iterations per model.
        threads: torch threads of a training process (0: all cores but one, keeping one for
            the training-free results while it trains).
        device: where the GAN trains and generates ("cpu", "cuda").
    """

    def __init__(self, cache_dir: Path, iters: int, threads: int = 0, device: str = "cpu") -> None:
        self.cache_dir, self.iters, self.device = Path(cache_dir), iters, device
        self.threads = threads or max(1, (os.cpu_count() or 2) - 1)
        self._jobs: dict[str, Job] = {}
        self._models: OrderedDict[str, Any] = OrderedDict()
        self._lock = threading.Lock()
        self._context = mp.get_context("spawn")

    def folder(self, key: str) -> Path:
        """The cache folder of a photo's model: its content hash and the training settings."""
        from semia.config import TrainConfig

        settings = json.dumps(dataclasses.replace(TrainConfig(), iters=self.iters).to_dict())
        return self.cache_dir / f"{key}-{hashlib.sha256(settings.encode()).hexdigest()[:8]}"

    def is_trained(self, key: str) -> bool:
        return (self.folder(key) / MODEL_FILE).is_file()

    def status(self, key: str) -> dict[str, Any]:
        """{"state": none | running | done | cancelled | failed, step, total, elapsed_s, eta_s,
        error}; "done" whenever the cache holds the model."""
        with self._lock:
            job = self._jobs.get(key)
        if job is not None and job.state == "running":
            return job.status()
        if self.is_trained(key):
            return {"state": "done", "step": self.iters, "total": self.iters, "elapsed_s": 0.0,
                    "eta_s": 0.0, "error": ""}  # fmt: skip
        if job is not None:
            return job.status()
        return {"state": "none", "step": 0, "total": self.iters, "elapsed_s": 0.0,
                "eta_s": None, "error": ""}  # fmt: skip

    def start(self, key: str, image: np.ndarray, labels) -> dict[str, Any]:
        """Train a model for this photo unless the cache has one or it is training already.

        Args:
            image: (H, W, 3) float32 in [0, 1].
            labels: its LabelMap.
        """
        job = None
        with self._lock:
            running = self._jobs.get(key)
            busy = running is not None and running.state == "running"
            if not busy and not self.is_trained(key):
                job = self._reserve(key, image, labels)
        if job is not None:
            # unlocked: start() waits for the new interpreter to read its inputs. SIGINT blocked
            # meanwhile: the child inherits the mask, so a Ctrl-C in the terminal never lands in
            # it (the server stops it by its cancel event, with a checkpoint)
            blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
            try:
                job.process.start()
            finally:
                signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
            job.watcher = threading.Thread(target=self._watch, args=(job,), daemon=True)
            job.watcher.start()
            log.info("training a GAN for %s in process %d", key, job.process.pid)
        return self.status(key)

    def _reserve(self, key: str, image: np.ndarray, labels) -> Job:
        """A registered job for `key` whose process is not started yet (call under the lock)."""
        folder = self.folder(key)
        folder.mkdir(parents=True, exist_ok=True)
        events, cancel = self._context.Queue(), self._context.Event()
        fields = {f.name: getattr(labels, f.name) for f in dataclasses.fields(labels)}
        args = (image, fields, str(folder), self.iters, self.threads, self.device, events, cancel)
        process = self._context.Process(
            target=_train_worker, args=args, daemon=True, name=f"semia-train-{key}"
        )
        job = Job(folder, process, events, cancel, self.iters, time.monotonic())
        self._jobs[key] = job
        return job

    def cancel(self, key: str) -> dict[str, Any]:
        """Ask a running training to stop (it checkpoints; a later start resumes)."""
        with self._lock:
            job = self._jobs.get(key)
        if job is not None and job.state == "running":
            job.cancel.set()
            deadline = time.monotonic() + 5.0
            while job.state == "running" and time.monotonic() < deadline:
                time.sleep(0.05)
        return self.status(key)

    def model(self, key: str):
        """The trained `semia.gan.SemIA` for this photo, or None when there is none yet."""
        with self._lock:
            if key in self._models:
                self._models.move_to_end(key)
                return self._models[key]
        if not self.is_trained(key):
            return None
        from semia.gan import SemIA

        model = SemIA.load(self.folder(key) / MODEL_FILE, device=self.device)
        with self._lock:
            self._models[key] = model
            while len(self._models) > _MODELS_KEPT:
                self._models.popitem(last=False)
        return model

    def shutdown(self, timeout: float = 10.0) -> None:
        """Stop every training process (each saves a checkpoint first when it can), and wait
        for their watchers to record how each ended: a watcher thread still running while the
        interpreter exits could print a traceback."""
        with self._lock:
            jobs = [j for j in self._jobs.values() if j.process.is_alive()]
            watchers = [j.watcher for j in self._jobs.values() if j.watcher is not None]
        for job in jobs:
            job.cancel.set()
        deadline = time.monotonic() + timeout
        for job in jobs:
            job.process.join(max(0.0, deadline - time.monotonic()))
            if job.process.is_alive():
                job.process.terminate()
                job.process.join(2.0)
        for watcher in watchers:  # each ends within 0.25 s of its process ending
            watcher.join(max(1.0, deadline - time.monotonic()))

    def _watch(self, job: Job) -> None:
        """Follow one process's reports until it ends."""
        cancel_at = None
        while True:
            try:
                event = job.events.get(timeout=0.25)
            except queue.Empty:
                if job.cancel.is_set() and cancel_at is None:
                    cancel_at = time.monotonic()
                if cancel_at is not None and time.monotonic() - cancel_at > _CANCEL_GRACE_S:
                    job.process.terminate()
                    job.state = "cancelled"
                    break
                if not job.process.is_alive() and job.events.empty():
                    job.state = "failed"
                    job.error = f"the training process ended (exit code {job.process.exitcode})"
                    break
                continue
            if event[0] == "progress":
                job.step, job.total = int(event[1]), int(event[2])
                if job.first is None:
                    job.first = (time.monotonic(), job.step)
                continue
            if event[0] == "cancelled":
                job.step = max(job.step, int(event[1]))
            job.error = event[1] if event[0] == "failed" else ""
            job.state = event[0]
            break
        job.process.join(5.0)
        log.info("training %s: %s %s", job.folder.name, job.state, job.error)
