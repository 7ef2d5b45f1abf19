"""`semia edges` and `semia remove`: the sketch-to-image and object-removal applications."""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

from semia.cli.flags import (
    COMMON,
    add_config_flags,
    add_device_flag,
    add_input_flags,
    add_seed_flag,
    add_settings_flags,
    check_distinct_outputs,
    check_label_output,
    check_max_size,
    check_output,
    config_from_args,
    resolve_device,
)
from semia.config import PatchConfig
from semia.errors import InputError, check_min_size

log = logging.getLogger("semia")


def register(sub: argparse._SubParsersAction) -> None:
    from semia.apps import DEFAULT_DETAIL

    p = sub.add_parser(
        "edges",
        parents=[COMMON],
        help="write a photo's sketch-style edge map (a start for a --sketch)",
        description="Write the outlines of IMAGE as dark one-pixel lines on white: the map "
        "semia compares a --sketch with. Edit it (move, add, erase lines) and pass it to "
        "`semia analogy --sketch` or `semia generate --sketch`.",
    )
    p.add_argument("--image", required=True, help="photo")
    p.add_argument("--out", required=True, help="output image file (.png)")
    p.add_argument(
        "--edge-detail", type=float, default=DEFAULT_DETAIL, metavar="D",
        help=f"0 (main outlines only) .. 1 (finer structure) (default: {DEFAULT_DETAIL})",
    )  # fmt: skip
    p.add_argument(
        "--max-size", type=int, default=None, metavar="PX",
        help="downscale the photo to this longest side first (default: full size)",
    )  # fmt: skip
    p.set_defaults(func=run_edges)

    p = sub.add_parser(
        "remove",
        parents=[COMMON],
        help="remove an object from a photo (mask or label class)",
        description="Remove what MASK covers (white = remove; any image of the photo's aspect "
        "ratio) or every region of one label class (--remove-label). The masked labels are "
        "filled from their surroundings so that boundaries continue, then synthesized. Without "
        "--label, semia first segments the photo itself.",
    )
    p.add_argument("--image", required=True, help="photo")
    p.add_argument("--mask", help="mask image: white where to remove, black elsewhere")
    p.add_argument("--label", help="label map of the photo (optional with --mask)")
    p.add_argument(
        "--remove-label", metavar="COLOUR",
        help="remove every region of the class with this colour in --label (#rrggbb or r,g,b)",
    )  # fmt: skip
    p.add_argument("--out", required=True, help="output image file")
    p.add_argument(
        "--save-labels", metavar="PNG", help="also write the filled label map (.png: exact colours)"
    )
    p.add_argument(
        "--method",
        choices=("analogy", "gan"),
        default="analogy",
        help="analogy (training-free, default) or gan (needs --model)",
    )
    p.add_argument("--model", help="trained SemIA model folder for --method gan")
    add_seed_flag(p)
    add_device_flag(p)
    add_input_flags(p)
    add_settings_flags(p)
    add_config_flags(p, PatchConfig)
    p.set_defaults(func=run_remove)


def run_edges(args: argparse.Namespace) -> int:
    from semia.apps.edges import edges
    from semia.io import read_image, write_image

    if not 0.0 <= args.edge_detail <= 1.0:
        raise InputError(f"--edge-detail must lie in [0, 1], got {args.edge_detail}")
    check_max_size(args)
    out = check_output(Path(args.out), args.image)
    image = read_image(args.image, args.max_size)
    check_min_size(image, f"--image {args.image}")
    t0 = time.perf_counter()
    lines = edges(image, args.edge_detail)
    written = write_image(out, 1.0 - lines)  # dark lines on white, like a drawing
    log.info("wrote %s (%.2f s, %.1f %% line pixels)", written, time.perf_counter() - t0,
             100 * lines.mean())  # fmt: skip
    print(written)
    return 0


def run_remove(args: argparse.Namespace) -> int:
    from semia.apps.removal import (
        label_mask,
        parse_colour,
        read_mask,
        removal_labels,
        remove,
    )
    from semia.io import load_scene, read_image, write_image, write_labels

    if (args.mask is None) == (args.remove_label is None):
        raise InputError("give either --mask (white = remove) or --remove-label COLOUR")
    if args.remove_label is not None and args.label is None:
        raise InputError("--remove-label needs the label map (--label)")
    if args.method == "gan" and args.model is None:
        raise InputError("--method gan needs a trained model (--model)")
    config = config_from_args(PatchConfig, args)
    check_max_size(args)
    out = check_output(Path(args.out), args.image, args.mask, args.label)
    if args.save_labels is not None:
        check_distinct_outputs({"--out": args.out, "--save-labels": args.save_labels})
        check_label_output(
            Path(args.save_labels), args.image, args.mask, args.label, flag="--save-labels"
        )
    device = resolve_device(args.device)
    if args.label is None:
        image, labels = read_image(args.image, args.max_size), None
    else:
        image, labels = load_scene(args.image, args.label, args.max_size)
    if args.remove_label is not None:
        mask = label_mask(labels, parse_colour(args.remove_label))
    else:
        mask = read_mask(args.mask, image.shape[:2])
    model = None
    if args.method == "gan":
        from semia.gan import SemIA

        model = SemIA.load(args.model, device=device)
        if model.source_image.shape != image.shape:
            raise InputError(
                f"--model {args.model} was trained on a {model.source_image.shape[1]}x"
                f"{model.source_image.shape[0]} photo, but --image is {image.shape[1]}x"
                f"{image.shape[0]}: use the model of this photo (or the same --max-size)"
            )
        if labels is None:
            labels = model.labels
    t0 = time.perf_counter()
    result = remove(
        image,
        mask,
        labels,
        method=args.method,
        model=model,
        seed=args.seed,
        config=config,
        device=device,
    )
    written = write_image(out, result)
    log.info("wrote %s (%.2f s, %.1f %% removed)", written, time.perf_counter() - t0,
             100 * mask.mean())  # fmt: skip
    print(written)
    if args.save_labels is not None:
        from semia.io import LabelMap
        from semia.io.palette import default_palette

        filled = removal_labels(image, mask, labels, seed=args.seed)
        if labels is None:
            labels = LabelMap(filled, default_palette(int(filled.max()) + 1))
        path = write_labels(Path(args.save_labels), labels.with_ids(filled))
        print(path)
    return 0
