"""SemIA training loop: setup -> iterations (`steps`) -> checkpoints and previews -> weights.

One iteration (`TrainConfig` holds every knob; `LossWeights` every loss weight, 0 = off):

1. Data. An aligned random crop of (I, P) (first phase; the last `full_size_iters` iterations use
   the whole image, since G is fully convolutional the crop-trained weights carry over), then the
   progressive joint augmentation (I_aug, P_aug) whose strength ramps up over the first iterations;
   on sample steps a pasted region may add a large class change (augment.paste_regions).
2. Every `rec_every`-th iteration is a zero-reconstruction step: G(I_aug, P_aug, P_aug) must return
   I_aug (L1) while the fixed-point loss pushes every SFT (gamma, beta) to (1, 0).
3. The others are sample steps: G(I, P, P_aug) must look like the real I_aug (source and target
   swapped at random). One fused step updates G and D from a single G forward and two D forwards
   (pix2pixHD-style: both losses use the same D; `backward(inputs=...)` keeps their gradients
   apart): least-squares GAN, feature matching, semantic alignment through the segmenter S, and
   the semantics-aware patch coherence against the whole source image. Extra G steps
   (`g_steps` > 1) and D steps (`d_steps` > 1) reproduce the original's heavier schedule.
4. S learns to segment the real augmented image every `s_every`-th iteration.
5. Adam with TTUR learning rates, constant, then decaying linearly to 0 after `decay_start`.

The loop writes, inside `out_dir`: model.safetensors (inference file, also at every checkpoint),
train_state.safetensors + .json (resumable: weights, optimiser and RNG states), log.jsonl (one
line per iteration: losses, lr, augmentation strength, seconds per component), previews/step_N.png
(sheets for the preview targets) and, at the end, loss.png (loss curves).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from semia.config import TrainConfig
from semia.errors import InputError
from semia.gan import checkpoint as ckpt
from semia.gan.conditions import photo_edges, uses_edges
from semia.gan.networks import Generator
from semia.gan.steps import Run, setup_run, train_iteration
from semia.gan.tensors import one_hot, tensor_to_image
from semia.io import LabelMap, as_ids, as_image, folder_lock, remove_stale_temps, write_image
from semia.viz import make_sheet, plot_losses

logger = logging.getLogger(__name__)

ProgressFn = Callable[[int, int, dict[str, float]], None]

LOG_FILE = "log.jsonl"
LOSS_PLOT = "loss.png"
PREVIEW_DIR = "previews"
# Config fields that may change between a checkpoint and its resumption.
_RESUMABLE_CHANGES = ("iters", "checkpoint_every", "preview_every")


# --- checkpoints ---------------------------------------------------------------------------------


def _save_state(run: Run, step: int, data_hash: str, seed: int) -> None:
    tensors: dict[str, torch.Tensor] = {}
    meta: dict[str, Any] = {
        "step": step,
        "config": ckpt.config_to_dict(run.config),
        "data_hash": data_hash,
        "seed": seed,
        "optimizers": {},
    }
    for name, module in run.nets.named_modules().items():
        tensors.update({f"{name}.{k}": v for k, v in module.state_dict().items()})
    for name, opt in run.nets.named_optimizers().items():
        flat, rest = ckpt.optimizer_state_to_flat(opt, f"opt.{name}")
        tensors.update(flat)
        meta["optimizers"][name] = rest
    tensors["rng.train"] = run.generator.get_state()
    ckpt.save_train_state(run.out_dir, tensors, meta)


class ResumeMismatch(InputError):
    """Resuming with settings that differ from the interrupted run's.

    Attributes:
        differences: (dotted setting name, stored value, current value) for each difference.
    """

    def __init__(self, out_dir: Path, differences: list[tuple[str, Any, Any]]) -> None:
        listing = "; ".join(f"{k} was {a!r}, now {b!r}" for k, a, b in differences)
        super().__init__(
            f"cannot resume {out_dir}: settings differ from the interrupted run's ({listing}); "
            "resume with the stored values (only iters and the checkpoint / preview intervals "
            "may change, not the seed), or start over in another folder"
        )
        self.differences = differences


def _config_differences(
    stored: dict[str, Any], current: dict[str, Any], prefix: str = ""
) -> list[tuple[str, Any, Any]]:
    """Settings (dotted names) whose stored and current values differ, resumable ones aside."""
    found = []
    for key in sorted(set(stored) | set(current)):
        a, b = stored.get(key), current.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            found += _config_differences(a, b, f"{prefix}{key}.")
        elif a != b and f"{prefix}{key}" not in _RESUMABLE_CHANGES:
            found.append((f"{prefix}{key}", a, b))
    return found


def _restore_state(run: Run, data_hash: str, seed: int) -> int:
    tensors, meta = ckpt.load_train_state(run.out_dir)
    if meta.get("data_hash") != data_hash:
        raise InputError(
            f"the training state in {run.out_dir} was made from another image or label map; "
            "use another output folder, or start over there without resuming"
        )
    differences = _config_differences(meta["config"], ckpt.config_to_dict(run.config))
    if "seed" in meta and meta["seed"] != seed:  # states saved before it was stored lack it
        differences.append(("seed", meta["seed"], seed))
    if differences:
        raise ResumeMismatch(run.out_dir, differences)
    try:
        for name, module in run.nets.named_modules().items():
            head = f"{name}."
            module.load_state_dict(
                {k[len(head) :]: v for k, v in tensors.items() if k.startswith(head)}
            )
        for name, opt in run.nets.named_optimizers().items():
            ckpt.optimizer_state_from_flat(opt, tensors, meta["optimizers"][name], f"opt.{name}")
        run.generator.set_state(tensors["rng.train"])
    except (KeyError, RuntimeError, TypeError, ValueError, IndexError) as e:
        raise ckpt.damaged_state(run.out_dir, e) from None
    return int(meta["step"])


def _model_file(
    run: Run, image: np.ndarray, labels: LabelMap, step: int, interrupted: bool = False
) -> ckpt.ModelFile:
    state = {k: v.detach().cpu() for k, v in run.nets.G.state_dict().items()}
    return ckpt.ModelFile(
        state, image, labels.ids, labels.palette, run.config, labels.kind, labels.values,
        step, interrupted,
    )  # fmt: skip


def _truncate_log(path: Path, step: int) -> None:
    """Drop log records past `step` (iterations redone after a resume)."""
    if not path.is_file():
        return
    kept = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            if json.loads(line)["step"] <= step:
                kept.append(line)
        except (json.JSONDecodeError, KeyError, TypeError):
            continue  # a line cut short by the kill
    ckpt.atomic_write_text(path, "".join(f"{line}\n" for line in kept))


# --- previews ---
@torch.no_grad()
def _write_preview(run: Run, step: int, targets: Sequence[np.ndarray], palette: np.ndarray) -> None:
    """Sheet: a source row (label map | photo), then one row per target (label map | output)."""
    G = run.nets.G
    was_training = G.training
    G.eval()
    rows = [[palette[run.ids[0].cpu().numpy()], tensor_to_image(run.image)]]
    for t in targets:
        ids = torch.from_numpy(t).to(run.ids.device).unsqueeze(0)  # (1,H2,W2)
        out = G(run.image, run.source, one_hot(ids, run.num_classes))
        rows.append([palette[t], tensor_to_image(out)])
    G.train(was_training)
    captions = [f"source (step {step})"] + [f"preview target {i}" for i in range(len(targets))]
    sheet = make_sheet(
        rows, titles=["label map", "image"], captions=captions, cell_height=int(run.ids.shape[-2])
    )
    write_image(run.out_dir / PREVIEW_DIR / f"step_{step:05d}.png", sheet)


def read_log(out_dir: str | Path) -> list[dict[str, Any]]:
    """The records of out_dir/log.jsonl (lines cut short by a kill are skipped)."""
    path = Path(out_dir) / LOG_FILE
    records = []
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return records


# --- the loop ------------------------------------------------------------------------------------


def train(
    image: np.ndarray,
    labels: LabelMap,
    out_dir: Path,
    config: TrainConfig = TrainConfig(),
    *,
    device: str | torch.device = "cpu",
    seed: int = 0,
    preview_targets: Sequence[np.ndarray] = (),
    resume: bool = False,
    progress: ProgressFn | None = None,
) -> Generator:
    """Train SemIA on one image and its label map.

    Args:
        image: (H, W, 3) float32 in [0, 1], the source photo.
        labels: its label map (ids, palette and how the file coded labels are all stored in
            the model file, so `generate` reads targets the same way).
        out_dir: model folder; receives model.safetensors, the training state, log.jsonl,
            previews/ and loss.png.
        config: the training schedule, networks and loss weights.
        device: where to train ("cpu", "cuda", a torch.device); never chosen here.
        seed: initialises the networks and every random draw (same seed, same device -> same
            result).
        preview_targets: (H2, W2) int64 id maps drawn on preview sheets every
            `config.preview_every` iterations and at the end.
        resume: continue from out_dir's training state (weights, optimisers, RNG, step).
        progress: called as progress(step, total, losses) after every iteration.

    Returns:
        The trained generator (on `device`); `semia.SemIA.train` wraps it into a model.

    Raises:
        InputError: bad inputs; out_dir holds a training state but resume is False; resuming with
            other data, an incompatible config or another seed.
        KeyboardInterrupt: re-raised after a checkpoint of the last finished iteration was saved.
    """
    image = as_image(image, "image", min_size=8)
    palette = labels.palette
    ids = as_ids(
        labels, "the source label map", num_classes=len(palette), shape=image.shape[:2], min_size=8
    )
    targets = [
        as_ids(t, f"preview target {i}", num_classes=len(palette), min_size=8)
        for i, t in enumerate(preview_targets)
    ]
    out_dir = Path(out_dir)
    device = torch.device(device)
    with folder_lock(out_dir, "model folder"):
        for tmp in remove_stale_temps(out_dir):
            logger.info("removed %s, left by an interrupted write", tmp)
        return _train_locked(
            image, labels, ids, targets, out_dir, config, device, seed, resume, progress
        )


def _train_locked(
    image: np.ndarray,
    labels: LabelMap,
    ids: np.ndarray,
    targets: list[np.ndarray],
    out_dir: Path,
    config: TrainConfig,
    device: torch.device,
    seed: int,
    resume: bool,
    progress: ProgressFn | None,
) -> Generator:
    palette = labels.palette
    if ckpt.has_train_state(out_dir) and not resume:
        raise InputError(
            f"{out_dir} already holds a training run: resume it, or choose another output folder"
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    edges = photo_edges(image) if uses_edges(config.condition) else None
    run = setup_run(
        image, ids, len(palette), out_dir, config, device=device, seed=seed, edges=edges
    )
    nets = run.nets
    data_hash = ckpt.data_hash(image, ids, palette)
    start = 0
    if resume and ckpt.has_train_state(out_dir):
        start = _restore_state(run, data_hash, seed)
        logger.info("resuming %s at iteration %d of %d", out_dir, start, config.iters)
    elif resume:
        logger.warning("nothing to resume in %s: starting from scratch", out_dir)
    log_path = out_dir / LOG_FILE
    if start:
        _truncate_log(log_path, start)
    else:
        log_path.unlink(missing_ok=True)
    for module in nets.named_modules().values():
        module.train()

    def checkpoint(step: int, interrupted: bool = False) -> None:
        """The training state and the model file, both at `step`."""
        _save_state(run, step, data_hash, seed)
        model = _model_file(run, image, labels, step, interrupted)
        ckpt.save_model(out_dir / ckpt.MODEL_FILE, model)

    step = start
    try:
        with log_path.open("a", encoding="utf-8") as log:
            while step < config.iters:
                record = train_iteration(run, step)
                step += 1
                log.write(json.dumps(record) + "\n")
                log.flush()
                if progress is not None:
                    progress(step, config.iters, _main_losses(record))
                if config.checkpoint_every > 0 and step % config.checkpoint_every == 0:
                    checkpoint(step)
                if (
                    targets
                    and config.preview_every > 0
                    and step % config.preview_every == 0
                    and config.condition == "labels"
                ):
                    _write_preview(run, step, targets, palette)
    except KeyboardInterrupt:
        logger.warning("interrupted: saving a checkpoint at iteration %d", step)
        checkpoint(step, interrupted=True)
        raise
    checkpoint(step)
    if targets and config.condition == "labels":  # previews draw label-map targets only
        _write_preview(run, step, targets, palette)
    write_image(out_dir / LOSS_PLOT, plot_losses(read_log(out_dir)))
    return nets.G.eval()


_MAIN_LOSSES = ("rec_l1", "g_gan", "d_loss", "feature_matching", "alignment", "patch", "seg")


def _main_losses(record: dict[str, Any]) -> dict[str, float]:
    return {k: record[k] for k in _MAIN_LOSSES if k in record}
