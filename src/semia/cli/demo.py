"""`semia demo`: both methods on the packaged example scenes, with a side-by-side sheet."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import time
from importlib import resources
from pathlib import Path

from semia.cli.analogy import run_analogy
from semia.cli.flags import COMMON, add_device_flag, add_seed_flag, resolve_device, whole_number
from semia.cli.progress import Bar
from semia.config import PatchConfig, TrainConfig
from semia.errors import InputError

log = logging.getLogger("semia")

DEMO_MAX_SIZE = 192  # longest side of the packaged scenes in `semia demo`
DEMO_GAN_ITERS = 300  # GAN iterations in `semia demo` (a shortened default schedule)
DEMO_GAN_SCENE = "tree"  # the packaged scene the demo trains the GAN on
_ITERS_MAX = next(f for f in dataclasses.fields(TrainConfig) if f.name == "iters").metadata["hi"]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo",
        parents=[COMMON],
        help="run on the packaged examples and write a side-by-side sheet",
        description="Run semantic image analogy on the examples shipped with the package.",
    )
    p.add_argument("--out", default="semia-demo", help="output folder (default: semia-demo)")
    add_seed_flag(p)
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
        type=whole_number(0, _ITERS_MAX),
        default=DEMO_GAN_ITERS,
        metavar="N",
        help=f"also train the SemIA GAN on the {DEMO_GAN_SCENE} scene for N iterations (a "
        "shortened default schedule) and show its results beside the analogy; 0 = analogy only "
        f"(default: {DEMO_GAN_ITERS})",
    )
    add_device_flag(p)
    p.set_defaults(func=run)


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


def run(args: argparse.Namespace) -> int:
    from semia.io import find_scenes, load_scene, read_target, write_image
    from semia.viz import make_sheet

    out = Path(args.out)
    device = resolve_device(args.device)
    config = PatchConfig()
    rows: list[list] = []
    captions: list[str] = []
    t_start = time.perf_counter()
    packaged = args.examples is None
    root = _example_root() if packaged else Path(args.examples)
    if root.is_file():
        raise InputError(
            f"--examples {root}: is a file; give a folder of scenes (one folder each with img.*, "
            "label.* and cond/<target> maps)"
        )
    if not root.is_dir():
        raise InputError(f"--examples {root}: no such folder")
    # the packaged targets are known to match; other scenes' stray colours map to the nearest label
    unknown = "error" if packaged else "nearest"
    for scene_name, image_path, label_path, target_paths in find_scenes(root):
        image, labels = load_scene(image_path, label_path, args.max_size)
        model = None
        if args.gan_iters > 0 and scene_name == DEMO_GAN_SCENE:
            from semia.gan import SemIA
            from semia.gan.checkpoint import has_train_state

            log.info(
                "demo: training the SemIA GAN on %s (%d iterations)", scene_name, args.gan_iters
            )
            bar = Bar(f"train {scene_name}", args.quiet)
            try:
                model = SemIA.train(
                    image, labels, out / scene_name / "gan-model",
                    _demo_train_config(args.gan_iters), device=device, seed=args.seed,
                    resume=has_train_state(out / scene_name / "gan-model"), progress=bar,
                )  # fmt: skip
            finally:
                bar.close()
        for target_path in target_paths:
            target = read_target(target_path, labels, unknown, args.max_size)
            name = f"{scene_name}/{target_path.stem}"
            result = run_analogy(image, labels, target, args.seed, config, device, args.quiet, name)
            write_image(out / scene_name / f"{target_path.stem}.png", result)
            row = [image, labels.to_rgb(), target.to_rgb(), result]
            if model is not None:
                # G refines the analogy just made (when its generate.init asks for one)
                init = result if model.config.generate.init == "analogy" else None
                generated = model.generate(target, init=init)
                write_image(out / scene_name / f"{target_path.stem}_gan.png", generated)
                row.append(generated)
            rows.append(row)
            captions.append(name)
    scenes = find_scenes(root)
    if scenes:
        _app_rows(scenes, args, device, config, out, rows, captions)
    titles = ["source", "source labels", "target labels", "analogy", "SemIA GAN"]
    sheet = write_image(out / "sheet.png", make_sheet(rows, titles, captions, 128))
    log.info(
        "demo: %d targets in %.1f s; results in %s", len(rows), time.perf_counter() - t_start, out
    )
    print(sheet)
    return 0


def _app_rows(
    scenes: list, args: argparse.Namespace, device: str, config: PatchConfig, out: Path,
    rows: list[list], captions: list[str],
) -> None:  # fmt: skip
    """Rows written to OUT/apps/: a sketch row (the first scene from its own outlines and
    labels, mirrored: source | sketch | target labels | result) and a removal row (the last
    scene without the class in its middle: source | labels | filled labels | result)."""
    import numpy as np

    from semia.apps.edges import edges
    from semia.apps.removal import fill_labels, label_mask, remove
    from semia.io import load_scene, write_image

    name, image_path, label_path, _ = scenes[0]
    image, labels = load_scene(image_path, label_path, args.max_size)
    sketch = 1.0 - edges(image)[:, ::-1]  # dark lines on white: the scene's outlines, mirrored
    target = labels.with_ids(np.ascontiguousarray(labels.ids[:, ::-1]))
    result = run_analogy(
        image, labels, target, args.seed, config, device, args.quiet, f"{name}/sketch", sketch
    )
    write_image(out / "apps" / f"{name}_sketch.png", sketch)
    write_image(out / "apps" / f"{name}_from_sketch.png", result)
    sketch_rgb = np.repeat(sketch[..., None], 3, axis=2)
    rows.append([image, sketch_rgb, target.to_rgb(), result])
    captions.append(f"{name}: labels + sketch (its outlines and labels, mirrored)")

    name, image_path, label_path, _ = scenes[-1]
    image, labels = load_scene(image_path, label_path, args.max_size)
    h, w = labels.ids.shape
    rare = int(labels.ids[h // 2, w // 2])  # the object in the middle of the photo
    mask = label_mask(labels, tuple(int(v) for v in labels.palette[rare]))  # grown a little
    t0 = time.perf_counter()
    result = remove(image, mask, labels, seed=args.seed, config=config, device=device)
    log.info("demo: removal on %s in %.2f s", name, time.perf_counter() - t0)
    write_image(out / "apps" / f"{name}_removed.png", result)
    filled = labels.with_ids(fill_labels(labels.ids, mask))
    rows.append([image, labels.to_rgb(), filled.to_rgb(), result])
    captions.append(f"{name}: object removal (the class in the middle)")
    _segment_row(scenes[0], args, out, rows, captions)


def _segment_row(scene: tuple, args: argparse.Namespace, out: Path, rows: list[list],
                 captions: list[str]) -> None:  # fmt: skip
    """A row written to OUT/apps/: the first scene's label map made from a few strokes
    (`semia segment`): source | strokes | segmented map | the map over the photo."""
    import numpy as np

    import semia.segment
    from semia.io import load_scene, write_labels

    name, image_path, label_path, _ = scene
    image, labels = load_scene(image_path, label_path, args.max_size)
    strokes = semia.segment.demo_scribbles(labels, seed=args.seed)
    t0 = time.perf_counter()
    segmented = semia.segment(image, strokes, seed=args.seed)
    accuracy = float((segmented.to_rgb() == labels.to_rgb()).all(axis=2).mean())
    log.info("demo: %s segmented from strokes in %.2f s", name, time.perf_counter() - t0)
    rgba = strokes.to_rgba().astype(np.float32) / 255.0
    drawn = rgba[..., :3] * rgba[..., 3:] + image * (1.0 - rgba[..., 3:])  # strokes on the photo
    write_labels(out / "apps" / f"{name}_segmented.png", segmented)
    rows.append([image, drawn, segmented.to_rgb(), semia.segment.overlay(image, segmented)])
    captions.append(f"{name}: label map from strokes (semia segment), {accuracy:.0%} as drawn")
