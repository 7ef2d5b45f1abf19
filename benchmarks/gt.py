"""Ground-truth benchmark: every method on real layout changes whose true photo is known.

The data (../shared/data/gt-dev/, see its README) are driving sequences: the source is frame 0
and its label map, the target is the label map of a later frame, the truth is that frame's
photo. Every output is compared with the truth:

- PSNR and SSIM over the changed pixels (target label != source label: copying the source cannot
  be right there) and over the whole frame;
- SWD: multi-scale (Laplacian pyramid) 7x7 patch sliced Wasserstein distance to the truth
  (semia.eval.patch_swd);
- acc chg: accuracy of the labeller fitted on the source pair (semia.eval.fit_labeller) on the
  changed pixels of the output, read against the target.

Run:
    python benchmarks/gt.py --out results/gt [--size 512] [--methods copy mean-colour analogy]
        [--scenes city_seq0002] [--targets 04 29] [--gan-seeds 0 1] [--gan-original]

Writes DIR/results.md (a table per target, then the mean over targets), DIR/results.json
(every metric of every row), DIR/sheet.png (rows: scene / target; columns: source | target
labels | truth | each method) and DIR/outputs/<scene>_<target>_<method>.png, and prints the
tables. Target labels the source lacks (a car entering the view) are mapped to the nearest
source label; their pixel count is shown as "unknown px".

The GAN is opt-in (training takes minutes per model): --gan-seeds 0 1 trains the default
schedule once per scene and seed (methods gan-s0, gan-s1 and a "gan mean" row), --gan-original
trains TrainConfig.original() (the paper's schedule) with the first GAN seed (or --seed); models
are cached in --gan-dir (default OUT/gan) like benchmarks/quality.py does. The method "truth"
returns the true frame (a sanity check: the ceiling of every measure). The method "oracle" is
the analogy whose finest-level search rounds match the TRUE frame's patches instead of its own
output's (the same class constraint, occurrence limit and voting): the ceiling of what a better
choice of source patches could give this synthesis, which no method can reach from the labels.
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from semia.config import GenerateConfig

sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/ as a script folder

import quality  # the methods and the GAN cache of the quality benchmark

from semia.eval import fit_labeller, patch_swd, psnr, semantic_alignment, ssim
from semia.io import InputError, load_scene, match_target, read_image, write_image
from semia.viz import make_sheet

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "gt-dev"
BASE_METHODS = ("copy", "mean-colour", "analogy", "analogy-no-rims", "truth", "oracle")
DEFAULT_METHODS = ("copy", "mean-colour", "analogy")

COLUMNS = (
    ("psnr_changed", "PSNR chg", "{:.2f}"),
    ("ssim_changed", "SSIM chg", "{:.3f}"),
    ("psnr", "PSNR", "{:.2f}"),
    ("ssim", "SSIM", "{:.3f}"),
    ("swd", "SWD", "{:.4f}"),
    ("acc_changed", "acc chg", "{:.3f}"),
    ("repeat_area", "repeat %", "{:.1f}"),
    ("use_entropy", "use H", "{:.3f}"),
    ("seconds", "s", "{:.1f}"),
)


def _methods(
    names: list[str],
    gan_seeds: list[int],
    gan_original: bool,
    seed: int,
    generate: GenerateConfig | None = None,
) -> dict:
    """Method name -> callable (image, labels, target, k, seed) -> output; "truth" -> None.

    generate: the default-schedule GAN's generation settings (None: TrainConfig's defaults).
    """
    from semia.config import TrainConfig

    chosen: dict = {}
    for name in names:
        if name not in BASE_METHODS:
            raise SystemExit(f"unknown method {name!r}; choose from {', '.join(BASE_METHODS)}")
        special = {"truth": None, "oracle": oracle}
        chosen[name] = special[name] if name in special else quality.METHODS[name]
    config = None if generate is None else replace(TrainConfig(), generate=generate)
    for s in gan_seeds:
        chosen[f"gan-s{s}"] = functools.partial(_gan, s, config)
    if gan_original:
        first = gan_seeds[0] if gan_seeds else seed
        chosen[f"gan-orig-s{first}"] = functools.partial(_gan, first, TrainConfig.original())
    return chosen


def oracle(
    image: np.ndarray, labels: np.ndarray, target: np.ndarray, k: int, seed: int, truth: np.ndarray
) -> np.ndarray:
    """The analogy with its finest-level search run on the true frame's patches.

    The analogy's final field is searched again, `fine_iters` rounds, with every query patch's
    colour taken from `truth` (its label guide and position as usual), and voted as the analogy
    votes. (H, W, 3) float32.
    """
    from semia.config import PatchConfig
    from semia.patch import nnf as nn_field
    from semia.patch.pyramid import build_pyramid
    from semia.patch.synthesis import (
        _check_inputs,
        _fine_spread,
        feature_space,
        search_round,
        synthesize_with_field,
        vote_level,
    )

    config = PatchConfig()
    _, coords = synthesize_with_field(image, labels, target, num_classes=k, seed=seed)
    present = _check_inputs(image, labels, target, k)  # the ids the synthesis renumbers 0..k-1
    src = torch.from_numpy(np.searchsorted(present, labels))
    tgt = torch.from_numpy(np.searchsorted(present, target))
    img = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))
    (level,) = build_pyramid(img, src, tgt, len(present), 1)
    space = feature_space(level, config)
    keys = space.keys(level.image)
    query = space.queries(torch.from_numpy(np.ascontiguousarray(truth.transpose(2, 0, 1))))
    classes = level.target.reshape(-1)
    field = torch.from_numpy(coords[..., 0] * image.shape[1] + coords[..., 1]).reshape(-1)
    limit = nn_field.capacity(classes, level.allowed, config.uniformity)
    generator = torch.Generator().manual_seed(seed)
    dist = nn_field.patch_distance(query, keys, field)
    for _ in range(config.fine_iters):
        field, dist = search_round(query, keys, level, field, dist, config, generator, limit, False)
    out = vote_level(field, level, config.patch_size, _fine_spread(config, src, tgt))
    return out.clamp(0, 1).permute(1, 2, 0).numpy()


def _gan(fixed: int, config, image, labels, target, k: int, seed: int) -> np.ndarray:
    return quality.gan(image, labels, target, k, fixed, config)


def score(
    output: np.ndarray,
    truth: np.ndarray,
    changed: np.ndarray,
    predicted: np.ndarray,
    target: np.ndarray,
    num_classes: int,
    seed: int,
) -> dict:
    """The measures of one output against its truth.

    Args:
        output, truth: (H, W, 3) float32 in [0, 1].
        changed: (H, W) bool, pixels whose target label differs from the source label.
        predicted: (H, W) int64, the source-fitted labeller's reading of the output.
        target: (H, W) int64 target label map.
        num_classes: K.
        seed: seed of the SWD's patch sampling and projections.
    """
    align = semantic_alignment(predicted, target, num_classes=num_classes, edited=changed)
    return {
        "psnr_changed": psnr(output, truth, mask=changed),
        "ssim_changed": ssim(output, truth, mask=changed),
        "psnr": psnr(output, truth),
        "ssim": ssim(output, truth),
        "swd": patch_swd(output, truth, seed=seed),
        "acc_changed": align["label_accuracy_edited"],
    }


def _cell(value: object, fmt: str) -> str:
    return "-" if value is None else fmt.format(value)


def _table(rows: list[dict], groups: list[tuple[str, list[str]]]) -> list[str]:
    """Markdown rows: one per method group, each measure averaged over the group's rows."""
    lines = ["| method | n | " + " | ".join(c[1] for c in COLUMNS) + " |"]
    lines.append("|" + "---|" * (len(COLUMNS) + 2))
    for name, members in groups:
        mine = [r for r in rows if r["method"] in members]
        if not mine:
            continue
        cells = [name, str(len(mine))]
        for key, _, fmt in COLUMNS:
            vals = [r[key] for r in mine if r.get(key) is not None]
            cells.append(_cell(statistics.fmean(vals) if vals else None, fmt))
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def markdown(rows: list[dict], methods: list[str], size: int) -> str:
    """results.md: a table per target, then the mean over all targets per method."""
    groups = quality._groups(methods)
    lines = [
        f"# Ground-truth benchmark ({size} px longest side)",
        "",
        "Against the true later frame. Higher is better: PSNR / SSIM over the changed-label",
        "pixels (chg) and the whole frame, acc chg (the source-fitted labeller's reading of the",
        "changed pixels vs the target). Lower is better: SWD (multi-scale 7x7 patch sliced",
        "Wasserstein distance to the truth). s: seconds the method took. Patch reuse (analogy",
        "only): repeat % = largest connected area copied from over-used source pixels (used",
        "> 4x their class's need), % of the frame (lower is better); use H = normalised",
        "entropy of source-pixel use per class (1 = every source pixel equally often).",
    ]
    targets = list(dict.fromkeys((r["scene"], r["target"]) for r in rows))
    for scene, target in targets:
        mine = [r for r in rows if (r["scene"], r["target"]) == (scene, target)]
        first = mine[0]
        lines += [
            "",
            f"## {scene} / {target}: {100 * first['changed_fraction']:.1f} % changed, "
            f"{first['unknown_pixels']} unknown px",
            "",
        ]
        lines += _table(mine, groups)
    lines += ["", f"## Mean over {len(targets)} targets", ""]
    lines += _table(rows, groups)
    return "\n".join(lines) + "\n"


def _targets(folder: Path) -> list[tuple[str, Path, Path]]:
    """(name, cond path, truth path) of every target of a scene that has a truth frame."""
    out = []
    for cond in sorted((folder / "cond").glob("*.png")):
        truth = folder / "truth" / cond.name
        if truth.exists():
            out.append((cond.stem, cond, truth))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--out", required=True, type=Path, help="folder for results and sheet")
    parser.add_argument("--size", type=int, default=512, help="longest side (px), default 512")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the gt-dev folder")
    parser.add_argument("--scenes", nargs="*", help="sequence names (default: all)")
    parser.add_argument("--targets", nargs="*", help="frame stems, e.g. 04 29 (default: all)")
    parser.add_argument(
        "--methods",
        nargs="*",
        default=list(DEFAULT_METHODS),
        help=f"of {', '.join(BASE_METHODS)} (default: {' '.join(DEFAULT_METHODS)}); "
        "analogy-no-rims is the analogy with --no-rim-shade",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the methods and measures")
    parser.add_argument(
        "--gan-seeds", nargs="+", type=int, default=[], metavar="S", help="train the GAN per seed"
    )
    parser.add_argument(
        "--gan-original", action="store_true", help="also the GAN with TrainConfig.original()"
    )
    parser.add_argument(
        "--gan-dir", type=Path, default=None, help="cache of trained GAN models (default: OUT/gan)"
    )
    parser.add_argument(
        "--gan-init",
        choices=("analogy", "fill"),
        default=GenerateConfig().init,
        help="GenerateConfig.init of the default-schedule GAN (default: %(default)s)",
    )
    parser.add_argument(
        "--gan-margin",
        type=int,
        default=GenerateConfig().composite_margin,
        help="GenerateConfig.composite_margin of the default-schedule GAN, -1 = off "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--gan-anchor",
        type=float,
        default=GenerateConfig().anchor_sigma,
        help="GenerateConfig.anchor_sigma of the default-schedule GAN, 0 = off "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--gan-keep-copied",
        type=int,
        choices=(0, 1),
        default=int(GenerateConfig().keep_copied),
        help="GenerateConfig.keep_copied of the default-schedule GAN (default: %(default)s)",
    )
    parser.add_argument(
        "--gan-class-band",
        type=int,
        default=GenerateConfig().class_band,
        help="GenerateConfig.class_band of the default-schedule GAN, -1 = off "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--gan-analogy-margin",
        type=int,
        default=GenerateConfig().analogy_margin,
        help="GenerateConfig.analogy_margin of the default-schedule GAN (default: %(default)s)",
    )
    parser.add_argument("--cell", type=int, default=128, help="sheet cell height (px)")
    parser.add_argument(
        "--threads", type=int, default=1, help="torch CPU threads (default 1: a shared machine)"
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    quality.GAN_DIR = args.gan_dir or args.out / "gan"
    logging.basicConfig(level=logging.ERROR)

    found, scenes = quality.pick_scenes(args.data, args.scenes, "sequence")
    try:
        generate = GenerateConfig(
            init=args.gan_init,
            composite_margin=args.gan_margin,
            anchor_sigma=args.gan_anchor,
            keep_copied=bool(args.gan_keep_copied),
            class_band=args.gan_class_band,
            analogy_margin=args.gan_analogy_margin,
        )
    except InputError as err:
        raise SystemExit(str(err)) from None
    methods = _methods(args.methods, args.gan_seeds, args.gan_original, args.seed, generate)
    out: Path = args.out
    (out / "outputs").mkdir(parents=True, exist_ok=True)

    rows: list[dict] = []
    sheet_rows: list[list[np.ndarray]] = []
    captions: list[str] = []
    for scene in scenes:
        image_path, label_path, _ = found[scene]
        image, label_map = load_scene(image_path, label_path, args.size)
        k = label_map.num_classes
        labeller = fit_labeller(image, label_map.ids, num_classes=k, seed=args.seed)
        for name, cond_path, truth_path in _targets(image_path.parent):
            if args.targets and name not in args.targets:
                continue
            target, unknown = match_target(cond_path, label_map, args.size)
            truth = read_image(truth_path, args.size)
            if truth.shape[:2] != target.ids.shape or target.ids.shape != label_map.ids.shape:
                raise SystemExit(f"{scene}/{name}: truth, target and source sizes differ")
            changed = target.ids != label_map.ids
            sheet_row = [image, target.to_rgb(), truth]
            for method_name, method in methods.items():
                start = time.perf_counter()
                if method is None:
                    output, extra = truth, {}
                elif method is oracle:
                    output = oracle(image, label_map.ids, target.ids, k, args.seed, truth)
                    extra = {}
                else:
                    output, extra = quality.run_method(
                        method, image, label_map.ids, target.ids, k, args.seed
                    )
                seconds = time.perf_counter() - start
                write_image(out / "outputs" / f"{scene}_{name}_{method_name}.png", output)
                predicted = labeller.predict(output)
                row = {"scene": scene, "target": name, "method": method_name}
                row.update(score(output, truth, changed, predicted, target.ids, k, args.seed))
                row.update(
                    seconds=seconds,
                    changed_fraction=float(changed.mean()),
                    unknown_pixels=sum(u.pixels for u in unknown),
                    labeller_source_accuracy=labeller.source_accuracy,
                    **extra,
                )
                rows.append(row)
                sheet_row.append(output)
                print(
                    f"{scene} {name} {method_name:12s} PSNR chg "
                    f"{_cell(row['psnr_changed'], '{:.2f}')} SWD {row['swd']:.4f} acc chg "
                    f"{_cell(row['acc_changed'], '{:.3f}')} ({seconds:.1f} s)",
                    flush=True,
                )
            sheet_rows.append(sheet_row)
            captions.append(f"{scene} / {name}")
    if not rows:
        raise SystemExit("nothing was run; check --scenes / --targets")

    (out / "results.json").write_text(json.dumps(rows, indent=1))
    table = markdown(rows, list(methods), args.size)
    (out / "results.md").write_text(table)
    titles = ["source", "target", "truth", *methods]
    write_image(out / "sheet.png", make_sheet(sheet_rows, titles, captions, args.cell))
    print(table)
    print(f"wrote {out / 'results.md'}, {out / 'results.json'}, {out / 'sheet.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
