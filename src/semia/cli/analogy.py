"""`semia analogy`: training-free guided patch synthesis of a photo in a new layout."""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING

from semia.cli.flags import (
    COMMON,
    add_config_flags,
    add_device_flag,
    add_input_flags,
    add_settings_flags,
    add_source_args,
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
        description="Synthesize IMAGE in the layout TARGET by coarse-to-fine guided patch "
        "synthesis (no training).",
    )
    add_source_args(p)
    p.add_argument("--target", required=True, help="target label map in the source's colours")
    p.add_argument("--out", required=True, help="output image file (.png, .jpg, ...)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument(
        "--samples", type=int, default=1, help="write K results with seeds seed..seed+K-1 "
        "as OUT_0, OUT_1, ... (default: 1)",
    )  # fmt: skip
    add_device_flag(p)
    add_input_flags(p)
    add_settings_flags(p)
    add_config_flags(p, PatchConfig)
    p.set_defaults(func=run)


def run_analogy(
    image: np.ndarray,
    labels: LabelMap,
    target: LabelMap,
    seed: int,
    config: PatchConfig,
    device: str,
    quiet: bool,
    desc: str,
) -> np.ndarray:
    """`semia.analogy` with a progress bar named `desc`."""
    from semia.patch import analogy

    bar = Bar(desc, quiet)
    try:
        return analogy(image, labels, target, seed=seed, config=config, device=device, progress=bar)
    finally:
        bar.close()


def run(args: argparse.Namespace) -> int:
    from semia.io import load_scene, read_target, write_image

    config = config_from_args(PatchConfig, args)
    check_max_size(args)
    if not 1 <= args.samples <= 1000:
        raise InputError(f"--samples must be between 1 and 1000, got {args.samples}")
    out = Path(args.out)
    paths = [out] if args.samples == 1 else [
        out.with_name(f"{out.stem}_{k}{out.suffix}") for k in range(args.samples)
    ]  # fmt: skip
    for path in paths:
        check_output(path, args.image, args.label, args.target)
    device = resolve_device(args.device)
    image, labels = load_scene(args.image, args.label, args.max_size)
    target = read_target(args.target, labels, args.unknown_labels, args.max_size)
    for k, path in enumerate(paths):
        t0 = time.perf_counter()
        result = run_analogy(
            image, labels, target, args.seed + k, config, device, args.quiet, "analogy"
        )
        write_image(path, result)
        log.info("wrote %s (%.2f s)", path, time.perf_counter() - t0)
        print(path)
    return 0
