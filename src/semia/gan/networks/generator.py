"""SemIA generator: shared label encoder, Semantic Feature Translation (SFT), image encoder/decoder.

G(image, source, target) re-synthesises `image` (laid out as the label map `source`) in the layout
`target`. Both label maps go through the same label encoder, giving one feature map per level. At
every level the SFT module compares the two: the log-ratio of the (positive) label features drives
gamma, their difference drives beta, each through a small bias-free residual bottleneck. The image
encoder and decoder normalise their features (per pixel over channels by default, so that
training on crops and generating on the whole image see the same statistics) and modulate them,
x -> gamma * norm(x) + beta. A change gate (GeneratorConfig.change_gate) additionally damps gamma
where the two layouts differ, so that the source content there is suppressed from the start.
Optionally (GeneratorConfig.fill_changed, on in the default TrainConfig; an addition to the paper)
the pixels whose label changes enter the image encoder as content of their new class (blocks
copied from that class's source region, away from its borders) instead of the old content, which
removes the ghosts of removed objects and gives new regions their class's texture to start from.
Encoder features are added to the decoder at each level (skip connections).

Identity by construction: the bottlenecks have no biases and only zero-preserving activations, so
when source == target the log-ratio and the difference are exactly 0, hence gamma == 1 and
beta == 0 exactly, whatever the weights (the fixed-point loss is 0 there at init and stays 0;
the gate is 1 there too).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from semia.config import GeneratorConfig
from semia.gan.networks.fill import FILL_MODES, fill_changed, paste_changed

_NEGATIVE_SLOPE = 0.2


def _instance_norm(x: Tensor) -> Tensor:
    """Parameter-free instance normalisation over the spatial dimensions of (B, C, H, W)."""
    return F.instance_norm(x, eps=1e-5)


def _pixel_norm(x: Tensor) -> Tensor:
    """Parameter-free per-pixel normalisation over channels of (B, C, H, W) (crop-invariant)."""
    return x * torch.rsqrt(x.pow(2).mean(dim=1, keepdim=True) + 1e-8)


NORMS = {"instance": _instance_norm, "pixel": _pixel_norm}


def _widths(base: int, cap: int, levels: int) -> list[int]:
    """Channel width of each level 0..levels (doubling, capped)."""
    return [min(base * 2**i, cap) for i in range(levels + 1)]


def _act(x: Tensor) -> Tensor:
    return F.leaky_relu(x, _NEGATIVE_SLOPE)


class LabelEncoder(nn.Module):
    """Convolutional encoder of one-hot label maps, shared by the source and the target map.

    Returns one strictly positive feature map per level (softplus), level i at 1/2**i size.
    """

    def __init__(self, num_classes: int, widths: list[int]) -> None:
        super().__init__()
        self.stem = nn.Conv2d(num_classes, widths[0], 3, padding=1)
        self.downs = nn.ModuleList(
            nn.Conv2d(c_in, c_out, 3, stride=2, padding=1)
            for c_in, c_out in itertools.pairwise(widths)
        )

    def forward(self, labels: Tensor) -> list[Tensor]:
        """labels: (B, K, H, W) one-hot float, H and W multiples of 2**levels."""
        h = self.stem(labels)
        feats = [F.softplus(h)]
        for down in self.downs:
            h = down(_act(h))
            feats.append(F.softplus(h))
        return feats


class _Bottleneck(nn.Module):
    """Bias-free residual bottleneck: conv3x3 -> act -> (+ act(conv1x1)) -> conv1x1.

    Maps 0 to 0 exactly (no biases, leaky ReLU), which makes the SFT an identity when the
    source and target label features coincide.
    """

    def __init__(self, c_in: int, hidden: int, c_out: int) -> None:
        super().__init__()
        self.inp = nn.Conv2d(c_in, hidden, 3, padding=1, bias=False)
        self.mid = nn.Conv2d(hidden, hidden, 1, bias=False)
        self.out = nn.Conv2d(hidden, c_out, 1, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        h = _act(self.inp(x))
        h = h + _act(self.mid(h))
        return self.out(h)


class SFT(nn.Module):
    """Semantic Feature Translation head of one modulated layer.

    With r = log((f_t + eps) / (f_s + eps)) and d = f_t - f_s:
    gamma = gate * (1 + bottleneck(r)), beta = bottleneck(d), where the optional change gate
    exp(-softplus(a) * mean_c |r|) (a learned per image channel) is 1 where the layouts agree
    and shrinks the source features where they differ, so that source content is erased there
    from the start of training instead of leaking through (ghosts of removed objects).
    """

    def __init__(
        self, label_channels: int, hidden: int, image_channels: int, eps: float, gate: float
    ) -> None:
        """gate: initial strength a of the change gate (> 0), or 0 for no gate."""
        super().__init__()
        self.eps = eps
        self.gamma = _Bottleneck(label_channels, hidden, image_channels)
        self.beta = _Bottleneck(label_channels, hidden, image_channels)
        self.gate_raw = None
        if gate > 0:
            raw = math.log(math.expm1(gate))  # softplus(raw) = gate
            self.gate_raw = nn.Parameter(torch.full((1, image_channels, 1, 1), raw))

    def forward(self, f_source: Tensor, f_target: Tensor) -> tuple[Tensor, Tensor]:
        """f_source, f_target: (B, C_l, h, w) positive. Returns gamma, beta: (B, C_img, h, w)."""
        log_ratio = torch.log(f_target + self.eps) - torch.log(f_source + self.eps)
        gamma = 1.0 + self.gamma(log_ratio)
        if self.gate_raw is not None:
            change = log_ratio.abs().mean(dim=1, keepdim=True)  # (B, 1, h, w), 0 where equal
            gamma = gamma * torch.exp(-F.softplus(self.gate_raw) * change)
        beta = self.beta(f_target - f_source)
        return gamma, beta


class _ResBlock(nn.Module):
    """Unmodulated residual block at the coarsest level."""

    def __init__(self, channels: int, norm: Callable[[Tensor], Tensor]) -> None:
        super().__init__()
        self.norm = norm
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        h = self.conv1(_act(self.norm(x)))
        h = self.conv2(_act(self.norm(h)))
        return x + h


class Generator(nn.Module):
    """SemIA generator G(image, source, target) -> image in the target layout.

    Fully convolutional: the target may have another size than the source (the image and source
    map are then resized to the target size first). Inputs are padded internally to a multiple of
    2**num_levels and the output is cropped back to the target size.
    """

    def __init__(
        self,
        num_classes: int,
        config: GeneratorConfig | None = None,
        label_classes: int | None = None,
    ) -> None:
        """num_classes: input channels of the layouts; label_classes: how many of the first
        ones are a one-hot label map, the part the fill of changed regions reads (None: all;
        0 with an edge-map condition: no fill)."""
        super().__init__()
        config = config if config is not None else GeneratorConfig()
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        if config.norm not in NORMS:
            raise ValueError(
                f"GeneratorConfig.norm must be one of {sorted(NORMS)}, got {config.norm!r}"
            )
        if config.change_gate < 0:
            raise ValueError(f"GeneratorConfig.change_gate must be >= 0, got {config.change_gate}")
        if config.fill_changed not in FILL_MODES:
            raise ValueError(
                f"GeneratorConfig.fill_changed must be one of {FILL_MODES}, "
                f"got {config.fill_changed!r}"
            )
        if config.num_levels < 1:
            raise ValueError(f"GeneratorConfig.num_levels must be >= 1, got {config.num_levels}")
        self.num_classes = num_classes
        self.label_classes = num_classes if label_classes is None else label_classes
        self.config = config
        self.norm = NORMS[config.norm]
        levels = config.num_levels
        img_w = _widths(config.base_channels, config.max_channels, levels)
        lab_w = _widths(config.label_channels, config.max_label_channels, levels)

        self.label_encoder = LabelEncoder(num_classes, lab_w)
        # encoder: level 0 at full size, level i at 1/2**i
        self.enc_convs = nn.ModuleList(
            [nn.Conv2d(3, img_w[0], 3, padding=1)]
            + [
                nn.Conv2d(img_w[i - 1], img_w[i], 3, stride=2, padding=1)
                for i in range(1, levels + 1)
            ]
        )
        self.enc_sft = nn.ModuleList(
            SFT(lab_w[i], config.sft_hidden, img_w[i], config.ratio_eps, config.change_gate)
            for i in range(levels + 1)
        )
        self.res_blocks = nn.ModuleList(
            _ResBlock(img_w[levels], self.norm) for _ in range(config.num_res_blocks)
        )
        # decoder: dec_convs[i] goes from level i + 1 to level i (applied for i = levels-1 .. 0)
        self.dec_convs = nn.ModuleList(
            nn.Conv2d(img_w[i + 1], img_w[i], 3, padding=1) for i in range(levels)
        )
        self.dec_sft = nn.ModuleList(
            SFT(lab_w[i], config.sft_hidden, img_w[i], config.ratio_eps, config.change_gate)
            for i in range(levels)
        )
        self.to_rgb = nn.Conv2d(img_w[0], 3, 3, padding=1)

    def forward(
        self, image: Tensor, source: Tensor, target: Tensor, init: Tensor | None = None
    ) -> Tensor:
        """Synthesise the image in the target layout.

        Args:
            image: (B, 3, H, W) float in [-1, 1].
            source: (B, K, H, W) one-hot float, the layout of `image`.
            target: (B, K, H2, W2) one-hot float, the requested layout.
            init: None, or (B, 3, H2, W2) float in [-1, 1], an image already in the target
                layout (the training-free result) that replaces the changed-region fill: G
                then refines it (GenerateConfig.init = "analogy").

        Returns:
            (B, 3, H2, W2) float in [-1, 1].
        """
        return self.translate(image, source, target, init)[0]

    def translate(
        self, image: Tensor, source: Tensor, target: Tensor, init: Tensor | None = None
    ) -> tuple[Tensor, list[tuple[Tensor, Tensor]]]:
        """Like forward, also returning (gamma, beta) of every modulated layer.

        Returns:
            output (B, 3, H2, W2) in [-1, 1], and a list of (gamma, beta) pairs, each
            (B, C, h, w), encoder levels 0..L then decoder levels L-1..0 (gamma == 1 and
            beta == 0 exactly where source == target).
        """
        self._check_inputs(image, source, target)
        out_h, out_w = target.shape[-2:]
        wanted = (image.shape[0], 3, out_h, out_w)
        if init is not None and tuple(init.shape) != wanted:
            raise ValueError(f"init must be (B, 3, H2, W2) = {wanted}, got {tuple(init.shape)}")
        if image.shape[-2:] != target.shape[-2:]:
            image = F.interpolate(image, size=(out_h, out_w), mode="bilinear", align_corners=False)
            source = F.interpolate(source, size=(out_h, out_w), mode="nearest")
        mult = 2**self.config.num_levels
        pad_h, pad_w = (-out_h) % mult, (-out_w) % mult
        if pad_h or pad_w:
            pad = (0, pad_w, 0, pad_h)
            image = F.pad(image, pad, mode="replicate")
            source = F.pad(source, pad, mode="replicate")
            target = F.pad(target, pad, mode="replicate")
            init = None if init is None else F.pad(init, pad, mode="replicate")

        src_lab, tgt_lab = source, target
        if self.label_classes < self.num_classes:  # extra channels (edges) follow the labels
            src_lab, tgt_lab = source[:, : self.label_classes], target[:, : self.label_classes]
        if init is not None and self.label_classes > 0:
            image = paste_changed(image, src_lab, tgt_lab, init, self.config.fill_dilate)
        elif self.config.fill_changed != "off" and self.label_classes > 0:
            cfg = self.config
            image = fill_changed(
                image, src_lab, tgt_lab, cfg.fill_changed, cfg.fill_margin, cfg.fill_dilate
            )
        batch = image.shape[0]
        label_feats = self.label_encoder(torch.cat([source, target], dim=0))  # (2B, C_l, h, w)
        f_src = [f[:batch] for f in label_feats]
        f_tgt = [f[batch:] for f in label_feats]

        params: list[tuple[Tensor, Tensor]] = []
        skips: list[Tensor] = []
        h = image
        for level, (conv, sft) in enumerate(zip(self.enc_convs, self.enc_sft, strict=True)):
            gamma, beta = sft(f_src[level], f_tgt[level])
            params.append((gamma, beta))
            h = _act(gamma * self.norm(conv(h)) + beta)
            skips.append(h)
        for block in self.res_blocks:
            h = block(h)
        for level in reversed(range(self.config.num_levels)):
            h = self.dec_convs[level](F.interpolate(h, scale_factor=2.0, mode="nearest"))
            if self.config.skip_connections:
                h = h + skips[level]
            gamma, beta = self.dec_sft[level](f_src[level], f_tgt[level])
            params.append((gamma, beta))
            h = _act(gamma * self.norm(h) + beta)
        out = torch.tanh(self.to_rgb(h))
        return out[:, :, :out_h, :out_w], params

    def _check_inputs(self, image: Tensor, source: Tensor, target: Tensor) -> None:
        if image.dim() != 4 or image.shape[1] != 3:
            raise ValueError(f"image must be (B, 3, H, W), got {tuple(image.shape)}")
        for name, t in (("source", source), ("target", target)):
            if t.dim() != 4 or t.shape[1] != self.num_classes:
                raise ValueError(
                    f"{name} must be one-hot (B, {self.num_classes}, H, W), got {tuple(t.shape)}"
                )
            if t.shape[0] != image.shape[0]:
                raise ValueError(f"{name} batch {t.shape[0]} != image batch {image.shape[0]}")
        if source.shape[-2:] != image.shape[-2:]:
            raise ValueError(
                f"source size {tuple(source.shape[-2:])} != image size {tuple(image.shape[-2:])}"
            )
