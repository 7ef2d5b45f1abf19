"""Loss curves of a training log, drawn with PIL (no plotting library needed)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

_CURVES = (
    ("rec_l1", "sample_l1"),
    ("g_gan", "d_loss"),
    ("feature_matching",),
    ("alignment", "seg"),
    ("patch", "fixed_point"),
)
_COLOURS = ((31, 119, 180), (214, 39, 40), (44, 160, 44))


def plot_losses(records: Sequence[dict[str, Any]]) -> np.ndarray:
    """The loss curves of a log (smoothed, one panel per loss group) as an (H, W, 3) uint8 image."""
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
    return np.asarray(img)
