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


@pytest.mark.skipif(not (DATA / "city_seq0002").is_dir(), reason="shared gt-dev data absent")
def test_tradeoff_places_runs_against_the_blur_line(gt, tmp_path, one_thread):
    tradeoff_path = ROOT / "benchmarks" / "tradeoff.py"
    spec = importlib.util.spec_from_file_location("tradeoff_bench", tradeoff_path)
    tradeoff = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tradeoff)
    common = ["--data", str(DATA), "--size", "96", "--scenes", "city_seq0002"]
    common += ["--targets", "08", "29", "--methods", "analogy", "truth"]
    runs = [tmp_path / f"s{s}" for s in (0, 1)]
    for seed, run in enumerate(runs):
        assert gt.main(["--out", str(run), "--seed", str(seed), *common]) == 0
    # two candidates: the base itself (no change) and the truth filed as the analogy
    same, perfect = tmp_path / "same", tmp_path / "perfect"
    for folder in (same, perfect):
        (folder / "outputs").mkdir(parents=True)
        (folder / "results.json").write_text((runs[0] / "results.json").read_text())
        for name in ("08", "29"):
            src = "analogy" if folder is same else "truth"
            png = runs[0] / "outputs" / f"city_seq0002_{name}_{src}.png"
            (folder / "outputs" / f"city_seq0002_{name}_analogy.png").write_bytes(png.read_bytes())
    res = tradeoff.measure(runs, [same, perfect], data=DATA, size=96)
    base = res["base"]
    rows = json.loads((runs[0] / "results.json").read_text())
    gt_psnr = [r["psnr_changed"] for r in rows if r["method"] == "analogy"]
    # as gt.py scored it, but from the 8-bit PNG it wrote
    assert base["psnr_changed"] == pytest.approx(sum(gt_psnr) / len(gt_psnr), abs=0.02)
    assert 0 < base["low_share"] < 1
    # every filter smooths the changed pixels: more PSNR there, a larger patch distance
    for label in tradeoff.FILTERS:
        row = res[f"filter: {label}"]
        assert row["psnr_changed"] > base["psnr_changed"] and row["swd"] > base["swd"]
    # the synthesis predicts the changed pixels' shade far better than copying the source
    assert res["shade: the output"]["psnr_low"] > res["shade: copy in place"]["psnr_low"] + 2
    assert res[f"candidate: {same}"] == {k: base[k] for k in ("psnr_changed", "swd")}
    assert res[f"candidate: {perfect}"]["swd"] < 0.05 * base["swd"]  # 8-bit rounding only
    text = tradeoff.report(res)
    assert f"candidate: {same} (on or below the blur line)" in text
    assert f"candidate: {perfect} (above the blur line)" in text
