"""The ground-truth benchmark script (benchmarks/gt.py) on one shared sequence, downscaled."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
GT = ROOT / "benchmarks" / "gt.py"
DATA = ROOT / ".." / "shared" / "data" / "gt-dev"


@pytest.fixture(scope="module")
def gt():
    spec = importlib.util.spec_from_file_location("gt_bench", GT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(not (DATA / "city_seq0002").is_dir(), reason="shared gt-dev data absent")
def test_gt_benchmark_scores_baselines_against_the_truth(gt, tmp_path, one_thread):
    out = tmp_path / "gt"
    args = ["--out", str(out), "--data", str(DATA), "--size", "128", "--scenes", "city_seq0002"]
    methods = ["--methods", "copy", "mean-colour", "truth"]
    assert gt.main([*args, "--targets", "04", "29", *methods]) == 0
    rows = json.loads((out / "results.json").read_text())
    assert {r["target"] for r in rows} == {"04", "29"}
    by = {(r["target"], r["method"]): r for r in rows}
    for t in ("04", "29"):
        copy, mean, truth = by[t, "copy"], by[t, "mean-colour"], by[t, "truth"]
        assert 0 < copy["changed_fraction"] < 1
        # the truth against itself is perfect on every measure
        assert truth["psnr"] == truth["psnr_changed"] == 100.0
        assert truth["ssim"] == pytest.approx(1.0) and truth["swd"] == 0.0
        # copying the source is wrong where the labels changed: worse there than on the frame
        assert math.isfinite(copy["psnr_changed"]) and copy["psnr_changed"] < copy["psnr"] < 100
        assert copy["ssim_changed"] < copy["ssim"] < 1
        # ... and the source-fitted labeller reads the old classes there
        assert copy["acc_changed"] < mean["acc_changed"]
        # flat class colours are far from a photo's patches; the copy has real texture
        assert copy["swd"] < mean["swd"]
    # the later frame drifts further from frame 0
    assert by["29", "copy"]["psnr"] < by["04", "copy"]["psnr"]
    assert by["29", "copy"]["changed_fraction"] > by["04", "copy"]["changed_fraction"]
    table = (out / "results.md").read_text()
    assert "## Mean over 2 targets" in table and "| truth | 2 | 100.00 |" in table
    assert len(list((out / "outputs").glob("*.png"))) == 6
    assert (out / "sheet.png").stat().st_size > 0


def test_gan_flags_become_methods(gt):
    methods = gt._methods(["copy"], [0, 3], True, seed=7)
    assert list(methods) == ["copy", "gan-s0", "gan-s3", "gan-orig-s0"]
    assert gt._methods(["analogy"], [], True, seed=7).keys() == {"analogy", "gan-orig-s7"}
    with pytest.raises(SystemExit):
        gt._methods(["nope"], [], False, seed=0)


@pytest.mark.skipif(not (DATA / "city_seq0002").is_dir(), reason="shared gt-dev data absent")
def test_oracle_searches_the_true_frame_s_patches(gt, tmp_path, one_thread):
    out = tmp_path / "gt"
    args = ["--out", str(out), "--data", str(DATA), "--size", "128", "--scenes", "city_seq0002"]
    assert gt.main([*args, "--targets", "29", "--methods", "analogy", "oracle"]) == 0
    by = {r["method"]: r for r in json.loads((out / "results.json").read_text())}
    # the same synthesis told the truth: closer where the labels changed, not a copy of it
    assert by["oracle"]["psnr_changed"] > by["analogy"]["psnr_changed"] + 0.5
    assert by["oracle"]["psnr"] < 60


def test_oracle_of_an_unchanged_layout_is_the_source(gt):
    from semia.io import load_scene

    scene = ROOT / "src" / "semia" / "examples"
    image_path = next(scene.rglob("img.*"))
    image, label_map = load_scene(image_path, next(image_path.parent.glob("label.*")), 96)
    ids = label_map.ids
    output = gt.oracle(image, ids, ids, label_map.num_classes, 0, image)
    assert abs(output - image).max() < 1e-5
