"""Reading a batch manifest: one job line per photo, as JSON lines or CSV.

JSON lines (`.jsonl`, `.json`, `.ndjson`; blank lines and lines starting with `#` are skipped):

    {"image": "tree/img.png", "label": "tree/label.png", "targets": ["tree/cond/1.png"]}
    {"image": "lake/img.png", "label": "lake/label.png", "targets": ["lake/cond/2.png"],
     "method": "gan", "iters": 400, "seed": 3}

CSV (`.csv`): a header row with the same names; targets separated by `;`; empty cells are unset.
Relative paths are taken from the manifest's folder.
"""

from __future__ import annotations

import csv
import dataclasses
import difflib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from semia.config import ConfigError, InputConfig, PatchConfig, TrainConfig
from semia.errors import SEED_MAX
from semia.io import InputError

METHODS = ("analogy", "gan")
UNKNOWN_LABELS = ("error", "nearest")
REQUIRED = ("image", "label", "targets")
JSON_SUFFIXES = (".jsonl", ".json", ".ndjson")


def _scalar_fields(cls: type) -> dict[str, type]:
    """Name -> type of the int / float / bool / str fields of a config dataclass."""
    instance = cls()
    return {
        f.name: type(getattr(instance, f.name))
        for f in dataclasses.fields(cls)
        if isinstance(getattr(instance, f.name), bool | int | float | str)
    }


# settings every job takes, with their types; method-specific ones come from the configs
COMMON_SETTINGS: dict[str, type] = {
    "method": str,  # "analogy" | "gan"
    "seed": int,  # random seed of the synthesis / the training
    "max_size": int,  # longest side the photo and its maps are downscaled to
    "unknown_labels": str,  # target colours the source lacks: "error" | "nearest"
    "name": str,  # output folder of the job, relative to --out
}
ANALOGY_SETTINGS = _scalar_fields(PatchConfig)
GAN_SETTINGS = _scalar_fields(TrainConfig)
SETTINGS: dict[str, type] = {**COMMON_SETTINGS, **ANALOGY_SETTINGS, **GAN_SETTINGS}
KNOWN_KEYS = (*REQUIRED, *SETTINGS)


@dataclass(frozen=True)
class Entry:
    """One manifest line: a photo, its label map, its target layouts and the line's settings.

    Attributes:
        line: 1-based line number in the manifest (for messages).
        image: the photo's path (absolute, or joined to the manifest's folder).
        label: its label map's path.
        targets: the target label maps' paths.
        settings: the settings the line gives (keys of `SETTINGS`), validated.
    """

    line: int
    image: Path
    label: Path
    targets: tuple[Path, ...]
    settings: dict[str, Any]


def check_settings(settings: dict[str, Any], where: str) -> dict[str, Any]:
    """Validate the keys, types and values of settings; `where` prefixes every message.

    Raises:
        InputError: an unknown key (with the closest known one), a wrong type or a bad value.
    """
    checked: dict[str, Any] = {}
    for key, value in settings.items():
        if key not in SETTINGS:
            close = difflib.get_close_matches(key, KNOWN_KEYS, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise InputError(
                f"{where}: unknown key {key!r}{hint}; known keys: image, label, targets, "
                f"{', '.join(COMMON_SETTINGS)} and the analogy / gan settings (see semia batch "
                "--help)"
            )
        kind = SETTINGS[key]
        ok = (isinstance(value, kind) and not (kind is not bool and isinstance(value, bool))) or (
            kind is float and isinstance(value, int) and not isinstance(value, bool)
        )
        if not ok:
            raise InputError(f"{where}: {key!r} must be {kind.__name__}, got {json.dumps(value)}")
        checked[key] = float(value) if kind is float else value
    if checked.get("method", "analogy") not in METHODS:
        raise InputError(f"{where}: method must be one of {', '.join(METHODS)}")
    if checked.get("unknown_labels", "error") not in UNKNOWN_LABELS:
        raise InputError(f"{where}: unknown_labels must be one of {', '.join(UNKNOWN_LABELS)}")
    if "max_size" in checked:
        try:
            InputConfig(max_size=checked["max_size"])
        except ConfigError as e:
            raise InputError(f"{where}: max_size {str(e).split(': ', 1)[1]}") from None
    if "seed" in checked and not 0 <= checked["seed"] <= SEED_MAX:
        raise InputError(f"{where}: seed must be between 0 and {SEED_MAX}, got {checked['seed']}")
    name = checked.get("name")
    if name is not None and (
        not name.strip() or Path(name).is_absolute() or ".." in Path(name).parts
    ):
        raise InputError(f"{where}: name must be a relative folder name inside --out, got {name!r}")
    return checked


def _path(value: Any, key: str, root: Path, where: str) -> Path:
    if not isinstance(value, str) or not value.strip():
        raise InputError(f"{where}: {key!r} must be a non-empty path string")
    path = Path(value.strip()).expanduser()
    return path if path.is_absolute() else root / path


def make_entry(record: dict[str, Any], line: int, root: Path, where: str) -> Entry:
    """Validate one manifest record (a JSON object, or a CSV row already typed) into an Entry."""
    missing = [k for k in REQUIRED if k not in record]
    if missing:
        raise InputError(f"{where}: missing {', '.join(repr(k) for k in missing)}")
    targets = record["targets"]
    if not isinstance(targets, list) or not targets:
        raise InputError(f"{where}: 'targets' must be a non-empty list of label map paths")
    settings = {k: v for k, v in record.items() if k not in REQUIRED}
    return Entry(
        line=line,
        image=_path(record["image"], "image", root, where),
        label=_path(record["label"], "label", root, where),
        targets=tuple(_path(t, "targets", root, where) for t in targets),
        settings=check_settings(settings, where),
    )


def _read_jsonl(path: Path, text: str) -> list[Entry]:
    entries = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        where = f"{path} line {number}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            raise InputError(f"{where}: not valid JSON ({e.msg} at column {e.colno})") from None
        if not isinstance(record, dict):
            raise InputError(f'{where}: expected a JSON object {{"image": ..., ...}}')
        entries.append(make_entry(record, number, path.parent, where))
    return entries


def _csv_value(key: str, text: str, where: str) -> Any:
    kind = SETTINGS.get(key, str)
    if kind is bool:
        low = text.lower()
        if low not in ("true", "false", "1", "0", "yes", "no"):
            raise InputError(f"{where}: {key!r} must be true or false, got {text!r}")
        return low in ("true", "1", "yes")
    try:
        return kind(text)
    except ValueError:
        raise InputError(f"{where}: {key!r} must be {kind.__name__}, got {text!r}") from None


def _read_csv(path: Path, text: str) -> list[Entry]:
    reader = csv.DictReader(text.splitlines())
    header = [h.strip() for h in (reader.fieldnames or [])]
    reader.fieldnames = header
    if not header:
        raise InputError(f"{path}: empty CSV; the first row must name the columns")
    unknown = [h for h in header if h not in KNOWN_KEYS]
    if unknown:  # reported like a JSON line's unknown key, with a suggestion
        check_settings({unknown[0]: ""}, f"{path} line 1 (header)")
    entries = []
    for row in reader:
        number = reader.line_num
        where = f"{path} line {number}"
        if None in row:
            raise InputError(f"{where}: more cells than columns (quote cells holding commas)")
        cells = {k: (v or "").strip() for k, v in row.items()}
        if not any(cells.values()):
            continue
        record: dict[str, Any] = {}
        for key, value in cells.items():
            if not value:
                continue
            if key == "targets":
                record[key] = [t.strip() for t in value.split(";") if t.strip()]
            elif key in ("image", "label"):
                record[key] = value
            else:
                record[key] = _csv_value(key, value, where)
        entries.append(make_entry(record, number, path.parent, where))
    return entries


def read_manifest(path: str | Path) -> list[Entry]:
    """Read and validate a batch manifest (JSON lines or CSV, chosen by the suffix).

    Raises:
        InputError: the file is missing, a folder or unreadable, has no jobs, or a line is invalid
            (the message names the file and the line).
    """
    path = Path(path).expanduser().absolute()
    if path.is_dir():
        raise InputError(
            f"manifest {path}: is a folder; give the manifest file in it (.jsonl or .csv)"
        )
    if not path.is_file():
        raise InputError(f"manifest {path}: no such file")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"manifest {path}: cannot read it as UTF-8 text ({e})") from None
    suffix = path.suffix.lower()
    if suffix == ".csv":
        entries = _read_csv(path, text)
    elif suffix in JSON_SUFFIXES:
        entries = _read_jsonl(path, text)
    else:
        raise InputError(f"manifest {path}: use a .jsonl (one JSON object per line) or a .csv file")
    if not entries:
        raise InputError(f"manifest {path}: no jobs in it")
    return entries
