"""Quality benchmark: every method on every shared scene and target, scored by semia.eval.

Run:
    python benchmarks/quality.py --out results/quality [--size 256] [--scenes zebra tree]
        [--methods copy mean-colour analogy] [--targets 1 mask_1] [--data DIR]

Writes DIR/results.md (one row per scene / target / method, then the mean per method),
DIR/results.json (every metric of every row), DIR/sheet.png (rows: scene / target; columns:
source | target labels | each method) and DIR/outputs/<scene>_<target>_<method>.png.
With --teaser zebra/1 tree/2 ..., also DIR/teaser.png: those rows only, as source | source labels
| target labels | each non-baseline method (the README's picture).
With --gan-seeds 0 1 2, the GAN is trained once per seed (methods gan-s0, gan-s1, ...) and the
summary tables get a "gan mean" row pooling them: single-image GANs vary from seed to seed.

Baselines give every number its context: "copy" returns the source unchanged (perfect appearance,
wrong layout wherever the target differs) and "mean-colour" fills each target region with its
class's mean source colour (right layout, no texture). The target "rec" is the source label map
itself: there the source image is the ground truth, so PSNR / SSIM are reported too.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import logging
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from semia.eval import evaluate
from semia.io import InputError, find_scenes, load_scene, read_target, write_image
from semia.viz import make_sheet

if TYPE_CHECKING:
    from semia.config import TrainConfig

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "semia-examples"

# A method maps (image (H, W, 3) float32, labels (H, W) int64, target (H2, W2) int64,
# num_classes, seed) to an output (H2, W2, 3) float32 in [0, 1], or to (output, a dict of
# extra measures for its row).
Method = Callable[
    [np.ndarray, np.ndarray, np.ndarray, int, int], np.ndarray | tuple[np.ndarray, dict]
]


def copy_source(
    image: np.ndarray, labels: np.ndarray, target: np.ndarray, num_classes: int, seed: int
) -> np.ndarray:
    """Baseline: the source image itself (needs a target of the source's size)."""
    if target.shape != labels.shape:
        raise ValueError("copy needs a target of the source's size")
    return image.copy()


def mean_colour(
    image: np.ndarray, labels: np.ndarray, target: np.ndarray, num_classes: int, seed: int
) -> np.ndarray:
    """Baseline: each target region filled with its class's mean source colour (grey if absent)."""
    means = np.full((num_classes, 3), 0.5, np.float32)
    for c in np.unique(labels):
        means[c] = image[labels == c].mean(0)
    return means[target]


def analogy(
    image: np.ndarray,
    labels: np.ndarray,
    target: np.ndarray,
    num_classes: int,
    seed: int,
    rim_shade: bool = True,
) -> tuple[np.ndarray, dict]:
    """The training-free guided patch synthesis (semia.patch.synthesize), and how evenly it
    used the source patches (semia.patch.patch_reuse of its final nearest-neighbour field);
    without `rim_shade`, with the rim shade correction off (method "analogy-no-rims")."""
    from semia.config import PatchConfig
    from semia.patch import patch_reuse, synthesize_with_field

    config = PatchConfig(rim_shade=rim_shade)
    output, field = synthesize_with_field(
        image, labels, target, num_classes=num_classes, seed=seed, config=config
    )
    return output, patch_reuse(field, target, labels)


def run_method(
    method: Method,
    image: np.ndarray,
    labels: np.ndarray,
    target: np.ndarray,
    num_classes: int,
    seed: int,
) -> tuple[np.ndarray, dict]:
    """Run a method: its output clipped to [0, 1] float32, and its extra measures (or {})."""
    result = method(image, labels, target, num_classes, seed)
    output, extra = result if isinstance(result, tuple) else (result, {})
    return np.clip(output, 0, 1).astype(np.float32), extra


GAN_DIR = Path("gan-models")  # where "gan" keeps one trained model per scene (set by --gan-dir)


def training_digest(config) -> str:
    """8 hex digits naming what a trained model depends on: the training config without its
    generation settings (they need no retraining), and the patch synthesis defaults (sample
    steps feed G the analogy of the pair). The GAN caches of the benchmarks key on it."""
    from semia.config import PatchConfig
    from semia.gan.checkpoint import config_to_dict

    trained = {k: v for k, v in config_to_dict(config).items() if k != "generate"}
    trained["patch"] = config_to_dict(PatchConfig())
    return hashlib.sha256(json.dumps(trained, sort_keys=True).encode()).hexdigest()[:8]


def gan(
    image: np.ndarray,
    labels: np.ndarray,
    target: np.ndarray,
    num_classes: int,
    seed: int,
    config: TrainConfig | None = None,
) -> np.ndarray:
    """The SemIA GAN, trained once per source image, seed and config (cached in GAN_DIR);
    config None: the default schedule TrainConfig()."""
    from semia.config import TrainConfig
    from semia.gan import SemIA
    from semia.gan.checkpoint import data_hash
    from semia.io import LabelMap

    config = TrainConfig() if config is None else config
    palette = np.zeros((num_classes, 3), np.uint8)  # colours do not matter for generation
    # the cache key covers the data, the seed and the training settings (a changed default
    # retrains)
    key = f"{data_hash(image, labels, palette)[:16]}-{training_digest(config)}"
    folder = GAN_DIR / f"{key}-seed{seed}"
    if not (folder / "done").exists():
        start = time.perf_counter()
        resume = (folder / "train_state.json").exists()  # an interrupted earlier run
        SemIA.train(image, LabelMap(labels, palette), folder, config, seed=seed, resume=resume)
        (folder / "done").write_text(f"{time.perf_counter() - start:.1f}\n")
        print(f"  trained GAN in {time.perf_counter() - start:.0f} s -> {folder}", flush=True)
    model = SemIA.load(folder)
    model.config = replace(model.config, generate=config.generate)
    return model.generate(target, seed=seed)


BASELINES = ("copy", "mean-colour")  # context for the numbers, left out of the teaser

METHODS: dict[str, Method] = {
    "copy": copy_source,
    "mean-colour": mean_colour,
    "analogy": analogy,
    "analogy-no-rims": functools.partial(analogy, rim_shade=False),
    "gan": gan,
}


def _available(names: list[str]) -> dict[str, Method]:
    """The requested methods whose implementation imports; the others are skipped with a note."""
    chosen = {}
    for name in names:
        if name not in METHODS:
            raise SystemExit(f"unknown method {name!r}; choose from {', '.join(METHODS)}")
        if name.startswith("analogy"):
            try:
                import semia.patch  # noqa: F401
            except ImportError as err:
                print(f"skipping method {name}: semia.patch not importable ({err})")
                continue
        chosen[name] = METHODS[name]
    return chosen


def _per_seed(methods: dict[str, Method], seeds: list[int]) -> dict[str, Method]:
    """Replace "gan" by one method per training seed, named gan-s<seed>."""
    out: dict[str, Method] = {}
    for name, method in methods.items():
        if name != "gan":
            out[name] = method
            continue
        for seed in seeds:
            out[f"gan-s{seed}"] = functools.partial(_gan_with_seed, seed)
    return out


def _gan_with_seed(
    fixed: int, image: np.ndarray, labels: np.ndarray, target: np.ndarray, k: int, seed: int
) -> np.ndarray:
    return gan(image, labels, target, k, fixed)


def _teaser_methods(methods: list[str]) -> list[str]:
    """The teaser's columns: no baselines, and the GAN of the first seed only."""
    seeded = [m for m in methods if m.startswith("gan-s")]
    return [m for m in methods if m not in BASELINES and (m not in seeded or m == seeded[0])]


def _groups(methods: list[str]) -> list[tuple[str, list[str]]]:
    """Rows of the summary tables: each method, plus 'gan mean' pooling all gan-s<seed>."""
    groups = [(m, [m]) for m in methods]
    seeded = [m for m in methods if m.startswith("gan-s")]
    if len(seeded) > 1:
        groups.append(("gan mean", seeded))
    return groups


COLUMNS = (
    ("label_accuracy", "acc", "{:.3f}"),
    ("label_accuracy_edited", "acc edit", "{:.3f}"),
    ("miou", "mIoU", "{:.3f}"),
    ("miou_edited", "mIoU edit", "{:.3f}"),
    ("patch_swd", "SWD", "{:.4f}"),
    ("patch_swd_class_mean", "SWD/class", "{:.4f}"),
    ("coherence", "coh", "{:.4f}"),
    ("coherence_semantic", "coh/class", "{:.4f}"),
    ("repeat_area", "repeat %", "{:.1f}"),
    ("use_entropy", "use H", "{:.3f}"),
    ("psnr", "PSNR", "{:.2f}"),
    ("ssim", "SSIM", "{:.3f}"),
    ("method_seconds", "method s", "{:.1f}"),
)


def _cell(value: object, fmt: str) -> str:
    return "-" if value is None else fmt.format(value)


def _markdown(rows: list[dict], methods: list[str], size: int) -> str:
    head = ["scene", "target", "edit %", "method"] + [c[1] for c in COLUMNS]
    lines = [
        f"# Quality benchmark ({size} px longest side)",
        "",
        "Higher is better: acc, mIoU (labeller read-back vs the target; 'edit' = pixels whose",
        "label changed), PSNR, SSIM (only for target 'rec', against the source image). Lower is",
        "better: SWD (Laplacian-pyramid 7x7 patch sliced Wasserstein vs the source), SWD/class",
        "(mean over classes, patches of class c vs class c), coh (mean nearest-source-patch",
        "distance), coh/class (the same within each class). `labeller acc` below is the",
        "labeller's accuracy on its own source: the ceiling of acc. Patch reuse (analogy",
        "only): repeat % = largest connected area copied from over-used source pixels (used",
        "> 4x their class's need), % of the frame (lower is better); use H = normalised",
        "entropy of source-pixel use per class (1 = every source pixel equally often).",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    for r in rows:
        edit = "-" if r["edited_fraction"] is None else f"{100 * r['edited_fraction']:.1f}"
        cells = [r["scene"], r["target"], edit, r["method"]]
        cells += [_cell(r.get(key), fmt) for key, _, fmt in COLUMNS]
        lines.append("| " + " | ".join(cells) + " |")

    def summary(title: str, subset: list[dict]) -> None:
        lines.extend(
            ["", f"## {title}", "", "| method | n | " + " | ".join(c[1] for c in COLUMNS) + " |"]
        )
        lines.append("|" + "---|" * (len(COLUMNS) + 2))
        for m, members in _groups(methods):
            mine = [r for r in subset if r["method"] in members]
            if not mine:
                continue
            cells = [m, str(len(mine))]
            for key, _, fmt in COLUMNS:
                vals = [r[key] for r in mine if r.get(key) is not None]
                cells.append(_cell(statistics.fmean(vals) if vals else None, fmt))
            lines.append("| " + " | ".join(cells) + " |")

    summary(
        "Mean per method, edited targets (all but rec)", [r for r in rows if r["target"] != "rec"]
    )
    summary(
        "Mean per method, reconstruction (target rec)", [r for r in rows if r["target"] == "rec"]
    )
    lines.extend(_per_scene(rows, methods))
    accs = {r["scene"]: r["labeller_source_accuracy"] for r in rows}
    lines.extend(["", "## Labeller accuracy on each source (ceiling of acc)", ""])
    lines.extend(f"- {scene}: {acc:.3f}" for scene, acc in accs.items())
    return "\n".join(lines) + "\n"


def _per_scene(rows: list[dict], methods: list[str]) -> list[str]:
    """Markdown: per scene, each method's mean acc edit and SWD over the edited targets, and the
    PSNR of its reconstruction (target rec)."""
    scenes = list(dict.fromkeys(r["scene"] for r in rows))
    groups = _groups(methods)
    head = ["scene"] + [f"{m} {c}" for m, _ in groups for c in ("acc edit", "SWD", "rec PSNR")]
    lines = ["", "## Per scene: mean over its edited targets; PSNR of rec", ""]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for scene in scenes:
        cells = [scene]
        for _, members in groups:
            mine = [r for r in rows if r["scene"] == scene and r["method"] in members]
            edited = [r for r in mine if r["target"] != "rec"]
            acc = [
                r["label_accuracy_edited"] for r in edited if r["label_accuracy_edited"] is not None
            ]
            swd = [r["patch_swd"] for r in edited]
            psnr = [r["psnr"] for r in mine if r["target"] == "rec" and r.get("psnr") is not None]
            cells.append(_cell(statistics.fmean(acc) if acc else None, "{:.3f}"))
            cells.append(_cell(statistics.fmean(swd) if swd else None, "{:.4f}"))
            cells.append(_cell(statistics.fmean(psnr) if psnr else None, "{:.1f}"))
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def pick_scenes(
    data: Path, names: list[str] | None, what: str
) -> tuple[dict[str, list[Path]], list[str]]:
    """The scenes under `data` (name -> [image, label, targets]) and the names asked for (all
    when `names` is empty); exits with a message when the folder or a name is missing."""
    if not data.is_dir():
        raise SystemExit(f"{what}s not found at {data}; pass --data")
    try:
        found = {name: files for name, *files in find_scenes(data)}
    except InputError as err:
        raise SystemExit(str(err)) from None
    scenes = names or list(found)
    missing = [name for name in scenes if name not in found]
    if missing:
        raise SystemExit(f"{data}: no {what} {', '.join(missing)} (img.*, label.*, cond/)")
    return found, scenes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument(
        "--out", required=True, type=Path, help="folder for results.md/json, sheet.png"
    )
    parser.add_argument("--size", type=int, default=256, help="longest side of the scenes (px)")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder of example scenes")
    parser.add_argument("--scenes", nargs="*", help="scene names (default: all)")
    parser.add_argument(
        "--targets", nargs="*", help="target stems, e.g. 1 mask_1 rec (default: all)"
    )
    parser.add_argument(
        "--methods",
        nargs="*",
        default=[m for m in METHODS if m != "analogy-no-rims"],
        help=f"of {', '.join(METHODS)} (default: all but analogy-no-rims, the analogy with "
        "--no-rim-shade)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--gan-seeds",
        nargs="+",
        type=int,
        default=None,
        metavar="S",
        help="train the GAN with each seed (methods gan-sS, plus a 'gan mean' summary row)",
    )
    parser.add_argument(
        "--teaser", nargs="*", default=[], metavar="SCENE/TARGET", help="rows of DIR/teaser.png"
    )
    parser.add_argument(
        "--gan-dir", type=Path, default=None, help="cache of trained GAN models (default: OUT/gan)"
    )
    args = parser.parse_args(argv)
    global GAN_DIR
    GAN_DIR = args.gan_dir or args.out / "gan"
    logging.basicConfig(level=logging.WARNING)

    found, scenes = pick_scenes(args.data, args.scenes, "scene")
    methods = _available(args.methods)
    if "gan" in methods and args.gan_seeds:  # one seed too: it replaces --seed for the GAN
        methods = _per_seed(methods, args.gan_seeds)
    out: Path = args.out
    (out / "outputs").mkdir(parents=True, exist_ok=True)

    rows: list[dict] = []
    sheet_rows: list[list[np.ndarray]] = []
    captions: list[str] = []
    teaser: dict[str, list[np.ndarray]] = {}
    for scene in scenes:
        image_path, label_path, target_paths = found[scene]
        image, label_map = load_scene(image_path, label_path, args.size)
        k = label_map.num_classes
        for target_path in target_paths:
            name = target_path.stem
            if args.targets and name not in args.targets:
                continue
            target = read_target(target_path, label_map, "nearest", args.size)
            reference = image if name == "rec" and target.ids.shape == label_map.ids.shape else None
            sheet_row = [image, target.to_rgb()]
            for method_name, method in methods.items():
                start = time.perf_counter()
                try:
                    output, extra = run_method(
                        method, image, label_map.ids, target.ids, k, args.seed
                    )
                except ValueError as err:
                    print(f"{scene}/{name} {method_name}: skipped ({err})")
                    sheet_row.append(np.ones((*target.ids.shape, 3), np.float32))
                    continue
                seconds = time.perf_counter() - start
                write_image(out / "outputs" / f"{scene}_{name}_{method_name}.png", output)
                metrics = evaluate(
                    image, label_map.ids, target.ids, output, num_classes=k, reference=reference
                )
                row = {"scene": scene, "target": name, "method": method_name}
                row.update(metrics, method_seconds=seconds, **extra)
                rows.append(row)
                sheet_row.append(output)
                print(
                    f"{scene:9s} {name:7s} {method_name:12s} acc_edit "
                    f"{_cell(metrics['label_accuracy_edited'], '{:.3f}'):>5s} "
                    f"swd {metrics['patch_swd']:.4f} coh {metrics['coherence']:.4f} "
                    f"({seconds:.1f} s + eval {metrics['seconds']:.1f} s)",
                    flush=True,
                )
            sheet_rows.append(sheet_row)
            captions.append(f"{scene} / {name}")
            if f"{scene}/{name}" in args.teaser:
                outputs = zip(methods, sheet_row[2:], strict=True)
                shown = [o for m, o in outputs if m in _teaser_methods(list(methods))]
                teaser[f"{scene}/{name}"] = [image, label_map.to_rgb(), target.to_rgb(), *shown]
    if not rows:
        raise SystemExit("nothing was run; check --scenes / --targets / --methods")

    (out / "results.json").write_text(json.dumps(rows, indent=1))
    (out / "results.md").write_text(_markdown(rows, list(methods), args.size))
    titles = ["source", "target", *methods]
    write_image(out / "sheet.png", make_sheet(sheet_rows, titles, captions, cell_height=128))
    print(f"wrote {out / 'results.md'}, {out / 'results.json'}, {out / 'sheet.png'}")
    if teaser:
        missing = [r for r in args.teaser if r not in teaser]
        if missing:
            print(f"teaser rows not run: {', '.join(missing)}")
        names = ["gan" if m.startswith("gan-s") else m for m in _teaser_methods(list(methods))]
        rows_ = [teaser[r] for r in args.teaser if r in teaser]
        titles = ["source", "source labels", "target labels", *names]
        write_image(out / "teaser.png", make_sheet(rows_, titles, cell_height=144))
        print(f"wrote {out / 'teaser.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
