"""The `semia` command line: parse -> config -> call the library; nothing else.

Exit codes: 0 success, 1 unexpected internal error, 2 bad input or usage, 130 interrupted.
Messages and progress go to stderr; results (paths, JSON) go to stdout.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import json
import logging
import re
import sys
import time
from collections.abc import Callable, Sequence
from importlib import resources
from pathlib import Path

import numpy as np

from semia import __version__
from semia.config import InputConfig, PatchConfig, TrainConfig
from semia.io import (
    IMAGE_SUFFIXES,
    InputError,
    LabelMap,
    find_scenes,
    load_scene,
    match_target,
    read_image,
    read_label_map,
    read_target,
    write_image,
)

log = logging.getLogger("semia")

DEMO_MAX_SIZE = 192  # longest side of the packaged scenes in `semia demo`
DEMO_GAN_ITERS = 300  # GAN iterations in `semia demo` (a shortened default schedule)
DEMO_GAN_SCENE = "tree"  # the packaged scene the demo trains the GAN on

# ----------------------------------------------------------------------------------------------
# Flags built from the config dataclasses (each default and its help exist once, in config.py)


def _field_help(cls: type) -> dict[str, str]:
    """The trailing comment of every field in a dataclass's source: its documentation."""
    helps: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not dataclasses.is_dataclass(klass):
            continue
        for line in inspect.getsource(klass).splitlines():
            m = re.match(r"\s+(\w+): [^=]+=.*?#\s*(.*)$", line)
            if m:
                helps[m.group(1)] = m.group(2).replace("%", "%%")
    return helps


def add_config_flags(
    parser: argparse.ArgumentParser, config: object, skip: Sequence[str] = (), prefix: str = ""
) -> None:
    """Add a --flag for every scalar field of a config dataclass.

    Args:
        config: the dataclass (its defaults) or an instance (its values become the defaults).
        skip: field names that get no flag.
        prefix: dest prefix for nested configs.

    Fields that are themselves config dataclasses get their own flags, named
    --<field>-<subfield> (e.g. --loss-weights-gan); tuple fields get no flag.
    """
    cls = config if isinstance(config, type) else type(config)
    instance = cls() if isinstance(config, type) else config
    helps = _field_help(cls)
    group = parser.add_argument_group(f"{cls.__name__} settings")
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        dest = prefix + f.name
        default = getattr(instance, f.name)
        if dataclasses.is_dataclass(default):
            add_config_flags(parser, default, prefix=f"{dest}__")
            continue
        flag = "--" + dest.replace("__", "-").replace("_", "-")
        text = f"{helps.get(f.name, '')} (default: {default})"
        if isinstance(default, bool):
            group.add_argument(
                flag, dest=dest, default=default, action=argparse.BooleanOptionalAction, help=text
            )
        elif isinstance(default, int | float | str):
            group.add_argument(flag, dest=dest, type=type(default), default=default, help=text)


def config_from_args(config: object, args: argparse.Namespace, prefix: str = ""):
    """Build a config (nested ones too) from flags made by `add_config_flags`.

    Args:
        config: the dataclass or the instance that `add_config_flags` was given.
    """
    instance = config() if isinstance(config, type) else config
    values = {}
    for f in dataclasses.fields(instance):
        dest = prefix + f.name
        current = getattr(instance, f.name)
        if dataclasses.is_dataclass(current):
            values[f.name] = config_from_args(current, args, prefix=f"{dest}__")
        elif hasattr(args, dest):
            values[f.name] = getattr(args, dest)
    return dataclasses.replace(instance, **values)


def _add_input_flags(parser: argparse.ArgumentParser, training: bool = False) -> None:
    """--max-size (InputConfig.max_size, or train_max_size for training) and --unknown-labels."""
    used, unused = ("train_max_size", "max_size") if training else ("max_size", "train_max_size")
    add_config_flags(parser, InputConfig, skip=(unused,))
    for action in parser._actions:
        if action.dest == "unknown_labels":
            action.choices = ("error", "nearest")
        if action.dest == used:
            action.dest, action.option_strings, action.metavar = "max_size", ["--max-size"], "PX"
            parser._option_string_actions.pop(f"--{used.replace('_', '-')}", None)
            parser._option_string_actions["--max-size"] = action


def resolve_device(name: str) -> str:
    """'auto' -> 'cuda' when available, else 'cpu'; other names are checked."""
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise InputError("--device cuda: no CUDA device is available here; use --device cpu")
    if name != "cpu" and not name.startswith("cuda"):
        raise InputError(f"--device {name}: use auto, cpu or cuda")
    return name


def _add_source_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--image", required=True, help="source photo")
    parser.add_argument("--label", required=True, help="label map of the source photo")


def _add_device_flag(parser: argparse.ArgumentParser, default: str = "auto") -> None:
    parser.add_argument("--device", default=default, help=f"auto | cpu | cuda (default: {default})")


def _check_output(path: Path) -> Path:
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        raise InputError(
            f"--out {path}: give an image file name ending in one of {', '.join(IMAGE_SUFFIXES)}"
        )
    return path


class _Bar:
    """A tqdm bar on stderr driven by a library progress callback."""

    def __init__(self, desc: str, quiet: bool) -> None:
        self.desc, self.quiet, self.bar = desc, quiet, None

    def __call__(self, done: int, total: int, info: dict | None = None) -> None:
        if self.quiet:
            return
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(
                total=total, initial=max(done - 1, 0), desc=self.desc, leave=False, file=sys.stderr
            )
        if info:
            self.bar.set_postfix({k: f"{v:.3g}" for k, v in info.items()}, refresh=False)
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


# ----------------------------------------------------------------------------------------------
# Commands


def _run_analogy(
    image: np.ndarray,
    labels: LabelMap,
    target: LabelMap,
    seed: int,
    config: PatchConfig,
    device: str,
    quiet: bool,
    desc: str,
) -> np.ndarray:
    from semia.api import analogy

    bar = _Bar(desc, quiet)
    try:
        return analogy(image, labels, target, seed=seed, config=config, device=device, progress=bar)
    finally:
        bar.close()


def cmd_analogy(args: argparse.Namespace) -> int:
    out = _check_output(Path(args.out))
    device = resolve_device(args.device)
    image, labels = load_scene(args.image, args.label, args.max_size)
    target = read_target(args.target, labels, args.unknown_labels, args.max_size)
    config = config_from_args(PatchConfig, args)
    if args.samples < 1:
        raise InputError("--samples must be at least 1")
    paths = [out] if args.samples == 1 else [
        out.with_name(f"{out.stem}_{k}{out.suffix}") for k in range(args.samples)
    ]  # fmt: skip
    for k, path in enumerate(paths):
        t0 = time.perf_counter()
        result = _run_analogy(
            image, labels, target, args.seed + k, config, device, args.quiet, "analogy"
        )
        write_image(path, result)
        log.info("wrote %s (%.2f s)", path, time.perf_counter() - t0)
        print(path)
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from semia.config import TrainConfig

    config = config_from_args(TrainConfig, args)
    if args.dry_run:
        print(json.dumps(dataclasses.asdict(config), indent=2))
        return 0
    from semia.train import train

    device = resolve_device(args.device)
    image, labels = load_scene(args.image, args.label, args.max_size)
    previews = [
        read_target(p, labels, args.unknown_labels, args.max_size) for p in args.preview_target
    ]
    out = Path(args.out)
    log.info(
        "training on %dx%d px, %d labels, %d iterations, device %s",
        image.shape[1], image.shape[0], labels.num_classes, config.iters, device,
    )  # fmt: skip
    bar = _Bar("train", args.quiet)
    t0 = time.perf_counter()
    try:
        model = train(
            image,
            labels.ids,
            labels.palette,
            out,
            config,
            device=device,
            seed=args.seed,
            preview_targets=[t.ids for t in previews],
            resume=args.resume,
            progress=bar,
        )
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
    if labels.kind != "colour":  # targets must be read as ids, like the source
        model.label_kind, model.label_values = labels.kind, labels.values
        model.save(out)
    log.info("trained in %.1f s; model, log and previews in %s", time.perf_counter() - t0, out)
    print(out / "model.safetensors")
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    from semia.gan import SemIA

    device = resolve_device(args.device)
    out = Path(args.out)
    model = SemIA.load(args.model, device=device)
    source = LabelMap(model.source_labels, model.palette, model.label_values, model.label_kind)
    max_size = args.max_size or max(source.size)
    used: set[str] = set()
    for path in args.target:
        target = read_target(path, source, args.unknown_labels, max_size)
        t0 = time.perf_counter()
        result = model.generate(target.ids)
        name = Path(path).stem
        while name in used:  # two targets with one file name: keep both
            name += "_"
        used.add(name)
        written = write_image(out / f"{name}.png", result)
        log.info("wrote %s (%.3f s)", written, time.perf_counter() - t0)
        print(written)
    return 0


def _example_root() -> Path:
    return Path(str(resources.files("semia") / "examples"))


def _demo_train_config(iters: int) -> TrainConfig:
    """The default schedule shortened to `iters` iterations (the demo's GAN)."""
    base = TrainConfig()
    return dataclasses.replace(
        base,
        iters=iters,
        full_size_iters=max(1, iters * base.full_size_iters // base.iters),
        checkpoint_every=0,
        preview_every=0,
        augment=dataclasses.replace(
            base.augment, ramp_iters=max(1, iters * base.augment.ramp_iters // base.iters)
        ),
    )


def cmd_demo(args: argparse.Namespace) -> int:
    from semia.sheet import make_sheet

    out = Path(args.out)
    device = resolve_device(args.device)
    config = PatchConfig()
    rows: list[list[np.ndarray]] = []
    captions: list[str] = []
    t_start = time.perf_counter()
    packaged = args.examples is None
    root = _example_root() if packaged else Path(args.examples)
    if not root.is_dir():
        raise InputError(f"--examples {root}: no such folder")
    # the packaged targets are known to match; other scenes' stray colours map to the nearest label
    unknown = "error" if packaged else "nearest"
    for scene_name, image_path, label_path, target_paths in find_scenes(root):
        image, labels = load_scene(image_path, label_path, args.max_size)
        model = None
        if args.gan_iters > 0 and scene_name == DEMO_GAN_SCENE:
            from semia.checkpoint import has_train_state
            from semia.train import train

            log.info(
                "demo: training the SemIA GAN on %s (%d iterations)", scene_name, args.gan_iters
            )
            bar = _Bar(f"train {scene_name}", args.quiet)
            try:
                model = train(
                    image, labels.ids, labels.palette, out / scene_name / "gan-model",
                    _demo_train_config(args.gan_iters), device=device, seed=args.seed,
                    resume=has_train_state(out / scene_name / "gan-model"), progress=bar,
                )  # fmt: skip
            finally:
                bar.close()
        for target_path in target_paths:
            target = read_target(target_path, labels, unknown, args.max_size)
            name = f"{scene_name}/{target_path.stem}"
            result = _run_analogy(
                image, labels, target, args.seed, config, device, args.quiet, name
            )
            write_image(out / scene_name / f"{target_path.stem}.png", result)
            row = [image, labels.to_rgb(), target.to_rgb(), result]
            if model is not None:
                generated = model.generate(target.ids)
                write_image(out / scene_name / f"{target_path.stem}_gan.png", generated)
                row.append(generated)
            rows.append(row)
            captions.append(name)
    titles = ["source", "source labels", "target labels", "analogy", "SemIA GAN"]
    sheet = write_image(out / "sheet.png", make_sheet(rows, titles, captions, 128))
    log.info(
        "demo: %d targets in %.1f s; results in %s", len(rows), time.perf_counter() - t_start, out
    )
    print(sheet)
    return 0


def cmd_labels(args: argparse.Namespace) -> int:
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


def cmd_evaluate(args: argparse.Namespace) -> int:
    from semia.metrics import evaluate

    image, labels = load_scene(args.image, args.label, args.max_size)
    target = read_target(args.target, labels, args.unknown_labels, args.max_size)
    output = read_image(args.output)
    if output.shape[:2] != target.size:
        raise InputError(
            f"output {args.output} is {output.shape[1]}x{output.shape[0]} but the target map is "
            f"{target.size[1]}x{target.size[0]} (after --max-size {args.max_size}); "
            "they must match"
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


# ----------------------------------------------------------------------------------------------
# Parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="semia",
        description="Semantic image analogy: re-synthesize a photo in a new semantic layout.",
    )
    parser.add_argument("--version", action="version", version=f"semia {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
    common.add_argument("--debug", action="store_true", help="show tracebacks of internal errors")
    common.add_argument(
        "--threads", type=int, default=0, metavar="N",
        help="CPU threads for torch (default: 0 = torch's default, one per core); 1 is often "
        "faster on a machine busy with other work",
    )  # fmt: skip
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser(
        "analogy",
        parents=[common],
        help="training-free guided patch synthesis of a photo in a new layout",
        description="Synthesize IMAGE in the layout TARGET by coarse-to-fine guided patch "
        "synthesis (no training).",
    )
    _add_source_args(p)
    p.add_argument("--target", required=True, help="target label map in the source's colours")
    p.add_argument("--out", required=True, help="output image file (.png, .jpg, ...)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument(
        "--samples", type=int, default=1, help="write K results with seeds seed..seed+K-1 "
        "as OUT_0, OUT_1, ... (default: 1)",
    )  # fmt: skip
    _add_device_flag(p, "cpu")
    _add_input_flags(p)
    add_config_flags(p, PatchConfig)
    p.set_defaults(func=cmd_analogy)

    p = sub.add_parser(
        "train",
        parents=[common],
        help="train the SemIA GAN on one photo and its label map",
        description="Train the SemIA conditional single-image GAN on IMAGE and LABEL. Writes "
        "OUT/model.safetensors (everything generate needs), resumable checkpoints, log.jsonl, "
        "previews/ and loss.png. Ctrl-C saves a checkpoint; --resume continues it.",
    )
    _add_source_args(p)
    p.add_argument("--out", required=True, help="model folder")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument(
        "--preview-target", nargs="*", default=[], metavar="P2",
        help="target label maps drawn on the preview sheets",
    )  # fmt: skip
    p.add_argument("--resume", action="store_true", help="continue the run in OUT")
    p.add_argument("--dry-run", action="store_true", help="print the resolved config and exit")
    _add_device_flag(p)
    _add_input_flags(p, training=True)
    add_config_flags(p, TrainConfig)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser(
        "generate",
        parents=[common],
        help="synthesize target layouts with a trained SemIA model",
        description="One forward pass of a trained model per target label map.",
    )
    p.add_argument("--model", required=True, help="model folder or its model.safetensors")
    p.add_argument("--target", required=True, nargs="+", help="target label map(s)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument(
        "--max-size", type=int, default=None, metavar="PX",
        help="downscale targets to this longest side (default: the model's source size)",
    )  # fmt: skip
    p.add_argument(
        "--unknown-labels", choices=("error", "nearest"), default=InputConfig.unknown_labels,
        help="target colours the model's palette lacks",
    )  # fmt: skip
    _add_device_flag(p)
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser(
        "demo",
        parents=[common],
        help="run on the packaged examples and write a side-by-side sheet",
        description="Run semantic image analogy on the examples shipped with the package.",
    )
    p.add_argument("--out", default="semia-demo", help="output folder (default: semia-demo)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument(
        "--examples",
        metavar="DIR",
        help="run on the scenes in DIR instead of the packaged ones (one folder per scene with "
        "img.*, label.* and cond/<target>.*, e.g. the shared semia-examples)",
    )
    p.add_argument(
        "--max-size",
        type=int,
        default=DEMO_MAX_SIZE,
        metavar="PX",
        help=f"longest side of the example scenes (default: {DEMO_MAX_SIZE})",
    )
    p.add_argument(
        "--gan-iters",
        type=int,
        default=DEMO_GAN_ITERS,
        metavar="N",
        help=f"also train the SemIA GAN on the {DEMO_GAN_SCENE} scene for N iterations (a "
        "shortened default schedule) and show its results beside the analogy; 0 = analogy only "
        f"(default: {DEMO_GAN_ITERS})",
    )
    _add_device_flag(p)
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser(
        "labels",
        parents=[common],
        help="print the label palette found in a label map",
        description="Print the labels of FILE: id, colour, pixel share; with --against, match "
        "FILE as a target against a source label map and list colours that did not match.",
    )
    p.add_argument("file", help="label map (image or .npy)")
    p.add_argument("--against", metavar="SOURCE", help="source label map to match against")
    p.add_argument("--max-size", type=int, default=None, metavar="PX", help="downscale first")
    p.set_defaults(func=cmd_labels)

    p = sub.add_parser(
        "evaluate",
        parents=[common],
        help="measure how well an output matches a target layout and the source's look",
        description="Semantic alignment, patch realism and coherence of OUTPUT (and PSNR/SSIM "
        "against a reference).",
    )
    _add_source_args(p)
    p.add_argument("--target", required=True, help="target label map the output should follow")
    p.add_argument("--output", required=True, help="synthesized image to judge")
    p.add_argument("--reference", help="ground-truth image for PSNR / SSIM")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    _add_input_flags(p)
    p.set_defaults(func=cmd_evaluate)

    from semia import cli_edit

    cli_edit.register(sub)
    return parser


def _setup_logging(quiet: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("semia: %(message)s"))
    root = logging.getLogger("semia")
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING if quiet else logging.INFO)
    root.propagate = False


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    _setup_logging(args.quiet)
    if getattr(args, "threads", 0) > 0:
        import torch

        torch.set_num_threads(args.threads)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except (InputError, ValueError) as e:  # the library's boundary checks: actionable messages
        print(f"semia: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("semia: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into a reader that closed early (| head)
        sys.stderr.close()
        return 0
    except MemoryError:
        print("semia: error: out of memory; try a smaller --max-size", file=sys.stderr)
        return 1
    except Exception as e:
        if args.debug:
            raise
        print(
            f"semia: internal error: {type(e).__name__}: {e} (rerun with --debug for the "
            "traceback and report it)",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())
