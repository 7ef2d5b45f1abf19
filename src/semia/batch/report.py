"""The batch report, `<out>/report.jsonl`: one JSON record per finished job, appended and
fsynced as each job ends, so a killed run loses only the jobs that were in flight.

Record fields: job, method, lines, status ("ok" | "failed"), seconds, outputs (each with its
path relative to the output folder, target, key, status and error), error (null when ok), warnings,
model (gan: the model folder) and trained (gan: whether this job trained it), inputs (content
hashes of the photo and label map), settings (resolved), finished (UTC time).
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPORT_FILE = "report.jsonl"


def read_records(path: str | Path) -> list[dict[str, Any]]:
    """Every complete record of a report (a line cut short by a kill is skipped)."""
    path = Path(path)
    if not path.is_file():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


def done_outputs(out: str | Path) -> dict[Path, str]:
    """Output path -> key, of every output a record reports as written (a later one wins)."""
    out = Path(out)
    done: dict[Path, str] = {}
    for record in read_records(out / REPORT_FILE):
        for output in record.get("outputs", []):
            if (
                isinstance(output, dict)
                and output.get("status", record.get("status")) == "ok"
                and isinstance(output.get("path"), str)
                and isinstance(output.get("key"), str)
            ):
                done[out / output["path"]] = output["key"]
    return done


class Report:
    """Appends records to `<out>/report.jsonl`, each line flushed and fsynced."""

    def __init__(self, out: str | Path) -> None:
        self.path = Path(out) / REPORT_FILE
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self.path.open("a+b")
        self._file.seek(0, os.SEEK_END)
        if self._file.tell() > 0:  # a run killed mid-line left no newline: start a fresh line
            self._file.seek(-1, os.SEEK_END)
            if self._file.read(1) != b"\n":
                self._write(b"\n")

    def _write(self, data: bytes) -> None:
        self._file.seek(0, os.SEEK_END)
        self._file.write(data)
        self._file.flush()
        os.fsync(self._file.fileno())

    def append(self, record: dict[str, Any]) -> None:
        record = {**record, "finished": datetime.now(UTC).isoformat(timespec="seconds")}
        self._write((json.dumps(record) + "\n").encode("utf-8"))

    def close(self) -> None:
        self._file.close()
