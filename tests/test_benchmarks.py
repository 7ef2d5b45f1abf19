"""The quality benchmark script on the packaged examples (baselines only: fast)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

QUALITY = Path(__file__).resolve().parents[1] / "benchmarks" / "quality.py"


@pytest.fixture(scope="module")
def quality():
    spec = importlib.util.spec_from_file_location("quality_bench", QUALITY)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_quality_benchmark_scores_the_baselines(quality, example_dir, tmp_path):
    out = tmp_path / "q"
    args = ["--out", str(out), "--data", str(example_dir), "--size", "96"]
    assert quality.main([*args, "--methods", "copy", "mean-colour", "--scenes", "tree"]) == 0
    rows = json.loads((out / "results.json").read_text())
    targets = {r["target"] for r in rows}
    assert "rec" in targets and len(targets) >= 3
    copy = {r["target"]: r for r in rows if r["method"] == "copy"}
    mean = {r["target"]: r for r in rows if r["method"] == "mean-colour"}
    assert copy["rec"]["psnr"] == 100.0 and copy["rec"]["patch_swd"] == 0.0
    edited = [t for t in copy if t != "rec"]
    # the copy keeps the old layout: the edited pixels read back as the old classes
    for t in edited:
        assert copy[t]["label_accuracy_edited"] < mean[t]["label_accuracy_edited"]
        assert copy[t]["patch_swd"] < mean[t]["patch_swd"]
    table = (out / "results.md").read_text()
    assert "| copy | " in table and "| mean-colour | " in table and "gan mean" not in table
    assert (out / "sheet.png").stat().st_size > 0


def test_gan_seeds_become_methods_and_a_pooled_row(quality):
    methods = quality._per_seed({"copy": quality.copy_source, "gan": quality.gan}, [0, 3])
    assert list(methods) == ["copy", "gan-s0", "gan-s3"]
    groups = quality._groups(list(methods))
    assert groups[-1] == ("gan mean", ["gan-s0", "gan-s3"])
    assert quality._teaser_methods(list(methods)) == ["gan-s0"]
    rows = [
        {"scene": "a", "target": t, "method": m, "label_accuracy_edited": acc, "patch_swd": swd,
         "psnr": None}
        for t, m, acc, swd in (("1", "gan-s0", 0.5, 0.02), ("1", "gan-s3", 0.9, 0.04))
    ]  # fmt: skip
    per_scene = "\n".join(quality._per_scene(rows, list(methods)))
    assert "| a | - | - | - | 0.500 | 0.0200 | - | 0.900 | 0.0400 | - | 0.700 | 0.0300 | - |" in (
        per_scene
    )


TBN = QUALITY.parent / "texture_by_numbers.py"
SHARED = QUALITY.parents[2] / "shared" / "data" / "semia-examples"


@pytest.mark.skipif(not (SHARED / "pantheon").is_dir(), reason="shared scenes absent")
def test_texture_by_numbers_fills_shapes_far_from_their_class(tmp_path, one_thread):
    spec = importlib.util.spec_from_file_location("tbn_bench", TBN)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / "tbn"
    assert module.main(["--out", str(out), "--size", "160", "--seeds", "0"]) == 0
    rows = {r["case"]: r for r in json.loads((out / "results.json").read_text())}
    assert set(rows) == {"pantheon", "hill"}
    for row in rows.values():
        assert row["repeat_area"] == 0.0 and row["use_entropy"] > 0.95  # no patch floods it
        assert row["acc_shape"] > 0.8  # the drawn shape reads back as its class
    assert (out / "sheet.png").stat().st_size > 0
