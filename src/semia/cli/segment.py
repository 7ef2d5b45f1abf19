"""`semia segment`: a label map for your own photo from a few scribbles."""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

from semia.cli.flags import (
    COMMON,
    add_seed_flag,
    check_distinct_outputs,
    check_label_output,
    check_max_size,
    check_output,
)

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `segment` sub-command."""
    p = subparsers.add_parser(
        "segment",
        parents=[COMMON],
        help="make a label map for a photo from a few scribbles",
        description="Label every pixel of IMAGE with one of the stroke colours of SCRIBBLES: "
        "a few strokes per region, one distinct colour per region, on a transparent or white "
        "background (anti-aliased strokes are fine; a scaled copy of the photo's size is "
        "fine). Boundaries follow the photo's edges. No trained weights are used.",
    )
    p.add_argument("--image", required=True, help="the photo")
    p.add_argument("--scribbles", required=True, help="the strokes image (PNG)")
    p.add_argument("--out", required=True, help="output label map (.png: exact colours)")
    p.add_argument("--overlay", metavar="PNG", help="also write the map blended over the photo")
    p.add_argument(
        "--max-size", type=int, default=None, metavar="PX",
        help="downscale the photo to this longest side first (default: its own size)",
    )  # fmt: skip
    add_seed_flag(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Segment, write the map (and the overlay); InputError for bad input (exit 2)."""
    from semia.io import read_image, write_image, write_labels
    from semia.segment import overlay, read_scribbles, segment

    check_max_size(args)
    check_label_output(Path(args.out), args.image, args.scribbles)
    if args.overlay:
        check_distinct_outputs({"--out": args.out, "--overlay": args.overlay})
        check_output(Path(args.overlay), args.image, args.scribbles, flag="--overlay")
    image = read_image(args.image, max_size=args.max_size)
    scribbles = read_scribbles(args.scribbles)
    start = time.perf_counter()
    labels = segment(image, scribbles, seed=args.seed, name=f"--scribbles {args.scribbles}")
    log.info(
        "%s: %dx%d labelled with %d classes in %.1f s",
        args.image, labels.size[1], labels.size[0], labels.num_classes,
        time.perf_counter() - start,
    )  # fmt: skip
    write_labels(args.out, labels)
    if args.overlay:
        write_image(args.overlay, overlay(image, labels))
    return 0
