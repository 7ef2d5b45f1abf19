"""SemIA training: setup -> iterations -> checkpoints and previews -> the trained `SemIA`.

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

import io
import json
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw

from semia import checkpoint as ckpt
from semia.augment import augment_pair, augment_strength, paste_regions
from semia.config import TrainConfig
from semia.gan import SemIA, check_labels, image_to_tensor, one_hot, tensor_to_image
from semia.losses import (
    feature_matching_loss,
    fixed_point_loss,
    lsgan_d_loss,
    lsgan_g_loss,
    patch_coherence_loss,
    reconstruction_loss,
    semantic_alignment_loss,
)
from semia.models.discriminator import Discriminator
from semia.models.generator import Generator
from semia.models.segmenter import Segmenter
from semia.sheet import make_sheet

logger = logging.getLogger(__name__)

ProgressFn = Callable[[int, int, dict[str, float]], None]

LOG_FILE = "log.jsonl"
LOSS_PLOT = "loss.png"
PREVIEW_DIR = "previews"
# Config fields that may change between a checkpoint and its resumption.
_RESUMABLE_CHANGES = ("iters", "checkpoint_every", "preview_every")


# --- setup ---------------------------------------------------------------------------------------


@dataclass
class Networks:
    """The three trained networks and their optimisers."""

    G: Generator
    D: Discriminator
    S: Segmenter
    opt_g: torch.optim.Adam
    opt_d: torch.optim.Adam
    opt_s: torch.optim.Adam

    def named_optimizers(self) -> dict[str, torch.optim.Adam]:
        return {"G": self.opt_g, "D": self.opt_d, "S": self.opt_s}

    def named_modules(self) -> dict[str, torch.nn.Module]:
        return {"G": self.G, "D": self.D, "S": self.S}


def build_networks(
    num_classes: int, config: TrainConfig, seed: int, device: torch.device
) -> Networks:
    """Create G, D, S (initialised from `seed`, global RNG untouched) and their Adam optimisers."""
    devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        G = Generator(num_classes, config.generator).to(device)
        D = Discriminator(config.discriminator).to(device)
        S = Segmenter(num_classes, config.segmenter).to(device)
    betas = tuple(config.adam_betas)
    return Networks(
        G=G,
        D=D,
        S=S,
        opt_g=torch.optim.Adam(G.parameters(), lr=config.lr * config.lr_g_scale, betas=betas),
        opt_d=torch.optim.Adam(D.parameters(), lr=config.lr * config.lr_d_scale, betas=betas),
        opt_s=torch.optim.Adam(S.parameters(), lr=config.lr * config.lr_s_scale, betas=betas),
    )


def lr_factor(step: int, config: TrainConfig) -> float:
    """Learning-rate multiplier at `step`: 1 until decay_start * iters, then linear to 0."""
    start = config.decay_start * config.iters
    if step < start or config.iters <= start:
        return 1.0
    return max(0.0, 1.0 - (step - start) / (config.iters - start))


def _set_lr(nets: Networks, config: TrainConfig, step: int) -> float:
    f = lr_factor(step, config)
    scales = {"G": config.lr_g_scale, "D": config.lr_d_scale, "S": config.lr_s_scale}
    for name, opt in nets.named_optimizers().items():
        for group in opt.param_groups:
            group["lr"] = config.lr * scales[name] * f
    return f


@dataclass
class Run:
    """Everything one training run works with."""

    config: TrainConfig
    nets: Networks
    image: torch.Tensor  # (1,3,H,W) in [-1,1]
    ids: torch.Tensor  # (1,H,W) long
    source: torch.Tensor  # (1,K,H,W) one-hot of ids
    num_classes: int
    generator: torch.Generator  # crops, augmentation, swaps
    out_dir: Path


def setup_run(
    image: np.ndarray,
    labels: np.ndarray,
    num_classes: int,
    out_dir: Path,
    config: TrainConfig,
    *,
    device: torch.device,
    seed: int,
) -> Run:
    """Networks, optimisers, data tensors and RNG of a fresh run (inputs already validated)."""
    device = torch.device(device)
    ids = torch.from_numpy(labels).to(device).unsqueeze(0)  # (1,H,W)
    return Run(
        config=config,
        nets=build_networks(num_classes, config, seed, device),
        image=image_to_tensor(image, device),
        ids=ids,
        source=one_hot(ids, num_classes),
        num_classes=num_classes,
        generator=torch.Generator(device=device).manual_seed(seed),
        out_dir=out_dir,
    )


# --- one iteration -------------------------------------------------------------------------------


class _Clock:
    """Accumulates wall time per named component into a dict."""

    def __init__(self, sink: dict[str, float]) -> None:
        self.sink = sink
        self.last = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.sink[name] = self.sink.get(name, 0.0) + now - self.last
        self.last = now


def random_crop(
    image: torch.Tensor, ids: torch.Tensor, size: int, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """The same random window (at most size x size) of image (B,3,H,W) and ids (B,H,W)."""
    h, w = ids.shape[-2:]
    ch, cw = min(size, h), min(size, w)
    dev = generator.device
    y = int(torch.randint(0, h - ch + 1, (), generator=generator, device=dev))
    x = int(torch.randint(0, w - cw + 1, (), generator=generator, device=dev))
    return image[..., y : y + ch, x : x + cw], ids[..., y : y + ch, x : x + cw]


def _sum_terms(terms: dict[str, torch.Tensor], weights: dict[str, float]) -> torch.Tensor | None:
    total = None
    for name, value in terms.items():
        part = weights[name] * value
        total = part if total is None else total + part
    return total


def _reconstruction_step(
    run: Run, img_aug: torch.Tensor, ids_aug: torch.Tensor, clock: _Clock
) -> dict[str, float]:
    """Zero-reconstruction: G(I_aug, P_aug, P_aug) -> I_aug, SFT params -> identity."""
    w = run.config.loss_weights
    G, opt_g = run.nets.G, run.nets.opt_g
    oh = one_hot(ids_aug, run.num_classes)
    fake, params = G.translate(img_aug, oh, oh)
    clock.lap("g_forward")
    terms: dict[str, torch.Tensor] = {}
    if w.reconstruction > 0:
        terms["rec_l1"] = reconstruction_loss(fake, img_aug)
    if w.fixed_point > 0:
        terms["fixed_point"] = fixed_point_loss(params)
    weights = {"rec_l1": w.reconstruction, "fixed_point": w.fixed_point}
    total = _sum_terms(terms, weights)
    clock.lap("losses")
    if total is not None:
        opt_g.zero_grad(set_to_none=True)
        total.backward()
        clock.lap("backward")
        opt_g.step()
        clock.lap("optim")
    return {k: float(v.detach()) for k, v in terms.items()}


def _generator_terms(
    run: Run,
    fake: torch.Tensor,
    tgt_img: torch.Tensor,
    tgt_ids: torch.Tensor,
    oh_tgt: torch.Tensor,
    fake_d: tuple[list[torch.Tensor], list[torch.Tensor]] | None,
    real_feats: list[torch.Tensor] | None,
) -> dict[str, torch.Tensor]:
    """The weighted-on loss terms of a sample step's generator (unweighted values)."""
    w = run.config.loss_weights
    terms: dict[str, torch.Tensor] = {}
    if fake_d is not None and w.gan > 0:
        terms["g_gan"] = lsgan_g_loss(fake_d[0])
    if fake_d is not None and real_feats is not None and w.feature_matching > 0:
        terms["feature_matching"] = feature_matching_loss(
            [f.detach() for f in real_feats], fake_d[1]
        )
    if w.semantic_alignment > 0:
        run.nets.S.eval()
        terms["alignment"] = semantic_alignment_loss(run.nets.S(fake), tgt_ids)
        run.nets.S.train()
    if w.patch_coherence > 0:
        terms["patch"] = patch_coherence_loss(
            fake, oh_tgt, run.image, run.source, run.config.patch_coherence, run.generator
        )
    if w.sample_l1 > 0:
        terms["sample_l1"] = reconstruction_loss(fake, tgt_img)
    return terms


def _term_weights(config: TrainConfig) -> dict[str, float]:
    w = config.loss_weights
    return {
        "g_gan": w.gan,
        "feature_matching": w.feature_matching,
        "alignment": w.semantic_alignment,
        "patch": w.patch_coherence,
        "sample_l1": w.sample_l1,
    }


def _sample_step(
    run: Run,
    src: tuple[torch.Tensor, torch.Tensor],
    tgt: tuple[torch.Tensor, torch.Tensor],
    clock: _Clock,
) -> dict[str, float]:
    """G(src image, src layout, tgt layout) should look like the real tgt image."""
    cfg, nets = run.config, run.nets
    w = cfg.loss_weights
    use_d = w.gan > 0 or w.feature_matching > 0
    (src_img, src_ids), (tgt_img, tgt_ids) = src, tgt
    oh_src = one_hot(src_ids, run.num_classes)
    oh_tgt = one_hot(tgt_ids, run.num_classes)
    g_params = list(nets.G.parameters())
    d_params = list(nets.D.parameters())
    weights = _term_weights(cfg)
    out: dict[str, float] = {}
    for k in range(max(1, cfg.g_steps)):
        fake = nets.G(src_img, oh_src, oh_tgt)
        clock.lap("g_forward")
        fake_d = real_d = None
        if use_d:
            real_d = nets.D(tgt_img)
            fake_d = nets.D(fake)
            clock.lap("d_forward")
        terms = _generator_terms(
            run, fake, tgt_img, tgt_ids, oh_tgt, fake_d, real_d[1] if real_d else None
        )
        g_total = _sum_terms(terms, weights)
        # The first pass also updates D, from the same forward passes (fake_d is reused).
        d_loss = None
        if use_d and k == 0 and cfg.d_steps > 0:
            d_loss = lsgan_d_loss(real_d[0], fake_d[0])
        clock.lap("losses")
        nets.opt_g.zero_grad(set_to_none=True)
        nets.opt_d.zero_grad(set_to_none=True)
        if g_total is not None:
            g_total.backward(inputs=g_params, retain_graph=d_loss is not None)
        if d_loss is not None:
            d_loss.backward(inputs=d_params)
        clock.lap("backward")
        if g_total is not None:
            nets.opt_g.step()
        if d_loss is not None:
            nets.opt_d.step()
        clock.lap("optim")
        if k == 0:
            out = {name: float(v.detach()) for name, v in terms.items()}
            if d_loss is not None:
                out["d_loss"] = float(d_loss.detach())
    # Further D steps (original schedule), each on a fresh fake from the updated G.
    for _ in range(cfg.d_steps - 1 if use_d else 0):
        with torch.no_grad():
            fake = nets.G(src_img, oh_src, oh_tgt)
        clock.lap("g_forward")
        d_loss = lsgan_d_loss(nets.D(tgt_img)[0], nets.D(fake)[0])
        clock.lap("d_forward")
        nets.opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        clock.lap("backward")
        nets.opt_d.step()
        clock.lap("optim")
    return out


def _segmenter_step(
    run: Run, img: torch.Tensor, ids: torch.Tensor, clock: _Clock
) -> dict[str, float]:
    """S learns to segment a real (augmented) image."""
    loss = semantic_alignment_loss(run.nets.S(img), ids)
    run.nets.opt_s.zero_grad(set_to_none=True)
    loss.backward()
    run.nets.opt_s.step()
    clock.lap("s_step")
    return {"seg": float(loss.detach())}


def train_iteration(run: Run, step: int) -> dict[str, Any]:
    """Run iteration `step` (0-based); returns its log record (losses, lr, seconds per part)."""
    cfg = run.config
    timings: dict[str, float] = {}
    clock = _Clock(timings)
    t0 = clock.last
    lr_f = _set_lr(run.nets, cfg, step)
    full = cfg.crop_size <= 0 or step >= cfg.iters - cfg.full_size_iters
    image, ids = run.image, run.ids
    if not full:
        image, ids = random_crop(image, ids, cfg.crop_size, run.generator)
    strength = augment_strength(step, cfg.augment)
    img_aug, ids_aug = augment_pair(image, ids, strength, cfg.augment, run.generator)
    swap = bool(
        torch.rand((), generator=run.generator, device=run.generator.device) < cfg.swap_prob
    )
    clock.lap("augment")
    is_rec = cfg.rec_every > 0 and step % cfg.rec_every == 0
    if is_rec:
        losses = _reconstruction_step(run, img_aug, ids_aug, clock)
    else:
        pasted = paste_regions(img_aug, ids_aug, strength, cfg.augment, run.generator)
        src, tgt = (image, ids), pasted
        if swap:
            src, tgt = tgt, src
        losses = _sample_step(run, src, tgt, clock)
    if cfg.s_every > 0 and step % cfg.s_every == 0 and cfg.loss_weights.semantic_alignment > 0:
        losses.update(_segmenter_step(run, img_aug, ids_aug, clock))
    timings["total"] = time.perf_counter() - t0
    return {
        "step": step + 1,
        "kind": "rec" if is_rec else "sample",
        "size": list(ids.shape[-2:]),
        "strength": round(strength, 4),
        "lr_factor": round(lr_f, 5),
        **{k: round(v, 6) for k, v in losses.items()},
        "seconds": {k: round(v, 5) for k, v in timings.items()},
    }


# --- checkpoints ---------------------------------------------------------------------------------


def _save_state(run: Run, step: int, data_hash: str) -> None:
    tensors: dict[str, torch.Tensor] = {}
    meta: dict[str, Any] = {
        "step": step,
        "config": ckpt.config_to_dict(run.config),
        "data_hash": data_hash,
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


def _restore_state(run: Run, data_hash: str) -> int:
    tensors, meta = ckpt.load_train_state(run.out_dir)
    if meta.get("data_hash") != data_hash:
        raise ValueError(
            f"the training state in {run.out_dir} was made from another image or label map; "
            "use another output folder, or drop --resume to start over"
        )
    stored = dict(meta["config"])
    current = json.loads(json.dumps(ckpt.config_to_dict(run.config)))  # tuples -> lists
    diff = sorted(
        k
        for k in set(stored) | set(current)
        if stored.get(k) != current.get(k) and k not in _RESUMABLE_CHANGES
    )
    if diff:
        raise ValueError(
            f"cannot resume {run.out_dir}: the config differs in {diff}; resume with the "
            "settings of the interrupted run (only iters and the checkpoint/preview intervals "
            "may change)"
        )
    for name, module in run.nets.named_modules().items():
        head = f"{name}."
        module.load_state_dict(
            {k[len(head) :]: v for k, v in tensors.items() if k.startswith(head)}
        )
    for name, opt in run.nets.named_optimizers().items():
        ckpt.optimizer_state_from_flat(opt, tensors, meta["optimizers"][name], f"opt.{name}")
    run.generator.set_state(tensors["rng.train"])
    return int(meta["step"])


def _model_file(run: Run, image: np.ndarray, labels: np.ndarray, palette: np.ndarray):
    state = {k: v.detach().cpu() for k, v in run.nets.G.state_dict().items()}
    return ckpt.ModelFile(state, image, labels, palette, run.config)


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


# --- previews and loss curves --------------------------------------------------------------------


def _png_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


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
    ckpt.atomic_write_bytes(run.out_dir / PREVIEW_DIR / f"step_{step:05d}.png", _png_bytes(sheet))


_CURVES = (
    ("rec_l1", "sample_l1"),
    ("g_gan", "d_loss"),
    ("feature_matching",),
    ("alignment", "seg"),
    ("patch", "fixed_point"),
)
_COLOURS = ((31, 119, 180), (214, 39, 40), (44, 160, 44))


def plot_losses(records: Sequence[dict[str, Any]], path: Path) -> None:
    """Draw the loss curves of a log (smoothed, one panel per loss group) to a PNG with PIL."""
    panel_w, panel_h, margin = 640, 150, 44
    panels = [g for g in _CURVES if any(k in r for r in records for k in g)]
    img = Image.new(
        "RGB", (panel_w + margin + 10, max(1, len(panels)) * (panel_h + 30) + 10), "white"
    )
    draw = ImageDraw.Draw(img)
    last_step = max((r["step"] for r in records), default=1)
    for p, group in enumerate(panels):
        top = 10 + p * (panel_h + 30)
        left = margin
        draw.rectangle([left, top, left + panel_w, top + panel_h], outline=(0, 0, 0))
        series = []
        for key in group:
            pts = [(r["step"], r[key]) for r in records if key in r and math.isfinite(r[key])]
            if not pts:
                continue
            steps = np.array([s for s, _ in pts], np.float64)
            vals = np.array([v for _, v in pts], np.float64)
            win = max(1, len(vals) // 50)
            smooth = np.convolve(vals, np.ones(win) / win, mode="valid")
            series.append((key, steps[win - 1 :], smooth))
        if not series:
            continue
        lo = min(float(s.min()) for _, _, s in series)
        hi = max(float(s.max()) for _, _, s in series)
        span = hi - lo if hi > lo else 1.0
        for i, (key, xs, ys) in enumerate(series):
            colour = _COLOURS[i % len(_COLOURS)]
            px = left + xs / last_step * panel_w
            py = top + panel_h - (ys - lo) / span * panel_h
            draw.line(list(zip(px.tolist(), py.tolist(), strict=True)), fill=colour, width=1)
            draw.text((left + 6 + 150 * i, top + 4), key, fill=colour)
        draw.text((2, top), f"{hi:.3g}", fill=(0, 0, 0))
        draw.text((2, top + panel_h - 10), f"{lo:.3g}", fill=(0, 0, 0))
        draw.text((left + panel_w - 60, top + panel_h + 4), f"step {last_step}", fill=(0, 0, 0))
    ckpt.atomic_write_bytes(path, _png_bytes(np.asarray(img)))


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


def _check_inputs(
    image: np.ndarray, labels: np.ndarray, palette: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or not np.issubdtype(image.dtype, np.floating):
        raise ValueError(
            f"image must be a (H, W, 3) float array in [0, 1], got shape {image.shape} and dtype "
            f"{image.dtype}: read it with semia.io.read_image"
        )
    if not np.isfinite(image).all() or image.min() < 0.0 or image.max() > 1.0:
        raise ValueError("image values must be finite and in [0, 1]")
    palette = np.asarray(palette)
    if palette.ndim != 2 or palette.shape[1] != 3 or palette.shape[0] < 1:
        raise ValueError(f"palette must be a (K, 3) uint8 array, got shape {palette.shape}")
    labels = check_labels(labels, len(palette), "the source label map")
    if labels.shape != image.shape[:2]:
        raise ValueError(
            f"the label map is {labels.shape[1]}x{labels.shape[0]} px but the image is "
            f"{image.shape[1]}x{image.shape[0]} px: they must have the same size"
        )
    return image.astype(np.float32, copy=False), labels, palette.astype(np.uint8, copy=False)


def train(
    image: np.ndarray,
    labels: np.ndarray,
    palette: np.ndarray,
    out_dir: Path,
    config: TrainConfig = TrainConfig(),
    *,
    device: str | torch.device = "cpu",
    seed: int = 0,
    preview_targets: Sequence[np.ndarray] = (),
    resume: bool = False,
    progress: ProgressFn | None = None,
) -> SemIA:
    """Train SemIA on one image and its label map.

    Args:
        image: (H, W, 3) float32 in [0, 1], the source photo.
        labels: (H, W) int64 ids in 0..K-1, its label map.
        palette: (K, 3) uint8 colour of each id (stored for `generate` and previews).
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
        The trained model (generator in eval mode on `device`).

    Raises:
        ValueError: bad inputs; out_dir holds a training state but resume is False; resuming with
            other data or an incompatible config.
        KeyboardInterrupt: re-raised after a checkpoint of the last finished iteration was saved.
    """
    image, labels, palette = _check_inputs(image, labels, palette)
    targets = [
        check_labels(t, len(palette), f"preview target {i}") for i, t in enumerate(preview_targets)
    ]
    out_dir = Path(out_dir)
    device = torch.device(device)
    if ckpt.has_train_state(out_dir) and not resume:
        raise ValueError(
            f"{out_dir} already holds a training run: resume it (--resume), or choose another "
            "output folder"
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    run = setup_run(image, labels, len(palette), out_dir, config, device=device, seed=seed)
    nets = run.nets
    data_hash = ckpt.data_hash(image, labels, palette)
    start = 0
    if resume and ckpt.has_train_state(out_dir):
        start = _restore_state(run, data_hash)
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
                    _save_state(run, step, data_hash)
                    ckpt.save_model(
                        out_dir / ckpt.MODEL_FILE, _model_file(run, image, labels, palette)
                    )
                if targets and config.preview_every > 0 and step % config.preview_every == 0:
                    _write_preview(run, step, targets, palette)
    except KeyboardInterrupt:
        logger.warning("interrupted: saving a checkpoint at iteration %d", step)
        _save_state(run, step, data_hash)
        raise
    _save_state(run, step, data_hash)
    ckpt.save_model(out_dir / ckpt.MODEL_FILE, _model_file(run, image, labels, palette))
    if targets:
        _write_preview(run, step, targets, palette)
    plot_losses(read_log(out_dir), out_dir / LOSS_PLOT)
    return SemIA(nets.G, image, labels, palette, config)


_MAIN_LOSSES = ("rec_l1", "g_gan", "d_loss", "feature_matching", "alignment", "patch", "seg")


def _main_losses(record: dict[str, Any]) -> dict[str, float]:
    return {k: record[k] for k in _MAIN_LOSSES if k in record}
