"""Feature-pyramid patch discriminator (FPSE style) with spectral norm and two output scales.

Bottom-up: strided 4x4 convolutions (spectral norm, instance norm from the second level on, leaky
ReLU), level i at 1/2**i size. Top-down: 1x1 lateral convolutions to a common width, upsampled and
summed from the coarsest level, then a 3x3 smoothing convolution and a 1x1 real/fake head on each
of the two coarsest pyramid levels. All intermediate maps are returned for feature matching.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm

from semia.config import DiscriminatorConfig

_NEGATIVE_SLOPE = 0.2


class Discriminator(nn.Module):
    """Patch discriminator returning logits at two scales and its intermediate features."""

    def __init__(self, config: DiscriminatorConfig | None = None) -> None:
        super().__init__()
        config = config if config is not None else DiscriminatorConfig()
        if config.num_levels < 2:
            raise ValueError(
                f"DiscriminatorConfig.num_levels must be >= 2, got {config.num_levels}"
            )
        self.config = config
        sn = spectral_norm if config.spectral_norm else (lambda m: m)
        widths = [
            min(config.base_channels * 2**i, config.max_channels) for i in range(config.num_levels)
        ]
        c_pyr = config.pyramid_channels

        self.bottom_up = nn.ModuleList()
        c_in = 3
        for c_out in widths:
            self.bottom_up.append(sn(nn.Conv2d(c_in, c_out, 4, stride=2, padding=1)))
            c_in = c_out
        # the two coarsest levels feed the top-down pyramid and the heads
        self.lateral = nn.ModuleList(sn(nn.Conv2d(c, c_pyr, 1)) for c in widths[-2:])
        self.smooth = nn.ModuleList(sn(nn.Conv2d(c_pyr, c_pyr, 3, padding=1)) for _ in range(2))
        self.heads = nn.ModuleList(sn(nn.Conv2d(c_pyr, 1, 1)) for _ in range(2))

    @property
    def min_size(self) -> int:
        """Smallest accepted input side (the coarsest level must have >= 2x2 pixels)."""
        return 2 ** (self.config.num_levels + 1)

    def forward(self, image: Tensor) -> tuple[list[Tensor], list[Tensor]]:
        """Score the patches of an image.

        Args:
            image: (B, 3, H, W) float in [-1, 1], H and W >= min_size.

        Returns:
            logits: two (B, 1, h_i, w_i) maps, at 1/2**(L-1) then 1/2**L size (L = num_levels);
            features: the bottom-up maps and the two smoothed pyramid maps (for feature matching).
        """
        if image.dim() != 4 or image.shape[1] != 3:
            raise ValueError(f"image must be (B, 3, H, W), got {tuple(image.shape)}")
        if min(image.shape[-2:]) < self.min_size:
            raise ValueError(
                f"image {tuple(image.shape[-2:])} is too small for the discriminator: "
                f"both sides must be >= {self.min_size}"
            )
        features: list[Tensor] = []
        h = image
        for i, conv in enumerate(self.bottom_up):
            h = conv(h)
            if i > 0:
                h = F.instance_norm(h)
            h = F.leaky_relu(h, _NEGATIVE_SLOPE)
            features.append(h)

        fine, coarse = features[-2], features[-1]
        top = self.lateral[1](coarse)
        up = F.interpolate(top, size=fine.shape[-2:], mode="nearest")
        mid = self.lateral[0](fine) + up
        logits: list[Tensor] = []
        for p, smooth, head in zip((mid, top), self.smooth, self.heads, strict=True):
            s = F.leaky_relu(smooth(p), _NEGATIVE_SLOPE)
            features.append(s)
            logits.append(head(s))
        return logits, features
