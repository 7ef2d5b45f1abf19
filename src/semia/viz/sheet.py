"""Side-by-side contact sheets: rows of images under a header of column titles."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from semia.io.arrays import to_uint8

_PAD = 4  # pixels between cells
_HEADER = 18  # height of the title row and of each row's caption


def make_sheet(
    rows: Sequence[Sequence[np.ndarray]],
    titles: Sequence[str] = (),
    captions: Sequence[str] = (),
    cell_height: int = 160,
) -> np.ndarray:
    """Lay out images in a grid, every cell scaled to one height.

    Args:
        rows: rows of (H, W, 3) images, uint8 or float in [0, 1]; rows may differ in length.
        titles: column titles drawn above the first row.
        captions: one caption per row, drawn above that row.
        cell_height: height of every cell in pixels (widths keep each image's aspect ratio).

    Returns:
        (H, W, 3) uint8 sheet on a white background.
    """
    if not rows or not any(len(r) for r in rows):
        raise ValueError("make_sheet needs at least one image")
    n_cols = max(len(r) for r in rows)
    scaled = [
        [
            np.asarray(
                Image.fromarray(to_uint8(im)).resize(
                    (max(1, round(im.shape[1] * cell_height / im.shape[0])), cell_height),
                    Image.Resampling.LANCZOS,
                )
            )
            for im in row
        ]
        for row in rows
    ]
    col_w = [max((r[c].shape[1] for r in scaled if c < len(r)), default=0) for c in range(n_cols)]
    title_h = _HEADER if titles else 0
    cap_h = _HEADER if captions else 0
    width = sum(col_w) + _PAD * (n_cols + 1)
    height = title_h + len(rows) * (cell_height + cap_h + _PAD) + _PAD
    sheet = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default()
    x = _PAD
    for c, title in enumerate(list(titles)[:n_cols]):
        draw.text((x, 3), title, fill="black", font=font)
        x += col_w[c] + _PAD
    y = title_h + _PAD
    for r, row in enumerate(scaled):
        if captions:
            draw.text((_PAD, y + 3), captions[r] if r < len(captions) else "", fill="black")
            y += cap_h
        x = _PAD
        for c, im in enumerate(row):
            sheet.paste(Image.fromarray(im), (x, y))
            x += col_w[c] + _PAD
        y += cell_height + _PAD
    return np.asarray(sheet)
