"""`semia train` and `semia generate`: the SemIA GAN."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

from semia.cli.flags import (
    COMMON,
    add_config_flags,
    add_device_flag,
    add_input_flags,
    add_settings_flags,
    add_source_args,
    add_unknown_labels_flag,
    check_max_size,
    config_from_args,
    resolve_device,
)
from semia.cli.progress import Bar
from semia.config import TrainConfig
from semia.errors import InputError

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
    add_source_args(p)
    p.add_argument("--out", required=True, help="model folder")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
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
        description="One forward pass of a trained model per target label map. Every target is "
        "read and checked before the first output is written.",
    )
    p.add_argument("--model", required=True, help="model folder or its model.safetensors")
    p.add_argument("--target", required=True, nargs="+", help="target label map(s)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument(
        "--max-size", type=int, default=None, metavar="PX",
        help="downscale targets to this longest side (default: the model's source size)",
    )  # fmt: skip
    p.add_argument(
        "--seed", type=int, default=0,
        help="seed of the training-free result G refines (generate.init analogy; default: 0)",
    )  # fmt: skip
    add_unknown_labels_flag(p)
    add_device_flag(p)
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
    from semia.io import check_writable, load_scene, read_target

    check_max_size(args)
    out = check_writable(Path(args.out), folder=True)
    device = resolve_device(args.device)
    image, labels = load_scene(args.image, args.label, args.max_size)
    previews = [
        read_target(p, labels, args.unknown_labels, args.max_size) for p in args.preview_target
    ]
    log.info(
        "training on %dx%d px, %d labels, %d iterations, device %s",
        image.shape[1], image.shape[0], labels.num_classes, config.iters, device,
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
    source = model.labels
    max_size = args.max_size or max(source.size)
    targets = [read_target(path, source, args.unknown_labels, max_size) for path in args.target]
    names: list[str] = []
    for path in args.target:  # two targets with one file name: keep both
        name = Path(path).stem
        while name in names:
            name += "_"
        names.append(name)
    for name, target in zip(names, targets, strict=True):
        t0 = time.perf_counter()
        result = model.generate(target, seed=args.seed)
        written = write_image(out / f"{name}.png", result)
        log.info("wrote %s (%.3f s)", written, time.perf_counter() - t0)
        print(written)
    return 0
