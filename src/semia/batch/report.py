"""The batch report, `<out>/report.jsonl`: one JSON record per finished job, appended and
fsynced as each job ends, so a killed run loses only the jobs that were in flight.

Record fields: job, method, lines, status ("ok" | "failed"), seconds, outputs (each with its
path relative to the output folder, target, key, status and error), error (null when ok), warnings,
model (gan: the model folder) and trained (gan: whether this job trained it), inputs (content
hashes of the photo and label map), settings (resolved), finished (UTC time).
"""

from __future__ import annotations

import json
import logging
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

log = logging.getLogger("semia")

REPORT_FILE = "report.jsonl"


def read_records(path: str | Path) -> list[dict[str, Any]]:
    """Every complete record of a report.

    A damaged line (cut short by a kill, not UTF-8, not a JSON object) is skipped with a
    warning: the outputs it recorded count as not done, so a rerun makes them again.
    """
    path = Path(path)
    if not path.is_file():
        return []
    records, damaged = [], 0
    for line in path.read_bytes().splitlines():
        if not line.strip():
            continue
        try:
            record = json.loads(line.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            record = None
        if isinstance(record, dict):
            records.append(record)
        else:
            damaged += 1
    if damaged:
        log.warning(
            "%s: skipped %d damaged line(s); the outputs they recorded will be made again",
            path, damaged,
        )  # fmt: skip
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
