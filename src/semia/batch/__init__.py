"""Batch synthesis: many photos and layouts, resumable, on a local process pool or on Ray.

    plan = make_plan("jobs.jsonl", "results/", {"method": "analogy"})
    summary = run_batch(plan, workers=4)            # or ray="auto" for a Ray cluster

Parts: `manifest` (reading .jsonl / .csv job lists), `plan` (jobs, settings, content hashes,
model cache keys), `worker` (running one job), `runners` (local pool, Ray), `report`
(`report.jsonl`, the record of what is done), `run` (the whole batch).
"""

from semia.batch.manifest import Entry, read_manifest
from semia.batch.plan import Job, Output, pending_jobs, plan_jobs, train_config
from semia.batch.report import REPORT_FILE, done_outputs, read_records
from semia.batch.run import Plan, Summary, make_plan, run_batch
from semia.batch.worker import JobResult, execute

__all__ = [
    "REPORT_FILE",
    "Entry",
    "Job",
    "JobResult",
    "Output",
    "Plan",
    "Summary",
    "done_outputs",
    "execute",
    "make_plan",
    "pending_jobs",
    "plan_jobs",
    "read_manifest",
    "read_records",
    "run_batch",
    "train_config",
]
