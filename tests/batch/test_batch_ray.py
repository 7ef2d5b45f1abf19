"""The Ray backend on a local Ray instance (started here with two CPUs, shut down after)."""

from __future__ import annotations

import sys
import time

import numpy as np
import pytest
from batch_util import copy_examples, expected_analogy, line, read_png, records, write_jsonl

from semia.batch import make_plan, run_batch
from semia.batch.runners import connect_ray, import_ray
from semia.io import InputError

ray = pytest.importorskip("ray")


@pytest.mark.parametrize("address", ["127.0.0.1:1", "ray://127.0.0.1:1", "no-port"])
def test_bad_cluster_address_fails_fast(address):
    # before the local instance below starts (Ray itself would retry for minutes)
    start = time.monotonic()
    with pytest.raises(InputError, match=f"--ray {address}: "):
        connect_ray(address, workers=1)
    assert time.monotonic() - start < 10 and not ray.is_initialized()


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def test_ray_runs_the_same_jobs(tmp_path, local_ray):
    root = copy_examples(tmp_path)
    manifest = write_jsonl(
        root / "jobs.jsonl",
        [
            line("tree", ["1"], seed=1),
            line("lake", ["2", "nowhere"]),  # a missing target fails only its own job
        ],
    )
    out = tmp_path / "out"
    summary = run_batch(make_plan(manifest, out), ray="auto")
    assert (summary.ok, summary.failed, summary.outputs_written) == (2, 1, 2)
    assert np.array_equal(read_png(out / "tree/img/1.png"), expected_analogy(root, "tree", "1", 1))
    assert np.array_equal(read_png(out / "lake/img/2.png"), expected_analogy(root, "lake", "2"))
    failed = next(r for r in records(out) if r["status"] == "failed")
    assert failed["job"] == "lake/img/nowhere.png" and "no such file" in failed["error"]
    # resumable the same way: only the failed job is left
    plan = make_plan(manifest, out)
    assert [j.name for j in plan.jobs] == ["lake/img/nowhere.png"] and plan.skipped == 2


def test_missing_ray_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # as if the extra were not installed
    with pytest.raises(InputError, match=r'pip install "semia\[ray\]"'):
        import_ray()
