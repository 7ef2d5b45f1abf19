"""The command line: help, version, exit codes, one-line errors, real end-to-end runs."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from conftest import PALETTE, antialias, scene_ids
from PIL import Image

from semia.cli import build_parser, main
from semia.io import read_image

COMMANDS = ["analogy", "demo", "labels", "evaluate"]


def _scene(tmp_path, height=48, width=64):
    """A small textured 3-class scene on disk: image, anti-aliased labels, an edited target."""
    ids = scene_ids(height, width)
    rng = np.random.default_rng(0)
    base = np.array([[0.4, 0.6, 0.9], [0.1, 0.5, 0.1], [0.8, 0.6, 0.2]], np.float32)
    image = base[ids] + rng.normal(0, 0.05, (height, width, 3)).astype(np.float32)
    Image.fromarray((np.clip(image, 0, 1) * 255).astype(np.uint8)).save(tmp_path / "img.png")
    Image.fromarray(antialias(ids)).save(tmp_path / "label.png")
    target = np.roll(ids, width // 4, axis=1)  # move the tree to the right
    Image.fromarray(antialias(target)).save(tmp_path / "target.png")
    return tmp_path / "img.png", tmp_path / "label.png", tmp_path / "target.png"


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "semia.cli", *args], capture_output=True, text=True, timeout=300
    )


def test_version_and_help():
    r = _run("--version")
    assert r.returncode == 0 and r.stdout.strip().startswith("semia ")
    for command in COMMANDS:
        r = _run(command, "--help")
        assert r.returncode == 0, r.stderr
        assert command in r.stdout and "--" in r.stdout


def test_every_command_registered():
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    assert set(COMMANDS) <= set(sub.choices)


def test_no_command_is_a_usage_error(capsys):
    assert main([]) == 2
    assert "usage" in capsys.readouterr().err


def test_config_flags_come_from_the_dataclass():
    from semia.cli.flags import config_from_args
    from semia.config import PatchConfig

    base = ["analogy", "--image", "a", "--label", "b", "--target", "c", "--out", "o.png"]
    args = build_parser().parse_args(base)
    assert config_from_args(PatchConfig, args) == PatchConfig()
    assert args.max_size == 512 and args.unknown_labels == "error"
    args = build_parser().parse_args([*base, "--patch-size", "7"])
    assert config_from_args(PatchConfig, args) == PatchConfig(patch_size=7)


def test_analogy_end_to_end(tmp_path):
    img, lab, tgt = _scene(tmp_path)
    out = tmp_path / "out" / "result.png"
    r = _run("analogy", "--image", str(img), "--label", str(lab), "--target", str(tgt),
             "--out", str(out), "--seed", "3")  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == str(out)
    result = read_image(out)
    assert result.shape == (48, 64, 3)
    # the moved tree is green where the target says tree
    target_ids = np.roll(scene_ids(48, 64), 16, axis=1)
    tree = result[target_ids == 1].mean(0)
    assert tree[1] > tree[0] + 0.2 and tree[1] > tree[2] + 0.2


def test_analogy_samples_differ(tmp_path):
    img, lab, tgt = _scene(tmp_path)
    r = _run("analogy", "--image", str(img), "--label", str(lab), "--target", str(tgt),
             "--out", str(tmp_path / "s.png"), "--samples", "2")  # fmt: skip
    assert r.returncode == 0, r.stderr
    a, b = read_image(tmp_path / "s_0.png"), read_image(tmp_path / "s_1.png")
    assert np.abs(a - b).mean() > 1e-3


@pytest.mark.parametrize("which", ["image", "label", "target"])
def test_missing_file_is_one_line_error(tmp_path, which):
    img, lab, tgt = _scene(tmp_path)
    paths = {"image": img, "label": lab, "target": tgt}
    paths[which] = tmp_path / "nope.png"
    out = tmp_path / "o.png"
    r = _run("analogy", "--image", str(paths["image"]), "--label", str(paths["label"]),
             "--target", str(paths["target"]), "--out", str(out))  # fmt: skip
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    assert "nope.png" in r.stderr and "no such file" in r.stderr
    assert not out.exists()


def test_unknown_colour_and_nearest(tmp_path):
    img, lab, _ = _scene(tmp_path)
    colours = PALETTE[scene_ids(48, 64)].copy()
    colours[5:15, 5:20] = (200, 0, 200)
    Image.fromarray(colours).save(tmp_path / "purple.png")
    base = ["analogy", "--image", str(img), "--label", str(lab),
            "--target", str(tmp_path / "purple.png"), "--out", str(tmp_path / "o.png")]  # fmt: skip
    r = _run(*base)
    assert r.returncode == 2 and "(200, 0, 200)" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "o.png").exists()
    r = _run(*base, "--unknown-labels", "nearest")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "o.png").exists()


def test_mismatched_sizes_error(tmp_path):
    img, _, tgt = _scene(tmp_path)
    Image.fromarray(PALETTE[scene_ids(40, 64)]).save(tmp_path / "small.png")
    r = _run("analogy", "--image", str(img), "--label", str(tmp_path / "small.png"),
             "--target", str(tgt), "--out", str(tmp_path / "o.png"))  # fmt: skip
    assert r.returncode == 2 and "same size" in r.stderr


def test_bad_output_suffix(tmp_path):
    img, lab, tgt = _scene(tmp_path)
    r = _run("analogy", "--image", str(img), "--label", str(lab), "--target", str(tgt),
             "--out", str(tmp_path / "o.txt"))  # fmt: skip
    assert r.returncode == 2 and "--out" in r.stderr


def test_labels_command(tmp_path, capsys):
    _, lab, tgt = _scene(tmp_path)
    assert main(["labels", str(lab)]) == 0
    out = capsys.readouterr().out
    assert "3 labels" in out and "#00fdff" in out
    assert main(["labels", str(tgt), "--against", str(lab)]) == 0
    assert "every label matches" in capsys.readouterr().out
    colours = PALETTE[scene_ids(48, 64)].copy()
    colours[5:15, 5:20] = (200, 0, 200)
    Image.fromarray(colours).save(tmp_path / "purple.png")
    assert main(["labels", str(tmp_path / "purple.png"), "--against", str(lab)]) == 0
    out = capsys.readouterr().out
    assert "1 label(s) not in the source" in out and "(200, 0, 200): 150 px" in out


def test_demo_writes_results_and_sheet(tmp_path):
    r = _run("demo", "--out", str(tmp_path / "demo"), "--max-size", "64", "--gan-iters", "12",
             "-q", "--threads", "1")  # fmt: skip
    assert r.returncode == 0, r.stderr
    sheet = tmp_path / "demo" / "sheet.png"
    assert r.stdout.strip() == str(sheet)
    analogy = sorted(
        p
        for p in (tmp_path / "demo").glob("*/*.png")
        if "_gan" not in p.name and "apps" not in p.parts
    )
    apps = sorted(p.name for p in (tmp_path / "demo" / "apps").iterdir())
    assert apps == [
        "lake_from_sketch.png", "lake_segmented.png", "lake_sketch.png", "tree_removed.png"
    ]  # fmt: skip
    gan = sorted((tmp_path / "demo" / "tree").glob("*_gan.png"))
    assert len(analogy) == 12  # every packaged target of both scenes
    assert len(gan) == 7  # the GAN column for the tree scene
    assert (tmp_path / "demo" / "tree" / "gan-model" / "model.safetensors").exists()
    assert read_image(gan[0]).shape == read_image(tmp_path / "demo" / "tree" / "1.png").shape
    assert Image.open(sheet).size[0] > 500


def test_demo_on_a_folder_of_scenes(tmp_path, capsys):
    # one scene in the shared layout: img.*, label.*, cond/<target>.* (a JPEG target included)
    img, lab, tgt = _scene(tmp_path)
    scene = tmp_path / "scenes" / "meadow"
    (scene / "cond").mkdir(parents=True)
    img.rename(scene / "img.png")
    lab.rename(scene / "label.png")
    Image.open(tgt).convert("RGB").save(scene / "cond" / "moved.jpg", quality=90)
    Image.open(scene / "label.png").save(scene / "cond" / "rec.png")
    (tmp_path / "scenes" / "notes").mkdir()  # a folder that is not a scene is skipped
    out = tmp_path / "demo"
    assert main(["demo", "--examples", str(tmp_path / "scenes"), "--out", str(out),
                 "--gan-iters", "0", "-q", "--threads", "1"]) == 0  # fmt: skip
    assert sorted(p.name for p in (out / "meadow").iterdir()) == ["moved.png", "rec.png"]
    source = read_image(scene / "img.png")
    np.testing.assert_allclose(read_image(out / "meadow" / "rec.png"), source, atol=1 / 255)
    moved = read_image(out / "meadow" / "moved.png")
    assert np.abs(moved - source).mean() > 0.02  # the edit changed the picture
    assert main(["demo", "--examples", str(tmp_path / "scenes" / "notes"), "-q"]) == 2
    assert main(["demo", "--examples", str(scene / "img.png"), "-q"]) == 2
    assert "img.png: is a file; give a folder of scenes" in capsys.readouterr().err


def test_evaluate_json(tmp_path):
    pytest.importorskip("semia.eval")
    img, lab, tgt = _scene(tmp_path)
    out = tmp_path / "o.png"
    assert _run("analogy", "--image", str(img), "--label", str(lab), "--target", str(tgt),
                "--out", str(out)).returncode == 0  # fmt: skip
    r = _run("evaluate", "--image", str(img), "--label", str(lab), "--target", str(tgt),
             "--output", str(out), "--reference", str(img), "--json")  # fmt: skip
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout)
    for key in ["label_accuracy", "label_accuracy_edited", "miou", "miou_edited", "patch_swd",
                "patch_swd_per_class", "coherence", "psnr", "ssim", "psnr_edited", "ssim_edited",
                "seconds"]:  # fmt: skip
        assert key in result
    assert 0.0 <= result["label_accuracy"] <= 1.0


def test_nested_train_flags_and_dry_run(capsys):
    from semia.config import TrainConfig

    assert main(["train", "--image", "a", "--label", "b", "--out", "c", "--dry-run",
                 "--loss-weights-gan", "0", "--generator-base-channels", "24"]) == 0  # fmt: skip
    config = json.loads(capsys.readouterr().out)
    assert config["loss_weights"]["gan"] == 0.0
    assert config["generator"]["base_channels"] == 24
    # a nested default that differs from its class default is kept (not reset to the class's)
    assert config["generator"]["norm"] == TrainConfig().generator.norm
    assert config["iters"] == TrainConfig().iters


def test_train_generate_resume_end_to_end(tmp_path):
    img, lab, tgt = _scene(tmp_path)
    model = tmp_path / "model"
    base = ["train", "--image", str(img), "--label", str(lab), "--out", str(model), "-q",
            "--threads", "1", "--crop-size", "32", "--full-size-iters", "2"]  # fmt: skip
    r = _run(*base, "--iters", "6", "--preview-target", str(tgt))
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == str(model / "model.safetensors")
    assert len((model / "log.jsonl").read_text().splitlines()) == 6
    assert (model / "loss.png").exists() and list((model / "previews").glob("*.png"))
    r = _run(*base, "--iters", "6")  # the folder holds a run: refuse to overwrite it
    assert r.returncode == 2 and "resume it" in r.stderr and "Traceback" not in r.stderr
    r = _run(*base, "--iters", "9", "--resume")  # continue to 9 iterations
    assert r.returncode == 0, r.stderr
    steps = [json.loads(line)["step"] for line in (model / "log.jsonl").read_text().splitlines()]
    assert len(steps) == 9 and steps == sorted(set(steps))
    out = tmp_path / "generated"
    r = _run("generate", "--model", str(model), "--target", str(tgt), str(lab), "--out", str(out),
             "--threads", "1")  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in out.iterdir()) == ["label.png", "target.png"]
    assert read_image(out / "target.png").shape == (48, 64, 3)
    # the unchanged layout: the analogy copies every pixel in place, so the photo comes back
    assert np.abs(read_image(out / "label.png") - read_image(img)).max() <= 1 / 255
    # generation settings need no retraining: --generate-* flags override the stored ones
    alone = tmp_path / "alone"
    r = _run("generate", "--model", str(model), "--target", str(tgt), "--out", str(alone),
             "--threads", "1", "--generate-init", "fill", "--no-generate-keep-copied")  # fmt: skip
    assert r.returncode == 0, r.stderr
    changed = np.abs(read_image(alone / "target.png") - read_image(out / "target.png")).mean()
    assert changed > 0.005
    r = _run("generate", "--model", str(model), "--target", str(tgt), "--out", str(alone),
             "--generate-anchor-sigma", "-1")  # fmt: skip
    assert r.returncode == 2 and "--generate-anchor-sigma" in r.stderr, r.stderr
    r = _run("generate", "--model", str(tmp_path / "nope"), "--target", str(tgt), "--out", str(out))
    assert r.returncode == 2 and "Traceback" not in r.stderr


def test_generate_reads_targets_like_an_id_coded_source(tmp_path):
    """A model trained on a grayscale id map reads its targets as ids, not colours."""
    img, _, _ = _scene(tmp_path)
    ids = scene_ids(48, 64)
    Image.fromarray((ids * 10 + 5).astype(np.uint8), "L").save(tmp_path / "ids.png")
    moved = np.roll(ids, 16, axis=1)
    Image.fromarray((moved * 10 + 5).astype(np.uint8), "L").save(tmp_path / "moved.png")
    model = tmp_path / "model"
    r = _run("train", "--image", str(img), "--label", str(tmp_path / "ids.png"), "--out",
             str(model), "--iters", "3", "--crop-size", "32", "--threads", "1", "-q")  # fmt: skip
    assert r.returncode == 0, r.stderr
    from semia.gan import SemIA

    loaded = SemIA.load(model)
    assert loaded.label_kind == "ids" and loaded.label_values == (5, 15, 25)
    r = _run("generate", "--model", str(model), "--target", str(tmp_path / "moved.png"),
             "--out", str(tmp_path / "gen"), "--threads", "1")  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert read_image(tmp_path / "gen" / "moved.png").shape == (48, 64, 3)
