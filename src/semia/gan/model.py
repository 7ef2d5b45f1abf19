"""The SemIA conditional single-image GAN as a small Python API: train, load, generate.

model = SemIA.train(image, labels, "out/zebra")   # or SemIA.load("out/zebra")
edited = model.generate(target)                     # (H2, W2, 3) float32 in [0, 1]
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

from semia.config import PatchConfig, TrainConfig
from semia.errors import InputError, check_seed
from semia.gan import trainer
from semia.gan.checkpoint import (
    MODEL_FILE,
    ModelFile,
    check_generator_state,
    load_model,
    resolve_model_path,
    save_model,
    unfinished_note,
)
from semia.gan.conditions import (
    condition_channels,
    edge_channel,
    label_classes,
    make_condition,
    photo_edges,
    uses_edges,
    uses_labels,
)
from semia.gan.networks import Generator
from semia.gan.networks.fill import changed_mask
from semia.gan.tensors import image_to_tensor, one_hot, tensor_to_image
from semia.io import LabelMap, as_ids, as_image
from semia.io.palette import default_palette
from semia.ops import gaussian_blur

logger = logging.getLogger(__name__)

_COPIED = 1.0 / 255  # init "analogy": a pixel this close to the source's (in [-1, 1]) is a copy


class SemIA:
    """A trained SemIA generator together with its source image, label map and palette.

    Attributes:
        generator: the trained Generator (eval mode).
        source_image: (H, W, 3) float32 in [0, 1], the training photo.
        source_labels: (H, W) int64 ids in 0..K-1, its label map.
        palette: (K, 3) uint8, colour of each label id.
        config: the TrainConfig used for training.
        step: iterations trained (below config.iters for a run stopped early; None: not
            recorded, taken as finished).
        interrupted: the training stopped on an interrupt (Ctrl-C) at `step`.
    """

    def __init__(
        self,
        generator: Generator,
        source_image: np.ndarray,
        source_labels: np.ndarray,
        palette: np.ndarray,
        config: TrainConfig,
        label_kind: str = "colour",
        label_values: tuple[int, ...] | None = None,
        step: int | None = None,
        interrupted: bool = False,
    ) -> None:
        self.generator = generator.eval()
        self.source_image = np.ascontiguousarray(source_image, dtype=np.float32)
        self.source_labels = np.ascontiguousarray(source_labels, dtype=np.int64)
        self.palette = np.ascontiguousarray(palette, dtype=np.uint8)
        self.config = config
        self.label_kind = label_kind  # how the source map coded labels (see semia.io.LabelMap)
        self.label_values = label_values  # file value of each id for "palette" / "ids" maps
        self.step = step
        self.interrupted = interrupted
        self._source_cache: tuple[torch.device, torch.Tensor, torch.Tensor] | None = None

    @property
    def num_classes(self) -> int:
        """K, the number of label classes."""
        return len(self.palette)

    @property
    def labels(self) -> LabelMap:
        """The source label map (read targets against it with `semia.read_target`)."""
        return LabelMap(self.source_labels, self.palette, self.label_values, self.label_kind)

    @property
    def device(self) -> torch.device:
        """The device of the generator's parameters."""
        return next(self.generator.parameters()).device

    @classmethod
    def train(
        cls,
        image: np.ndarray,
        labels: LabelMap | np.ndarray | None,
        out_dir: str | Path,
        config: TrainConfig = TrainConfig(),
        **kw: Any,
    ) -> SemIA:
        """Train on one (image, labels) pair and return the model (also saved in out_dir).

        Args:
            image: (H, W, 3) float32 in [0, 1] (uint8 accepted), the source photo.
            labels: its label map, a `LabelMap` (as read by `semia.read_label_map`) or (H, W)
                integer ids 0..K-1 (then shown with a default palette); None with
                `config.condition == "edges"` (the photo's edge map is the only condition).
            out_dir: model folder (model.safetensors, training state, log, previews).
            config: the training settings.
            **kw: device, seed, preview_targets, resume, progress: see
                `semia.gan.trainer.train`.
        """
        image = as_image(image, "image", min_size=8)
        check_seed(kw.get("seed", 0))
        if labels is None:
            if uses_labels(config.condition):
                raise InputError(
                    f"condition {config.condition!r} needs the photo's label map; train with "
                    "condition 'edges' to use the photo alone"
                )
            labels = LabelMap(np.zeros(image.shape[:2], np.int64), default_palette(1))
        if not isinstance(labels, LabelMap):
            ids = as_ids(labels, "labels")
            labels = LabelMap(ids, default_palette(int(ids.max()) + 1))
        generator = trainer.train(image, labels, Path(out_dir), config, **kw)
        return cls(
            generator,
            image,
            labels.ids,
            labels.palette,
            config,
            labels.kind,
            labels.values,
            config.iters,
        )

    @classmethod
    def load(cls, path: str | Path, device: str | torch.device = "cpu") -> SemIA:
        """Load a model from MODEL_DIR or its model.safetensors file.

        A model whose training stopped early (Ctrl-C, or a killed run) loads with a warning
        that says so and how to finish it.

        Raises:
            InputError: the path holds no readable SemIA model, or the weights do not fit.
        """
        path = resolve_model_path(path)
        stored = load_model(path)
        channels = condition_channels(stored.config.condition, len(stored.palette))
        generator = Generator(
            channels,
            stored.config.generator,
            label_classes(stored.config.condition, len(stored.palette)),
        )
        check_generator_state(path, stored.generator_state, generator)
        generator.load_state_dict(stored.generator_state)
        generator.to(device)
        note = unfinished_note(path, stored)
        if note is not None:
            logger.warning(note)
        return cls(
            generator,
            stored.source_image,
            stored.source_labels,
            stored.palette,
            stored.config,
            stored.label_kind,
            stored.label_values,
            stored.step,
            stored.interrupted,
        )

    def save(self, path: str | Path) -> None:
        """Write the shareable inference file (a folder gets model.safetensors inside)."""
        path = Path(path)
        if path.suffix != ".safetensors":
            path = path / MODEL_FILE
        state = {k: v.detach().cpu() for k, v in self.generator.state_dict().items()}
        save_model(
            path,
            ModelFile(
                state,
                self.source_image,
                self.source_labels,
                self.palette,
                self.config,
                self.label_kind,
                self.label_values,
                self.step,
                self.interrupted,
            ),
        )

    def _source_tensors(self) -> tuple[torch.Tensor, torch.Tensor]:
        device = self.device
        if self._source_cache is None or self._source_cache[0] != device:
            image = image_to_tensor(self.source_image, device)
            ids = torch.from_numpy(self.source_labels).to(device).unsqueeze(0)  # (1,H,W)
            if self.condition == "labels":
                source = one_hot(ids, self.num_classes)
            else:
                edges = torch.from_numpy(photo_edges(self.source_image)).to(device)[None, None]
                source = make_condition(self.condition, ids, edges, self.num_classes)
            self._source_cache = (device, image, source)
        return self._source_cache[1], self._source_cache[2]

    @property
    def condition(self) -> str:
        """What the generator is conditioned on: "labels", "edges" or "labels+edges"."""
        return self.config.condition

    @torch.inference_mode()
    def generate(
        self,
        target: LabelMap | np.ndarray | None = None,
        init: np.ndarray | None = None,
        seed: int = 0,
        *,
        sketch: np.ndarray | None = None,
    ) -> np.ndarray:
        """Synthesize the source scene in the layout `target` and / or `sketch` (one pass of G).

        `config.generate` says how: with init "analogy" (the default) G refines the
        training-free result (`semia.analogy`) where the labels change instead of starting from
        its block fill; with anchor_sigma s > 0 the output keeps G's detail finer than s and
        the analogy's coarser structure (G's colours cannot drift); with keep_copied the
        source's own pixels stay where the analogy copied them in place; with composite_margin
        m >= 0 the output keeps the source's own pixels farther than m pixels from every
        changed pixel (both only when the target has the source's size); with class_band
        b >= 0 (default 1) G's output is kept on the changed pixels and within analogy_margin
        (4) of them only within b pixels (at 256 px) of a class boundary of the target, where
        new regions meet, and the analogy's own pixels elsewhere; with refine_band b >= 0 G's
        output is kept only within b pixels of the changed region's border and the analogy's
        own pixels deeper inside.
        `TrainConfig.original()` models use G alone, as published. Models conditioned on
        labels + edges refine the analogy of the target and sketch together (anchor,
        keep_copied and class_band as above, and with class_band the analogy's own pixels
        where the lines moved the source's texture but the label stays: G's input there is
        the source as it was); models on edges alone use G alone.

        Args:
            target: a `LabelMap` read against the model's source (`read_target`) or (H2, W2)
                integer ids in 0..K-1; any size >= 8x8. Needed unless the model's condition is
                "edges".
            init: None (made as config.generate.init says), or an (H2, W2, 3) image in [0, 1]
                (uint8 accepted) already in the target layout for G to refine where the labels
                change.
            seed: seed of the analogy made for init "analogy".
            sketch: for models trained with an edge condition: the new layout as a line
                drawing, (h, w) or (h, w, 3), dark lines on light (see `semia.analogy`), of the
                output's aspect ratio (the target's, else the source's).

        Returns:
            (H2, W2, 3) float32 image in [0, 1].
        """
        if uses_labels(self.condition) and target is None:
            raise InputError(f"this model is conditioned on {self.condition}: give a target map")
        if uses_edges(self.condition) and sketch is None:
            raise InputError(f"this model is conditioned on {self.condition}: give a sketch")
        if not uses_edges(self.condition) and sketch is not None:
            raise InputError(
                "this model was trained on label maps only; train with --condition edges or "
                "labels+edges to generate from sketches"
            )
        check_seed(seed)
        if target is None:
            target = np.zeros(self.source_labels.shape, np.int64)
        target = as_ids(target, "the target label map", num_classes=self.num_classes, min_size=8)
        settings = self.config.generate
        if init is None and settings.init == "analogy" and uses_labels(self.condition):
            from semia.patch import analogy

            init = analogy(
                self.source_image,
                self.labels,
                target,
                sketch=sketch if uses_edges(self.condition) else None,
                seed=seed,
                config=PatchConfig().for_refinement(),
                device=self.device,
            )
        image, source = self._source_tensors()
        ids = torch.from_numpy(target).to(self.device).unsqueeze(0)  # (1,H2,W2)
        edges = None
        if sketch is not None:
            from semia.apps.sketch import sketch_edges

            lines = edge_channel(sketch_edges(sketch, target.shape))
            edges = torch.from_numpy(lines).to(self.device)[None, None]  # (1,1,H2,W2)
        condition = make_condition(self.condition, ids, edges, self.num_classes)
        start = None
        if init is not None:
            init = as_image(init, "init")
            if init.shape[:2] != target.shape:
                raise InputError(
                    f"init must have the target's size {target.shape}, got {init.shape[:2]}"
                )
            start = image_to_tensor(init, self.device)
        self.generator.eval()
        out = self.generator(image, source, condition, start)  # (1,3,H2,W2)
        same_size = target.shape == self.source_labels.shape
        if start is not None and settings.anchor_sigma > 0:
            sigma = settings.anchor_sigma * max(target.shape) / 256.0
            out = out + gaussian_blur(start - out, sigma)  # init's coarse part, G's detail
        copied = None  # (1,1,H,W) where the analogy copied the source's pixel in place
        if start is not None and same_size:
            copied = (start - image).abs().amax(1, keepdim=True) < _COPIED
        if copied is not None and settings.keep_copied:
            out = torch.where(copied, image, out)
        if start is not None and settings.class_band >= 0 and uses_labels(self.condition):
            scale = max(target.shape) / 256.0
            band = round(settings.class_band * scale)
            margin = round(settings.analogy_margin * scale)
            moved = None
            if uses_edges(self.condition) and copied is not None:
                # the lines move texture where the labels stay; G's input there is the source
                # as it was (only changed labels get the analogy), so G cannot follow them
                moved = ~copied
            labels_only = source[:, : self.num_classes]
            out = _analogy_inside(out, start, labels_only, ids, band, margin, moved)
        if self.condition == "labels":
            wanted = one_hot(ids, self.num_classes)  # (1,K,H2,W2)
            if start is not None and settings.refine_band >= 0:
                out = _keep_inside(
                    out, start, source, wanted, image.shape[-2:], settings.refine_band
                )
            if settings.composite_margin >= 0 and same_size:
                near = changed_mask(source, wanted, settings.composite_margin)  # (1,1,H,W)
                out = image * (1.0 - near) + out * near
        return tensor_to_image(out)


def _analogy_inside(
    out: torch.Tensor,
    init: torch.Tensor,
    source: torch.Tensor,
    ids: torch.Tensor,
    band: int,
    margin: int,
    moved: torch.Tensor | None = None,
) -> torch.Tensor:
    """`out` with `init`'s pixels on the changed pixels and those within `margin` of them,
    except within `band` of a class boundary of the target: G harmonises where the new regions
    meet, and the analogy's texture stands inside them and around them (G would redraw there
    the outline of what the edit removed, from the label difference it is conditioned on).

    out and init (1, 3, H2, W2), source (1, K, H, W) one-hot (resampled to the target's size
    if needed), ids (1, H2, W2) the target's class ids; moved: optional (1, 1, H2, W2) bool,
    more pixels treated as changed (where a sketch moved the source's texture).
    """
    num_classes = source.shape[1]
    if tuple(source.shape[-2:]) != tuple(ids.shape[-2:]):
        source = torch.nn.functional.interpolate(source, size=ids.shape[-2:], mode="nearest")
    changed = changed_mask(source, one_hot(ids, num_classes), margin) > 0  # (1, 1, H2, W2)
    if moved is not None:
        changed = changed | moved
    edge = torch.zeros_like(ids, dtype=torch.bool)  # (1, H2, W2) a neighbour of another class
    vertical, horizontal = ids[:, 1:] != ids[:, :-1], ids[:, :, 1:] != ids[:, :, :-1]
    edge[:, 1:] |= vertical
    edge[:, :-1] |= vertical
    edge[:, :, 1:] |= horizontal
    edge[:, :, :-1] |= horizontal
    near = edge[:, None].to(out.dtype)
    if band > 0:
        near = torch.nn.functional.max_pool2d(near, 2 * band + 1, stride=1, padding=band)
    return torch.where(changed & (near == 0), init, out)


def _keep_inside(
    out: torch.Tensor,
    init: torch.Tensor,
    source: torch.Tensor,
    target: torch.Tensor,
    source_size: tuple[int, int],
    band: int,
) -> torch.Tensor:
    """`out` with `init`'s pixels where every pixel within `band` of them changed its label.

    out and init (1, 3, H2, W2), source (1, K, H, W), target (1, K, H2, W2) one-hot; a source
    of another size is resampled to the target's (nearest).
    """
    if tuple(source_size) != tuple(target.shape[-2:]):
        source = torch.nn.functional.interpolate(source, size=target.shape[-2:], mode="nearest")
    same = 1.0 - changed_mask(source, target)  # (1, 1, H2, W2), 1 where the label stays
    near_same = torch.nn.functional.max_pool2d(same, 2 * band + 1, stride=1, padding=band)
    return init * (1.0 - near_same) + out * near_same
