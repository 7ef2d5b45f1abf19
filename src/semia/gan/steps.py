"""One SemIA training iteration: networks and optimisers, data crops, the step maths.

See `semia.gan.trainer` for the whole schedule; `train_iteration` runs one iteration (a
zero-reconstruction step or a fused G/D sample step, and a segmenter step) and returns its log
record.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from semia.config import PatchConfig, TrainConfig
from semia.errors import InputError
from semia.gan.augment import augment_pair, augment_strength, paste_regions
from semia.gan.conditions import (
    condition_channels,
    label_classes,
    make_condition,
    uses_edges,
    uses_labels,
)
from semia.gan.losses import (
    feature_matching_loss,
    fixed_point_loss,
    lsgan_d_loss,
    lsgan_g_loss,
    patch_coherence_loss,
    reconstruction_loss,
    semantic_alignment_loss,
)
from semia.gan.networks import Discriminator, Generator, Segmenter
from semia.gan.tensors import image_to_tensor, one_hot

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
        G = Generator(
            condition_channels(config.condition, num_classes),
            config.generator,
            label_classes(config.condition, num_classes),
        )
        G = G.to(device)
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


def set_lr(nets: Networks, config: TrainConfig, step: int) -> float:
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
    source: torch.Tensor  # (1,C,H,W) condition of the source: one-hot of ids (+ edges)
    num_classes: int
    generator: torch.Generator  # crops, augmentation, swaps
    out_dir: Path
    edges: torch.Tensor | None = None  # (1,1,H,W) edge channel, for edge conditions

    def condition(self, ids: torch.Tensor, edges: torch.Tensor | None) -> torch.Tensor:
        """(B, C, H, W) generator condition of ids (B, H, W) and edges (B, 1, H, W) or None."""
        return make_condition(self.config.condition, ids, edges, self.num_classes)


def _split(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(B, 3 [+ 1], H, W) image with an optional edge channel -> (image, edges or None)."""
    if x.shape[1] == 3:
        return x, None
    return x[:, :3], x[:, 3:]  # (B, 3, H, W), (B, 1, H, W)


def setup_run(
    image: np.ndarray,
    labels: np.ndarray,
    num_classes: int,
    out_dir: Path,
    config: TrainConfig,
    *,
    device: torch.device,
    seed: int,
    edges: np.ndarray | None = None,
) -> Run:
    """Networks, optimisers, data tensors and RNG of a fresh run (inputs already validated).

    `edges` is the (H, W) float edge channel of the image, needed for the edge conditions.
    """
    device = torch.device(device)
    ids = torch.from_numpy(labels).to(device).unsqueeze(0)  # (1,H,W)
    edge_t = None
    if edges is not None:
        edge_t = torch.from_numpy(np.asarray(edges, np.float32)).to(device)[None, None]
    return Run(
        config=config,
        nets=build_networks(num_classes, config, seed, device),
        image=image_to_tensor(image, device),
        ids=ids,
        source=make_condition(config.condition, ids, edge_t, num_classes),
        num_classes=num_classes,
        generator=torch.Generator(device=device).manual_seed(seed),
        out_dir=out_dir,
        edges=edge_t,
    )


# --- one iteration -------------------------------------------------------------------------------


class _Clock:
    """Accumulates wall time per named component into a dict.

    On CUDA every lap waits for the queued kernels first, so each part is charged its own GPU
    time rather than whatever launched before the next sync.
    """

    def __init__(self, sink: dict[str, float], device: torch.device | None = None) -> None:
        self.sink = sink
        self.sync = device is not None and device.type == "cuda"
        self.last = time.perf_counter()

    def lap(self, name: str) -> None:
        if self.sync:
            torch.cuda.synchronize()
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
    img_aug, edges_aug = _split(img_aug)
    oh = run.condition(ids_aug, edges_aug)
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
    if w.semantic_alignment > 0 and uses_labels(run.config.condition):
        run.nets.S.eval()
        terms["alignment"] = semantic_alignment_loss(run.nets.S(fake), tgt_ids)
        run.nets.S.train()
    if w.patch_coherence > 0:
        tgt_oh, src_oh = oh_tgt, run.source
        if run.edges is not None:  # class-aware on the label maps (edges only: one class)
            tgt_oh, src_oh = one_hot(tgt_ids, run.num_classes), one_hot(run.ids, run.num_classes)
        terms["patch"] = patch_coherence_loss(
            fake, tgt_oh, run.image, src_oh, run.config.patch_coherence, run.generator
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
    src_img, src_edges = _split(src_img)
    tgt_img, tgt_edges = _split(tgt_img)
    oh_src = run.condition(src_ids, src_edges)
    oh_tgt = run.condition(tgt_ids, tgt_edges)
    init = _analogy_init(run, src_img, src_ids, tgt_ids, (src_edges, tgt_edges))
    if init is not None:
        clock.lap("analogy")
    g_params = list(nets.G.parameters())
    d_params = list(nets.D.parameters())
    weights = _term_weights(cfg)
    out: dict[str, float] = {}
    for k in range(max(1, cfg.g_steps)):
        fake = nets.G(src_img, oh_src, oh_tgt, init)
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
            fake = nets.G(src_img, oh_src, oh_tgt, init)
        clock.lap("g_forward")
        d_loss = lsgan_d_loss(nets.D(tgt_img)[0], nets.D(fake)[0])
        clock.lap("d_forward")
        nets.opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        clock.lap("backward")
        nets.opt_d.step()
        clock.lap("optim")
    return out


def _analogy_init(
    run: Run,
    src_img: torch.Tensor,
    src_ids: torch.Tensor,
    tgt_ids: torch.Tensor,
    edges: tuple[torch.Tensor | None, torch.Tensor | None] = (None, None),
) -> torch.Tensor | None:
    """G's input where labels change in a sample step with fill_changed "analogy": the
    training-free result of the same pair, (1, 3, H2, W2) in [-1, 1], as generation feeds G
    (GenerateConfig.init "analogy"); for labels + edges the pair's edge channels guide it as a
    sketch does. None (G's own "sample" fill) for other fills, the edges condition, an
    unchanged pair, or a target class the source crop lacks."""
    cfg = run.config
    if cfg.generator.fill_changed != "analogy" or not uses_labels(cfg.condition):
        return None
    if src_img.shape[0] != 1:
        return None
    guides = None
    if uses_edges(cfg.condition) and edges[0] is not None and edges[1] is not None:
        guides = (edges[0][0, 0].detach().cpu().numpy(), edges[1][0, 0].detach().cpu().numpy())
    if torch.equal(src_ids, tgt_ids) and (guides is None or np.array_equal(*guides)):
        return None
    from semia.patch.synthesis import synthesize

    dev = run.generator.device
    seed = int(torch.randint(0, 2**31 - 1, (), generator=run.generator, device=dev))
    image = ((src_img[0].detach().permute(1, 2, 0) + 1.0) * 0.5).clamp(0, 1).cpu().numpy()
    patch = PatchConfig().for_refinement()
    if guides is not None:  # as semia.analogy weighs a sketch beside a target map
        patch = patch.for_labels_and_edges()
    try:
        out = synthesize(
            image,
            src_ids[0].cpu().numpy(),
            tgt_ids[0].cpu().numpy(),
            num_classes=run.num_classes,
            seed=seed,
            config=patch,
            device=src_img.device,
            guides=guides,
        )
    except InputError:  # the target has a class that the source crop lacks
        return None
    return image_to_tensor(out, src_img.device)


def _segmenter_step(
    run: Run, img: torch.Tensor, ids: torch.Tensor, clock: _Clock
) -> dict[str, float]:
    """S learns to segment a real (augmented) image."""
    img, _ = _split(img)
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
    clock = _Clock(timings, run.generator.device)
    t0 = clock.last
    lr_f = set_lr(run.nets, cfg, step)
    full = cfg.crop_size <= 0 or step >= cfg.iters - cfg.full_size_iters
    image, ids = run.image, run.ids
    if run.edges is not None:  # the edge channel travels with the image (crops, warps, pastes)
        image = torch.cat([image, run.edges], 1)  # (1, 4, H, W)
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
    if (
        cfg.s_every > 0
        and step % cfg.s_every == 0
        and cfg.loss_weights.semantic_alignment > 0
        and uses_labels(cfg.condition)
    ):
        losses.update(_segmenter_step(run, img_aug, ids_aug, clock))
    if clock.sync:
        torch.cuda.synchronize()
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
