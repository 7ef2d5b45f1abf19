"""`semia train` and `semia generate`: the SemIA GAN."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from dataclasses import replace
from pathlib import Path

from semia.cli.flags import (
    COMMON,
    add_config_flags,
    add_device_flag,
    add_input_flags,
    add_seed_flag,
    add_settings_flags,
    add_unknown_labels_flag,
    check_max_size,
    config_from_args,
    resolve_device,
)
from semia.cli.progress import Bar
from semia.config import GenerateConfig, TrainConfig
from semia.errors import InputError, check_min_size

log = logging.getLogger("semia")

PRESETS = {"default": TrainConfig, "original": TrainConfig.original}  # --preset NAME


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        parents=[COMMON],
        help="train the SemIA GAN on one photo and its label map",
        description="Train the SemIA conditional single-image GAN on IMAGE and LABEL. Writes "
        "OUT/model.safetensors (everything generate needs), resumable checkpoints, log.jsonl, "
        "previews/ and loss.png. Ctrl-C saves a checkpoint; --resume continues it.",
    )
    p.add_argument("--image", required=True, help="source photo")
    p.add_argument(
        "--label", help="label map of the source photo (not needed with --condition edges)"
    )
    p.add_argument("--out", required=True, help="model folder")
    add_seed_flag(p)
    p.add_argument(
        "--preview-target", nargs="*", default=[], metavar="P2",
        help="target label maps drawn on the preview sheets",
    )  # fmt: skip
    p.add_argument(
        "--resume", action="store_true",
        help="continue the run in OUT (with a larger --iters it trains on; the learning-rate "
        "decay and the full-size phase follow the new --iters)",
    )  # fmt: skip
    p.add_argument("--dry-run", action="store_true", help="print the resolved config and exit")
    add_device_flag(p)
    add_input_flags(p, training=True)
    add_settings_flags(p, presets=tuple(k for k in PRESETS if k != "default"))
    add_config_flags(p, TrainConfig)
    p.set_defaults(func=run_train)

    p = sub.add_parser(
        "generate",
        parents=[COMMON],
        help="synthesize target layouts with a trained SemIA model",
        description="Synthesize each target layout with a trained model: G refines the "
        "training-free result (or, with --generate-init fill, G alone as published). The "
        "generation settings stored in the model apply unless --generate-* flags override them "
        "(they need no retraining). Every target is read and checked before the first output "
        "is written.",
    )
    p.add_argument("--model", required=True, help="model folder or its model.safetensors")
    p.add_argument("--target", nargs="+", default=[], help="target label map(s)")
    p.add_argument(
        "--sketch", nargs="+", default=[],
        help="target sketch(es) for models trained with --condition edges or labels+edges "
        "(with both, the i-th sketch goes with the i-th target)",
    )  # fmt: skip
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument(
        "--max-size", type=int, default=None, metavar="PX",
        help="downscale targets to this longest side (default: the model's source size)",
    )  # fmt: skip
    add_seed_flag(p, "seed of the training-free result G refines (generate.init analogy)")
    add_unknown_labels_flag(p)
    add_device_flag(p)
    add_config_flags(p, GenerateConfig, prefix="generate__")
    p.set_defaults(func=run_generate)


def _flag_for(setting: str) -> str:
    return "--" + setting.replace(".", "-").replace("_", "-")


def run_train(args: argparse.Namespace) -> int:
    config = config_from_args(TrainConfig, args, PRESETS[args.preset]())
    if args.dry_run:
        print(json.dumps(config.to_dict(), indent=2))
        return 0
    from semia.gan import SemIA
    from semia.gan.trainer import ResumeMismatch
    from semia.io import check_writable, load_scene, read_image, read_target

    check_max_size(args)
    if args.label is None and config.condition != "edges":
        raise InputError(
            f"--label is needed with --condition {config.condition}; use --condition edges to "
            "train on the photo alone"
        )
    out = check_writable(Path(args.out), folder=True)
    device = resolve_device(args.device)
    if args.label is None:
        if args.preview_target:
            raise InputError("--preview-target needs --label")
        image, labels = read_image(args.image, args.max_size), None
    else:
        image, labels = load_scene(args.image, args.label, args.max_size)
    check_min_size(image, f"--image {args.image}")
    previews = [
        read_target(p, labels, args.unknown_labels, args.max_size) for p in args.preview_target
    ]
    log.info(
        "training on %dx%d px, condition %s, %d iterations, device %s",
        image.shape[1], image.shape[0], config.condition, config.iters, device,
    )  # fmt: skip
    bar = Bar("train", args.quiet)
    t0 = time.perf_counter()
    try:
        SemIA.train(
            image,
            labels,
            out,
            config,
            device=device,
            seed=args.seed,
            preview_targets=[t.ids for t in previews],
            resume=args.resume,
            progress=bar,
        )
    except ResumeMismatch as e:
        flags = " ".join(f"{_flag_for(k)} {v}" for k, v, _ in e.differences)
        raise InputError(f"{e} (flags that restore them: {flags})") from None
    except KeyboardInterrupt:
        bar.close()
        print(
            f"semia: interrupted; a checkpoint was saved in {out}: run the same command with "
            "--resume to continue",
            file=sys.stderr,
        )
        return 130
    finally:
        bar.close()
    log.info("trained in %.1f s; model, log and previews in %s", time.perf_counter() - t0, out)
    print(out / "model.safetensors")
    return 0


def run_generate(args: argparse.Namespace) -> int:
    from semia.gan import SemIA
    from semia.io import check_writable, read_target, write_image

    check_max_size(args)
    out = check_writable(Path(args.out), folder=True)
    device = resolve_device(args.device)
    model = SemIA.load(args.model, device=device)
    settings = config_from_args(GenerateConfig, args, model.config.generate, "generate__")
    model.config = replace(model.config, generate=settings)
    source = model.labels
    max_size = args.max_size or max(source.size)
    targets = [read_target(path, source, args.unknown_labels, max_size) for path in args.target]
    for path, target in zip(args.target, targets, strict=True):
        check_min_size(target.ids, f"--target {path}")
    sketches = _read_sketches(args, model, targets)
    if not targets:
        targets = [None] * len(sketches)
    if not sketches:
        sketches = [None] * len(targets)
    names: list[str] = []
    for path in args.target or args.sketch:  # two targets with one file name: keep both
        name = Path(path).stem
        while name in names:
            name += "_"
        names.append(name)
    for name, target, sketch in zip(names, targets, sketches, strict=True):
        t0 = time.perf_counter()
        result = model.generate(target, seed=args.seed, sketch=sketch)
        written = write_image(out / f"{name}.png", result)
        log.info("wrote %s (%.3f s)", written, time.perf_counter() - t0)
        print(written)
    return 0


def _read_sketches(args: argparse.Namespace, model, targets: list) -> list:
    """The --sketch images, checked against the model's condition and the targets."""
    from semia.cli.analogy import read_sketch
    from semia.gan.conditions import uses_edges, uses_labels

    condition = model.condition
    if uses_labels(condition) and not args.target:
        raise InputError(f"--target is needed: the model is conditioned on {condition}")
    if uses_edges(condition) and not args.sketch:
        raise InputError(f"--sketch is needed: the model is conditioned on {condition}")
    if not uses_edges(condition) and args.sketch:
        raise InputError(
            "--sketch: this model was trained on label maps only (retrain it with --condition "
            "edges or labels+edges)"
        )
    if args.target and args.sketch and len(args.target) != len(args.sketch):
        raise InputError(
            f"give one --sketch per --target ({len(args.sketch)} sketches, "
            f"{len(args.target)} targets)"
        )
    sketches = []
    for i, path in enumerate(args.sketch):  # of the i-th target's aspect, else the photo's
        if targets:
            size, against = targets[i].ids.shape, f"--target {args.target[i]}"
        else:
            size, against = model.source_labels.shape, "the photo"
        sketches.append(read_sketch(path, size, against))
    return sketches
