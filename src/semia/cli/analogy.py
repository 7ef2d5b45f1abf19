"""`semia analogy`: training-free guided patch synthesis of a photo in a new layout."""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING

from semia.cli.flags import (
    COMMON,
    SEED_MAX,
    add_config_flags,
    add_device_flag,
    add_input_flags,
    add_seed_flag,
    add_settings_flags,
    check_max_size,
    check_output,
    config_from_args,
    resolve_device,
)
from semia.cli.progress import Bar
from semia.config import PatchConfig
from semia.errors import InputError

if TYPE_CHECKING:
    import numpy as np

    from semia.io import LabelMap

log = logging.getLogger("semia")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "analogy",
        parents=[COMMON],
        help="training-free guided patch synthesis of a photo in a new layout",
        description="Synthesize IMAGE in the layout TARGET (a label map), SKETCH (a line "
        "drawing, dark lines on a light background, of the photo's aspect ratio) or both, by "
        "coarse-to-fine guided patch synthesis (no training).",
    )
    p.add_argument("--image", required=True, help="source photo")
    p.add_argument("--label", help="label map of the source photo (needed with --target)")
    p.add_argument("--target", help="target label map in the source's colours")
    p.add_argument(
        "--sketch", help="target line sketch (start from `semia edges`); with --label and "
        "--target, labels and edges guide together",
    )  # fmt: skip
    p.add_argument(
        "--edge-detail", type=float, default=None, metavar="D",
        help="detail of the photo's edge map for --sketch, 0..1 (default: that of semia edges)",
    )  # fmt: skip
    p.add_argument("--out", required=True, help="output image file (.png, .jpg, ...)")
    add_seed_flag(p)
    p.add_argument(
        "--samples", type=int, default=1, help="write K results with seeds seed..seed+K-1 "
        f"(at most {SEED_MAX}) as OUT_0, OUT_1, ... (default: 1)",
    )  # fmt: skip
    add_device_flag(p)
    add_input_flags(p)
    add_settings_flags(p)
    add_config_flags(p, PatchConfig)
    p.set_defaults(func=run)


def run_analogy(
    image: np.ndarray,
    labels: LabelMap | None,
    target: LabelMap | None,
    seed: int,
    config: PatchConfig,
    device: str,
    quiet: bool,
    desc: str,
    sketch: np.ndarray | None = None,
    edge_detail: float | None = None,
) -> np.ndarray:
    """`semia.analogy` with a progress bar named `desc`."""
    from semia.patch import analogy

    bar = Bar(desc, quiet)
    try:
        return analogy(
            image,
            labels,
            target,
            sketch=sketch,
            edge_detail=edge_detail,
            seed=seed,
            config=config,
            device=device,
            progress=bar,
        )
    finally:
        bar.close()


def _check_layout_flags(args: argparse.Namespace) -> None:
    if args.sketch is None and (args.label is None or args.target is None):
        raise InputError("give --label and --target (a new label map), or --sketch, or all three")
    if (args.label is None) != (args.target is None):
        missing = "--target" if args.target is None else "--label"
        raise InputError(
            f"{missing} is missing: a new layout by labels needs both --label and --target"
        )


def run(args: argparse.Namespace) -> int:
    from semia.io import load_scene, read_image, read_target, write_image

    _check_layout_flags(args)
    config = config_from_args(PatchConfig, args)
    check_max_size(args)
    if not 1 <= args.samples <= 1000:
        raise InputError(f"--samples must be between 1 and 1000, got {args.samples}")
    if args.seed + args.samples - 1 > SEED_MAX:
        raise InputError(
            f"--seed {args.seed} with --samples {args.samples} needs seeds up to "
            f"{args.seed + args.samples - 1}, above {SEED_MAX}: use a --seed of at most "
            f"{SEED_MAX - args.samples + 1}"
        )
    out = Path(args.out)
    paths = [out] if args.samples == 1 else [
        out.with_name(f"{out.stem}_{k}{out.suffix}") for k in range(args.samples)
    ]  # fmt: skip
    for path in paths:
        check_output(path, args.image, args.label, args.target, args.sketch)
    device = resolve_device(args.device)
    if args.label is None:
        image, labels, target = read_image(args.image, args.max_size), None, None
    else:
        image, labels = load_scene(args.image, args.label, args.max_size)
        target = read_target(args.target, labels, args.unknown_labels, args.max_size)
    sketch = None
    if args.sketch is not None:
        against = "the photo" if target is None else f"--target {args.target}"
        size = image.shape[:2] if target is None else target.ids.shape
        sketch = read_sketch(args.sketch, size, against)
    for k, path in enumerate(paths):
        t0 = time.perf_counter()
        result = run_analogy(
            image,
            labels,
            target,
            args.seed + k,
            config,
            device,
            args.quiet,
            "analogy",
            sketch,
            args.edge_detail,
        )
        write_image(path, result)
        log.info("wrote %s (%.2f s)", path, time.perf_counter() - t0)
        print(path)
    return 0


def read_sketch(path: str, size: tuple[int, int], against: str) -> np.ndarray:
    """The --sketch image (h, w, 3) float, checked here so errors name the flag and file:
    `size` (H, W) is that of `against` (the photo or a target map)."""
    from semia.apps.sketch import sketch_edges
    from semia.io import read_image

    try:
        sketch = read_image(path, 2048)
    except InputError as e:  # read_image calls every file an image
        raise InputError(str(e).replace(f"image {path}", f"--sketch {path}", 1)) from None
    sketch_edges(sketch, size, f"--sketch {path}", against)  # another aspect, a blank sketch
    return sketch
