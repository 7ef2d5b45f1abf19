"""`semia labels` and `semia evaluate`: look at label maps and judge results."""

from __future__ import annotations

import argparse
import json

from semia.cli.flags import (
    COMMON,
    add_source_args,
    add_unknown_labels_flag,
    check_max_size,
)
from semia.errors import MIN_SIDE, InputError, check_min_size


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "labels",
        parents=[COMMON],
        help="print the label palette found in a label map",
        description="Print the labels of FILE: id, colour, pixel share; with --against, match "
        "FILE as a target against a source label map and list colours that did not match.",
    )
    p.add_argument("file", help="label map (image or .npy)")
    p.add_argument("--against", metavar="SOURCE", help="source label map to match against")
    p.add_argument("--max-size", type=int, default=None, metavar="PX", help="downscale first")
    p.set_defaults(func=run_labels)

    p = sub.add_parser(
        "evaluate",
        parents=[COMMON],
        help="measure how well an output matches a target layout and the source's look",
        description="Semantic alignment, patch realism and coherence of OUTPUT (and PSNR/SSIM "
        "against a reference).",
    )
    add_source_args(p)
    p.add_argument("--target", required=True, help="target label map the output should follow")
    p.add_argument("--output", required=True, help="synthesized image to judge")
    p.add_argument("--reference", help="ground-truth image for PSNR / SSIM")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument(
        "--max-size", type=int, default=None, metavar="PX",
        help="read the source and target at this longest side (default: the output's, so an "
        "output of `semia analogy` or `semia generate` is judged at the size it was made)",
    )  # fmt: skip
    add_unknown_labels_flag(p)
    p.set_defaults(func=run_evaluate)


def run_labels(args: argparse.Namespace) -> int:
    from semia.io import match_target, read_label_map

    check_max_size(args)
    if args.against is None:
        labels = read_label_map(args.file, args.max_size)
        print(f"{args.file}: {labels.size[1]}x{labels.size[0]}, {labels.num_classes} labels")
        print(" id  colour                     share")
        print(labels.describe())
        return 0
    source = read_label_map(args.against, args.max_size)
    target, unknown = match_target(args.file, source, args.max_size)
    print(
        f"{args.file} against {args.against}: {target.size[1]}x{target.size[0]}, "
        f"uses {int((target.counts() > 0).sum())} of the source's {source.num_classes} labels"
    )
    print(" id  colour                     share")
    print(target.describe())
    if unknown:
        print(f"{len(unknown)} label(s) not in the source (would map to the nearest id):")
        for u in unknown:
            print(f"  {u.describe()} -> id {u.nearest}")
    else:
        print("every label matches the source palette")
    return 0


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def _check_read_size(path: str, image, max_size: int, flag_given: bool) -> None:
    """Refuse a source photo read below MIN_SIDE, saying when the longest side it was read at
    (--max-size, or the output's) is what made it too small for its aspect ratio."""
    from semia.io import file_size
    from semia.io.arrays import fit_size

    height, width = file_size(path, "--image")
    if min(image.shape[:2]) < MIN_SIDE and max(height, width) > max_size:
        least = max_size
        while min(fit_size(height, width, least)) < MIN_SIDE:
            least += 1
        read_at = (
            f"--max-size {max_size}" if flag_given else f"the output's longest side {max_size}"
        )
        raise InputError(
            f"--image {path} is {width}x{height} px; read at {read_at} it becomes "
            f"{image.shape[1]}x{image.shape[0]} px, below {MIN_SIDE}x{MIN_SIDE} for its aspect "
            f"ratio: use a --max-size of at least {least}"
        )
    check_min_size(image, f"--image {path}")


def run_evaluate(args: argparse.Namespace) -> int:
    from semia.eval import evaluate
    from semia.io import file_size, load_scene, read_image, read_target

    check_max_size(args)
    file_size(args.output, "--output")  # a missing or unreadable file, named by its flag
    if args.reference is not None:
        file_size(args.reference, "--reference")
    output = read_image(args.output)
    check_min_size(output, f"--output {args.output}")
    max_size = args.max_size or max(output.shape[:2])
    image, labels = load_scene(args.image, args.label, max_size)
    _check_read_size(args.image, image, max_size, args.max_size is not None)
    target = read_target(args.target, labels, args.unknown_labels, max_size)
    if output.shape[:2] != target.size:
        (oh, ow), (th, tw) = output.shape[:2], target.size
        aspect_differs = abs(ow * th - tw * oh) > max(ow, oh, tw, th)  # by more than a pixel
        if not aspect_differs and max(oh, ow) > max(th, tw) and max(th, tw) < max_size:
            raise InputError(  # the files are smaller than the output: no --max-size can help
                f"output {args.output} is {ow}x{oh}, larger than the source and target map "
                f"({tw}x{th} at full size); judge an output made from them at their size or "
                "smaller"
            )
        advice = (
            "their aspect ratios differ: judge an output made from this target"
            if aspect_differs
            else "they must match: pass the --max-size the output was made with"
        )
        raise InputError(
            f"output {args.output} is {ow}x{oh} but the target map is {tw}x{th} (read at a "
            f"longest side of {max_size} px); {advice}"
        )
    reference = None
    if args.reference is not None:
        reference = read_image(args.reference)
        if reference.shape[:2] != target.size:
            raise InputError(
                f"reference {args.reference} is {reference.shape[1]}x{reference.shape[0]}, "
                f"expected {target.size[1]}x{target.size[0]} like the target map"
            )
    result = evaluate(
        image, labels.ids, target.ids, output, num_classes=labels.num_classes, reference=reference
    )
    if args.json:
        print(json.dumps(result))
        return 0
    width = max(len(k) for k in result)
    for key, value in result.items():
        if isinstance(value, dict):
            value = ", ".join(f"{k}: {_fmt(v)}" for k, v in value.items()) or "-"
        else:
            value = _fmt(value)
        print(f"{key:<{width}}  {value}")
    return 0
