"""Planning a batch: manifest entries -> jobs with resolved settings, output paths and hashes.

A job is one unit of work for a worker:
- analogy: one target layout of one photo (one output);
- gan: every target of one photo that shares a trained model (one training, then one forward
  pass per target); lines with the same photo, label map, size, seed and training settings
  share that model and so one job.

Every output has a key: a hash of its inputs' contents (photo, label map, target) and of all
settings that shape it. An output whose file exists and whose key the report already holds is
done; a changed input or setting changes the key, so the output is made again.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from semia.batch.manifest import (
    ANALOGY_SETTINGS,
    COMMON_SETTINGS,
    GAN_SETTINGS,
    Entry,
)
from semia.config import InputConfig, PatchConfig, TrainConfig
from semia.io import InputError

MODELS_DIR = "models"  # trained GANs under --out, one folder per model key
OUTPUT_SUFFIX = ".png"
GAN_SUFFIX = "_gan"  # GAN outputs are <target>_gan.png, so both methods fit in one folder


@dataclass(frozen=True)
class Output:
    """One image a job writes.

    Attributes:
        target: the target label map's path.
        path: the output image's path.
        key: hash of the inputs' contents and the settings (see `output_key`).
        line: the manifest line asking for it.
        unknown_labels: "error" | "nearest", how the target's unknown colours are treated.
    """

    target: Path
    path: Path
    key: str
    line: int
    unknown_labels: str


@dataclass(frozen=True)
class Job:
    """One unit of work: a photo, one method and the outputs to make from it.

    Attributes:
        name: short id for messages and the report, e.g. "tree/img/1.png" or "tree/img (gan)".
        method: "analogy" | "gan".
        image, label: the source photo and its label map.
        max_size: longest side the photo, its map and the targets are downscaled to.
        seed: random seed of the synthesis or of the training.
        config: `PatchConfig` (analogy) or `TrainConfig` (gan).
        outputs: the outputs still to make.
        model_dir: gan only: the model cache folder (trained there unless it already exists).
        inputs: content hash of the photo and of the label map ("missing" for absent files).
    """

    name: str
    method: str
    image: Path
    label: Path
    max_size: int
    seed: int
    config: PatchConfig | TrainConfig
    outputs: tuple[Output, ...]
    model_dir: Path | None
    inputs: dict[str, str]

    @property
    def lines(self) -> list[int]:
        return sorted({o.line for o in self.outputs})

    def settings(self) -> dict[str, Any]:
        """The resolved settings as JSON-ready values (for the report)."""
        return {
            "max_size": self.max_size,
            "seed": self.seed,
            "config": self.config.to_dict(),
        }


class FileHashes:
    """Content hashes (sha256) of files, each file read once."""

    def __init__(self) -> None:
        self._cache: dict[Path, str] = {}

    def __call__(self, path: Path) -> str:
        if path not in self._cache:
            try:
                digest = hashlib.sha256(path.read_bytes()).hexdigest()
            except OSError:
                digest = "missing"  # the job fails with a clear message when it reads the file
            self._cache[path] = digest
        return self._cache[path]


def _hash(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()


def train_config(settings: Mapping[str, Any]) -> TrainConfig:
    """TrainConfig from top-level overrides.

    Setting `iters` alone shortens the default schedule proportionally: the full-size phase and
    the augmentation ramp scale with it (as in `semia demo`) unless they are set too.
    """
    base = TrainConfig()
    overrides = {k: v for k, v in settings.items() if k in GAN_SETTINGS}
    if "iters" in overrides:
        iters = overrides["iters"]
        if "full_size_iters" not in overrides:
            overrides["full_size_iters"] = max(1, iters * base.full_size_iters // base.iters)
        ramp = max(1, iters * base.augment.ramp_iters // base.iters)
        overrides["augment"] = dataclasses.replace(base.augment, ramp_iters=ramp)
    return dataclasses.replace(base, **overrides)


def _default_name(image: Path, root: Path) -> str:
    """The output folder of a line without "name": the photo's path below the manifest's folder
    without its suffix (tree/img.png -> tree/img), else its last folder and stem (../x/img.png
    -> x/img). Paths are normalized first ("a/../b" -> "b"), so the name never climbs out of
    --out and one photo always gets one name."""
    image = Path(os.path.normpath(image))
    stem = image.parent / image.stem
    try:
        return stem.relative_to(os.path.normpath(root)).as_posix()
    except ValueError:
        return "/".join(stem.relative_to(stem.anchor).parts[-2:]) or "."


def _resolve(entry: Entry, defaults: Mapping[str, Any], where: str) -> dict[str, Any]:
    """Line settings over the command line's over the defaults; checks the method's keys."""
    settings = {**defaults, **entry.settings}
    method = settings.get("method", "analogy")
    foreign = GAN_SETTINGS if method == "analogy" else ANALOGY_SETTINGS
    wrong = sorted(k for k in entry.settings if k in foreign and k not in COMMON_SETTINGS)
    if wrong:
        raise InputError(
            f"{where}: {', '.join(wrong)} do(es) not apply to method {method}; remove it or set "
            f'"method" on this line'
        )
    resolved = {
        "method": method,
        "seed": settings.get("seed", 0),
        "unknown_labels": settings.get("unknown_labels", InputConfig.unknown_labels),
        "max_size": settings.get(
            "max_size", InputConfig.max_size if method == "analogy" else InputConfig.train_max_size
        ),
    }
    try:
        if method == "analogy":
            known = {k: v for k, v in settings.items() if k in ANALOGY_SETTINGS}
            resolved["config"] = dataclasses.replace(PatchConfig(), **known)
        else:
            resolved["config"] = train_config(settings)
    except (TypeError, ValueError) as e:
        raise InputError(f"{where}: {e}") from None
    return resolved


def plan_jobs(
    entries: Iterable[Entry],
    out: str | Path,
    root: str | Path,
    defaults: Mapping[str, Any] | None = None,
    hashes: FileHashes | None = None,
) -> list[Job]:
    """Every job the manifest asks for, outputs done or not (see `pending_jobs`).

    Args:
        entries: the manifest's lines (`read_manifest`).
        out: the output folder.
        root: the manifest's folder (default output names are relative to it).
        defaults: settings for every line that does not set them (the command line's flags).
        hashes: a shared file-hash cache.

    Raises:
        InputError: a line's settings do not fit its method, or two lines would write one file.
    """
    out, root = Path(out), Path(root)
    hashes = hashes or FileHashes()
    defaults = dict(defaults or {})
    jobs: list[Job] = []
    gan_groups: dict[str, dict[str, Any]] = {}
    writers: dict[Path, tuple[int, Path]] = {}  # output -> the line and target writing it
    for entry in entries:
        where = f"manifest line {entry.line}"
        s = _resolve(entry, defaults, where)
        name = entry.settings.get("name") or _default_name(entry.image, root)
        inputs = {"image": hashes(entry.image), "label": hashes(entry.label)}
        config_dict = s["config"].to_dict()
        shared = {**inputs, "method": s["method"], "seed": s["seed"], "max_size": s["max_size"]}
        suffix = GAN_SUFFIX if s["method"] == "gan" else ""
        outputs = []
        for target in entry.targets:
            path = out / name / f"{target.stem}{suffix}{OUTPUT_SUFFIX}"
            other_line, other = writers.get(path, (None, None))
            if other_line == entry.line and other == target:
                raise InputError(f"{where}: it lists the target {target} twice; list it once")
            if other_line == entry.line:
                raise InputError(
                    f"{where}: its targets {other} and {target} share the output name "
                    f"{path.name}; rename one of the two target files"
                )
            if other_line is not None:
                raise InputError(
                    f"{where}: its output {path} is also written by manifest line "
                    f'{other_line}; give one of the lines its own "name" (output folder)'
                )
            writers[path] = (entry.line, target)
            key = _hash(
                {
                    **shared,
                    "target": hashes(target),
                    "unknown_labels": s["unknown_labels"],
                    "config": config_dict,
                }
            )
            outputs.append(Output(target, path, key, entry.line, s["unknown_labels"]))
        common = dict(
            method=s["method"], image=entry.image, label=entry.label, max_size=s["max_size"],
            seed=s["seed"], config=s["config"], inputs=inputs,
        )  # fmt: skip
        if s["method"] == "analogy":
            for o in outputs:
                jobs.append(
                    Job(name=f"{name}/{o.path.name}", outputs=(o,), model_dir=None, **common)
                )
            continue
        model_key = _hash({**shared, "config": config_dict})[:20]
        group = gan_groups.setdefault(model_key, {"name": name, "outputs": [], **common})
        group["outputs"].extend(outputs)
    for model_key, group in gan_groups.items():
        name = group.pop("name")
        outputs = tuple(group.pop("outputs"))
        jobs.append(
            Job(
                name=f"{name} (gan)",
                outputs=outputs,
                model_dir=out / MODELS_DIR / model_key,
                **group,
            )
        )
    return jobs


def pending_jobs(jobs: Iterable[Job], done: Mapping[Path, str]) -> tuple[list[Job], int]:
    """Drop the outputs that are done: their file exists and `done` holds their key.

    Args:
        jobs: from `plan_jobs`.
        done: output path -> key of the last successful run that wrote it (the report's).

    Returns:
        The jobs with outputs left (GAN jobs keep only those; longest work first) and the number
        of outputs skipped.
    """
    pending, skipped = [], 0
    for job in jobs:
        left = tuple(o for o in job.outputs if not (done.get(o.path) == o.key and o.path.is_file()))
        skipped += len(job.outputs) - len(left)
        if left:
            pending.append(dataclasses.replace(job, outputs=left))
    pending.sort(key=lambda j: j.method != "gan")  # trainings first: they take longest
    return pending, skipped
