"""Checkpoints: the slim inference file and the resumable training state.

Nothing here is pickled. Tensors go into safetensors files, everything else (configs, optimiser
hyper-parameters, step counters) into JSON, so every file loads with `safetensors` alone and can be
inspected with any JSON reader. All writes are atomic: the bytes go to a temporary file in the same
folder, which then replaces the destination with `os.replace` (a kill mid-write leaves the previous
file intact).

Files (inside a model folder):
    model.safetensors        generator weights (`G.*`), the source image and label map, the palette;
                             metadata: format tag, version, number of classes, the TrainConfig JSON.
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

from semia.config import TrainConfig
from semia.io import atomic_save

logger = logging.getLogger(__name__)

MODEL_FILE = "model.safetensors"
STATE_FILE = "train_state.safetensors"
STATE_JSON = "train_state.json"
FORMAT_TAG = "semia-gan"
FORMAT_VERSION = 1


# --- atomic writes -------------------------------------------------------------------------------


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write `data` to `path` atomically and durably (semia.io.atomic_save, synced to disk)."""

    def save(tmp: str) -> None:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())

    atomic_save(path, save)


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write UTF-8 `text` to `path` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


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


def config_to_dict(config: Any) -> dict[str, Any]:
    """A (nested) frozen config dataclass as a JSON-ready dict (tuples become lists)."""
    return dataclasses.asdict(config)


def config_from_dict(cls: type, data: dict[str, Any]) -> Any:
    """Rebuild a (nested) config dataclass from `config_to_dict` output.

    Missing fields take their defaults; unknown fields (e.g. from a newer version) are ignored with
    a warning; lists become tuples where the field's default is a tuple.
    """
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    names = {f.name for f in dataclasses.fields(cls)}
    for key in data:
        if key not in names:
            logger.warning("ignoring unknown %s field %r in a stored config", cls.__name__, key)
    for f in dataclasses.fields(cls):
        if f.name not in data:
            continue
        value = data[f.name]
        hint = hints[f.name]
        if dataclasses.is_dataclass(hint) and isinstance(value, dict):
            value = config_from_dict(hint, value)
        elif isinstance(value, list):
            value = tuple(tuple(v) if isinstance(v, list) else v for v in value)
        kwargs[f.name] = value
    return cls(**kwargs)


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
    """

    generator_state: dict[str, torch.Tensor]
    source_image: np.ndarray
    source_labels: np.ndarray
    palette: np.ndarray
    config: TrainConfig
    label_kind: str = "colour"
    label_values: tuple[int, ...] | None = None


def resolve_model_path(path: str | Path) -> Path:
    """MODEL_DIR or a .safetensors file -> the inference file's path (ValueError if missing)."""
    path = Path(path)
    if path.is_dir():
        path = path / MODEL_FILE
    if not path.is_file():
        raise ValueError(
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
    _save_safetensors(Path(path), tensors, metadata)


def load_model(path: str | Path) -> ModelFile:
    """Read an inference file written by `save_model` (MODEL_DIR or the file itself)."""
    path = resolve_model_path(path)
    try:
        tensors, metadata = _load_safetensors(path)
    except Exception as e:  # safetensors raises its own error types for corrupt files
        raise ValueError(f"{path} is not a readable safetensors file ({e})") from e
    if metadata.get("format") != FORMAT_TAG:
        raise ValueError(
            f"{path} is not a SemIA model file (format tag {metadata.get('format')!r})"
        )
    if int(metadata.get("version", "0")) > FORMAT_VERSION:
        raise ValueError(
            f"{path} has format version {metadata['version']}; this semia reads up to "
            f"{FORMAT_VERSION}: upgrade semia"
        )
    missing = [k for k in ("source_image", "source_labels", "palette") if k not in tensors]
    if missing:
        raise ValueError(f"{path} lacks the tensors {missing}: the file is incomplete")
    config = config_from_dict(TrainConfig, json.loads(metadata["config"]))
    generator_state = {k[2:]: v for k, v in tensors.items() if k.startswith("G.")}
    values = json.loads(metadata.get("label_values", "null"))
    return ModelFile(
        generator_state=generator_state,
        source_image=tensors["source_image"].numpy(),
        source_labels=tensors["source_labels"].numpy(),
        palette=tensors["palette"].numpy(),
        config=config,
        label_kind=metadata.get("label_kind", "colour"),
        label_values=None if values is None else tuple(values),
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


def load_train_state(out_dir: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read what `save_train_state` wrote; ValueError if missing or inconsistent."""
    out_dir = Path(out_dir)
    if not has_train_state(out_dir):
        raise ValueError(f"no training state in {out_dir} ({STATE_FILE} + {STATE_JSON})")
    tensors, st_meta = _load_safetensors(out_dir / STATE_FILE)
    meta = json.loads((out_dir / STATE_JSON).read_text(encoding="utf-8"))
    if st_meta.get("token") != meta.get("token"):
        raise ValueError(
            f"{out_dir / STATE_FILE} and {out_dir / STATE_JSON} belong to different checkpoints "
            "(the run was killed while saving); delete both to restart training from scratch"
        )
    return tensors, meta
