"""Checkpoints: the slim inference file and the resumable training state.

Nothing here is pickled. Tensors go into safetensors files, everything else (configs, optimiser
hyper-parameters, step counters) into JSON, so every file loads with `safetensors` alone and can be
inspected with any JSON reader. All writes are atomic: the bytes go to a temporary file in the same
folder, which then replaces the destination with `os.replace` (a kill mid-write leaves the previous
file intact).

Files (inside a model folder):
    model.safetensors        generator weights (`G.*`), the source image and label map, the palette;
                             metadata: format tag, version, number of classes, the TrainConfig JSON,
                             the iterations trained (`step`; with `interrupted` after a Ctrl-C).
                             Everything `SemIA.generate` needs, in one shareable file.
    train_state.safetensors  all trained weights (`G.*`, `D.*`, `S.*`), flattened optimiser states
                             (`opt.<name>.state.<idx>.<key>`) and RNG states (`rng.<name>`).
    train_state.json         the rest: step, optimiser param groups and step counts, config, a
                             hash of the training data; its `token` equals the safetensors one.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from semia.config import ConfigError, TrainConfig
from semia.errors import InputError
from semia.io import atomic_write_bytes, atomic_write_text

logger = logging.getLogger(__name__)

MODEL_FILE = "model.safetensors"
STATE_FILE = "train_state.safetensors"
STATE_JSON = "train_state.json"
FORMAT_TAG = "semia-gan"
# 2: defaults of GeneratorConfig.fill_* changed; 3: GenerateConfig.class_band and analogy_margin
# (see _LEGACY_DEFAULTS)
FORMAT_VERSION = 3


def _save_safetensors(
    path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str]
) -> None:
    # safetensors wants contiguous CPU tensors that share no storage.
    flat = {k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}
    atomic_write_bytes(path, st_save(flat, metadata=metadata))


def _load_safetensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    with safe_open(str(path), framework="pt") as f:
        metadata = f.metadata() or {}
    return st_load(path.read_bytes()), metadata


# --- configs <-> JSON ----------------------------------------------------------------------------


def config_to_dict(config: TrainConfig) -> dict[str, Any]:
    """A training config as a JSON-ready dict (tuples become lists)."""
    return config.to_dict()


# Settings whose default changed, keyed by the last format version that had the old default:
# a file of that version or older that lacks the field was made with the old value.
_LEGACY_DEFAULTS: dict[int, dict[str, dict[str, Any]]] = {
    1: {"generator": {"fill_changed": "off", "fill_margin": -1, "fill_dilate": 0}},
    2: {"generate": {"class_band": -1}},
}


def _drop_unknown(cls: type, data: dict[str, Any], where: str) -> dict[str, Any]:
    """`data` without the keys `cls` lacks (written by a newer semia), with a warning."""
    hints = typing.get_type_hints(cls)
    kept: dict[str, Any] = {}
    for key, value in data.items():
        if key not in hints:
            logger.warning("%s: ignoring unknown setting %s.%s", where, cls.__name__, key)
        elif isinstance(value, dict) and dataclasses.is_dataclass(hints[key]):
            kept[key] = _drop_unknown(hints[key], value, where)
        else:
            kept[key] = value
    return kept


def config_from_dict(
    data: dict[str, Any], version: int = FORMAT_VERSION, where: str = ""
) -> TrainConfig:
    """Rebuild the TrainConfig stored in a file of format `version`.

    Fields the file lacks take the default they had when it was written (`_LEGACY_DEFAULTS`),
    then today's; unknown fields (from a newer semia) are ignored with a warning; every value is
    validated (ConfigError names a bad one).
    """
    if not isinstance(data, dict):
        raise ConfigError("TrainConfig", f"expected a table of settings, got {data!r}")
    data = json.loads(json.dumps(data))  # a deep copy
    for last_version, fields in _LEGACY_DEFAULTS.items():
        if version <= last_version:
            for section, values in fields.items():
                stored = data.setdefault(section, {})
                if isinstance(stored, dict):
                    for key, value in values.items():
                        stored.setdefault(key, value)
    return TrainConfig.from_dict(_drop_unknown(TrainConfig, data, where or "stored config"))


def data_hash(image: np.ndarray, labels: np.ndarray, palette: np.ndarray) -> str:
    """A short hash of the training data, to refuse resuming on different inputs."""
    h = hashlib.sha256()
    for a in (image, labels, palette):
        a = np.ascontiguousarray(a)
        h.update(str((a.shape, a.dtype.str)).encode())
        h.update(a.tobytes())
    return h.hexdigest()[:16]


# --- inference file ------------------------------------------------------------------------------


@dataclass
class ModelFile:
    """Contents of a model.safetensors inference file.

    Attributes:
        generator_state: generator state dict (CPU tensors).
        source_image: (H, W, 3) float32 in [0, 1].
        source_labels: (H, W) int64 ids in 0..K-1.
        palette: (K, 3) uint8 label colours.
        config: the TrainConfig the model was trained with.
        label_kind: how the source label map coded its labels ("colour", "palette" or "ids",
            see `semia.io.LabelMap`), so that targets are read the same way.
        label_values: for "palette" / "ids" maps, the file value of each id.
        step: iterations trained; below `config.iters` when the run stopped early (None: not
            recorded, as in files written before semia recorded it: taken as finished).
        interrupted: the run stopped on an interrupt (Ctrl-C) at `step`.
    """

    generator_state: dict[str, torch.Tensor]
    source_image: np.ndarray
    source_labels: np.ndarray
    palette: np.ndarray
    config: TrainConfig
    label_kind: str = "colour"
    label_values: tuple[int, ...] | None = None
    step: int | None = None
    interrupted: bool = False


def resolve_model_path(path: str | Path) -> Path:
    """MODEL_DIR or a .safetensors file -> the inference file's path (InputError if missing)."""
    path = Path(path)
    if path.is_dir():
        path = path / MODEL_FILE
    if not path.is_file():
        raise InputError(
            f"no SemIA model at {path}: pass a folder written by `semia train` "
            f"(containing {MODEL_FILE}) or the .safetensors file itself"
        )
    return path


def save_model(path: str | Path, model: ModelFile) -> None:
    """Write the inference file atomically.

    Args:
        path: destination .safetensors file.
        model: weights, source image (H, W, 3) float32 [0, 1], labels (H, W) int64, palette
            (K, 3) uint8 and config.
    """
    tensors = {f"G.{k}": v for k, v in model.generator_state.items()}
    tensors["source_image"] = torch.from_numpy(np.ascontiguousarray(model.source_image, np.float32))
    tensors["source_labels"] = torch.from_numpy(np.ascontiguousarray(model.source_labels, np.int64))
    tensors["palette"] = torch.from_numpy(np.ascontiguousarray(model.palette, np.uint8))
    metadata = {
        "format": FORMAT_TAG,
        "version": str(FORMAT_VERSION),
        "num_classes": str(len(model.palette)),
        "config": json.dumps(config_to_dict(model.config)),
        "label_kind": model.label_kind,
        "label_values": json.dumps(model.label_values),
    }
    if model.step is not None:
        metadata["step"] = str(model.step)
    if model.interrupted:
        metadata["interrupted"] = "1"
    _save_safetensors(Path(path), tensors, metadata)


MAX_SOURCE_SIDE = 8192  # a model's stored source image may not be larger than this


def _model_error(path: Path, message: str) -> InputError:
    return InputError(f"model {path}: {message}; retrain it or use another model file")


def _check_model_tensors(path: Path, tensors: dict[str, torch.Tensor], num_classes: int) -> None:
    image, labels, palette = tensors["source_image"], tensors["source_labels"], tensors["palette"]
    if palette.dtype != torch.uint8 or palette.ndim != 2 or palette.shape[1] != 3:
        raise _model_error(path, f"its palette is {tuple(palette.shape)} {palette.dtype}")
    if not 1 <= palette.shape[0] <= 256 or palette.shape[0] != num_classes:
        raise _model_error(
            path, f"it has {palette.shape[0]} palette colours for {num_classes} classes"
        )
    if image.dtype != torch.float32 or image.ndim != 3 or image.shape[2] != 3:
        raise _model_error(path, f"its source image is {tuple(image.shape)} {image.dtype}")
    height, width = image.shape[:2]
    if not (8 <= height <= MAX_SOURCE_SIDE and 8 <= width <= MAX_SOURCE_SIDE):
        raise _model_error(path, f"its source image is {width}x{height} px")
    if not torch.isfinite(image).all() or image.min() < 0 or image.max() > 1:
        raise _model_error(path, "its source image holds NaN or values outside [0, 1]")
    if labels.dtype != torch.int64 or tuple(labels.shape) != (height, width):
        raise _model_error(path, f"its source labels are {tuple(labels.shape)} {labels.dtype}")
    if labels.min() < 0 or labels.max() >= num_classes:
        raise _model_error(path, f"its source labels hold ids outside 0..{num_classes - 1}")
    for name, value in tensors.items():
        if name.startswith("G.") and value.is_floating_point() and not torch.isfinite(value).all():
            raise _model_error(path, f"its weight {name[2:]} holds NaN or infinite values")


def _some_weights(names: list[str], shown: int = 3) -> str:
    """The first few of the G.* weight names, for a one-line message."""
    return ", ".join(f"G.{n}" for n in names[:shown]) + (", ..." if len(names) > shown else "")


def check_generator_state(
    path: Path, state: dict[str, torch.Tensor], generator: torch.nn.Module
) -> None:
    """InputError unless `state` (the stored G.* weights, prefix dropped) holds exactly the
    weights of `generator`, each of its shape; the message names a few of the others."""
    expected = generator.state_dict()
    missing = [k for k in expected if k not in state]
    if missing:
        raise InputError(
            f"model {path}: {len(missing)} of the {len(expected)} generator weights are "
            f"missing ({_some_weights(missing)}); it is not a complete semia model: retrain it "
            "or pass the right model folder"
        )
    unexpected = [k for k in state if k not in expected]
    reshaped = [k for k in expected if state[k].shape != expected[k].shape]
    if unexpected or reshaped:
        found = f"{len(unexpected)} unknown ({_some_weights(unexpected)})" if unexpected else ""
        if reshaped:
            found += "; " if found else ""
            found += f"{len(reshaped)} of another shape ({_some_weights(reshaped)})"
        raise InputError(
            f"model {path}: its generator weights do not fit this semia version's generator "
            f"({found}): retrain the model with this version"
        )


def load_model(path: str | Path) -> ModelFile:
    """Read an inference file written by `save_model` (MODEL_DIR or the file itself).

    Everything in it is checked against sane bounds before use (a crafted or damaged file gives
    an `InputError` naming it, never a huge allocation or a NaN output).
    """
    path = resolve_model_path(path)
    try:
        tensors, metadata = _load_safetensors(path)
    except Exception as e:  # safetensors raises its own error types for corrupt files
        raise _model_error(path, f"not a readable safetensors file ({e})") from None
    if metadata.get("format") != FORMAT_TAG:
        raise InputError(
            f"model {path}: not a SemIA model file (format tag {metadata.get('format')!r})"
        )
    try:
        version = int(metadata.get("version", ""))
    except ValueError:
        raise _model_error(path, f"bad format version {metadata.get('version')!r}") from None
    if version > FORMAT_VERSION:
        raise InputError(
            f"model {path}: format version {version}; this semia reads up to "
            f"{FORMAT_VERSION}: upgrade semia"
        )
    if version < 1:
        raise _model_error(path, f"bad format version {version}")
    missing = [k for k in ("source_image", "source_labels", "palette") if k not in tensors]
    if missing:
        raise _model_error(path, f"it lacks the tensors {missing} (the file is incomplete)")
    try:
        stored = json.loads(metadata.get("config", ""))
        config = config_from_dict(stored, version, str(path))
        num_classes = int(metadata.get("num_classes", ""))
        values = json.loads(metadata.get("label_values", "null"))
        step = int(metadata["step"]) if "step" in metadata else None
    except (ValueError, TypeError) as e:  # ConfigError is a ValueError
        raise _model_error(path, f"its settings are damaged ({e})") from None
    _check_model_tensors(path, tensors, num_classes)
    kind = metadata.get("label_kind", "colour")
    if kind not in ("colour", "palette", "ids"):
        raise _model_error(path, f"unknown label kind {kind!r}")
    if values is not None and (
        not isinstance(values, list)
        or len(values) != num_classes
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in values)
    ):
        raise _model_error(path, "its label values do not match its classes")
    if step is not None and step < 0:
        raise _model_error(path, f"its step count {step} is negative")
    generator_state = {k[2:]: v for k, v in tensors.items() if k.startswith("G.")}
    return ModelFile(
        generator_state=generator_state,
        source_image=tensors["source_image"].numpy(),
        source_labels=tensors["source_labels"].numpy(),
        palette=tensors["palette"].numpy(),
        config=config,
        label_kind=kind,
        label_values=None if values is None else tuple(values),
        step=step,
        interrupted=metadata.get("interrupted") == "1",
    )


def unfinished_note(path: Path, model: ModelFile) -> str | None:
    """A one-line warning when the model at `path` (its model.safetensors) stopped training
    before `config.iters`, saying how to finish it; None for a finished model."""
    total = model.config.iters
    if model.step is None or model.step >= total:
        return None
    why = "interrupted" if model.interrupted else "the run did not finish: killed, or still running"
    if has_train_state(path.parent):
        advice = (
            f"resume it with `semia train --resume --out {path.parent}` and the flags it was "
            "started with"
        )
    else:
        advice = "its training state is not beside it: train it again"
    return (
        f"model {path}: training stopped at step {model.step} of {total} ({why}); {advice} "
        "for the full result"
    )


# --- optimiser state <-> (tensors, JSON) ---------------------------------------------------------


def optimizer_state_to_flat(
    optimizer: torch.optim.Optimizer, prefix: str
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Split an optimiser state dict into tensors and a JSON-ready rest.

    Tensor entries become `<prefix>.state.<idx>.<key>` (copies); scalar tensors named `step`
    become numbers in the JSON part (Adam's step counts), as do all other non-tensor values and
    the param groups.
    """
    sd = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    rest: dict[str, dict[str, Any]] = {}
    for idx, entry in sd["state"].items():
        plain: dict[str, Any] = {}
        for key, value in entry.items():
            if isinstance(value, torch.Tensor) and not (key == "step" and value.numel() == 1):
                tensors[f"{prefix}.state.{idx}.{key}"] = value.detach().clone()
            elif isinstance(value, torch.Tensor):
                plain[key] = value.item()
            else:
                plain[key] = value
        rest[str(idx)] = plain
    return tensors, {"state": rest, "param_groups": sd["param_groups"]}


def optimizer_state_from_flat(
    optimizer: torch.optim.Optimizer,
    tensors: dict[str, torch.Tensor],
    meta: dict[str, Any],
    prefix: str,
) -> None:
    """Load into `optimizer` what `optimizer_state_to_flat` produced (inverse operation)."""
    state: dict[int, dict[str, Any]] = {}
    for idx_str, plain in meta["state"].items():
        entry: dict[str, Any] = {}
        for key, value in plain.items():
            entry[key] = torch.tensor(float(value)) if key == "step" else value
        state[int(idx_str)] = entry
    head = f"{prefix}.state."
    for name, value in tensors.items():
        if not name.startswith(head):
            continue
        idx_str, key = name[len(head) :].split(".", 1)
        state.setdefault(int(idx_str), {})[key] = value
    groups = []
    for g in meta["param_groups"]:
        g = dict(g)
        if "betas" in g:
            g["betas"] = tuple(g["betas"])
        groups.append(g)
    optimizer.load_state_dict({"state": state, "param_groups": groups})


# --- training state ------------------------------------------------------------------------------


def save_train_state(
    out_dir: str | Path, tensors: dict[str, torch.Tensor], meta: dict[str, Any]
) -> None:
    """Write train_state.safetensors + train_state.json atomically, tied by a shared token.

    Args:
        out_dir: the model folder.
        tensors: every tensor of the state (weights, optimiser moments, RNG states).
        meta: JSON-serialisable rest (must contain "step").
    """
    out_dir = Path(out_dir)
    token = f"{meta['step']}-{os.urandom(6).hex()}"
    meta = {**meta, "token": token}
    text = json.dumps(meta, indent=1)
    # Tensors first, JSON last: a kill between the two leaves mismatched tokens, which
    # `load_train_state` reports instead of silently mixing two states.
    _save_safetensors(out_dir / STATE_FILE, tensors, {"token": token})
    atomic_write_text(out_dir / STATE_JSON, text)


def has_train_state(out_dir: str | Path) -> bool:
    """Whether `out_dir` holds a resumable training state."""
    out_dir = Path(out_dir)
    return (out_dir / STATE_FILE).is_file() and (out_dir / STATE_JSON).is_file()


def damaged_state(out_dir: Path, reason: object) -> InputError:
    return InputError(
        f"the training state in {out_dir} is damaged ({reason}); start over in another folder, "
        f"or delete {STATE_FILE} and {STATE_JSON} there to restart from scratch"
    )


def load_train_state(out_dir: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read what `save_train_state` wrote; InputError if missing or inconsistent."""
    out_dir = Path(out_dir)
    if not has_train_state(out_dir):
        raise InputError(f"no training state in {out_dir} ({STATE_FILE} + {STATE_JSON})")
    try:
        tensors, st_meta = _load_safetensors(out_dir / STATE_FILE)
        meta = json.loads((out_dir / STATE_JSON).read_text(encoding="utf-8"))
    except Exception as e:  # safetensors and json raise their own types for damaged files
        raise damaged_state(out_dir, e) from None
    if not (
        isinstance(meta, dict)
        and isinstance(meta.get("step"), int)
        and meta["step"] >= 0
        and isinstance(meta.get("config"), dict)
        and isinstance(meta.get("optimizers"), dict)
    ):
        raise damaged_state(out_dir, "train_state.json lacks its step, config or optimisers")
    bad = [k for k, v in tensors.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        raise damaged_state(out_dir, f"{bad[0]} holds NaN or infinite values")
    if st_meta.get("token") != meta.get("token"):
        raise InputError(
            f"{out_dir / STATE_FILE} and {out_dir / STATE_JSON} belong to different checkpoints "
            "(the run was killed while saving); delete both to restart training from scratch"
        )
    return tensors, meta
