"""Auxiliary ASPP-like segmenter S: image -> per-pixel class logits.

Trained on real (augmented) images to predict their label map; on generated images it gives the
semantic alignment loss. Stem: two strided 3x3 convolutions (1/4 size). Atrous spatial pyramid
pooling: a 1x1 branch, 3x3 branches with the configured dilations (scaled with the input size) and
a global-average branch, concatenated, fused by a 1x1 convolution, classified by a 1x1 convolution
and upsampled (bilinear) to the input size.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from semia.config import SegmenterConfig

_NEGATIVE_SLOPE = 0.2


class Segmenter(nn.Module):
    """Small ASPP segmentation network."""

    def __init__(self, num_classes: int, config: SegmenterConfig | None = None) -> None:
        super().__init__()
        config = config if config is not None else SegmenterConfig()
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        if not config.dilations or min(config.dilations) < 1:
            raise ValueError(f"SegmenterConfig.dilations must be >= 1, got {config.dilations}")
        self.num_classes = num_classes
        self.config = config
        c, a = config.base_channels, config.aspp_channels
        self.stem1 = nn.Conv2d(3, c, 3, stride=2, padding=1)
        self.stem2 = nn.Conv2d(c, 2 * c, 3, stride=2, padding=1)
        self.branch_1x1 = nn.Conv2d(2 * c, a, 1)
        self.branches = nn.ModuleList(nn.Conv2d(2 * c, a, 3) for _ in config.dilations)
        self.branch_pool = nn.Conv2d(2 * c, a, 1)
        self.fuse = nn.Conv2d(a * (len(config.dilations) + 2), a, 1)
        self.classifier = nn.Conv2d(a, num_classes, 1)

    def forward(self, image: Tensor) -> Tensor:
        """Predict class logits.

        Args:
            image: (B, 3, H, W) float in [-1, 1].

        Returns:
            (B, K, H, W) float logits.
        """
        if image.dim() != 4 or image.shape[1] != 3:
            raise ValueError(f"image must be (B, 3, H, W), got {tuple(image.shape)}")
        height, width = image.shape[-2:]
        if ((height + 1) // 2 + 1) // 2 * (((width + 1) // 2 + 1) // 2) < 2:
            raise ValueError(
                f"image {(height, width)} is too small for the segmenter: its 1/4-size feature "
                "map needs at least 2 pixels (use sides >= 5)"
            )
        h = F.leaky_relu(self.stem1(image), _NEGATIVE_SLOPE)
        h = F.leaky_relu(F.instance_norm(self.stem2(h)), _NEGATIVE_SLOPE)
        scale = max(1.0, min(height, width) / self.config.reference_size)
        outs = [self.branch_1x1(h)]
        for conv, base_dilation in zip(self.branches, self.config.dilations, strict=True):
            d = max(1, round(base_dilation * scale))
            # reflect padding only works for pads < size; fall back to zero padding
            if d < min(h.shape[-2:]):
                padded = F.pad(h, (d, d, d, d), mode="reflect")
            else:
                padded = F.pad(h, (d, d, d, d))
            outs.append(F.conv2d(padded, conv.weight, conv.bias, dilation=d))
        pooled = self.branch_pool(h.mean(dim=(2, 3), keepdim=True))
        outs.append(pooled.expand(-1, -1, *h.shape[-2:]))
        h = F.leaky_relu(self.fuse(torch.cat(outs, dim=1)), _NEGATIVE_SLOPE)
        logits = self.classifier(h)
        return F.interpolate(logits, size=(height, width), mode="bilinear", align_corners=False)
