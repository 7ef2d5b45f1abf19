"""The SemIA conditional single-image GAN as a small Python API: train, load, generate.

model = SemIA.train(image, labels, palette, "out/zebra")   # or SemIA.load("out/zebra")
edited = model.generate(target_ids)                         # (H2, W2, 3) float32 in [0, 1]
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from semia.checkpoint import MODEL_FILE, ModelFile, load_model, save_model
from semia.config import TrainConfig
from semia.models.generator import Generator


def one_hot(ids: torch.Tensor, num_classes: int) -> torch.Tensor:
    """(B, H, W) long ids -> (B, K, H, W) float one-hot."""
    return F.one_hot(ids, num_classes).permute(0, 3, 1, 2).float()  # (B,H,W,K) -> (B,K,H,W)


def image_to_tensor(image: np.ndarray, device: torch.device | str) -> torch.Tensor:
    """(H, W, 3) float32 [0, 1] numpy -> (1, 3, H, W) float in [-1, 1] on `device`."""
    t = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)).to(device)
    return t.permute(2, 0, 1).unsqueeze(0) * 2.0 - 1.0  # (H,W,3) -> (1,3,H,W)


def tensor_to_image(t: torch.Tensor) -> np.ndarray:
    """(1, 3, H, W) float in [-1, 1] -> (H, W, 3) float32 numpy in [0, 1]."""
    out = ((t[0].detach().float().cpu() + 1.0) * 0.5).clamp(0.0, 1.0)
    return out.permute(1, 2, 0).contiguous().numpy()  # (3,H,W) -> (H,W,3)


def check_labels(labels: np.ndarray, num_classes: int, what: str) -> np.ndarray:
    """Validate a (H, W) integer label map with ids in 0..K-1; returns it as int64."""
    labels = np.asarray(labels)
    if labels.ndim != 2 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(
            f"{what} must be a (H, W) integer id map, got shape {labels.shape} and dtype "
            f"{labels.dtype}: read colour maps with semia.io.read_target against the source palette"
        )
    if labels.size == 0 or min(labels.shape) < 8:
        raise ValueError(f"{what} is {labels.shape[1]}x{labels.shape[0]} px: use at least 8x8")
    lo, hi = int(labels.min()), int(labels.max())
    if lo < 0 or hi >= num_classes:
        raise ValueError(
            f"{what} holds ids {lo}..{hi}, but the model knows only {num_classes} classes "
            f"(ids 0..{num_classes - 1}): read it against the model's palette"
        )
    return labels.astype(np.int64, copy=False)


class SemIA:
    """A trained SemIA generator together with its source image, label map and palette.

    Attributes:
        generator: the trained Generator (eval mode).
        source_image: (H, W, 3) float32 in [0, 1], the training photo.
        source_labels: (H, W) int64 ids in 0..K-1, its label map.
        palette: (K, 3) uint8, colour of each label id.
        config: the TrainConfig used for training.
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
    ) -> None:
        self.generator = generator.eval()
        self.source_image = np.ascontiguousarray(source_image, dtype=np.float32)
        self.source_labels = np.ascontiguousarray(source_labels, dtype=np.int64)
        self.palette = np.ascontiguousarray(palette, dtype=np.uint8)
        self.config = config
        self.label_kind = label_kind  # how the source map coded labels (see semia.io.LabelMap)
        self.label_values = label_values  # file value of each id for "palette" / "ids" maps
        self._source_cache: tuple[torch.device, torch.Tensor, torch.Tensor] | None = None

    @property
    def num_classes(self) -> int:
        """K, the number of label classes."""
        return len(self.palette)

    @property
    def device(self) -> torch.device:
        """The device of the generator's parameters."""
        return next(self.generator.parameters()).device

    @classmethod
    def train(
        cls,
        image: np.ndarray,
        labels: np.ndarray,
        palette: np.ndarray,
        out_dir: str | Path,
        config: TrainConfig = TrainConfig(),
        **kw: Any,
    ) -> SemIA:
        """Train on one (image, labels) pair; see `semia.train.train` for the arguments."""
        from semia.train import train  # local import: train.py builds SemIA objects

        return train(image, labels, palette, Path(out_dir), config, **kw)

    @classmethod
    def load(cls, path: str | Path, device: str | torch.device = "cpu") -> SemIA:
        """Load a model from MODEL_DIR or its model.safetensors file.

        Raises:
            ValueError: the path holds no readable SemIA model, or the weights do not fit.
        """
        stored = load_model(path)
        generator = Generator(len(stored.palette), stored.config.generator)
        try:
            generator.load_state_dict(stored.generator_state)
        except RuntimeError as e:
            raise ValueError(
                f"the generator weights in {path} do not match this semia version's generator "
                f"({e}); retrain the model with this version"
            ) from e
        generator.to(device)
        return cls(
            generator,
            stored.source_image,
            stored.source_labels,
            stored.palette,
            stored.config,
            stored.label_kind,
            stored.label_values,
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
            ),
        )

    def _source_tensors(self) -> tuple[torch.Tensor, torch.Tensor]:
        device = self.device
        if self._source_cache is None or self._source_cache[0] != device:
            image = image_to_tensor(self.source_image, device)
            ids = torch.from_numpy(self.source_labels).to(device).unsqueeze(0)  # (1,H,W)
            self._source_cache = (device, image, one_hot(ids, self.num_classes))
        return self._source_cache[1], self._source_cache[2]

    @torch.inference_mode()
    def generate(self, target: np.ndarray) -> np.ndarray:
        """Synthesize the source scene in the layout `target` (one forward pass).

        Args:
            target: (H2, W2) int64 ids in 0..K-1 (the model's palette); any size >= 8x8.

        Returns:
            (H2, W2, 3) float32 image in [0, 1].
        """
        target = check_labels(target, self.num_classes, "the target label map")
        image, source = self._source_tensors()
        ids = torch.from_numpy(target).to(self.device).unsqueeze(0)  # (1,H2,W2)
        self.generator.eval()
        out = self.generator(image, source, one_hot(ids, self.num_classes))
        return tensor_to_image(out)
